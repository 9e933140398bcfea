#!/usr/bin/env node
// firmware-sim: command line for the device fleet simulator. `firmware-sim <transport> [flags]` picks the
// command (cli/*-command.ts: a flag table and a run function each) and runs it through the one command
// runner (cli/command-runner.ts): flags, --help, --write-devices, Ctrl-C. Progress goes to stderr, the
// summary (or one JSON object) to stdout.
// Exit codes: 0 run finished (also when stopped by SIGINT/SIGTERM), 1 no device could connect, 2 usage error.
import { type Command, EXIT_OK, EXIT_USAGE } from './cli/command-runner.ts';
import { UsageError } from './cli/flags.ts';
import { LORAWAN_COMMAND } from './cli/lorawan-command.ts';
import { MQTT_COMMAND } from './cli/mqtt-command.ts';
import { SERIAL_COMMAND } from './cli/serial-command.ts';
import { TTN_COMMAND } from './cli/ttn-command.ts';

const COMMANDS: readonly Command[] = [MQTT_COMMAND, LORAWAN_COMMAND, TTN_COMMAND, SERIAL_COMMAND];

const MAIN_HELP = `firmware-sim: simulates a fleet of smart-city devices (electricity and water meters,
parking sensors, street lamps) talking to the iotgw gateway, and reports exactly which
readings the gateway acknowledged.

Usage:
  firmware-sim <transport> [flags]
  firmware-sim <transport> --help     flags, defaults and examples of one transport
  firmware-sim --help

Transports:
${COMMANDS.map((command) => `  ${command.name.padEnd(9)}${command.summary}`).join('\n')}

Readings are JSON, deterministic from --seed, e.g.
  {"device_id":"em-000001","kind":"electricity-meter","seq":1,"ts":"2025-01-01T00:00:00.000Z",
   "energy_kwh":27184.129,"voltage_v":229.6,"power_w":1510.3}

Durations (--duration, --interval, --ack-timeout, ...) are written 60s, 5m, 1h or 500ms; a bare
number is seconds.

Exit codes: 0 run finished (also after Ctrl-C / SIGTERM), 1 no device could connect, 2 bad usage.

Example:
  firmware-sim mqtt --url mqtt://127.0.0.1:1883 --devices 100 --rate 500 --duration 30s
`;

async function main(argv: readonly string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) {
    process.stderr.write(MAIN_HELP);
    return EXIT_USAGE;
  }
  if (first === '-h' || first === '--help' || first === 'help') {
    process.stdout.write(MAIN_HELP);
    return EXIT_OK;
  }
  const command = COMMANDS.find((candidate) => candidate.name === first);
  if (command === undefined) {
    throw new UsageError(
      first.startsWith('-')
        ? `unknown option ${first} before the transport (see firmware-sim --help)`
        : `unknown transport '${first}' (available: ${COMMANDS.map((known) => known.name).join(', ')}; see firmware-sim --help)`,
    );
  }
  return command.run(rest);
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  // RangeError: options the fleet itself refuses (runMqttFleet, runLorawanFleet validate their own).
  if (err instanceof UsageError || err instanceof RangeError) {
    console.error(`firmware-sim: ${err.message}`);
    process.exitCode = EXIT_USAGE;
  } else {
    throw err;
  }
}
