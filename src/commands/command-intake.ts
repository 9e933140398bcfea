// Commands in: a kafkajs consumer in the gateway's own group on commands.topic. Each fetched batch is parsed
// (command-message.ts) and committed to the buffer with its receipts (command-queue.ts) before its offsets
// are committed to Kafka, so a crash in between reads the batch again, and the queue recognises the ids it
// already has. A batch that cannot be committed (buffer full, disk full) is not acknowledged to Kafka:
// kafkajs retries it. Kafka away at boot or later: the consumer reconnects with backoff, and the gateway
// goes on without it (health degraded, iotgw_commands_consumer_up 0).
import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import { errorMessage } from '../errors.ts';
import type { Component, HealthReport } from '../core/lifecycle.ts';
import { createOnceLogger, type Logger } from '../core/log.ts';
import type { Metrics } from '../core/metrics.ts';
import type { KafkaClientOptions } from '../forward/kafka-client.ts';
import { createRetrySchedule } from '../shared/retry-schedule.ts';
import { type ParseLimits, parseCommandMessage } from './command-message.ts';
import type { CommandQueue } from './command-queue.ts';

export interface CommandIntakeOptions {
  readonly kafka: KafkaClientOptions;
  readonly topic: string;
  readonly groupId: string;
  readonly fetchWaitMs: number;
  readonly limits: ParseLimits;
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;
  /** A refused command is logged at most once per reason per interval. */
  readonly rejectLogIntervalMs: number;
}

export interface CommandIntakeDeps {
  readonly queue: CommandQueue;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly nowMs?: () => number;
}

export function createCommandIntake(options: CommandIntakeOptions, deps: CommandIntakeDeps): Component {
  const log = deps.log.child({ component: 'commands.intake', topic: options.topic });
  const { metrics, queue } = deps;
  const nowMs = deps.nowMs ?? Date.now;
  const once = createOnceLogger(options.rejectLogIntervalMs);
  // kafkajs is loaded at the first connect, not at import: a gateway without commands does not carry it on
  // this thread (the buffer thread has its own for the sink).
  let kafka: Kafka | null = null;
  let consumer: Consumer | null = null;
  let stopping = true;
  let up = false;
  let lastProblem = 'not connected yet';
  const retries = createRetrySchedule({ initialMs: options.retryInitialMs, maxMs: options.retryMaxMs }, () => void connect());

  function setUp(next: boolean, problem = ''): void {
    metrics.commandsConsumerUp.set(next ? 1 : 0);
    if (!next) lastProblem = problem;
    if (next === up) return;
    up = next;
    if (next) log.info({ groupId: options.groupId }, `reading commands from ${options.topic}`);
    else
      log.warn({ groupId: options.groupId }, `not reading commands: ${problem}; retrying with backoff (is Kafka reachable, and does ${options.topic} exist?)`);
  }

  async function eachBatch({ batch, resolveOffset, heartbeat }: EachBatchPayload): Promise<void> {
    if (batch.messages.length === 0 || consumer === null) return;
    const now = nowMs();
    const results = batch.messages.map((message) => parseCommandMessage(message, options.limits, now));
    const outcome = await queue.intake(results);
    if (!outcome.result.ok) throw new Error(`commands of ${batch.topic}[${batch.partition}] not stored: ${outcome.result.message}`);
    for (const result of results) {
      if (!result.ok && once.shouldLog(result.reason)) {
        log.warn({ reason: result.reason, commandId: result.commandId, deviceId: result.deviceId }, `command rejected: ${result.message}`);
      }
    }
    const last = batch.messages.at(-1)?.offset as string;
    resolveOffset(last);
    await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() }]);
    await heartbeat();
  }

  async function connect(): Promise<void> {
    if (stopping) return;
    if (kafka === null) {
      const { createKafkaClient } = await import('../forward/kafka-client.ts');
      kafka = createKafkaClient(options.kafka, deps.log, { retries: 5, initialRetryTime: 300, maxRetryTime: options.retryMaxMs });
      if (stopping) return;
    }
    const next = kafka.consumer({
      groupId: options.groupId,
      maxWaitTimeInMs: options.fetchWaitMs,
      // After a crash the dead member holds its partitions until its session times out: keep that short, so a
      // restarted gateway reads new commands within seconds (kafkajs' default is 30 s).
      sessionTimeout: 10_000,
      rebalanceTimeout: 10_000,
      heartbeatInterval: 1_000,
      retry: { retries: 5, initialRetryTime: 300, maxRetryTime: options.retryMaxMs, restartOnFailure: async () => true },
    });
    consumer = next;
    next.on(next.events.GROUP_JOIN, () => {
      retries.succeeded();
      setUp(true);
    });
    next.on(next.events.CRASH, (event) => {
      setUp(false, `the consumer crashed (${errorMessage(event.payload.error)})`);
      // kafkajs restarts only after retriable errors; after any other the consumer is dead: start a new one.
      if (event.payload.restart === false && consumer === next && !stopping) {
        consumer = null;
        void next
          .disconnect()
          .catch(() => undefined)
          .then(() => {
            if (!stopping) retries.failed();
          });
      }
    });
    try {
      await next.connect();
      // From the beginning for a new group: commands written before the gateway's first start are read too
      // (each has an expiry); an existing group continues at its committed offsets.
      await next.subscribe({ topics: [options.topic], fromBeginning: true });
      await next.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch });
    } catch (error) {
      setUp(false, errorMessage(error));
      consumer = null;
      await next.disconnect().catch(() => undefined);
      if (!stopping) retries.failed();
    }
  }

  return {
    name: 'commands.intake',
    async start() {
      stopping = false;
      // Not awaited: Kafka may be away at boot, and the ways in must not wait for it.
      void connect();
    },
    async stop() {
      stopping = true;
      retries.cancel();
      const running = consumer;
      consumer = null;
      // Waits for the batch being stored, then leaves the group.
      await running?.disconnect().catch((error: unknown) => log.warn({ err: error }, 'command consumer did not leave its group cleanly'));
      up = false;
      lastProblem = 'stopped';
      metrics.commandsConsumerUp.set(0);
    },
    health(): HealthReport {
      return up ? { status: 'ok' } : { status: 'degraded', detail: `not reading ${options.topic}: ${lastProblem}` };
    },
  };
}
