// A connection closed by aedes' drain timeout (its device read nothing the broker sent) is reported once, as a
// refused connection with its client id and what to check, however many of its publishes were still waiting;
// other client errors are not reported. Real aedes, a connection that never reads (test/helpers).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Aedes } from 'aedes';
import '../../src/ingress/mqtt-broker/puback-writes.ts';
import { reportUnreadConnections } from '../../src/ingress/mqtt-broker/unread-connections.ts';
import { connectUnread } from '../helpers/unread-connection.ts';
import { waitFor } from '../helpers/wait-for.ts';

test('a connection closed for not reading is reported once, naming the client and what to check', async (t) => {
  const broker = await Aedes.createBroker({ drainTimeout: 300 });
  t.after(() => new Promise((resolve) => broker.close(() => resolve(undefined))));
  const refused: [string, string, string][] = [];
  reportUnreadConnections(broker, 300, (reason, subject, message) => refused.push([reason, subject, message]));
  let clientErrors = 0;
  broker.on('clientError', () => clientErrors++);

  const deaf = await connectUnread(broker, 'meter-17');
  await deaf.publish('devices/meter-17/telemetry', 4, 50);
  await waitFor(() => deaf.connection.destroyed, 'the drain timeout');
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.ok(clientErrors > 1, `aedes failed ${clientErrors} waiting publishes`);
  assert.equal(refused.length, 1);
  const [reason, subject, message] = refused[0] as [string, string, string];
  assert.deepEqual([reason, subject], ['not-reading', 'meter-17']);
  assert.match(message, /^meter-17: connection closed: what the gateway sent it \(PUBACKs, commands\) did not drain for 0\.3 s; .*firmware and link$/);
});

test('other client errors are not reported as not reading', async (t) => {
  const broker = await Aedes.createBroker();
  t.after(() => new Promise((resolve) => broker.close(() => resolve(undefined))));
  const refused: string[] = [];
  reportUnreadConnections(broker, 60_000, (reason) => refused.push(reason));
  const errors: string[] = [];
  broker.on('clientError', (_client, error) => errors.push(error.message));
  const client = await connectUnread(broker, 'meter-18', 1 << 20);
  client.connection.push(Buffer.from([0xf0, 0x00])); // reserved packet type: aedes closes the client
  await waitFor(() => client.connection.destroyed, 'the close');
  assert.ok(errors.length > 0 && !errors.includes('drain timeout'), errors.join(', '));
  assert.deepEqual(refused, []);
});
