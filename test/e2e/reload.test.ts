// `systemctl reload iotgw` as a user runs it, on the built gateway process: SIGHUP while 40 devices publish at
// QoS 1 and 8 LoRaWAN devices send uplinks through it to librdkafka's mock cluster. The device lists are applied (an added device connects, a
// removed one is disconnected), a broken config is refused and the running one stays, a changed key that needs a
// restart is named; and across all of it no device is disconnected and every acknowledged reading is in Kafka,
// in order.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import mqtt from 'mqtt';
import { stringify } from 'yaml';
import { createFleet } from '../../firmware-sim/fleet.ts';
import { lorawanDevicesConfig, runLorawanFleet } from '../../firmware-sim/lorawan-fleet.ts';
import { runMqttFleet } from '../../firmware-sim/mqtt-fleet.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { hashPassword } from '../../src/ingress/mqtt-broker/password-hash.ts';
import { allAckedRead, checkDelivery } from '../helpers/delivery-check.ts';
import { freeUdpPort, startGatewayProcess } from '../helpers/gateway-process.ts';
import { kafkaMockFor, readTopic } from '../helpers/kafka-mock.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait-for.ts';

const TOPIC = 'city.telemetry';
const DEVICES = 40;
const SEED = 23;

test('SIGHUP under load: device lists applied, a bad config refused, no connection dropped, nothing acknowledged lost', async (t) => {
  const kafka = await kafkaMockFor(t, { brokers: 1, topics: [{ name: TOPIC, partitions: 3 }] });
  const dir = tempDir(t);
  const hash = await hashPassword('fleet-secret', { ln: 10, r: 8, p: 1 });
  const fleetIds = createFleet({ devices: DEVICES, seed: SEED }).map((device) => device.id);
  // LoRaWAN: eight ABP devices in a devices_file; a ninth is added by the reload.
  const loraShape = { devices: 9, otaaShare: 0, seed: SEED } as const;
  const loraEntries = lorawanDevicesConfig(loraShape);
  const devicesFile = join(dir, 'lorawan-devices.yaml');
  writeFileSync(devicesFile, stringify(loraEntries.slice(0, 8)));
  const udpPort = await freeUdpPort();
  const config = (devices: readonly string[], batchMaxRecords = 2000): ConfigInput => ({
    gateway_id: 'gw-reload',
    mqtt: { host: '127.0.0.1', port: 0, allow_anonymous: false, devices: devices.map((id) => ({ id, password_hash: hash })) },
    http: { host: '127.0.0.1', port: 0 },
    kafka: { brokers: [...kafka.brokers], topic: TOPIC, batch_max_records: batchMaxRecords, retry_initial_ms: 100, retry_max_ms: 1000 },
    buffer: { path: join(dir, 'buffer.db') },
    lorawan: { enabled: true, udp: { host: '127.0.0.1', port: udpPort }, dedup_window_ms: 50, devices_file: devicesFile },
  });
  const configPath = join(dir, 'iotgw.yaml');
  writeFileSync(configPath, stringify(config([...fleetIds, 'em-retired'])));
  const gateway = await startGatewayProcess(t, configPath);
  const url = `mqtt://127.0.0.1:${gateway.mqttPort}`;
  const retired = await mqtt.connectAsync(url, { clientId: 'em-retired', username: 'em-retired', password: 'fleet-secret', reconnectPeriod: 0 });
  t.after(() => retired.endAsync(true));
  let retiredClosed = false;
  retired.on('close', () => {
    retiredClosed = true;
  });

  const fleet = runMqttFleet({ url, devices: DEVICES, ratePerSecond: 400, durationMs: 8_000, qos: 1, seed: SEED, password: 'fleet-secret' });
  const loraFleet = runLorawanFleet({
    ...loraShape,
    devices: 8,
    server: { host: '127.0.0.1', port: udpPort },
    gateways: 1,
    ratePerSecond: 8,
    messagesPerDevice: 8,
    pathLossDb: 120,
    stateFile: join(dir, 'sim-state.json'),
  });
  const reloads = (result: string) => gateway.metric('iotgw_config_reloads_total', [`result="${result}"`]);
  await waitFor(async () => (await gateway.metric('iotgw_ingress_accepted_total', ['source="mqtt"'])) >= 400, 'the fleet publishing');

  // 1. A config that does not load: refused, nothing changes.
  writeFileSync(configPath, 'mqtt:\n  devices: [{ id: em-new }]\n');
  gateway.child.kill('SIGHUP');
  await waitFor(async () => (await reloads('refused')) === 1, 'the broken config refused');
  const refusal = await gateway.waitForLog((line) => typeof line.msg === 'string' && line.msg.startsWith('reload refused, the running config stays'));
  assert.match(String(refusal.msg), /mqtt\.devices\.0\.password_hash/, 'the refusal names the key');

  // 2. em-new added, em-retired removed, kafka.batch_max_records changed (needs a restart), a LoRaWAN device added.
  writeFileSync(configPath, stringify(config([...fleetIds, 'em-new'], 1000)));
  writeFileSync(devicesFile, stringify(loraEntries));
  gateway.child.kill('SIGHUP');
  await waitFor(async () => (await reloads('applied')) === 1, 'the new device lists applied');
  const applied = await gateway.waitForLog((line) => typeof line.msg === 'string' && line.msg.startsWith('reload applied'));
  assert.match(
    String(applied.msg),
    /MQTT devices and accounts 1 added, 1 removed, 0 changed; 1 connection\(s\) of removed ones closed; LoRaWAN devices 1 added, 0 removed, 0 changed/,
  );
  const restartNote = await gateway.waitForLog((line) => typeof line.msg === 'string' && line.msg.includes('apply only at a restart'));
  assert.match(String(restartNote.msg), /kafka\.batch_max_records/);
  await waitFor(() => retiredClosed, 'the removed device disconnected');
  const added = await mqtt.connectAsync(url, { clientId: 'em-new', username: 'em-new', password: 'fleet-secret', reconnectPeriod: 0 });
  t.after(() => added.endAsync(true));
  await added.publishAsync('devices/em-new/telemetry', JSON.stringify({ device_id: 'em-new' }), { qos: 1 });

  const report = await fleet;
  const loraReport = await loraFleet;
  assert.equal(loraReport.totals.uplinks, 64);
  // The device the reload added is heard: its first uplink is stored.
  const afterwards = await runLorawanFleet({
    ...loraShape,
    server: { host: '127.0.0.1', port: udpPort },
    gateways: 1,
    ratePerSecond: 0,
    messagesPerDevice: 1,
    pathLossDb: 120,
    // The counters go on from the first run: the eight devices' frames are new, not replays.
    stateFile: join(dir, 'sim-state.json'),
  });
  assert.equal(afterwards.totals.uplinks, 9);
  assert.equal(report.failed, 0, JSON.stringify(report.failures));
  assert.equal(report.reconnects, 0, 'no fleet device was disconnected by the reloads');
  assert.ok(report.acked > 1000, `${report.acked} readings acknowledged`);
  const messages = await readTopic(kafka.brokers, TOPIC, { until: allAckedRead(report), timeoutMs: 60_000 });
  const check = checkDelivery(report, messages);
  assert.deepEqual(check.missing.slice(0, 10), [], `${check.missing.length} acknowledged readings missing from Kafka`);
  assert.deepEqual(check.outOfOrder, [], 'per-device order');
  // Every LoRaWAN uplink sent through the reloads, and the added device's, was stored: none refused as unknown.
  await waitFor(async () => (await gateway.metric('iotgw_ingress_accepted_total', ['source="semtech-udp"'])) >= 64 + 9, 'the LoRaWAN uplinks stored');
  assert.equal(await gateway.metric('iotgw_ingress_accepted_total', ['source="semtech-udp"']), 64 + 9);
  assert.equal(await gateway.metric('iotgw_ingress_rejected_total', ['source="semtech-udp"', 'reason="unknown-devaddr"']), 0);
});
