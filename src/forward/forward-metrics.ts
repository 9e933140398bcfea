// The metrics the forwarder and the Kafka sink update, as narrow shapes: the prom-client metrics on the main
// thread fit them, and so does the relay that collects them on the buffer's thread (where the forwarder
// runs) and hands the changes to the main thread's registry a few times a second.

export interface ForwardMetrics {
  readonly forwarderUp: { set(value: number): void };
  readonly kafkaDeadLettered: { inc(labels: { reason: string }, value?: number): void };
  readonly kafkaSendErrors: { inc(labels: { code: string }, value?: number): void };
  readonly kafkaSendSeconds: { observe(value: number): void };
  readonly kafkaSentRecords: { inc(labels: { topic: string }, value?: number): void };
}

/** What changed since the last drain: counter increments by label, histogram observations, the gauge's value. */
export interface ForwardMetricChanges {
  readonly forwarderUp: number | null;
  readonly deadLettered: Readonly<Record<string, number>>;
  readonly sendErrors: Readonly<Record<string, number>>;
  readonly sendSeconds: readonly number[];
  readonly sentRecords: Readonly<Record<string, number>>;
}

export interface ForwardMetricsRelay extends ForwardMetrics {
  /** The changes since the last call, or null when nothing changed. */
  drain(): ForwardMetricChanges | null;
}

export function createForwardMetricsRelay(): ForwardMetricsRelay {
  let up: number | null = null;
  let deadLettered: Record<string, number> = {};
  let sendErrors: Record<string, number> = {};
  let sendSeconds: number[] = [];
  let sentRecords: Record<string, number> = {};
  let changed = false;
  const add = (into: Record<string, number>, label: string, value = 1): void => {
    into[label] = (into[label] ?? 0) + value;
    changed = true;
  };
  return {
    forwarderUp: {
      set(value) {
        up = value;
        changed = true;
      },
    },
    kafkaDeadLettered: { inc: (labels, value) => add(deadLettered, labels.reason, value) },
    kafkaSendErrors: { inc: (labels, value) => add(sendErrors, labels.code, value) },
    kafkaSendSeconds: {
      observe(value) {
        sendSeconds.push(value);
        changed = true;
      },
    },
    kafkaSentRecords: { inc: (labels, value) => add(sentRecords, labels.topic, value) },
    drain() {
      if (!changed) return null;
      const changes: ForwardMetricChanges = { forwarderUp: up, deadLettered, sendErrors, sendSeconds, sentRecords };
      up = null;
      deadLettered = {};
      sendErrors = {};
      sendSeconds = [];
      sentRecords = {};
      changed = false;
      return changes;
    },
  };
}

/** Applies a relay's changes to the real metrics. */
export function applyForwardMetricChanges(metrics: ForwardMetrics, changes: ForwardMetricChanges): void {
  if (changes.forwarderUp !== null) metrics.forwarderUp.set(changes.forwarderUp);
  for (const [reason, value] of Object.entries(changes.deadLettered)) metrics.kafkaDeadLettered.inc({ reason }, value);
  for (const [code, value] of Object.entries(changes.sendErrors)) metrics.kafkaSendErrors.inc({ code }, value);
  for (const value of changes.sendSeconds) metrics.kafkaSendSeconds.observe(value);
  for (const [topic, value] of Object.entries(changes.sentRecords)) metrics.kafkaSentRecords.inc({ topic }, value);
}
