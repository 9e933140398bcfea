// Limits what password logins can cost. A password check is scrypt (16 MiB, tens of ms on libuv's thread pool,
// which pino, DNS and the file system share), so checks wait in one queue and run a few at a time, and at most
// one at a time per source address: a thousand parallel guesses from one address are checked one after the
// other, and once that address has failed too often in the window, the rest are refused without hashing.
// Devices behind one NAT address are never refused for being many; they only wait their turn. Past the queue's
// bound, logins are refused as "server unavailable" and clients try again later.
import { createBoundedMap } from '../../shared/bounded-map.ts';

export interface LoginGuardOptions {
  /** Failed logins from one address within the window before it is refused without hashing. */
  readonly maxFailuresPerAddress: number;
  readonly windowMs: number;
  /** Password checks running at once (libuv runs 4 threads by default; keep some for everything else). */
  readonly maxConcurrentChecks: number;
  /** Checks waiting for their turn; more are refused at once. */
  readonly maxQueuedChecks: number;
  /** Addresses remembered at once (oldest forgotten first). */
  readonly maxAddresses: number;
  readonly nowMs?: () => number;
}

export type LoginAdmission =
  | { readonly ok: true; readonly release: (succeeded: boolean) => void }
  | { readonly ok: false; readonly reason: 'throttled' | 'busy' };

export interface LoginGuard {
  /** Waits for this address's turn to check a password; call release with the outcome when done. */
  admit(address: string): Promise<LoginAdmission>;
  /** A login that failed without a password check (an unknown name, no password): counts against the address. */
  noteFailure(address: string): void;
  /** Whether the address is refused without hashing for now. */
  isThrottled(address: string): boolean;
  readonly running: number;
  readonly queued: number;
}

interface AddressState {
  failures: number;
  sinceMs: number;
  running: number;
}

interface Waiting {
  readonly address: string;
  readonly resolve: (admission: LoginAdmission) => void;
}

export function createLoginGuard(options: LoginGuardOptions): LoginGuard {
  const nowMs = options.nowMs ?? (() => performance.now());
  const addresses = createBoundedMap<string, AddressState>({
    maxEntries: options.maxAddresses,
    maxBytes: options.maxAddresses * 160,
    maxAgeMs: Number.POSITIVE_INFINITY,
    nowMs,
  });
  const waiting: Waiting[] = [];
  let running = 0;

  function stateOf(address: string): AddressState {
    let state = addresses.get(address);
    if (state === undefined) {
      state = { failures: 0, sinceMs: nowMs(), running: 0 };
      addresses.set(address, state);
    } else if (nowMs() - state.sinceMs > options.windowMs) {
      state.failures = 0;
      state.sinceMs = nowMs();
    }
    return state;
  }

  function throttled(state: AddressState): boolean {
    return state.failures >= options.maxFailuresPerAddress;
  }

  /** Starts every waiting check whose address is free, oldest first, while slots are free. */
  function pump(): void {
    for (let index = 0; index < waiting.length && running < options.maxConcurrentChecks; ) {
      const next = waiting[index] as Waiting;
      const state = stateOf(next.address);
      if (throttled(state)) {
        // It failed too often while this one waited: refused without hashing, like a new attempt.
        waiting.splice(index, 1);
        next.resolve({ ok: false, reason: 'throttled' });
        continue;
      }
      if (state.running > 0) {
        index += 1;
        continue;
      }
      waiting.splice(index, 1);
      running += 1;
      state.running += 1;
      next.resolve({ ok: true, release: releaser(state) });
    }
  }

  function releaser(state: AddressState): (succeeded: boolean) => void {
    let released = false;
    return (succeeded) => {
      if (released) return;
      released = true;
      running -= 1;
      state.running -= 1;
      if (!succeeded) state.failures += 1;
      pump();
    };
  }

  return {
    admit(address) {
      if (throttled(stateOf(address))) return Promise.resolve({ ok: false, reason: 'throttled' });
      if (waiting.length >= options.maxQueuedChecks) return Promise.resolve({ ok: false, reason: 'busy' });
      return new Promise<LoginAdmission>((resolve) => {
        waiting.push({ address, resolve });
        pump();
      });
    },
    noteFailure(address) {
      stateOf(address).failures += 1;
    },
    isThrottled(address) {
      return throttled(stateOf(address));
    },
    get running() {
      return running;
    },
    get queued() {
      return waiting.length;
    },
  };
}
