// The configuration schema: one source for the Config type, its defaults, coercion of environment
// strings and the per-key documentation. Only main.ts reads the resulting Config; components get
// their own camelCase options from it.
import { hostname } from 'node:os';
import { z } from 'zod';

const PASSWORD_HASH_PATTERN = /^\$scrypt\$ln=\d+,r=\d+,p=\d+\$[A-Za-z0-9+/]+={0,2}\$[A-Za-z0-9+/]+={0,2}$/;

/** Environment overrides arrive as strings: accept `true/false/1/0/yes/no` as well as YAML booleans. */
const flag = z.preprocess((value) => {
  if (typeof value !== 'string') return value;
  const text = value.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(text)) return true;
  if (['false', '0', 'no', 'off'].includes(text)) return false;
  return value;
}, z.boolean());

/** A list given in YAML as a sequence, or in an environment variable as `a,b,c`. */
function list<T extends z.ZodType>(item: T) {
  return z.preprocess(
    (value) =>
      typeof value === 'string'
        ? value
            .split(',')
            .map((part) => part.trim())
            .filter((part) => part !== '')
        : value,
    z.array(item),
  );
}

const count = (min = 1) => z.coerce.number().int().min(min);
const port = z.coerce.number().int().min(0).max(65535);
const hostPort = z.string().regex(/^[^\s:]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/, 'expected host:port, e.g. kafka-1:9092');
const deviceId = z
  .string()
  .regex(/^[A-Za-z0-9._:-]{1,128}$/, 'device ids use letters, digits and . _ : - (at most 128), so they are valid in MQTT topics and Kafka keys');
const passwordHash = z
  .string()
  .regex(PASSWORD_HASH_PATTERN, 'expected a password hash made by `iotgw hash-password` ($scrypt$ln=...); plaintext passwords are not accepted');
const topicFilter = z.string().min(1).max(1024);

const mqttTls = z
  .strictObject({
    port: port.default(8883).describe('TLS listener port; the listener starts only when cert_file and key_file are set'),
    cert_file: z.string().default('').describe('PEM server certificate (chain) for the TLS listener'),
    key_file: z.string().default('').describe('PEM private key for the TLS listener'),
    ca_file: z.string().default('').describe('PEM CA bundle that signs device certificates (needed for client-certificate authentication)'),
    require_client_cert: flag.default(false).describe("devices must present a certificate signed by ca_file; the certificate's CN is the device id"),
  })
  .prefault({});

const mqttDevice = z.strictObject({
  id: deviceId.describe('device id: MQTT username and client id; it may publish only under devices/{id}/'),
  password_hash: passwordHash.describe('scrypt hash from `iotgw hash-password`'),
});

const mqttClient = z.strictObject({
  username: z.string().min(1).describe('account for a non-device client (dashboard, service)'),
  password_hash: passwordHash,
  subscribe: list(topicFilter).default(['#']).describe('topic filters this client may subscribe to'),
  publish: list(topicFilter).default([]).describe('topic filters this client may publish to (never stored as records unless under devices/)'),
});

const mqtt = z
  .strictObject({
    host: z.string().min(1).default('0.0.0.0').describe('address the plain MQTT listener binds to'),
    port: port.default(1883).describe('plain MQTT (TCP) port; 0 picks a free port'),
    allow_anonymous: flag
      .default(true)
      .describe('accept clients without credentials; they may publish only under devices/{client id}/. Turn off in production'),
    max_payload_bytes: count()
      .max(16 * 1024 * 1024)
      .default(65536)
      .describe('largest accepted PUBLISH payload; larger ones are rejected, counted and the client disconnected'),
    max_connections: count().default(20000).describe('simultaneous MQTT connections; further ones are refused and counted'),
    connect_timeout_ms: count().default(10000).describe('a socket that has not sent CONNECT by then is closed'),
    keepalive_limit_s: count(0).max(65535).default(3600).describe('largest keepalive a client may ask for (0 = any)'),
    tls: mqttTls,
    devices: z.array(mqttDevice).default([]).describe('device identities with password hashes'),
    clients: z.array(mqttClient).default([]).describe('non-device accounts (dashboards, services) with topic ACLs'),
  })
  .prefault({});

const kafkaRoute = z.strictObject({
  stream: z.string().min(1).describe("stream name (the last topic level of devices/{id}/{stream}), or '*' for every stream"),
  topic: z.string().min(1).optional().describe('Kafka topic for this stream (default: kafka.topic)'),
  event_time_field: z.string().min(1).optional().describe('JSON payload field holding when the reading was taken (ISO-8601, epoch seconds or epoch ms)'),
});

const kafkaSasl = z
  .strictObject({
    mechanism: z.enum(['none', 'plain', 'scram-sha-256', 'scram-sha-512']).default('none').describe('SASL mechanism'),
    username: z.string().default(''),
    password: z.string().default('').describe('prefer password_file; never logged'),
    password_file: z.string().default('').describe('file holding the SASL password (e.g. ${CREDENTIALS_DIRECTORY}/kafka-password)'),
  })
  .prefault({});

const kafkaTls = z
  .strictObject({
    enabled: flag.default(false).describe('connect to the brokers over TLS'),
    ca_file: z.string().default('').describe('PEM CA bundle for the brokers (default: the system store)'),
    cert_file: z.string().default('').describe('PEM client certificate for mutual TLS'),
    key_file: z.string().default('').describe('PEM client key for mutual TLS'),
  })
  .prefault({});

const kafka = z
  .strictObject({
    brokers: list(hostPort).default(['localhost:9092']).describe('bootstrap brokers host:port (env: comma separated)'),
    topic: z.string().min(1).default('iotgw.records').describe('default topic for every record'),
    routes: z.array(kafkaRoute).default([]).describe('per-stream topic and event-time rules; the first matching route wins'),
    client_id: z.string().min(1).default('iotgw').describe('Kafka client id'),
    compression: z.enum(['none', 'gzip']).default('none').describe('batch compression (kafkajs ships gzip; others need codecs)'),
    batch_max_records: count().max(100000).default(2000).describe('records per produce batch'),
    batch_max_bytes: count(1024)
      .default(1024 * 1024)
      .describe('payload bytes per produce batch'),
    request_timeout_ms: count(100).default(30000).describe('how long one produce request may take before it is retried'),
    connection_timeout_ms: count(100).default(3000).describe('TCP/TLS connect timeout per broker'),
    retry_initial_ms: count(10).default(250).describe('first delay before retrying a failed batch; doubles with jitter'),
    retry_max_ms: count(10).default(15000).describe('longest delay between retries while Kafka is unreachable'),
    tls: kafkaTls,
    sasl: kafkaSasl,
  })
  .prefault({});

const buffer = z
  .strictObject({
    path: z
      .string()
      .min(1)
      .default(() => (process.env.STATE_DIRECTORY ? `${process.env.STATE_DIRECTORY.split(':')[0]}/buffer.db` : 'data/buffer.db'))
      .describe('SQLite file of the durable buffer (default: $STATE_DIRECTORY/buffer.db under systemd, else data/buffer.db)'),
    max_records: count().default(5_000_000).describe('most records held while Kafka is unreachable'),
    max_bytes: count(1024)
      .default(1024 * 1024 * 1024)
      .describe('most payload bytes held while Kafka is unreachable'),
    when_full: z
      .enum(['reject', 'drop_oldest'])
      .default('reject')
      .describe('reject: stop acknowledging new records (devices retry); drop_oldest: delete the oldest buffered records, counted'),
    commit_interval_ms: count(0).max(1000).default(2).describe('group-commit window: records arriving within it share one fsync'),
    commit_max_records: count().max(100000).default(5000).describe('a group commit happens at once when this many records wait'),
  })
  .prefault({});

const http = z
  .strictObject({
    host: z.string().min(1).default('127.0.0.1').describe('address of the ops endpoint (/metrics, /healthz, /readyz)'),
    port: port.default(8080).describe('ops endpoint port; 0 picks a free port'),
  })
  .prefault({});

const log = z
  .strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info').describe('log level'),
  })
  .prefault({});

export const configSchema = z.strictObject({
  version: z.literal(1).default(1).describe('config format version'),
  gateway_id: deviceId
    .default(() => hostname().replace(/[^A-Za-z0-9._:-]/g, '-') || 'iotgw')
    .describe("this gateway's name, sent in every record's gateway-id header (default: the host name)"),
  log,
  mqtt,
  kafka,
  buffer,
  http,
});

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
