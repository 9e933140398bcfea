// The gateway's produce request writer, CRC-32C and key partitioner against kafkajs' own: the same request
// bytes for every request the gateway sends (and kafkajs' request, unchanged, for the rest), the same
// checksums, the same partition for every key.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import type { ICustomPartitioner, PartitionerArgs } from 'kafkajs';
import { createRandom as random } from '../../firmware-sim/fleet.ts';
import { crc32c } from '../../src/forward/crc32c.ts';
import type { ProduceRequestArgs, ProduceRequestFactory } from '../../src/forward/kafka-produce-request.ts';
import { createKeyPartitioner, murmur2 } from '../../src/forward/key-partitioner.ts';
import { toKafkaMessage } from '../../src/record/kafka-envelope.ts';
import type { StoredRecord } from '../../src/record/record.ts';

const require = createRequire(import.meta.url);
const PRODUCE_MODULE = require.resolve('kafkajs/src/protocol/requests/produce/v3/request.js');
// kafkajs' request (with kafkajs' own record encoder), taken and then dropped from the module cache, so that
// src/forward/kafkajs.ts still installs the gateway's writer when it loads below.
const kafkajsProduce = require(PRODUCE_MODULE) as ProduceRequestFactory;
delete require.cache[PRODUCE_MODULE];
const { recordEncoder } = await import('../../src/forward/kafkajs.ts');
const gatewayProduce = require(PRODUCE_MODULE) as ProduceRequestFactory;
const kafkajsCrc32c = require('kafkajs/src/protocol/recordBatch/crc32C/index.js') as (bytes: Buffer) => number;
const kafkajsMurmur2 = require('kafkajs/src/producer/partitioners/default/murmur2.js') as (key: string | Buffer) => number;
const { Partitioners, CompressionTypes } = require('kafkajs') as typeof import('kafkajs');
const Long = require('kafkajs/src/utils/long.js') as { fromInt(value: number): { value: bigint } };

const TEXTS = ['', 'meter-000123', 'zähler-ü-€-😀', 'x'.repeat(300), 'lamp-17'];

async function requestBytes(factory: ProduceRequestFactory, args: ProduceRequestArgs): Promise<unknown> {
  try {
    return ((await factory(args).encode()) as { buffer: Buffer }).buffer;
  } catch (error) {
    return { threw: (error as Error).name, message: (error as Error).message };
  }
}

/** kafkajs takes Date.now() for messages without a timestamp: both encodes must see the same clock. */
async function withClock<T>(nowMs: number, run: () => Promise<T>): Promise<T> {
  const real = Date.now;
  Date.now = () => nowMs;
  try {
    return await run();
  } finally {
    Date.now = real;
  }
}

async function assertSameRequest(args: ProduceRequestArgs, label: string): Promise<void> {
  const [gateway, kafkajs] = await withClock(1_765_000_000_000, async () => [
    await requestBytes(gatewayProduce, args),
    await requestBytes(kafkajsProduce, args),
  ]);
  assert.deepEqual(gateway, kafkajs, label);
}

function storedRecord(next: () => number, index: number): StoredRecord {
  const receivedAtMs = 1_765_000_000_000 + Math.floor(next() * 100_000);
  return {
    seq: index + 1,
    id: `a1b2c3d4e5f6-${index + 1}`,
    key: `meter-${Math.floor(next() * 500)}${next() < 0.05 ? '-zähler' : ''}`,
    stream: next() < 0.8 ? 'telemetry' : 'status',
    source: next() < 0.7 ? 'mqtt' : 'semtech-udp',
    receivedAtMs,
    eventTimeMs: next() < 0.7 ? receivedAtMs : receivedAtMs - Math.floor(next() * 10 ** (1 + Math.floor(next() * 12))),
    payload: Buffer.from(JSON.stringify({ ts: receivedAtMs, kwh: next() * 1e5, v: 230 + next() })),
    meta: next() < 0.2 ? { 'published-by': 'city-backend', clock: 'unsynchronized' } : {},
    attempts: 0,
  };
}

function request(partitions: ProduceRequestArgs['topicData'][number]['partitions'][], extra: Partial<ProduceRequestArgs> = {}): ProduceRequestArgs {
  return {
    acks: -1,
    timeout: 30_000,
    producerId: -1, // as kafkajs' producer passes it
    producerEpoch: 0,
    compression: CompressionTypes.None,
    transactionalId: undefined,
    // As kafkajs' sendMessages passes them: firstSequence is set on every partition (0 without idempotence).
    topicData: partitions.map((data, index) => ({
      topic: index === 0 ? 'iotgw.records' : `topic-${index}-ü`,
      partitions: data.map((partition) => ({ firstSequence: 0, ...partition })),
    })),
    ...extra,
  };
}

test('kafkajs is loaded with the gateway produce request writer installed', () => {
  assert.equal(recordEncoder, 'iotgw');
  assert.notEqual(gatewayProduce, kafkajsProduce);
});

test('every request the gateway sends is written byte for byte as kafkajs writes it', async () => {
  const next = random(11);
  let seq = 0;
  for (let round = 0; round < 60; round++) {
    const topics = 1 + Math.floor(next() * 3);
    const partitions = Array.from({ length: topics }, () =>
      Array.from({ length: 1 + Math.floor(next() * 6) }, (_, partition) => ({
        partition,
        messages: Array.from({ length: Math.floor(next() * 300) }, () => toKafkaMessage(storedRecord(next, seq++), 'gw-1')),
      })),
    );
    await assertSameRequest(request(partitions), `round ${round}`);
  }
});

test('other message shapes: the same bytes, or kafkajs own request and its error', async () => {
  const base = { key: 'k', value: Buffer.from('v') };
  const shapes: Record<string, unknown>[][] = [
    [{ ...base }, { ...base, timestamp: '1765000000123' }], // some without a timestamp: Date.now() fills in
    [
      { ...base, timestamp: 1_765_000_000_000 },
      { ...base, timestamp: 999 },
    ], // numbers, sorted as text by kafkajs
    [
      { ...base, timestamp: '999' },
      { ...base, timestamp: '1765000000000' },
    ],
    [{ key: Buffer.from([0, 255]), value: 'text', headers: { h: Buffer.from('x') } }],
    [{ key: null, value: null, headers: {} }],
    [{ ...base, headers: { many: ['a', 'b'] } }], // kafkajs' record encoder writes it
    [{ ...base, timestamp: 1.5 }], // a fractional delta: kafkajs' path
    [{ ...base, timestamp: 'soon' }], // kafkajs throws: so does the gateway's path
    [{ key: 7, value: Buffer.from('v') }],
    [],
  ];
  for (const [index, messages] of shapes.entries()) {
    await assertSameRequest(request([[{ partition: 0, messages }]]), `shape ${index}: ${JSON.stringify(messages)}`);
  }
  const messages = [{ ...base, timestamp: '1765000000000' }];
  await assertSameRequest(request([[{ partition: 3, firstSequence: 17, messages }]]), 'a first sequence');
  await assertSameRequest(request([[{ partition: 0, messages }]], { producerId: Long.fromInt(4711), producerEpoch: 2 }), 'a producer id as a Long');
  await assertSameRequest(request([[{ partition: 0, messages }]], { producerId: 4711 }), 'a producer id as a number');
  await assertSameRequest(request([[{ partition: 0, messages }]], { producerId: undefined }), 'no producer id');
  await assertSameRequest(request([[{ partition: 0, messages }]], { transactionalId: 'tx-1' }), 'transactional: kafkajs');
  await assertSameRequest(request([[{ partition: 0, messages }]], { compression: CompressionTypes.GZIP }), 'compressed: kafkajs');
});

test('the gateway writes its own requests itself; compressed and transactional ones go to kafkajs', async () => {
  let kafkajsEncodes = 0;
  const counting: ProduceRequestFactory = (args) => {
    const inner = kafkajsProduce(args);
    return {
      ...inner,
      encode: () => {
        kafkajsEncodes++;
        return inner.encode();
      },
    };
  };
  const { createProduceRequest } = await import('../../src/forward/kafka-produce-request.ts');
  const wrapped = createProduceRequest(counting, (buf) => ({ buffer: buf }));
  const next = random(3);
  const messages = Array.from({ length: 50 }, (_, index) => toKafkaMessage(storedRecord(next, index), 'gw-1'));
  await wrapped(request([[{ partition: 0, messages }]])).encode();
  assert.equal(kafkajsEncodes, 0, 'a gateway request is written without kafkajs');
  await wrapped(request([[{ partition: 0, messages }]], { compression: CompressionTypes.GZIP })).encode();
  await wrapped(request([[{ partition: 0, messages }]], { transactionalId: 'tx' })).encode();
  assert.equal(kafkajsEncodes, 2, 'compressed and transactional requests are kafkajs');
});

test('CRC-32C: the check value, and the same checksum as kafkajs for every length', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
  const next = random(5);
  for (let length = 0; length < 200; length++) {
    const bytes = Buffer.from(Array.from({ length }, () => Math.floor(next() * 256)));
    assert.equal(crc32c(bytes), kafkajsCrc32c(bytes), `length ${length}`);
    if (length > 2) assert.equal(crc32c(bytes, 1, length - 1), kafkajsCrc32c(bytes.subarray(1, length - 1)), `length ${length}, a range`);
  }
  const large = Buffer.from(Array.from({ length: 100_003 }, () => Math.floor(next() * 256)));
  assert.equal(crc32c(large), kafkajsCrc32c(large));
});

test('the key partitioner picks the partition kafkajs (and the Java client) picks for every key', () => {
  const next = random(9);
  const keys: (string | Buffer)[] = [...TEXTS, Buffer.from([255, 254, 0, 1, 128]), Buffer.alloc(0)];
  for (let index = 0; index < 3000; index++) {
    const length = Math.floor(next() * 40);
    keys.push(Array.from({ length }, () => String.fromCharCode(next() < 0.9 ? 32 + Math.floor(next() * 95) : 128 + Math.floor(next() * 2000))).join(''));
  }
  for (const key of keys) assert.equal(murmur2(key), kafkajsMurmur2(key), `murmur2 of ${JSON.stringify(key)}`);
  // Java's Utils.murmur2("21") (kafkajs' own vector).
  assert.equal(murmur2('21'), -973932308);

  const ours = createKeyPartitioner(Partitioners.DefaultPartitioner)();
  const theirs = (Partitioners.DefaultPartitioner as ICustomPartitioner)();
  for (const partitions of [1, 6, 64]) {
    const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({ partitionId, leader: 0 })) as PartitionerArgs['partitionMetadata'];
    for (const key of keys) {
      const args = { topic: 't', partitionMetadata, message: { key, value: 'v' } } as PartitionerArgs;
      assert.equal(ours(args), theirs(args), `${JSON.stringify(key)} over ${partitions} partitions`);
    }
    const explicit = { topic: 't', partitionMetadata, message: { key: 'k', value: 'v', partition: partitions - 1 } } as PartitionerArgs;
    assert.equal(ours(explicit), partitions - 1, 'an explicit partition is kept');
    const unkeyed = ours({ topic: 't', partitionMetadata, message: { value: 'v' } } as PartitionerArgs);
    assert.ok(unkeyed >= 0 && unkeyed < partitions, 'a message without a key still gets a partition');
  }
});
