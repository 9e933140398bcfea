// The configuration schema: one source for the Config type, its defaults, coercion of environment
// strings and the per-key documentation. Only main.ts reads the resulting Config; components get
// their own camelCase options from it. The field types are in schema-fields.ts and the ingress sections
// (mqtt, lorawan, serial, ttn) in schema-ingress.ts; this file holds the other sections and composes them.
import { hostname } from 'node:os';
import { z } from 'zod';
import { count, deviceId, flag, hostPort, list, port } from './schema-fields.ts';
import { commands } from './schema-commands.ts';
import { lorawan, mqtt, serial, ttn } from './schema-ingress.ts';

export { deviceId } from './schema-fields.ts';

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
    compression: z
      .enum(['none', 'gzip', 'snappy', 'lz4', 'zstd'])
      .default('none')
      .describe('batch compression for metered links: lz4 costs least CPU, zstd saves most bytes (see README, Compression)'),
    max_message_bytes: count(1024)
      .default(1_000_000)
      .describe(
        "largest record the cluster takes (the broker's message.max.bytes, the topic's max.message.bytes; Kafka's default is 1,048,588); the config check refuses payload limits that would let bigger records be acknowledged",
      ),
    batch_max_records: count().max(100000).default(2000).describe('records per produce batch'),
    batches_in_flight: count()
      .max(32)
      .default(1)
      .describe(
        'batches on the wire at once, each for its own share of the devices (order per device holds); 4 drains a backlog about 3x faster over a 300 ms round trip (LTE), 1 keeps the latency lowest on a fast link',
      ),
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
    // Under systemd the loader sets the default to $STATE_DIRECTORY/buffer.db before validation (load.ts).
    path: z
      .string()
      .min(1)
      .default('data/buffer.db')
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
    allowed_hosts: list(z.string().min(1).max(253))
      .default([])
      .describe(
        'host names (besides IP addresses and localhost) the ops endpoint answers to while http.auth is off, e.g. gateway-7.local; other names are refused (DNS rebinding)',
      ),
    auth: z
      .strictObject({
        username: z.string().default('').describe("basic-auth user for every path except /healthz; '' = no auth"),
        password_file: z.string().default('').describe('file holding the basic-auth password, read at start (e.g. ${CREDENTIALS_DIRECTORY}/http-password)'),
      })
      .refine((auth) => (auth.username === '') === (auth.password_file === ''), 'set both username and password_file to require basic auth, or neither')
      .prefault({}),
  })
  .prefault({});

const formatters = z
  .strictObject({
    timeout_ms: count()
      .max(1000)
      .default(100)
      .describe(
        'longest one decodeUplink call of a javascript formatter may run (1..1000); it is stopped then and the record notes iotgw.codec_error. The call runs on the main thread: while it runs, nothing else does (downlinks due within RX1 = 1 s, MQTT acknowledgements, watchdog pings), and a stuck formatter costs this much per uplink, 5 times before it is rested',
      ),
    max_output_bytes: count(64)
      .max(1024 * 1024)
      .default(16384)
      .describe('largest decodeUplink result (as JSON) a javascript formatter may return; larger results become iotgw.codec_error'),
  })
  .prefault({});

const log = z
  .strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info').describe('log level'),
    max_input_warnings_per_minute: count()
      .default(60)
      .describe(
        'warnings caused by outside input (refused devices, logins, datagrams), all sources together; more are counted in iotgw_log_lines_suppressed_total and summed up in the next line, so a flood cannot bury the lines about the gateway itself',
      ),
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
  lorawan,
  formatters,
  ttn,
  serial,
  commands,
});

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
