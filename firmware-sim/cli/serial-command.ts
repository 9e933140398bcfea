// `firmware-sim serial`: the RN2483 radio on a pty (serial-radio-sim.ts) from the command line: prints the
// gateway config for the link, sends a round of frames every --interval until --rounds or Ctrl-C, then a
// summary (or one JSON object) to stdout.
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { createSerialRadioSim, rawNodeKey, type SerialRadioSim, type SerialRadioSimReport } from '../serial-radio-sim.ts';
import { defineCommand, EXIT_NO_CONNECTION, EXIT_OK, QUIET_FLAG } from './command-runner.ts';
import { choiceFlag, durationFlag, type FlagValues, integerFlag, switchFlag, textFlag } from './flags.ts';

const SERIAL_FLAGS = {
  link: textFlag({ placeholder: 'PATH', default: '/tmp/iotgw-radio', help: 'pty link the gateway opens (its serial.path). Default: /tmp/iotgw-radio' }),
  'sim-link': textFlag({ placeholder: 'PATH', help: 'pty link the simulator uses. Default: <--link>-sim' }),
  frames: choiceFlag({
    placeholder: 'MODE',
    choices: ['lorawan', 'raw', 'mixed'],
    default: 'mixed',
    help: "lorawan | raw | mixed: which frames to send (and the gateway's serial.frames\nin the printed config). Default: mixed",
  }),
  devices: integerFlag({ min: 0, default: 3, help: 'LoRaWAN ABP devices (frames lorawan, mixed). Default: 3' }),
  'raw-nodes': integerFlag({ min: 0, default: 3, help: 'raw point-to-point nodes (frames raw, mixed). Default: 3' }),
  interval: durationFlag({ default: 5_000, help: 'pause between rounds, e.g. 5s, 500ms. Default: 5s' }),
  rounds: integerFlag({ min: 0, default: 0, help: 'stop after N rounds; 0 = until Ctrl-C. Default: 0' }),
  garbage: integerFlag({
    min: 0,
    default: 0,
    help: 'garbage lines (noise, unknown lines, an over-long line) per round: the gateway\nmust count and ignore them. Default: 0',
  }),
  codec: choiceFlag({
    placeholder: 'MODE',
    choices: ['mixed', 'raw', 'cayenne-lpp'],
    default: 'mixed',
    help: 'LoRaWAN payloads: mixed, raw or cayenne-lpp. Default: mixed',
  }),
  seed: integerFlag({ default: 1, help: 'keys and readings follow from it. Default: 1' }),
  json: switchFlag({ help: 'print the summary as one JSON object on stdout' }),
  quiet: QUIET_FLAG,
};

type SerialFlags = FlagValues<typeof SERIAL_FLAGS>;

export const SERIAL_COMMAND = defineCommand({
  name: 'serial',
  summary: 'an RN2483 LoRa radio module on a pty (socat): LoRaWAN and raw point-to-point frames',
  about: `firmware-sim serial: a simulated Microchip RN2483 LoRa radio module on a pseudo-terminal, so the
gateway's serial radio ingress (serial.enabled) can be tried without hardware. socat makes a pty pair;
the gateway opens one end (--link) like a USB adapter, the simulator answers the module's commands on
the other. Each round, every simulated device puts one frame on air: LoRaWAN uplinks of ABP devices
(real keys and crypto; add them to lorawan.devices, see --write-devices) and/or raw point-to-point
frames of non-LoRaWAN nodes (node id u16 | seq u16 | temperature dC s16 | battery % u8, keyed node-0a01...).
A frame goes on air only once the gateway has armed the receiver (radio rx 0), as a real radio only
hears then. Needs socat (apt install socat).`,
  flags: SERIAL_FLAGS,
  more: `Gateway config for the printed --link (also printed at the start):
  serial: { enabled: true, path: /tmp/iotgw-radio, frames: mixed }
  lorawan: { enabled: true, devices_file: devices.yaml }   # from --write-devices

Examples:
  firmware-sim serial --write-devices /tmp/serial-devices.yaml
  firmware-sim serial --link /tmp/iotgw-radio --devices 3 --raw-nodes 2 --interval 2s --garbage 1
  firmware-sim serial --frames raw --raw-nodes 10 --rounds 5 --json
`,
  devicesFile: (flags) => ({
    flags: `--devices ${loraDevices(flags)} --codec ${flags.codec} --seed ${flags.seed}`,
    devices: createRadioSim(flags).devicesConfig(),
  }),
  run: runSerialCommand,
});

const loraDevices = (flags: SerialFlags): number => (flags.frames === 'raw' ? 0 : flags.devices);
const rawNodes = (flags: SerialFlags): number => (flags.frames === 'lorawan' ? 0 : flags['raw-nodes']);
const simLink = (flags: SerialFlags): string => flags['sim-link'] ?? `${flags.link}-sim`;

function createRadioSim(flags: SerialFlags): SerialRadioSim {
  return createSerialRadioSim({
    gatewayLink: flags.link,
    simLink: simLink(flags),
    devices: loraDevices(flags),
    rawNodes: rawNodes(flags),
    codec: flags.codec,
    seed: flags.seed,
  });
}

async function runSerialCommand(flags: SerialFlags, signal: AbortSignal): Promise<number> {
  const sim = createRadioSim(flags);
  await sim.start();
  const snippet = stringify({
    serial: { enabled: true, path: flags.link, frames: flags.frames },
    ...(loraDevices(flags) === 0 ? {} : { lorawan: { enabled: true, devices_file: '<file from --write-devices, same --devices/--codec/--seed>' } }),
  });
  console.error(`firmware-sim serial: radio module on ${flags.link} (simulator side ${simLink(flags)}). Gateway config:\n${snippet}`);
  let rounds = 0;
  try {
    rounds = await sendRounds(sim, flags, signal);
  } finally {
    await sim.stop();
  }
  const report = sim.report();
  if (flags.json) console.log(JSON.stringify({ transport: 'serial', rounds, ...report }));
  else console.log(formatSummary(report, rounds, flags.link, rawNodes(flags)));
  return report.sent.length === 0 && report.missed > 0 ? EXIT_NO_CONNECTION : EXIT_OK;
}

/** A round every --interval until --rounds or the signal; resolves with the rounds sent. */
async function sendRounds(sim: SerialRadioSim, flags: SerialFlags, signal: AbortSignal): Promise<number> {
  const started = performance.now();
  let round = 0;
  while (!signal.aborted && (flags.rounds === 0 || round < flags.rounds)) {
    if (!sim.isArmed() && !flags.quiet) console.error(`waiting for the gateway to open ${flags.link} and arm the receiver...`);
    await sim.round({ garbage: flags.garbage });
    round += 1;
    if (!flags.quiet) {
      const report = sim.report();
      const elapsed = ((performance.now() - started) / 1_000).toFixed(1).padStart(6);
      console.error(`[${elapsed}s] round ${round}: sent ${report.sent.length}, missed ${report.missed}, inits ${report.inits}`);
    }
    if (flags.rounds !== 0 && round >= flags.rounds) break;
    await sleep(flags.interval, undefined, { signal }).catch(() => undefined);
  }
  return round;
}

function formatSummary(report: SerialRadioSimReport, rounds: number, link: string, rawNodeCount: number): string {
  const lorawan = report.sent.filter((frame) => frame.kind === 'lorawan').length;
  const raw = report.sent.length - lorawan;
  return [
    `firmware-sim serial: RN2483 on ${link}, ${rounds} rounds`,
    `  sent            ${lorawan} LoRaWAN uplinks, ${raw} raw frames${rawNodeCount > 0 ? ` (keys ${rawNodeKey(0)}..${rawNodeKey(rawNodeCount - 1)})` : ''}`,
    `  missed          ${report.missed} (the gateway's receiver was not armed in time)`,
    `  garbage lines   ${report.garbageLines}`,
    `  module inits    ${report.inits} (the gateway's init sequence, once per open)`,
  ].join('\n');
}
