// commands.* -> the options of the command intake, queue and delivery.
import type { Config } from '../config/schema.ts';
import { kafkaSinkOptionsFromConfig } from '../forward/forward-config.ts';
import type { CommandDeliveryOptions } from './command-delivery.ts';
import { MAX_ATTEMPTS } from './command-delivery.ts';
import type { CommandIntakeOptions } from './command-intake.ts';
import type { CommandQueueOptions } from './command-queue.ts';
import { DEFAULT_COMMAND_FPORT, type LorawanCommandPathOptions } from './lorawan-command-path.ts';

export function commandIntakeOptionsFromConfig(config: Config): CommandIntakeOptions {
  const { commands, kafka } = config;
  const { brokers, clientId, requestTimeoutMs, connectionTimeoutMs, tls, sasl } = kafkaSinkOptionsFromConfig(config);
  return {
    kafka: { brokers, clientId, requestTimeoutMs, connectionTimeoutMs, tls, sasl },
    topic: commands.topic,
    groupId: commands.group_id === '' ? `iotgw-${config.gateway_id}` : commands.group_id,
    fetchWaitMs: commands.fetch_wait_ms,
    limits: { maxPayloadBytes: commands.max_payload_bytes, defaultTtlMs: commands.default_ttl_s * 1000 },
    retryInitialMs: kafka.retry_initial_ms,
    retryMaxMs: kafka.retry_max_ms,
    rejectLogIntervalMs: config.mqtt.reject_log_interval_s * 1000,
  };
}

export function commandQueueOptionsFromConfig(config: Config): CommandQueueOptions {
  const { commands } = config;
  return { maxPerDevice: commands.max_queued_per_device, maxTotal: commands.max_queued, maxBytes: commands.max_queued_bytes };
}

export function commandDeliveryOptionsFromConfig(_config: Config): CommandDeliveryOptions {
  return { maxAttempts: MAX_ATTEMPTS, expiryCheckMs: 1_000, commitRetryMs: 1_000 };
}

export function lorawanCommandPathOptionsFromConfig(_config: Config): LorawanCommandPathOptions {
  // 51 bytes: what EU868 DR0-2 carry (RP002-1.0.3 §2.4.6); the strictest of the regions iotgw has.
  return { defaultFport: DEFAULT_COMMAND_FPORT, windowGraceMs: 400, maxPayloadBytes: 51 };
}
