// mqtt.* -> the MQTT ingress's options.
import type { Config } from '../../config/schema.ts';
import type { MqttIngressOptions } from './broker.ts';

export function mqttIngressOptionsFromConfig(config: Config): MqttIngressOptions {
  const { mqtt } = config;
  const { tls } = mqtt;
  return {
    host: mqtt.host,
    port: mqtt.port,
    allowAnonymous: mqtt.allow_anonymous,
    maxPayloadBytes: mqtt.max_payload_bytes,
    maxConnections: mqtt.max_connections,
    maxConnectionsPerAddress: mqtt.max_connections_per_address,
    maxHeldBytes: mqtt.max_held_bytes,
    persistence: {
      maxRetainedMessages: mqtt.max_retained_messages,
      maxRetainedBytes: mqtt.max_retained_bytes,
      maxSessions: mqtt.max_sessions,
      maxQueuedPerClient: mqtt.max_queued_messages_per_client,
      maxQueuedBytes: mqtt.max_queued_bytes,
    },
    connectTimeoutMs: mqtt.connect_timeout_ms,
    keepaliveLimitS: mqtt.keepalive_limit_s,
    rejectLogIntervalMs: mqtt.reject_log_interval_s * 1000,
    devices: mqtt.devices.map((device) => ({ id: device.id, passwordHash: device.password_hash })),
    clients: mqtt.clients.map((client) => ({
      username: client.username,
      passwordHash: client.password_hash,
      publish: client.publish,
      subscribe: client.subscribe,
    })),
    tls:
      tls.cert_file === ''
        ? null
        : {
            port: tls.port,
            certFile: tls.cert_file,
            keyFile: tls.key_file,
            caFile: tls.ca_file,
            crlFile: tls.crl_file,
            requireClientCert: tls.require_client_cert,
          },
  };
}
