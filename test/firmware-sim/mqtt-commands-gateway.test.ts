// firmware-sim's MQTT devices against the real gateway process with commands on (librdkafka's mock cluster,
// a kafkajs producer for the commands): a street lamp gets a dim command from Kafka, acts, and its state
// report reaches Kafka on the records topic, next to the receipts that say the command was delivered; with
// {command_id} in commands.mqtt_topic the report names the command. Needs dist/ (npx tsc -p tsconfig.json);
// npm test builds it first.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import type { StreetLampReading } from '../../firmware-sim/fleet.ts';
import { type MqttCommandEvent, runMqttFleet } from '../../firmware-sim/mqtt-fleet.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { freePort, startGatewayProcess, writeGatewayConfig } from '../helpers/gateway-process.ts';
import { startCommandKafka } from '../helpers/command-kafka.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait-for.ts';

const RECORDS = 'city.records';
const COMMANDS = 'city.commands';
const RECEIPTS = 'city.command-receipts';
const LAMP = 'sl-000002';

/** The dim command's way, from Kafka to the lamp and its state back to Kafka; returns the state report (without ts). */
async function dimTheLamp(t: TestContext, commandId: string, mqttTopic?: string): Promise<Record<string, unknown>> {
  const commandKafka = await startCommandKafka(t, { records: RECORDS, commands: COMMANDS, receipts: RECEIPTS, partitions: 1 });
  const { kafka } = commandKafka;
  const dir = tempDir(t);
  const config: ConfigInput = {
    gateway_id: 'gw-sim-commands',
    mqtt: { host: '127.0.0.1', port: await freePort(), allow_anonymous: true },
    http: { host: '127.0.0.1', port: 0 },
    kafka: { brokers: [...kafka.brokers], topic: RECORDS, retry_initial_ms: 100, retry_max_ms: 1000, request_timeout_ms: 5000, connection_timeout_ms: 1000 },
    buffer: { path: join(dir, 'buffer.db') },
    commands: { enabled: true, topic: COMMANDS, receipts_topic: RECEIPTS, fetch_wait_ms: 50, ...(mqttTopic === undefined ? {} : { mqtt_topic: mqttTopic }) },
  };
  const gateway = await startGatewayProcess(t, writeGatewayConfig(dir, config));

  // The fleet publishes until the test has seen what it waits for, then is aborted.
  const controller = new AbortController();
  const events: MqttCommandEvent[] = [];
  const fleet = runMqttFleet(
    { url: `mqtt://127.0.0.1:${gateway.mqttPort}`, devices: 4, ratePerSecond: 20, durationMs: 0, qos: 1, seed: 1, commands: true, signal: controller.signal },
    { onCommand: (event) => events.push(event) },
  );
  t.after(() => controller.abort());

  await commandKafka.send(LAMP, JSON.stringify({ name: 'dim', payload: { level: 40 }, ttl_s: 600 }), { 'command-id': commandId });

  const stateRecords = () => commandKafka.records().filter((message) => message.headers.stream === 'state');
  await waitFor(() => stateRecords().length === 1, 'the state report in Kafka', 30_000);
  const state = stateRecords()[0];
  assert.equal(state?.key, LAMP, 'keyed by the device, like its readings');
  assert.equal(state?.headers.source, 'mqtt');
  const { ts, ...report } = JSON.parse(state?.value?.toString('utf8') ?? '{}') as Record<string, unknown>;
  assert.equal(typeof ts, 'string');

  // The device PUBACKed after acting: the delivered receipt follows, keyed by the device with the command's id.
  const statuses = () => commandKafka.statuses(commandId);
  await waitFor(() => statuses().includes('delivered'), 'the delivered receipt', 30_000);
  assert.deepEqual(statuses(), ['accepted', 'sent', 'delivered']);

  // The lamp's readings after the command show it dimmed, in Kafka too.
  const stateOffset = Number(state?.offset);
  const lampReadingsAfter = () =>
    commandKafka
      .records()
      .filter((message) => message.key === LAMP && message.headers.stream === 'telemetry' && Number(message.offset) > stateOffset)
      .map((message) => JSON.parse(message.value?.toString('utf8') ?? '{}') as StreetLampReading);
  await waitFor(() => lampReadingsAfter().length > 0, 'a lamp reading after the state report', 30_000);
  assert.deepEqual(
    lampReadingsAfter().map((reading) => [reading.on, reading.dim_pct]),
    lampReadingsAfter().map(() => [true, 40]),
  );

  controller.abort();
  const fleetReport = await fleet;
  assert.deepEqual(
    events.map((event) => [event.deviceId, event.name, event.applied]),
    [[LAMP, 'dim', true]],
  );
  assert.equal(fleetReport.commands?.subscribed, 4);
  assert.equal(fleetReport.commands?.received, 1);
  assert.equal(fleetReport.commands?.reported, 1);
  return report;
}

test('a firmware-sim street lamp takes a dim command from Kafka through the gateway, and its new state reaches Kafka', async (t) => {
  const report = await dimTheLamp(t, 'c-dim');
  // The default topic, devices/{device_id}/commands/{name}, carries no command id.
  assert.deepEqual(report, { device_id: LAMP, kind: 'street-lamp', command: 'dim', on: true, dim_pct: 40 });
});

test('with {command_id} in commands.mqtt_topic, the lamp names the command in its state report', async (t) => {
  // The gateway percent-encodes the id into one topic level; the device decodes it.
  const report = await dimTheLamp(t, 'c/dim+1#', 'devices/{device_id}/commands/{name}/{command_id}');
  assert.deepEqual(report, { device_id: LAMP, kind: 'street-lamp', command: 'dim', command_id: 'c/dim+1#', on: true, dim_pct: 40 });
});
