// Test harness for a real Kafka-protocol broker: spawns the librdkafka mock
// cluster launcher (test/kafka-mock/kafka-mock.c), exposes its broker
// down/up/rtt/topic/error commands, and reads topics back with a real kafkajs
// consumer so tests can check what the gateway actually produced.
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import type { TestContext } from 'node:test';
import kafkajs from 'kafkajs';
import type { Consumer, IHeaders, KafkaMessage } from 'kafkajs';
import { buildKafkaMock } from '../kafka-mock/build.ts';

// kafkajs is CommonJS: a default import is its module.exports (named imports
// also resolve in Node and tsc nodenext, but this form never depends on
// cjs-module-lexer).
const { Kafka, logLevel } = kafkajs;

const START_TIMEOUT_MS = 10_000;
const COMMAND_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
const STDERR_KEEP_CHARS = 8_000;

export interface KafkaMockOptions {
  /** Broker count, ids 1..brokers. Default 3. */
  brokers?: number;
  /** Created before startKafkaMock resolves; replication factor min(3, brokers). */
  topics?: readonly { name: string; partitions: number }[];
  /** Runs the launcher behind this command, e.g. nsenter into a container's network namespace. */
  commandPrefix?: readonly string[];
}

/**
 * A running mock cluster. Partition p's leader is broker (p % brokers) + 1 while
 * it is up; a downed leader's partitions move to the next up broker and move
 * back when it returns. Each partition keeps only ~5 MiB (older batches are dropped).
 */
export interface KafkaMock {
  /** Bootstrap list, 'host:port' per broker; ports survive down/up. */
  readonly brokers: readonly string[];
  /** Closes the broker's listener and connections (clients get ECONNREFUSED). */
  down(broker: number | 'all'): Promise<void>;
  up(broker: number | 'all'): Promise<void>;
  /** Delays every response of the broker(s) by ms; 0 clears it. */
  setRttMs(broker: number | 'all', ms: number): Promise<void>;
  /** The mock has no CreateTopics API; this is the way to make topics. */
  createTopic(name: string, partitions: number): Promise<void>;
  /**
   * Pins a consumer group's coordinator. Groups are otherwise hashed over all
   * brokers, down ones included, so a group reading during a one-broker outage
   * must be pinned to an up broker.
   */
  setGroupCoordinator(groupId: string, broker: number): Promise<void>;
  /**
   * Answers the next request of a Kafka API (on any broker) with an error code, e.g.
   * `injectError(KAFKA_API.produce, KAFKA_ERROR.messageTooLarge)`: what a real broker answers to a batch
   * over its message.max.bytes, which the mock itself never checks. An errored Produce appends nothing.
   */
  injectError(apiKey: number, errorCode: number): Promise<void>;
  /** Destroys the cluster and ends the process; idempotent. */
  stop(): Promise<void>;
}

/** Kafka protocol API keys, for injectError. */
export const KAFKA_API = { produce: 0 } as const;
/** Kafka protocol error codes, for injectError. */
export const KAFKA_ERROR = { messageTooLarge: 10 } as const;

/** Builds the launcher if needed, starts a cluster and waits for its bootstrap list. */
export async function startKafkaMock(options: KafkaMockOptions = {}): Promise<KafkaMock> {
  const binaryPath = await buildKafkaMock();
  const args: string[] = [];
  if (options.brokers !== undefined) args.push('--brokers', String(options.brokers));
  for (const topic of options.topics ?? []) args.push('--topic', `${topic.name}:${topic.partitions}`);

  const [command, ...prefixArgs] = [...(options.commandPrefix ?? []), binaryPath];
  const launcher = new LauncherProcess(spawn(command as string, [...prefixArgs, ...args], { stdio: ['pipe', 'pipe', 'pipe'] }));
  try {
    const bootstrap = await launcher.nextLine(START_TIMEOUT_MS, 'start');
    const match = /^BOOTSTRAP (\S+)$/.exec(bootstrap);
    if (match?.[1] === undefined) throw launcher.failure(`unexpected first line ${JSON.stringify(bootstrap)}`);
    return createKafkaMock(Object.freeze(match[1].split(',')), launcher);
  } catch (error) {
    await launcher.stop();
    throw error;
  }
}

/** startKafkaMock with stop() registered on the test context. */
export async function kafkaMockFor(t: TestContext, options: KafkaMockOptions = {}): Promise<KafkaMock> {
  const mock = await startKafkaMock(options);
  t.after(() => mock.stop());
  return mock;
}

function createKafkaMock(brokers: readonly string[], launcher: LauncherProcess): KafkaMock {
  // One command on the wire at a time: answers carry no id, so order is the
  // only way to pair them with their commands. The line is built inside the
  // chain so a bad argument becomes a rejection, not a synchronous throw.
  let queue: Promise<unknown> = Promise.resolve();
  const command = (buildLine: () => string): Promise<void> => {
    const run = queue.then(() => launcher.command(buildLine()));
    queue = run.catch(() => undefined);
    return run;
  };
  const brokerArg = (broker: number | 'all'): string => {
    if (broker === 'all') return 'all';
    if (!Number.isInteger(broker) || broker < 1 || broker > brokers.length) {
      throw new RangeError(`kafka-mock: broker must be 1..${brokers.length} or 'all', got ${broker}`);
    }
    return String(broker);
  };
  const token = (what: string, value: string): string => {
    if (!/^[^\s]+$/.test(value)) throw new RangeError(`kafka-mock: ${what} must be non-empty without spaces`);
    return value;
  };
  const count = (what: string, value: number): string => {
    if (!Number.isInteger(value) || value < 0) throw new RangeError(`kafka-mock: ${what} must be an integer >= 0`);
    return String(value);
  };

  return {
    brokers,
    down: (broker) => command(() => `down ${brokerArg(broker)}`),
    up: (broker) => command(() => `up ${brokerArg(broker)}`),
    setRttMs: (broker, ms) => command(() => `rtt ${brokerArg(broker)} ${count('rtt', ms)}`),
    createTopic: (name, partitions) => command(() => `topic ${token('topic', name)} ${count('partitions', partitions)}`),
    setGroupCoordinator: (groupId, broker) => command(() => `coordinator ${token('group id', groupId)} ${brokerArg(broker)}`),
    injectError: (apiKey, errorCode) => command(() => `error ${count('api key', apiKey)} ${count('error code', errorCode)}`),
    stop: () => launcher.stop(),
  };
}

/**
 * The child process and its line protocol. While nothing is pending its
 * handles are unref'd, so a test that forgets stop() still lets Node exit; the
 * launcher then sees EOF on stdin and exits too.
 */
class LauncherProcess {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #lines: string[] = [];
  #waiter: ((line: string | undefined) => void) | undefined;
  #stdout = '';
  #stderr = '';
  #exit: string | undefined;
  #stopping: Promise<void> | undefined;
  readonly #exited: Promise<void>;

  constructor(child: ChildProcessWithoutNullStreams) {
    this.#child = child;
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => this.#onStdout(chunk));
    child.stderr.on('data', (chunk: string) => {
      this.#stderr = (this.#stderr + chunk).slice(-STDERR_KEEP_CHARS);
    });
    // Writes after the launcher died surface as the exit error instead.
    child.stdin.on('error', () => undefined);
    this.#exited = new Promise((resolve) => {
      child.on('error', (error) => {
        this.#exit ??= `failed to run: ${error.message}`;
        this.#flushWaiter();
        resolve();
      });
      // 'close', not 'exit': by then stdout has been read to its end.
      child.on('close', (code, signal) => {
        this.#exit ??= signal === null ? `exited with code ${code}` : `killed by ${signal}`;
        this.#flushWaiter();
        resolve();
      });
    });
    this.#setRef(false);
  }

  /** Sends one command and resolves on `ok`; rejects on `error ...`. */
  async command(line: string): Promise<void> {
    if (this.#stopping !== undefined) throw new Error(`kafka-mock: '${line}' after stop()`);
    if (this.#exit !== undefined) throw this.failure(`cannot send '${line}'`);
    this.#child.stdin.write(`${line}\n`);
    const answer = await this.nextLine(COMMAND_TIMEOUT_MS, line);
    if (answer === 'ok') return;
    if (answer.startsWith('error ')) throw new Error(`kafka-mock: '${line}' failed: ${answer.slice('error '.length)}`);
    throw this.failure(`unexpected answer ${JSON.stringify(answer)} to '${line}'`);
  }

  async nextLine(timeoutMs: number, what: string): Promise<string> {
    const queued = this.#lines.shift();
    if (queued !== undefined) return queued;
    if (this.#exit !== undefined) throw this.failure(`no answer to '${what}'`);

    this.#setRef(true);
    let timer: NodeJS.Timeout | undefined;
    try {
      const line = await new Promise<string | undefined>((resolve) => {
        this.#waiter = resolve;
        timer = setTimeout(() => resolve(undefined), timeoutMs);
      });
      if (line === undefined) {
        throw this.failure(this.#exit === undefined ? `no answer to '${what}' within ${timeoutMs} ms` : `no answer to '${what}'`);
      }
      return line;
    } finally {
      clearTimeout(timer);
      this.#waiter = undefined;
      this.#setRef(false);
    }
  }

  /** An Error carrying the launcher's exit status and recent stderr. */
  failure(message: string): Error {
    const status = this.#exit === undefined ? '' : ` (launcher ${this.#exit})`;
    const stderr = this.#stderr.trim() === '' ? '' : `\nlauncher stderr:\n${this.#stderr.trim()}`;
    return new Error(`kafka-mock: ${message}${status}${stderr}`);
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    if (this.#exit !== undefined) return;
    this.#setRef(true);
    // quit lets librdkafka close its sockets cleanly; SIGKILL only if it hangs.
    this.#child.stdin.end('quit\n');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await this.#exited;
    clearTimeout(timer);
  }

  #onStdout(chunk: string): void {
    this.#stdout += chunk;
    let newline = this.#stdout.indexOf('\n');
    while (newline !== -1) {
      const line = this.#stdout.slice(0, newline);
      this.#stdout = this.#stdout.slice(newline + 1);
      if (this.#waiter !== undefined) {
        const waiter = this.#waiter;
        this.#waiter = undefined;
        waiter(line);
      } else {
        this.#lines.push(line);
      }
      newline = this.#stdout.indexOf('\n');
    }
  }

  #flushWaiter(): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.(undefined);
  }

  #setRef(ref: boolean): void {
    // The stdio pipes are net.Sockets at runtime, though typed as plain streams.
    const handles: object[] = [this.#child, this.#child.stdin, this.#child.stdout, this.#child.stderr];
    for (const handle of handles as Refable[]) {
      if (ref) handle.ref?.();
      else handle.unref?.();
    }
  }
}

interface Refable {
  ref?: () => unknown;
  unref?: () => unknown;
}

/** One record as a consumer sees it; key and header values decoded as UTF-8. */
export interface ConsumedMessage {
  topic: string;
  partition: number;
  /** Kafka offsets are int64; kafkajs hands them over as decimal strings. */
  offset: string;
  key: string | null;
  value: Buffer | null;
  /** A header repeated under one key keeps its last value. */
  headers: Record<string, string>;
  timestampMs: number;
}

export interface ReadTopicOptions {
  /** Called after each message; reading stops once it returns true. */
  until: (messages: readonly ConsumedMessage[]) => boolean;
  /**
   * Budget for connect, group join and reading; then resolves with what it has.
   * If kafkajs is still connecting at that point (brokers down), the call
   * returns once that attempt gives up, up to ~3 s later.
   */
  timeoutMs: number;
  /** Default true. With false only records produced after the group joins are seen. */
  fromBeginning?: boolean;
  /** Default a fresh unique id; pass one pinned with setGroupCoordinator during an outage. */
  groupId?: string;
}

/**
 * Reads a topic with a real kafkajs consumer in a fresh consumer group until
 * `until` holds or `timeoutMs` passes, and resolves with the messages seen (in
 * arrival order: ordered within a partition, interleaved across partitions).
 * Never rejects on timeout; callers assert on the result. Rejects only when
 * kafkajs gives up connecting before the deadline. Expect ~3 s of the budget
 * to go on the mock's initial-rebalance delay for a new group.
 */
export async function readTopic(brokers: readonly string[], topic: string, options: ReadTopicOptions): Promise<ConsumedMessage[]> {
  const messages: ConsumedMessage[] = [];
  if (options.until(messages)) return messages;

  const kafka = new Kafka({
    clientId: 'kafka-mock-reader',
    brokers: [...brokers],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1_000,
    requestTimeout: 5_000,
    // Bounds how long connect() keeps trying (~3 s) once the budget is spent.
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1_000 },
  });
  const consumer = kafka.consumer({
    groupId: options.groupId ?? `kafka-mock-reader-${randomUUID()}`,
    // The mock holds an empty Fetch for the full MaxWait; kafkajs' 5 s default
    // would make every read that far slower than the data.
    maxWaitTimeInMs: 50,
    retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 1_000 },
  });

  let finished = false;
  let finish: () => void = () => undefined;
  const done = new Promise<void>((resolve) => {
    finish = () => {
      finished = true;
      resolve();
    };
  });
  const timer = setTimeout(finish, options.timeoutMs);

  const started = startReading(
    consumer,
    topic,
    options.fromBeginning ?? true,
    () => finished,
    (message) => {
      if (finished) return;
      messages.push(message);
      if (options.until(messages)) finish();
    },
  );
  try {
    // A connect/subscribe failure before the deadline rejects readTopic.
    await Promise.race([done, started.then(() => done)]);
  } finally {
    finished = true;
    clearTimeout(timer);
    // disconnect() does not cancel a connect() still retrying when time ran
    // out: wait for it to give up or finish (it then skips subscribe/run), and
    // disconnect again, so no consumer outlives this call. Failures here
    // change nothing about what was read.
    await consumer.disconnect().catch(() => undefined);
    await started.catch(() => undefined);
    await consumer.disconnect().catch(() => undefined);
  }
  return messages.slice();
}

/**
 * How many messages were ever produced to a topic (the sum of its partitions' high watermarks), and how many
 * the mock has already deleted (the sum of the low watermarks: it keeps ~5 MiB per partition).
 */
export async function topicOffsets(brokers: readonly string[], topic: string): Promise<{ produced: number; deleted: number }> {
  const kafka = new Kafka({ clientId: 'kafka-mock-admin', brokers: [...brokers], logLevel: logLevel.NOTHING, connectionTimeout: 1_000 });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    return {
      produced: offsets.reduce((sum, partition) => sum + Number(partition.high), 0),
      deleted: offsets.reduce((sum, partition) => sum + Number(partition.low), 0),
    };
  } finally {
    await admin.disconnect();
  }
}

/** A consumer that reads a topic from the beginning for as long as a test runs, riding out broker outages. */
export interface TopicTail {
  /** Messages read so far. */
  count(): number;
  /** A copy of the messages read so far, in arrival order. */
  messages(): ConsumedMessage[];
  /** Stops reading; resolves with every message read, in arrival order. */
  stop(): Promise<ConsumedMessage[]>;
}

/**
 * Starts reading `topic` in a fresh group and keeps reading through outages (kafkajs restarts the consumer
 * after a crash), so a long test can hold more than the mock's ~5 MiB per partition: what is read before the
 * mock deletes it is kept here.
 */
export function tailTopic(brokers: readonly string[], topic: string): TopicTail {
  const messages: ConsumedMessage[] = [];
  const kafka = new Kafka({
    clientId: 'kafka-mock-tail',
    brokers: [...brokers],
    logLevel: process.env.TAIL_DEBUG ? logLevel.INFO : logLevel.NOTHING,
    connectionTimeout: 1_000,
    requestTimeout: 5_000,
    retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1_000, restartOnFailure: () => Promise.resolve(true) },
  });
  const consumer = kafka.consumer({
    groupId: `kafka-mock-tail-${randomUUID()}`,
    maxWaitTimeInMs: 50,
    // Each restart joins as a new member; the old one holds up the next rebalance until its session times
    // out, so keep that short (6 s is the broker's usual minimum).
    sessionTimeout: 6_000,
    rebalanceTimeout: 6_000,
    heartbeatInterval: 1_000,
    retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1_000, restartOnFailure: () => Promise.resolve(true) },
  });
  let stopped = false;
  const started = startReading(
    consumer,
    topic,
    true,
    () => stopped,
    (message) => {
      if (!stopped) messages.push(message);
    },
  );
  return {
    count: () => messages.length,
    messages: () => messages.slice(),
    async stop() {
      stopped = true;
      await consumer.disconnect().catch(() => undefined);
      await started.catch(() => undefined);
      await consumer.disconnect().catch(() => undefined);
      return messages.slice();
    },
  };
}

/** readTopic until `count` messages have arrived (or the timeout passed). */
export function readTopicCount(brokers: readonly string[], topic: string, count: number, timeoutMs: number): Promise<ConsumedMessage[]> {
  return readTopic(brokers, topic, { until: (messages) => messages.length >= count, timeoutMs });
}

async function startReading(
  consumer: Consumer,
  topic: string,
  fromBeginning: boolean,
  isFinished: () => boolean,
  onMessage: (message: ConsumedMessage) => void,
): Promise<void> {
  await consumer.connect();
  if (isFinished()) return;
  await consumer.subscribe({ topics: [topic], fromBeginning });
  if (isFinished()) return;
  await consumer.run({
    // A throwaway group: committing offsets would only add traffic.
    autoCommit: false,
    eachMessage: ({ topic: messageTopic, partition, message }) => {
      onMessage(toConsumedMessage(messageTopic, partition, message));
      return Promise.resolve();
    },
  });
}

function toConsumedMessage(topic: string, partition: number, message: KafkaMessage): ConsumedMessage {
  return {
    topic,
    partition,
    offset: message.offset,
    key: message.key === null ? null : message.key.toString('utf8'),
    value: message.value,
    headers: decodeHeaders(message.headers),
    timestampMs: Number(message.timestamp),
  };
}

function decodeHeaders(headers: IHeaders | undefined): Record<string, string> {
  const decoded: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    const last = Array.isArray(value) ? value.at(-1) : value;
    if (last !== undefined) decoded[name] = last.toString();
  }
  return decoded;
}
