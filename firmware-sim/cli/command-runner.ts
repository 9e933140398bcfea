// The one way a firmware-sim command runs: its flag table parsed from argv (flags.ts), `--help` rendered
// from the same table, `--write-devices` handled alike for every command that has a devices file, and
// SIGINT/SIGTERM turned into an abort signal for the run (a second signal exits at once). A command is
// then a table, its help prose and a run function of the typed values.
import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { type FlagTable, type FlagValues, formatFlagHelp, parseFlags, switchFlag, textFlag, UsageError } from './flags.ts';

export const EXIT_OK = 0;
/** No device could connect, or nothing was acknowledged. */
export const EXIT_NO_CONNECTION = 1;
export const EXIT_USAGE = 2;
/** 128 + SIGINT, as shells report a process ended by Ctrl-C. */
const EXIT_INTERRUPTED = 130;

/** The devices a command simulates, for the gateway's lorawan.devices_file. */
export interface DevicesFile {
  /** The flags that fix the devices (e.g. `--devices 5 --seed 1`): a later run needs the same ones. */
  readonly flags: string;
  readonly devices: readonly unknown[];
}

export interface CommandSpec<T extends FlagTable> {
  readonly name: string;
  /** One line for the transport list of `firmware-sim --help`. */
  readonly summary: string;
  /** Help before "Usage:": what the command simulates and how to use it with iotgw (no trailing newline). */
  readonly about: string;
  readonly flags: T;
  /** Help after the flags: behaviour, exit codes, examples (ending in a newline). */
  readonly more: string;
  /** Commands with LoRaWAN devices: what `--write-devices FILE` writes (then the command exits). */
  readonly devicesFile?: (flags: FlagValues<T>) => DevicesFile;
  /** Runs until done or `signal` aborts (Ctrl-C, SIGTERM); resolves with the exit code. */
  run(flags: FlagValues<T>, signal: AbortSignal): Promise<number>;
}

/** Where the runner itself writes: help to `out`, notes to `err`. */
export interface CommandOutput {
  out(text: string): void;
  err(text: string): void;
}

export interface Command {
  readonly name: string;
  readonly summary: string;
  help(): string;
  /** Throws UsageError for bad flags; resolves with the exit code otherwise. */
  run(argv: readonly string[], output?: CommandOutput): Promise<number>;
}

export const QUIET_FLAG = switchFlag({ help: 'no progress lines on stderr' });
const HELP_FLAG = switchFlag({ short: 'h', help: 'this help' });
const WRITE_DEVICES_FLAG = textFlag({ placeholder: 'FILE', help: 'write the devices as YAML for lorawan.devices_file (readable by you only), then exit' });

const PROCESS_OUTPUT: CommandOutput = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

export function defineCommand<T extends FlagTable>(spec: CommandSpec<T>): Command {
  const table: FlagTable = {
    ...spec.flags,
    ...(spec.devicesFile === undefined ? {} : { 'write-devices': WRITE_DEVICES_FLAG }),
    help: HELP_FLAG,
  };
  const help = (): string => `${spec.about}\n\nUsage:\n  firmware-sim ${spec.name} [flags]\n\nFlags:\n${formatFlagHelp(table)}\n\n${spec.more}`;
  return {
    name: spec.name,
    summary: spec.summary,
    help,
    async run(argv, output = PROCESS_OUTPUT) {
      // The table is spec.flags plus the runner's own flags, which the command never sees.
      const parsed = parseFlags(table, argv) as { readonly help: boolean; readonly 'write-devices'?: string };
      const { help: wantsHelp, 'write-devices': devicesPath, ...commandFlags } = parsed;
      const values = commandFlags as FlagValues<T>;
      if (wantsHelp) {
        output.out(help());
        return EXIT_OK;
      }
      if (spec.devicesFile !== undefined && devicesPath !== undefined) {
        writeDevicesFile(devicesPath, spec.name, spec.devicesFile(values), output);
        return EXIT_OK;
      }
      return runUntilSignal((signal) => spec.run(values, signal));
    },
  };
}

function writeDevicesFile(path: string, command: string, file: DevicesFile, output: CommandOutput): void {
  const header = `# firmware-sim ${command} devices: ${file.flags}\n# For iotgw's lorawan.devices_file. Simulator keys: never reuse them for real devices.\n`;
  try {
    // Simulator keys are still keys: the file is readable by its owner only.
    writeFileSync(path, header + stringify(file.devices), { mode: 0o600 });
  } catch (err) {
    throw new UsageError(`--write-devices: cannot write '${path}': ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  output.err(`firmware-sim: wrote ${file.devices.length} devices to ${path}\n`);
}

/** Runs `work` with a signal that SIGINT/SIGTERM abort; the run still ends normally and prints its summary. */
async function runUntilSignal(work: (signal: AbortSignal) => Promise<number>): Promise<number> {
  const controller = new AbortController();
  const onSignal = (): void => {
    // A person pressing Ctrl-C twice wants out now, summary or not.
    if (controller.signal.aborted) process.exit(EXIT_INTERRUPTED);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await work(controller.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
