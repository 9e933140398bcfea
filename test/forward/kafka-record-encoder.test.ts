// The gateway's replacements inside kafkajs against kafkajs' own: the record encoder (the same bytes for every
// record shape) and the grouping of messages by partition (the same groups), both installed into kafkajs when
// this thread loads kafkajs through src/forward/kafkajs.ts first.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { createRandom as random } from '../../firmware-sim/fleet.ts';
import type { PartitionGrouping } from '../../src/forward/kafka-partition-grouping.ts';
import type { RecordEncoder, RecordFields } from '../../src/forward/kafka-record-encoder.ts';

const require = createRequire(import.meta.url);
const RECORD_MODULE = require.resolve('kafkajs/src/protocol/recordBatch/record/v0/index.js');
// kafkajs' encoder, taken before src/forward/kafkajs.ts replaces it in the module cache.
const kafkajsRecord = require(RECORD_MODULE) as RecordEncoder;
const GROUPING_MODULE = require.resolve('kafkajs/src/producer/groupMessagesPerPartition.js');
const kafkajsGrouping = require(GROUPING_MODULE) as PartitionGrouping;
const { recordEncoder } = await import('../../src/forward/kafkajs.ts');
const gatewayRecord = require(RECORD_MODULE) as RecordEncoder;
const gatewayGrouping = require(GROUPING_MODULE) as PartitionGrouping;

/** The bytes kafkajs' record batch takes from an encoded record. */
function bytesOf(encode: RecordEncoder, fields: RecordFields): Buffer {
  return (encode(fields) as unknown as { buffer: Buffer }).buffer;
}

function assertSameBytes(fields: RecordFields, label: string): void {
  assert.deepEqual(bytesOf(gatewayRecord, fields), bytesOf(kafkajsRecord, fields), label);
}

// Lengths around 63 and 64 characters: the longest string with a one-byte length prefix, and the first with two.
const TEXTS = [
  '',
  'meter-000123',
  'devices/meter-1/telemetry',
  'zähler-ü-€-😀',
  'x'.repeat(200),
  '2026-12-06T15:00:00.123Z',
  'a'.repeat(63),
  'b'.repeat(64),
  `${'c'.repeat(62)}é`,
  `${'d'.repeat(63)}é`,
];
const DELTAS = [0, 1, -1, 63, 64, -64, -65, 8191, 8192, 2 ** 30, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), 2 ** 32 + 5, 1e12, -1e12, 2 ** 53 - 1, -(2 ** 53 - 1)];

test('kafkajs is loaded with the gateway record encoder and partition grouping installed', () => {
  assert.equal(recordEncoder, 'iotgw');
  assert.notEqual(gatewayRecord, kafkajsRecord);
  assert.notEqual(gatewayGrouping, kafkajsGrouping);
});

test('messages are grouped by partition as kafkajs groups them: same partitions, same order within each', () => {
  const next = random(7);
  for (const [count, partitions] of [
    [0, 6],
    [1, 1],
    [2000, 6],
    [500, 1],
    [300, 64],
  ] as const) {
    const messages = Array.from({ length: count }, (_, index) => ({ key: `device-${Math.floor(next() * 50)}`, value: String(index) }));
    const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({ partitionId }));
    const partitioner = ({ message }: { message: { key: string } }) => Number.parseInt(message.key.slice(7), 10) % partitions;
    const input = { topic: 't', partitionMetadata, messages, partitioner };
    assert.deepEqual(gatewayGrouping(input), kafkajsGrouping(input), `${count} messages over ${partitions} partitions`);
  }
  const none = { topic: 't', partitionMetadata: [], messages: [{ key: 'a' }], partitioner: () => 0 };
  assert.deepEqual(gatewayGrouping(none), kafkajsGrouping(none), 'no partition metadata: no groups');
});

test('every record the gateway sends encodes to the bytes kafkajs writes', () => {
  const next = random(42);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T;
  const bytesOrText = (): string | Buffer | null => {
    const roll = next();
    if (roll < 0.1) return null;
    if (roll < 0.5) return pick(TEXTS);
    return Buffer.from(Array.from({ length: Math.floor(next() * 300) }, () => Math.floor(next() * 256)));
  };
  for (let index = 0; index < 3000; index++) {
    const headers: Record<string, string | Buffer> = {};
    const count = Math.floor(next() * 9);
    for (let header = 0; header < count; header++) headers[`${pick(TEXTS)}${header}`] = next() < 0.7 ? pick(TEXTS) : Buffer.from(pick(TEXTS));
    const fields: RecordFields = {
      offsetDelta: next() < 0.5 ? index : Math.floor(next() * 2 ** 31),
      timestampDelta: next() < 0.6 ? Math.floor(next() * 5000) : pick(DELTAS),
      key: next() < 0.9 ? pick(TEXTS) : bytesOrText(),
      value: bytesOrText(),
      headers,
    };
    assertSameBytes(fields, `case ${index}: ${JSON.stringify(fields)}`);
  }
});

test('each delta at the varint boundaries, and absent fields, encode as kafkajs does', () => {
  for (const delta of DELTAS) {
    assertSameBytes(
      { offsetDelta: Math.abs(delta) < 2 ** 31 ? Math.abs(delta) : 0, timestampDelta: delta, key: 'k', value: Buffer.from('v') },
      `delta ${delta}`,
    );
  }
  assertSameBytes({ key: 'k', value: Buffer.alloc(0) }, 'no deltas, no headers');
  assertSameBytes({ key: null, value: null, headers: {} }, 'null key and value');
  assertSameBytes({ key: undefined, value: 'text value', headers: { 'record-id': 'a-1' } }, 'text value');
});

test('shapes the gateway never sends are left to kafkajs, with its result', () => {
  const shapes: RecordFields[] = [
    { key: 'k', value: Buffer.from('v'), headers: { many: ['a', 'b'], one: 'c' } },
    { key: 7, value: Buffer.from('v') },
    { key: 'k', value: 12.5 },
    { key: 'k', value: Buffer.from('v'), timestampDelta: 1.5 },
    { key: 'k', value: Buffer.from('v'), headers: Object.assign(Object.create({ inherited: 'x' }) as object, { own: 'y' }) },
    { key: 'k', value: Buffer.from('v'), headers: { gone: null } },
  ];
  // Same bytes, or the same error (kafkajs cannot size a number key or a null header value).
  const outcome = (encode: RecordEncoder, fields: RecordFields): unknown => {
    try {
      return bytesOf(encode, fields);
    } catch (error) {
      return { threw: (error as Error).name, message: (error as Error).message };
    }
  };
  for (const fields of shapes) assert.deepEqual(outcome(gatewayRecord, fields), outcome(kafkajsRecord, fields), JSON.stringify(fields));
});
