// What devices see from the embedded broker: real aedes on an ephemeral port, real mqtt.js and
// mosquitto_pub clients, a real SQLite buffer read back through a second connection (so "stored"
// means committed to the file, not held in memory).
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as connectTcp } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { promisify } from 'node:util';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { hashPassword } from '../../src/ingress/mqtt-broker/password-hash.ts';
import { startTestIngress, storedRows } from '../helpers/mqtt-ingress.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait-for.ts';

const run = promisify(execFile);

async function connectClient(t: TestContext, url: string, options: IClientOptions = {}): Promise<MqttClient> {
  const client = await mqtt.connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, ...options });
  t.after(() => client.endAsync(true));
  return client;
}

/** Publishes QoS 1 and waits until the broker closes the connection; returns whether a PUBACK came first. */
async function publishExpectingClose(client: MqttClient, topic: string, payload: string | Buffer): Promise<boolean> {
  let acked = false;
  const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
  client.publish(topic, payload, { qos: 1 }, (error) => {
    if (!error) acked = true;
  });
  await closed;
  return acked;
}

test('a QoS 1 publish is committed to the SQLite file before the device receives its PUBACK', async (t) => {
  const ingress = await startTestIngress(t);
  const client = await connectClient(t, `mqtt://127.0.0.1:${ingress.port}`, { clientId: 'em-1' });
  for (let n = 1; n <= 5; n++) {
    await client.publishAsync('devices/em-1/telemetry', `{"n":${n}}`, { qos: 1 });
    // Read through another connection right after the PUBACK: the row must already be in the file.
    assert.equal(storedRows(ingress.bufferPath).length, n);
  }
  assert.deepEqual(
    storedRows(ingress.bufferPath).map((row) => row.payload),
    [1, 2, 3, 4, 5].map((n) => `{"n":${n}}`),
  );
  assert.equal(storedRows(ingress.bufferPath)[0]?.key, 'em-1');
  assert.equal(storedRows(ingress.bufferPath)[0]?.stream, 'telemetry');
  assert.equal(await ingress.metric('iotgw_ingress_accepted_total', { source: 'mqtt' }), 5);
});

test('mosquitto_pub (a second, independent client implementation) is acknowledged and stored', async (t) => {
  const ingress = await startTestIngress(t);
  await run('mosquitto_pub', [
    '-h',
    '127.0.0.1',
    '-p',
    String(ingress.port),
    '-V',
    'mqttv311',
    '-i',
    'wm-7',
    '-q',
    '1',
    '-t',
    'devices/wm-7/telemetry',
    '-m',
    '{"m3":12.5}',
  ]);
  assert.deepEqual(storedRows(ingress.bufferPath), [{ key: 'wm-7', stream: 'telemetry', payload: '{"m3":12.5}', meta: {} }]);
});

test('when the buffer refuses (full, policy reject) the device gets no PUBACK and the connection closes', async (t) => {
  const ingress = await startTestIngress(t, {}, { maxRecords: 2, whenFull: 'reject' });
  const client = await connectClient(t, `mqtt://127.0.0.1:${ingress.port}`, { clientId: 'em-1' });
  await client.publishAsync('devices/em-1/telemetry', '1', { qos: 1 });
  await client.publishAsync('devices/em-1/telemetry', '2', { qos: 1 });
  assert.equal(await publishExpectingClose(client, 'devices/em-1/telemetry', '3'), false);
  assert.deepEqual(
    storedRows(ingress.bufferPath).map((row) => row.payload),
    ['1', '2'],
  );
  assert.equal(await ingress.metric('iotgw_ingress_rejected_total', { source: 'mqtt', reason: 'buffer-full' }), 1);
  assert.ok(ingress.logs.messages().some((message) => message.startsWith('refusing new records: buffer full')));
});

test('an oversize payload is refused, counted and never stored; the broker keeps serving others', async (t) => {
  const ingress = await startTestIngress(t, { maxPayloadBytes: 1024 });
  const client = await connectClient(t, `mqtt://127.0.0.1:${ingress.port}`, { clientId: 'em-1' });
  assert.equal(await publishExpectingClose(client, 'devices/em-1/telemetry', Buffer.alloc(2000, 65)), false);
  assert.equal(storedRows(ingress.bufferPath).length, 0);
  assert.equal(await ingress.metric('iotgw_ingress_rejected_total', { source: 'mqtt', reason: 'oversize' }), 1);
  assert.ok(ingress.logs.lines().some((line) => line.reason === 'oversize' && String(line.msg).includes('max_payload_bytes')));

  const other = await connectClient(t, `mqtt://127.0.0.1:${ingress.port}`, { clientId: 'em-2' });
  await other.publishAsync('devices/em-2/telemetry', 'ok', { qos: 1 });
  assert.equal(storedRows(ingress.bufferPath).length, 1);
});

test('a packet declaring a huge length is cut off at the socket before it is buffered', async (t) => {
  const ingress = await startTestIngress(t, { maxPayloadBytes: 1024 });
  const socket = connectTcp(ingress.port, '127.0.0.1');
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => undefined);
  // CONNECT fixed header declaring 268,435,455 bytes, then a trickle of body.
  socket.write(Buffer.from([0x10, 0xff, 0xff, 0xff, 0x7f]));
  socket.write(Buffer.alloc(100));
  await closed;
  assert.equal(await ingress.metric('iotgw_ingress_rejected_total', { source: 'mqtt', reason: 'oversize' }), 1);
});

test('a device may publish only under its own prefix; a foreign topic is refused and not stored', async (t) => {
  const ingress = await startTestIngress(t);
  const client = await connectClient(t, `mqtt://127.0.0.1:${ingress.port}`, { clientId: 'em-1' });
  assert.equal(await publishExpectingClose(client, 'devices/em-2/telemetry', 'spoof'), false);
  const again = await connectClient(t, `mqtt://127.0.0.1:${ingress.port}`, { clientId: 'em-1' });
  assert.equal(await publishExpectingClose(again, 'somewhere/else', 'x'), false);
  assert.equal(storedRows(ingress.bufferPath).length, 0);
  assert.equal(await ingress.metric('iotgw_ingress_rejected_total', { source: 'mqtt', reason: 'not-authorized' }), 2);
});

test('device credentials: right password works, wrong password and unknown users are refused, client id is bound', async (t) => {
  const hash = await hashPassword('em-1-secret', { ln: 10, r: 8, p: 1 });
  const ingress = await startTestIngress(t, { allowAnonymous: false, devices: [{ id: 'em-1', passwordHash: hash }] });
  const url = `mqtt://127.0.0.1:${ingress.port}`;

  const good = await connectClient(t, url, { clientId: 'em-1', username: 'em-1', password: 'em-1-secret' });
  await good.publishAsync('devices/em-1/telemetry', 'authenticated', { qos: 1 });
  await good.endAsync();

  await assert.rejects(connectClient(t, url, { clientId: 'em-1', username: 'em-1', password: 'wrong' }), /Bad username or password/i);
  await assert.rejects(connectClient(t, url, { clientId: 'x', username: 'nobody', password: 'whatever' }), /Bad username or password/i);
  await assert.rejects(connectClient(t, url, { clientId: 'em-1' }), /Not authorized/i);
  await assert.rejects(connectClient(t, url, { clientId: 'em-2', username: 'em-1', password: 'em-1-secret' }), /Identifier rejected/i);

  assert.deepEqual(
    storedRows(ingress.bufferPath).map((row) => row.payload),
    ['authenticated'],
  );
  assert.equal(await ingress.metric('iotgw_mqtt_connections_refused_total', { reason: 'bad-credentials' }), 2);
  assert.ok(!JSON.stringify(ingress.logs.lines()).includes('em-1-secret'), 'passwords never reach the log');
});

test('with anonymous access on, an anonymous client may not take the client id of a listed device or account', async (t) => {
  const hash = await hashPassword('em-1-secret', { ln: 10, r: 8, p: 1 });
  const ingress = await startTestIngress(t, {
    allowAnonymous: true,
    devices: [{ id: 'em-1', passwordHash: hash }],
    clients: [{ username: 'dashboard', passwordHash: hash, subscribe: ['devices/#'], publish: [] }],
  });
  const url = `mqtt://127.0.0.1:${ingress.port}`;
  const device = await connectClient(t, url, { clientId: 'em-1', username: 'em-1', password: 'em-1-secret' });
  await assert.rejects(connectClient(t, url, { clientId: 'em-1' }), /Not authorized/i);
  await assert.rejects(connectClient(t, url, { clientId: 'dashboard' }), /Not authorized/i);
  assert.equal(device.connected, true, "the device's session was not taken over");
  await device.publishAsync('devices/em-1/telemetry', 'still mine', { qos: 1 });
  const stranger = await connectClient(t, url, { clientId: 'em-unlisted' });
  await stranger.publishAsync('devices/em-unlisted/telemetry', 'anonymous', { qos: 1 });
  assert.deepEqual(
    storedRows(ingress.bufferPath).map((row) => row.payload),
    ['still mine', 'anonymous'],
  );
  assert.equal(await ingress.metric('iotgw_mqtt_connections_refused_total', { reason: 'not-authorized' }), 2);
});

test('subscribers (a dashboard account) receive device publishes as from any MQTT 3.1.1 broker', async (t) => {
  const hash = await hashPassword('dash-secret', { ln: 10, r: 8, p: 1 });
  const ingress = await startTestIngress(t, {
    allowAnonymous: true,
    clients: [{ username: 'dashboard', passwordHash: hash, subscribe: ['devices/#'], publish: [] }],
  });
  const url = `mqtt://127.0.0.1:${ingress.port}`;
  const dashboard = await connectClient(t, url, { clientId: 'dashboard-1', username: 'dashboard', password: 'dash-secret' });
  const received: string[] = [];
  dashboard.on('message', (topic, payload) => received.push(`${topic} ${payload.toString()}`));
  await dashboard.subscribeAsync('devices/+/telemetry', { qos: 1 });
  // Outside its grant: SUBACK 0x80 (failure), and the connection stays up.
  const refusedQos = await dashboard.subscribeAsync('$SYS/#', { qos: 0 }).then(
    (granted) => granted[0]?.qos,
    (error: { packet?: { granted?: number[] } }) => error.packet?.granted?.[0],
  );
  assert.equal(refusedQos, 128);
  assert.equal(dashboard.connected, true);

  const device = await connectClient(t, url, { clientId: 'sl-3' });
  await device.publishAsync('devices/sl-3/telemetry', '{"on":true}', { qos: 1 });
  await device.publishAsync('devices/sl-3/telemetry', '{"on":false}', { qos: 0 });
  await waitFor(() => received.length === 2, 'the dashboard to receive both publishes');
  assert.deepEqual(received, ['devices/sl-3/telemetry {"on":true}', 'devices/sl-3/telemetry {"on":false}']);
  // QoS 0 is stored too (best effort: there is no acknowledgement to withhold).
  await waitFor(() => storedRows(ingress.bufferPath).length === 2, 'the QoS 0 publish to be stored');
});

test('TLS listener with client certificates: the certificate CN is the device identity', async (t) => {
  const dir = tempDir(t);
  makeCertificates(dir, ['em-9', 'em-10']);
  const ingress = await startTestIngress(t, {
    allowAnonymous: false,
    tls: { port: 0, certFile: join(dir, 'server.pem'), keyFile: join(dir, 'server.key'), caFile: join(dir, 'ca.pem'), crlFile: '', requireClientCert: true },
  });
  assert.ok(ingress.tlsPort !== null);
  const url = `mqtts://localhost:${ingress.tlsPort}`;
  const tlsFor = (name: string): IClientOptions => ({
    ca: readFileSync(join(dir, 'ca.pem')),
    cert: readFileSync(join(dir, `${name}.pem`)),
    key: readFileSync(join(dir, `${name}.key`)),
  });
  const device = await connectClient(t, url, { clientId: 'em-9', ...tlsFor('em-9') });
  await device.publishAsync('devices/em-9/telemetry', 'over-tls', { qos: 1 });
  assert.equal(await publishExpectingClose(device, 'devices/em-10/telemetry', 'spoof'), false);
  await assert.rejects(connectClient(t, url, { clientId: 'em-10', ...tlsFor('em-9') }), /Identifier rejected/i);
  await assert.rejects(connectClient(t, url, { clientId: 'em-9', ca: readFileSync(join(dir, 'ca.pem')) }));
  assert.deepEqual(
    storedRows(ingress.bufferPath).map((row) => row.payload),
    ['over-tls'],
  );
});

test('a full disk never leads to a PUBACK for an uncommitted record', async (t) => {
  const mountPoint = mkdtempSync(join(tmpdir(), 'iotgw-full-disk-'));
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=192k', 'tmpfs', mountPoint], { encoding: 'utf8' });
  assert.equal(mount.status, 0, `this test mounts a small tmpfs to fill a real disk and needs root (CAP_SYS_ADMIN): ${mount.stderr}`);
  mkdirSync(join(mountPoint, 'state'));
  const ingress = await startTestIngress(t, { maxPayloadBytes: 8192 }, { path: join(mountPoint, 'state', 'buffer.db') });
  t.after(() => {
    spawnSync('umount', ['-l', mountPoint]);
    rmSync(mountPoint, { recursive: true, force: true });
  });

  const acked: number[] = [];
  let refused = false;
  for (let n = 0; n < 400 && !refused; n++) {
    const client = await connectClient(t, `mqtt://127.0.0.1:${ingress.port}`, { clientId: 'em-1' });
    const closed = new Promise<'closed'>((resolve) => client.once('close', () => resolve('closed')));
    const result = await Promise.race([
      client.publishAsync('devices/em-1/telemetry', `${n}:${'x'.repeat(4000)}`, { qos: 1 }).then(() => 'acked' as const),
      closed,
    ]);
    if (result === 'acked') acked.push(n);
    else refused = true;
    client.end(true);
  }
  assert.ok(refused, 'the disk filled up and a publish was refused');
  assert.equal(await ingress.metric('iotgw_ingress_rejected_total', { source: 'mqtt', reason: 'disk-full' }), 1);
  // Every acknowledged record is in the file, and nothing else is.
  const stored = storedRows(ingress.bufferPath).map((row) => Number(row.payload.split(':')[0]));
  assert.deepEqual(stored, acked);
  assert.ok(ingress.logs.messages().some((message) => /refusing new records: disk full/.test(message)));
});

/** A throwaway CA, a server certificate for localhost and one client certificate per device (CN = device id). */
function makeCertificates(dir: string, devices: readonly string[]): void {
  const openssl = (...args: string[]) => {
    const result = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${result.stderr}`);
  };
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=iotgw-test-ca');
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  for (const name of ['server', ...devices]) {
    const subject = name === 'server' ? '/CN=localhost' : `/CN=${name}`;
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject);
    const extension = name === 'server' ? ['-extfile', 'server.ext'] : [];
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', ...extension);
  }
}

/** Revokes `names` (certificates made by makeCertificates) and writes the CA's CRL to crl.pem. */
function revoke(dir: string, names: readonly string[]): void {
  const openssl = (...args: string[]) => {
    const result = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${result.stderr}`);
  };
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'crlnumber'), '01\n');
  writeFileSync(
    join(dir, 'ca.cnf'),
    '[ca]\ndefault_ca = test\n[test]\ndatabase = index.txt\ncrlnumber = crlnumber\ndefault_md = sha256\ndefault_crl_days = 2\ncertificate = ca.pem\nprivate_key = ca.key\n',
  );
  for (const name of names) openssl('ca', '-config', 'ca.cnf', '-revoke', `${name}.pem`);
  openssl('ca', '-config', 'ca.cnf', '-gencrl', '-out', 'crl.pem');
}

test('TLS: a revoked certificate (mqtt.tls.crl_file) and a certificate whose CN is no device id are refused', async (t) => {
  const dir = tempDir(t);
  makeCertificates(dir, ['em-11', 'em-12', '#']);
  revoke(dir, ['em-12']);
  const ingress = await startTestIngress(t, {
    allowAnonymous: false,
    tls: {
      port: 0,
      certFile: join(dir, 'server.pem'),
      keyFile: join(dir, 'server.key'),
      caFile: join(dir, 'ca.pem'),
      crlFile: join(dir, 'crl.pem'),
      requireClientCert: true,
    },
  });
  const url = `mqtts://localhost:${ingress.tlsPort}`;
  const tlsFor = (name: string): IClientOptions => ({
    ca: readFileSync(join(dir, 'ca.pem')),
    cert: readFileSync(join(dir, `${name}.pem`)),
    key: readFileSync(join(dir, `${name}.key`)),
  });
  const good = await connectClient(t, url, { clientId: 'em-11', ...tlsFor('em-11') });
  await good.publishAsync('devices/em-11/telemetry', 'valid', { qos: 1 });
  // A handshake the server refuses ends the TLS socket before any MQTT byte comes back.
  const revoked = await new Promise<string>((resolve) => {
    const socket = connectTls({ host: 'localhost', port: ingress.tlsPort ?? 0, ...(tlsFor('em-12') as object) });
    socket.on('error', (error) => resolve(`error: ${error.message}`));
    socket.on('data', () => resolve('data'));
    socket.on('close', () => resolve('closed'));
    socket.on('secureConnect', () => socket.write(Buffer.from('101100044d5154540402003c0005656d2d3132', 'hex')));
  });
  assert.notEqual(revoked, 'data', 'no CONNACK for a revoked certificate');
  await assert.rejects(connectClient(t, url, { clientId: '#', ...tlsFor('#') }), /Not authorized/i);
  assert.ok((await ingress.metric('iotgw_mqtt_connections_refused_total', { reason: 'tls' })) >= 1, 'the revoked certificate failed the handshake');
  assert.deepEqual(
    storedRows(ingress.bufferPath).map((row) => row.payload),
    ['valid'],
  );
});

test('connections beyond mqtt.max_connections are refused and counted; existing devices keep working', async (t) => {
  const ingress = await startTestIngress(t, { maxConnections: 2 });
  const url = `mqtt://127.0.0.1:${ingress.port}`;
  const first = await connectClient(t, url, { clientId: 'em-1' });
  await connectClient(t, url, { clientId: 'em-2' });
  // Node's net.Server drops the third socket at once, before any MQTT is spoken.
  const third = connectTcp(ingress.port, '127.0.0.1');
  third.on('error', () => undefined);
  await new Promise<void>((resolve) => third.once('close', () => resolve()));
  await first.publishAsync('devices/em-1/telemetry', 'still-served', { qos: 1 });
  assert.ok((await ingress.metric('iotgw_mqtt_connections_refused_total', { reason: 'max-connections' })) >= 1);
  assert.deepEqual(
    storedRows(ingress.bufferPath).map((row) => row.payload),
    ['still-served'],
  );
});
