// Messages between the forwarder on the buffer's thread (forwarding-companion.ts) and its side on the main
// thread (forwarding-thread.ts). Plain data only.
import type { SerializedError } from '../buffer/worker-protocol.ts';
import type { HealthReport } from '../core/lifecycle.ts';
import type { LoggerOptions } from '../core/log.ts';
import type { Route } from '../record/routes.ts';
import type { ForwardMetricChanges } from './forward-metrics.ts';
import type { ForwarderOptions, LinkState } from './forwarder.ts';
import type { KafkaSinkOptions } from './kafka-sink.ts';

/** What the forwarder on the buffer's thread is built from. */
export interface ForwardingThreadOptions {
  readonly sink: KafkaSinkOptions;
  readonly forwarder: ForwarderOptions;
  readonly defaultTopic: string;
  readonly routes: readonly Route[];
  /** That thread logs to stdout itself, as the main thread does. */
  readonly log: LoggerOptions;
}

export type ForwardingRequest = { readonly type: 'start' } | { readonly type: 'stop' };

export interface ForwardingReport {
  readonly type: 'report';
  readonly state: LinkState;
  readonly forwarder: HealthReport;
  readonly sink: HealthReport;
  readonly metrics: ForwardMetricChanges | null;
}

export type ForwardingUpdate =
  | ForwardingReport
  | { readonly type: 'started' }
  /** start() could not succeed (not a bug: e.g. a compression codec that does not load). */
  | { readonly type: 'startFailed'; readonly error: SerializedError }
  | { readonly type: 'stopped' }
  /** A bug in the forwarder (already logged there): the process must end. */
  | { readonly type: 'fatal'; readonly message: string; readonly stack: string };
