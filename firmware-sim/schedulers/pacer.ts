// Spreads transmissions over time at one rate across a fleet: each acquire() gets the next slot of 1/rate s,
// first come first served, so concurrent devices share the rate without a queue of their own.
import { setTimeout as sleep } from 'node:timers/promises';

/** Resolves when it is the caller's turn: true, or false once `signal` aborted. Rate 0: no pacing. */
export type Pacer = () => Promise<boolean>;

export function createPacer(ratePerSecond: number, signal: AbortSignal): Pacer {
  const intervalMs = ratePerSecond > 0 ? 1_000 / ratePerSecond : 0;
  let nextAtMs = performance.now();
  return async () => {
    if (signal.aborted) return false;
    if (intervalMs === 0) return true;
    const now = performance.now();
    const at = Math.max(now, nextAtMs);
    nextAtMs = at + intervalMs;
    if (at > now) await sleep(at - now, undefined, { signal }).catch(() => undefined);
    return !signal.aborted;
  };
}
