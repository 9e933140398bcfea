// The SQLite buffer: the RecordBuffer contract on a real file, plus what only a file can show:
// durability settings, survival across reopen and kill -9, and a genuinely full disk.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { createInlineBuffer } from '../../src/buffer/record-buffer.ts';
import { consecutiveRuns, createSqliteStore } from '../../src/buffer/sqlite-store.ts';
import { committedSeqs, oneRecordGroups, record, recordBufferContract } from '../contracts/record-store.contract.ts';
import { tempDir } from '../helpers/temp-dir.ts';

recordBufferContract('sqlite store (inline)', async (t, limits) => {
  const store = createSqliteStore({ path: join(tempDir(t), 'buffer.db'), ...limits });
  t.after(() => store.close());
  return createInlineBuffer(store);
});

const limits = { maxRecords: 1_000_000, maxBytes: 1_000_000_000, whenFull: 'reject' } as const;

test('sqlite store runs WAL with synchronous=FULL (better-sqlite3 would default to NORMAL)', (t) => {
  const path = join(tempDir(t), 'buffer.db');
  const buffer = createSqliteStore({ path, ...limits });
  t.after(() => buffer.close());
  assert.deepEqual(buffer.durability(), { journalMode: 'wal', synchronous: 'FULL' });
  // WAL mode is a property of the file: another connection sees it too.
  const probe = new Database(path, { readonly: true });
  t.after(() => probe.close());
  assert.equal(probe.pragma('journal_mode', { simple: true }), 'wal');
});

test('sqlite store keeps records, ids and order across close and reopen', (t) => {
  const path = join(tempDir(t), 'buffer.db');
  const first = createSqliteStore({ path, ...limits });
  first.append([[record('a', 1), record('b', 2)], [record('a', 3)]]);
  const idsBefore = first.lease(10, 1_000_000).map((r) => r.id);
  first.close();

  const second = createSqliteStore({ path, ...limits });
  t.after(() => second.close());
  const leased = second.lease(10, 1_000_000);
  assert.deepEqual(
    leased.map((r) => r.meta.n),
    ['1', '2', '3'],
  );
  assert.deepEqual(
    leased.map((r) => r.id),
    idsBefore,
    'record ids are stable across restarts',
  );
  assert.equal(second.stats().depthRecords, 3);
});

test('sqlite store keeps device state across close and reopen', (t) => {
  const path = join(tempDir(t), 'buffer.db');
  const first = createSqliteStore({ path, ...limits });
  first.append([[record('a', 1)]], [{ scope: 'lorawan.fcnt', key: '0011223344556677', value: '{"next":5}' }]);
  first.close();
  const second = createSqliteStore({ path, ...limits });
  t.after(() => second.close());
  assert.equal(second.readState('lorawan.fcnt').get('0011223344556677'), '{"next":5}');
});

test('sqlite store: records whose append returned survive kill -9 of the writer', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'buffer.db');
  // The child appends groups and prints each committed group's last n; we kill it mid-stream.
  const script = `
    import { createSqliteStore } from ${JSON.stringify(new URL('../../src/buffer/sqlite-store.ts', import.meta.url).href)};
    const buffer = createSqliteStore({ path: ${JSON.stringify(path)}, maxRecords: 1e9, maxBytes: 1e12, whenFull: 'reject' });
    let n = 0;
    const payload = Buffer.alloc(200, 120);
    setInterval(() => {
      const group = [];
      for (let i = 0; i < 50; i++) { n++; group.push({ key: 'k' + (n % 7), stream: 's', source: 'mqtt', receivedAtMs: n, eventTimeMs: n, payload, meta: {} }); }
      const [outcome] = buffer.append([group]);
      if (outcome.ok) process.stdout.write(n + '\\n');
    }, 1);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let lastCommitted = 0;
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    const lines = output.split('\n');
    output = lines.pop() ?? '';
    for (const line of lines) if (line !== '') lastCommitted = Number(line);
  });
  await new Promise<void>((resolve) => {
    const check = setInterval(() => {
      if (lastCommitted >= 5000) {
        clearInterval(check);
        resolve();
      }
    }, 20);
  });
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  assert.ok(lastCommitted >= 5000);

  const reopened = createSqliteStore({ path, ...limits });
  t.after(() => reopened.close());
  const depth = reopened.stats().depthRecords;
  assert.ok(depth >= lastCommitted, `every record reported committed (${lastCommitted}) is still there (found ${depth})`);
  const ordered = reopened.lease(1_000_000, 1e12).map((r) => r.receivedAtMs);
  assert.deepEqual(
    ordered.slice(0, lastCommitted),
    Array.from({ length: lastCommitted }, (_, i) => i + 1),
  );
});

test('sqlite store on a full disk: the append fails as a whole, committed records stay, and it recovers when space returns', (t) => {
  const mountPoint = mkdtempSync(join(tmpdir(), 'iotgw-full-disk-'));
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mountPoint], { encoding: 'utf8' });
  assert.equal(mount.status, 0, `this test mounts a 256 KiB tmpfs to fill a real disk and needs root (CAP_SYS_ADMIN): ${mount.stderr}`);
  mkdirSync(join(mountPoint, 'state'));
  const path = join(mountPoint, 'state', 'buffer.db');
  const buffer = createSqliteStore({ path, ...limits });
  t.after(() => {
    buffer.close();
    spawnSync('umount', ['-l', mountPoint]);
    rmSync(mountPoint, { recursive: true, force: true });
  });

  let committed = 0;
  let failure: unknown = null;
  for (let round = 0; round < 1000 && failure === null; round++) {
    const group = Array.from({ length: 20 }, (_, i) => record('d', committed + i, 'z'.repeat(500)));
    try {
      const [outcome] = buffer.append([group]);
      assert.ok(outcome?.ok);
      committed += group.length;
    } catch (error) {
      failure = error;
    }
  }
  assert.ok(failure !== null, 'the disk filled up');
  assert.equal((failure as { code?: string }).code, 'BUFFER_FULL');
  assert.match((failure as Error).message, /disk full/);
  assert.equal(buffer.stats().depthRecords, committed, 'the failed append left nothing behind');

  const grow = spawnSync('mount', ['-o', 'remount,size=4m', mountPoint]);
  assert.equal(grow.status, 0);
  const [outcome] = buffer.append([[record('d', 999_999)]]);
  assert.ok(outcome?.ok, 'appends work again once there is space');
  const all = buffer.lease(1_000_000, 1e12);
  assert.equal(all.length, committed + 1);
});

test('acks and releases commit without their own fsync, and every append still commits with synchronous=FULL', (t) => {
  const path = join(tempDir(t), 'buffer.db');
  const buffer = createSqliteStore({ path, ...limits });
  t.after(() => buffer.close());
  buffer.append([[record('a', 1), record('a', 2), record('a', 3)]]);
  const [first, second] = buffer.lease(2, 1_000_000);
  buffer.ack([first?.seq as number]);
  assert.equal(buffer.durability().synchronous, 'FULL');
  buffer.release([second?.seq as number]);
  assert.equal(buffer.durability().synchronous, 'FULL');
  assert.deepEqual(
    buffer.lease(10, 1_000_000).map((r) => [r.seq, r.attempts]),
    [
      [2, 1],
      [3, 0],
    ],
  );
});

test('drop_oldest with nothing older left reaches the rows this append inserted, queued rows included, as it did before chunked inserts', (t) => {
  const store = createSqliteStore({ path: join(tempDir(t), 'buffer.db'), maxRecords: 100, maxBytes: 1e9, whenFull: 'drop_oldest' });
  t.after(() => store.close());
  const [old] = store.append([Array.from({ length: 90 }, (_, n) => record('old', n))]);
  assert.ok(old?.ok);
  // 10 rows wait for a full chunk when the 95-record group needs room for 95: the 90 old ones are not enough,
  // so the DELETE must find the 10 in the table (were they still queued, it would find nothing and never end).
  const groups = [...oneRecordGroups((n) => `dev-${n}`, 90, 10), Array.from({ length: 95 }, (_, index) => record('multi', 100 + index))];
  const outcomes = store.append(groups);
  assert.ok(outcomes.every((outcome) => outcome.ok));
  const seqs = committedSeqs(groups, outcomes);
  assert.deepEqual(store.stats().droppedRecords, 95);
  assert.deepEqual(store.stats().depthRecords, 100);
  assert.deepEqual(
    store.lease(1000, 1e9).map((r) => [r.meta.n, r.seq]),
    seqs.map((seq, index) => [String(90 + index), seq]).slice(5),
  );
});

test('sqlite store: a commit of thousands of one-record groups survives close and reopen with the seqs it reported', (t) => {
  const path = join(tempDir(t), 'buffer.db');
  const first = createSqliteStore({ path, ...limits });
  const groups = oneRecordGroups((n) => `dev-${n % 50}`, 0, 2_000);
  const seqs = committedSeqs(groups, first.append(groups));
  first.close();
  const second = createSqliteStore({ path, ...limits });
  t.after(() => second.close());
  const leased = second.lease(10_000, 1e9);
  assert.deepEqual(
    leased.map((r) => r.seq),
    seqs,
  );
  assert.deepEqual(
    leased.map((r) => r.meta.n),
    groups.map((group) => group[0]?.meta.n),
  );
});

test('an acknowledged batch deletes exactly its records, whether its seqs are one run, a few or scattered', (t) => {
  assert.deepEqual(consecutiveRuns([]), []);
  assert.deepEqual(consecutiveRuns([4, 5, 6, 9, 11, 12, 3]), [4, 6, 9, 9, 11, 12, 3, 3]);
  const store = createSqliteStore({ path: join(tempDir(t), 'buffer.db'), ...limits });
  t.after(() => store.close());
  store.append([Array.from({ length: 200 }, (_, index) => record(`d${index % 7}`, index))]);
  const all = store.lease(200, 1_000_000).map((leased) => leased.seq);
  // Runs with records between them that are not acknowledged (another lane's), then more runs than the run path takes.
  const runs = [...all.slice(0, 10), ...all.slice(12, 20), ...all.slice(21, 22)];
  const scattered = all.slice(30).filter((_, index) => index % 2 === 0);
  store.ack(runs);
  store.ack(scattered);
  const acked = new Set([...runs, ...scattered]);
  const left = all.filter((seq) => !acked.has(seq));
  store.release(left);
  assert.deepEqual(
    store.lease(1_000, 10_000_000).map((leased) => leased.seq),
    left,
    'exactly the unacknowledged records remain, in order',
  );
  assert.equal(store.stats().depthRecords, left.length);
  // The same seqs again (a duplicate ack after a retry) delete nothing more.
  store.ack(runs);
  assert.equal(store.stats().depthRecords, left.length);
});
