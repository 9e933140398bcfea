// A reload of the MQTT device and account lists (SIGHUP) on the real broker with real mqtt.js clients: an
// added device connects, a removed one is disconnected and refused, a changed password applies at the next
// CONNECT, an account's changed ACL applies to its next PUBLISH, and every other connection stays up and
// keeps publishing through the reload.
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { hashPassword } from '../../src/ingress/mqtt-broker/password-hash.ts';
import { startTestIngress, storedRows } from '../helpers/mqtt-ingress.ts';
import { waitFor } from '../helpers/wait-for.ts';

const COST = { ln: 10, r: 8, p: 1 };

async function connectClient(t: TestContext, url: string, options: IClientOptions = {}): Promise<MqttClient> {
  const client = await mqtt.connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, ...options });
  t.after(() => client.endAsync(true));
  return client;
}

test('reload: added devices connect, removed ones are closed and refused, the rest stay connected and keep publishing', async (t) => {
  const [oldSecret, newSecret] = await Promise.all([hashPassword('old-secret', COST), hashPassword('new-secret', COST)]);
  const ingress = await startTestIngress(t, {
    allowAnonymous: false,
    devices: [
      { id: 'em-keep', passwordHash: oldSecret },
      { id: 'em-gone', passwordHash: oldSecret },
      { id: 'em-rekey', passwordHash: oldSecret },
    ],
    clients: [{ username: 'ops', passwordHash: oldSecret, publish: ['devices/#'], subscribe: ['devices/#'] }],
  });
  const url = `mqtt://127.0.0.1:${ingress.port}`;
  const keep = await connectClient(t, url, { clientId: 'em-keep', username: 'em-keep', password: 'old-secret' });
  const gone = await connectClient(t, url, { clientId: 'em-gone', username: 'em-gone', password: 'old-secret' });
  const rekey = await connectClient(t, url, { clientId: 'em-rekey', username: 'em-rekey', password: 'old-secret' });
  const ops = await connectClient(t, url, { clientId: 'ops', username: 'ops', password: 'old-secret' });
  await assert.rejects(connectClient(t, url, { clientId: 'em-new', username: 'em-new', password: 'new-secret' }), /Bad username or password/i);

  // A device publishing without pause through the reload: every publish is acknowledged.
  let sent = 0;
  let publishing = true;
  const steady = (async () => {
    while (publishing) {
      await keep.publishAsync('devices/em-keep/telemetry', `reading ${sent}`, { qos: 1 });
      sent += 1;
    }
  })();
  await waitFor(() => sent >= 20, 'twenty readings before the reload');
  let goneClosed = false;
  gone.on('close', () => {
    goneClosed = true;
  });

  const changes = ingress.ingress.reloadAccounts({
    devices: [
      { id: 'em-keep', passwordHash: oldSecret },
      { id: 'em-rekey', passwordHash: newSecret },
      { id: 'em-new', passwordHash: newSecret },
    ],
    clients: [{ username: 'ops', passwordHash: oldSecret, publish: ['devices/em-keep/#'], subscribe: ['devices/#'] }],
  });
  assert.deepEqual(changes, { added: ['em-new'], removed: ['em-gone'], changed: ['em-rekey', 'ops'], disconnected: ['em-gone'] });

  await waitFor(() => goneClosed, 'the removed device to be disconnected');
  await assert.rejects(connectClient(t, url, { clientId: 'em-gone', username: 'em-gone', password: 'old-secret' }), /Bad username or password/i);
  const added = await connectClient(t, url, { clientId: 'em-new', username: 'em-new', password: 'new-secret' });
  await added.publishAsync('devices/em-new/telemetry', 'first', { qos: 1 });
  // The connected device whose password changed keeps its connection; the new password is needed from its next CONNECT.
  assert.equal(rekey.connected, true);
  await rekey.publishAsync('devices/em-rekey/telemetry', 'still connected', { qos: 1 });
  await assert.rejects(connectClient(t, url, { clientId: 'em-rekey', username: 'em-rekey', password: 'old-secret' }), /Bad username or password/i);
  // The account's narrowed ACL applies at once: a publish outside it closes the connection (MQTT 3.1.1 has no PUBACK error).
  await ops.publishAsync('devices/em-keep/telemetry', 'from ops', { qos: 1 });
  ops.publish('devices/em-new/telemetry', 'outside the ACL now', { qos: 1 }, () => undefined);
  await waitFor(
    () =>
      ingress.logs
        .lines()
        .some((line) => /ops: publish refused: account ops may not publish/.test(String(line.msg)) && line.topic === 'devices/em-new/telemetry'),
    'the publish outside the new ACL refused',
  );

  const before = sent;
  await waitFor(() => sent >= before + 20, 'twenty more readings after the reload');
  publishing = false;
  await steady;
  assert.equal(keep.connected, true, 'the kept device was never disconnected');
  const stored = storedRows(ingress.bufferPath);
  assert.equal(stored.filter((row) => row.key === 'em-keep').length, sent + 1, 'every acknowledged reading (and the one from ops) is stored');
  assert.ok(stored.some((row) => row.key === 'em-new' && row.payload === 'first'));
  assert.ok(!stored.some((row) => row.payload === 'outside the ACL now'));
});

test('reload: an anonymous client whose id is now a listed device is disconnected', async (t) => {
  const secret = await hashPassword('secret', COST);
  const ingress = await startTestIngress(t, { allowAnonymous: true });
  const url = `mqtt://127.0.0.1:${ingress.port}`;
  const squatter = await connectClient(t, url, { clientId: 'em-7' });
  const bystander = await connectClient(t, url, { clientId: 'em-8' });
  let closed = false;
  squatter.on('close', () => {
    closed = true;
  });
  const changes = ingress.ingress.reloadAccounts({ devices: [{ id: 'em-7', passwordHash: secret }], clients: [] });
  assert.deepEqual(changes.disconnected, ['em-7']);
  await waitFor(() => closed, 'the anonymous em-7 to be disconnected');
  await bystander.publishAsync('devices/em-8/telemetry', 'unaffected', { qos: 1 });
  assert.equal(bystander.connected, true);
});
