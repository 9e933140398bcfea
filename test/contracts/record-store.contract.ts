// The RecordBuffer contract: every implementation must pass these (after aedes-persistence abstract.js):
// the SQLite store on a worker thread (production), and the SQLite and memory stores run inline.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import type { AppendOutcome, RecordBuffer, RecordStoreLimits } from '../../src/buffer/record-buffer.ts';
import type { NewRecord } from '../../src/record/record.ts';

export type OpenBuffer = (t: TestContext, limits: RecordStoreLimits) => Promise<RecordBuffer>;

const roomy: RecordStoreLimits = { maxRecords: 1_000_000, maxBytes: 1_000_000_000, whenFull: 'reject' };

export function record(key: string, n: number, payload = `{"n":${n}}`): NewRecord {
  return {
    key,
    stream: 'telemetry',
    source: 'mqtt',
    receivedAtMs: 1_700_000_000_000 + n,
    eventTimeMs: 1_700_000_000_000 + n - 5,
    payload: Buffer.from(payload),
    meta: { n: String(n) },
  };
}

async function appendOk(buffer: RecordBuffer, records: readonly NewRecord[]): Promise<readonly number[]> {
  const [outcome] = await buffer.append([records]);
  assert.ok(outcome?.ok, 'append should succeed');
  return outcome.seqs;
}

/** One record per group, as the MQTT broker commits them (each publish is its own group). */
export function oneRecordGroups(key: (n: number) => string, from: number, count: number): NewRecord[][] {
  return Array.from({ length: count }, (_, index) => [record(key(from + index), from + index)]);
}

/** The seqs of the committed groups, flattened in append order, checked against the groups (one seq per record). */
export function committedSeqs(groups: readonly (readonly NewRecord[])[], outcomes: readonly AppendOutcome[]): number[] {
  assert.equal(outcomes.length, groups.length, 'one outcome per group');
  const seqs: number[] = [];
  outcomes.forEach((outcome, index) => {
    if (!outcome.ok) return;
    assert.equal(outcome.seqs.length, groups[index]?.length, `group ${index}: one seq per record`);
    seqs.push(...outcome.seqs);
  });
  return seqs;
}

function assertConsecutive(seqs: readonly number[], after: number): void {
  assert.deepEqual(
    seqs,
    seqs.map((_, index) => after + 1 + index),
    'the seqs of one append follow each other',
  );
}

export function recordBufferContract(name: string, open: OpenBuffer): void {
  test(`${name}: append keeps acceptance order and lease returns records intact`, async (t) => {
    const buffer = await open(t, roomy);
    const seqs = await appendOk(buffer, [record('a', 1), record('b', 2), record('a', 3)]);
    assert.equal(seqs.length, 3);
    assert.ok((seqs[0] as number) < (seqs[1] as number) && (seqs[1] as number) < (seqs[2] as number));
    const leased = await buffer.lease(10, 1_000_000);
    assert.deepEqual(
      leased.map((r) => [r.key, Buffer.from(r.payload).toString()]),
      [
        ['a', '{"n":1}'],
        ['b', '{"n":2}'],
        ['a', '{"n":3}'],
      ],
    );
    const first = leased[0];
    assert.ok(first !== undefined);
    assert.equal(first.stream, 'telemetry');
    assert.equal(first.source, 'mqtt');
    assert.equal(first.receivedAtMs, 1_700_000_000_001);
    assert.equal(first.eventTimeMs, 1_699_999_999_996);
    assert.deepEqual(first.meta, { n: '1' });
    assert.equal(first.attempts, 0);
    assert.equal(new Set(leased.map((r) => r.id)).size, 3, 'record ids are unique');
  });

  test(`${name}: a record naming an event-time field is stored with the time its payload holds, if plausible`, async (t) => {
    const buffer = await open(t, roomy);
    const receivedAtMs = 1_700_000_000_000;
    const named = (n: number, payload: string): NewRecord => ({
      ...record('a', n, payload),
      receivedAtMs,
      eventTimeMs: receivedAtMs,
      eventTimeField: 'reading.ts',
    });
    await appendOk(buffer, [
      named(1, `{"reading":{"ts":${receivedAtMs - 60_000}}}`), // epoch ms, a minute before it arrived
      named(2, '{"reading":{"ts":"2023-11-14T22:12:20Z"}}'), // ISO-8601, 1,700,000,000,000 - 60,000 too
      named(3, `{"reading":{"ts":${receivedAtMs + 3_600_000}}}`), // an hour ahead: implausible
      named(4, 'not json'),
      record('b', 5), // names no field: its own eventTimeMs
    ]);
    const leased = [...(await buffer.lease(2, 1_000_000)), ...(await buffer.lease(10, 1_000_000))];
    assert.deepEqual(
      leased.map((stored) => stored.eventTimeMs),
      [receivedAtMs - 60_000, receivedAtMs - 60_000, receivedAtMs, receivedAtMs, 1_700_000_000_005 - 5],
    );
    assert.ok(
      leased.every((stored) => !('eventTimeField' in stored)),
      'a stored record does not name the field any more',
    );
  });

  test(`${name}: leased records are not leased again; ack deletes, release puts back in order`, async (t) => {
    const buffer = await open(t, roomy);
    await appendOk(
      buffer,
      [1, 2, 3, 4, 5].map((n) => record('d', n)),
    );
    const first = await buffer.lease(2, 1_000_000);
    assert.deepEqual(
      first.map((r) => r.meta.n),
      ['1', '2'],
    );
    const second = await buffer.lease(2, 1_000_000);
    assert.deepEqual(
      second.map((r) => r.meta.n),
      ['3', '4'],
    );
    await buffer.release(second.map((r) => r.seq));
    await buffer.ack(first.map((r) => r.seq));
    const again = await buffer.lease(10, 1_000_000);
    assert.deepEqual(
      again.map((r) => r.meta.n),
      ['3', '4', '5'],
      'released records come first, in order',
    );
    assert.deepEqual(
      again.map((r) => r.attempts),
      [1, 1, 0],
    );
    assert.equal(buffer.stats().depthRecords, 3);
  });

  test(`${name}: lease honours the byte limit but always returns at least one record`, async (t) => {
    const buffer = await open(t, roomy);
    await appendOk(buffer, [record('d', 1, 'x'.repeat(100)), record('d', 2, 'y'.repeat(100))]);
    assert.equal((await buffer.lease(10, 10)).length, 1);
    assert.equal((await buffer.lease(10, 10_000)).length, 1);
  });

  test(`${name}: stats count records and bytes, and the oldest receive time`, async (t) => {
    const buffer = await open(t, roomy);
    assert.deepEqual(buffer.stats().oldestReceivedAtMs, null);
    await appendOk(buffer, [record('d', 1), record('d', 2)]);
    const stats = buffer.stats();
    assert.equal(stats.depthRecords, 2);
    assert.ok(stats.depthBytes > 0);
    assert.equal(stats.oldestReceivedAtMs, 1_700_000_000_001);
    await buffer.ack((await buffer.lease(10, 1_000_000)).map((r) => r.seq));
    assert.equal(buffer.stats().depthRecords, 0);
    assert.equal(buffer.stats().depthBytes, 0);
  });

  test(`${name}: when full with policy reject, the group is refused whole and nothing changes`, async (t) => {
    const buffer = await open(t, { maxRecords: 3, maxBytes: 1_000_000, whenFull: 'reject' });
    await appendOk(buffer, [record('d', 1), record('d', 2)]);
    const [outcome] = await buffer.append([[record('d', 3), record('d', 4)]]);
    assert.equal(outcome?.ok, false);
    assert.equal(outcome?.ok === false && outcome.error.code, 'BUFFER_FULL');
    assert.equal(buffer.stats().depthRecords, 2);
    assert.deepEqual(
      (await buffer.lease(10, 1_000_000)).map((r) => r.meta.n),
      ['1', '2'],
    );
  });

  test(`${name}: groups in one append are decided one by one`, async (t) => {
    const buffer = await open(t, { maxRecords: 3, maxBytes: 1_000_000, whenFull: 'reject' });
    const outcomes = await buffer.append([[record('d', 1), record('d', 2)], [record('e', 3), record('e', 4)], [record('f', 5)]]);
    assert.deepEqual(
      outcomes.map((o) => o.ok),
      [true, false, true],
    );
    assert.deepEqual(
      (await buffer.lease(10, 1_000_000)).map((r) => r.meta.n),
      ['1', '2', '5'],
    );
  });

  test(`${name}: once a device's group is refused, its later groups in the same append are refused too (order per device)`, async (t) => {
    // The byte bound refuses a 2,000-byte record; a later 500-byte one of the same device would fit.
    const buffer = await open(t, { maxRecords: 1000, maxBytes: 1_000, whenFull: 'reject' });
    const outcomes = await buffer.append([[record('d', 1, 'x'.repeat(2000))], [record('e', 2, 'e')], [record('d', 3, 'y'.repeat(500))]]);
    assert.deepEqual(
      outcomes.map((o) => o.ok),
      [false, true, false],
    );
    assert.match(outcomes[2]?.ok === false ? outcomes[2].error.message : '', /an earlier record of device d in this commit was refused/);
    assert.deepEqual(
      (await buffer.lease(10, 1_000_000)).map((r) => r.key),
      ['e'],
      'nothing of d: after d resends both, they arrive in order',
    );
  });

  test(`${name}: many one-record groups in one append (several 32-row chunks) get consecutive seqs, each its own record's`, async (t) => {
    const buffer = await open(t, roomy);
    const [before] = await appendOk(buffer, [record('first', 0)]);
    const single = oneRecordGroups((n) => `dev-${n % 7}`, 1, 100);
    const firstSeqs = committedSeqs(single, await buffer.append(single));
    assertConsecutive(firstSeqs, before as number);
    // Groups of several records among one-record groups: a group may straddle two chunks.
    const mixed = [...oneRecordGroups((n) => `dev-${n % 7}`, 101, 5), Array.from({ length: 40 }, (_, index) => record('multi', 106 + index))];
    mixed.push(...oneRecordGroups((n) => `dev-${n % 7}`, 146, 30), [record('triple', 176), record('triple', 177), record('triple', 178)]);
    const mixedSeqs = committedSeqs(mixed, await buffer.append(mixed));
    assertConsecutive(mixedSeqs, firstSeqs.at(-1) as number);
    const leased = await buffer.lease(1000, 1_000_000);
    assert.deepEqual(
      leased.map((r) => r.meta.n),
      Array.from({ length: 179 }, (_, n) => String(n)),
    );
    assert.deepEqual(
      leased.map((r) => r.seq),
      [before, ...firstSeqs, ...mixedSeqs],
      'each group was told the seqs its records are leased with',
    );
  });

  test(`${name}: groups refused in the middle of an append (bounds, order, full) leave the seqs around them right`, async (t) => {
    const buffer = await open(t, { maxRecords: 1000, maxBytes: 20_000, whenFull: 'reject' });
    const groups = oneRecordGroups((n) => `dev-${n % 9}`, 0, 100);
    groups[40] = [record('big', 40, 'x'.repeat(25_000))]; // more than the whole buffer holds
    groups[41] = [record('big', 41)]; // behind a refused record of its device
    groups[60] = [record('multi', 60), record('multi', 1060), record('multi', 2060)];
    groups[75] = [record('huge', 75, 'y'.repeat(19_000))]; // within the bounds, but the buffer is too full for it
    groups[76] = [record('huge', 76)];
    const outcomes = await buffer.append(groups);
    const refused = outcomes.flatMap((outcome, index) => (outcome.ok ? [] : [[index, outcome.error.code, outcome.error.message]]));
    assert.deepEqual(
      refused.map(([index, code]) => [index, code]),
      [
        [40, 'BUFFER_FULL'],
        [41, 'BUFFER_FULL'],
        [75, 'BUFFER_FULL'],
        [76, 'BUFFER_FULL'],
      ],
    );
    assert.match(String(refused[0]?.[2]), /exceed the buffer's bounds/);
    assert.match(String(refused[1]?.[2]), /an earlier record of device big in this commit was refused/);
    assert.match(String(refused[2]?.[2]), /buffer full/);
    assert.match(String(refused[3]?.[2]), /an earlier record of device huge in this commit was refused/);
    const seqs = committedSeqs(groups, outcomes);
    assertConsecutive(seqs, (seqs[0] as number) - 1);
    const leased = await buffer.lease(1000, 1_000_000);
    const expected = groups.filter((_, index) => outcomes[index]?.ok).flat();
    assert.deepEqual(
      leased.map((r) => [r.key, r.meta.n, r.seq]),
      expected.map((r, index) => [r.key, r.meta.n, seqs[index]]),
    );
  });

  test(`${name}: with policy reject, the groups that no longer fit are refused and the ones before keep their seqs`, async (t) => {
    const buffer = await open(t, { maxRecords: 50, maxBytes: 1_000_000, whenFull: 'reject' });
    const before = await appendOk(
      buffer,
      Array.from({ length: 10 }, (_, n) => record('old', n)),
    );
    const groups = oneRecordGroups((n) => `dev-${n}`, 10, 60);
    const outcomes = await buffer.append(groups);
    assert.deepEqual(
      outcomes.map((o) => o.ok),
      [...Array(40).fill(true), ...Array(20).fill(false)],
    );
    assert.ok(outcomes.every((o) => o.ok || (o.error.code === 'BUFFER_FULL' && /buffer full/.test(o.error.message))));
    const seqs = committedSeqs(groups, outcomes);
    assertConsecutive(seqs, before.at(-1) as number);
    assert.equal(buffer.stats().depthRecords, 50);
    const leased = await buffer.lease(1000, 1_000_000);
    assert.deepEqual(
      leased.map((r) => [r.meta.n, r.seq]),
      [...before, ...seqs].map((seq, n) => [String(n), seq]),
    );
  });

  test(`${name}: drop_oldest making room in the middle of an append drops only older records and keeps the seqs right`, async (t) => {
    const buffer = await open(t, { maxRecords: 100, maxBytes: 1_000_000, whenFull: 'drop_oldest' });
    const before = await appendOk(
      buffer,
      Array.from({ length: 90 }, (_, n) => record('old', n)),
    );
    // 10 groups fit (in a chunk not yet full), then every group needs room: 35 records at once, then one by one.
    const groups = [...oneRecordGroups((n) => `dev-${n % 5}`, 90, 10), Array.from({ length: 35 }, (_, index) => record('multi', 100 + index))];
    groups.push(...oneRecordGroups((n) => `dev-${n % 5}`, 135, 20));
    const outcomes = await buffer.append(groups);
    assert.ok(outcomes.every((o) => o.ok));
    const seqs = committedSeqs(groups, outcomes);
    assertConsecutive(seqs, before.at(-1) as number);
    assert.equal(buffer.stats().droppedRecords, 55);
    assert.equal(buffer.stats().depthRecords, 100);
    const leased = await buffer.lease(1000, 1_000_000);
    assert.deepEqual(
      leased.map((r) => [r.meta.n, r.seq]),
      [...before, ...seqs].map((seq, n) => [String(n), seq]).slice(55),
    );
  });

  test(`${name}: when full with policy drop_oldest, the oldest records go and are counted`, async (t) => {
    const buffer = await open(t, { maxRecords: 3, maxBytes: 1_000_000, whenFull: 'drop_oldest' });
    await appendOk(buffer, [record('d', 1), record('d', 2), record('d', 3)]);
    await appendOk(buffer, [record('d', 4), record('d', 5)]);
    assert.equal(buffer.stats().droppedRecords, 2);
    assert.deepEqual(
      (await buffer.lease(10, 1_000_000)).map((r) => r.meta.n),
      ['3', '4', '5'],
    );
  });

  test(`${name}: the byte bound applies too`, async (t) => {
    const buffer = await open(t, { maxRecords: 1000, maxBytes: 300, whenFull: 'reject' });
    await appendOk(buffer, [record('d', 1, 'x'.repeat(200))]);
    const [outcome] = await buffer.append([[record('d', 2, 'y'.repeat(200))]]);
    assert.equal(outcome?.ok, false);
  });

  test(`${name}: dead-lettered records leave the line and are counted`, async (t) => {
    const buffer = await open(t, roomy);
    await appendOk(buffer, [record('d', 1), record('d', 2)]);
    const leased = await buffer.lease(1, 1_000_000);
    await buffer.deadLetter(
      leased.map((r) => r.seq),
      'MESSAGE_TOO_LARGE',
    );
    assert.equal(buffer.stats().deadLetters, 1);
    assert.equal(buffer.stats().depthRecords, 1);
    assert.deepEqual(
      (await buffer.lease(10, 1_000_000)).map((r) => r.meta.n),
      ['2'],
    );
  });

  test(`${name}: ack of a record already dropped is harmless`, async (t) => {
    const buffer = await open(t, { maxRecords: 2, maxBytes: 1_000_000, whenFull: 'drop_oldest' });
    await appendOk(buffer, [record('d', 1), record('d', 2)]);
    const leased = await buffer.lease(2, 1_000_000);
    await appendOk(buffer, [record('d', 3), record('d', 4)]); // drops 1 and 2 while they are in flight
    await buffer.ack(leased.map((r) => r.seq));
    assert.equal(buffer.stats().depthRecords, 2);
  });

  test(`${name}: state is committed with the records, in order, and a null value deletes`, async (t) => {
    const buffer = await open(t, roomy);
    await buffer.append(
      [[record('d', 1)]],
      [
        { scope: 'lorawan.session', key: 'a', value: '1' },
        { scope: 'lorawan.session', key: 'b', value: '2' },
        { scope: 'lorawan.session', key: 'a', value: '3' },
        { scope: 'other', key: 'a', value: 'x' },
      ],
    );
    assert.deepEqual([...(await buffer.readState('lorawan.session'))].sort(), [
      ['a', '3'],
      ['b', '2'],
    ]);
    await buffer.append([], [{ scope: 'lorawan.session', key: 'b', value: null }]);
    assert.deepEqual([...(await buffer.readState('lorawan.session'))], [['a', '3']]);
    assert.deepEqual([...(await buffer.readState('other'))], [['a', 'x']]);
    assert.equal((await buffer.readState('missing')).size, 0);
  });

  test(`${name}: state advances even when the buffer refuses the group it came with`, async (t) => {
    const buffer = await open(t, { maxRecords: 1, maxBytes: 1_000_000, whenFull: 'reject' });
    await appendOk(buffer, [record('d', 1)]);
    const [outcome] = await buffer.append([[record('d', 2)]], [{ scope: 'fcnt', key: 'd', value: '2' }]);
    assert.equal(outcome?.ok, false);
    assert.equal((await buffer.readState('fcnt')).get('d'), '2', 'a frame seen is seen: its counter must not be reusable');
  });
}
