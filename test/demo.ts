// `npm run demo`: the whole flow in one command, for a newcomer. Starts the test Kafka cluster
// (librdkafka's mock), the gateway (its own process, as deployed) and a simulated fleet, and prints
// a live line per second: devices -> gateway -> buffer -> Kafka. Ctrl-C stops everything.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import kafkajs from 'kafkajs';
import { launchGateway, writeGatewayConfig } from './helpers/gateway-process.ts';
import { startKafkaMock } from './helpers/kafka-mock.ts';

const { Kafka, logLevel } = kafkajs;
const SIM = fileURLToPath(new URL('../dist/firmware-sim/cli.js', import.meta.url));
const TOPIC = 'demo.telemetry';

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
Halfway through, Kafka is taken down for a few seconds: watch the buffer fill and drain.\n`);
  process.exit(0);
}
const durationS = Number(values.duration);

const dir = mkdtempSync(join(tmpdir(), 'iotgw-demo-'));
const say = (line: string) => process.stdout.write(`${line}\n`);
say('starting the test Kafka cluster (librdkafka mock, 3 brokers) ...');
const kafka = await startKafkaMock({ brokers: 3, topics: [{ name: TOPIC, partitions: 6 }] });
const configPath = writeGatewayConfig(dir, {
  gateway_id: 'demo',
  log: { level: 'info' },
  mqtt: { host: '127.0.0.1', port: 0, allow_anonymous: true },
  http: { port: 0 },
  kafka: { brokers: [...kafka.brokers], topic: TOPIC, routes: [{ stream: 'telemetry', event_time_field: 'ts' }], retry_initial_ms: 200, retry_max_ms: 1000 },
  buffer: { path: join(dir, 'buffer.db') },
});
say('starting the gateway ...');
const gateway = await launchGateway(configPath);
say(`gateway: MQTT on 127.0.0.1:${gateway.mqttPort}, ops on http://127.0.0.1:${gateway.httpPort}/metrics, Kafka topic ${TOPIC}`);

const client = new Kafka({ clientId: 'demo', brokers: [...kafka.brokers], logLevel: logLevel.NOTHING });
const consumer = client.consumer({ groupId: 'demo-reader', maxWaitTimeInMs: 100 });
await consumer.connect();
await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
let consumed = 0;
let lastRecord = '';
await consumer.run({
  eachMessage: async ({ message }) => {
    consumed += 1;
    lastRecord = `${message.key?.toString()} ${message.value?.toString().slice(0, 90)}`;
  },
});

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
const ticker = setInterval(() => {
  void (async () => {
    const elapsedS = Math.round((Date.now() - startedAt) / 1000);
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
  clearInterval(ticker);
  sim.kill('SIGINT');
  await consumer.disconnect().catch(() => undefined);
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
await stop();
