// The group commit's two forms over a real SQLite buffer (worker thread), read back through a second
// connection: acceptThen, the callback form the MQTT path uses, is answered exactly once, only after its
// records are in the file, and with what accept resolves to for the same input, refusals included. Clock
// marking, commit listeners and the accepted-records metric hold for both forms alike.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { openWorkerBuffer, type WorkerBuffer } from '../../src/buffer/worker-buffer.ts';
import { createMetrics, type Metrics } from '../../src/core/metrics.ts';
import { type AcceptBatcher, createAcceptBatcher } from '../../src/ingress/accept-batcher.ts';
import type { AcceptDone, AcceptResult } from '../../src/ingress/ingress.ts';
import type { NewRecord, RecordSource } from '../../src/record/record.ts';
import { captureLog } from '../helpers/capture-log.ts';
import { storedRows } from '../helpers/mqtt-ingress.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const NOW = Date.parse('2025-03-01T12:00:00Z');

interface Harness {
  readonly path: string;
  readonly buffer: WorkerBuffer;
  readonly batcher: AcceptBatcher;
  readonly metrics: Metrics;
  /** Records each commit listener was told of, in order. */
  readonly told: string[];
  /** Whether the clock counts as synchronized. */
  trusted: boolean;
}

async function setup(t: TestContext, maxRecords = 1000): Promise<Harness> {
  const path = join(tempDir(t), 'buffer.db');
  const logs = captureLog();
  const metrics = createMetrics({ processMetrics: false });
  const buffer = await openWorkerBuffer({ path, maxRecords, maxBytes: 100_000_000, whenFull: 'reject' }, { log: logs.log, metrics });
  const told: string[] = [];
  const harness: Harness = {
    path,
    buffer,
    metrics,
    told,
    trusted: true,
    batcher: createAcceptBatcher(
      { commitIntervalMs: 2, commitMaxRecords: 1000 },
      {
        buffer,
        log: logs.log,
        metrics,
        clock: { isTrusted: () => harness.trusted },
        onCommitted: [(records) => told.push(...records.map((record) => record.key))],
      },
    ),
  };
  t.after(async () => {
    await harness.batcher.close();
    await buffer.close();
  });
  return harness;
}

function reading(key: string, source: RecordSource = 'mqtt'): NewRecord {
  return { key, stream: 'telemetry', source, receivedAtMs: NOW, eventTimeMs: NOW, payload: Buffer.from(`{"from":"${key}"}`), meta: {} };
}

/** An AcceptDone that keeps each call with the keys in the buffer file at that moment. */
function recorder(path: string): { readonly done: AcceptDone; readonly calls: { readonly result: AcceptResult; readonly storedKeys: string[] }[] } {
  const calls: { result: AcceptResult; storedKeys: string[] }[] = [];
  return { calls, done: (result) => calls.push({ result, storedKeys: storedRows(path).map((row) => row.key) }) };
}

async function accepted(metrics: Metrics, source: string): Promise<number> {
  const { values } = await metrics.ingressAccepted.get();
  return values.find((value) => value.labels.source === source)?.value ?? 0;
}

test('acceptThen is answered once, after its records are committed, with what accept resolves to', async (t) => {
  const h = await setup(t);
  const first = recorder(h.path);
  h.batcher.acceptThen([reading('em-1')], undefined, first.done);
  assert.equal(first.calls.length, 0, 'not answered before the commit');
  const viaPromise = await h.batcher.accept([reading('em-2')]);
  await h.batcher.flush();

  assert.equal(first.calls.length, 1);
  const call = first.calls[0];
  assert.ok(call !== undefined);
  assert.ok(call.storedKeys.includes('em-1'), 'the record was in the file when the callback ran');
  assert.ok(call.result.ok && viaPromise.ok);
  assert.equal(call.result.seqs.length, 1);
  assert.deepEqual(viaPromise.seqs, [(call.result.seqs[0] as number) + 1], 'both forms committed in arrival order, answered alike');
  assert.deepEqual(h.told, ['em-1', 'em-2'], 'commit listeners hear both forms');

  // State without records, and nothing at all: the same answers in both forms.
  const stateOnly = recorder(h.path);
  h.batcher.acceptThen([], [{ scope: 'test', key: 'k', value: 'v' }], stateOnly.done);
  await h.batcher.flush();
  assert.deepEqual(
    stateOnly.calls.map((c) => c.result),
    [{ ok: true, seqs: [] }],
  );
  assert.equal((await h.buffer.readState('test')).get('k'), 'v');
  const nothing = recorder(h.path);
  h.batcher.acceptThen([], undefined, nothing.done);
  await h.batcher.flush();
  assert.deepEqual(
    nothing.calls.map((c) => c.result),
    [await h.batcher.accept([])],
  );
  assert.equal(first.calls.length, 1, 'still answered once');
});

test('acceptThen marks records while the clock is unsynchronized, and counts them by source as accept does', async (t) => {
  const h = await setup(t);
  h.trusted = false;
  const marked = recorder(h.path);
  h.batcher.acceptThen([reading('em-1')], undefined, marked.done);
  await h.batcher.accept([reading('gw-1', 'ttn')]);
  await h.batcher.flush();
  h.trusted = true;
  h.batcher.acceptThen([reading('em-2'), reading('em-3')], undefined, marked.done);
  await h.batcher.flush();

  assert.deepEqual(
    storedRows(h.path).map((row) => [row.key, row.meta.clock ?? 'synchronized']),
    [
      ['em-1', 'unsynchronized'],
      ['gw-1', 'unsynchronized'],
      ['em-2', 'synchronized'],
      ['em-3', 'synchronized'],
    ],
  );
  assert.deepEqual(
    marked.calls.map((c) => c.result.ok),
    [true, true],
  );
  assert.equal(await accepted(h.metrics, 'mqtt'), 3, 'counted over two commits, none twice');
  assert.equal(await accepted(h.metrics, 'ttn'), 1);
});

test('refusals reach acceptThen exactly as accept: buffer full, then shutting down', async (t) => {
  const h = await setup(t, 2);
  assert.ok((await h.batcher.accept([reading('fill-1'), reading('fill-2')])).ok, 'the buffer is now full');

  const full = recorder(h.path);
  h.batcher.acceptThen([reading('em-1')], undefined, full.done);
  const fullViaPromise = await h.batcher.accept([reading('em-2')]);
  await h.batcher.flush();
  assert.equal(fullViaPromise.ok === false && fullViaPromise.reason, 'buffer-full');
  assert.deepEqual(
    full.calls.map((c) => c.result),
    [fullViaPromise],
  );
  assert.deepEqual(full.calls[0]?.storedKeys, ['fill-1', 'fill-2'], 'nothing refused was stored');

  await h.batcher.close();
  const closed = recorder(h.path);
  h.batcher.acceptThen([reading('em-3')], undefined, closed.done);
  const closedViaPromise = await h.batcher.accept([reading('em-4')]);
  await h.batcher.flush();
  assert.equal(closedViaPromise.ok === false && closedViaPromise.reason, 'shutting-down');
  assert.deepEqual(
    closed.calls.map((c) => c.result),
    [closedViaPromise],
  );
  assert.equal(full.calls.length, 1, 'a refused accept is answered once too');
  assert.deepEqual(h.told, ['fill-1', 'fill-2'], 'listeners hear only committed records');
});

test('a callback that throws (a bug) does not keep the rest of its commit from being answered and told; the commit then fails', async (t) => {
  const h = await setup(t);
  const answered: string[] = [];
  h.batcher.acceptThen([reading('a')], undefined, () => {
    answered.push('a');
    throw new TypeError('a bug in a callback');
  });
  h.batcher.acceptThen([reading('b')], undefined, (result) => answered.push(`b:${result.ok}`));
  await assert.rejects(h.batcher.flush(), /a bug in a callback/);
  assert.deepEqual(answered, ['a', 'b:true'], 'b is answered although a threw before it');
  assert.deepEqual(h.told, ['a', 'b'], 'the listeners were told of both');
});
