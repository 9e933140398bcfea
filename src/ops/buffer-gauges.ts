// The buffer and Kafka-link gauges of /metrics, brought up to date every few seconds and before each scrape,
// and the buffer's high-water log lines (buffer-watermark.ts) from the same readings.
import { type BufferStats, oldestAgeSeconds } from '../buffer/record-store.ts';
import type { Component, HealthReport } from '../core/lifecycle.ts';
import type { Logger } from '../core/log.ts';
import type { Metrics } from '../core/metrics.ts';
import type { LinkState } from '../forward/forwarder.ts';
import { createBufferWatermark } from './buffer-watermark.ts';

export interface BufferGaugesOptions {
  readonly maxRecords: number;
  readonly maxBytes: number;
  /** Default 5,000 ms. */
  readonly intervalMs?: number;
}

export interface BufferGaugesDeps {
  readonly buffer: { stats(): BufferStats };
  readonly link: () => LinkState;
  readonly metrics: Metrics;
  readonly log: Logger;
}

export interface BufferGauges extends Component {
  /** Sets the gauges from the buffer's figures now (the ops endpoint calls it before a scrape). */
  refresh(): void;
}

const LINK_STATES: readonly LinkState[] = ['up', 'buffering', 'starting'];

export function createBufferGauges(options: BufferGaugesOptions, deps: BufferGaugesDeps): BufferGauges {
  const { metrics } = deps;
  const watermark = createBufferWatermark({ maxRecords: options.maxRecords, maxBytes: options.maxBytes }, deps.log.child({ component: 'buffer' }));
  let timer: NodeJS.Timeout | null = null;

  function refresh(): void {
    const stats = deps.buffer.stats();
    metrics.bufferDepthRecords.set(stats.depthRecords);
    metrics.bufferDepthBytes.set(stats.depthBytes);
    metrics.bufferOldestAgeSeconds.set(oldestAgeSeconds(stats));
    metrics.bufferDeadLetters.set(stats.deadLetters);
    const link = deps.link();
    for (const state of LINK_STATES) metrics.forwarderState.set({ state }, state === link ? 1 : 0);
    watermark.observe(stats);
  }

  return {
    name: 'ops.buffer-gauges',
    refresh,
    async start() {
      timer ??= setInterval(refresh, options.intervalMs ?? 5_000);
      timer.unref();
    },
    async stop() {
      if (timer !== null) clearInterval(timer);
      timer = null;
    },
    health: (): HealthReport => ({ status: 'ok' }),
  };
}
