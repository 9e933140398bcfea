// The Kafka side of a commands test: librdkafka's mock cluster with a records, a commands and a receipts
// topic, a kafkajs producer for commands, and readers of the receipts and records for as long as the test runs. Cleanup
// runs in one hook, in order: the receipts reader must leave its group while the cluster is still up (a reader
// left behind a stopped cluster keeps the test process alive).
import type { TestContext } from 'node:test';
import kafkajs from 'kafkajs';
import { type ConsumedMessage, type KafkaMock, startKafkaMock, tailTopic } from './kafka-mock.ts';

export interface ReceiptValue {
  readonly command_id: string | null;
  readonly device_id: string | null;
  readonly status: string;
  readonly at: string;
  readonly reason?: string;
  readonly path?: string;
  readonly attempts?: number;
}

export interface CommandKafka {
  readonly kafka: KafkaMock;
  /** What reached the records topic so far (uplinks, state reports), in arrival order. */
  records(): ConsumedMessage[];
  /** Produces one command (acks=all) with these headers. */
  send(key: string | null, value: string | Buffer, headers?: Record<string, string>): Promise<void>;
  /** The receipts read so far (of one command id, when given; null: those without one), in arrival order. */
  receipts(commandId?: string | null): { readonly message: ConsumedMessage; readonly value: ReceiptValue }[];
  /** The statuses of a command's receipts, in order. */
  statuses(commandId: string | null): string[];
  receipt(commandId: string | null, status: string): ReceiptValue | undefined;
}

export interface CommandKafkaTopics {
  readonly records: string;
  readonly commands: string;
  readonly receipts: string;
  /** Partitions of the commands and receipts topics (the records topic has 1); default 3. */
  readonly partitions?: number;
}

export async function startCommandKafka(t: TestContext, topics: CommandKafkaTopics): Promise<CommandKafka> {
  const partitions = topics.partitions ?? 3;
  const kafka = await startKafkaMock({
    brokers: 1,
    topics: [
      { name: topics.records, partitions: 1 },
      { name: topics.commands, partitions },
      { name: topics.receipts, partitions },
    ],
  });
  const tail = tailTopic(kafka.brokers, topics.receipts);
  const recordsTail = tailTopic(kafka.brokers, topics.records);
  const producer = new kafkajs.Kafka({ clientId: 'test-commands', brokers: [...kafka.brokers], logLevel: kafkajs.logLevel.NOTHING }).producer();
  t.after(async () => {
    await producer.disconnect().catch(() => undefined);
    await Promise.all([tail.stop(), recordsTail.stop()]);
    await kafka.stop();
  });
  await producer.connect();
  const receipts = (commandId?: string | null) =>
    tail
      .messages()
      .map((message) => ({ message, value: JSON.parse(message.value?.toString('utf8') ?? '{}') as ReceiptValue }))
      .filter((entry) => commandId === undefined || entry.value.command_id === commandId);
  return {
    kafka,
    records: () => recordsTail.messages(),
    async send(key, value, headers = {}) {
      await producer.send({ topic: topics.commands, acks: -1, messages: [{ key, value, headers }] });
    },
    receipts,
    statuses: (commandId) => receipts(commandId).map((entry) => entry.value.status),
    receipt: (commandId, status) => receipts(commandId).find((entry) => entry.value.status === status)?.value,
  };
}
