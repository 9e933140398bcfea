// aedes' memory persistence as the broker bounds it: with no persistent session, no topic has offline subscribers
// (and the match is skipped); once a session stores subscriptions they are found, and after it is cleaned not.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createBoundedPersistence, settledWith } from '../../src/ingress/mqtt-broker/bounded-persistence.ts';

interface Persistence {
  addSubscriptions(client: { id: string }, subs: readonly { topic: string; qos: number }[]): Promise<void>;
  cleanSubscriptions(client: { id: string }): Promise<void>;
  subscriptionsByTopic(topic: string): Promise<readonly { clientId: string; topic: string }[]>;
  outgoingEnqueueCombi(subs: readonly { clientId: string }[], packet: { topic: string; payload: Buffer }): Promise<void>;
}

const LIMITS = { maxRetainedMessages: 10, maxRetainedBytes: 1024, maxSessions: 10, maxQueuedPerClient: 10, maxQueuedBytes: 1024 };

test('offline subscribers are found exactly while a persistent session holds subscriptions', async () => {
  const persistence = createBoundedPersistence(LIMITS, () => undefined) as Persistence;
  const clientIds = async (topic: string) => (await persistence.subscriptionsByTopic(topic)).map((sub) => sub.clientId).sort();
  assert.deepEqual(await clientIds('devices/m-1/commands/dim'), [], 'no session: nobody');
  await persistence.addSubscriptions({ id: 'm-1' }, [{ topic: 'devices/m-1/commands/+', qos: 1 }]);
  await persistence.addSubscriptions({ id: 'm-2' }, [{ topic: 'devices/m-2/commands/+', qos: 1 }]);
  assert.deepEqual(await clientIds('devices/m-1/commands/dim'), ['m-1']);
  assert.deepEqual(await clientIds('devices/m-1/telemetry'), []);
  await persistence.cleanSubscriptions({ id: 'm-2' });
  assert.deepEqual(await clientIds('devices/m-1/commands/dim'), ['m-1'], 'cleaning one session leaves the other');
  await persistence.cleanSubscriptions({ id: 'm-1' });
  assert.deepEqual(await clientIds('devices/m-1/commands/dim'), [], 'all sessions cleaned: nobody');
  await persistence.addSubscriptions({ id: 'm-3' }, [{ topic: 'devices/m-3/#', qos: 1 }]);
  assert.deepEqual(await clientIds('devices/m-3/commands/dim'), ['m-3'], 'a new session after that is found again');
});

test('the answers known at once call back within then, and behave as settled promises to await and Promise', async () => {
  const value = Object.freeze(['subscription']);
  const answer = settledWith(value);
  const seen: unknown[] = [];
  const chained = answer.then((got) => {
    seen.push(got);
  });
  assert.deepEqual(seen, [value], 'onFulfilled ran before then returned (aedes chains nothing after it)');
  assert.equal(await chained, undefined);
  assert.equal(await answer, value, 'await adopts it');
  assert.deepEqual(await Promise.all([answer, settledWith(2)]), [value, 2]);
  assert.equal(await answer.then((got) => got.length + 1), 2, 'a value returned from onFulfilled is the chained result');
  assert.equal(await answer.then(), value, 'then without onFulfilled passes the value on');
  const thrown = new Error('listener bug');
  await assert.rejects(
    answer.then(() => {
      throw thrown;
    }),
    (error) => error === thrown,
    'a throw in onFulfilled becomes the chained rejection, as with a promise',
  );
  let finished = false;
  assert.equal(await answer.finally(() => (finished = true)), value);
  assert.ok(finished);
  await assert.rejects(
    answer.finally(() => {
      throw thrown;
    }),
    (error) => error === thrown,
    'a throw in onFinally rejects, as with a promise',
  );

  const persistence = createBoundedPersistence(LIMITS, () => undefined) as Persistence;
  let found: readonly unknown[] | undefined;
  void persistence.subscriptionsByTopic('devices/m-1/telemetry').then((subs) => (found = subs));
  assert.deepEqual(found, [], 'with no persistent session the lookup answers within then');
  let queued = false;
  void persistence.outgoingEnqueueCombi([], { topic: 'devices/m-1/telemetry', payload: Buffer.from('1') }).then(() => (queued = true));
  assert.ok(queued, 'nothing to queue answers within then');
});
