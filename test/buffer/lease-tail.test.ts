// The lease tail (records kept in memory from append to lease) must never change what a lease returns: the
// same random operations run on a store with the tail and one that reads every lease from its file, and
// every lease, ack, release, dead letter and drop_oldest must leave both with the same records in the same order.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { createRandom as random } from '../../firmware-sim/fleet.ts';
import type { RecordStoreLimits } from '../../src/buffer/record-store.ts';
import { createSqliteStore } from '../../src/buffer/sqlite-store.ts';
import type { NewRecord, StoredRecord } from '../../src/record/record.ts';
import { committedSeqs, oneRecordGroups, record } from '../contracts/record-store.contract.ts';
import { tempDir } from '../helpers/temp-dir.ts';

/** A record as a lease shows it, without the id (the two files have different instance ids). */
function shown(record: StoredRecord) {
  const { id: _id, payload, ...rest } = record;
  return { ...rest, payload: Buffer.from(payload).toString('hex') };
}

for (const whenFull of ['reject', 'drop_oldest'] as const) {
  test(`leases with the tail equal leases read from the file, through acks, releases, dead letters and ${whenFull}`, (t) => {
    const dir = tempDir(t);
    const limits: RecordStoreLimits = { maxRecords: 300, maxBytes: 40_000, whenFull };
    // With drop_oldest the tail may hold the whole buffer, so that drops reach records it holds.
    const leaseTail = whenFull === 'reject' ? { maxRecords: 120, maxBytes: 12_000 } : { maxRecords: 100_000, maxBytes: 100_000_000 };
    const tailed = createSqliteStore({ path: join(dir, 'tailed.db'), ...limits, leaseTail });
    const fromFile = createSqliteStore({ path: join(dir, 'file.db'), ...limits, leaseTail: { maxRecords: 0, maxBytes: 0 } });
    t.after(() => {
      tailed.close();
      fromFile.close();
    });
    const next = random(whenFull === 'reject' ? 7 : 8);
    let counter = 0;
    let inFlight: number[] = [];
    for (let step = 0; step < 4000; step++) {
      // With drop_oldest, phases: leases catch up with the file (the tail takes over), then appends alone fill
      // the buffer until it drops records the tail holds.
      const roll = whenFull === 'reject' ? next() : step % 200 < 100 ? 0.45 + next() * 0.45 : 0;
      if (roll < 0.45) {
        const groups: NewRecord[][] = Array.from({ length: 1 + Math.floor(next() * 4) }, () =>
          Array.from({ length: 1 + Math.floor(next() * 6) }, () => {
            counter++;
            const meta: Record<string, string> = next() < 0.3 ? { 'published-by': `user-${counter % 7}` } : {};
            return {
              key: `device-${Math.floor(next() * 9)}`,
              stream: 'telemetry',
              source: 'mqtt',
              receivedAtMs: 1_700_000_000_000 + counter,
              eventTimeMs: 1_700_000_000_000 + counter,
              payload: Buffer.from(`{"n":${counter},"pad":"${'x'.repeat(Math.floor(next() * 300))}"}`),
              meta,
            };
          }),
        );
        assert.deepEqual(tailed.append(groups).map(okOrCode), fromFile.append(groups).map(okOrCode), `append at step ${step}`);
      } else if (roll < 0.75) {
        const maxRecords = 1 + Math.floor(next() * 40);
        const maxBytes = 200 + Math.floor(next() * 6000);
        const a = tailed.lease(maxRecords, maxBytes);
        const b = fromFile.lease(maxRecords, maxBytes);
        assert.deepEqual(a.map(shown), b.map(shown), `lease at step ${step}`);
        inFlight.push(...a.map((record) => record.seq));
      } else if (roll < 0.9) {
        const count = Math.floor(next() * (inFlight.length + 1));
        const acked = inFlight.slice(0, count);
        inFlight = inFlight.slice(count);
        tailed.ack(acked);
        fromFile.ack(acked);
      } else if (roll < 0.97) {
        tailed.release(inFlight);
        fromFile.release(inFlight);
        inFlight = [];
      } else if (inFlight.length > 0) {
        const poisoned = inFlight.splice(0, 1);
        tailed.deadLetter(poisoned, 'test');
        fromFile.deadLetter(poisoned, 'test');
      }
      const { oldestReceivedAtMs: _a, ...tailedStats } = tailed.stats();
      const { oldestReceivedAtMs: _b, ...fileStats } = fromFile.stats();
      assert.deepEqual(tailedStats, fileStats, `stats at step ${step}`);
    }
    assert.ok(counter > 1000, 'the run appended many records');
    if (whenFull === 'drop_oldest') assert.ok(tailed.stats().droppedRecords > 100, 'the run dropped records');
  });
}

for (const whenFull of ['reject', 'drop_oldest'] as const) {
  test(`the tail's records, built per 32-row chunk, equal the file's and carry the seqs the appends reported (${whenFull})`, (t) => {
    const dir = tempDir(t);
    const limits: RecordStoreLimits = { maxRecords: 400, maxBytes: 1_000_000, whenFull };
    const tailed = createSqliteStore({ path: join(dir, 'tailed.db'), ...limits });
    const fromFile = createSqliteStore({ path: join(dir, 'file.db'), ...limits, leaseTail: { maxRecords: 0, maxBytes: 0 } });
    t.after(() => {
      tailed.close();
      fromFile.close();
    });
    assert.deepEqual(tailed.lease(10, 1_000), []); // caught up: from here on the tail serves leases
    assert.deepEqual(fromFile.lease(10, 1_000), []);
    const next = random(whenFull === 'reject' ? 11 : 12);
    const seqOf = new Map<string, number>();
    let inFlight: number[] = [];
    let n = 0;
    for (let round = 0; round < 40; round++) {
      const groups = oneRecordGroups((i) => `device-${i % 11}`, n, 1 + Math.floor(next() * 90));
      n += groups.length;
      // Now and then a group of several records (straddling chunks), or one over the buffer's bounds (refused).
      if (next() < 0.3)
        groups.splice(
          Math.floor(next() * groups.length),
          0,
          Array.from({ length: 1 + Math.floor(next() * 40) }, () => record('multi', n++)),
        );
      if (next() < 0.3) groups.splice(Math.floor(next() * groups.length), 0, [record('big', n++, 'x'.repeat(1_000_001))]);
      const outcomes = tailed.append(groups);
      assert.deepEqual(fromFile.append(groups).map(okOrCode), outcomes.map(okOrCode), `append in round ${round}`);
      const seqs = committedSeqs(groups, outcomes);
      const committed = groups.filter((_, index) => outcomes[index]?.ok).flat();
      for (const [index, r] of committed.entries()) seqOf.set(r.meta.n as string, seqs[index] as number);
      const a = tailed.lease(1 + Math.floor(next() * 300), 1_000_000);
      const b = fromFile.lease(a.length, 1_000_000);
      assert.deepEqual(a.map(shown), b.map(shown), `lease in round ${round}`);
      for (const [index, leased] of a.entries()) {
        assert.equal(leased.seq, seqOf.get(leased.meta.n as string), `record ${leased.meta.n} is leased with the seq its append reported`);
        assert.match(leased.id, new RegExp(`-${leased.seq}$`));
        // One object shape for records from the tail and from the file.
        assert.deepEqual(Object.keys(leased), Object.keys(b[index] as StoredRecord));
      }
      inFlight.push(...a.map((r) => r.seq));
      // With drop_oldest, unacknowledged records pile up until drops reach records the tail holds.
      if (whenFull === 'drop_oldest' && round % 10 !== 9) continue;
      tailed.ack(inFlight);
      fromFile.ack(inFlight);
      inFlight = [];
    }
    assert.ok(seqOf.size > 1000, 'the run appended many records');
    if (whenFull === 'drop_oldest') assert.ok(tailed.stats().droppedRecords > 100, 'the run dropped records');
  });
}

function okOrCode(outcome: { ok: boolean; seqs?: readonly number[]; error?: { code?: string } }) {
  return outcome.ok ? { ok: true, seqs: outcome.seqs } : { ok: false, code: outcome.error?.code };
}
