// What every ingress adapter is handed: `accept`, which resolves only after the records are committed
// to the buffer. An adapter acknowledges its peer after an ok result, and never before.
import type { StateWrite } from '../buffer/record-buffer.ts';
import type { NewRecord } from '../record/record.ts';

export type AcceptRefusal = 'buffer-full' | 'disk-full' | 'storage-error' | 'shutting-down';

export type AcceptResult =
  | { readonly ok: true; readonly seqs: readonly number[] }
  | { readonly ok: false; readonly reason: AcceptRefusal; readonly message: string };

/**
 * Commits `records` all-or-nothing, and `state` (device state such as a LoRaWAN frame counter) in the
 * same commit. Never rejects: failures are results.
 */
export type Accept = (records: readonly NewRecord[], state?: readonly StateWrite[]) => Promise<AcceptResult>;
