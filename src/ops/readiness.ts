// /readyz and the systemd watchdog's view: ready once the buffer is open and every listener that must be up
// (MQTT, Semtech UDP) is; with the Kafka link, each component's health and the backlog. A serial radio or a
// TTN link is one more way in: its trouble shows in the components, but does not make the gateway unready.
import { type BufferStats, oldestAgeSeconds } from '../buffer/record-store.ts';
import type { Component } from '../core/lifecycle.ts';
import type { LinkState } from '../forward/forwarder.ts';
import type { ReadinessReport } from './health.ts';

export interface ReadinessParts {
  /** Every component, in start order, as the report lists them. */
  readonly components: readonly Pick<Component, 'name' | 'health'>[];
  /** The components that must be ok for the gateway to be ready. */
  readonly required: readonly Pick<Component, 'name' | 'health'>[];
  readonly buffer: { stats(): BufferStats };
  readonly link: () => LinkState;
}

export function createReadiness(parts: ReadinessParts): () => ReadinessReport {
  return () => {
    const stats = parts.buffer.stats();
    return {
      ready: parts.required.every((component) => component.health().status === 'ok'),
      kafka: parts.link(),
      components: Object.fromEntries(parts.components.map((component) => [component.name, component.health()])),
      buffer: { depthRecords: stats.depthRecords, depthBytes: stats.depthBytes, oldestAgeSeconds: oldestAgeSeconds(stats) },
    };
  };
}
