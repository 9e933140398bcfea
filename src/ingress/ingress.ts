// What every ingress adapter is handed: `accept`, which resolves only after the records are committed
// to the buffer (or `acceptThen`, which calls back then). An adapter acknowledges its peer after an ok
// result, and never before.
import type { StateWrite } from '../buffer/record-buffer.ts';
import type { LogBudget, Logger } from '../core/log.ts';
import type { Metrics } from '../core/metrics.ts';
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

/** Told an accept's result exactly once: after its commit, or at once when refused before one. Must not throw. */
export type AcceptDone = (result: AcceptResult) => void;

/**
 * `Accept` without a promise: the same door, for the per-publish path (MQTT), where a promise, its closures and
 * microtask turns per record would be held until the commit and survive every young-generation scavenge.
 */
export type AcceptThen = (records: readonly NewRecord[], state: readonly StateWrite[] | undefined, done: AcceptDone) => void;

/** What every ingress is handed besides its own parts. */
export interface IngressDeps {
  readonly accept: Accept;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Told of every rejection counted in iotgw_ingress_rejected_total (the status page's recent rejections). */
  readonly onReject?: (source: string, reason: string, detail: string) => void;
  /** Shared limit on log lines caused by input (log.max_input_warnings_per_minute). */
  readonly logBudget?: LogBudget;
}

/** Committed device state of a scope (sessions, frame counters), read once at start. */
export type LoadState = (scope: string) => Promise<ReadonlyMap<string, string>>;
