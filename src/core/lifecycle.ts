// The contract of every long-lived part, and the ordered start/stop of a set of them: sinks start
// before sources and stop after them, so nothing is accepted that cannot be stored or forwarded.

export interface HealthReport {
  readonly status: 'ok' | 'degraded' | 'down';
  readonly detail?: string;
}

export interface Component {
  /** e.g. 'ingress.mqtt', 'forwarder', 'sink.kafka'. */
  readonly name: string;
  /** Resolves when serving. Does the I/O the constructor did not. */
  start(): Promise<void>;
  /** Idempotent: stops accepting, finishes what is in flight, releases what start() took. */
  stop(): Promise<void>;
  health(): HealthReport;
}

/** Starts components in order; if one fails, stops those already started (in reverse) and rethrows. */
export async function startAll(components: readonly Component[]): Promise<void> {
  const started: Component[] = [];
  try {
    for (const component of components) {
      await component.start();
      started.push(component);
    }
  } catch (error) {
    await stopAll(started);
    throw error;
  }
}

/** Stops components in reverse order; a failing stop does not keep the others running. */
export async function stopAll(components: readonly Component[]): Promise<unknown[]> {
  const failures: unknown[] = [];
  for (const component of [...components].reverse()) {
    try {
      await component.stop();
    } catch (error) {
      failures.push(error);
    }
  }
  return failures;
}
