// `npm run demo`: the whole flow in one command, for a newcomer. Starts the test Kafka cluster
// (librdkafka's mock), the gateway (its own process, as deployed) and a simulated fleet, and prints
// a live line per second: devices -> gateway -> buffer -> Kafka. Partway through it sends a few commands
// the other way (Kafka -> gateway -> device -> PUBACK -> receipt -> Kafka) and prints each receipt and the
// device's state report as they come back, with the latency of each. Ctrl-C stops everything.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import kafkajs from 'kafkajs';
import { createFleet, type DeviceKind } from '../firmware-sim/fleet.ts';
import { launchGateway, writeGatewayConfig } from './helpers/gateway-process.ts';
import { startKafkaMock } from './helpers/kafka-mock.ts';

const { Kafka, logLevel } = kafkajs;
const SIM = fileURLToPath(new URL('../dist/firmware-sim/cli.js', import.meta.url));
const TOPIC = 'demo.telemetry';
const COMMANDS_TOPIC = 'demo.commands';
const RECEIPTS_TOPIC = 'demo.command-receipts';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '200' },
    rate: { type: 'string', default: '1000' },
    duration: { type: 'string', default: '30' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write(`npm run demo [-- --devices N --rate MSG_PER_S --duration SECONDS]   (defaults 200, 1000, 30)
Runs a test Kafka cluster, the gateway and firmware-sim together and prints what flows each second.
Early on, a few commands go to devices through Kafka (${COMMANDS_TOPIC}): watch their receipts
(${RECEIPTS_TOPIC}) and the devices' state reports come back. A third of the way through, Kafka is
taken down for a few seconds: watch the buffer fill and drain.\n`);
  process.exit(0);
}
const durationS = Number(values.duration);
const devices = Number(values.devices);

const dir = mkdtempSync(join(tmpdir(), 'iotgw-demo-'));
const say = (line: string) => process.stdout.write(`${line}\n`);
say('starting the test Kafka cluster (librdkafka mock, 3 brokers) ...');
const kafka = await startKafkaMock({
  brokers: 3,
  topics: [
    { name: TOPIC, partitions: 6 },
    { name: COMMANDS_TOPIC, partitions: 3 },
    { name: RECEIPTS_TOPIC, partitions: 3 },
  ],
});
const configPath = writeGatewayConfig(dir, {
  gateway_id: 'demo',
  log: { level: 'info' },
  mqtt: { host: '127.0.0.1', port: 0, allow_anonymous: true },
  http: { port: 0 },
  kafka: { brokers: [...kafka.brokers], topic: TOPIC, routes: [{ stream: 'telemetry', event_time_field: 'ts' }], retry_initial_ms: 200, retry_max_ms: 1000 },
  buffer: { path: join(dir, 'buffer.db') },
  // The way back: commands from COMMANDS_TOPIC to devices/{device_id}/commands/{name}, receipts to RECEIPTS_TOPIC.
  commands: { enabled: true, topic: COMMANDS_TOPIC, receipts_topic: RECEIPTS_TOPIC, fetch_wait_ms: 100 },
});
say('starting the gateway ...');
const gateway = await launchGateway(configPath);
say(`gateway: MQTT on 127.0.0.1:${gateway.mqttPort}, ops on http://127.0.0.1:${gateway.httpPort}/metrics, Kafka topic ${TOPIC}`);
say(`         commands from ${COMMANDS_TOPIC}, receipts to ${RECEIPTS_TOPIC}`);

// Short retries, as test/helpers/kafka-mock.ts tailTopic has them: the readers come back within a second or
// two of Kafka, and once the demo is stopping none restarts (a restart would keep the process alive).
const RETRY = { retries: 3, initialRetryTime: 100, maxRetryTime: 1_000 };
let stopping = false;
const client = new Kafka({ clientId: 'demo', brokers: [...kafka.brokers], logLevel: logLevel.NOTHING, connectionTimeout: 1_000, retry: RETRY });
const reader = (groupId: string) =>
  client.consumer({
    groupId,
    maxWaitTimeInMs: 100,
    sessionTimeout: 6_000,
    rebalanceTimeout: 6_000,
    heartbeatInterval: 1_000,
    retry: { ...RETRY, restartOnFailure: async () => !stopping },
  });
const consumer = reader('demo-reader');
await consumer.connect();
await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
let consumed = 0;
let lastRecord = '';
await consumer.run({
  eachMessage: async ({ message }) => {
    consumed += 1;
    lastRecord = `${message.key?.toString()} ${message.value?.toString().slice(0, 90)}`;
    // A device's state report after a command: devices/{id}/state, stream 'state' in the record's headers.
    if (message.headers?.stream?.toString() === 'state') onStateReport(message.value?.toString() ?? '');
  },
});

// Commands: produced to COMMANDS_TOPIC keyed by the device id, with a command-id header. Each line below is
// one of them, with what a newcomer should see happen.
interface DemoCommand {
  readonly id: string;
  readonly deviceId: string;
  readonly name: string;
  readonly value: string;
  readonly expect: string;
  producedAt?: number;
  /** The device's state report `ts`: when it acted. */
  actedAt?: number;
  deliveredAt?: number;
  /** The last receipt's status, and its reason if it has one. */
  status?: string;
  reason?: string | undefined;
}

function demoCommands(): DemoCommand[] {
  // The sim's first four devices are one of each kind (firmware-sim/fleet.ts); ids do not depend on the seed.
  const fleet = createFleet({ devices: Math.min(devices, 4), seed: 1 });
  const idOf = (kind: DeviceKind): string | undefined => fleet.find((device) => device.kind === kind)?.id;
  const command = (id: string, deviceId: string | undefined, name: string, value: unknown, expect: string): DemoCommand[] =>
    deviceId === undefined ? [] : [{ id, deviceId, name, value: typeof value === 'string' ? value : JSON.stringify(value), expect }];
  return [
    ...command('demo-dim', idOf('street-lamp'), 'dim', { name: 'dim', payload: { level: 40 }, ttl_s: 60 }, 'the street lamp dims to 40 %'),
    ...command('demo-valve', idOf('water-meter'), 'valve', { name: 'valve', payload: { open: false }, ttl_s: 60 }, 'the water meter closes its valve'),
    ...command('demo-reboot', idOf('electricity-meter'), 'reboot', { name: 'reboot', payload: {}, ttl_s: 60 }, 'delivered, but the meter does not know it'),
    ...command('demo-offline', 'sl-999999', 'on', { name: 'on', payload: {}, ttl_s: 2 }, 'no such device is connected: it expires after 2 s'),
    ...command('demo-malformed', idOf('street-lamp'), 'dim', '{"name": "dim", "payload": ', 'not JSON: rejected by the gateway'),
  ];
}

const commands = demoCommands();
// Early, so every receipt is back before Kafka goes down a third of the way through.
const commandsAtS = Math.max(1, Math.floor(durationS / 6));
const producer = client.producer();
await producer.connect();
const receipts = reader('demo-receipts');
await receipts.connect();
await receipts.subscribe({ topic: RECEIPTS_TOPIC, fromBeginning: true });
await receipts.run({
  eachMessage: async ({ message }) => onReceipt(message.value?.toString() ?? ''),
});

/** A receipt: {command_id, device_id, status, at, path?, reason?}, keyed by the device, on RECEIPTS_TOPIC. */
function onReceipt(text: string): void {
  const receipt = parseJson(text);
  const command = commands.find((candidate) => candidate.id === receipt.command_id);
  if (command === undefined || typeof receipt.status !== 'string') return;
  const at = Date.parse(String(receipt.at));
  command.status = receipt.status;
  command.reason = typeof receipt.reason === 'string' ? receipt.reason : undefined;
  if (receipt.status === 'delivered') command.deliveredAt = at;
  const detail = command.reason ?? (typeof receipt.path === 'string' ? `via ${receipt.path}` : '');
  say(`${stamp()}  << receipt ${command.id.padEnd(14)} ${receipt.status.padEnd(9)} ${since(command, at).padEnd(23)}  ${detail.slice(0, 80)}`.trimEnd());
}

/** A device's state report, on the records topic: {device_id, kind, command, ...its new state or error, ts}. */
function onStateReport(text: string): void {
  const { device_id: deviceId, kind: _kind, ts, ...state } = parseJson(text);
  const command = commands.find((candidate) => candidate.deviceId === deviceId && candidate.name === state.command && candidate.producedAt !== undefined);
  if (command === undefined) return;
  command.actedAt = Date.parse(String(ts));
  say(`${stamp()}  << state   ${String(deviceId).padEnd(14)} ${JSON.stringify(state)}  (device acted ${since(command, command.actedAt)})`);
}

function parseJson(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

async function sendCommands(): Promise<void> {
  say(`--- commands: Kafka -> gateway -> device -> PUBACK -> receipt -> Kafka, and the device's new state ---`);
  for (const command of commands) {
    command.producedAt = Date.now();
    say(`${stamp()}  >> command ${command.id.padEnd(14)} to ${command.deviceId}: ${command.value}  (${command.expect})`);
    await producer.send({ topic: COMMANDS_TOPIC, messages: [{ key: command.deviceId, value: command.value, headers: { 'command-id': command.id } }] });
  }
}

/** Milliseconds from producing the command to `at` (all clocks here are this host's). */
function msAfterProduce(command: DemoCommand, at: number | undefined): number | undefined {
  return command.producedAt === undefined || at === undefined || Number.isNaN(at) ? undefined : Math.max(0, at - command.producedAt);
}

function since(command: DemoCommand, at: number): string {
  const ms = msAfterProduce(command, at);
  return ms === undefined ? '' : `+${ms} ms after produce`;
}

function stamp(): string {
  return `t=${String(Math.round((Date.now() - startedAt) / 1000)).padStart(3)}s`;
}

say(`starting firmware-sim: ${values.devices} devices, ${values.rate} msg/s for ${durationS} s ...\n`);
const sim = spawn(
  process.execPath,
  [
    SIM,
    'mqtt',
    '--url',
    `mqtt://127.0.0.1:${gateway.mqttPort}`,
    '--devices',
    String(values.devices),
    '--rate',
    String(values.rate),
    '--duration',
    String(durationS),
    // Each device subscribes to devices/{id}/commands/# and reports its state after a command.
    '--commands',
  ],
  {
    stdio: ['ignore', 'pipe', 'ignore'],
  },
);
let simSummary = '';
sim.stdout.on('data', (chunk: Buffer) => {
  simSummary += chunk.toString('utf8');
});

async function metric(name: string): Promise<number> {
  const text = await gateway.metricsText();
  return text
    .split('\n')
    .filter((line) => line.startsWith(name))
    .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
}

const startedAt = Date.now();
let outage: 'before' | 'down' | 'after' = 'before';
let commandsSent = false;
const ticker = setInterval(() => {
  void (async () => {
    const elapsedS = Math.round((Date.now() - startedAt) / 1000);
    if (!commandsSent && elapsedS >= commandsAtS) {
      commandsSent = true;
      void sendCommands().catch((error: unknown) => say(`--- commands could not be produced: ${String(error)} ---`));
    }
    if (outage === 'before' && elapsedS >= durationS / 3) {
      outage = 'down';
      await kafka.down('all');
      say('--- Kafka is down now: the gateway keeps acknowledging and buffers ---');
    } else if (outage === 'down' && elapsedS >= durationS / 3 + 6) {
      outage = 'after';
      await kafka.up('all');
      say('--- Kafka is back: the buffer drains ---');
    }
    const ready = await gateway.readiness();
    const [accepted, connected, sent] = await Promise.all([
      metric('iotgw_ingress_accepted_total'),
      metric('iotgw_mqtt_connected_clients'),
      metric('iotgw_kafka_sent_records_total'),
    ]);
    say(
      `t=${String(elapsedS).padStart(3)}s  devices ${connected}  accepted ${accepted}  buffered ${ready.buffer.depthRecords}  Kafka ${ready.kafka.padEnd(9)} sent ${sent}  read back ${consumed}`,
    );
  })().catch(() => undefined);
}, 1000);

const stop = async () => {
  stopping = true;
  clearInterval(ticker);
  sim.kill('SIGINT');
  await consumer.disconnect().catch(() => undefined);
  await receipts.disconnect().catch(() => undefined);
  await producer.disconnect().catch(() => undefined);
  await gateway.kill('SIGTERM');
  await kafka.stop();
  rmSync(dir, { recursive: true, force: true });
};
process.once('SIGINT', () => {
  void stop().then(() => process.exit(130));
});

await new Promise((resolve) => sim.once('exit', resolve));
// Let the last records reach Kafka before the summary.
for (let waited = 0; waited < 15_000 && (await gateway.readiness()).buffer.depthRecords > 0; waited += 250) await new Promise((r) => setTimeout(r, 250));
await new Promise((resolve) => setTimeout(resolve, 1500));
clearInterval(ticker);
say(`\nfirmware-sim summary:\n${simSummary.trim()}`);
say(`\nrecords read back from Kafka: ${consumed}; the last one: ${lastRecord}`);
say('\ncommands (latency: from producing the command to Kafka until the device acted, and until the delivered receipt):');
for (const command of commands) {
  const acted = msAfterProduce(command, command.actedAt);
  const delivered = msAfterProduce(command, command.deliveredAt);
  const detail = delivered === undefined ? (command.reason ?? '') : `device acted after ${acted ?? '?'} ms, delivered receipt after ${delivered} ms`;
  say(`  ${command.id.padEnd(14)} ${command.deviceId.padEnd(10)} ${(command.status ?? 'no receipt').padEnd(10)} ${detail.slice(0, 100)}`);
}
await stop();
