// A CLI command's expected failure: a message for a person and the exit code (1 runtime, 2 usage or bad input).
// cli.ts prints `iotgw: <message>` without a stack trace and exits with the code; it points at --help only for
// a usage error, not for a file whose content it refused.
export class CommandError extends Error {
  readonly exitCode: number;
  /** Whether `iotgw --help` would help: a wrong command line, not a refused file or key. */
  readonly usage: boolean;

  constructor(message: string, exitCode = 1, usage = exitCode === 2) {
    super(message);
    this.name = 'CommandError';
    this.exitCode = exitCode;
    this.usage = usage;
  }
}

/** Exit 2 for input the command read and refused (a file's rows, a key): the message says what to fix, --help would not. */
export function inputError(message: string): CommandError {
  return new CommandError(message, 2, false);
}
