// Limits what password logins can cost. A password check is scrypt (16 MiB, tens of ms on libuv's thread pool,
// which pino, DNS and the file system share), so: an address with too many failed or unfinished logins in a
// minute is refused before hashing (attempts count from when they start, so a thousand parallel CONNECTs
// cannot all get through before the first one fails), and only a few checks run at once, with a bounded queue
// behind them; past that, logins are refused as "server unavailable" and the client tries again later.
import { createBoundedMap } from '../../shared/bounded-map.ts';

export interface LoginGuardOptions {
  /** Failed plus unfinished logins from one address within the window before it is refused without hashing. */
  readonly maxAttemptsPerAddress: number;
  readonly windowMs: number;
  /** Password checks running at once (libuv runs 4 threads by default; keep some for everything else). */
  readonly maxConcurrentChecks: number;
  /** Checks waiting for a slot; more are refused at once. */
  readonly maxQueuedChecks: number;
  /** Addresses remembered at once (oldest forgotten first). */
  readonly maxAddresses: number;
  readonly nowMs?: () => number;
}

export type LoginAdmission =
  | { readonly ok: true; readonly release: (succeeded: boolean) => void }
  | { readonly ok: false; readonly reason: 'throttled' | 'busy' };

export interface LoginGuard {
  /**
   * Asks to check a password from `address`. On ok, the attempt counts against the address until `release`:
   * a success takes it back, a failure keeps it for the window. Resolves when a check slot is free.
   */
  admit(address: string): Promise<LoginAdmission>;
  /** A login that failed without a password check (an unknown name, no password): counts against the address. */
  noteFailure(address: string): void;
  /** Whether the address is refused without hashing for now. */
  isThrottled(address: string): boolean;
  /** Checks running and waiting now (for health detail and tests). */
  readonly running: number;
  readonly queued: number;
}

export function createLoginGuard(options: LoginGuardOptions): LoginGuard {
  const nowMs = options.nowMs ?? (() => performance.now());
  const attempts = createBoundedMap<string, { count: number; sinceMs: number }>({
    maxEntries: options.maxAddresses,
    maxBytes: options.maxAddresses * 160,
    maxAgeMs: options.windowMs,
    nowMs,
  });
  const waiting: (() => void)[] = [];
  let running = 0;

  function attemptsOf(address: string): { count: number; sinceMs: number } {
    let entry = attempts.get(address);
    if (entry === undefined || nowMs() - entry.sinceMs > options.windowMs) {
      entry = { count: 0, sinceMs: nowMs() };
      attempts.set(address, entry);
    }
    return entry;
  }

  function releaseSlot(): void {
    const next = waiting.shift();
    if (next !== undefined) next();
    else running -= 1;
  }

  return {
    async admit(address) {
      const entry = attemptsOf(address);
      if (entry.count >= options.maxAttemptsPerAddress) return { ok: false, reason: 'throttled' };
      if (running >= options.maxConcurrentChecks && waiting.length >= options.maxQueuedChecks) return { ok: false, reason: 'busy' };
      entry.count += 1;
      if (running < options.maxConcurrentChecks) running += 1;
      else await new Promise<void>((resolve) => waiting.push(resolve)); // the slot passes straight to us
      let released = false;
      return {
        ok: true,
        release(succeeded) {
          if (released) return;
          released = true;
          releaseSlot();
          if (succeeded) entry.count = Math.max(0, entry.count - 1);
        },
      };
    },
    noteFailure(address) {
      attemptsOf(address).count += 1;
    },
    isThrottled(address) {
      return attemptsOf(address).count >= options.maxAttemptsPerAddress;
    },
    get running() {
      return running;
    },
    get queued() {
      return waiting.length;
    },
  };
}
