// kafka.* -> the options of the Kafka sink and the forwarder.
import type { Config } from '../config/schema.ts';
import { COMMAND_RECEIPT_STREAM } from '../record/streams.ts';
import type { ForwarderOptions } from './forwarder.ts';
import type { ForwardingThreadOptions } from './forwarding-protocol.ts';
import type { KafkaSinkOptions } from './kafka-sink.ts';

/** How long the forwarder's batch in flight may take at shutdown; well inside systemd's TimeoutStopSec. */
export const STOP_TIMEOUT_MS = 10_000;

export function kafkaSinkOptionsFromConfig(config: Config): KafkaSinkOptions {
  const { kafka } = config;
  return {
    brokers: kafka.brokers,
    clientId: kafka.client_id,
    gatewayId: config.gateway_id,
    compression: kafka.compression,
    requestTimeoutMs: kafka.request_timeout_ms,
    connectionTimeoutMs: kafka.connection_timeout_ms,
    maxInFlightRequests: kafka.batches_in_flight,
    tls: kafka.tls.enabled ? { caFile: kafka.tls.ca_file, certFile: kafka.tls.cert_file, keyFile: kafka.tls.key_file } : null,
    sasl: kafka.sasl.mechanism === 'none' ? null : { mechanism: kafka.sasl.mechanism, username: kafka.sasl.username, password: kafka.sasl.password },
  };
}

export function forwarderOptionsFromConfig(config: Config): ForwarderOptions {
  const { kafka } = config;
  return {
    batchMaxRecords: kafka.batch_max_records,
    batchMaxBytes: kafka.batch_max_bytes,
    retryInitialMs: kafka.retry_initial_ms,
    retryMaxMs: kafka.retry_max_ms,
    stopTimeoutMs: STOP_TIMEOUT_MS,
    lanes: kafka.batches_in_flight,
  };
}

/** Everything the forwarder on the buffer's thread is built from (plain data: it crosses to that thread). */
export function forwardingThreadOptionsFromConfig(config: Config): ForwardingThreadOptions {
  return {
    sink: kafkaSinkOptionsFromConfig(config),
    forwarder: forwarderOptionsFromConfig(config),
    defaultTopic: config.kafka.topic,
    routes: [
      // Receipts first: a '*' route of the user's must not catch them.
      ...(config.commands.enabled ? [{ stream: COMMAND_RECEIPT_STREAM, topic: config.commands.receipts_topic, eventTimeField: undefined }] : []),
      ...config.kafka.routes.map((route) => ({ stream: route.stream, topic: route.topic, eventTimeField: route.event_time_field })),
    ],
    log: { level: config.log.level, gatewayId: config.gateway_id },
  };
}
