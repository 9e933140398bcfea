// The root pino logger: JSON lines to stdout for journald, one child per component
// (`log.child({ component: 'forwarder' })`), secrets redacted wherever they appear.
import { pino, type DestinationStream, type Logger } from 'pino';
import { createBoundedMap } from '../shared/bounded-map.ts';
import { boundedText } from '../shared/input-text.ts';

export type { Logger };

export interface LoggerOptions {
  readonly level: string;
  readonly gatewayId: string;
}

const REDACT_PATHS = [
  'password',
  '*.password',
  '*.*.password',
  'password_hash',
  '*.password_hash',
  'sasl.password',
  '*.sasl.password',
  'app_key',
  'nwk_s_key',
  'app_s_key',
  '*.nwk_s_key',
  '*.app_s_key',
  '*.app_key',
];

export function createLogger(options: LoggerOptions, destination?: DestinationStream): Logger {
  return pino(
    {
      level: options.level,
      base: { service: 'iotgw', gateway_id: options.gatewayId },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

/**
 * Bounds the log lines that outside input can cause (rejections, refused connections, dropped datagrams),
 * whatever the input: a token bucket shared by every such logger. Lines over the budget are counted, not
 * written, and the next line written says how many were left out. Lines about the gateway's own state (Kafka
 * down, buffer full) do not take from it, so a flood cannot bury them, nor wear the SD card through journald.
 */
export interface LogBudget {
  /** Takes one line; false when the budget is spent (the caller does not log). */
  take(): boolean;
}

export interface LogBudgetOptions {
  readonly linesPerMinute: number;
  /** Lines that may be written at once after a quiet spell. */
  readonly burst: number;
}

export function createLogBudget(
  options: LogBudgetOptions,
  deps: { readonly log: Logger; readonly nowMs?: () => number; readonly onSuppressed?: () => void },
): LogBudget {
  const nowMs = deps.nowMs ?? (() => performance.now());
  const perMs = options.linesPerMinute / 60_000;
  let tokens = options.burst;
  let lastMs = nowMs();
  let suppressed = 0;
  let suppressedSinceMs = 0;
  return {
    take() {
      const now = nowMs();
      tokens = Math.min(options.burst, tokens + (now - lastMs) * perMs);
      lastMs = now;
      if (tokens < 1) {
        if (suppressed === 0) suppressedSinceMs = now;
        suppressed += 1;
        deps.onSuppressed?.();
        return false;
      }
      tokens -= 1;
      if (suppressed > 0) {
        deps.log.warn(
          { suppressed, seconds: Math.round((now - suppressedSinceMs) / 1000) },
          `${suppressed} warnings about refused input were not logged in the last ${Math.round((now - suppressedSinceMs) / 1000)} s: such lines are limited to ${options.linesPerMinute} a minute (log.max_input_warnings_per_minute); iotgw_ingress_rejected_total and iotgw_mqtt_connections_refused_total count every one`,
        );
        suppressed = 0;
      }
      return true;
    },
  };
}

/** Logs a condition once when it starts and once when it ends, never per occurrence (rejections, drops). */
export interface OnceLogger {
  /** Returns true the first time `key` is seen within `intervalMs` (then log), false after (count only). */
  shouldLog(key: string): boolean;
}

export interface OnceLoggerOptions {
  /** Keys remembered at once (default 1,000); keys may come from input, so the oldest are forgotten first. */
  readonly maxKeys?: number;
  /** When set, a line also needs a token from this shared budget. */
  readonly budget?: LogBudget;
}

/** Keys are cut to this many characters: a key built from a 64 KiB username costs no more than a short one. */
const MAX_KEY_CHARS = 160;

export function createOnceLogger(intervalMs: number, nowMs: () => number = () => performance.now(), options: OnceLoggerOptions = {}): OnceLogger {
  const maxKeys = options.maxKeys ?? 1_000;
  const lastLoggedAt = createBoundedMap<string, true>({ maxEntries: maxKeys, maxBytes: maxKeys * (64 + MAX_KEY_CHARS * 2), maxAgeMs: intervalMs, nowMs });
  return {
    shouldLog(rawKey) {
      const key = boundedText(rawKey, MAX_KEY_CHARS);
      if (lastLoggedAt.has(key)) return false;
      lastLoggedAt.set(key, true);
      return options.budget?.take() ?? true;
    },
  };
}
