// Proves the Kafka test harness against a real kafkajs producer: records
// round-trip through librdkafka's mock cluster with keys, headers and per-key
// order; brokers go down and come back without losing what was written; and
// the launcher's commands answer ok or a clear error.
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import kafkajs from 'kafkajs';
import type { Admin, Producer, RecordMetadata, RetryOptions } from 'kafkajs';
import { KAFKA_API, KAFKA_ERROR, kafkaMockFor, readTopic, readTopicCount, startKafkaMock, topicOffsets } from '../helpers/kafka-mock.ts';

const { Kafka, logLevel, Partitioners } = kafkajs;

const READ_TIMEOUT_MS = 20_000;

// acks -1 and no idempotence, as the gateway's sink runs: kafkajs' idempotent
// producer cannot find a controller on the mock.
async function connectProducer(t: TestContext, brokers: readonly string[], retry: RetryOptions): Promise<Producer> {
  const kafka = new Kafka({
    clientId: 'kafka-mock-test',
    brokers: [...brokers],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1_000,
    requestTimeout: 5_000,
    retry,
  });
  const producer = kafka.producer({
    idempotent: false,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
    retry,
  });
  await producer.connect();
  t.after(() => producer.disconnect());
  return producer;
}

async function connectAdmin(t: TestContext, brokers: readonly string[]): Promise<Admin> {
  const kafka = new Kafka({ clientId: 'kafka-mock-test-admin', brokers: [...brokers], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  t.after(() => admin.disconnect());
  return admin;
}

/** Leader broker id per partition, in partition order. */
async function leaders(admin: Admin, topic: string): Promise<number[]> {
  const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
  const partitions = [...(topics[0]?.partitions ?? [])].sort((a, b) => a.partitionId - b.partitionId);
  return partitions.map((partition) => partition.leader);
}

function send(producer: Producer, topic: string, key: string, value: string): Promise<RecordMetadata[]> {
  return producer.send({ topic, acks: -1, messages: [{ key, value }] });
}

// After brokers return, the first attempts may still hit a closed socket or
// stale metadata; what matters is that sending recovers, not how fast.
async function sendEventually(producer: Producer, topic: string, key: string, value: string): Promise<void> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      await send(producer, topic, key, value);
      return;
    } catch (error) {
      lastError = error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error('send did not recover after the brokers came back', { cause: lastError });
}

test('round-trips keyed records with headers through 3 partitions, in order per key', async (t) => {
  const topic = 'harness.roundtrip';
  const mock = await kafkaMockFor(t, { topics: [{ name: topic, partitions: 3 }] });
  const producer = await connectProducer(t, mock.brokers, { retries: 3, initialRetryTime: 100 });

  const keys = ['meter-1', 'meter-2', 'lamp-7', 'parking-3', 'meter-9'];
  const produced = Array.from({ length: 30 }, (_, seq) => ({ key: keys[seq % keys.length] ?? '', seq }));
  // Two sends of 15 so the log holds more than one batch per partition.
  for (const half of [produced.slice(0, 15), produced.slice(15)]) {
    await producer.send({
      topic,
      acks: -1,
      messages: half.map(({ key, seq }) => ({
        key,
        value: JSON.stringify({ seq }),
        headers: { 'record-id': `r-${seq}`, source: 'semtech-udp' },
      })),
    });
  }

  const consumed = await readTopicCount(mock.brokers, topic, produced.length, READ_TIMEOUT_MS);

  assert.equal(consumed.length, produced.length);
  const seqsByKey = new Map<string, number[]>();
  const partitionsByKey = new Map<string, Set<number>>();
  for (const message of consumed) {
    assert.equal(message.topic, topic);
    assert.ok(message.key !== null && message.value !== null);
    const { seq } = JSON.parse(message.value.toString('utf8')) as { seq: number };
    assert.deepEqual(message.headers, { 'record-id': `r-${seq}`, source: 'semtech-udp' });
    assert.equal(message.key, keys[seq % keys.length]);
    assert.ok(Number.isFinite(message.timestampMs) && message.timestampMs > 0);
    seqsByKey.set(message.key, [...(seqsByKey.get(message.key) ?? []), seq]);
    partitionsByKey.set(message.key, (partitionsByKey.get(message.key) ?? new Set()).add(message.partition));
  }
  for (const key of keys) {
    const expected = produced.filter((record) => record.key === key).map((record) => record.seq);
    assert.deepEqual(seqsByKey.get(key), expected, `order of ${key}`);
    assert.equal(partitionsByKey.get(key)?.size, 1, `${key} stays on one partition`);
  }
  const partitionsUsed = new Set(consumed.map((message) => message.partition));
  assert.ok(partitionsUsed.size > 1, 'keys spread over more than one partition');
});

test('a send fails while all brokers are down; after they are up sends succeed and nothing is lost', async (t) => {
  const topic = 'harness.outage';
  const mock = await kafkaMockFor(t, { topics: [{ name: topic, partitions: 3 }] });
  // No retries: the outage must surface as an error instead of a wait.
  const producer = await connectProducer(t, mock.brokers, { retries: 0 });

  for (let seq = 0; seq < 6; seq++) await send(producer, topic, `device-${seq % 3}`, `before-${seq}`);

  await mock.down('all');
  await assert.rejects(send(producer, topic, 'device-0', 'during-outage'), (error: Error) => {
    assert.match(error.name, /^KafkaJS/);
    return true;
  });

  await mock.up('all');
  // Leaders stayed put while nothing was up, so placement is as before.
  assert.deepEqual(await leaders(await connectAdmin(t, mock.brokers), topic), [1, 2, 3]);
  await sendEventually(producer, topic, 'device-0', 'after-0');
  await send(producer, topic, 'device-1', 'after-1');

  const values = (await readTopicCount(mock.brokers, topic, 8, READ_TIMEOUT_MS)).map((m) => m.value?.toString());
  assert.deepEqual([...values].sort(), ['after-0', 'after-1', 'before-0', 'before-1', 'before-2', 'before-3', 'before-4', 'before-5']);
});

test('one broker down: its partitions move to another broker and move back when it returns', async (t) => {
  const topic = 'harness.one-down';
  const mock = await kafkaMockFor(t, { topics: [{ name: topic, partitions: 3 }] });
  // Retries let kafkajs refresh its stale leader after the move.
  const producer = await connectProducer(t, mock.brokers, { retries: 5, initialRetryTime: 100 });
  const admin = await connectAdmin(t, mock.brokers);
  const keys = ['a', 'b', 'c', 'd', 'e', 'f'];
  // Partition p prefers broker (p % 3) + 1; a downed leader hands over to the next up broker.
  assert.deepEqual(await leaders(admin, topic), [1, 2, 3]);

  await mock.down(2);
  assert.deepEqual(await leaders(admin, topic), [1, 3, 3]);
  for (const key of keys) await send(producer, topic, key, `while-2-down-${key}`);

  // Groups hash to any broker, down ones included; pin this one to broker 1.
  const groupId = 'harness-one-down-reader';
  await mock.setGroupCoordinator(groupId, 1);
  const duringOutage = await readTopic(mock.brokers, topic, {
    until: (messages) => messages.length >= keys.length,
    timeoutMs: READ_TIMEOUT_MS,
    groupId,
  });
  assert.equal(duringOutage.length, keys.length);

  await mock.up(2);
  assert.deepEqual(await leaders(admin, topic), [1, 2, 3]);
  for (const key of keys) await send(producer, topic, key, `after-2-up-${key}`);

  const all = await readTopicCount(mock.brokers, topic, keys.length * 2, READ_TIMEOUT_MS);
  assert.equal(all.length, keys.length * 2);
  assert.deepEqual(new Set(all.map((m) => m.partition)), new Set([0, 1, 2]));
});

test('rtt and topic commands take effect', async (t) => {
  const mock = await kafkaMockFor(t, { brokers: 1 });
  assert.equal(mock.brokers.length, 1);
  assert.match(mock.brokers[0] ?? '', /^127\.0\.0\.1:\d+$/);

  await mock.createTopic('harness.late', 2);
  const producer = await connectProducer(t, mock.brokers, { retries: 3, initialRetryTime: 100 });
  // Slower responses are exercised, never timed (see STYLE.md 3.7).
  await mock.setRttMs('all', 50);
  const [metadata] = await send(producer, 'harness.late', 'k', 'slow');
  await mock.setRttMs(1, 0);
  assert.equal(metadata?.errorCode, 0);
});

test('error answers the next request of an API with a Kafka error: that Produce appends nothing, the next one goes through', async (t) => {
  const topic = 'harness.injected';
  const mock = await kafkaMockFor(t, { brokers: 1, topics: [{ name: topic, partitions: 1 }] });
  const producer = await connectProducer(t, mock.brokers, { retries: 3, initialRetryTime: 100 });
  await send(producer, topic, 'k', 'before');

  await mock.injectError(KAFKA_API.produce, KAFKA_ERROR.messageTooLarge);
  await assert.rejects(send(producer, topic, 'k', 'refused'), (error: Error & { type?: string; retriable?: boolean }) => {
    assert.equal(error.type, 'MESSAGE_TOO_LARGE');
    assert.equal(error.retriable, false);
    return true;
  });
  await send(producer, topic, 'k', 'after');
  assert.deepEqual(await topicOffsets(mock.brokers, topic), { produced: 2, deleted: 0 });
  await assert.rejects(mock.injectError(KAFKA_API.produce, 0), /bad error code/);
});

test('commands reject with a clear error; stop is idempotent', async (t) => {
  const mock = await startKafkaMock({ brokers: 2, topics: [{ name: 'harness.errors', partitions: 1 }] });
  t.after(() => mock.stop());

  await assert.rejects(mock.createTopic('harness.errors', 1), /kafka-mock: 'topic harness.errors 1' failed: .*already exists/i);
  await assert.rejects(mock.down(3), RangeError);
  await assert.rejects(mock.setRttMs('all', -1), RangeError);
  await assert.rejects(mock.createTopic('has space', 1), RangeError);
  // A rejected command leaves the line protocol in step.
  await mock.down(1);
  await mock.up(1);

  await mock.stop();
  await mock.stop();
  await assert.rejects(mock.up('all'), /after stop/);
});
