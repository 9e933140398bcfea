// The one duration syntax of every firmware-sim flag that takes a time: a number with a unit (60s, 1.5m,
// 1h, 500ms), or a bare number meaning seconds, so invocations written before units existed
// (`--duration 30`) keep working. Pure: the flag parser turns a failure into a usage error naming the flag.

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;

/** Node.js timers fire at once beyond 2^31 - 1 ms (about 24.8 days): longer would silently mean "now". */
export const MAX_DURATION_MS = 2 ** 31 - 1;

export type DurationResult = { readonly ok: true; readonly ms: number } | { readonly ok: false; readonly reason: string };

export function parseDurationMs(text: string): DurationResult {
  const match = DURATION.exec(text.trim());
  if (match === null) return { ok: false, reason: 'must be a duration such as 60s, 5m, 1h, 500ms or a number of seconds' };
  const ms = Math.round(Number(match[1]) * (UNIT_MS[match[2] ?? 's'] ?? 1_000));
  if (ms > MAX_DURATION_MS) return { ok: false, reason: 'must be at most 596h (the longest a Node.js timer can wait)' };
  return { ok: true, ms };
}
