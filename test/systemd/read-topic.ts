// Reads a Kafka topic with a real kafkajs consumer and prints what it read as one JSON array on stdout. The
// systemd test runs it in the container's network namespace (nsenter -n), where the mock cluster listens.
// Usage: node --import tsx test/systemd/read-topic.ts BROKERS TOPIC COUNT TIMEOUT_MS
import { readTopicCount } from '../helpers/kafka-mock.ts';

export interface ReadMessage {
  readonly key: string | null;
  readonly value: string;
  readonly headers: Record<string, string>;
  readonly partition: number;
}

const [brokers, topic, count, timeoutMs] = process.argv.slice(2);
if (brokers === undefined || topic === undefined || count === undefined || timeoutMs === undefined) {
  process.stderr.write('usage: read-topic.ts BROKERS TOPIC COUNT TIMEOUT_MS\n');
  process.exit(2);
}
const messages = await readTopicCount(brokers.split(','), topic, Number(count), Number(timeoutMs));
const read: ReadMessage[] = messages.map((message) => ({
  key: message.key,
  value: message.value?.toString('utf8') ?? '',
  headers: message.headers,
  partition: message.partition,
}));
process.stdout.write(`${JSON.stringify(read)}\n`);
