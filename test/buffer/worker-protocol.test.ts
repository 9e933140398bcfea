// New records as they cross to the buffer's thread (packRecords -> structured clone with transfer ->
// unpackRecords): every field of every record comes back, whatever mix of streams, sources, metas, event-time
// fields and payloads a commit holds, including a stream per record (outside input: device topics).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { packRecords, unpackRecords } from '../../src/buffer/worker-protocol.ts';
import type { NewRecord, RecordSource } from '../../src/record/record.ts';
import { createRandom } from '../../firmware-sim/fleet.ts';

const SOURCES: readonly RecordSource[] = ['mqtt', 'semtech-udp', 'ttn', 'serial-radio', 'commands'];

function records(next: () => number, count: number, streamsPerCommit: number): NewRecord[] {
  return Array.from({ length: count }, (_, index): NewRecord => {
    const socket = Buffer.alloc(64 + Math.floor(next() * 64), 0x20);
    const payload = socket.subarray(3, 3 + Math.floor(next() * 60));
    payload.fill(index & 0xff);
    const meta = next() < 0.2 ? { 'published-by': `account-${index}` } : {};
    return {
      key: `meter-${Math.floor(next() * 50)}`,
      stream: `stream-${Math.floor(next() * streamsPerCommit)}`,
      source: SOURCES[Math.floor(next() * SOURCES.length)] as RecordSource,
      receivedAtMs: 1_760_000_000_000 + index,
      eventTimeMs: 1_760_000_000_000 + index - 5,
      eventTimeField: next() < 0.5 ? undefined : next() < 0.5 ? 'ts' : 'time.utc',
      payload,
      meta,
    };
  });
}

function crossed(sent: readonly NewRecord[]): NewRecord[] {
  const { packed, transfer } = packRecords(sent);
  return unpackRecords(structuredClone(packed, { transfer }));
}

test('every record comes back field for field, for commits of any mix', () => {
  const next = createRandom(9);
  for (const [count, streams] of [
    [1, 1],
    [0, 1],
    [500, 3],
    [300, 300],
    [50, 1000],
  ] as const) {
    const sent = records(next, count, streams);
    const back = crossed(sent);
    assert.equal(back.length, sent.length);
    for (const [index, record] of back.entries()) {
      const { payload, ...rest } = sent[index] as NewRecord;
      const { payload: payloadBack, ...restBack } = record;
      assert.deepEqual(restBack, rest, `record ${index} of ${count}`);
      assert.deepEqual(Buffer.from(payloadBack), Buffer.from(payload), `payload ${index} of ${count}`);
    }
  }
});

test('streams and sources cross once per distinct value, not once per record', () => {
  const sent = records(createRandom(4), 1000, 2);
  const { packed } = packRecords(sent);
  assert.ok(packed.streamNames.length <= 2, `${packed.streamNames.length} stream names`);
  assert.ok(packed.sourceNames.length <= SOURCES.length);
  assert.equal(packed.metas.length, packed.metaIndexes.length);
  assert.equal(packed.metas.length, sent.filter((record) => Object.keys(record.meta).length > 0).length);
});
