// The systemd watchdog, fed only while the gateway is healthy: every WatchdogSec/2 it checks event-loop lag and
// the health of the buffer and the ingress listeners, and sends WATCHDOG=1 only if all is well. A wedged process
// (a blocked event loop, a buffer thread that stopped answering, a listener that died) thus stops pinging, and
// systemd restarts it; the records it acknowledged are safe in SQLite. Kafka being unreachable is NOT a reason:
// buffering is normal operation, and a restart would not bring Kafka back. The same tick refreshes STATUS=.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { ReadinessReport } from './health.ts';
import type { HealthReport } from '../core/lifecycle.ts';
import type { Logger } from '../core/log.ts';
import type { SystemdNotifier } from './systemd.ts';

export interface WatchdogOptions {
  /** Event-loop delay above which a tick does not ping. One slow tick skips one ping; two in a row trip WatchdogSec. */
  readonly maxLagMs: number;
  /** Tick period when systemd set no watchdog (STATUS= updates only). */
  readonly statusIntervalMs: number;
}

export interface WatchdogDeps {
  readonly notifier: Pick<SystemdNotifier, 'watchdogIntervalMs' | 'watchdogPing' | 'status'>;
  readonly readiness: () => ReadinessReport;
  readonly log: Logger;
  /** Worst event-loop delay (ms) since the previous call; defaults to a perf_hooks histogram. */
  readonly lagMs?: () => number;
}

export interface Watchdog {
  start(): void;
  stop(): void;
  /** One check now: pings (if the watchdog is on) when healthy; returns why not, or null when healthy. */
  tick(): string | null;
}

export const DEFAULT_WATCHDOG_OPTIONS: WatchdogOptions = { maxLagMs: 5_000, statusIntervalMs: 30_000 };

/** Why the process must not ping, or null when it may. Pure: the decision the tests pin down. */
export function watchdogVerdict(lagMs: number, maxLagMs: number, components: Readonly<Record<string, HealthReport>>): string | null {
  if (lagMs > maxLagMs) return `event loop blocked for ${Math.round(lagMs)} ms (limit ${maxLagMs} ms)`;
  const buffer = components.buffer;
  if (buffer?.status === 'down') return `buffer thread down${buffer.detail === undefined ? '' : ` (${buffer.detail})`}`;
  // 'degraded' is fine (e.g. a radio unplugged: a restart would not plug it in); 'down' means a dead listener.
  for (const [name, report] of Object.entries(components)) {
    if (name.startsWith('ingress.') && report.status === 'down') return `${name} down${report.detail === undefined ? '' : ` (${report.detail})`}`;
  }
  return null;
}

/** The one-line summary for `systemctl status`: "ready: kafka up, 0 buffered". */
export function statusSummary(report: ReadinessReport, problem: string | null): string {
  const { depthRecords, oldestAgeSeconds } = report.buffer;
  const backlog = depthRecords > 0 && oldestAgeSeconds > 0 ? `${depthRecords} buffered (oldest ${oldestAgeSeconds}s)` : `${depthRecords} buffered`;
  return `${problem === null ? 'ready' : `unhealthy: ${problem}`}: kafka ${report.kafka}, ${backlog}`;
}

export function createWatchdog(options: WatchdogOptions, deps: WatchdogDeps): Watchdog {
  const log = deps.log.child({ component: 'watchdog' });
  const { notifier } = deps;
  const pingIntervalMs = notifier.watchdogIntervalMs();
  let histogram: ReturnType<typeof monitorEventLoopDelay> | null = null;
  const lagMs =
    deps.lagMs ??
    (() => {
      if (histogram === null) return 0;
      const max = histogram.max / 1e6;
      histogram.reset();
      return max;
    });
  let timer: NodeJS.Timeout | null = null;
  let lastProblem: string | null = null;
  let lastStatus = '';

  function tick(): string | null {
    let report: ReadinessReport;
    let problem: string | null;
    const lag = lagMs();
    try {
      report = deps.readiness();
      problem = watchdogVerdict(lag, options.maxLagMs, report.components);
    } catch (error) {
      report = { ready: false, kafka: 'starting', components: {}, buffer: { depthRecords: 0, depthBytes: 0, oldestAgeSeconds: 0 } };
      problem = `health check failed: ${error instanceof Error ? error.message : String(error)}`;
    }
    if (problem !== lastProblem) {
      // One line per change of state, never one per tick.
      if (problem !== null) log.warn({ lagMs: Math.round(lag) }, `watchdog: not pinging, ${problem}`);
      else log.info('watchdog: healthy again, pinging');
      lastProblem = problem;
    }
    const status = statusSummary(report, problem);
    const statusChanged = status !== lastStatus;
    lastStatus = status;
    if (pingIntervalMs !== null && problem === null) notifier.watchdogPing(statusChanged ? status : undefined);
    else if (statusChanged) notifier.status(status);
    return problem;
  }

  return {
    start() {
      if (timer !== null) return;
      if (deps.lagMs === undefined) {
        histogram = monitorEventLoopDelay({ resolution: 20 });
        histogram.enable();
      }
      if (pingIntervalMs !== null) log.info({ intervalMs: pingIntervalMs, maxLagMs: options.maxLagMs }, 'systemd watchdog on: pinging while healthy');
      tick();
      timer = setInterval(tick, pingIntervalMs ?? options.statusIntervalMs);
    },
    stop() {
      if (timer !== null) clearInterval(timer);
      timer = null;
      histogram?.disable();
      histogram = null;
    },
    tick,
  };
}
