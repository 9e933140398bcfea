// The root pino logger: JSON lines to stdout for journald, one child per component
// (`log.child({ component: 'forwarder' })`), secrets redacted wherever they appear.
import { pino, type DestinationStream, type Logger } from 'pino';

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

/** Logs a condition once when it starts and once when it ends, never per occurrence (rejections, drops). */
export interface OnceLogger {
  /** Returns true the first time `key` is seen within `intervalMs` (then log), false after (count only). */
  shouldLog(key: string): boolean;
}

export function createOnceLogger(intervalMs: number, nowMs: () => number = () => performance.now(), maxKeys = 10_000): OnceLogger {
  const lastLoggedAt = new Map<string, number>();
  return {
    shouldLog(key) {
      const now = nowMs();
      const last = lastLoggedAt.get(key);
      if (last !== undefined && now - last < intervalMs) return false;
      // Bounded: a flood of distinct keys (e.g. random device ids) must not grow memory without limit.
      if (lastLoggedAt.size >= maxKeys) lastLoggedAt.clear();
      lastLoggedAt.set(key, now);
      return true;
    },
  };
}
