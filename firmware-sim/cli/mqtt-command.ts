// `firmware-sim mqtt`: the MQTT fleet (mqtt-fleet.ts) from the command line. Progress once per second to
// stderr, then a summary (or one JSON object, which test/bench parses) to stdout.
import {
  type MqttCommandEvent,
  type MqttFleetOptions,
  type MqttFleetProgress,
  type MqttFleetReport,
  type MqttCommandsSummary,
  runMqttFleet,
} from '../mqtt-fleet.ts';
import { defineCommand, EXIT_NO_CONNECTION, EXIT_OK, QUIET_FLAG } from './command-runner.ts';
import { choiceFlag, durationFlag, fileFlag, type FlagValues, integerFlag, numberFlag, switchFlag, textFlag, valueFlag } from './flags.ts';

const MQTT_FLAGS = {
  url: textFlag({
    placeholder: 'URL',
    default: 'mqtt://127.0.0.1:1883',
    pattern: /^(mqtts?|tcp|tls|ssl):\/\/[^/]/,
    expected: 'a broker URL such as mqtt://host:port or mqtts://host:port',
    help: 'broker: mqtt://host:port, or mqtts://host:port for TLS\n(tcp:// and tls:// are accepted too). Default: mqtt://127.0.0.1:1883',
  }),
  devices: integerFlag({ min: 1, default: 100, help: 'simulated devices, one connection each. Default: 100' }),
  rate: numberFlag({
    placeholder: 'R',
    min: 0,
    default: 100,
    help: 'new readings per second across the whole fleet, spread evenly\nover time and devices. 0 = every device publishes as fast as\nits acks allow. Default: 100',
  }),
  duration: durationFlag({
    help: 'how long to keep publishing (60s, 5m, 1h; a bare number is seconds),\ncounted from when publishing starts (see --start); 0 = no time limit.\nDefault: 30s, or 0 when --messages is given',
  }),
  messages: integerFlag({ min: 1, help: 'stop after N readings in total (re-sends not counted)' }),
  qos: choiceFlag({ choices: ['0', '1'], default: '1', help: 'MQTT QoS of each publish. Default: 1 (QoS 0 has no acks: nothing is re-sent)' }),
  seed: integerFlag({ default: 1, help: 'integer seed of the readings (same seed, same readings). Default: 1' }),
  password: textFlag({ placeholder: 'P', help: 'connect with username = device id and this password' }),
  stream: valueFlag({
    placeholder: 'NAME',
    default: 'telemetry',
    expected: 'one topic level without / + #',
    parse: (text) => (text === '' || /[#+/]/.test(text) || text.includes('\u0000') ? undefined : text),
    help: 'last topic level. Default: telemetry',
  }),
  inflight: integerFlag({
    min: 1,
    default: 1,
    help: "unacknowledged readings a device may have at once. Default: 1.\nFor throughput benchmarks 4-8 lets each connection carry more and\nroughly halves the simulator's CPU per message.",
  }),
  'connect-concurrency': integerFlag({ min: 1, default: 50, help: 'connection attempts in progress at once while ramping up. Default: 50' }),
  start: choiceFlag({
    choices: ['together', 'staggered'],
    default: 'together',
    help: 'together: connect the whole fleet first, then every device starts\npublishing and the --duration clock starts (steady-state numbers\nfor benchmarks); staggered: each device publishes as soon as it is\nconnected. Default: together',
  }),
  prefix: textFlag({
    placeholder: 'TEXT',
    help: 'put before every device id (e.g. site2-) to run several simulators\nagainst one gateway. Default: none',
  }),
  commands: switchFlag({
    help: 'devices take commands from the gateway and report their new\nstate (see below). Default: off',
  }),
  'drain-timeout': durationFlag({ default: 10_000, help: 'after the stop, how long to wait for outstanding acks. Default: 10s' }),
  'connect-deadline': durationFlag({
    default: 30_000,
    help: 'end the run (exit 1) when no device has connected after D;\nwith --start together, stop waiting for stragglers then. Default: 30s',
  }),
  ca: fileFlag({ help: 'PEM CA certificate(s) to trust, for mqtts://' }),
  cert: fileFlag({ help: 'PEM client certificate, for mqtts:// with client certificates' }),
  key: fileFlag({ help: 'PEM private key of --cert' }),
  json: switchFlag({ help: 'print the summary as one JSON object on stdout (for scripts)' }),
  quiet: QUIET_FLAG,
};

type MqttFlags = FlagValues<typeof MQTT_FLAGS>;

interface ProcessStats {
  readonly cpuUserMs: number;
  readonly cpuSystemMs: number;
  readonly maxRssMb: number;
}

export const MQTT_COMMAND = defineCommand({
  name: 'mqtt',
  summary: 'devices connect to an MQTT 3.1.1 broker (the gateway) and publish JSON readings',
  about: `firmware-sim mqtt: each simulated device opens its own MQTT 3.1.1 connection (client id =
device id, clean session, keepalive 30 s) and publishes readings to devices/{device_id}/{stream}.

Like real firmware, a device waits for the PUBACK of a reading before taking the next one
(see --inflight). When its connection drops it reconnects after about 1 s (+-25 % jitter)
and sends every unacknowledged reading again with the same seq, so the gateway may see
duplicates but the ledger of acknowledged readings is exact. A device whose CONNACK is
refused (bad password, not authorized), or whose connection is closed 3 times in a row
right after a publish with no PUBACK (publish not authorized), gives up and counts as failed.`,
  flags: MQTT_FLAGS,
  more: `The run stops starting new readings at --duration or --messages (whichever comes first),
waits up to --drain-timeout for outstanding acks (re-sending after reconnects), then
disconnects every device. If no device has connected by --connect-deadline the run ends
(exit 1); with --start together, devices still unconnected then join whenever they connect.
Ctrl-C or SIGTERM stops at once and still prints the summary; a second Ctrl-C exits
immediately. Progress (connected, published, acked, failed, rate) goes to stderr once per
second. Exit codes: 0 run finished or stopped by a signal, 1 no device could connect,
2 bad usage.

With --commands each device also subscribes to devices/{device_id}/commands/# (QoS 1) at
every connect and acts on what the gateway sends there (commands.enabled), like field
firmware: a street lamp takes dim {"level": 0..100}, on and off; a water meter takes
valve {"open": true|false}, open and close; every device takes config {"interval_s": N}
(one reading per N s from then on). It reports its new state at QoS 1 on
devices/{device_id}/state, e.g. {"device_id":"sl-000002","kind":"street-lamp",
"command":"dim","on":true,"dim_pct":40,"ts":"..."} ({"error":"unknown command"} for a
command its model does not know), then PUBACKs the command, so the gateway's delivered
receipt means it has acted. With {command_id} after {name} in commands.mqtt_topic the
report carries command_id too. Each command is a line on stderr. Off by default: a
subscription per device costs the broker memory (about 3 KB a device in the gateway),
which a benchmark of readings should not pay.

Examples:
  firmware-sim mqtt --devices 100 --rate 500 --duration 30s
  firmware-sim mqtt --devices 1000 --rate 0 --inflight 4 --duration 10s --json > result.json
  firmware-sim mqtt --devices 20 --messages 10000 --qos 1 --password secret
  firmware-sim mqtt --url mqtts://gateway.local:8883 --ca ca.pem --devices 10 --rate 1
  firmware-sim mqtt --devices 20 --rate 10 --duration 10m --commands
`,
  run: runMqttCommand,
});

async function runMqttCommand(flags: MqttFlags, signal: AbortSignal): Promise<number> {
  const options = mqttFleetOptions(flags, signal);
  const startedAt = Date.now();
  const cpuBefore = process.cpuUsage();
  const report = await runMqttFleet(options, {
    onProgress: (progress) => {
      if (!flags.quiet) console.error(formatProgress(progress));
    },
    onCommand: (event) => {
      if (!flags.quiet) console.error(formatCommand(event, startedAt));
    },
  });
  const cpu = process.cpuUsage(cpuBefore);
  const processStats: ProcessStats = {
    cpuUserMs: Math.round(cpu.user / 1_000),
    cpuSystemMs: Math.round(cpu.system / 1_000),
    maxRssMb: Math.round(process.resourceUsage().maxRSS / 1_024),
  };
  if (flags.json) {
    const { ledger: _ledger, ...summary } = report;
    console.log(JSON.stringify({ transport: 'mqtt', ...summary, process: processStats }));
  } else {
    console.log(formatSummary(report, options, processStats));
  }
  return report.connected === 0 ? EXIT_NO_CONNECTION : EXIT_OK;
}

function mqttFleetOptions(flags: MqttFlags, signal: AbortSignal): MqttFleetOptions {
  return {
    url: flags.url,
    devices: flags.devices,
    ratePerSecond: flags.rate,
    durationMs: flags.duration ?? (flags.messages === undefined ? 30_000 : 0),
    qos: flags.qos === '0' ? 0 : 1,
    seed: flags.seed,
    stream: flags.stream,
    inflightPerDevice: flags.inflight,
    connectConcurrency: flags['connect-concurrency'],
    start: flags.start,
    drainTimeoutMs: flags['drain-timeout'],
    commands: flags.commands,
    connectDeadlineMs: flags['connect-deadline'],
    signal,
    ...(flags.messages === undefined ? {} : { messages: flags.messages }),
    ...(flags.password === undefined ? {} : { password: flags.password }),
    ...(flags.prefix === undefined ? {} : { prefix: flags.prefix }),
    ...(flags.ca === undefined ? {} : { ca: flags.ca }),
    ...(flags.cert === undefined ? {} : { cert: flags.cert }),
    ...(flags.key === undefined ? {} : { key: flags.key }),
  };
}

function formatProgress(progress: MqttFleetProgress): string {
  const seconds = (progress.elapsedMs / 1_000).toFixed(1).padStart(6);
  return (
    `[${seconds}s] connected ${progress.online}/${progress.devices}` +
    `  published ${progress.published}  acked ${progress.acked}  in-flight ${progress.inflight}` +
    `  failed ${progress.failed}  reconnects ${progress.reconnects}  rate ${progress.ackedPerSecond} msg/s`
  );
}

function formatCommand(event: MqttCommandEvent, startedAt: number): string {
  const seconds = ((event.receivedAtMs - startedAt) / 1_000).toFixed(1).padStart(6);
  const id = event.commandId === undefined ? '' : ` (${event.commandId})`;
  return `[${seconds}s] command ${event.name}${id} to ${event.deviceId}: ${event.report}`;
}

function formatSummary(report: MqttFleetReport, options: MqttFleetOptions, processStats: ProcessStats): string {
  const stopped = {
    messages: `--messages ${options.messages ?? ''} reached`,
    duration: `--duration ${(options.durationMs / 1_000).toString()} s elapsed`,
    aborted: 'interrupted',
    'all-failed': 'every device failed',
    'no-connection': 'no device could connect',
  }[report.stoppedBy];
  const rampUp = report.rampUpMs > 0 ? ` (ramp-up ${(report.rampUpMs / 1_000).toFixed(1)} s)` : '';
  const latency = report.ackLatencyMs;
  const acknowledged =
    report.qos === 1
      ? [
          `  acknowledged    ${report.acked} (${report.unacked} never acknowledged)`,
          `  ack latency     p50 ${latency.p50} ms, p99 ${latency.p99} ms, max ${latency.max} ms`,
        ]
      : ['  acknowledged    n/a at QoS 0'];
  const errors = Object.entries(report.connectionErrors);
  const rate = report.qos === 1 ? `${report.ackedPerSecond} msg/s acknowledged` : `${report.publishedPerSecond} msg/s published`;
  return [
    `firmware-sim mqtt: ${report.devices} devices -> ${report.url} (QoS ${report.qos}, seed ${report.seed})`,
    `  stopped         ${stopped}`,
    `  connected       ${report.connected} of ${report.devices} devices${rampUp}, ${report.reconnects} reconnects`,
    `  published       ${report.published} readings (${report.resent} re-sent after reconnects)`,
    ...acknowledged,
    ...(report.commands === null ? [] : [formatCommands(report.commands)]),
    `  failed          ${report.failed} devices`,
    ...Object.entries(report.failures).map(([reason, count]) => `    ${count} x ${reason}`),
    ...(errors.length === 0 ? [] : ['  connection errors', ...errors.map(([error, count]) => `    ${count} x ${error}`)]),
    `  duration        ${(report.durationMs / 1_000).toFixed(1)} s (${(report.activeMs / 1_000).toFixed(1)} s publishing), ${rate}`,
    `  simulator       cpu ${((processStats.cpuUserMs + processStats.cpuSystemMs) / 1_000).toFixed(1)} s, max rss ${processStats.maxRssMb} MB`,
  ].join('\n');
}

function formatCommands(commands: MqttCommandsSummary): string {
  const refusedSubscriptions = commands.subscribeRefused > 0 ? `, ${commands.subscribeRefused} subscriptions refused` : '';
  return (
    `  commands        ${commands.received} received by ${commands.subscribed} subscribed devices${refusedSubscriptions}: ` +
    `${commands.applied} applied, ${commands.refused} refused; ${commands.reported} state reports acknowledged`
  );
}
