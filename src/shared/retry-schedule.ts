// Reconnect with backoff, the one way: after each failure the retry runs once, after a jittered delay that
// doubles up to a cap (backoff.ts); a success resets it. Used by the links that reconnect on their own (TTN,
// the serial radio); the forwarder retries inside its send loop instead.
import { type BackoffOptions, backoffDelayMs } from './backoff.ts';

export interface RetryScheduleDeps {
  readonly random?: () => number;
  /** Runs `callback` after `delayMs`; returns a cancel function (tests pass a manual clock). */
  readonly schedule?: (callback: () => void, delayMs: number) => () => void;
}

export interface RetrySchedule {
  /** A failure: schedules the retry unless one is already pending. Returns the attempt number and its delay, or null if one was pending. */
  failed(): { readonly attempt: number; readonly delayMs: number } | null;
  /** The link works again: the next failure waits the initial delay. */
  succeeded(): void;
  /** Drops a pending retry (stop). */
  cancel(): void;
  /** Failures since the last success. */
  readonly failures: number;
}

const defaultSchedule = (callback: () => void, delayMs: number): (() => void) => {
  const timer = setTimeout(callback, delayMs);
  return () => clearTimeout(timer);
};

export function createRetrySchedule(options: BackoffOptions, retry: () => void, deps: RetryScheduleDeps = {}): RetrySchedule {
  const schedule = deps.schedule ?? defaultSchedule;
  let failures = 0;
  let cancelPending: (() => void) | null = null;
  return {
    failed() {
      if (cancelPending !== null) return null;
      failures += 1;
      const delayMs = backoffDelayMs(failures, options, deps.random);
      cancelPending = schedule(() => {
        cancelPending = null;
        retry();
      }, delayMs);
      return { attempt: failures, delayMs };
    },
    succeeded() {
      failures = 0;
    },
    cancel() {
      cancelPending?.();
      cancelPending = null;
    },
    get failures() {
      return failures;
    },
  };
}
