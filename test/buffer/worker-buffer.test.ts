// The production buffer: the SQLite store on its own thread. The whole contract, plus what only the
// thread boundary can get wrong: errors and drop counts crossing it, and opening a bad path.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { openWorkerBuffer, type WorkerBufferDeps } from '../../src/buffer/worker-buffer.ts';
import { createMetrics } from '../../src/core/metrics.ts';
import { GatewayError } from '../../src/errors.ts';
import { record, recordBufferContract } from '../contracts/record-store.contract.ts';
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
