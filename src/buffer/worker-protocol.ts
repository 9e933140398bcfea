// Messages between the main thread (worker-buffer.ts) and the buffer's thread (buffer-worker.ts).
// Only plain data crosses: errors travel as {code, message, retriable} and are rebuilt on arrival.
import type { NewRecord } from '../record/record.ts';
import type { BufferStats } from './record-store.ts';

export type WorkerRequest =
  | { readonly id: number; readonly op: 'append'; readonly groups: readonly (readonly NewRecord[])[] }
  | { readonly id: number; readonly op: 'lease'; readonly maxRecords: number; readonly maxBytes: number }
  | { readonly id: number; readonly op: 'ack' | 'release'; readonly seqs: readonly number[] }
  | { readonly id: number; readonly op: 'deadLetter'; readonly seqs: readonly number[]; readonly reason: string }
  | { readonly id: number; readonly op: 'close' };

export interface SerializedError {
  readonly code: string;
  readonly message: string;
  readonly retriable: boolean;
}

/** id 0 answers the worker's start: the store opened (value = its durability settings) or failed. */
export type WorkerReply =
  | {
      readonly id: number;
      readonly ok: true;
      readonly value: unknown;
      /** Stats after the operation (null only for close). */
      readonly stats: BufferStats | null;
      /** Records drop_oldest deleted during the operation. */
      readonly dropped: number;
    }
  | { readonly id: number; readonly ok: false; readonly error: SerializedError };
