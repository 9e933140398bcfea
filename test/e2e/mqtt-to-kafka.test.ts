// End to end with real parts: firmware-sim devices (mqtt.js) -> the gateway process (aedes, SQLite) ->
// librdkafka's mock cluster (Kafka protocol), read back with a kafkajs consumer. Every reading a device
// saw acknowledged must be in Kafka, keyed by the device, with its headers, in per-device order, also
// across a Kafka outage and a kill -9 of the gateway.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type MqttFleetReport, runMqttFleet } from '../../firmware-sim/mqtt-fleet.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { allAckedRead, checkDelivery } from '../helpers/delivery-check.ts';
import { type GatewayProcess, freePort, startGatewayProcess, writeGatewayConfig } from '../helpers/gateway-process.ts';
import { type KafkaMock, kafkaMockFor, readTopic } from '../helpers/kafka-mock.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait-for.ts';

const TOPIC = 'city.telemetry';

async function setup(t: TestContext, overrides: { mqttPort?: number } = {}) {
  const kafka = await kafkaMockFor(t, { brokers: 3, topics: [{ name: TOPIC, partitions: 6 }] });
  const dir = tempDir(t);
  const config: ConfigInput = {
    gateway_id: 'gw-e2e',
    mqtt: { host: '127.0.0.1', port: overrides.mqttPort ?? 0, allow_anonymous: true },
    http: { host: '127.0.0.1', port: 0 },
    kafka: {
      brokers: [...kafka.brokers],
      topic: TOPIC,
      routes: [{ stream: 'telemetry', event_time_field: 'ts' }],
      retry_initial_ms: 100,
      retry_max_ms: 1000,
      request_timeout_ms: 5000,
      connection_timeout_ms: 1000,
    },
    buffer: { path: join(dir, 'buffer.db') },
  };
  return { kafka, dir, configPath: writeGatewayConfig(dir, config) };
}

async function drained(gateway: GatewayProcess): Promise<void> {
  await waitFor(async () => (await gateway.readiness()).buffer.depthRecords === 0, 'the buffer to drain', 60_000, 100);
}

async function readAll(kafka: KafkaMock, report: MqttFleetReport) {
  return readTopic(kafka.brokers, TOPIC, { until: allAckedRead(report), timeoutMs: 90_000 });
}

function assertDelivered(report: MqttFleetReport, check: ReturnType<typeof checkDelivery>): void {
  assert.equal(check.acked, report.acked);
  assert.deepEqual(check.missing.slice(0, 10), [], `${check.missing.length} acknowledged readings missing from Kafka`);
  assert.deepEqual(check.outOfOrder, [], 'per-device order');
  assert.deepEqual(check.splitDevices, [], 'each device stays on one partition');
  assert.equal(check.wrongKeys, 0, 'key = device id');
  assert.deepEqual(check.conflictingIds, [], 'a record id names one record');
}

test('200 devices publish QoS 1: every acknowledged reading reaches Kafka once or more, keyed, with headers, in order', async (t) => {
  const { kafka, configPath } = await setup(t);
  const gateway = await startGatewayProcess(t, configPath);
  const report = await runMqttFleet({
    url: `mqtt://127.0.0.1:${gateway.mqttPort}`,
    devices: 200,
    ratePerSecond: 2000,
    durationMs: 0,
    messages: 6000,
    qos: 1,
    seed: 7,
  });
  assert.equal(report.failed, 0, JSON.stringify(report.failures));
  assert.equal(report.acked, 6000, 'with no faults every reading is acknowledged');

  const messages = await readAll(kafka, report);
  assertDelivered(report, checkDelivery(report, messages));
  await drained(gateway);

  const sample = messages[0];
  assert.ok(sample !== undefined);
  const reading = JSON.parse(sample.value?.toString('utf8') ?? '{}') as { device_id: string; ts: string };
  assert.equal(sample.key, reading.device_id);
  assert.match(sample.headers['record-id'] ?? '', /^[0-9a-f]{12}-\d+$/);
  assert.equal(sample.headers.source, 'mqtt');
  assert.equal(sample.headers['gateway-id'], 'gw-e2e');
  assert.equal(sample.headers.stream, 'telemetry');
  assert.ok(!Number.isNaN(Date.parse(sample.headers['received-at'] ?? '')));
  // The route names `ts` as event time: it becomes the Kafka timestamp and the event-time header.
  assert.equal(sample.headers['event-time'], new Date(Date.parse(reading.ts)).toISOString());
  assert.equal(sample.timestampMs, Date.parse(reading.ts));

  const metrics = await gateway.metricsText();
  assert.match(metrics, new RegExp(`^iotgw_ingress_accepted_total\\{source="mqtt"\\} ${report.published}$`, 'm'));
  // The records above went through the gateway's own encoder inside kafkajs, not kafkajs' slower one.
  assert.equal(gateway.logs.find((line) => line.msg === 'Kafka sink ready')?.recordEncoder, 'iotgw');
});

test('Kafka outage under load: nothing acknowledged is lost, order holds, /readyz says buffering, the buffer drains after', async (t) => {
  const { kafka, configPath } = await setup(t);
  const gateway = await startGatewayProcess(t, configPath);
  await gateway.waitForLog((line) => typeof line.msg === 'string' && line.msg.startsWith('Kafka reachable'));

  const fleet = runMqttFleet({ url: `mqtt://127.0.0.1:${gateway.mqttPort}`, devices: 100, ratePerSecond: 1000, durationMs: 12_000, qos: 1, seed: 11 });
  await sleep(2500);
  await kafka.down('all');
  await waitFor(async () => (await gateway.readiness()).kafka === 'buffering', '/readyz to report buffering', 30_000, 100);
  const during = await gateway.readiness();
  await sleep(4000);
  const deeper = await gateway.readiness();
  assert.ok(deeper.buffer.depthRecords > during.buffer.depthRecords, 'records accumulate in the buffer while Kafka is down');
  await kafka.up('all');
  const report = await fleet;
  assert.equal(report.failed, 0, JSON.stringify(report.failures));

  await drained(gateway);
  const messages = await readAll(kafka, report);
  assertDelivered(report, checkDelivery(report, messages));
  assert.equal((await gateway.readiness()).kafka, 'up');
  const downLines = gateway.logs.filter((line) => typeof line.msg === 'string' && line.msg.startsWith('Kafka unreachable'));
  assert.ok(downLines.length >= 1 && downLines.length <= 2, `the outage is logged as a state change, not per retry (${downLines.length} lines)`);
});

test('kill -9 under load and restart: every reading whose PUBACK a device received is in Kafka; duplicates share a record id', async (t) => {
  const mqttPort = await freePort();
  const { kafka, configPath } = await setup(t, { mqttPort });
  let gateway = await startGatewayProcess(t, configPath);

  const fleet = runMqttFleet({
    url: `mqtt://127.0.0.1:${mqttPort}`,
    devices: 100,
    ratePerSecond: 1500,
    durationMs: 10_000,
    qos: 1,
    seed: 13,
    reconnectPeriodMs: 250,
    maxClosesWithoutAck: 1000,
    drainTimeoutMs: 30_000,
  });
  await sleep(4000);
  assert.equal(await gateway.kill('SIGKILL'), null);
  await sleep(300);
  gateway = await startGatewayProcess(t, configPath);
  const report = await fleet;
  assert.equal(report.failed, 0, JSON.stringify(report.failures));
  assert.ok(report.reconnects >= 100, `every device reconnected after the crash (${report.reconnects})`);

  await drained(gateway);
  const messages = await readAll(kafka, report);
  const check = checkDelivery(report, messages);
  assertDelivered(report, check);
  t.diagnostic(`acked ${report.acked}, gateway duplicates ${check.gatewayDuplicates}, device re-sends stored twice ${check.deviceDuplicates}`);
});

test('slow Kafka (300 ms added to every broker response): devices keep being acknowledged, nothing is lost, order holds', async (t) => {
  const { kafka, configPath } = await setup(t);
  const gateway = await startGatewayProcess(t, configPath);
  await kafka.setRttMs('all', 300);
  const report = await runMqttFleet({
    url: `mqtt://127.0.0.1:${gateway.mqttPort}`,
    devices: 50,
    ratePerSecond: 500,
    durationMs: 0,
    messages: 3000,
    qos: 1,
    seed: 17,
  });
  assert.equal(report.failed, 0, JSON.stringify(report.failures));
  assert.equal(report.acked, 3000, 'acknowledgement does not wait for Kafka');
  await kafka.setRttMs('all', 0);
  await waitFor(async () => (await gateway.readiness()).buffer.depthRecords === 0, 'the buffer to drain', 60_000, 100);
  const messages = await readAll(kafka, report);
  assertDelivered(report, checkDelivery(report, messages));
});
