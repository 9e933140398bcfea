// Graceful stop under load: firmware-sim devices publish QoS 1 to the gateway process while it forwards to the
// Kafka mock; SIGTERM must end the process with code 0 well within systemd's TimeoutStopSec, and every reading
// a device saw acknowledged must be in Kafka or still in the SQLite buffer. A second SIGTERM exits at once.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { ackedSeqs } from '../../firmware-sim/device-ledger.ts';
import { type MqttFleetReport, runMqttFleet } from '../../firmware-sim/mqtt-fleet.ts';
import { SHUTDOWN_DEADLINE_MS } from '../../src/ops/shutdown.ts';
import { startGatewayProcess, writeGatewayConfig } from '../helpers/gateway-process.ts';
import { type KafkaMock, kafkaMockFor, readTopic } from '../helpers/kafka-mock.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait-for.ts';

const TOPIC = 'city.telemetry';

async function setup(t: TestContext) {
  const kafka = await kafkaMockFor(t, { brokers: 3, topics: [{ name: TOPIC, partitions: 6 }] });
  const dir = tempDir(t);
  const bufferPath = join(dir, 'buffer.db');
  const configPath = writeGatewayConfig(dir, {
    gateway_id: 'gw-shutdown',
    mqtt: { host: '127.0.0.1', port: 0, allow_anonymous: true },
    http: { host: '127.0.0.1', port: 0 },
    kafka: { brokers: [...kafka.brokers], topic: TOPIC, retry_initial_ms: 100, retry_max_ms: 1000, request_timeout_ms: 30_000, connection_timeout_ms: 1000 },
    buffer: { path: bufferPath },
  });
  return { kafka, bufferPath, configPath };
}

function accepted(metrics: string): number {
  return Number(/^iotgw_ingress_accepted_total\{source="mqtt"\} (\d+)$/m.exec(metrics)?.[1] ?? 0);
}

function readingKey(payload: Buffer | null): string | null {
  try {
    const reading = JSON.parse(payload?.toString('utf8') ?? '') as { device_id?: string; seq?: number };
    return reading.device_id === undefined || reading.seq === undefined ? null : `${reading.device_id}:${reading.seq}`;
  } catch {
    return null;
  }
}

function ackedKeys(report: MqttFleetReport): string[] {
  return [...report.ledger.values()].flatMap((ledger) => ackedSeqs(ledger).map((seq) => `${ledger.deviceId}:${seq}`));
}

/** Every acknowledged reading must be in the buffer file or in Kafka. */
async function assertNothingLost(report: MqttFleetReport, bufferPath: string, kafka: KafkaMock): Promise<{ buffered: number; inKafka: number }> {
  const db = new Database(bufferPath);
  const buffered = new Set<string>();
  for (const row of db.prepare('SELECT payload FROM records').all() as { payload: Buffer }[]) {
    const key = readingKey(row.payload);
    if (key !== null) buffered.add(key);
  }
  db.close();
  const acked = ackedKeys(report);
  const needFromKafka = new Set(acked.filter((key) => !buffered.has(key)));
  const inKafka = new Set<string>();
  await readTopic(kafka.brokers, TOPIC, {
    timeoutMs: 60_000,
    until: (messages) => {
      const key = readingKey(messages.at(-1)?.value ?? null);
      if (key !== null && needFromKafka.has(key)) inKafka.add(key);
      return inKafka.size === needFromKafka.size;
    },
  });
  const missing = [...needFromKafka].filter((key) => !inKafka.has(key));
  assert.deepEqual(missing.slice(0, 10), [], `${missing.length} of ${acked.length} acknowledged readings are neither buffered nor in Kafka`);
  return { buffered: buffered.size, inKafka: inKafka.size };
}

test('SIGTERM under load: exit 0 within the deadline; every acknowledged reading is in Kafka or in the buffer', async (t) => {
  const { kafka, bufferPath, configPath } = await setup(t);
  const gateway = await startGatewayProcess(t, configPath);
  const abort = new AbortController();
  const fleet = runMqttFleet({
    url: `mqtt://127.0.0.1:${gateway.mqttPort}`,
    devices: 100,
    ratePerSecond: 1500,
    durationMs: 60_000,
    qos: 1,
    seed: 23,
    start: 'staggered',
    maxClosesWithoutAck: 1_000_000,
    signal: abort.signal,
  });
  await gateway.waitForLog((line) => typeof line.msg === 'string' && line.msg.startsWith('Kafka reachable'));
  // Under way: well over a thousand readings committed, the fleet still publishing.
  await waitFor(async () => accepted(await gateway.metricsText()) >= 1500, 'the fleet to be under way', 90_000, 200);
  const startedAt = performance.now();
  const code = await gateway.kill('SIGTERM');
  const stopMs = performance.now() - startedAt;
  abort.abort();
  const report = await fleet;
  assert.equal(code, 0, 'a clean stop exits 0');
  assert.ok(stopMs < SHUTDOWN_DEADLINE_MS, `stopped in ${Math.round(stopMs)} ms, inside the ${SHUTDOWN_DEADLINE_MS} ms deadline`);
  assert.ok(report.acked > 1000, `the fleet was under way (${report.acked} acknowledged)`);
  const messages = gateway.logs.map((line) => String(line.msg));
  assert.ok(messages.some((msg) => msg.startsWith('SIGTERM: shutting down')));
  assert.ok(messages.includes('iotgw stopped'));
  assert.ok(messages.includes('shutdown complete: exiting with code 0'));
  const where = await assertNothingLost(report, bufferPath, kafka);
  t.diagnostic(`acked ${report.acked}; after the stop ${where.buffered} buffered, ${where.inKafka} found in Kafka; stop took ${Math.round(stopMs)} ms`);
});

test('a second SIGTERM while the Kafka batch is still in flight exits 1 at once; committed records stay in the buffer', async (t) => {
  const { kafka, bufferPath, configPath } = await setup(t);
  const gateway = await startGatewayProcess(t, configPath);
  const abort = new AbortController();
  const fleet = runMqttFleet({
    url: `mqtt://127.0.0.1:${gateway.mqttPort}`,
    devices: 50,
    ratePerSecond: 500,
    durationMs: 60_000,
    qos: 1,
    seed: 29,
    start: 'staggered',
    maxClosesWithoutAck: 1_000_000,
    signal: abort.signal,
  });
  await gateway.waitForLog((line) => typeof line.msg === 'string' && line.msg.startsWith('Kafka reachable'));
  // Every broker answers 8 s late: the forwarder's batch is in flight when the signals come.
  await kafka.setRttMs('all', 8000);
  await sleep(2500);
  gateway.child.kill('SIGTERM');
  await gateway.waitForLog((line) => typeof line.msg === 'string' && line.msg.startsWith('SIGTERM: shutting down'), 10_000);
  const startedAt = performance.now();
  const code = await gateway.kill('SIGTERM');
  const forcedMs = performance.now() - startedAt;
  abort.abort();
  const report = await fleet;
  assert.equal(code, 1, 'a forced exit is not a clean stop');
  assert.ok(forcedMs < 5000, `the second signal ended the process at once (${Math.round(forcedMs)} ms)`);
  assert.ok(gateway.logs.some((line) => typeof line.msg === 'string' && line.msg.startsWith('second SIGTERM: exiting now with code 1')));
  await kafka.setRttMs('all', 0);
  await assertNothingLost(report, bufferPath, kafka);
});
