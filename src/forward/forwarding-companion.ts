// The forwarder on the buffer's thread (loaded there by buffer-worker.ts as its companion): it leases, acks
// and dead-letters straight on the SQLite store, with no copies across threads, and kafkajs encodes and
// sends there, so Kafka work does not compete with MQTT parsing on the main thread. Its side on the main
// thread is forwarding-thread.ts: start/stop come from there; link state, health and metric changes go back.
import type { MessagePort } from 'node:worker_threads';
import { createInlineBuffer } from '../buffer/record-buffer.ts';
import type { Companion, CompanionContext, SerializedError } from '../buffer/worker-protocol.ts';
import { createLogger } from '../core/log.ts';
import { errorMessage, GatewayError } from '../errors.ts';
import { createRouter } from '../record/routes.ts';
import { createForwardMetricsRelay } from './forward-metrics.ts';
import { createForwarder } from './forwarder.ts';
import type { ForwardingReport, ForwardingRequest, ForwardingThreadOptions, ForwardingUpdate } from './forwarding-protocol.ts';
import { createKafkaSink } from './kafka-sink.ts';

/** How often link state, health and metric changes go to the main thread (when something changed). */
const REPORT_INTERVAL_MS = 200;

export function startCompanion(context: CompanionContext): Companion {
  const options = context.data as ForwardingThreadOptions;
  const port: MessagePort = context.port;
  const log = createLogger(options.log);
  const metrics = createForwardMetricsRelay();
  const router = createRouter(options.defaultTopic, options.routes);
  const sink = createKafkaSink(options.sink, { router, log, metrics });
  const forwarder = createForwarder(options.forwarder, {
    buffer: createInlineBuffer(context.store),
    sink,
    log,
    metrics,
    onFatal(error) {
      post({ type: 'fatal', message: errorMessage(error), stack: error instanceof Error ? (error.stack ?? '') : '' });
    },
  });
  let last = '';
  let timer: NodeJS.Timeout | null = null;

  function post(update: ForwardingUpdate): void {
    port.postMessage(update);
  }

  function report(force = false): void {
    let snapshot: Omit<ForwardingReport, 'type' | 'metrics'>;
    try {
      snapshot = { state: forwarder.state(), forwarder: forwarder.health(), sink: sink.health() };
    } catch (error) {
      // Health reads the store's figures; a failing read must not take the thread down with it.
      snapshot = { state: forwarder.state(), forwarder: { status: 'degraded', detail: `health unavailable: ${errorMessage(error)}` }, sink: sink.health() };
    }
    const key = JSON.stringify(snapshot);
    const changes = metrics.drain();
    if (!force && changes === null && key === last) return;
    last = key;
    post({ type: 'report', ...snapshot, metrics: changes });
  }

  // One request at a time, in order: a stop that arrives while the start is pending runs after it.
  let handling: Promise<void> = Promise.resolve();
  port.on('message', (request: ForwardingRequest) => {
    handling = handling.then(() => handle(request));
  });

  async function handle(request: ForwardingRequest): Promise<void> {
    if (request.type === 'start') {
      try {
        await sink.start();
        await forwarder.start();
      } catch (error) {
        // Not a bug: a start that cannot succeed (a codec that will not load). The main thread's start() rejects
        // with it, so the gateway exits as for any start failure (78 where an operator must act).
        post({ type: 'startFailed', error: serializeError(error) });
        return;
      }
      timer ??= setInterval(report, REPORT_INTERVAL_MS);
      report(true);
      post({ type: 'started' });
      return;
    }
    await forwarder.stop();
    await sink.stop();
    if (timer !== null) clearInterval(timer);
    timer = null;
    report(true);
    post({ type: 'stopped' });
  }

  return {
    afterAppend: () => forwarder.notify(),
  };
}

function serializeError(error: unknown): SerializedError {
  if (error instanceof GatewayError) return { code: error.code, message: error.message, retriable: error.retriable };
  return { code: 'FORWARDER_START', message: errorMessage(error), retriable: false };
}
