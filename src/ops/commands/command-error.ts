// A CLI command's expected failure: a message for a person and the exit code (1 runtime, 2 usage).
// cli.ts prints `iotgw: <message>` without a stack trace and exits with the code.
export class CommandError extends Error {
  readonly exitCode: number;

  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = 'CommandError';
    this.exitCode = exitCode;
  }
}
