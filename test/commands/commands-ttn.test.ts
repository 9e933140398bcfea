// Commands from Kafka to TTN devices with real parts: a kafkajs producer writes commands to librdkafka's mock
// cluster, the gateway process (ttn and commands enabled) learns the devices from their uplinks through the
// TTS stand-in (aedes posing as The Things Stack), pushes each command to v3/{app}@ttn/devices/{id}/down/push,
// and turns the stand-in's down events into receipts read back from Kafka: acked (confirmed), sent
// (unconfirmed), failed with TTS's error, a nack sent again and then acked, a payload too large for LoRaWAN
// failed before anything is pushed. Then the gateway is killed with SIGKILL and restarted: a device heard only
// before the restart still gets its command over TTN (the DevEUI -> device mapping is committed state).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTtsStandIn, type TtsStandIn } from '../../firmware-sim/tts-stand-in.ts';
import { createTtsFleet, publishTtsTraffic, type TtsSimDevice } from '../../firmware-sim/tts-traffic.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { type GatewayProcess, startGatewayProcess, writeGatewayConfig } from '../helpers/gateway-process.ts';
import { type CommandKafka, type ReceiptValue, startCommandKafka } from '../helpers/command-kafka.ts';
import type { ConsumedMessage } from '../helpers/kafka-mock.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait-for.ts';

const RECORDS = 'city.records';
const COMMANDS = 'city.commands';
const RECEIPTS = 'city.command-receipts';
const APPLICATION = 'city-water';

interface Harness {
  readonly standIn: TtsStandIn;
  readonly configPath: string;
  readonly kafka: CommandKafka;
  gateway: GatewayProcess;
  send(key: string, value: unknown, commandId: string): Promise<void>;
  statuses(commandId: string): string[];
  receipt(commandId: string, status: string): ReceiptValue | undefined;
  message(commandId: string, status: string): ConsumedMessage | undefined;
}

async function setup(t: TestContext): Promise<Harness> {
  const commandKafka = await startCommandKafka(t, { records: RECORDS, commands: COMMANDS, receipts: RECEIPTS });
  const { kafka } = commandKafka;
  const dir = tempDir(t);
  const standIn = await startTtsStandIn({ applicationId: APPLICATION, tenantId: 'ttn' });
  t.after(() => standIn.stop());
  const keyFile = join(dir, 'ttn-api-key');
  writeFileSync(keyFile, `${standIn.apiKey}\n`, { mode: 0o600 });
  const config: ConfigInput = {
    gateway_id: 'gw-commands-ttn',
    mqtt: { host: '127.0.0.1', port: 0 },
    http: { host: '127.0.0.1', port: 0 },
    kafka: { brokers: [...kafka.brokers], topic: RECORDS, retry_initial_ms: 100, retry_max_ms: 1000, request_timeout_ms: 5000, connection_timeout_ms: 1000 },
    buffer: { path: join(dir, 'buffer.db') },
    ttn: { enabled: true, url: standIn.url, username: standIn.username, password_file: keyFile, reconnect_max_ms: 2000 },
    commands: { enabled: true, topic: COMMANDS, receipts_topic: RECEIPTS, fetch_wait_ms: 50 },
  };
  const configPath = writeGatewayConfig(dir, config);
  const gateway = await startGatewayProcess(t, configPath);
  return {
    standIn,
    configPath,
    kafka: commandKafka,
    gateway,
    send: (key, value, commandId) => commandKafka.send(key, JSON.stringify(value), { 'command-id': commandId }),
    statuses: (commandId) => commandKafka.statuses(commandId),
    receipt: (commandId, status) => commandKafka.receipt(commandId, status),
    message: (commandId, status) => commandKafka.receipts(commandId).find((entry) => entry.value.status === status)?.message,
  };
}

/** The pushes and replaces the stand-in received for a device, parsed. */
function operations(standIn: TtsStandIn, device: TtsSimDevice): { operation: string; body: { downlinks: Record<string, unknown>[] } }[] {
  return standIn
    .downlinkOperations()
    .filter((op) => op.deviceId === device.deviceId)
    .map((op) => ({ operation: op.operation, body: JSON.parse(op.body) as { downlinks: Record<string, unknown>[] } }));
}

test('commands to TTN devices: pushed to TTS with their correlation id, receipts from its events; the device mapping survives kill -9', async (t) => {
  const h = await setup(t);
  await h.standIn.waitForSubscriber();
  const fleet = createTtsFleet(APPLICATION, { devices: 5, seed: 31, prefix: 'cmd-' });
  const [valve, lamp, meter, pump, display] = fleet.devices as TtsSimDevice[];
  assert.ok(valve !== undefined && lamp !== undefined && meter !== undefined && pump !== undefined && display !== undefined);
  const heard = await publishTtsTraffic(h.standIn, fleet, { messagesPerDevice: 1 });
  assert.ok(heard.uplinks.every((entry) => entry.reached === 1));
  await waitFor(
    async () => (await h.gateway.metric('iotgw_ingress_accepted_total', ['source="ttn"'])) === fleet.devices.length,
    'the uplinks committed (the devices known)',
    30_000,
    100,
  );

  h.standIn.setDownlinkFates(meter.deviceId, ['fail']);
  h.standIn.setDownlinkFates(pump.deviceId, ['nack', 'ack']);
  await h.send(valve.devEui, { name: 'open', payload_hex: '0128', port: 10, confirmed: true }, 'c-ack');
  await h.send(lamp.devEui, { name: 'dim', payload_hex: '01', port: 2 }, 'c-unconfirmed');
  await h.send(meter.devEui, { name: 'read', payload_hex: '02', port: 2, confirmed: true }, 'c-fail');
  await h.send(pump.devEui, { name: 'start', payload_hex: '03', port: 3, confirmed: true }, 'c-nack');
  await h.send(display.devEui, { name: 'show', payload_base64: Buffer.alloc(243, 0x41).toString('base64'), port: 4 }, 'c-large');

  const finals: Record<string, string> = { 'c-ack': 'acked', 'c-unconfirmed': 'sent', 'c-fail': 'failed', 'c-nack': 'acked', 'c-large': 'failed' };
  await waitFor(
    () => Object.entries(finals).every(([id, status]) => h.statuses(id).at(-1) === status && h.statuses(id).length >= 2),
    'every command at its last receipt',
    30_000,
    50,
  );
  await sleep(1_000);
  assert.deepEqual(h.statuses('c-ack'), ['accepted', 'sent', 'acked']);
  assert.deepEqual(h.statuses('c-unconfirmed'), ['accepted', 'sent'], 'unconfirmed: on air is the end');
  assert.deepEqual(h.statuses('c-fail'), ['accepted', 'failed']);
  assert.deepEqual(h.statuses('c-nack'), ['accepted', 'sent', 'sent', 'acked'], 'nacked once, sent again, acked');
  assert.deepEqual(h.statuses('c-large'), ['accepted', 'failed']);
  for (const id of Object.keys(finals)) assert.equal(h.receipt(id, finals[id] as string)?.path, 'ttn', `${id}: over TTN`);
  assert.equal(h.receipt('c-nack', 'acked')?.attempts, 2);
  assert.equal(
    h.receipt('c-fail', 'failed')?.reason,
    `TTS could not deliver the downlink: pkg/networkserver:no_downlink_path: no downlink path available for device \`${APPLICATION}.${meter.deviceId}\` (code 9)`,
  );
  assert.match(h.receipt('c-large', 'failed')?.reason ?? '', /^a payload of 243 bytes does not fit a LoRaWAN downlink/);
  const acked = h.message('c-ack', 'acked');
  assert.equal(acked?.key, valve.devEui, 'receipts are keyed by the DevEUI');
  assert.equal(acked?.headers['command-id'], 'c-ack');

  assert.deepEqual(operations(h.standIn, valve), [
    {
      operation: 'push',
      body: { downlinks: [{ f_port: 10, frm_payload: 'ASg=', priority: 'NORMAL', confirmed: true, correlation_ids: ['iotgw:command:c-ack'] }] },
    },
  ]);
  assert.deepEqual(
    operations(h.standIn, pump).map((op) => [op.operation, op.body.downlinks.length]),
    [
      ['push', 1],
      ['replace', 0],
      ['replace', 1],
    ],
    'the nacked copy TTS keeps is withdrawn; the second hand-over replaces',
  );
  assert.deepEqual(operations(h.standIn, display), [], 'too large: never pushed');

  // kill -9, restart on the same buffer: the valve has not uplinked since, yet its command goes over TTN.
  await h.gateway.kill('SIGKILL');
  await waitFor(() => h.standIn.subscribers() === 0, 'the stand-in to see the killed gateway gone');
  h.gateway = await startGatewayProcess(t, h.configPath);
  await h.standIn.waitForSubscriber();
  await h.send(valve.devEui, { name: 'close', payload_hex: '00', port: 10, confirmed: true }, 'c-after-restart');
  // The killed gateway's consumer-group member holds the command partitions until its session times out
  // (kafkajs: 30 s), so the restarted intake may read the command only after that.
  await waitFor(() => h.statuses('c-after-restart').at(-1) === 'acked', 'the command after the restart acked', 90_000, 50);
  assert.deepEqual(h.statuses('c-after-restart'), ['accepted', 'sent', 'acked']);
  assert.equal(h.receipt('c-after-restart', 'acked')?.path, 'ttn');
  assert.equal(operations(h.standIn, valve).length, 2);
  t.diagnostic(`downlink operations at the stand-in: ${h.standIn.downlinkOperations().length}; receipts: ${h.kafka.receipts().length}`);
});
