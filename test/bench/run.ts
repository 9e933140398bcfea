// `npm run bench`: measures the gateway as deployed (its own process, real SQLite file with
// synchronous=FULL, librdkafka's mock cluster) under load from firmware-sim (its own process).
// Prints figures; asserts nothing about speed. Scenarios:
//   1. ingest: 1,000 devices publish QoS 1 as fast as their PUBACKs allow (one reading in flight each)
//   2. latency: 2,500 msg/s; publish -> consumed from Kafka, p50/p99 (read by a kafkajs consumer here)
//   3. drain: Kafka down while devices publish, then up with live traffic at 2,500 msg/s
//   4. peak RSS of the gateway process over the whole run
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import kafkajs from 'kafkajs';
import { type GatewayProcess, launchGateway, writeGatewayConfig } from '../helpers/gateway-process.ts';
import { type KafkaMock, startKafkaMock } from '../helpers/kafka-mock.ts';

const { Kafka, logLevel } = kafkajs;
const SIM = fileURLToPath(new URL('../../dist/firmware-sim/cli.js', import.meta.url));
const TOPIC = 'bench.telemetry';

const { values: args } = parseArgs({
  options: {
    devices: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '20' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  process.stdout.write('npm run bench [-- --devices N --seconds S]   (defaults 1000 devices, 20 s per scenario)\n');
  process.exit(0);
}
const DEVICES = Number(args.devices);
const SECONDS = Number(args.seconds);
const INGEST_INFLIGHT = 8;

interface SimSummary {
  published: number;
  acked: number;
  failed: number;
  ackedPerSecond: number;
  activeMs: number;
  ackLatencyMs: { p50: number; p99: number; max: number };
}

function runSim(port: number, rate: number, seconds: number, seed: number, inflight = 1): Promise<SimSummary> {
  const child = spawn(
    process.execPath,
    [
      SIM,
      'mqtt',
      ...['--url', `mqtt://127.0.0.1:${port}`, '--devices', String(DEVICES), '--rate', String(rate), '--duration', String(seconds)],
      ...['--seed', String(seed), '--inflight', String(inflight), '--json', '--quiet'],
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString('utf8');
  });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => {
      try {
        resolve(JSON.parse(out) as SimSummary);
      } catch {
        reject(new Error(`firmware-sim exited ${code} without a JSON summary: ${out.slice(0, 500)}`));
      }
    });
  });
}

/** VmHWM (peak) or VmRSS (now) of a process, in MB. */
function rssMb(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(status);
  return match === null ? Number.NaN : Math.round(Number(match[1]) / 1024);
}

async function metric(gateway: GatewayProcess, name: string): Promise<number> {
  const text = await gateway.metricsText();
  let total = 0;
  for (const line of text.split('\n'))
    if (line.startsWith(name) && (line[name.length] === ' ' || line[name.length] === '{')) total += Number(line.split(' ').at(-1));
  return total;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

/** Consumes the topic live and records, per message, now - the reading's own timestamp (set just before publish). */
async function latencyConsumer(kafka: KafkaMock) {
  const client = new Kafka({ clientId: 'bench', brokers: [...kafka.brokers], logLevel: logLevel.NOTHING });
  const consumer = client.consumer({ groupId: `bench-${Date.now()}`, maxWaitTimeInMs: 5, minBytes: 1 });
  await consumer.connect();
  await consumer.subscribe({ topic: TOPIC, fromBeginning: false });
  const samples: number[] = [];
  let recording = false;
  await consumer.run({
    eachBatch: async ({ batch }) => {
      const now = Date.now();
      if (!recording) return;
      for (const message of batch.messages) {
        const ts = Number(message.timestamp);
        if (ts > 0) samples.push(now - ts);
      }
    },
  });
  return {
    start() {
      recording = true;
    },
    async stop() {
      recording = false;
      await consumer.disconnect();
      return [...samples].sort((a, b) => a - b);
    },
  };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'iotgw-bench-'));
  const kafka = await startKafkaMock({ brokers: 3, topics: [{ name: TOPIC, partitions: 6 }] });
  const configPath = writeGatewayConfig(dir, {
    gateway_id: 'bench',
    log: { level: 'info' },
    mqtt: { host: '127.0.0.1', port: 0 },
    http: { port: 0 },
    kafka: { brokers: [...kafka.brokers], topic: TOPIC, routes: [{ stream: 'telemetry', event_time_field: 'ts' }], retry_initial_ms: 100, retry_max_ms: 1000 },
    buffer: { path: join(dir, 'buffer.db') },
  });
  const gateway = await launchGateway(configPath);
  const pid = gateway.child.pid as number;
  const say = (line: string) => process.stdout.write(`${line}\n`);
  say(`iotgw bench: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), node ${process.version}, ${DEVICES} devices, ${SECONDS} s per scenario`);
  say('gateway: own process, SQLite WAL synchronous=FULL with group commit, acks=all to librdkafka mock cluster (3 brokers, 6 partitions)');

  try {
    // 1. Max sustained ingest. Devices are paced by their PUBACKs; with one reading in flight per device
    //    the simulator (mqtt.js, same 2 cores) spends more CPU per message than the gateway, so each
    //    device keeps up to INGEST_INFLIGHT readings in flight here.
    const sentBefore = await metric(gateway, 'iotgw_kafka_sent_records_total');
    const commitsBefore = await metric(gateway, 'iotgw_buffer_commits_total');
    const startedAt = Date.now();
    const ingest = await runSim(gateway.mqttPort, 0, SECONDS, 1, INGEST_INFLIGHT);
    const elapsedS = (Date.now() - startedAt) / 1000;
    const sent = (await metric(gateway, 'iotgw_kafka_sent_records_total')) - sentBefore;
    const commits = (await metric(gateway, 'iotgw_buffer_commits_total')) - commitsBefore;
    say('');
    say(`1. max sustained QoS 1 ingest (every record committed with fsync before its PUBACK; ${INGEST_INFLIGHT} readings in flight per device)`);
    say(
      `   acknowledged: ${Math.round(ingest.ackedPerSecond)} msg/s (${ingest.acked} in ${(ingest.activeMs / 1000).toFixed(1)} s, ${ingest.failed} devices failed)`,
    );
    say(`   PUBACK latency: p50 ${ingest.ackLatencyMs.p50} ms, p99 ${ingest.ackLatencyMs.p99} ms`);
    say(`   group commits: ${commits} (${(ingest.acked / Math.max(1, commits)).toFixed(0)} records per fsync)`);
    say(`   delivered to Kafka meanwhile: ${Math.round(sent / elapsedS)} msg/s; buffer depth at the end ${(await gateway.readiness()).buffer.depthRecords}`);
    while ((await gateway.readiness()).buffer.depthRecords > 0) await sleep(200);

    // 2. Latency at the reference rate.
    const consumer = await latencyConsumer(kafka);
    await sleep(2000);
    consumer.start();
    const steady = await runSim(gateway.mqttPort, 2500, SECONDS, 2);
    await sleep(1000);
    const latencies = await consumer.stop();
    say('');
    say('2. end-to-end latency at 2,500 msg/s (reading created -> consumed from Kafka; includes the consumer fetch)');
    say(`   p50 ${percentile(latencies, 50)} ms, p99 ${percentile(latencies, 99)} ms, max ${latencies.at(-1)} ms over ${latencies.length} records`);
    say(`   PUBACK latency: p50 ${steady.ackLatencyMs.p50} ms, p99 ${steady.ackLatencyMs.p99} ms (${Math.round(steady.ackedPerSecond)} msg/s acknowledged)`);
    say(`   gateway RSS at the end of this scenario: ${rssMb(pid, 'VmRSS')} MB`);

    // 3. Drain after an outage, with live traffic continuing.
    await kafka.down('all');
    await runSim(gateway.mqttPort, 0, Math.max(5, Math.round(SECONDS / 2)), 3);
    const backlog = (await gateway.readiness()).buffer.depthRecords;
    const live = runSim(gateway.mqttPort, 2500, SECONDS * 2, 4);
    await sleep(1000);
    const drainStartedAt = Date.now();
    const sentAtUp = await metric(gateway, 'iotgw_kafka_sent_records_total');
    await kafka.up('all');
    let drainedAfterS = Number.NaN;
    while (Date.now() - drainStartedAt < SECONDS * 2000) {
      if ((await gateway.readiness()).buffer.depthRecords < 2500) {
        drainedAfterS = (Date.now() - drainStartedAt) / 1000;
        break;
      }
      await sleep(100);
    }
    const windowS = Number.isNaN(drainedAfterS) ? (Date.now() - drainStartedAt) / 1000 : drainedAfterS;
    const drainedRecords = (await metric(gateway, 'iotgw_kafka_sent_records_total')) - sentAtUp;
    const liveReport = await live;
    say('');
    say('3. drain after an outage (backlog built with Kafka down, then Kafka up while 2,500 msg/s keep arriving)');
    say(
      `   backlog: ${backlog} records; ${Number.isNaN(drainedAfterS) ? `not drained after ${windowS.toFixed(0)} s` : `drained in ${windowS.toFixed(1)} s`}: ${Math.round(drainedRecords / windowS)} msg/s to Kafka (live traffic: ${Math.round(liveReport.ackedPerSecond)} msg/s acknowledged)`,
    );
    say('');
    say(`4. gateway peak RSS over all scenarios: ${rssMb(pid, 'VmHWM')} MB`);
  } finally {
    await gateway.kill('SIGTERM');
    await kafka.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
