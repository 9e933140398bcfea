// The Kafka sink: a kafkajs producer with acks=all and as many requests in flight per broker as the forwarder
// has lanes; each lane has one batch on the wire, so a retried batch can never overtake a newer one of its
// devices. The idempotent producer is not used (experimental in kafkajs, and not needed: a lane sends one batch
// at a time); stable record ids make duplicates identifiable.
// A producer that failed is dropped and the next call starts a fresh one: kafkajs 2.2.4 can keep a broker
// connection that never completed its handshake (a broker that accepted TCP but did not answer), and then
// fails every request with "Broker not connected" until that socket closes. connect() checks the link with
// a real request (a metadata read), since kafkajs' own connect() can resolve without one answer.
import type { Producer, TopicMessages } from 'kafkajs';
import kafkajs, { recordEncoder } from './kafkajs.ts';
import { errorMessage, GatewayError, isProgrammingError } from '../errors.ts';
import type { HealthReport } from '../core/lifecycle.ts';
import type { Logger } from '../core/log.ts';
import type { ForwardMetrics } from './forward-metrics.ts';
import { toKafkaMessage } from '../record/kafka-envelope.ts';
import type { Router } from '../record/routes.ts';
import { type Compression, useCompression } from './compression.ts';
import { createKeyPartitioner } from './key-partitioner.ts';
import { createKafkaClient, type KafkaClientOptions } from './kafka-client.ts';
import { type Sink, SinkError } from './sink.ts';

const { Partitioners } = kafkajs;

export interface KafkaSinkOptions extends KafkaClientOptions {
  readonly gatewayId: string;
  readonly compression: Compression;
  /** Requests on the wire per broker: the forwarder's batches in flight (lanes; default 1). */
  readonly maxInFlightRequests?: number;
}

export interface KafkaSinkDeps {
  readonly router: Router;
  readonly log: Logger;
  readonly metrics: ForwardMetrics;
}

/** kafkajs errors that wrap the one that says what happened. */
const KAFKAJS_WRAPPERS = new Set(['KafkaJSNonRetriableError', 'KafkaJSNumberOfRetriesExceeded']);

/** Protocol errors that mean "these records will never be accepted", whatever we retry. */
const PERMANENT_ERRORS = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE', 'INVALID_RECORD', 'INVALID_TIMESTAMP']);

export function createKafkaSink(options: KafkaSinkOptions, deps: KafkaSinkDeps): Sink {
  const log = deps.log.child({ component: 'sink.kafka' });
  const { metrics } = deps;
  const kafka = createKafkaClient(options, deps.log);
  /** kafkajs' compression type, once its codec is loaded (on the first send). */
  let compressionType: Promise<number> | null = null;

  let producer: Producer | null = null;
  let connected: Promise<Producer> | null = null;
  let lastError: string | null = null;

  /** Forgets the producer after a failure, so the next call connects afresh. */
  function dropProducer(): void {
    const current = connected;
    connected = null;
    producer = null;
    if (current !== null) void current.then((ready) => ready.disconnect()).catch(() => undefined);
  }

  /** One metadata request through a short-lived admin client: resolves only if a broker answered. */
  async function checkLink(): Promise<void> {
    const admin = kafka.admin();
    try {
      await admin.connect();
      await admin.describeCluster();
    } finally {
      void admin.disconnect().catch(() => undefined);
    }
  }

  function connect(): Promise<Producer> {
    if (connected !== null) return connected;
    const candidate = kafka.producer({
      createPartitioner: createKeyPartitioner(Partitioners.DefaultPartitioner), // murmur2, as the Java client: same key, same partition
      allowAutoTopicCreation: false,
      idempotent: false,
      // One per lane: a lane sends its next batch only after the last one was acknowledged, so a retried
      // batch can never overtake a newer one of the same devices.
      maxInFlightRequests: options.maxInFlightRequests ?? 1,
      retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 },
    });
    candidate.on(candidate.events.DISCONNECT, () => {
      if (producer === candidate) {
        producer = null;
        connected = null;
      }
    });
    connected = candidate.connect().then(
      () => {
        producer = candidate;
        return candidate;
      },
      (error: unknown) => {
        connected = null;
        void candidate.disconnect().catch(() => undefined);
        throw error;
      },
    );
    return connected;
  }

  return {
    name: 'sink.kafka',

    async start() {
      // Kafka may be unreachable at boot: the forwarder connects on its first send. The codec is loaded now,
      // so a platform without it fails at start, naming the setting, instead of at every send.
      compressionType = useCompression(options.compression).catch((error: unknown) => {
        throw new GatewayError(
          'KAFKA_COMPRESSION',
          `kafka.compression ${options.compression}: cannot load its codec (${errorMessage(error)}); choose another`,
          {
            retriable: false,
            cause: error,
          },
        );
      });
      await compressionType;
      log.info({ brokers: options.brokers, compression: options.compression, recordEncoder }, 'Kafka sink ready');
    },

    async connect() {
      try {
        await checkLink();
        await connect();
      } catch (error) {
        dropProducer();
        const failure = toSinkError(error);
        lastError = failure.message;
        throw failure;
      }
      lastError = null;
    },

    async send(records) {
      if (records.length === 0) return;
      const startedAt = performance.now();
      // Built outside the try below: an error here is a bug in the gateway, not Kafka refusing the batch, and
      // must reach the forwarder as itself (it ends the process) rather than as a retriable SinkError.
      const byTopic = new Map<string, TopicMessages>();
      for (const record of records) {
        const topic = deps.router.topicFor(record.stream);
        let entry = byTopic.get(topic);
        if (entry === undefined) {
          entry = { topic, messages: [] };
          byTopic.set(topic, entry);
        }
        entry.messages.push(toKafkaMessage(record, options.gatewayId));
      }
      try {
        const ready = await connect();
        compressionType ??= useCompression(options.compression);
        const compression = await compressionType;
        await ready.sendBatch({ topicMessages: [...byTopic.values()], acks: -1, timeout: options.requestTimeoutMs, compression });
      } catch (error) {
        // A bug inside the send (a TypeError while kafkajs encodes) is not Kafka refusing: the forwarder ends the process.
        const bug = programmingErrorIn(error);
        if (bug !== null) throw bug;
        const failure = toSinkError(error);
        // Only a broken connection is dropped: after a request timeout the same connection keeps the broker's
        // order (a resent batch lands after the timed-out one, never before a newer one).
        if (isConnectionFailure(error)) dropProducer();
        lastError = failure.message;
        metrics.kafkaSendErrors.inc({ code: failure.code });
        throw failure;
      }
      lastError = null;
      metrics.kafkaSendSeconds.observe((performance.now() - startedAt) / 1000);
      for (const entry of byTopic.values()) metrics.kafkaSentRecords.inc({ topic: entry.topic }, entry.messages.length);
    },

    async stop() {
      const current = connected;
      connected = null;
      producer = null;
      lastError = null;
      if (current !== null) await current.then((ready) => ready.disconnect()).catch(() => undefined);
    },

    health(): HealthReport {
      if (lastError !== null) return { status: 'degraded', detail: lastError };
      return { status: producer === null ? 'degraded' : 'ok', detail: producer === null ? 'not connected' : 'connected' };
    },
  };
}

/** The causes of a kafkajs error, outermost first (kafkajs wraps in originalError, Node in cause). */
function causes(error: unknown): Error[] {
  const chain: Error[] = [];
  for (let current: unknown = error; current instanceof Error && chain.length < 6; ) {
    chain.push(current);
    current = (current as { originalError?: unknown }).originalError ?? current.cause;
  }
  return chain;
}

const CONNECTION_ERRORS = new Set(['KafkaJSConnectionError', 'KafkaJSConnectionClosedError']);

/** A connection that failed or never finished its handshake (kafkajs: "Broker not connected"). */
function isConnectionFailure(error: unknown): boolean {
  return causes(error).some((cause) => CONNECTION_ERRORS.has(cause.name) || cause.message === 'Broker not connected');
}

function programmingErrorIn(error: unknown): Error | null {
  return causes(error).find((cause) => isProgrammingError(cause)) ?? null;
}

/** Maps a kafkajs error (possibly wrapped in retry errors) to a SinkError, permanent only for record-level refusals. */
export function toSinkError(error: unknown): SinkError {
  let current: unknown = error;
  // The innermost kafkajs error names the failure; its wrappers (retries exhausted, "non-retriable" after
  // kafkajs' own retries) only say that kafkajs gave up.
  let name = 'Error';
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const type = (current as { type?: unknown }).type;
    if (typeof type === 'string') {
      return new SinkError(type, `Kafka refused the batch: ${type}: ${current.message}`, !PERMANENT_ERRORS.has(type), error);
    }
    if (current.name.startsWith('KafkaJS') && !KAFKAJS_WRAPPERS.has(current.name)) name = current.name;
    current = (current as { cause?: unknown; originalError?: unknown }).originalError ?? current.cause;
  }
  const code = name.startsWith('KafkaJS')
    ? name
        .slice('KafkaJS'.length)
        .replace(/([a-z])([A-Z])/g, '$1_$2')
        .toUpperCase()
    : 'KAFKA_ERROR';
  return new SinkError(code, `Kafka send failed: ${errorMessage(error)}`, true, error);
}
