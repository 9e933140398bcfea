// The broker's answers to clients that break the rules or push its bounds, with real aedes, real mqtt.js
// clients and raw sockets: CONNECT rules answered with defined return codes, accounts bound to their client
// ids, connections per address, unfinished bytes across connections, password checks under a flood, retained
// messages. Each bound is exercised past its limit while a well-behaved device keeps publishing.
import assert from 'node:assert/strict';
import { connect as connectTcp, type Socket } from 'node:net';
import { type TestContext, test } from 'node:test';
import mqtt, { type IClientOptions, MqttClient } from 'mqtt';
import { hashPassword } from '../../src/ingress/mqtt-broker/password-hash.ts';
import { startTestIngress, storedRows } from '../helpers/mqtt-ingress.ts';
import { connectPacket, remainingLength } from '../helpers/mqtt-wire.ts';
import { waitFor } from '../helpers/wait-for.ts';

async function connectClient(t: TestContext, url: string, options: IClientOptions = {}): Promise<MqttClient> {
  const client = await mqtt.connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, ...options });
  t.after(() => client.endAsync(true));
  return client;
}

/** mqtt.js from another loopback address (its tcp builder ignores localAddress): a second source for per-address limits. */
async function connectFrom(t: TestContext, port: number, localAddress: string, options: IClientOptions): Promise<MqttClient> {
  const client = new MqttClient(() => connectTcp({ port, host: '127.0.0.1', localAddress }), { protocolVersion: 4, reconnectPeriod: 0, ...options });
  t.after(() => client.endAsync(true));
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  return client;
}

/** Sends one CONNECT and resolves with the CONNACK return code, or 'closed' if the broker closed without one. */
function rawConnect(port: number, packet: Buffer, localAddress = '127.0.0.1'): Promise<number | 'closed'> {
  return new Promise((resolve) => {
    const socket = connectTcp({ port, host: '127.0.0.1', localAddress });
    let answered = false;
    socket.on('error', () => undefined);
    socket.on('data', (data) => {
      if (!answered && data[0] === 0x20 && data.length >= 4) {
        answered = true;
        resolve(data[3] as number);
        socket.destroy();
      }
    });
    socket.on('close', () => {
      if (!answered) resolve('closed');
    });
    socket.write(packet);
  });
}

test('CONNECT rules get defined return codes: keepalive 0 or over the limit, an empty client id without clean session', async (t) => {
  const ingress = await startTestIngress(t, { keepaliveLimitS: 3600 });
  const { port } = ingress;
  assert.equal(await rawConnect(port, connectPacket({ clientId: 'em-ka0', clean: true, keepaliveS: 0 })), 2, 'keepalive 0: identifier rejected');
  assert.equal(await rawConnect(port, connectPacket({ clientId: 'em-ka1', clean: true, keepaliveS: 3601 })), 2, 'keepalive over the limit');
  assert.equal(await rawConnect(port, connectPacket({ clientId: '', clean: false, keepaliveS: 60 })), 2, 'MQTT-3.1.3-8');
  assert.equal(await rawConnect(port, connectPacket({ clientId: 'em-ok', clean: true, keepaliveS: 60 })), 0);
  assert.equal(await ingress.metric('iotgw_mqtt_connections_refused_total', { reason: 'keepalive' }), 2);
  assert.equal(await ingress.metric('iotgw_mqtt_connections_refused_total', { reason: 'identifier-rejected' }), 1);
  const why = ingress.logs.lines().find((line) => line.reason === 'keepalive');
  assert.match(String(why?.msg), /keepalive 0 s is not accepted: ask for 1\.\.3600 s \(mqtt\.keepalive_limit_s\)/);
});

test('an account connects only with its own client ids, never a device id, and its records say who published them', async (t) => {
  const hash = await hashPassword('dash-secret', { ln: 10, r: 8, p: 1 });
  const ingress = await startTestIngress(t, {
    allowAnonymous: false,
    devices: [{ id: 'em-1', passwordHash: hash }],
    clients: [{ username: 'ops', passwordHash: hash, subscribe: ['devices/#'], publish: ['devices/#'] }],
  });
  const url = `mqtt://127.0.0.1:${ingress.port}`;
  await assert.rejects(connectClient(t, url, { clientId: 'em-1', username: 'ops', password: 'dash-secret' }), /Identifier rejected/i);
  await assert.rejects(connectClient(t, url, { clientId: 'other', username: 'ops', password: 'dash-secret' }), /Identifier rejected/i);
  const device = await connectClient(t, url, { clientId: 'em-1', username: 'em-1', password: 'dash-secret' });
  const account = await connectClient(t, url, { clientId: 'ops-2', username: 'ops', password: 'dash-secret' });
  assert.equal(device.connected, true, 'the device kept its session');
  await account.publishAsync('devices/em-1/telemetry', 'from the account', { qos: 1 });
  await device.publishAsync('devices/em-1/telemetry', 'from the device', { qos: 1 });
  assert.deepEqual(
    storedRows(ingress.bufferPath).map((row) => [row.payload, row.meta['published-by'] ?? null]),
    [
      ['from the account', 'ops'],
      ['from the device', null],
    ],
  );
});

test('connections per source address are bounded; another address still connects', async (t) => {
  const ingress = await startTestIngress(t, { maxConnectionsPerAddress: 3 });
  const url = `mqtt://127.0.0.1:${ingress.port}`;
  for (const id of ['em-a', 'em-b', 'em-c']) await connectClient(t, url, { clientId: id });
  assert.equal(await rawConnect(ingress.port, connectPacket({ clientId: 'em-d', clean: true, keepaliveS: 60 })), 'closed');
  const elsewhere = await connectFrom(t, ingress.port, '127.0.0.2', { clientId: 'em-e' });
  await elsewhere.publishAsync('devices/em-e/telemetry', 'x', { qos: 1 });
  assert.equal(await ingress.metric('iotgw_mqtt_connections_refused_total', { reason: 'per-address-limit' }), 1);
});

test('unfinished packets of all connections share one byte budget; past it connections close and a device keeps publishing', async (t) => {
  const ingress = await startTestIngress(t, { maxPayloadBytes: 256 * 1024, maxHeldBytes: 1024 * 1024 });
  const device = await connectClient(t, `mqtt://127.0.0.1:${ingress.port}`, { clientId: 'em-steady' });
  // 30 anonymous connections, each sending the first 100 KiB of a 200 KiB PUBLISH and then stalling: 3 MiB wanted.
  const sockets: Socket[] = [];
  let closed = 0;
  for (let index = 0; index < 30; index++) {
    const socket = connectTcp({ port: ingress.port, host: '127.0.0.1' });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closed += 1;
    });
    sockets.push(socket);
    t.after(() => socket.destroy());
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(connectPacket({ clientId: `em-slow-${index}`, clean: true, keepaliveS: 60 }));
    socket.write(Buffer.from([0x30, ...remainingLength(200 * 1024)]));
    socket.write(Buffer.alloc(100 * 1024, 0x61));
  }
  await waitFor(() => closed >= 20, 'connections past the budget to be closed', 10_000, 20);
  assert.ok(closed <= 21, `about 1 MiB / 100 KiB = 10 stalled connections fit; ${closed} of 30 were closed`);
  assert.ok((await ingress.metric('iotgw_mqtt_connections_refused_total', { reason: 'memory-budget' })) >= 20);
  await device.publishAsync('devices/em-steady/telemetry', 'still here', { qos: 1 });
  for (const socket of sockets) socket.destroy();
  // The closed connections gave their share back: a new one may hold as much again.
  await waitFor(async () => (await ingress.metric('iotgw_mqtt_connected_clients')) <= 1, 'the stalled connections to be gone', 10_000, 20);
  const fresh = await connectClient(t, `mqtt://127.0.0.1:${ingress.port}`, { clientId: 'em-big' });
  await fresh.publishAsync('devices/em-big/telemetry', Buffer.alloc(200 * 1024, 0x62), { qos: 1 });
});

test('a flood of wrong passwords from one address runs at most a few password checks; a device elsewhere logs in meanwhile', async (t) => {
  const hash = await hashPassword('right-secret', { ln: 14, r: 8, p: 1 });
  const ingress = await startTestIngress(t, { allowAnonymous: false, devices: [{ id: 'em-1', passwordHash: hash }] });
  const attempts = Array.from({ length: 200 }, (_, index) =>
    rawConnect(ingress.port, connectPacket({ clientId: 'em-1', clean: true, keepaliveS: 60, username: 'em-1', password: `wrong-${index}` }), '127.0.0.2'),
  );
  const legit = await connectClient(t, `mqtt://127.0.0.1:${ingress.port}`, { clientId: 'em-1', username: 'em-1', password: 'right-secret' });
  await legit.publishAsync('devices/em-1/telemetry', 'logged in during the flood', { qos: 1 });
  const codes = await Promise.all(attempts);
  assert.ok(
    codes.every((code) => code === 4 || code === 5 || code === 3),
    `every wrong password refused: ${[...new Set(codes)].join(',')}`,
  );
  const failedChecks = await ingress.metric('iotgw_mqtt_password_checks_total', { result: 'failed' });
  assert.ok(failedChecks <= 10, `at most 10 attempts per address and minute reach scrypt (${failedChecks} did)`);
  assert.ok((await ingress.metric('iotgw_mqtt_connections_refused_total', { reason: 'throttled' })) >= 150);
});

test('retained messages are bounded in count; past the bound they are delivered live but not kept, and counted', async (t) => {
  const ingress = await startTestIngress(t, {
    persistence: { maxRetainedMessages: 2, maxRetainedBytes: 1024 * 1024, maxSessions: 10, maxQueuedPerClient: 10, maxQueuedBytes: 1024 * 1024 },
  });
  const url = `mqtt://127.0.0.1:${ingress.port}`;
  const device = await connectClient(t, url, { clientId: 'em-r' });
  for (const stream of ['a', 'b', 'c']) await device.publishAsync(`devices/em-r/${stream}`, stream, { qos: 1, retain: true });
  assert.equal(await ingress.metric('iotgw_mqtt_broker_limits_total', { limit: 'retained-limit' }), 1);
  const self = await connectClient(t, url, { clientId: 'em-r', clean: true });
  const received: string[] = [];
  self.on('message', (topic) => received.push(topic));
  await self.subscribeAsync('devices/em-r/#', { qos: 1 });
  await waitFor(() => received.length >= 2, 'the retained messages', 5_000, 20);
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.deepEqual(received.sort(), ['devices/em-r/a', 'devices/em-r/b']);
  assert.equal(storedRows(ingress.bufferPath).length, 3, 'all three are records all the same');
});
