// The MQTT publish hook over the real group commit and a real SQLite buffer, called as aedes calls it:
// a QoS 1 publish's done(null) comes once, only after its record is in the file; QoS 0 is let through at
// once and stored after; a refusal (buffer full, shutting down) answers done(error) for QoS 1, nothing
// for QoS 0, and is counted through the rejections with its reason either way.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import type { Client, PublishPacket } from 'aedes';
import { openWorkerBuffer } from '../../src/buffer/worker-buffer.ts';
import { createMetrics } from '../../src/core/metrics.ts';
import { createAcceptBatcher } from '../../src/ingress/accept-batcher.ts';
import { type Authorization, createAuthorization } from '../../src/ingress/mqtt-broker/authorization.ts';
import type { Identity } from '../../src/ingress/mqtt-broker/device-acl.ts';
import { createRejections } from '../../src/ingress/rejections.ts';
import { createRouter } from '../../src/record/routes.ts';
import { captureLog } from '../helpers/capture-log.ts';
import { storedRows } from '../helpers/mqtt-ingress.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const DEVICE = { id: 'em-1' } as Client;

const DEVICE_IDENTITY = (client: Client): Identity | undefined => (client === DEVICE ? { kind: 'device', deviceId: 'em-1' } : undefined);

async function setup(t: TestContext, maxRecords = 1000, identityOf = DEVICE_IDENTITY) {
  const path = join(tempDir(t), 'buffer.db');
  const logs = captureLog();
  const metrics = createMetrics({ processMetrics: false });
  const buffer = await openWorkerBuffer({ path, maxRecords, maxBytes: 100_000_000, whenFull: 'reject' }, { log: logs.log, metrics });
  const batcher = createAcceptBatcher({ commitIntervalMs: 2, commitMaxRecords: 1000 }, { buffer, log: logs.log, metrics });
  t.after(async () => {
    await batcher.close();
    await buffer.close();
  });
  const authorization = createAuthorization(
    { maxPayloadBytes: 4096 },
    {
      acceptThen: batcher.acceptThen,
      router: createRouter('records', []),
      rejections: createRejections({ source: 'mqtt', what: 'MQTT message', intervalMs: 60_000 }, { log: logs.log, metrics }),
      identityOf,
      nowMs: Date.now,
    },
  );
  async function rejected(reason: string): Promise<number> {
    const { values } = await metrics.ingressRejected.get();
    return values.find((value) => value.labels.source === 'mqtt' && value.labels.reason === reason)?.value ?? 0;
  }
  return { path, batcher, authorization, rejected };
}

function publish(qos: 0 | 1, payload: string, topic = 'devices/em-1/telemetry'): PublishPacket {
  return { cmd: 'publish', topic, payload: Buffer.from(payload), qos, retain: false, dup: false, messageId: 1 } as PublishPacket;
}

/** Calls the hook as aedes does, keeping each done call with the payloads in the buffer file at that moment. */
function authorize(authorization: Authorization, path: string, packet: PublishPacket, client = DEVICE) {
  const calls: { readonly error: Error | null; readonly stored: string[] }[] = [];
  authorization.authorizePublish(client, packet, (error) => calls.push({ error, stored: storedRows(path).map((row) => row.payload) }));
  return calls;
}

test('QoS 1: done(null) once, only after the record is committed; QoS 0: done(null) at once, stored after', async (t) => {
  const h = await setup(t);
  const qos1 = authorize(h.authorization, h.path, publish(1, 'one'));
  assert.equal(qos1.length, 0, 'no answer before the commit');
  const qos0 = authorize(h.authorization, h.path, publish(0, 'zero'));
  assert.deepEqual(qos0, [{ error: null, stored: [] }], 'QoS 0 is not held for the commit');
  await h.batcher.flush();

  assert.deepEqual(qos1, [{ error: null, stored: ['one', 'zero'] }]);
  assert.deepEqual(
    storedRows(h.path).map((row) => row.payload),
    ['one', 'zero'],
  );
  assert.equal(qos0.length, 1);
});

test('a refused commit: QoS 1 gets done(error) after it, QoS 0 only the count; shutting down likewise', async (t) => {
  const h = await setup(t, 1);
  const filled = authorize(h.authorization, h.path, publish(1, 'fill'));
  await h.batcher.flush();
  assert.deepEqual(filled, [{ error: null, stored: ['fill'] }]);

  const full1 = authorize(h.authorization, h.path, publish(1, 'one'));
  const full0 = authorize(h.authorization, h.path, publish(0, 'zero'));
  assert.equal(full1.length, 0, 'no answer before the commit');
  await h.batcher.flush();
  assert.equal(full1.length, 1);
  assert.match(String(full1[0]?.error?.message), /full/);
  assert.deepEqual(
    full0.map((call) => call.error),
    [null],
  );
  assert.equal(await h.rejected('buffer-full'), 2, 'both refusals counted');

  await h.batcher.close();
  const closed1 = authorize(h.authorization, h.path, publish(1, 'two'));
  const closed0 = authorize(h.authorization, h.path, publish(0, 'three'));
  await h.batcher.flush();
  assert.deepEqual(
    closed1.map((call) => call.error?.message),
    ['the gateway is shutting down'],
  );
  assert.deepEqual(
    closed0.map((call) => call.error),
    [null],
  );
  assert.equal(await h.rejected('shutting-down'), 2);
  assert.deepEqual(
    storedRows(h.path).map((row) => row.payload),
    ['fill'],
  );
});

test('a topic published again is decided as the first time, per identity: another topic or a reloaded grant is decided afresh', async (t) => {
  const account = { id: 'dashboard' } as Client;
  const identities = new Map<Client, Identity>([[account, { kind: 'client', username: 'ops', publish: ['devices/em-1/#'], subscribe: [] }]]);
  const h = await setup(t, 1000, (client) => identities.get(client));
  const errors = async (topic: string, payload: string) => {
    const calls = authorize(h.authorization, h.path, publish(1, payload, topic), account);
    await h.batcher.flush();
    return calls.map((call) => call.error?.message ?? null);
  };
  assert.deepEqual(await errors('devices/em-1/telemetry', 'a'), [null]);
  assert.deepEqual(await errors('devices/em-1/telemetry', 'b'), [null], 'the same topic again');
  assert.deepEqual(await errors('devices/em-2/telemetry', 'c'), ['account ops may not publish to devices/em-2/telemetry']);
  assert.deepEqual(await errors('devices/em-1/status', 'd'), [null], 'another topic under the grant');
  assert.deepEqual(await errors('devices/em-1/status', 'e'), [null]);
  // A reload that changes the account's grant gives the client a new identity (broker.ts): the old decision is not used.
  identities.set(account, { kind: 'client', username: 'ops', publish: ['devices/em-2/#'], subscribe: [] });
  assert.deepEqual(await errors('devices/em-1/status', 'f'), ['account ops may not publish to devices/em-1/status']);
  assert.deepEqual(await errors('devices/em-2/telemetry', 'g'), [null]);
  assert.deepEqual(
    storedRows(h.path).map((row) => [row.key, row.stream, row.payload, row.meta['published-by']]),
    [
      ['em-1', 'telemetry', 'a', 'ops'],
      ['em-1', 'telemetry', 'b', 'ops'],
      ['em-1', 'status', 'd', 'ops'],
      ['em-1', 'status', 'e', 'ops'],
      ['em-2', 'telemetry', 'g', 'ops'],
    ],
  );
  assert.equal(await h.rejected('not-authorized'), 2);
});
