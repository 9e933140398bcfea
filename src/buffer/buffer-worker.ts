// The buffer's thread: owns the SQLite store and runs one request at a time, so every commit's fsync
// happens here while the main thread keeps serving MQTT. Speaks the protocol in worker-protocol.ts. A
// companion (the forwarder) may run beside the store on this thread and use it directly.
import { parentPort, workerData } from 'node:worker_threads';
import { GatewayError, errorMessage } from '../errors.ts';
import type { NewRecord } from '../record/record.ts';
import type { RecordStore } from './record-store.ts';
import { createSqliteStore } from './sqlite-store.ts';
import {
  type AppendReply,
  type BufferWorkerData,
  type Companion,
  type CompanionContext,
  type LeaseReply,
  packPayloads,
  STATS_UPDATE,
  type SerializedError,
  unpackRecords,
  type WorkerReply,
  type WorkerRequest,
} from './worker-protocol.ts';

const port = parentPort;
if (port === null) throw new Error('buffer-worker.ts runs only as a worker thread');

function serialize(error: unknown): SerializedError {
  if (error instanceof GatewayError) return { code: error.code, message: error.message, retriable: error.retriable };
  return { code: 'BUFFER_WORKER', message: errorMessage(error), retriable: false };
}

const data = workerData as BufferWorkerData;
let droppedSinceReply = 0;

/** The store as the companion sees it: after each change it makes, the main thread hears the new figures. */
function observed(inner: RecordStore): RecordStore {
  const tell = (): void => port?.postMessage({ id: STATS_UPDATE, ok: true, value: null, stats: inner.stats(), dropped: 0 } satisfies WorkerReply);
  return {
    append: (groups, state) => inner.append(groups, state),
    readState: (scope) => inner.readState(scope),
    lease: (maxRecords, maxBytes) => inner.lease(maxRecords, maxBytes),
    ack(seqs) {
      inner.ack(seqs);
      tell();
    },
    release: (seqs) => inner.release(seqs),
    deadLetter(seqs, reason) {
      inner.deadLetter(seqs, reason);
      tell();
    },
    stats: () => inner.stats(),
    close: () => inner.close(),
  };
}

async function startCompanion(opened: RecordStore): Promise<Companion | null> {
  if (data.companion === null) return null;
  const { moduleUrl, data: companionData, port: companionPort } = data.companion;
  const module = (await import(moduleUrl)) as { startCompanion(context: CompanionContext): Companion };
  return module.startCompanion({ store: observed(opened), data: companionData, port: companionPort });
}

let store: ReturnType<typeof createSqliteStore>;
let companion: Companion | null;
try {
  store = createSqliteStore(data.store, {
    onDrop(records) {
      droppedSinceReply += records;
    },
  });
  companion = await startCompanion(store);
  port.postMessage({ id: 0, ok: true, value: store.durability(), stats: store.stats(), dropped: 0 } satisfies WorkerReply);
} catch (error) {
  port.postMessage({ id: 0, ok: false, error: serialize(error) } satisfies WorkerReply);
  // Wait here for the main thread to read the error and terminate this thread. Exiting at once let the 'exit'
  // event overtake the message now and then (2 in 40 starts under load), and a bad buffer path then failed as
  // BUFFER_WORKER_DIED (exit 1, a restart loop) instead of with its own error (exit 78). The listener keeps
  // the thread alive; the pending await keeps the request handler below from being installed.
  port.on('message', () => undefined);
  await new Promise<never>(() => undefined);
}

/** Rebuilds the groups of an append request from its packed records. */
function groupsOf(request: Extract<WorkerRequest, { op: 'append' }>): NewRecord[][] {
  const records = unpackRecords(request.records);
  if (request.sizes.length === 1) return [records];
  const groups: NewRecord[][] = [];
  let next = 0;
  for (const size of request.sizes) {
    groups.push(records.slice(next, next + size));
    next += size;
  }
  return groups;
}

port.on('message', (request: WorkerRequest) => {
  let reply: WorkerReply;
  let transfer: ArrayBuffer[] = [];
  try {
    let value: unknown;
    switch (request.op) {
      case 'append': {
        const { seqs, refused } = store.appendPacked(groupsOf(request), request.state);
        // Refusals carry BufferFullError instances; send plain data across the thread boundary.
        value = { seqs, refused: refused.map(({ group, error }) => ({ group, error: serialize(error) })) } satisfies AppendReply;
        transfer = [seqs.buffer as ArrayBuffer];
        break;
      }
      case 'readState':
        value = [...store.readState(request.scope)];
        break;
      case 'lease': {
        const leased = store.lease(request.maxRecords, request.maxBytes);
        const payloads = packPayloads(leased.map((record) => record.payload));
        value = { records: leased.map(({ payload: _payload, ...rest }) => rest), payloads } satisfies LeaseReply;
        transfer = [payloads.bytes];
        break;
      }
      case 'ack':
        store.ack(request.seqs);
        break;
      case 'release':
        store.release(request.seqs);
        break;
      case 'deadLetter':
        store.deadLetter(request.seqs, request.reason);
        break;
      case 'close':
        store.close();
        port.postMessage({ id: request.id, ok: true, value: null, stats: null, dropped: 0 } satisfies WorkerReply);
        port.close();
        // A companion's sockets (Kafka) would keep this thread alive; its side on the main thread has stopped it.
        if (companion !== null) setImmediate(() => process.exit(0));
        return;
    }
    reply = { id: request.id, ok: true, value, stats: store.stats(), dropped: droppedSinceReply };
    droppedSinceReply = 0;
  } catch (error) {
    reply = { id: request.id, ok: false, error: serialize(error) };
  }
  port.postMessage(reply, transfer);
  // After the reply: a committed append is told as committed whatever the companion does with the news.
  if (request.op === 'append') companion?.afterAppend();
});
