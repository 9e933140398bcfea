// The storage engine under the buffer: a queue where one synchronous call is one transaction, so a caller
// that got a result knows the change is committed (or was rolled back). better-sqlite3 is synchronous;
// the RecordBuffer runs a store on a worker thread so its fsyncs never block the event loop.
import type { BufferFullError } from '../errors.ts';
import type { NewRecord, StoredRecord } from '../record/record.ts';

export type WhenFull = 'reject' | 'drop_oldest';

export interface RecordStoreLimits {
  readonly maxRecords: number;
  readonly maxBytes: number;
  /** reject: refuse the group that does not fit; drop_oldest: delete the oldest records to make room. */
  readonly whenFull: WhenFull;
}

/** The result for one group of an append: committed with these seqs, or refused because the buffer is full. */
export type AppendOutcome = { readonly ok: true; readonly seqs: readonly number[] } | { readonly ok: false; readonly error: BufferFullError };

export interface BufferStats {
  readonly depthRecords: number;
  readonly depthBytes: number;
  /** receivedAtMs of the oldest buffered record, or null when empty. */
  readonly oldestReceivedAtMs: number | null;
  readonly deadLetters: number;
  /** Records deleted by drop_oldest since this buffer was opened. */
  readonly droppedRecords: number;
}

/**
 * Seconds the oldest buffered record has waited, whole, 0 when empty. Wall clock against wall clock
 * (received-at), clamped so a clock step back never shows a negative age.
 */
export function oldestAgeSeconds(stats: Pick<BufferStats, 'oldestReceivedAtMs'> | null, nowMs: number = Date.now()): number {
  if (stats === null || stats.oldestReceivedAtMs === null) return 0;
  return Math.max(0, Math.round((nowMs - stats.oldestReceivedAtMs) / 1000));
}

/**
 * A small piece of device state (a LoRaWAN session, a frame counter) written in the same transaction as
 * records, so the state and the records it let through are committed together or not at all.
 * value null deletes the entry.
 */
export interface StateWrite {
  readonly scope: string;
  readonly key: string;
  readonly value: string | null;
}

export interface RecordStore {
  /**
   * Appends every group all-or-nothing, all groups in one durable commit (one fsync): the group commit.
   * `state` is written in that same commit, in order, whatever the groups' outcomes (a refused group
   * still saw its device's state advance). Throws a GatewayError when the commit itself fails (disk
   * full, I/O error): then nothing was stored, state included.
   */
  append(groups: readonly (readonly NewRecord[])[], state?: readonly StateWrite[]): readonly AppendOutcome[];
  /** Every state entry of a scope, as committed. */
  readState(scope: string): ReadonlyMap<string, string>;
  /** The oldest records not yet leased, in seq order; leased records are not leased again until released. */
  lease(maxRecords: number, maxBytes: number): readonly StoredRecord[];
  /** Kafka acknowledged these records: delete them. */
  ack(seqs: readonly number[]): void;
  /** A retriable send failure: count an attempt and put the records back at the head of the line. */
  release(seqs: readonly number[]): void;
  /** These records can never be delivered: move them aside with the reason, out of the line. */
  deadLetter(seqs: readonly number[], reason: string): void;
  stats(): BufferStats;
  close(): void;
}
