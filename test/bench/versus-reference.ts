// The headline figures, each beside the same figure for the reference pipeline (reference-pipeline.ts)
// measured in the same run, as a ratio: absolute figures swing 2x between runs and machines here.
//   - sustained rate: a closed loop (every device keeps a few readings in flight, paced by PUBACKs), with Kafka
//     delivering; the rate that was both acknowledged and delivered in the same window (the lower of the two),
//     and how far the backlog grew meanwhile;
//   - CPU per record: every thread of every process of the pipeline, from the first publish until the last
//     record is in Kafka, divided by the records delivered;
//   - end-to-end latency at 2,500 msg/s: reading created (its `ts`) -> consumed from Kafka, p50/p99/p99.9;
//   - peak RSS.
// The gateway and the reference run alternately, three rounds, medians reported. Then the floor: aedes alone
// (the broker the gateway embeds) under the same closed loop, acknowledged rate and CPU per message.
import kafkajs from 'kafkajs';
import type { GatewayProcess } from '../helpers/gateway-process.ts';
import { topicOffsets } from '../helpers/kafka-mock.ts';
import { cpuSeconds, percentile, rssMb, runSim, say, sleep, startAedesAlone, type UnitNode } from './bench-tools.ts';
import { missingReferenceTools, startReferencePipeline } from './reference-pipeline.ts';

const { Kafka, logLevel } = kafkajs;

export const REFERENCE_TOPIC = 'bench.reference';

export interface VersusOptions {
  readonly devices: number;
  readonly seconds: number;
  readonly rounds: number;
  /** Readings in flight per device in the closed loop. */
  readonly inflight: number;
  readonly brokers: readonly string[];
  /** The gateway's topic for device readings. */
  readonly topic: string;
  /** Node flags for aedes alone (the unit's), measured as the floor of what any aedes-based gateway costs. */
  readonly aedesNode: UnitNode;
}

interface Pipeline {
  readonly label: string;
  readonly mqttPort: number;
  readonly topic: string;
  cpuSeconds(): number;
}

interface ClosedLoop {
  readonly ackedPerS: number;
  readonly deliveredPerS: number;
  /** min(acknowledged, delivered) per second over the same window. */
  readonly sustainedPerS: number;
  /** Acknowledged but not yet in Kafka when the load stopped. */
  readonly backlogGrowth: number;
  readonly cpuUsPerRecord: number;
  readonly failedDevices: number;
}

/** Runs the comparison; prints the figures. Returns false (and says why) when the reference tools are missing. */
export async function benchVersusReference(gateway: GatewayProcess, options: VersusOptions): Promise<boolean> {
  const missing = missingReferenceTools();
  if (missing.length > 0) {
    say(`reference pipeline skipped: ${missing.join(', ')} not installed (sudo apt-get install mosquitto mosquitto-clients kcat)`);
    return false;
  }
  const reference = await startReferencePipeline(options.brokers, REFERENCE_TOPIC);
  const gatewayPid = gateway.child.pid as number;
  const subject: Pipeline = { label: 'gateway', mqttPort: gateway.mqttPort, topic: options.topic, cpuSeconds: () => cpuSeconds(gatewayPid) };
  const yardstick: Pipeline = { label: 'reference', mqttPort: reference.mqttPort, topic: REFERENCE_TOPIC, cpuSeconds: () => reference.cpuSeconds() };
  try {
    say('');
    say(
      `A. gateway vs reference pipeline (mosquitto, mosquitto_sub -v 'devices/#' | kcat -P, acks=all; not durable), ${options.rounds} interleaved rounds, medians`,
    );
    const runs: { gateway: ClosedLoop[]; reference: ClosedLoop[] } = { gateway: [], reference: [] };
    for (let round = 0; round < options.rounds; round++) {
      runs.gateway.push(await closedLoop(subject, options, 100 + round));
      runs.reference.push(await closedLoop(yardstick, options, 200 + round));
    }
    const g = medianOf(runs.gateway);
    const r = medianOf(runs.reference);
    table(
      [
        ['sustained rate (acknowledged and delivered, same window), msg/s', g.sustainedPerS, r.sustainedPerS, 'higher'],
        ['  acknowledged, msg/s', g.ackedPerS, r.ackedPerS, 'higher'],
        ['  delivered to Kafka, msg/s', g.deliveredPerS, r.deliveredPerS, 'higher'],
        ['  backlog grown in the window, records', g.backlogGrowth, r.backlogGrowth, 'lower'],
        ['CPU per record (all threads, all processes), µs', g.cpuUsPerRecord, r.cpuUsPerRecord, 'lower'],
      ],
      `closed loop: ${options.devices} devices, ${options.inflight} readings in flight each, ${options.seconds} s`,
    );
    if (g.failedDevices + r.failedDevices > 0) say(`   devices that failed: gateway ${g.failedDevices}, reference ${r.failedDevices}`);
    await aedesFloor(options, g, r);

    const gLatency = await latencyAt(subject, options, 2500);
    const rLatency = await latencyAt(yardstick, options, 2500);
    table(
      [
        ['end-to-end p50, ms', gLatency.p50, rLatency.p50, 'lower'],
        ['end-to-end p99, ms', gLatency.p99, rLatency.p99, 'lower'],
        ['end-to-end p99.9, ms', gLatency.p999, rLatency.p999, 'lower'],
      ],
      `latency at 2,500 msg/s (reading created -> consumed from Kafka; ${gLatency.count} and ${rLatency.count} records)`,
    );
    const rss = reference.rssMb();
    table([['peak RSS, MB', rssMb(gatewayPid, 'VmHWM'), rss.peak, 'lower']], 'memory (reference: its three processes together)');
    return true;
  } finally {
    await reference.stop();
  }
}

async function closedLoop(pipeline: Pipeline, options: VersusOptions, seed: number): Promise<ClosedLoop> {
  const before = (await topicOffsets(options.brokers, pipeline.topic)).produced;
  const cpuBefore = pipeline.cpuSeconds();
  const sim = await runSim({ port: pipeline.mqttPort, devices: options.devices, rate: 0, seconds: options.seconds, seed, inflight: options.inflight });
  const atEnd = (await topicOffsets(options.brokers, pipeline.topic)).produced - before;
  // CPU until the last acknowledged record is in Kafka (or 60 s), so work deferred past the window is counted.
  let delivered = atEnd;
  for (let waited = 0; delivered < sim.acked && waited < 60_000; waited += 250) {
    await sleep(250);
    delivered = (await topicOffsets(options.brokers, pipeline.topic)).produced - before;
  }
  const cpu = pipeline.cpuSeconds() - cpuBefore;
  const activeS = Math.max(0.001, sim.activeMs / 1000);
  const ackedPerS = sim.acked / activeS;
  const deliveredPerS = atEnd / activeS;
  return {
    ackedPerS,
    deliveredPerS,
    sustainedPerS: Math.min(ackedPerS, deliveredPerS),
    backlogGrowth: Math.max(0, sim.acked - atEnd),
    cpuUsPerRecord: (cpu * 1e6) / Math.max(1, delivered),
    failedDevices: sim.failed,
  };
}

/**
 * The floor: aedes alone, the broker the gateway embeds, with no storage and no Kafka, under the same closed
 * loop. No aedes-based gateway acknowledges faster or spends less CPU per message than this, so it bounds
 * what the ratios above can reach.
 */
async function aedesFloor(options: VersusOptions, g: ClosedLoop, r: ClosedLoop): Promise<void> {
  const runs: { ackedPerS: number; cpuUs: number }[] = [];
  for (let round = 0; round < options.rounds; round++) {
    const aedes = await startAedesAlone(options.aedesNode);
    try {
      const cpuBefore = cpuSeconds(aedes.pid);
      const sim = await runSim({
        port: aedes.port,
        devices: options.devices,
        rate: 0,
        seconds: options.seconds,
        seed: 400 + round,
        inflight: options.inflight,
      });
      runs.push({ ackedPerS: sim.acked / Math.max(0.001, sim.activeMs / 1000), cpuUs: ((cpuSeconds(aedes.pid) - cpuBefore) * 1e6) / Math.max(1, sim.acked) });
    } finally {
      aedes.stop();
    }
  }
  const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;
  const acked = median(runs.map((run) => run.ackedPerS));
  const cpuUs = median(runs.map((run) => run.cpuUs));
  say(`   floor: aedes alone (the broker the gateway embeds; no storage, no Kafka), same closed loop, ${options.rounds} rounds, medians`);
  say(
    `     acknowledged ${format(acked)} msg/s (${(acked / r.sustainedPerS).toFixed(2)}x the reference; the gateway's sustained rate is ${(g.sustainedPerS / acked).toFixed(2)}x it)`,
  );
  say(
    `     CPU ${format(cpuUs)} µs per message (${(cpuUs / r.cpuUsPerRecord).toFixed(2)}x the reference; the gateway's CPU per record is ${(g.cpuUsPerRecord / cpuUs).toFixed(2)}x it)`,
  );
}

async function latencyAt(pipeline: Pipeline, options: VersusOptions, rate: number) {
  const client = new Kafka({ clientId: 'bench-latency', brokers: [...options.brokers], logLevel: logLevel.NOTHING });
  const consumer = client.consumer({ groupId: `bench-latency-${pipeline.label}-${Date.now()}`, maxWaitTimeInMs: 5, minBytes: 1 });
  await consumer.connect();
  await consumer.subscribe({ topic: pipeline.topic, fromBeginning: false });
  const samples: number[] = [];
  let recording = false;
  await consumer.run({
    eachBatch: async ({ batch }) => {
      const now = Date.now();
      if (!recording) return;
      for (const message of batch.messages) {
        const created = createdAtMs(message.value);
        if (created !== null) samples.push(now - created);
      }
    },
  });
  await sleep(2000);
  recording = true;
  await runSim({ port: pipeline.mqttPort, devices: options.devices, rate, seconds: options.seconds, seed: 300 });
  await sleep(1000);
  recording = false;
  await consumer.disconnect();
  samples.sort((a, b) => a - b);
  return { p50: percentile(samples, 50), p99: percentile(samples, 99), p999: percentile(samples, 99.9), count: samples.length };
}

/** The reading's own creation time: firmware-sim's `ts`, set just before the publish. */
function createdAtMs(value: Buffer | null): number | null {
  if (value === null) return null;
  try {
    const ts = (JSON.parse(value.toString('utf8')) as { ts?: unknown }).ts;
    const ms = typeof ts === 'string' ? Date.parse(ts) : Number.NaN;
    return Number.isFinite(ms) ? ms : null;
  } catch {
    return null;
  }
}

function medianOf(runs: readonly ClosedLoop[]): ClosedLoop {
  const median = (pick: (run: ClosedLoop) => number): number => {
    const sorted = runs.map(pick).sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
  };
  return {
    ackedPerS: median((run) => run.ackedPerS),
    deliveredPerS: median((run) => run.deliveredPerS),
    sustainedPerS: median((run) => run.sustainedPerS),
    backlogGrowth: median((run) => run.backlogGrowth),
    cpuUsPerRecord: median((run) => run.cpuUsPerRecord),
    failedDevices: Math.max(...runs.map((run) => run.failedDevices)),
  };
}

type Row = readonly [label: string, gateway: number, reference: number, better: 'higher' | 'lower'];

/** Prints figure | gateway | reference | ratio, the ratio as gateway / reference. */
function table(rows: readonly Row[], title: string): void {
  say(`   ${title}`);
  say(`   ${'figure'.padEnd(66)} ${'gateway'.padStart(10)} ${'reference'.padStart(10)} ${'ratio'.padStart(7)}`);
  for (const [label, gateway, reference, better] of rows) {
    const ratio = reference > 0 ? `${(gateway / reference).toFixed(2)}x` : 'n/a';
    say(`   ${label.padEnd(66)} ${format(gateway).padStart(10)} ${format(reference).padStart(10)} ${ratio.padStart(7)} (${better} is better)`);
  }
}

function format(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  return value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(1);
}
