// A token bucket per source address, so one sender on the unauthenticated UDP port cannot take all of the
// parser, the registry or the log budget. The addresses tracked are bounded (oldest forgotten first), so
// spoofed sources cannot grow memory either.
import { createBoundedMap } from '../../shared/bounded-map.ts';

export interface SourceRateLimiter {
  /** The sustained rate each address gets; bursts may reach twice that. */
  readonly datagramsPerSecond: number;
  /** Whether the address may send one more datagram now (taking a token if so); `nowMono` is performance.now() ms. */
  allow(address: string, nowMono: number): boolean;
}

/** Source addresses whose datagram rate is tracked at once (the oldest are forgotten first). */
const MAX_TRACKED_SOURCES = 10_000;

export function createSourceRateLimiter(datagramsPerSecond: number): SourceRateLimiter {
  const datagramsPerMs = datagramsPerSecond / 1000;
  const burst = 2 * datagramsPerSecond;
  const sources = createBoundedMap<string, { tokens: number; atMs: number }>({
    maxEntries: MAX_TRACKED_SOURCES,
    maxBytes: MAX_TRACKED_SOURCES * 200,
    maxAgeMs: 60_000,
  });
  return {
    datagramsPerSecond,
    allow(address, nowMono) {
      const bucket = sources.get(address) ?? { tokens: burst, atMs: nowMono };
      bucket.tokens = Math.min(burst, bucket.tokens + (nowMono - bucket.atMs) * datagramsPerMs);
      bucket.atMs = nowMono;
      sources.set(address, bucket);
      if (bucket.tokens < 1) return false;
      bucket.tokens -= 1;
      return true;
    },
  };
}
