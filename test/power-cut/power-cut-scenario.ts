// Power cuts under load, shared by the suite's short run (power-cut.test.ts) and the long soak
// (`npm run soak -- power-cut --cuts 200`). The gateway process keeps its buffer on power-cut-fs while a
// firmware-sim fleet publishes at QoS 1; at random moments the power fails (unsynced data dropped, the
// gateway SIGKILLed), the disk is mounted again and the gateway restarted on it, as after a reboot. Kafka is
// down during every other stretch, so the buffer holds records when the power fails, and up in the others, so
// cuts also land between a Kafka ack and the deletion it allows. At the end every reading a device saw
// PUBACKed must be in Kafka, in order per device.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRandom } from '../../firmware-sim/fleet.ts';
import { runMqttFleet } from '../../firmware-sim/mqtt-fleet.ts';
import { checkDelivery } from '../helpers/delivery-check.ts';
import { type GatewayProcess, freePort, launchGateway, writeGatewayConfig } from '../helpers/gateway-process.ts';
import { startKafkaMock, tailTopic, topicOffsets } from '../helpers/kafka-mock.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { mountPowerCutFs, type PowerCutFs } from './power-cut-fs.ts';

const TOPIC = 'power-cut.telemetry';

export interface PowerCutScenarioOptions {
  readonly cuts: number;
  readonly seed: number;
  readonly devices: number;
  readonly ratePerSecond: number;
  /** Load between a restart and the next cut, drawn uniformly from [min, max] ms. */
  readonly minLoadMs: number;
  readonly maxLoadMs: number;
  /** The control: a disk that acknowledges fsync without flushing. */
  readonly ignoreFsync?: boolean;
  readonly onProgress?: (line: string) => void;
}

export interface PowerCutReport {
  readonly cuts: number;
  /** Readings whose PUBACK a device received. */
  readonly acked: number;
  /** `device:seq` acknowledged but never in Kafka: must be empty. */
  readonly lost: readonly string[];
  readonly outOfOrder: readonly string[];
  /** Copies beyond the first with the same record id (re-sent after a cut undid a deletion). */
  readonly gatewayDuplicates: number;
  /** One reading stored twice under two record ids (the device re-sent it after a PUBACK lost in the cut). */
  readonly deviceDuplicates: number;
  readonly messagesInKafka: number;
}

/** Runs the scenario in `workDir` (which must exist and be empty); the mount and processes are gone when it resolves. */
export async function runPowerCutScenario(workDir: string, options: PowerCutScenarioOptions): Promise<PowerCutReport> {
  const progress = options.onProgress ?? (() => undefined);
  const random = createRandom(options.seed);
  const kafka = await startKafkaMock({ brokers: 1, topics: [{ name: TOPIC, partitions: 64 }] });
  const mountPoint = join(workDir, 'mnt');
  mkdirSync(mountPoint);
  const imagePath = join(workDir, 'disk.img');
  const mqttPort = await freePort();
  const configPath = writeGatewayConfig(workDir, {
    gateway_id: 'gw-power-cut',
    mqtt: { host: '127.0.0.1', port: mqttPort, allow_anonymous: true },
    http: { host: '127.0.0.1', port: 0 },
    kafka: { brokers: [...kafka.brokers], topic: TOPIC, retry_initial_ms: 50, retry_max_ms: 500, request_timeout_ms: 5000, connection_timeout_ms: 500 },
    // A directory the gateway creates itself: its name must survive the cut too.
    buffer: { path: join(mountPoint, 'data', 'buffer.db') },
  });
  const mount = () => mountPowerCutFs({ imagePath, mountPoint, ignoreFsync: options.ignoreFsync ?? false });

  // Read as the run goes: the mock keeps only ~5 MiB per partition, less than a long soak produces.
  const tail = tailTopic(kafka.brokers, TOPIC);
  let disk: PowerCutFs | null = null;
  let gateway: GatewayProcess | null = null;
  const stopFleet = new AbortController();
  let fleet: ReturnType<typeof runMqttFleet> | null = null;
  try {
    disk = await mount();
    gateway = await launchGateway(configPath);
    fleet = runMqttFleet({
      url: `mqtt://127.0.0.1:${mqttPort}`,
      devices: options.devices,
      ratePerSecond: options.ratePerSecond,
      durationMs: 0,
      qos: 1,
      seed: options.seed,
      start: 'staggered',
      reconnectPeriodMs: 200,
      // Every cut closes every connection with a publish outstanding: that is expected here, not a failure.
      maxClosesWithoutAck: Number.MAX_SAFE_INTEGER,
      signal: stopFleet.signal,
    });
    for (let cut = 1; cut <= options.cuts; cut++) {
      if (cut % 2 === 1) await kafka.down('all');
      else await kafka.up('all');
      await sleep(options.minLoadMs + random() * (options.maxLoadMs - options.minLoadMs));
      await disk.cut();
      await gateway.kill('SIGKILL');
      gateway = null;
      await disk.unmount();
      disk = null;
      disk = await mount();
      gateway = await launchGateway(configPath);
      progress(`cut ${cut}/${options.cuts}: restarted on what the disk kept (Kafka ${cut % 2 === 1 ? 'down' : 'up'} before the cut)`);
    }
    await kafka.up('all');
    // The last stretch runs with no cut, then the devices stop; what they saw acknowledged is the ledger.
    await sleep(options.maxLoadMs);
    stopFleet.abort();
    const report = await fleet;
    fleet = null;
    const running = gateway;
    await waitFor(async () => (await running.readiness()).buffer.depthRecords === 0, 'the buffer to drain into Kafka', 120_000, 100);
    // Everything is in Kafka once the buffer is empty: wait until the tail has read all of it (a lost reading
    // would never turn up), then make sure the harness itself dropped nothing.
    const { produced } = await topicOffsets(kafka.brokers, TOPIC);
    try {
      await waitFor(() => tail.count() >= produced, `the reader to catch up with the ${produced} messages in Kafka`, 120_000, 100);
    } catch (error) {
      const { deleted } = await topicOffsets(kafka.brokers, TOPIC);
      if (deleted === 0) throw error;
      throw new Error(
        `the reader has ${tail.count()} of ${produced} messages, and the mock cluster deleted ${deleted} (it keeps ~5 MiB per partition) before the reader got them: lower --rate`,
      );
    }
    const messages = await tail.stop();
    const check = checkDelivery(report, messages);
    return {
      cuts: options.cuts,
      acked: check.acked,
      lost: check.missing,
      outOfOrder: check.outOfOrder,
      gatewayDuplicates: check.gatewayDuplicates,
      deviceDuplicates: check.deviceDuplicates,
      messagesInKafka: messages.length,
    };
  } finally {
    stopFleet.abort();
    await fleet?.catch(() => undefined);
    await gateway?.kill('SIGKILL');
    await disk?.unmount().catch(() => undefined);
    await tail.stop();
    await kafka.stop();
  }
}
