// Stage 3: buffer -> sink, oldest first, one batch in flight per lane (send-lanes.ts: a device's records
// always take the same lane). A batch leaves the buffer only after the sink acknowledged it; on a retriable
// failure the same batch is retried (with backoff) before anything newer of its lane is sent, which keeps
// every device's records in acceptance order without an idempotent producer.
// Only a SinkError or a buffer GatewayError is a condition to retry or dead-letter; anything else thrown here
// is a bug, which would be retried forever behind the same batch: it goes to onFatal instead.
import { oldestAgeSeconds, type RecordBuffer } from '../buffer/record-buffer.ts';
import { GatewayError } from '../errors.ts';
import type { Component, HealthReport } from '../core/lifecycle.ts';
import type { Logger } from '../core/log.ts';
import type { ForwardMetrics } from './forward-metrics.ts';
import { backoffDelayMs } from '../shared/backoff.ts';
import { createSendLanes, type SendLane } from './send-lanes.ts';
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
  /** Batches on the wire at once (lanes); 1 = one batch for the whole gateway. Default 1. */
  readonly lanes?: number;
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

interface LaneState {
  readonly lane: SendLane;
  batchLimit: number;
  /** Failed sends in a row: the backoff exponent. */
  failures: number;
  /** Its last send failed for a reason of the link (the gateway is buffering while any lane is). */
  failing: boolean;
  /** Ends the lane's idle wait early (new records). */
  wake: (() => void) | null;
  /** Records arrived for this lane since it last looked: it must not wait idle. */
  fed: boolean;
}

type Outcome = 'sent' | 'idle' | 'failed';

export function createForwarder(options: ForwarderOptions, deps: ForwarderDeps): Forwarder {
  const log = deps.log.child({ component: 'forwarder' });
  const { buffer, sink, metrics } = deps;
  const idlePollMs = options.idlePollMs ?? 1000;
  const laneCount = Math.max(1, options.lanes ?? 1);
  const sendLanes = createSendLanes(buffer, {
    count: laneCount,
    windowRecords: laneCount * options.batchMaxRecords,
    windowBytes: laneCount * options.batchMaxBytes,
    // Another lane's lease may bring this lane's devices' records while it waits idle: wake it at once.
    onRecords: (fed) => {
      for (const index of fed) {
        const lane = lanes[index];
        if (lane === undefined) continue;
        lane.fed = true;
        lane.wake?.();
      }
    },
  });
  const lanes: LaneState[] = sendLanes.lanes.map((lane) => ({
    lane,
    batchLimit: options.batchMaxRecords,
    failures: 0,
    failing: false,
    wake: null,
    fed: false,
  }));
  let linkState: LinkState = 'starting';
  let probeFailed = false;
  let probing: Promise<'sent' | 'failed'> | null = null;
  let running: Promise<void> | null = null;
  let stopping = false;
  let downSinceMs = 0;

  /** Every wait in progress, so stop() can end them. */
  const pendingSleeps = new Set<() => void>();

  /** Waits `ms`; an idle wait ends early on new records (notify), a backoff only at stop. */
  function sleep(state: LaneState, ms: number, idle: boolean): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        if (state.wake === done) state.wake = null;
        pendingSleeps.delete(done);
        resolve();
      }
      if (idle) state.wake = done;
      pendingSleeps.add(done);
    });
  }

  function markUp(state: LaneState | null): void {
    if (state !== null) {
      state.failures = 0;
      state.failing = false;
    } else probeFailed = false;
    if (linkState === 'up' || probeFailed || lanes.some((lane) => lane.failing)) return;
    const depth = buffer.stats().depthRecords;
    if (linkState === 'buffering') {
      log.info({ bufferedRecords: depth, downForMs: Math.round(performance.now() - downSinceMs) }, `Kafka reachable again: draining ${depth} buffered records`);
    } else log.info({ bufferedRecords: depth }, 'Kafka reachable: forwarding records');
    linkState = 'up';
    metrics.forwarderUp.set(1);
  }

  function markDown(state: LaneState | null, error: SinkError): void {
    if (state !== null) state.failing = true;
    else probeFailed = true;
    if (linkState === 'buffering') return;
    const depth = buffer.stats().depthRecords;
    log.warn({ code: error.code, bufferedRecords: depth }, `Kafka unreachable (${error.message}): buffering records until it is back; retrying with backoff`);
    linkState = 'buffering';
    downSinceMs = performance.now();
    metrics.forwarderUp.set(0);
  }

  async function sendOnce(state: LaneState): Promise<Outcome> {
    const { lane } = state;
    state.fed = false;
    const batch = await lane.lease(state.batchLimit, options.batchMaxBytes);
    // Nothing to send while the link is down: check it anyway, or a gateway whose Kafka came back while its
    // buffer was empty would say "buffering" until the next record arrives.
    if (batch.length === 0) return linkState === 'buffering' && !lanes.some((other) => other.failing) ? await probeOnce() : 'idle';
    try {
      await sink.send(batch);
    } catch (failure) {
      lane.release();
      if (!(failure instanceof SinkError)) throw failure;
      if (!failure.retriable) return await isolate(state, batch, failure);
      markDown(state, failure);
      return 'failed';
    }
    try {
      await lane.ack();
    } catch (error) {
      // In Kafka but still in the buffer (a full disk refused the delete): back at the head of the lane, so they
      // go again (duplicates with the same record ids) before anything newer, never after it.
      lane.release();
      throw error;
    }
    state.batchLimit = options.batchMaxRecords;
    markUp(state);
    // The window has room again: lanes that found nothing to send may find their devices' records now.
    for (const other of lanes) if (other !== state) other.wake?.();
    return 'sent';
  }

  /** One record poisons the batch: halve until it is alone, then set it aside. */
  async function isolate(state: LaneState, batch: readonly { readonly id: string; readonly key: string }[], failure: SinkError): Promise<Outcome> {
    if (batch.length > 1) {
      state.batchLimit = Math.max(1, Math.ceil(batch.length / 2));
      return 'sent';
    }
    await state.lane.lease(1, options.batchMaxBytes);
    await state.lane.deadLetter(failure.message);
    metrics.kafkaDeadLettered.inc({ reason: failure.code });
    log.error({ recordId: batch[0]?.id, key: batch[0]?.key, code: failure.code }, `record set aside as undeliverable: ${failure.message}`);
    state.batchLimit = options.batchMaxRecords;
    return 'sent';
  }

  /** Reaches Kafka with nothing to send (at start, and while buffering with an empty buffer); one probe at a time. */
  function probeOnce(): Promise<'sent' | 'failed'> {
    probing ??= probe().finally(() => {
      probing = null;
    });
    return probing;
  }

  async function probe(): Promise<'sent' | 'failed'> {
    try {
      await sink.connect();
    } catch (failure) {
      if (!(failure instanceof SinkError)) throw failure;
      markDown(null, failure);
      return 'failed';
    }
    markUp(null);
    return 'sent';
  }

  async function runLane(state: LaneState): Promise<void> {
    while (!stopping) {
      let outcome: Outcome;
      try {
        outcome = linkState === 'starting' ? await probeOnce() : await sendOnce(state);
      } catch (error) {
        if (!(error instanceof GatewayError)) {
          if (!stopping) {
            log.fatal({ err: error }, 'forwarder stopped by a bug (not a Kafka or buffer failure); the records stay buffered');
            stopping = true;
            deps.onFatal(error);
          }
          return;
        }
        // The buffer itself failed (e.g. disk I/O on ack): the batch is re-sent later, a duplicate at worst.
        log.error({ err: error }, 'forwarder step failed; retrying');
        outcome = 'failed';
      }
      if (outcome === 'idle') {
        // Fed while it looked (another lane's lease brought its records): look again at once.
        if (state.fed) continue;
        await sleep(state, idlePollMs, true);
      } else if (outcome === 'failed') {
        state.failures += 1;
        await sleep(state, backoffDelayMs(state.failures, { initialMs: options.retryInitialMs, maxMs: options.retryMaxMs }, deps.random), false);
      }
    }
  }

  return {
    name: 'forwarder',

    async start() {
      stopping = false;
      const loops = lanes.map((state) => runLane(state));
      running = Promise.all(loops).then(() => undefined);
    },

    notify() {
      for (const state of lanes) state.wake?.();
    },

    state: () => linkState,

    async stop() {
      if (running === null) return;
      stopping = true;
      for (const wakeUp of [...pendingSleeps]) wakeUp();
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
      // What is held in memory goes back to the buffer's line, so a start after this stop leases it again.
      await sendLanes
        .releaseAll()
        .catch((error: unknown) => log.warn({ err: error }, 'could not hand held records back to the buffer; they are sent again after restart'));
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
