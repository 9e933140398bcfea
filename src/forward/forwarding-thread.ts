// The main thread's side of the forwarder that runs on the buffer's thread (forwarding-companion.ts): the
// `forwarder` and `sink.kafka` components the gateway starts, stops and asks for health, answered from what
// that thread reports; metric changes it reports are applied to the main registry, which /metrics serves.
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import type { CompanionSpec } from '../buffer/worker-protocol.ts';
import type { Component, HealthReport } from '../core/lifecycle.ts';
import { GatewayError } from '../errors.ts';
import { applyForwardMetricChanges, type ForwardMetrics } from './forward-metrics.ts';
import type { Forwarder, LinkState } from './forwarder.ts';
import type { ForwardingRequest, ForwardingThreadOptions, ForwardingUpdate } from './forwarding-protocol.ts';

export interface ForwardingThreadDeps {
  readonly metrics: ForwardMetrics;
  /** A bug stopped the forwarder (logged on its thread): end the process. */
  readonly onFatal: (error: Error) => void;
}

export interface ForwardingThread {
  /** The forwarder as a component; notify() is not needed (the buffer's thread wakes it after each commit). */
  readonly forwarder: Forwarder;
  /** The Kafka sink's health, as a component of its own (it starts and stops with the forwarder). */
  readonly sink: Component;
  /** For the worker buffer: what to load beside the store, with a fresh port for each start. */
  companion(): CompanionSpec;
}

// Built, the companion is the .js beside this file; from source (tests under tsx), the .ts.
const COMPANION_URL = new URL(import.meta.url.endsWith('.ts') ? './forwarding-companion.ts' : './forwarding-companion.js', import.meta.url);
/** Beyond the forwarder's own stop timeout: the thread answers within it unless it is wedged or gone. */
const STOP_GRACE_MS = 5_000;
const START_TIMEOUT_MS = 30_000;

export function createForwardingThread(options: ForwardingThreadOptions, deps: ForwardingThreadDeps): ForwardingThread {
  let port: MessagePort | null = null;
  let state: LinkState = 'starting';
  let forwarderHealth: HealthReport = { status: 'ok', detail: 'waiting for the first batch' };
  let sinkHealth: HealthReport = { status: 'degraded', detail: 'not connected' };
  /** The pending request's answer: null when it succeeded, the error when it could not. */
  const waiting = new Map<'started' | 'stopped', (error: GatewayError | null) => void>();

  function onUpdate(update: ForwardingUpdate): void {
    switch (update.type) {
      case 'report':
        state = update.state;
        forwarderHealth = update.forwarder;
        sinkHealth = update.sink;
        if (update.metrics !== null) applyForwardMetricChanges(deps.metrics, update.metrics);
        return;
      case 'fatal': {
        const error = new Error(update.message);
        if (update.stack !== '') error.stack = update.stack;
        deps.onFatal(error);
        return;
      }
      case 'startFailed': {
        const { code, message, retriable } = update.error;
        waiting.get('started')?.(new GatewayError(code, message, { retriable }));
        waiting.delete('started');
        return;
      }
      default:
        waiting.get(update.type)?.(null);
        waiting.delete(update.type);
    }
  }

  /** Sends a request and waits for its answer: null when done, an error when it failed or went unanswered for `timeoutMs`. */
  function request(type: ForwardingRequest['type'], answer: 'started' | 'stopped', timeoutMs: number): Promise<GatewayError | null> {
    const current = port;
    const unanswered = new GatewayError('FORWARDER_THREAD', `the forwarder on the buffer thread did not answer ${type} within ${timeoutMs} ms`, {
      retriable: false,
    });
    if (current === null) return Promise.resolve(unanswered);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        waiting.delete(answer);
        resolve(unanswered);
      }, timeoutMs);
      waiting.set(answer, (error) => {
        clearTimeout(timer);
        resolve(error);
      });
      current.postMessage({ type } satisfies ForwardingRequest);
    });
  }

  const forwarder: Forwarder = {
    name: 'forwarder',
    async start() {
      const failure = await request('start', 'started', START_TIMEOUT_MS);
      if (failure !== null) throw failure;
    },
    async stop() {
      await request('stop', 'stopped', options.forwarder.stopTimeoutMs + STOP_GRACE_MS);
      port?.close();
      port = null;
    },
    notify: () => undefined,
    state: () => state,
    health: () => forwarderHealth,
  };

  return {
    forwarder,
    sink: {
      name: 'sink.kafka',
      start: async () => undefined,
      stop: async () => undefined,
      health: () => sinkHealth,
    },
    companion() {
      const channel = new MessageChannel();
      port?.close();
      port = channel.port1;
      port.on('message', onUpdate);
      // The forwarder's thread keeps the process alive while it runs; this port need not.
      port.unref();
      state = 'starting';
      return { moduleUrl: COMPANION_URL.href, data: options, port: channel.port2 };
    },
  };
}
