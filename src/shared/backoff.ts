// Exponential backoff with full jitter (pure: the random source is injected), so a fleet of gateways
// coming back after a Kafka outage does not retry in lockstep.

export interface BackoffOptions {
  readonly initialMs: number;
  readonly maxMs: number;
}

/** Delay before retry number `attempt` (1 = first retry): uniform in [cap/2, cap], cap = min(max, initial * 2^(attempt-1)). */
export function backoffDelayMs(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const cap = Math.min(options.maxMs, options.initialMs * 2 ** Math.max(0, Math.min(30, attempt - 1)));
  return Math.round(cap / 2 + random() * (cap / 2));
}
