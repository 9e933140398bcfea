// Graceful stop on SIGTERM/SIGINT: stop accepting, finish in-flight commits, let the forwarder finish its batch
// (bounded by main.ts's STOP_TIMEOUT_MS), exit 0. A second signal, or the overall deadline, exits 1 at once:
// committed records are safe in SQLite either way, and the batch in flight is sent again after the restart.
// The deadline sits inside the unit's TimeoutStopSec so systemd never has to SIGKILL us.
import { errorMessage } from '../errors.ts';
import type { Logger } from '../core/log.ts';

/** Overall stop deadline; systemd/iotgw.service sets TimeoutStopSec=30s, a test keeps the two consistent. */
export const SHUTDOWN_DEADLINE_MS = 20_000;

export interface ShutdownDeps {
  readonly log: Logger;
  /** Stops the gateway (ingress, commits, forwarder batch, sink, buffer). */
  readonly stop: () => Promise<void>;
  /** Called once, at the first signal (STOPPING=1, stop the watchdog). */
  readonly onStopping?: () => void;
  /** Awaited (briefly) before exiting, e.g. to hand STOPPING=1 to systemd. */
  readonly beforeExit?: () => Promise<void>;
  readonly exit?: (code: number) => void;
}

export interface Shutdown {
  /** A stop signal arrived (SIGTERM, SIGINT). */
  signal(name: string): void;
  readonly stopping: boolean;
}

export function createShutdown(options: { readonly deadlineMs: number }, deps: ShutdownDeps): Shutdown {
  const { log } = deps;
  const exit = deps.exit ?? ((code: number) => process.exit(code));
  let stopping = false;
  let exited = false;

  const finish = (code: number): void => {
    if (exited) return;
    exited = true;
    const done = (): void => exit(code);
    if (deps.beforeExit === undefined) done();
    else deps.beforeExit().then(done, done);
  };

  return {
    get stopping() {
      return stopping;
    },
    signal(name) {
      if (stopping) {
        log.warn({ signal: name }, `second ${name}: exiting now with code 1 without waiting; committed records are safe in SQLite`);
        exited = true;
        exit(1);
        return;
      }
      stopping = true;
      const startedAt = performance.now();
      log.info({ signal: name, deadlineMs: options.deadlineMs }, `${name}: shutting down: no new records, finishing commits and the Kafka batch in flight`);
      deps.onStopping?.();
      const deadline = setTimeout(() => {
        log.error(
          { deadlineMs: options.deadlineMs },
          `shutdown did not finish within ${options.deadlineMs} ms: exiting with code 1; committed records are safe in SQLite`,
        );
        finish(1);
      }, options.deadlineMs);
      deps.stop().then(
        () => {
          clearTimeout(deadline);
          log.info({ stopMs: Math.round(performance.now() - startedAt) }, 'shutdown complete: exiting with code 0');
          finish(0);
        },
        (error: unknown) => {
          clearTimeout(deadline);
          log.error({ err: error }, `shutdown failed: ${errorMessage(error)}; exiting with code 1`);
          finish(1);
        },
      );
    },
  };
}
