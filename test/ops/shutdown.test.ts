// Graceful stop logic: exit 0 after a clean stop, 1 on a second signal or when the deadline passes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createShutdown } from '../../src/ops/shutdown.ts';
import { createBufferWatermark } from '../../src/ops/buffer-watermark.ts';
import { captureLog } from '../helpers/capture-log.ts';

function harness(stop: () => Promise<void>, deadlineMs = 1000) {
  const { log, lines } = captureLog();
  const exits: number[] = [];
  let stoppingCalls = 0;
  const shutdown = createShutdown({ deadlineMs }, { log, stop, exit: (code) => exits.push(code), onStopping: () => (stoppingCalls += 1) });
  return { shutdown, exits, lines, stoppingCalls: () => stoppingCalls };
}

test('a clean stop exits 0, once, and tells systemd it is stopping', async () => {
  const h = harness(async () => sleep(20));
  h.shutdown.signal('SIGTERM');
  assert.equal(h.shutdown.stopping, true);
  await sleep(100);
  assert.deepEqual(h.exits, [0]);
  assert.equal(h.stoppingCalls(), 1);
  assert.deepEqual(
    h.lines().map((line) => line.msg),
    ['SIGTERM: shutting down: no new records, finishing commits and the Kafka batch in flight', 'shutdown complete: exiting with code 0'],
  );
});

test('a second signal exits 1 at once', async () => {
  const h = harness(() => new Promise(() => undefined));
  h.shutdown.signal('SIGTERM');
  h.shutdown.signal('SIGINT');
  assert.deepEqual(h.exits, [1]);
  assert.match(String(h.lines().at(-1)?.msg), /^second SIGINT: exiting now with code 1/);
});

test('a stop that outlives the deadline exits 1 and says why', async () => {
  const h = harness(() => new Promise(() => undefined), 50);
  h.shutdown.signal('SIGTERM');
  await sleep(150);
  assert.deepEqual(h.exits, [1]);
  assert.match(String(h.lines().at(-1)?.msg), /did not finish within 50 ms.*committed records are safe in SQLite/);
});

test('a failing stop exits 1', async () => {
  const h = harness(async () => {
    throw new Error('disk gone');
  });
  h.shutdown.signal('SIGTERM');
  await sleep(20);
  assert.deepEqual(h.exits, [1]);
});

test('buffer high-water: warn once above 80 %, info once back under 50 %, nothing in between', () => {
  const { log, lines } = captureLog();
  const mark = createBufferWatermark({ maxRecords: 1000, maxBytes: 1_000_000 }, log);
  for (const depth of [100, 700, 799, 800, 900, 1000, 600, 500, 850, 499, 100, 10]) mark.observe({ depthRecords: depth, depthBytes: depth });
  assert.deepEqual(
    lines().map((line) => `${line.level} ${line.msg}`),
    ['warn buffer 80% full (buffer.max_records): Kafka is not keeping up; at 100% buffer.when_full applies', 'info buffer back under 50% (49%)'],
  );
  mark.observe({ depthRecords: 0, depthBytes: 900_000 });
  assert.match(String(lines().at(-1)?.msg), /90% full \(buffer.max_bytes\)/);
});
