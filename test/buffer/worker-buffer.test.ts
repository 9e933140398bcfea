// The production buffer: the SQLite store on its own thread. The whole contract, plus what only the
// thread boundary can get wrong: errors and drop counts crossing it, and opening a bad path.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { AppendOutcome } from '../../src/buffer/record-buffer.ts';
import { createSqliteStore } from '../../src/buffer/sqlite-store.ts';
import { openWorkerBuffer, type WorkerBufferDeps } from '../../src/buffer/worker-buffer.ts';
import { createMetrics } from '../../src/core/metrics.ts';
import { BufferFullError, GatewayError } from '../../src/errors.ts';
import { oneRecordGroups, record, recordBufferContract } from '../contracts/record-store.contract.ts';
import { captureLog } from '../helpers/capture-log.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const quiet = (): WorkerBufferDeps => ({ log: captureLog().log, metrics: createMetrics({ processMetrics: false }) });

recordBufferContract('sqlite store on a worker thread', async (t, limits) => {
  const buffer = await openWorkerBuffer({ path: join(tempDir(t), 'buffer.db'), ...limits }, quiet());
  t.after(() => buffer.close());
  return buffer;
});

test('worker buffer reports the durability settings SQLite confirmed', async (t) => {
  const buffer = await openWorkerBuffer({ path: join(tempDir(t), 'buffer.db'), maxRecords: 10, maxBytes: 1e6, whenFull: 'reject' }, quiet());
  t.after(() => buffer.close());
  assert.deepEqual(buffer.durability(), { journalMode: 'wal', synchronous: 'FULL' });
});

test('worker buffer: drop counts and refusals cross the thread boundary; payload bytes arrive intact', async (t) => {
  const deps = quiet();
  const buffer = await openWorkerBuffer({ path: join(tempDir(t), 'buffer.db'), maxRecords: 3, maxBytes: 1e6, whenFull: 'drop_oldest' }, deps);
  t.after(() => buffer.close());
  await buffer.append([[record('d', 1), record('d', 2), record('d', 3)]]);
  await buffer.append([[record('d', 4)]]);
  assert.equal((await deps.metrics.bufferDropped.get()).values[0]?.value, 1);
  assert.equal(buffer.stats().droppedRecords, 1);
  const [tooBig] = await buffer.append([[record('d', 5), record('d', 6), record('d', 7), record('d', 8)]]);
  assert.equal(tooBig?.ok, false);
  assert.equal(tooBig?.ok === false && tooBig.error.code, 'BUFFER_FULL');
  const leased = await buffer.lease(10, 1e6);
  assert.deepEqual(
    leased.map((r) => Buffer.from(r.payload).toString()),
    ['{"n":2}', '{"n":3}', '{"n":4}'],
  );
});

test('worker buffer refuses to start on a path it cannot open, with the reason', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'not-a-dir'), 'x');
  await assert.rejects(
    openWorkerBuffer({ path: join(dir, 'not-a-dir', 'buffer.db'), maxRecords: 10, maxBytes: 1e6, whenFull: 'reject' }, quiet()),
    (error: unknown) => error instanceof GatewayError && /not-a-dir/.test(error.message),
  );
});

test('worker buffer: packed append outcomes unpack to what the store itself returns, group by group', async (t) => {
  const dir = tempDir(t);
  const limits = { maxRecords: 150, maxBytes: 20_000, whenFull: 'reject' } as const;
  const buffer = await openWorkerBuffer({ path: join(dir, 'worker.db'), ...limits }, quiet());
  t.after(() => buffer.close());
  const inline = createSqliteStore({ path: join(dir, 'inline.db'), ...limits });
  t.after(() => inline.close());
  const shown = (outcome: AppendOutcome) =>
    outcome.ok
      ? { ok: true, seqs: [...outcome.seqs] }
      : { ok: false, code: outcome.error.code, message: outcome.error.message, full: outcome.error instanceof BufferFullError };
  for (let round = 0; round < 3; round++) {
    const groups = oneRecordGroups((n) => `dev-${n % 13}`, round * 1000, 150);
    groups[10] = [record('big', round * 1000 + 10, 'x'.repeat(30_000))]; // over the bounds
    groups[11] = [record('big', round * 1000 + 11)]; // behind it: the order guard
    groups[50] = [];
    groups[70] = Array.from({ length: 45 }, (_, index) => record('multi', round * 1000 + 500 + index));
    const outcomes = await buffer.append(groups);
    assert.deepEqual(outcomes.map(shown), inline.append(groups).map(shown), `round ${round}`);
    assert.equal(outcomes[50]?.ok && outcomes[50].seqs.length, 0, 'an empty group commits with no seqs');
    assert.ok(
      outcomes.some((o) => !o.ok && /buffer full/.test(o.error.message)),
      `round ${round} ends with the buffer full`,
    );
    const leased = await buffer.lease(1000, 1e9);
    assert.deepEqual(
      leased.map((r) => r.seq),
      outcomes.flatMap((o) => (o.ok ? o.seqs : [])),
    );
    await buffer.ack(leased.map((r) => r.seq));
    inline.ack(inline.lease(1000, 1e9).map((r) => r.seq));
  }
});
