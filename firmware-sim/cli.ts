#!/usr/bin/env node
// firmware-sim: command line for the device fleet simulator. `firmware-sim <transport> [flags]` maps
// each transport to its module (mqtt -> transports/mqtt-device.ts, lorawan -> lorawan-fleet.ts), prints progress to stderr
// once per second and a summary (or one JSON object) to stdout at the end.
// Exit codes: 0 run finished (also when stopped by SIGINT/SIGTERM), 1 no device could connect, 2 usage error.

import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { type LorawanFleetOptions, type LorawanFleetProgress, type LorawanFleetReport, lorawanDevicesConfig, runLorawanFleet } from './lorawan-fleet.ts';
import { createSerialRadioSim, rawNodeKey, type SerialRadioSimReport } from './serial-radio-sim.ts';
import { runMqttFleet } from './transports/mqtt-device.ts';
import { runTtnCommand, TTN_SUMMARY } from './ttn-command.ts';
import type { MqttFleetOptions, MqttFleetProgress, MqttFleetReport } from './transports/mqtt-device.ts';

const EXIT_OK = 0;
const EXIT_NO_CONNECTION = 1;
const EXIT_USAGE = 2;

interface Command {
  readonly name: string;
  readonly summary: string;
  /** Undefined while the transport is not written yet. */
  readonly run?: (argv: readonly string[]) => Promise<number>;
}

const COMMANDS: readonly Command[] = [
  {
    name: 'mqtt',
    summary: 'devices connect to an MQTT 3.1.1 broker (the gateway) and publish JSON readings',
    run: runMqttCommand,
  },
  {
    name: 'lorawan',
    summary: 'LoRaWAN devices (ABP, OTAA) behind simulated Semtech UDP packet forwarders, real crypto',
    run: runLorawanCommand,
  },
  { name: 'ttn', summary: TTN_SUMMARY, run: runTtnCommand },
  {
    name: 'serial',
    summary: 'an RN2483 LoRa radio module on a pty (socat): LoRaWAN and raw point-to-point frames',
    run: runSerialCommand,
  },
];

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

Exit codes: 0 run finished (also after Ctrl-C / SIGTERM), 1 no device could connect, 2 bad usage.

Example:
  firmware-sim mqtt --url mqtt://127.0.0.1:1883 --devices 100 --rate 500 --duration 30
`;

const MQTT_HELP = `firmware-sim mqtt: each simulated device opens its own MQTT 3.1.1 connection (client id =
device id, clean session, keepalive 30 s) and publishes readings to devices/{device_id}/{stream}.

Like real firmware, a device waits for the PUBACK of a reading before taking the next one
(see --inflight). When its connection drops it reconnects after about 1 s (+-25 % jitter)
and sends every unacknowledged reading again with the same seq, so the gateway may see
duplicates but the ledger of acknowledged readings is exact. A device whose CONNACK is
refused (bad password, not authorized), or whose connection is closed 3 times in a row
right after a publish with no PUBACK (publish not authorized), gives up and counts as failed.

Usage:
  firmware-sim mqtt [flags]

Flags:
  --url URL              broker: mqtt://host:port, or mqtts://host:port for TLS
                         (tcp:// and tls:// are accepted too). Default: mqtt://127.0.0.1:1883
  --devices N            simulated devices, one connection each. Default: 100
  --rate R               new readings per second across the whole fleet, spread evenly
                         over time and devices. 0 = every device publishes as fast as
                         its acks allow. Default: 100
  --duration S           seconds to keep publishing, counted from when publishing starts
                         (see --start); decimals allowed; 0 = no time limit.
                         Default: 30, or 0 when --messages is given
  --messages N           stop after N readings in total (re-sends not counted)
  --qos 0|1              MQTT QoS of each publish. Default: 1 (QoS 0 has no acks: nothing is re-sent)
  --seed N               integer seed of the readings (same seed, same readings). Default: 1
  --password P           connect with username = device id and this password
  --stream NAME          last topic level. Default: telemetry
  --inflight N           unacknowledged readings a device may have at once. Default: 1.
                         For throughput benchmarks 4-8 lets each connection carry more and
                         roughly halves the simulator's CPU per message.
  --connect-concurrency N
                         connection attempts in progress at once while ramping up. Default: 50
  --start together|staggered
                         together: connect the whole fleet first, then every device starts
                         publishing and the --duration clock starts (steady-state numbers
                         for benchmarks); staggered: each device publishes as soon as it is
                         connected. Default: together
  --prefix TEXT          put before every device id (e.g. site2-) to run several simulators
                         against one gateway. Default: none
  --drain-timeout S      after the stop, seconds to wait for outstanding acks. Default: 10
  --connect-deadline S   end the run (exit 1) when no device has connected after S seconds;
                         with --start together, stop waiting for stragglers then. Default: 30
  --ca FILE              PEM CA certificate(s) to trust, for mqtts://
  --cert FILE            PEM client certificate, for mqtts:// with client certificates
  --key FILE             PEM private key of --cert
  --json                 print the summary as one JSON object on stdout (for scripts)
  --quiet                no progress lines on stderr
  -h, --help             this help

The run stops starting new readings at --duration or --messages (whichever comes first),
waits up to --drain-timeout for outstanding acks (re-sending after reconnects), then
disconnects every device. If no device has connected by --connect-deadline the run ends
(exit 1); with --start together, devices still unconnected then join whenever they connect.
Ctrl-C or SIGTERM stops at once and still prints the summary; a second Ctrl-C exits
immediately. Progress (connected, published, acked, failed, rate) goes to stderr once per
second. Exit codes: 0 run finished or stopped by a signal, 1 no device could connect,
2 bad usage.

Examples:
  firmware-sim mqtt --devices 100 --rate 500 --duration 30
  firmware-sim mqtt --devices 1000 --rate 0 --inflight 4 --duration 10 --json > result.json
  firmware-sim mqtt --devices 20 --messages 10000 --qos 1 --password secret
  firmware-sim mqtt --url mqtts://gateway.local:8883 --ca ca.pem --devices 10 --rate 1
`;

/** A usage error: printed as one line naming the flag, exit code 2. */
class UsageError extends Error {
  override name = 'UsageError';
}

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
        : `unknown transport '${first}' (available: ${availableTransports()}; see firmware-sim --help)`,
    );
  }
  if (command.run === undefined) {
    throw new UsageError(`transport '${command.name}' is not yet available (available: mqtt, lorawan)`);
  }
  return command.run(rest);
}

function availableTransports(): string {
  return COMMANDS.filter((command) => command.run !== undefined)
    .map((command) => command.name)
    .join(', ');
}

async function runMqttCommand(argv: readonly string[]): Promise<number> {
  const flags = parseFlags(argv, {
    url: { type: 'string' },
    devices: { type: 'string' },
    rate: { type: 'string' },
    duration: { type: 'string' },
    messages: { type: 'string' },
    qos: { type: 'string' },
    seed: { type: 'string' },
    password: { type: 'string' },
    stream: { type: 'string' },
    inflight: { type: 'string' },
    'connect-concurrency': { type: 'string' },
    start: { type: 'string' },
    prefix: { type: 'string' },
    'drain-timeout': { type: 'string' },
    'connect-deadline': { type: 'string' },
    ca: { type: 'string' },
    cert: { type: 'string' },
    key: { type: 'string' },
    json: { type: 'boolean' },
    quiet: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (flags.help === true) {
    process.stdout.write(MQTT_HELP);
    return EXIT_OK;
  }

  const url = flags.url ?? 'mqtt://127.0.0.1:1883';
  if (!/^(mqtts?|tcp|tls|ssl):\/\/[^/]/.test(url)) {
    throw new UsageError(`--url must look like mqtt://host:port or mqtts://host:port, got '${url}'`);
  }
  const messages = optional(flags.messages, (value) => integerFlag('--messages', value, 1));
  const durationS = optional(flags.duration, (value) => numberFlag('--duration', value, 0)) ?? (messages === undefined ? 30 : 0);
  const qos = flags.qos ?? '1';
  if (qos !== '0' && qos !== '1') throw new UsageError(`--qos must be 0 or 1, got '${qos}'`);
  const start = flags.start ?? 'together';
  if (start !== 'together' && start !== 'staggered') {
    throw new UsageError(`--start must be together or staggered, got '${start}'`);
  }
  const stream = flags.stream ?? 'telemetry';
  if (stream === '' || /[#+/]/.test(stream) || stream.includes('\u0000'))
    throw new UsageError(`--stream must be one topic level without / + #, got '${stream}'`);

  const controller = new AbortController();
  const options: MqttFleetOptions = {
    url,
    devices: integerFlag('--devices', flags.devices ?? '100', 1),
    ratePerSecond: numberFlag('--rate', flags.rate ?? '100', 0),
    durationMs: Math.round(durationS * 1_000),
    qos: qos === '0' ? 0 : 1,
    seed: integerFlag('--seed', flags.seed ?? '1', Number.MIN_SAFE_INTEGER),
    stream,
    inflightPerDevice: integerFlag('--inflight', flags.inflight ?? '1', 1),
    connectConcurrency: integerFlag('--connect-concurrency', flags['connect-concurrency'] ?? '50', 1),
    start,
    drainTimeoutMs: Math.round(numberFlag('--drain-timeout', flags['drain-timeout'] ?? '10', 0) * 1_000),
    connectDeadlineMs: Math.round(numberFlag('--connect-deadline', flags['connect-deadline'] ?? '30', 0) * 1_000),
    signal: controller.signal,
    ...(messages === undefined ? {} : { messages }),
    ...(flags.password === undefined ? {} : { password: flags.password }),
    ...(flags.prefix === undefined ? {} : { prefix: flags.prefix }),
    ...(flags.ca === undefined ? {} : { ca: readFileFlag('--ca', flags.ca) }),
    ...(flags.cert === undefined ? {} : { cert: readFileFlag('--cert', flags.cert) }),
    ...(flags.key === undefined ? {} : { key: readFileFlag('--key', flags.key) }),
  };

  let interrupted = false;
  const onSignal = (): void => {
    if (interrupted) {
      // A person pressing Ctrl-C twice wants out now, summary or not.
      process.exit(130);
    }
    interrupted = true;
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const cpuBefore = process.cpuUsage();
  const quiet = flags.quiet === true;
  let report: MqttFleetReport;
  try {
    report = await runMqttFleet(options, {
      onProgress: (progress) => {
        if (!quiet) console.error(formatProgress(progress));
      },
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  const cpu = process.cpuUsage(cpuBefore);
  const processStats = {
    cpuUserMs: Math.round(cpu.user / 1_000),
    cpuSystemMs: Math.round(cpu.system / 1_000),
    maxRssMb: Math.round(process.resourceUsage().maxRSS / 1_024),
  };

  if (flags.json === true) {
    const { ledger: _ledger, ...summary } = report;
    console.log(JSON.stringify({ transport: 'mqtt', ...summary, process: processStats }));
  } else {
    console.log(formatSummary(report, options, processStats));
  }
  return report.connected === 0 ? EXIT_NO_CONNECTION : EXIT_OK;
}

type FlagConfig = Record<string, { type: 'string' | 'boolean'; short?: string }>;
type ParsedFlags<T extends FlagConfig> = {
  [K in keyof T]?: T[K]['type'] extends 'boolean' ? boolean : string;
};

/** node:util parseArgs, with its multi-line errors turned into one line that names the flag. */
function parseFlags<T extends FlagConfig>(argv: readonly string[], config: T): ParsedFlags<T> {
  try {
    const { values, positionals } = parseArgs({ args: [...argv], options: config, strict: true, allowPositionals: true });
    const [positional] = positionals;
    if (positional !== undefined) throw new UsageError(`unexpected argument '${positional}' (flags only; see --help)`);
    return values as ParsedFlags<T>;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    const code = (err as { code?: string }).code;
    const message = err instanceof Error ? err.message : String(err);
    const flag = /'(-{1,2}[^' ]+)/.exec(message)?.[1] ?? '';
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw new UsageError(`unknown option ${flag} (see --help)`);
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      if (message.includes('argument missing')) throw new UsageError(`option ${flag} needs a value (see --help)`);
      if (message.includes('ambiguous')) {
        throw new UsageError(`option ${flag}: a value starting with '-' must be written ${flag}=VALUE`);
      }
      throw new UsageError(`option ${flag} takes no value (see --help)`);
    }
    throw new UsageError(message.split('\n')[0] ?? message);
  }
}

function optional<T>(value: string | undefined, parse: (value: string) => T): T | undefined {
  return value === undefined ? undefined : parse(value);
}

function integerFlag(flag: string, value: string, min: number): number {
  const parsed = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(parsed) || parsed < min) {
    throw new UsageError(`${flag} must be an integer${min > Number.MIN_SAFE_INTEGER ? ` >= ${min}` : ''}, got '${value}'`);
  }
  return parsed;
}

function numberFlag(flag: string, value: string, min: number): number {
  const parsed = Number(value);
  if (value.trim() === '' || !Number.isFinite(parsed) || parsed < min) {
    throw new UsageError(`${flag} must be a number >= ${min}, got '${value}'`);
  }
  return parsed;
}

function readFileFlag(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new UsageError(`${flag}: cannot read '${path}': ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

const LORAWAN_HELP = `firmware-sim lorawan: simulated LoRaWAN 1.0.x Class-A devices (ABP and OTAA) behind G
simulated Semtech UDP packet forwarders, talking to iotgw's LoRaWAN listener (lorawan.udp) with
real crypto: OTAA join-request / join-accept, encrypted FRMPayload, MICs, confirmed uplinks and ACKs.

Devices are the fleet models (electricity and water meters, parking sensors, street lamps). In the
default mixed fleet meters and parking sensors send Cayenne LPP (iotgw decodes it into
decoded_payload), water meters and street lamps a packed binary payload. DevEUIs and keys follow
from --seed, so the devices file written once matches every later run with the same seed.

How to use it with iotgw:
  1. Write the devices file (keys are secrets: the file is created readable by you only):
       firmware-sim lorawan --devices 50 --otaa-share 0.5 --seed 1 --write-devices /etc/iotgw/sim-devices.yaml
  2. Point iotgw at it, in iotgw.yaml:
       lorawan:
         enabled: true
         udp: { host: 0.0.0.0, port: 1700 }
         devices_file: /etc/iotgw/sim-devices.yaml
     and (re)start iotgw.
  3. Run the simulator with the same --devices, --otaa-share, --codec, --prefix and --seed:
       firmware-sim lorawan --server 127.0.0.1:1700 --devices 50 --otaa-share 0.5 --seed 1 --rate 20 --duration 60s
     Uplinks arrive in Kafka as The Things Stack v3 uplink messages keyed by DevEUI.
  4. Use --state FILE on every run: ABP devices then keep their frame counters, and OTAA devices their
     sessions, from one run to the next, as real devices do. Without it a second run starts counting at
     0 again and iotgw refuses those frames as replays (OTAA devices re-join, which is fine).

Usage:
  firmware-sim lorawan [flags]

Flags:
  --server HOST:PORT     iotgw's Semtech UDP listener. Default: 127.0.0.1:1700
  --gateways G           simulated packet forwarders (each its own up and down socket). Default: 2
  --devices N            simulated devices. Default: 50
  --otaa-share S         share of OTAA devices, 0..1 (the rest are ABP). Default: 0.5
  --codec C              mixed, cayenne-lpp or raw (the codec of every device). Default: mixed
  --prefix TEXT          put before every device name. Default: none
  --seed N               integer seed of keys, devices and readings. Default: 1
  --rate R               transmissions per second across the fleet (join-requests, uplinks, replays,
                         forgeries; retransmissions come on top); 0 = no limit. Default: 20
  --duration D           stop starting uplinks after D (60s, 1.5m, 500ms; a bare number is seconds).
                         Default: 60s, or none when --messages is given
  --messages N           each device sends N new uplinks, then stops
  --confirmed-share S    share of uplinks sent confirmed (the device waits for the ACK). Default: 0
  --two-gateway-share S  share of frames heard by two forwarders (within iotgw's dedup window). Default: 0
  --missed-ack-share S   share of ACKs the devices fail to hear, so they retransmit. Default: 0
  --retransmissions N    retransmissions of an unacknowledged confirmed uplink. Default: 3
  --ack-timeout D        wait for an ACK this long before retransmitting. Default: 3s
  --replays N            old frames sent again, as an attacker would; iotgw must refuse them. Default: 0
  --corrupt N            uplinks sent with a forged MIC (one bit flipped); iotgw must refuse them. Default: 0
  --state FILE           device counters and sessions: read at the start if present, written at the end
  --rejoin               OTAA devices join again even when --state holds their session
  --write-devices FILE   write the devices as a YAML list for lorawan.devices_file, and exit
  --json                 print the report as one JSON object on stdout (every frame of every device)
  --quiet                no progress lines on stderr
  -h, --help             this help

OTAA devices first send a join-request (random DevNonce) and take the join-accept if it reaches
the forwarder before its RX1/RX2 time; they retry with a new DevNonce after 7 s. A device takes a
downlink as soon as it arrives rather than at its window time, so runs stay fast. Progress goes to
stderr once per second; the summary (sent, valid, PUSH_ACKs, confirmed ACKed, joins, replays and
forgeries) to stdout. Ctrl-C stops new transmissions and still prints the summary.
Exit codes: 0 run finished or stopped by a signal, 1 no PUSH_DATA was acknowledged (is iotgw
listening with lorawan.enabled: true?), 2 bad usage.

Examples:
  firmware-sim lorawan --write-devices sim-devices.yaml --devices 10 --seed 1
  firmware-sim lorawan --devices 10 --seed 1 --messages 5 --confirmed-share 0.2 --state sim-state.json
  firmware-sim lorawan --gateways 3 --devices 200 --rate 50 --duration 5m --two-gateway-share 0.3 \\
    --replays 3 --corrupt 3 --state sim-state.json --json > report.json
`;

async function runLorawanCommand(argv: readonly string[]): Promise<number> {
  const flags = parseFlags(argv, {
    server: { type: 'string' },
    gateways: { type: 'string' },
    devices: { type: 'string' },
    'otaa-share': { type: 'string' },
    codec: { type: 'string' },
    prefix: { type: 'string' },
    seed: { type: 'string' },
    rate: { type: 'string' },
    duration: { type: 'string' },
    messages: { type: 'string' },
    'confirmed-share': { type: 'string' },
    'two-gateway-share': { type: 'string' },
    'missed-ack-share': { type: 'string' },
    retransmissions: { type: 'string' },
    'ack-timeout': { type: 'string' },
    replays: { type: 'string' },
    corrupt: { type: 'string' },
    state: { type: 'string' },
    rejoin: { type: 'boolean' },
    'write-devices': { type: 'string' },
    json: { type: 'boolean' },
    quiet: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (flags.help === true) {
    process.stdout.write(LORAWAN_HELP);
    return EXIT_OK;
  }
  const codec = flags.codec ?? 'mixed';
  if (codec !== 'mixed' && codec !== 'raw' && codec !== 'cayenne-lpp') throw new UsageError(`--codec must be mixed, raw or cayenne-lpp, got '${codec}'`);
  const shape = {
    devices: integerFlag('--devices', flags.devices ?? '50', 1),
    otaaShare: shareFlag('--otaa-share', flags['otaa-share'] ?? '0.5'),
    codec,
    seed: integerFlag('--seed', flags.seed ?? '1', Number.MIN_SAFE_INTEGER),
    ...(flags.prefix === undefined ? {} : { prefix: flags.prefix }),
  } as const;

  const devicesPath = flags['write-devices'];
  if (devicesPath !== undefined) {
    const devices = lorawanDevicesConfig(shape);
    const header = `# firmware-sim lorawan devices: --devices ${shape.devices} --otaa-share ${shape.otaaShare} --codec ${codec} --seed ${shape.seed}${shape.prefix === undefined ? '' : ` --prefix ${shape.prefix}`}\n# For iotgw's lorawan.devices_file. Simulator keys: never reuse them for real devices.\n`;
    try {
      writeFileSync(devicesPath, header + stringify(devices), { mode: 0o600 });
    } catch (err) {
      throw new UsageError(`--write-devices: cannot write '${devicesPath}': ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    console.error(`firmware-sim: wrote ${devices.length} devices to ${devicesPath}`);
    return EXIT_OK;
  }

  const server = flags.server ?? '127.0.0.1:1700';
  const serverMatch = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(server);
  const serverPort = Number(serverMatch?.[2]);
  if (serverMatch === null || !(serverPort >= 1 && serverPort <= 65_535)) throw new UsageError(`--server must be HOST:PORT, got '${server}'`);
  const messages = optional(flags.messages, (value) => integerFlag('--messages', value, 1));
  const durationMs = optional(flags.duration, (value) => durationFlag('--duration', value)) ?? (messages === undefined ? 60_000 : 0);
  const controller = new AbortController();
  const options: LorawanFleetOptions = {
    ...shape,
    server: { host: (serverMatch[1] ?? '').replace(/^\[|\]$/g, ''), port: serverPort },
    gateways: integerFlag('--gateways', flags.gateways ?? '2', 1),
    ratePerSecond: numberFlag('--rate', flags.rate ?? '20', 0),
    durationMs,
    confirmedShare: shareFlag('--confirmed-share', flags['confirmed-share'] ?? '0'),
    twoGatewayShare: shareFlag('--two-gateway-share', flags['two-gateway-share'] ?? '0'),
    missedAckShare: shareFlag('--missed-ack-share', flags['missed-ack-share'] ?? '0'),
    maxRetransmissions: integerFlag('--retransmissions', flags.retransmissions ?? '3', 0),
    ackTimeoutMs: durationFlag('--ack-timeout', flags['ack-timeout'] ?? '3s'),
    replays: integerFlag('--replays', flags.replays ?? '0', 0),
    corruptMics: integerFlag('--corrupt', flags.corrupt ?? '0', 0),
    rejoin: flags.rejoin === true,
    signal: controller.signal,
    ...(messages === undefined ? {} : { messagesPerDevice: messages }),
    ...(flags.state === undefined ? {} : { stateFile: flags.state }),
  };

  let interrupted = false;
  const onSignal = (): void => {
    if (interrupted) process.exit(130);
    interrupted = true;
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const quiet = flags.quiet === true;
  let report: LorawanFleetReport;
  try {
    report = await runLorawanFleet(options, {
      onProgress: (progress) => {
        if (!quiet) console.error(formatLorawanProgress(progress));
      },
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (flags.json === true) {
    const { devicesConfig: _devicesConfig, ...summary } = report;
    console.log(JSON.stringify({ transport: 'lorawan', ...summary }));
  } else {
    console.log(formatLorawanSummary(report, options));
  }
  return report.totals.pushAcked === 0 ? EXIT_NO_CONNECTION : EXIT_OK;
}

const SERIAL_HELP = `firmware-sim serial: a simulated Microchip RN2483 LoRa radio module on a pseudo-terminal, so the
gateway's serial radio ingress (serial.enabled) can be tried without hardware. socat makes a pty pair;
the gateway opens one end (--link) like a USB adapter, the simulator answers the module's commands on
the other. Each round, every simulated device puts one frame on air: LoRaWAN uplinks of ABP devices
(real keys and crypto; add them to lorawan.devices, see --write-devices) and/or raw point-to-point
frames of non-LoRaWAN nodes (node id u16 | seq u16 | temperature dC s16 | battery % u8, keyed node-0a01...).
A frame goes on air only once the gateway has armed the receiver (radio rx 0), as a real radio only
hears then. Needs socat (apt install socat).

Usage:
  firmware-sim serial [flags]

Flags:
  --link PATH            pty link the gateway opens (its serial.path). Default: /tmp/iotgw-radio
  --sim-link PATH        pty link the simulator uses. Default: <--link>-sim
  --frames MODE          lorawan | raw | mixed: which frames to send (and the gateway's serial.frames
                         in the printed config). Default: mixed
  --devices N            LoRaWAN ABP devices (frames lorawan, mixed). Default: 3
  --raw-nodes N          raw point-to-point nodes (frames raw, mixed). Default: 3
  --interval DURATION    pause between rounds, e.g. 5s, 500ms. Default: 5s
  --rounds N             stop after N rounds; 0 = until Ctrl-C. Default: 0
  --garbage N            garbage lines (noise, unknown lines, an over-long line) per round: the gateway
                         must count and ignore them. Default: 0
  --codec MODE           LoRaWAN payloads: mixed, raw or cayenne-lpp. Default: mixed
  --seed N               keys and readings follow from it. Default: 1
  --write-devices FILE   write the LoRaWAN devices for lorawan.devices_file, then exit
  --json                 print the summary as one JSON object on stdout
  --quiet                no progress lines on stderr
  -h, --help             this help

Gateway config for the printed --link (also printed at the start):
  serial: { enabled: true, path: /tmp/iotgw-radio, frames: mixed }
  lorawan: { enabled: true, devices_file: devices.yaml }   # from --write-devices

Examples:
  firmware-sim serial --write-devices /tmp/serial-devices.yaml
  firmware-sim serial --link /tmp/iotgw-radio --devices 3 --raw-nodes 2 --interval 2s --garbage 1
  firmware-sim serial --frames raw --raw-nodes 10 --rounds 5 --json
`;

async function runSerialCommand(argv: readonly string[]): Promise<number> {
  const flags = parseFlags(argv, {
    link: { type: 'string' },
    'sim-link': { type: 'string' },
    frames: { type: 'string' },
    devices: { type: 'string' },
    'raw-nodes': { type: 'string' },
    interval: { type: 'string' },
    rounds: { type: 'string' },
    garbage: { type: 'string' },
    codec: { type: 'string' },
    seed: { type: 'string' },
    'write-devices': { type: 'string' },
    json: { type: 'boolean' },
    quiet: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (flags.help === true) {
    process.stdout.write(SERIAL_HELP);
    return EXIT_OK;
  }
  const frames = flags.frames ?? 'mixed';
  if (frames !== 'lorawan' && frames !== 'raw' && frames !== 'mixed') throw new UsageError(`--frames must be lorawan, raw or mixed, got '${frames}'`);
  const codec = flags.codec ?? 'mixed';
  if (codec !== 'mixed' && codec !== 'raw' && codec !== 'cayenne-lpp') throw new UsageError(`--codec must be mixed, raw or cayenne-lpp, got '${codec}'`);
  const seed = integerFlag('--seed', flags.seed ?? '1', Number.MIN_SAFE_INTEGER);
  const devices = frames === 'raw' ? 0 : integerFlag('--devices', flags.devices ?? '3', 0);
  const rawNodes = frames === 'lorawan' ? 0 : integerFlag('--raw-nodes', flags['raw-nodes'] ?? '3', 0);
  const link = flags.link ?? '/tmp/iotgw-radio';
  const sim = createSerialRadioSim({ gatewayLink: link, simLink: flags['sim-link'] ?? `${link}-sim`, devices, rawNodes, codec, seed });

  const devicesPath = flags['write-devices'];
  if (devicesPath !== undefined) {
    const header = `# firmware-sim serial devices: --devices ${devices} --codec ${codec} --seed ${seed}\n# For iotgw's lorawan.devices_file. Simulator keys: never reuse them for real devices.\n`;
    try {
      writeFileSync(devicesPath, header + stringify(sim.devicesConfig()), { mode: 0o600 });
    } catch (err) {
      throw new UsageError(`--write-devices: cannot write '${devicesPath}': ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    console.error(`firmware-sim: wrote ${devices} devices to ${devicesPath}`);
    return EXIT_OK;
  }
  const intervalMs = durationFlag('--interval', flags.interval ?? '5s');
  const rounds = integerFlag('--rounds', flags.rounds ?? '0', 0);
  const garbage = integerFlag('--garbage', flags.garbage ?? '0', 0);
  const quiet = flags.quiet === true;

  await sim.start();
  const snippet = stringify({
    serial: { enabled: true, path: link, frames },
    ...(devices === 0 ? {} : { lorawan: { enabled: true, devices_file: '<file from --write-devices, same --devices/--codec/--seed>' } }),
  });
  console.error(`firmware-sim serial: radio module on ${link} (simulator side ${flags['sim-link'] ?? `${link}-sim`}). Gateway config:\n${snippet}`);

  const controller = new AbortController();
  let interrupted = false;
  const onSignal = (): void => {
    if (interrupted) process.exit(130);
    interrupted = true;
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const started = performance.now();
  let round = 0;
  try {
    while (!controller.signal.aborted && (rounds === 0 || round < rounds)) {
      if (!sim.isArmed() && !quiet) console.error(`waiting for the gateway to open ${link} and arm the receiver...`);
      await sim.round({ garbage });
      round += 1;
      if (!quiet) {
        const report = sim.report();
        console.error(
          `[${((performance.now() - started) / 1_000).toFixed(1).padStart(6)}s] round ${round}: sent ${report.sent.length}, missed ${report.missed}, inits ${report.inits}`,
        );
      }
      if (rounds !== 0 && round >= rounds) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, intervalMs);
        controller.signal.addEventListener('abort', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await sim.stop();
  }
  const report = sim.report();
  if (flags.json === true) console.log(JSON.stringify({ transport: 'serial', rounds: round, ...report }));
  else console.log(formatSerialSummary(report, round, link, rawNodes));
  return report.sent.length === 0 && report.missed > 0 ? EXIT_NO_CONNECTION : EXIT_OK;
}

function formatSerialSummary(report: SerialRadioSimReport, rounds: number, link: string, rawNodes: number): string {
  const lorawan = report.sent.filter((frame) => frame.kind === 'lorawan').length;
  const raw = report.sent.length - lorawan;
  return [
    `firmware-sim serial: RN2483 on ${link}, ${rounds} rounds`,
    `  sent            ${lorawan} LoRaWAN uplinks, ${raw} raw frames${rawNodes > 0 ? ` (keys ${rawNodeKey(0)}..${rawNodeKey(rawNodes - 1)})` : ''}`,
    `  missed          ${report.missed} (the gateway's receiver was not armed in time)`,
    `  garbage lines   ${report.garbageLines}`,
    `  module inits    ${report.inits} (the gateway's init sequence, once per open)`,
  ].join('\n');
}

function shareFlag(flag: string, value: string): number {
  const parsed = numberFlag(flag, value, 0);
  if (parsed > 1) throw new UsageError(`${flag} must be between 0 and 1, got '${value}'`);
  return parsed;
}

/** '60s', '1.5m', '500ms', or a bare number of seconds -> ms. */
function durationFlag(flag: string, value: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (match === null) throw new UsageError(`${flag} must be a duration such as 60s, 1.5m or 500ms, got '${value}'`);
  const unitMs = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[match[2] ?? 's'] ?? 1_000;
  return Math.round(Number(match[1]) * unitMs);
}

function formatLorawanProgress(progress: LorawanFleetProgress): string {
  const seconds = (progress.elapsedMs / 1_000).toFixed(1).padStart(6);
  return (
    `[${seconds}s] sent ${progress.sent}  uplinks ${progress.uplinks}  PUSH_ACK ${progress.pushAcked}` +
    `  confirmed ACKed ${progress.confirmedAcked}  joined ${progress.joinsAccepted}  joining ${progress.joining}`
  );
}

function formatLorawanSummary(report: LorawanFleetReport, options: LorawanFleetOptions): string {
  const { totals } = report;
  const otaa = report.devices.filter((device) => device.activation === 'otaa').length;
  const stopped = {
    messages: `every device sent its ${options.messagesPerDevice ?? 0} messages`,
    duration: `after ${((options.durationMs ?? 0) / 1_000).toFixed(1)} s`,
    aborted: 'interrupted',
  }[report.stoppedBy];
  const lines = [
    `firmware-sim lorawan: ${report.devices.length} devices (${otaa} OTAA), ${report.gateways.length} forwarders -> ${report.server} (seed ${report.seed})`,
    `  stopped         ${stopped}, ${(report.durationMs / 1_000).toFixed(1)} s`,
    `  sent            ${totals.sent} frames: ${totals.uplinks} uplinks, ${totals.retransmissions} retransmissions, ${totals.replays} replays, ${totals.corrupt} forged MICs`,
    `  valid MIC       ${totals.valid} (replays included: iotgw must still refuse them)`,
    `  acknowledged    ${totals.pushAcked} of ${totals.pushSent} PUSH_DATA got their PUSH_ACK`,
    `  confirmed       ${totals.confirmed} uplinks, ${totals.confirmedAcked} ACKed (${totals.acksMissed} ACKs missed on purpose)`,
    `  joins           ${totals.joinsAccepted} accepted of ${totals.joinAttempts} join-requests`,
    `  two gateways    ${totals.twoGatewayFrames} frames heard by two forwarders`,
    `  downlinks       ${totals.downlinks} received, ${totals.lateDownlinks} too late, ${totals.unmatchedDownlinks} for no listening device`,
    `  failed          ${totals.failedDevices} devices`,
  ];
  if (totals.replaysSkipped > 0) lines.push(`  (${totals.replaysSkipped} replays skipped: those devices had no old frame to replay)`);
  return lines.join('\n');
}

function formatProgress(progress: MqttFleetProgress): string {
  const seconds = (progress.elapsedMs / 1_000).toFixed(1).padStart(6);
  return (
    `[${seconds}s] connected ${progress.online}/${progress.devices}` +
    `  published ${progress.published}  acked ${progress.acked}  in-flight ${progress.inflight}` +
    `  failed ${progress.failed}  reconnects ${progress.reconnects}  rate ${progress.ackedPerSecond} msg/s`
  );
}

function formatSummary(report: MqttFleetReport, options: MqttFleetOptions, processStats: { cpuUserMs: number; cpuSystemMs: number; maxRssMb: number }): string {
  const lines: string[] = [];
  const stopped = {
    messages: `--messages ${options.messages ?? ''} reached`,
    duration: `--duration ${(options.durationMs / 1_000).toString()} s elapsed`,
    aborted: 'interrupted',
    'all-failed': 'every device failed',
    'no-connection': 'no device could connect',
  }[report.stoppedBy];
  lines.push(`firmware-sim mqtt: ${report.devices} devices -> ${report.url} (QoS ${report.qos}, seed ${report.seed})`);
  lines.push(`  stopped         ${stopped}`);
  const rampUp = report.rampUpMs > 0 ? ` (ramp-up ${(report.rampUpMs / 1_000).toFixed(1)} s)` : '';
  lines.push(`  connected       ${report.connected} of ${report.devices} devices${rampUp}, ${report.reconnects} reconnects`);
  lines.push(`  published       ${report.published} readings (${report.resent} re-sent after reconnects)`);
  if (report.qos === 1) {
    lines.push(`  acknowledged    ${report.acked} (${report.unacked} never acknowledged)`);
    const latency = report.ackLatencyMs;
    lines.push(`  ack latency     p50 ${latency.p50} ms, p99 ${latency.p99} ms, max ${latency.max} ms`);
  } else {
    lines.push('  acknowledged    n/a at QoS 0');
  }
  lines.push(`  failed          ${report.failed} devices`);
  for (const [reason, count] of Object.entries(report.failures)) lines.push(`    ${count} x ${reason}`);
  const errors = Object.entries(report.connectionErrors);
  if (errors.length > 0) {
    lines.push('  connection errors');
    for (const [error, count] of errors) lines.push(`    ${count} x ${error}`);
  }
  const rate = report.qos === 1 ? `${report.ackedPerSecond} msg/s acknowledged` : `${report.publishedPerSecond} msg/s published`;
  lines.push(`  duration        ${(report.durationMs / 1_000).toFixed(1)} s (${(report.activeMs / 1_000).toFixed(1)} s publishing), ${rate}`);
  lines.push(`  simulator       cpu ${((processStats.cpuUserMs + processStats.cpuSystemMs) / 1_000).toFixed(1)} s, max rss ${processStats.maxRssMb} MB`);
  return lines.join('\n');
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  if (err instanceof UsageError || err instanceof RangeError) {
    console.error(`firmware-sim: ${err.message}`);
    process.exitCode = EXIT_USAGE;
  } else {
    throw err;
  }
}
