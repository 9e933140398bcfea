// `npm run bench`: measures the gateway as deployed (its own process, real SQLite file with
// synchronous=FULL, librdkafka's mock cluster) under load from firmware-sim (its own process).
// Prints figures; asserts nothing about speed. Scenarios:
//   1. ingest: 1,000 devices publish QoS 1 as fast as their PUBACKs allow (one reading in flight each)
//   2. latency: 2,500 msg/s; publish -> consumed from Kafka, p50/p99 (read by a kafkajs consumer here)
//   3. drain: Kafka down while devices publish, then up with live traffic at 2,500 msg/s
//   4. LoRaWAN: Semtech UDP PUSH_DATA (8 frames per datagram, 4 gateways, 1,000 ABP devices) -> MIC,
//      counter, decrypt, Cayenne LPP -> committed to the buffer, at rising offered rates (Kafka down, so
//      the figure is the LoRaWAN path alone)
//   5. peak RSS of the gateway process over the whole run
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import kafkajs from 'kafkajs';
import { encodeDataFrame } from '../../src/ingress/lorawan/frame-crypto.ts';
import { encodePushData, type Rxpk } from '../../src/ingress/semtech-udp/packets.ts';
import { type GatewayProcess, launchGateway, writeGatewayConfig } from '../helpers/gateway-process.ts';
import { type KafkaMock, startKafkaMock } from '../helpers/kafka-mock.ts';

const { Kafka, logLevel } = kafkajs;
const SIM = fileURLToPath(new URL('../../dist/firmware-sim/cli.js', import.meta.url));
const TOPIC = 'bench.telemetry';

const { values: args } = parseArgs({
  options: {
    devices: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '20' },
    only: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  process.stdout.write('npm run bench [-- --devices N --seconds S --only mqtt|lorawan]   (defaults 1000 devices, 20 s per scenario, all scenarios)\n');
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
    if (line.startsWith(name) && (line[name.length] === ' ' || line[name.length] === '{' || name.endsWith(','))) total += Number(line.split(' ').at(-1));
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

/** Deterministic ABP devices for the LoRaWAN scenario (keys from a hash, so nothing secret is involved). */
function benchLorawanDevices(count: number) {
  const key = (label: string, index: number) => createHash('sha256').update(`${label}-${index}`).digest().subarray(0, 16);
  return Array.from({ length: count }, (_, index) => ({
    devEui: `70b3d57e${index.toString(16).padStart(8, '0')}`,
    devAddr: (0x26000000 + index).toString(16),
    nwkSKey: key('nwk', index),
    appSKey: key('app', index),
  }));
}

async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

/**
 * Offers LoRaWAN uplinks at `rate` frames/s for `seconds` as PUSH_DATA datagrams of 8 rxpk from 4 gateways,
 * each frame a fresh FCnt of one of the devices (round robin). Returns the frames sent.
 */
async function offerLorawan(port: number, devices: ReturnType<typeof benchLorawanDevices>, fcnts: number[], rate: number, seconds: number): Promise<number> {
  const socket = createSocket('udp4');
  socket.connect(port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  const gateways = ['b827ebfffe000001', 'b827ebfffe000002', 'b827ebfffe000003', 'b827ebfffe000004'];
  const lpp = Buffer.from('0167011002880000007b03020159', 'hex'); // temperature, energy-ish analog values
  let sent = 0;
  let next = 0;
  const startedAt = performance.now();
  while (performance.now() - startedAt < seconds * 1000) {
    const due = Math.floor(((performance.now() - startedAt) / 1000) * rate);
    while (sent + 8 <= due) {
      const rxpk: Rxpk[] = [];
      for (let slot = 0; slot < 8; slot++) {
        const index = next++ % devices.length;
        const device = devices[index] as (typeof devices)[number];
        const fcnt = fcnts[index] ?? 0;
        fcnts[index] = fcnt + 1;
        const data = encodeDataFrame({ mtype: 'UnconfirmedDataUp', fcnt32: fcnt, fport: 2, payload: lpp, ...device });
        rxpk.push({
          time: null,
          tmms: null,
          tmst: (sent * 1000) >>> 0,
          frequencyHz: 868_100_000,
          chan: 0,
          rfch: 0,
          crcStatus: 1,
          modulation: 'LORA',
          datr: 'SF7BW125',
          codr: '4/5',
          rssi: -70,
          rssis: null,
          lsnr: 9.5,
          size: data.length,
          data,
        });
      }
      socket.send(encodePushData(2, randomBytes(2), gateways[(sent / 8) % gateways.length] as string, { rxpk }));
      sent += 8;
    }
    await sleep(5);
  }
  socket.close();
  return sent;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'iotgw-bench-'));
  const lorawanDevices = benchLorawanDevices(1000);
  const lorawanPort = await freeUdpPort();
  const kafka = await startKafkaMock({ brokers: 3, topics: [{ name: TOPIC, partitions: 6 }] });
  const configPath = writeGatewayConfig(dir, {
    gateway_id: 'bench',
    log: { level: 'info' },
    mqtt: { host: '127.0.0.1', port: 0 },
    http: { port: 0 },
    kafka: { brokers: [...kafka.brokers], topic: TOPIC, routes: [{ stream: 'telemetry', event_time_field: 'ts' }], retry_initial_ms: 100, retry_max_ms: 1000 },
    buffer: { path: join(dir, 'buffer.db') },
    lorawan: {
      enabled: true,
      udp: { host: '127.0.0.1', port: lorawanPort },
      devices: lorawanDevices.map((device) => ({
        dev_eui: device.devEui,
        dev_addr: device.devAddr,
        nwk_s_key: device.nwkSKey.toString('hex'),
        app_s_key: device.appSKey.toString('hex'),
        codec: 'cayenne-lpp' as const,
      })),
    },
  });
  const gateway = await launchGateway(configPath);
  const pid = gateway.child.pid as number;
  const say = (line: string) => process.stdout.write(`${line}\n`);
  say(`iotgw bench: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), node ${process.version}, ${DEVICES} devices, ${SECONDS} s per scenario`);
  say('gateway: own process, SQLite WAL synchronous=FULL with group commit, acks=all to librdkafka mock cluster (3 brokers, 6 partitions)');

  try {
    if (args.only !== 'lorawan') {
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
    }

    if (args.only !== 'mqtt') {
      // 4. LoRaWAN uplinks: UDP -> dedup -> MIC/counter/decrypt/LPP -> group commit, at rising offered rates.
      say('');
      say(
        '4. LoRaWAN uplinks through Semtech UDP -> MIC, counter, decrypt, Cayenne LPP -> committed to the buffer (Kafka down; 1,000 ABP devices, 4 gateways, 8 frames per datagram)',
      );
      await kafka.down('all');
      const fcnts: number[] = [];
      for (const rate of [1000, 5000, 10000, 20000]) {
        const acceptedBefore = await metric(gateway, 'iotgw_ingress_accepted_total{source="semtech-udp"}');
        const rejectedBefore = await metric(gateway, 'iotgw_ingress_rejected_total{source="semtech-udp",');
        const seconds = Math.max(5, Math.round(SECONDS / 2));
        const offered = await offerLorawan(lorawanPort, lorawanDevices, fcnts, rate, seconds);
        // Let the last frames' dedup windows close and their commits land: wait until the count stops moving.
        let accepted = -1;
        for (let settled = 0; settled < 3; await sleep(500)) {
          const now = (await metric(gateway, 'iotgw_ingress_accepted_total{source="semtech-udp"}')) - acceptedBefore;
          settled = now === accepted ? settled + 1 : 0;
          accepted = now;
        }
        const rejected = (await metric(gateway, 'iotgw_ingress_rejected_total{source="semtech-udp",')) - rejectedBefore;
        say(
          `   offered ${rate} frames/s for ${seconds} s: committed ${Math.round(accepted / seconds)} frames/s (${accepted} of ${offered}; ${rejected} rejected, ${offered - accepted - rejected} lost in UDP socket buffers)`,
        );
        if (accepted < offered * 0.9) {
          const lines = (await gateway.metricsText()).split('\n').filter((line) => line.includes('semtech-udp') && !line.startsWith('#'));
          say(`   stopping here; the gateway's semtech-udp counters: ${lines.join('; ')}`);
          break;
        }
      }
    }

    say('');
    say(`5. gateway peak RSS over all scenarios: ${rssMb(pid, 'VmHWM')} MB`);
  } finally {
    await gateway.kill('SIGTERM');
    await kafka.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
