// The durable queue between ingress and Kafka, as the rest of the gateway sees it: the RecordStore
// operations made asynchronous, because in production the store lives on its own thread
// (worker-buffer.ts) and a commit's fsync must not stall MQTT. Each call is still one transaction.
import type { NewRecord, StoredRecord } from '../record/record.ts';
import type { AppendOutcome, BufferStats, RecordStore, StateWrite } from './record-store.ts';

export { oldestAgeSeconds } from './record-store.ts';
export type { AppendOutcome, BufferStats, RecordStoreLimits, StateWrite, WhenFull } from './record-store.ts';

export interface RecordBuffer {
  /** Group commit: every group all-or-nothing, all groups in one durable commit. Rejects (GatewayError) if the commit fails. */
  append(groups: readonly (readonly NewRecord[])[], state?: readonly StateWrite[]): Promise<readonly AppendOutcome[]>;
  /** Every committed state entry of a scope (see StateWrite). */
  readState(scope: string): Promise<ReadonlyMap<string, string>>;
  /** The oldest records not yet leased, in seq order. */
  lease(maxRecords: number, maxBytes: number): Promise<readonly StoredRecord[]>;
  ack(seqs: readonly number[]): Promise<void>;
  release(seqs: readonly number[]): Promise<void>;
  deadLetter(seqs: readonly number[], reason: string): Promise<void>;
  /** The figures as of the last completed operation (no round trip; for metrics and logs). */
  stats(): BufferStats;
  close(): Promise<void>;
}

/** Runs a store on the calling thread: for the memory store in tests and benchmarks. */
export function createInlineBuffer(store: RecordStore): RecordBuffer {
  return {
    append: async (groups, state) => store.append(groups, state),
    readState: async (scope) => store.readState(scope),
    lease: async (maxRecords, maxBytes) => store.lease(maxRecords, maxBytes),
    ack: async (seqs) => store.ack(seqs),
    release: async (seqs) => store.release(seqs),
    deadLetter: async (seqs, reason) => store.deadLetter(seqs, reason),
    stats: () => store.stats(),
    close: async () => store.close(),
  };
}
