// Stage 3: buffer -> sink, oldest first, one batch in flight. A batch leaves the buffer only after the
// sink acknowledged it; on a retriable failure the same batch is retried (with backoff) before anything
// newer is leased, which keeps every device's records in acceptance order without an idempotent producer.
// Only a SinkError or a buffer GatewayError is a condition to retry or dead-letter; anything else thrown here
// is a bug, which would be retried forever behind the same batch: it goes to onFatal instead.
import { oldestAgeSeconds, type RecordBuffer } from '../buffer/record-buffer.ts';
import { GatewayError } from '../errors.ts';
import type { Component, HealthReport } from '../core/lifecycle.ts';
import type { Logger } from '../core/log.ts';
import type { ForwardMetrics } from './forward-metrics.ts';
import { backoffDelayMs } from '../shared/backoff.ts';
import { type Sink, SinkError } from './sink.ts';

export interface ForwarderOptions {
  readonly batchMaxRecords: number;
  readonly batchMaxBytes: number;
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;
  /** On stop, how long the batch in flight may take before the forwarder gives up on it (it stays buffered). */
  readonly stopTimeoutMs: number;
  /** Safety net when no commit notification arrives: how often an idle forwarder looks at the buffer. */
  readonly idlePollMs?: number;
}

export interface ForwarderDeps {
  readonly buffer: RecordBuffer;
  readonly sink: Sink;
  readonly log: Logger;
  readonly metrics: ForwardMetrics;
  /** A bug surfaced while forwarding (not a SinkError or buffer error): the forwarder has stopped; end the process. */
  readonly onFatal: (error: unknown) => void;
  readonly random?: () => number;
}

/** The Kafka link as every part of the gateway names it: metrics, /readyz, the status page. */
export type LinkState = 'starting' | 'up' | 'buffering';

export interface Forwarder extends Component {
  /** New records were committed: wake up if idle. */
  notify(): void;
  state(): LinkState;
}

export function createForwarder(options: ForwarderOptions, deps: ForwarderDeps): Forwarder {
  const log = deps.log.child({ component: 'forwarder' });
  const { buffer, sink, metrics } = deps;
  const idlePollMs = options.idlePollMs ?? 1000;
  let linkState: LinkState = 'starting';
  let batchLimit = options.batchMaxRecords;
  let failures = 0;
  let running: Promise<void> | null = null;
  let stopping = false;
  let wake: (() => void) | null = null;
  let downSinceMs = 0;

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        wake = null;
        resolve();
      }
      wake = done;
    });
  }

  function markUp(): void {
    failures = 0;
    if (linkState === 'up') return;
    const depth = buffer.stats().depthRecords;
    if (linkState === 'buffering') {
      log.info({ bufferedRecords: depth, downForMs: Math.round(performance.now() - downSinceMs) }, `Kafka reachable again: draining ${depth} buffered records`);
    } else log.info({ bufferedRecords: depth }, 'Kafka reachable: forwarding records');
    linkState = 'up';
    metrics.forwarderUp.set(1);
  }

  function markDown(error: SinkError): void {
    if (linkState === 'buffering') return;
    const depth = buffer.stats().depthRecords;
    log.warn({ code: error.code, bufferedRecords: depth }, `Kafka unreachable (${error.message}): buffering records until it is back; retrying with backoff`);
    linkState = 'buffering';
    downSinceMs = performance.now();
    metrics.forwarderUp.set(0);
  }

  async function sendOnce(): Promise<'sent' | 'idle' | 'failed'> {
    const batch = await buffer.lease(batchLimit, options.batchMaxBytes);
    // Nothing to send while the link is down: check it anyway, or a gateway whose Kafka came back while its
    // buffer was empty would say "buffering" until the next record arrives.
    if (batch.length === 0) return linkState === 'buffering' ? await probe() : 'idle';
    const seqs = batch.map((record) => record.seq);
    try {
      await sink.send(batch);
    } catch (failure) {
      await buffer.release(seqs);
      if (!(failure instanceof SinkError)) throw failure;
      if (!failure.retriable) {
        if (batch.length > 1) {
          // One record poisons the batch: halve until it is alone, then set it aside.
          batchLimit = Math.max(1, Math.ceil(batch.length / 2));
          return 'sent';
        }
        await buffer.deadLetter(seqs, failure.message);
        metrics.kafkaDeadLettered.inc({ reason: failure.code });
        log.error({ recordId: batch[0]?.id, key: batch[0]?.key, code: failure.code }, `record set aside as undeliverable: ${failure.message}`);
        batchLimit = options.batchMaxRecords;
        return 'sent';
      }
      markDown(failure);
      return 'failed';
    }
    try {
      await buffer.ack(seqs);
    } catch (error) {
      // In Kafka but still in the buffer (a full disk refused the delete): back at the head of the line, so they
      // go again (duplicates with the same record ids) before anything newer, never after it.
      await buffer.release(seqs).catch(() => undefined);
      throw error;
    }
    batchLimit = options.batchMaxRecords;
    markUp();
    return 'sent';
  }

  /** At start, reach Kafka even with nothing to send, so the log says at once whether records flow or wait. */
  async function probe(): Promise<'sent' | 'failed'> {
    try {
      await sink.connect();
    } catch (failure) {
      if (!(failure instanceof SinkError)) throw failure;
      markDown(failure);
      return 'failed';
    }
    markUp();
    return 'sent';
  }

  async function run(): Promise<void> {
    while (!stopping) {
      let outcome: 'sent' | 'idle' | 'failed';
      try {
        outcome = linkState === 'starting' ? await probe() : await sendOnce();
      } catch (error) {
        if (!(error instanceof GatewayError)) {
          log.fatal({ err: error }, 'forwarder stopped by a bug (not a Kafka or buffer failure); the records stay buffered');
          stopping = true;
          deps.onFatal(error);
          return;
        }
        // The buffer itself failed (e.g. disk I/O on ack): the batch is re-sent later, a duplicate at worst.
        log.error({ err: error }, 'forwarder step failed; retrying');
        outcome = 'failed';
      }
      if (outcome === 'idle') await sleep(idlePollMs);
      else if (outcome === 'failed') {
        failures += 1;
        await sleep(backoffDelayMs(failures, { initialMs: options.retryInitialMs, maxMs: options.retryMaxMs }, deps.random));
      }
    }
  }

  return {
    name: 'forwarder',

    async start() {
      stopping = false;
      running = run();
    },

    notify() {
      if (linkState !== 'buffering') wake?.();
    },

    state: () => linkState,

    async stop() {
      if (running === null) return;
      stopping = true;
      wake?.();
      const current = running;
      running = null;
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), options.stopTimeoutMs);
      });
      const result = await Promise.race([current.then(() => 'done' as const), timedOut]);
      clearTimeout(timer);
      if (result === 'timeout')
        log.warn({ stopTimeoutMs: options.stopTimeoutMs }, 'batch in flight did not finish in time; it stays buffered and is sent again after restart');
    },

    health(): HealthReport {
      if (linkState === 'buffering') {
        const stats = buffer.stats();
        return { status: 'degraded', detail: `buffering: Kafka unreachable, ${stats.depthRecords} records waiting, oldest ${oldestAgeSeconds(stats)}s` };
      }
      return { status: 'ok', detail: linkState === 'up' ? 'forwarding' : 'waiting for the first batch' };
    },
  };
}
