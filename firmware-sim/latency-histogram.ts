// Fixed-size log-bucketed histogram for ack latencies, so a run of 100 million publishes costs the
// same few kilobytes as a run of ten. Buckets grow by 5 % from 10 microseconds, which bounds the
// error of any reported quantile to 5 %; the maximum is kept exactly.

const MIN_MS = 0.01;
const GROWTH = 1.05;
const LOG_GROWTH = Math.log(GROWTH);
// 0.01 ms * 1.05^420 is about 8 days: nothing a run can measure falls off the end.
const BUCKETS = 420;

export interface LatencySummary {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

export interface LatencyHistogram {
  /** Adds one sample, in milliseconds. */
  record(ms: number): void;
  /** Upper bound (ms) of the bucket holding quantile `q` (0..1), capped at the maximum; 0 when empty. */
  quantile(q: number): number;
  readonly count: number;
  readonly maxMs: number;
  summary(): LatencySummary;
}

export function createLatencyHistogram(): LatencyHistogram {
  const counts = new Float64Array(BUCKETS);
  let count = 0;
  let maxMs = 0;

  const quantile = (q: number): number => {
    if (count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += counts[i] ?? 0;
      if (seen >= rank) return Math.min(maxMs, MIN_MS * GROWTH ** i);
    }
    return maxMs;
  };

  return {
    record(ms) {
      const index = ms <= MIN_MS ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(ms / MIN_MS) / LOG_GROWTH));
      counts[index] = (counts[index] ?? 0) + 1;
      count += 1;
      if (ms > maxMs) maxMs = ms;
    },
    quantile,
    get count() {
      return count;
    },
    get maxMs() {
      return maxMs;
    },
    summary() {
      return { p50: roundMs(quantile(0.5)), p99: roundMs(quantile(0.99)), max: roundMs(maxMs) };
    },
  };
}

/** Three significant digits: more would claim a precision the buckets do not have. */
function roundMs(ms: number): number {
  return ms === 0 ? 0 : Number(ms.toPrecision(3));
}
