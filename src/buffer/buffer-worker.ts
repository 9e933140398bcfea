// The buffer's thread: owns the SQLite store and runs one request at a time, so every commit's fsync
// happens here while the main thread keeps serving MQTT. Speaks the protocol in worker-protocol.ts.
import { parentPort, workerData } from 'node:worker_threads';
import { GatewayError, errorMessage } from '../errors.ts';
import { createSqliteStore, type SqliteStoreOptions } from './sqlite-store.ts';
import type { NewRecord } from '../record/record.ts';
import { type LeaseReply, packPayloads, type SerializedError, unpackPayloads, type WorkerReply, type WorkerRequest } from './worker-protocol.ts';

const port = parentPort;
if (port === null) throw new Error('buffer-worker.ts runs only as a worker thread');

function serialize(error: unknown): SerializedError {
  if (error instanceof GatewayError) return { code: error.code, message: error.message, retriable: error.retriable };
  return { code: 'BUFFER_WORKER', message: errorMessage(error), retriable: false };
}

let droppedSinceReply = 0;
let store: ReturnType<typeof createSqliteStore>;
try {
  store = createSqliteStore(workerData as SqliteStoreOptions, {
    onDrop(records) {
      droppedSinceReply += records;
    },
  });
  port.postMessage({ id: 0, ok: true, value: store.durability(), stats: store.stats(), dropped: 0 } satisfies WorkerReply);
} catch (error) {
  port.postMessage({ id: 0, ok: false, error: serialize(error) } satisfies WorkerReply);
  process.exit(0);
}

/** Rebuilds the groups of an append request from its flat records and packed payloads. */
function groupsOf(request: Extract<WorkerRequest, { op: 'append' }>): NewRecord[][] {
  const payloads = unpackPayloads(request.payloads);
  const groups: NewRecord[][] = [];
  let next = 0;
  for (const size of request.sizes) {
    const group: NewRecord[] = [];
    for (let index = 0; index < size; index++, next++)
      group.push({ ...(request.records[next] as Omit<NewRecord, 'payload'>), payload: payloads[next] as Buffer });
    groups.push(group);
  }
  return groups;
}

port.on('message', (request: WorkerRequest) => {
  let reply: WorkerReply;
  let transfer: ArrayBuffer[] = [];
  try {
    let value: unknown;
    switch (request.op) {
      case 'append':
        // Outcomes carry BufferFullError instances; send plain data across the thread boundary.
        value = store.append(groupsOf(request), request.state).map((outcome) => (outcome.ok ? outcome : { ok: false, error: serialize(outcome.error) }));
        break;
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
        return;
    }
    reply = { id: request.id, ok: true, value, stats: store.stats(), dropped: droppedSinceReply };
    droppedSinceReply = 0;
  } catch (error) {
    reply = { id: request.id, ok: false, error: serialize(error) };
  }
  port.postMessage(reply, transfer);
});
