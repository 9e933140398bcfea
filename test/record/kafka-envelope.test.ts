// The Kafka message of a record: key, value, timestamp and the documented headers, with and without meta.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HEADER, toKafkaMessage } from '../../src/record/kafka-envelope.ts';
import type { StoredRecord } from '../../src/record/record.ts';

function stored(overrides: Partial<StoredRecord> = {}): StoredRecord {
  return {
    seq: 7,
    id: '0123456789abcdef-7',
    key: 'meter-1',
    stream: 'telemetry',
    source: 'mqtt',
    receivedAtMs: Date.UTC(2026, 11, 6, 15, 0, 0, 123),
    eventTimeMs: Date.UTC(2026, 11, 6, 14, 59, 59, 999),
    payload: Buffer.from('{"kwh":1}'),
    meta: {},
    attempts: 0,
    ...overrides,
  };
}

test('a record without meta carries exactly the documented headers, in their documented order', () => {
  const message = toKafkaMessage(stored(), 'gw-1');
  assert.equal(message.key, 'meter-1');
  assert.equal(message.value.toString(), '{"kwh":1}');
  assert.equal(message.timestamp, String(Date.UTC(2026, 11, 6, 14, 59, 59, 999)));
  assert.deepEqual(Object.keys(message.headers), Object.values(HEADER));
  assert.deepEqual(message.headers, {
    [HEADER.recordId]: '0123456789abcdef-7',
    [HEADER.source]: 'mqtt',
    [HEADER.gatewayId]: 'gw-1',
    [HEADER.stream]: 'telemetry',
    [HEADER.receivedAt]: '2026-12-06T15:00:00.123Z',
    [HEADER.eventTime]: '2026-12-06T14:59:59.999Z',
  });
});

test('meta comes first, and cannot replace a header the gateway sets', () => {
  const message = toKafkaMessage(stored({ meta: { 'published-by': 'installer', source: 'forged' } }), 'gw-1');
  assert.equal(message.headers['published-by'], 'installer');
  assert.equal(message.headers[HEADER.source], 'mqtt');
  assert.equal(Object.keys(message.headers)[0], 'published-by');
});

test('the time texts follow every record, whether or not the millisecond repeats', () => {
  const times = [0, 0, 1, 1, 1_000_000_000_000, 0, 1_000_000_000_000];
  for (const ms of times) {
    const message = toKafkaMessage(stored({ receivedAtMs: ms, eventTimeMs: ms + 1 }), 'gw-1');
    assert.equal(message.headers[HEADER.receivedAt], new Date(ms).toISOString());
    assert.equal(message.headers[HEADER.eventTime], new Date(ms + 1).toISOString());
  }
});
