// Input an ingress refuses, the one way: counted in iotgw_ingress_rejected_total by source and reason,
// told to onReject (the status page's recent rejections), and logged at most once per key per interval,
// within the shared input log budget, so a device that sends garbage 100 times a second makes one log
// line, not a flood. Every ingress refuses through this, including refusals that are not the input's
// fault (overloaded, shutting-down, internal-error), so the metric and the status page tell the same story.
import { createOnceLogger, type LogBudget, type Logger } from '../core/log.ts';
import type { Metrics } from '../core/metrics.ts';

export interface RejectionsOptions {
  /** The metric's `source` label; none when every rejection names its own (the LoRaWAN server serves several ingresses). */
  readonly source?: string;
  /** What is refused, as the log line starts: 'LoRaWAN frame', 'TTN message'. */
  readonly what: string;
  /** What the log is kept once per, for the log line: 'reason' (the default), 'device and reason'. */
  readonly per?: string;
  readonly intervalMs: number;
}

export interface RejectionsDeps {
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly onReject?: (source: string, reason: string, detail: string) => void;
  /** Shared limit on log lines caused by input (log.max_input_warnings_per_minute). */
  readonly logBudget?: LogBudget;
}

export interface RejectionContext {
  /** The metric's `source` label for this one, over the default. */
  readonly source?: string;
  /** What the log is kept once per; default the reason. */
  readonly logKey?: string;
  /** Added to the log line after `reason` (an `err` is logged with its stack). */
  readonly fields?: Readonly<Record<string, unknown>>;
  /**
   * How it is logged: 'warn' (the default) for input refused; 'error' for a bug in the gateway (internal-error);
   * 'none' where the event is routine or logged elsewhere (a retransmission, a frame refused while stopping).
   */
  readonly level?: 'warn' | 'error' | 'none';
}

export interface Rejections {
  /** `detail` says why, naming the input: it goes to onReject and the log line. */
  reject(reason: string, detail: string, context?: RejectionContext): void;
}

export function createRejections(options: RejectionsOptions, deps: RejectionsDeps): Rejections {
  const logOnce = createOnceLogger(options.intervalMs, undefined, deps.logBudget === undefined ? {} : { budget: deps.logBudget });
  const every = `logged once per ${options.per ?? 'reason'} every ${options.intervalMs / 1000} s; see iotgw_ingress_rejected_total`;
  return {
    reject(reason, detail, context = {}) {
      const source = context.source ?? options.source ?? 'unknown';
      deps.metrics.ingressRejected.inc({ source, reason });
      deps.onReject?.(source, reason, detail);
      const level = context.level ?? 'warn';
      if (level === 'none' || !logOnce.shouldLog(context.logKey ?? reason)) return;
      deps.log[level]({ reason, ...context.fields }, `${options.what} rejected: ${detail} (${every})`);
    },
  };
}
