// Commands from Kafka to MQTT devices with real parts: a kafkajs producer writes commands to librdkafka's
// mock cluster, the gateway process (aedes, SQLite) consumes them, mqtt.js devices receive them, and the
// receipts are read back from Kafka. Covers a device online, one offline that connects later, one whose
// gateway was killed with SIGKILL between intake and delivery, duplicates, expiry, malformed commands and
// receipts produced while Kafka is down.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type TestContext, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, connectAsync, type MqttClient } from 'mqtt';
import type { ConfigInput } from '../../src/config/schema.ts';
import { type GatewayProcess, freePort, startGatewayProcess, writeGatewayConfig } from '../helpers/gateway-process.ts';
import { type CommandKafka, startCommandKafka } from '../helpers/command-kafka.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait-for.ts';

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));
const RECORDS = 'city.records';

async function iotgw(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args], {
      env: { ...process.env, IOTGW_CONFIG: undefined },
      timeout: 60_000,
    });
    return { status: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { status: failed.code ?? -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}
const COMMANDS = 'city.commands';
const RECEIPTS = 'city.command-receipts';

interface Harness extends CommandKafka {
  readonly configPath: string;
  gateway: GatewayProcess;
}

async function setup(t: TestContext): Promise<Harness> {
  const commandKafka = await startCommandKafka(t, { records: RECORDS, commands: COMMANDS, receipts: RECEIPTS });
  const dir = tempDir(t);
  const config: ConfigInput = {
    gateway_id: 'gw-commands',
    mqtt: { host: '127.0.0.1', port: await freePort(), allow_anonymous: true },
    http: { host: '127.0.0.1', port: 0 },
    kafka: {
      brokers: [...commandKafka.kafka.brokers],
      topic: RECORDS,
      retry_initial_ms: 100,
      retry_max_ms: 1000,
      request_timeout_ms: 5000,
      connection_timeout_ms: 1000,
    },
    buffer: { path: join(dir, 'buffer.db') },
    commands: { enabled: true, topic: COMMANDS, receipts_topic: RECEIPTS, fetch_wait_ms: 50 },
  };
  const configPath = writeGatewayConfig(dir, config);
  return { ...commandKafka, configPath, gateway: await startGatewayProcess(t, configPath) };
}

interface Device {
  readonly client: MqttClient;
  readonly received: { topic: string; payload: string }[];
}

async function device(t: TestContext, port: number, id: string, filter = `devices/${id}/commands/#`): Promise<Device> {
  const client = await connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: id, reconnectPeriod: 0 });
  t.after(() => client.endAsync(true));
  const received: Device['received'] = [];
  client.on('message', (topic, payload) => received.push({ topic, payload: payload.toString('utf8') }));
  await client.subscribeAsync(filter, { qos: 1 });
  return { client, received };
}

test('a command reaches an MQTT device online, at QoS 1, with accepted, sent and delivered receipts to Kafka', async (t) => {
  const h = await setup(t);
  const lamp = await device(t, h.gateway.mqttPort, 'lamp-1');
  await h.send('lamp-1', JSON.stringify({ name: 'dim', payload: { level: 40 }, ttl_s: 600 }), { 'command-id': 'c-online' });
  await waitFor(() => lamp.received.length === 1, 'the command at the device', 20_000);
  assert.deepEqual(lamp.received[0], { topic: 'devices/lamp-1/commands/dim', payload: '{"level":40}' });
  await waitFor(() => h.statuses('c-online').length === 3, 'three receipts', 20_000);
  assert.deepEqual(h.statuses('c-online'), ['accepted', 'sent', 'delivered']);
  assert.equal(h.receipt('c-online', 'delivered')?.path, 'mqtt');
  const delivered = h.receipts('c-online').find((entry) => entry.value.status === 'delivered')?.message;
  assert.equal(delivered?.key, 'lamp-1', 'receipts are keyed by the device');
  assert.equal(delivered?.headers['command-id'], 'c-online');
  assert.equal(await h.gateway.metric('iotgw_commands_total', ['status="delivered"']), 1);
  const status = (await (await fetch(`http://127.0.0.1:${h.gateway.httpPort}/api/status`)).json()) as {
    commands: { waiting: Record<string, number>; byStatus: Record<string, number> };
  };
  assert.deepEqual(status.commands.byStatus, { accepted: 1, sent: 1, delivered: 1 }, 'the status page counts the receipts');
  assert.deepEqual(status.commands.waiting, { queued: 0, sent: 0 });
});

test('a device offline when the command arrives gets it when it connects and subscribes', async (t) => {
  const h = await setup(t);
  await h.send('valve-1', Buffer.from([0x01, 0x00]), { 'command-id': 'c-offline', 'command-name': 'close' });
  await waitFor(() => h.statuses('c-offline').includes('accepted'), 'the accepted receipt', 20_000);
  await sleep(1_000);
  assert.deepEqual(h.statuses('c-offline'), ['accepted'], 'nothing is sent while the device is away');
  assert.equal(await h.gateway.metric('iotgw_commands_waiting', ['state="queued"']), 1);
  const valve = await device(t, h.gateway.mqttPort, 'valve-1');
  await waitFor(() => valve.received.length === 1, 'the command after connect', 20_000);
  assert.deepEqual(valve.received[0], { topic: 'devices/valve-1/commands/close', payload: '\u0001\u0000' });
  await waitFor(() => h.statuses('c-offline').at(-1) === 'delivered', 'the delivered receipt', 20_000);
  assert.equal(await h.gateway.metric('iotgw_commands_waiting', ['state="queued"']), 0);
});

test('kill -9 between intake and delivery: the restarted gateway still delivers the command, once', async (t) => {
  const h = await setup(t);
  await h.send('meter-1', JSON.stringify({ command_id: 'c-crash', name: 'config', payload: { interval_s: 900 } }));
  await waitFor(() => h.statuses('c-crash').includes('accepted'), 'the accepted receipt', 20_000);
  await h.gateway.kill('SIGKILL');
  h.gateway = await startGatewayProcess(t, h.configPath);
  const meter = await device(t, h.gateway.mqttPort, 'meter-1');
  await waitFor(() => h.statuses('c-crash').at(-1) === 'delivered', 'the delivered receipt', 30_000);
  await sleep(1_500);
  assert.equal(meter.received.length, 1, 'delivered once');
  assert.equal(h.statuses('c-crash').filter((status) => status === 'delivered').length, 1);
});

test('a duplicate command id is sent once; an expired command and malformed ones get receipts and are not sent', async (t) => {
  const h = await setup(t);
  const lamp = await device(t, h.gateway.mqttPort, 'lamp-2');
  await h.send('lamp-2', JSON.stringify({ name: 'on', payload: 'on' }), { 'command-id': 'c-dup' });
  await h.send('lamp-2', JSON.stringify({ name: 'on', payload: 'on' }), { 'command-id': 'c-dup' });
  await h.send('lamp-2', JSON.stringify({ name: 'off', payload: 'off', expires_at: '2020-01-01T00:00:00Z' }), { 'command-id': 'c-expired' });
  await h.send('lamp-2', '{"name": "dim", "payload": ', { 'command-id': 'c-broken' });
  await h.send('lamp-2', JSON.stringify({ name: 'dim', payload: { level: 1 }, colour: 'red' }), { 'command-id': 'c-typo' });
  await h.send('lamp-2', JSON.stringify({ name: 'dim', payload: { level: 1 } }));
  await h.send('lamp-2', JSON.stringify({ name: 'last', payload: 'x' }), { 'command-id': 'c-last' });
  await waitFor(() => h.statuses('c-last').at(-1) === 'delivered', 'the last command delivered', 20_000);
  await sleep(1_000);
  assert.deepEqual(
    lamp.received.map((message) => message.topic),
    ['devices/lamp-2/commands/on', 'devices/lamp-2/commands/last'],
    'the duplicate, the expired and the malformed commands never reach the device',
  );
  assert.deepEqual(h.statuses('c-dup'), ['accepted', 'sent', 'delivered']);
  assert.deepEqual(h.statuses('c-expired'), ['expired']);
  assert.deepEqual(h.statuses('c-broken'), ['rejected']);
  assert.match(h.receipt('c-broken', 'rejected')?.reason ?? '', /^malformed-json: /);
  assert.match(h.receipt('c-typo', 'rejected')?.reason ?? '', /^unknown-field: unknown field\(s\) colour/);
  assert.match(h.receipt(null, 'rejected')?.reason ?? '', /^missing-command-id: /);
  assert.equal(await h.gateway.metric('iotgw_commands_total', ['status="duplicate"']), 1);
  assert.equal(await h.gateway.metric('iotgw_commands_total', ['status="rejected"']), 3);
});

test('receipts produced while Kafka is down are all in Kafka once it is back', async (t) => {
  const h = await setup(t);
  await h.send('lamp-3', JSON.stringify({ name: 'dim', payload: { level: 10 } }), { 'command-id': 'c-outage' });
  await waitFor(() => h.statuses('c-outage').includes('accepted'), 'the accepted receipt', 20_000);
  await h.kafka.down('all');
  const lamp = await device(t, h.gateway.mqttPort, 'lamp-3');
  await waitFor(() => lamp.received.length === 1, 'the command, delivered while Kafka is down', 20_000);
  await waitFor(async () => (await h.gateway.metric('iotgw_commands_total', ['status="delivered"'])) === 1, 'the delivered receipt committed');
  await h.kafka.up('all');
  await waitFor(() => h.statuses('c-outage').at(-1) === 'delivered', 'the receipts after the outage', 60_000);
  assert.deepEqual(h.statuses('c-outage'), ['accepted', 'sent', 'delivered']);
});

test('iotgw commands list and cancel: a waiting command is listed, cancelled with a receipt, and never sent', async (t) => {
  const h = await setup(t);
  const url = `http://127.0.0.1:${h.gateway.httpPort}`;
  await h.send('lamp-9', JSON.stringify({ name: 'dim', payload: { level: 5 }, ttl_s: 3600 }), { 'command-id': 'c-cancel' });
  await h.send('lamp-9', JSON.stringify({ name: 'dim', payload: { level: 6 }, ttl_s: 3600 }), { 'command-id': 'c-keep' });
  await waitFor(() => h.statuses('c-keep').includes('accepted'), 'the accepted receipts', 20_000);

  const listed = await iotgw(['commands', 'list', '--url', url]);
  assert.equal(listed.status, 0, listed.stderr);
  assert.match(listed.stdout, /^2 commands waiting \(2 queued, 0 sent/);
  assert.match(listed.stdout, /c-cancel\s+lamp-9\s+dim\s+queued/);
  const json = await iotgw(['commands', 'list', '--json', '--device', 'lamp-9', '--url', url]);
  assert.deepEqual(
    (JSON.parse(json.stdout) as { command_id: string }[]).map((command) => command.command_id),
    ['c-cancel', 'c-keep'],
  );

  // A page in a browser cannot cancel: the request lacks the header only a script with a preflight could add.
  const forged = await fetch(`${url}/api/commands/c-cancel/cancel`, { method: 'POST' });
  assert.equal(forged.status, 403);

  const cancelled = await iotgw(['commands', 'cancel', 'c-cancel', '--url', url]);
  assert.equal(cancelled.status, 0, cancelled.stderr);
  assert.match(cancelled.stdout, /cancelled c-cancel/);
  const again = await iotgw(['commands', 'cancel', 'c-cancel', '--url', url]);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /no waiting command c-cancel: delivered, expired, cancelled already/);
  await waitFor(() => h.statuses('c-cancel').at(-1) === 'cancelled', 'the cancelled receipt', 20_000);

  const lamp = await device(t, h.gateway.mqttPort, 'lamp-9');
  await waitFor(() => h.statuses('c-keep').at(-1) === 'delivered', 'the other command delivered', 20_000);
  assert.deepEqual(
    lamp.received.map((message) => message.payload),
    ['{"level":6}'],
    'the cancelled command never reaches the device',
  );
});

test('a device with a persistent session gets its command when it reconnects, without subscribing again', async (t) => {
  const h = await setup(t);
  const url = `mqtt://127.0.0.1:${h.gateway.mqttPort}`;
  const first = await connectAsync(url, { clientId: 'meter-7', clean: false, reconnectPeriod: 0 });
  await first.subscribeAsync('devices/meter-7/commands/+', { qos: 1 });
  await first.endAsync();
  await h.send('meter-7', JSON.stringify({ name: 'config', payload: { interval_s: 60 } }), { 'command-id': 'c-session' });
  await waitFor(() => h.statuses('c-session').includes('accepted'), 'the accepted receipt', 20_000);

  const received: string[] = [];
  // The handler is on before the connection: the command may arrive right behind the CONNACK.
  const again = connect(url, { clientId: 'meter-7', clean: false, reconnectPeriod: 0 });
  t.after(() => again.endAsync(true));
  again.on('message', (topic) => received.push(topic));
  await waitFor(() => received.length >= 1, 'the command on the restored session', 20_000);
  await waitFor(() => h.statuses('c-session').at(-1) === 'delivered', 'the delivered receipt', 20_000);
  assert.deepEqual(received, ['devices/meter-7/commands/config']);
});

test('a device subscribed to its commands at QoS 0 is not sent them (no PUBACK would come); at QoS 1 it is', async (t) => {
  const h = await setup(t);
  const lamp = await device(t, h.gateway.mqttPort, 'lamp-q0', 'devices/lamp-q0/commands/dim');
  await lamp.client.unsubscribeAsync('devices/lamp-q0/commands/dim');
  await lamp.client.subscribeAsync('devices/lamp-q0/commands/dim', { qos: 0 });
  await h.send('lamp-q0', JSON.stringify({ name: 'dim', payload: { level: 1 } }), { 'command-id': 'c-q0' });
  await waitFor(() => h.statuses('c-q0').includes('accepted'), 'the accepted receipt', 20_000);
  await sleep(1_000);
  assert.deepEqual(lamp.received, [], 'nothing sent to a QoS 0 subscription');
  assert.deepEqual(h.statuses('c-q0'), ['accepted']);
  // A QoS 1 wildcard does not help while the exact topic is held at QoS 0 (aedes would send at QoS 0).
  await lamp.client.subscribeAsync('devices/lamp-q0/commands/#', { qos: 1 });
  await sleep(500);
  assert.deepEqual(h.statuses('c-q0'), ['accepted']);
  await lamp.client.subscribeAsync('devices/lamp-q0/commands/dim', { qos: 1 });
  await waitFor(() => h.statuses('c-q0').at(-1) === 'delivered', 'the delivered receipt after a QoS 1 subscription', 20_000);
  assert.equal(lamp.received.length, 1);
});

test('a device that drops its connection on a command every time gets it 5 times, then the command fails with a receipt', async (t) => {
  const h = await setup(t);
  await h.send('lamp-crash', JSON.stringify({ name: 'dim', payload: { level: 99 } }), { 'command-id': 'c-poison' });
  await waitFor(() => h.statuses('c-poison').includes('accepted'), 'the accepted receipt', 20_000);
  let received = 0;
  for (let attempt = 1; attempt <= 5; attempt += 1) {
    const client = await connectAsync(`mqtt://127.0.0.1:${h.gateway.mqttPort}`, { clientId: 'lamp-crash', reconnectPeriod: 0 });
    // Firmware that crashes on the command: no PUBACK, the connection just ends.
    const gone = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.handleMessage = (_packet, _callback) => {
      received += 1;
      client.end(true);
    };
    await client.subscribeAsync('devices/lamp-crash/commands/#', { qos: 1 });
    await gone;
    assert.equal(received, attempt, `sent again at reconnect ${attempt}`);
  }
  await waitFor(() => h.statuses('c-poison').at(-1) === 'failed', 'the failed receipt', 20_000);
  assert.match(h.receipt('c-poison', 'failed')?.reason ?? '', /went away without acknowledging it 5 times/);
  // Nothing more goes to the device.
  const after = await device(t, h.gateway.mqttPort, 'lamp-crash');
  await sleep(1_000);
  assert.deepEqual(after.received, []);
});
