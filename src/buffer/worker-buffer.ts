// The production RecordBuffer: the SQLite store runs on its own worker thread. With synchronous=FULL
// every commit waits for an fsync (milliseconds on an SD card); on the main thread that would stall
// MQTT parsing and PUBACKs for every device. Here the main thread keeps accepting into the next group
// commit while the worker syncs the last one, and the inserts use the second core.
import { Worker } from 'node:worker_threads';
import { BufferFullError, GatewayError } from '../errors.ts';
import type { StoredRecord } from '../record/record.ts';
import type { AppendOutcome, BufferStats, RecordBuffer } from './record-buffer.ts';
import type { SqliteStoreOptions } from './sqlite-store.ts';
import { type LeaseReply, packPayloads, type SerializedError, unpackPayloads, type WorkerReply, type WorkerRequest } from './worker-protocol.ts';

export interface WorkerBufferDeps {
  /** Records drop_oldest deleted (the caller counts and logs). */
  readonly onDrop?: (records: number) => void;
  /** The worker died unexpectedly: the gateway cannot store anything any more. */
  readonly onFatal?: (error: Error) => void;
}

export interface WorkerBuffer extends RecordBuffer {
  /**
   * For the systemd watchdog: why the buffer thread cannot serve (it died, or has had requests outstanding
   * without answering anything for `stallMs`), or null while it answers.
   */
  problem(stallMs: number): string | null;
  /** journal_mode and synchronous as read back from SQLite when the store opened. */
  readonly durability: { readonly journalMode: string; readonly synchronous: string };
}

// Built (`tsc`), the worker is buffer-worker.js beside this file. Run from source under tsx (development,
// tests), it is .ts: Node 20 does not pass --import loader hooks on to worker threads (22 does), so the
// worker registers tsx itself before loading the module.
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const WORKER_URL = new URL(FROM_SOURCE ? './buffer-worker.ts' : './buffer-worker.js', import.meta.url);

// The worker is a second V8 isolate with its own young generation, which V8 sizes from the host's memory
// (32 MB of new space on a large host). Its live data is a few MB (prepared statements, the append or lease
// in hand), so a 2 MB semi-space (young generation = 3 x semi) costs little GC time and saves ~28 MB of RSS
// when node runs without flags (npm start, tests); node's --max-semi-space-size, as the systemd unit sets
// it, takes precedence. Old generation stays V8's default: a cap there would kill the thread, and with it
// every commit, instead of slowing it.
const WORKER_RESOURCE_LIMITS = { maxYoungGenerationSizeMb: 6 };

function startWorker(workerData: SqliteStoreOptions): Worker {
  if (!FROM_SOURCE) return new Worker(WORKER_URL, { workerData, resourceLimits: WORKER_RESOURCE_LIMITS });
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const bootstrap = `import(${JSON.stringify(tsxApi)}).then(({ register }) => { register(); return import(${JSON.stringify(WORKER_URL.href)}); });`;
  return new Worker(bootstrap, { eval: true, workerData, resourceLimits: WORKER_RESOURCE_LIMITS });
}

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

function rebuild(error: SerializedError): GatewayError {
  if (error.code === 'BUFFER_FULL') return new BufferFullError(error.message);
  return new GatewayError(error.code, error.message, { retriable: error.retriable });
}

/** Starts the worker and opens the store there; rejects with the store's own error if it cannot open. */
export async function createWorkerBuffer(options: SqliteStoreOptions, deps: WorkerBufferDeps = {}): Promise<WorkerBuffer> {
  const worker = startWorker(options);
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let nextId = 1;
  let stats: BufferStats = { depthRecords: 0, depthBytes: 0, oldestReceivedAtMs: null, deadLetters: 0, droppedRecords: 0 };
  let closing = false;
  let dead: Error | null = null;
  let lastReplyAtMs = performance.now();

  const opened = new Promise<WorkerBuffer['durability']>((resolve, reject) => {
    pending.set(0, { resolve: (value) => resolve(value as WorkerBuffer['durability']), reject });
  });

  worker.on('message', (reply: WorkerReply) => {
    lastReplyAtMs = performance.now();
    const waiter = pending.get(reply.id);
    if (waiter === undefined) return;
    pending.delete(reply.id);
    if (!reply.ok) {
      waiter.reject(rebuild(reply.error));
      return;
    }
    if (reply.stats !== null) stats = reply.stats;
    if (reply.dropped > 0) deps.onDrop?.(reply.dropped);
    waiter.resolve(reply.value);
  });

  const failAll = (error: Error): void => {
    dead = error;
    for (const waiter of pending.values()) waiter.reject(error);
    pending.clear();
    if (!closing) deps.onFatal?.(error);
  };
  worker.on('error', (error) => failAll(new GatewayError('BUFFER_WORKER_DIED', `buffer thread failed: ${error.message}`, { retriable: false, cause: error })));
  worker.on('exit', (code) => {
    if (!closing) failAll(new GatewayError('BUFFER_WORKER_DIED', `buffer thread exited (code ${code})`, { retriable: false }));
  });

  function call<T>(request: WithoutId<WorkerRequest>, transfer: ArrayBuffer[] = []): Promise<T> {
    if (dead !== null) return Promise.reject(dead);
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: (value) => resolve(value as T), reject });
      worker.postMessage({ ...request, id }, transfer);
    });
  }

  let durability: WorkerBuffer['durability'];
  try {
    durability = await opened;
  } catch (error) {
    closing = true;
    await worker.terminate();
    throw error;
  }

  return {
    durability,

    async append(groups, state = []) {
      const flat = groups.flat();
      const payloads = packPayloads(flat.map((record) => record.payload));
      const records = flat.map(({ payload: _payload, ...rest }) => rest);
      const sizes = groups.map((group) => group.length);
      const outcomes = await call<({ ok: true; seqs: number[] } | { ok: false; error: SerializedError })[]>({ op: 'append', sizes, records, payloads, state }, [
        payloads.bytes,
      ]);
      return outcomes.map((outcome): AppendOutcome => (outcome.ok ? outcome : { ok: false, error: new BufferFullError(outcome.error.message) }));
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

    problem(stallMs) {
      if (dead !== null) return dead.message;
      const silentMs = performance.now() - lastReplyAtMs;
      if (pending.size > 0 && silentMs > stallMs) return `${pending.size} requests unanswered for ${Math.round(silentMs / 1000)}s`;
      return null;
    },

    async close() {
      if (closing) return;
      closing = true;
      if (dead === null) {
        const exited = new Promise((resolve) => worker.once('exit', resolve));
        const id = nextId++;
        await new Promise<void>((resolve) => {
          pending.set(id, { resolve: () => resolve(), reject: () => resolve() });
          worker.postMessage({ op: 'close', id });
        });
        await exited;
      }
    },
  };
}
