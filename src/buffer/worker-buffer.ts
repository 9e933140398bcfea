// The production RecordBuffer: the SQLite store runs on its own worker thread. With synchronous=FULL
// every commit waits for an fsync (milliseconds on an SD card); on the main thread that would stall
// MQTT parsing and PUBACKs for every device. Here the main thread keeps accepting into the next group
// commit while the worker syncs the last one, and the inserts use the second core.
import type { Worker } from 'node:worker_threads';
import type { Component, HealthReport } from '../core/lifecycle.ts';
import type { Logger } from '../core/log.ts';
import type { Metrics } from '../core/metrics.ts';
import { BufferFullError, GatewayError } from '../errors.ts';
import { siblingModule, startModuleWorker } from '../shared/module-worker.ts';
import type { NewRecord, StoredRecord } from '../record/record.ts';
import { unpackOutcomes } from './append-result.ts';
import type { BufferStats, RecordBuffer } from './record-buffer.ts';
import type { SqliteStoreOptions } from './sqlite-store.ts';
import {
  type AppendReply,
  type BufferWorkerData,
  type CompanionSpec,
  type LeaseReply,
  packRecords,
  STATS_UPDATE,
  type SerializedError,
  unpackPayloads,
  type WorkerReply,
  type WorkerRequest,
} from './worker-protocol.ts';

export interface WorkerBufferDeps {
  readonly log: Logger;
  readonly metrics: Metrics;
  /** The thread died unexpectedly (already logged as fatal): nothing can be stored any more; end the process. */
  readonly onFatal?: (error: Error) => void;
  /** What runs beside the store on its thread; asked at each start (a port can be handed over only once). */
  readonly companion?: () => CompanionSpec;
}

export interface WorkerBuffer extends RecordBuffer, Component {
  /**
   * For the systemd watchdog: why the buffer thread cannot serve (not open, died, or has had requests
   * outstanding without answering anything for `stallMs`), or null while it answers.
   */
  problem(stallMs: number): string | null;
  /** journal_mode and synchronous as read back from SQLite when the store opened; null until then. */
  durability(): { readonly journalMode: string; readonly synchronous: string } | null;
}

/** A buffer thread with requests outstanding that answers nothing for this long is wedged: health says down. */
export const BUFFER_STALL_MS = 20_000;

const WORKER_URL = siblingModule(import.meta.url, 'buffer-worker');

// The worker is a second V8 isolate with its own young generation, which V8 sizes from the host's memory
// (32 MB of new space on a large host). A store alone keeps a few MB live (prepared statements, the append or
// lease in hand), so a 2 MB semi-space (young generation = 3 x semi) costs little GC time and saves ~28 MB of
// RSS when node runs without flags (npm start, tests). With the forwarder and the Kafka client beside it, the
// thread allocates per record and holds records until Kafka acknowledges them, so the companion gets the size
// the unit gives both threads (16 MB semi-space; 8 cost ~3 % more CPU per record under load).
// node's --max-semi-space-size, as the systemd unit sets it, takes precedence. Old generation stays V8's
// default: a cap there would kill the thread, and with it every commit, instead of slowing it.
const WORKER_RESOURCE_LIMITS = { maxYoungGenerationSizeMb: 6 };
const COMPANION_RESOURCE_LIMITS = { maxYoungGenerationSizeMb: 48 };

function startWorker(workerData: BufferWorkerData): Worker {
  const transferList = workerData.companion === null ? [] : [workerData.companion.port];
  // A companion (Kafka client, record encoding) allocates per record too: give the young generation room for it.
  const resourceLimits = workerData.companion === null ? WORKER_RESOURCE_LIMITS : COMPANION_RESOURCE_LIMITS;
  return startModuleWorker(WORKER_URL, { workerData, transferList, resourceLimits });
}

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

function rebuild(error: SerializedError): GatewayError {
  if (error.code === 'BUFFER_FULL') return new BufferFullError(error.message);
  return new GatewayError(error.code, error.message, { retriable: error.retriable });
}

/** Creates and starts a worker buffer: for tests and tools that need an open buffer at once. */
export async function openWorkerBuffer(options: SqliteStoreOptions, deps: WorkerBufferDeps): Promise<WorkerBuffer> {
  const buffer = createWorkerBuffer(options, deps);
  await buffer.start();
  return buffer;
}

/**
 * The buffer component: start() starts the thread and opens the store there (rejecting with the store's own
 * error if it cannot open); every operation before start() or after stop() rejects with BUFFER_CLOSED.
 */
export function createWorkerBuffer(options: SqliteStoreOptions, deps: WorkerBufferDeps): WorkerBuffer {
  const log = deps.log.child({ component: 'buffer' });
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let worker: Worker | null = null;
  let nextId = 1;
  let stats: BufferStats = { depthRecords: 0, depthBytes: 0, oldestReceivedAtMs: null, deadLetters: 0, droppedRecords: 0 };
  let closing = false;
  let dead: Error | null = null;
  let lastReplyAtMs = performance.now();
  let durability: ReturnType<WorkerBuffer['durability']> = null;
  let dropLogged = false;

  function onDrop(records: number): void {
    deps.metrics.bufferDropped.inc(records);
    if (dropLogged) return;
    dropLogged = true;
    log.warn({ dropped: records }, 'buffer full: deleting the oldest buffered records (buffer.when_full: drop_oldest); see iotgw_buffer_dropped_total');
  }

  function onReply(reply: WorkerReply): void {
    lastReplyAtMs = performance.now();
    if (reply.id === STATS_UPDATE) {
      if (reply.ok) stats = reply.stats ?? stats;
      return;
    }
    const waiter = pending.get(reply.id);
    if (waiter === undefined) return;
    pending.delete(reply.id);
    if (!reply.ok) {
      waiter.reject(rebuild(reply.error));
      return;
    }
    if (reply.stats !== null) stats = reply.stats;
    if (reply.dropped > 0) onDrop(reply.dropped);
    waiter.resolve(reply.value);
  }

  function failAll(error: Error): void {
    dead = error;
    for (const waiter of pending.values()) waiter.reject(error);
    pending.clear();
    if (closing) return;
    // Nothing can be stored any more: the process must end and systemd restart it on the intact file.
    log.fatal({ err: error }, 'buffer thread died');
    deps.onFatal?.(error);
  }

  function call<T>(request: WithoutId<WorkerRequest>, transfer: ArrayBuffer[] = []): Promise<T> {
    if (dead !== null) return Promise.reject(dead);
    if (worker === null || closing) return Promise.reject(new GatewayError('BUFFER_CLOSED', `buffer ${options.path} is not open`, { retriable: false }));
    const id = nextId++;
    const thread = worker;
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: (value) => resolve(value as T), reject });
      thread.postMessage({ ...request, id }, transfer);
    });
  }

  async function start(): Promise<void> {
    if (worker !== null) return;
    closing = false;
    dead = null;
    const thread = startWorker({ store: options, companion: deps.companion?.() ?? null });
    worker = thread;
    const opened = new Promise<NonNullable<typeof durability>>((resolve, reject) => {
      pending.set(0, { resolve: (value) => resolve(value as NonNullable<typeof durability>), reject });
    });
    thread.on('message', onReply);
    thread.on('error', (error) =>
      failAll(new GatewayError('BUFFER_WORKER_DIED', `buffer thread failed: ${error.message}`, { retriable: false, cause: error })),
    );
    thread.on('exit', (code) => {
      if (!closing) failAll(new GatewayError('BUFFER_WORKER_DIED', `buffer thread exited (code ${code})`, { retriable: false }));
    });
    try {
      durability = await opened;
    } catch (error) {
      closing = true;
      worker = null;
      await thread.terminate();
      throw error;
    }
    log.info(
      { path: options.path, ...durability, depthRecords: stats.depthRecords, deadLetters: stats.deadLetters },
      stats.depthRecords > 0 ? `buffer open: ${stats.depthRecords} records from before the restart will be forwarded` : 'buffer open',
    );
  }

  async function stop(): Promise<void> {
    const thread = worker;
    if (thread === null || closing) return;
    closing = true;
    worker = null;
    if (dead !== null) return;
    const exited = new Promise((resolve) => thread.once('exit', resolve));
    const id = nextId++;
    await new Promise<void>((resolve) => {
      pending.set(id, { resolve: () => resolve(), reject: () => resolve() });
      thread.postMessage({ op: 'close', id });
    });
    await exited;
  }

  function problem(stallMs: number): string | null {
    if (dead !== null) return dead.message;
    if (worker === null) return 'buffer closed';
    const silentMs = performance.now() - lastReplyAtMs;
    if (pending.size > 0 && silentMs > stallMs) return `${pending.size} requests unanswered for ${Math.round(silentMs / 1000)}s`;
    return null;
  }

  return {
    name: 'buffer',
    start,
    stop,
    close: stop,
    durability: () => durability,
    problem,

    health(): HealthReport {
      const reason = problem(BUFFER_STALL_MS);
      return reason === null ? { status: 'ok' } : { status: 'down', detail: reason };
    },

    async append(groups, state = []) {
      const { packed, transfer } = packRecords(groups.length === 1 ? (groups[0] as readonly NewRecord[]) : groups.flat());
      const sizes = groups.map((group) => group.length);
      const reply = await call<AppendReply>({ op: 'append', sizes, records: packed, state }, transfer);
      return unpackOutcomes(sizes, reply, (error) => new BufferFullError(error.message));
    },

    async readState(scope) {
      return new Map(await call<[string, string][]>({ op: 'readState', scope }));
    },

    async lease(maxRecords, maxBytes) {
      const reply = await call<LeaseReply>({ op: 'lease', maxRecords, maxBytes });
      const payloads = unpackPayloads(reply.payloads);
      return reply.records.map((record, index): StoredRecord => ({ ...record, payload: payloads[index] as Buffer }));
    },

    async ack(seqs) {
      await call({ op: 'ack', seqs });
    },

    async release(seqs) {
      await call({ op: 'release', seqs });
    },

    async deadLetter(seqs, reason) {
      await call({ op: 'deadLetter', seqs, reason });
    },

    stats: () => stats,
  };
}
