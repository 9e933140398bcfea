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
export const deviceId = z
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
    auth: z
      .strictObject({
        username: z.string().default('').describe("basic-auth user for every path except /healthz; '' = no auth"),
        password_file: z.string().default('').describe('file holding the basic-auth password, read at start (e.g. ${CREDENTIALS_DIRECTORY}/http-password)'),
      })
      .refine((auth) => (auth.username === '') === (auth.password_file === ''), 'set both username and password_file to require basic auth, or neither')
      .prefault({}),
  })
  .prefault({});

const hex = (digits: number, what: string) =>
  z
    .string()
    .regex(new RegExp(`^[0-9A-Fa-f]{${digits}}$`), `expected ${digits} hex digits (${what})`)
    .transform((text) => text.toLowerCase());

const lorawanDevice = z
  .strictObject({
    dev_eui: hex(16, 'the DevEUI printed on the device, 8 bytes'),
    name: deviceId.optional().describe('device id in records (end_device_ids.device_id); default eui-{dev_eui}'),
    codec: z.enum(['raw', 'cayenne-lpp']).default('raw').describe('payload codec producing decoded_payload: raw (none) or cayenne-lpp'),
    dev_addr: hex(8, 'ABP DevAddr, 4 bytes').optional().describe('ABP: the device address'),
    nwk_s_key: hex(32, 'ABP NwkSKey, 16 bytes').optional().describe('ABP: network session key (secret)'),
    app_s_key: hex(32, 'ABP AppSKey, 16 bytes').optional().describe('ABP: application session key (secret)'),
    join_eui: hex(16, 'OTAA JoinEUI/AppEUI, 8 bytes').optional().describe('OTAA: JoinEUI (AppEUI in LoRaWAN 1.0)'),
    app_key: hex(32, 'OTAA AppKey, 16 bytes').optional().describe('OTAA: root key (secret)'),
  })
  .superRefine((device, context) => {
    const abp = [device.dev_addr, device.nwk_s_key, device.app_s_key];
    const otaa = [device.join_eui, device.app_key];
    const isAbp = abp.every((value) => value !== undefined);
    const isOtaa = otaa.every((value) => value !== undefined);
    if (isAbp && !otaa.some((value) => value !== undefined)) return;
    if (isOtaa && !abp.some((value) => value !== undefined)) return;
    context.addIssue({
      code: 'custom',
      message:
        'give either ABP keys (dev_addr, nwk_s_key, app_s_key) or OTAA keys (join_eui, app_key), all of one kind and none of the other; `iotgw device add --help` shows both forms',
    });
  });

const lorawan = z
  .strictObject({
    enabled: flag.default(false).describe('terminate LoRaWAN: listen for Semtech UDP packet forwarders and decrypt uplinks'),
    region: z.enum(['EU868']).default('EU868').describe('regional parameters for downlinks (join-accept, ACK); EU868 only for now'),
    net_id: hex(6, 'NetID, 3 bytes').default('000000').describe('NetID in join-accepts; 000000 is for private networks'),
    dedup_window_ms: count(0).max(2000).default(200).describe('copies of one frame heard by several gateways within this window become one record'),
    stream: z.string().min(1).default('uplink').describe('record stream of uplinks (kafka.routes can send it to its own topic)'),
    gateway_status_stream: z.string().default('').describe("record stream for packet forwarders' stat reports; '' keeps them as metrics only"),
    reject_log_interval_s: count()
      .default(600)
      .describe('a rejection (bad MIC, replay, unknown device) is logged at most once per device and reason per interval'),
    udp: z
      .strictObject({
        host: z.string().min(1).default('0.0.0.0').describe('address the Semtech UDP listener binds to'),
        port: port.default(1700).describe("Semtech UDP port (the packet forwarder's serv_port_up and serv_port_down); 0 picks a free port"),
      })
      .prefault({}),
    devices: z.array(lorawanDevice).default([]).describe('LoRaWAN devices: ABP with session keys or OTAA with a root key'),
    devices_file: z.string().default('').describe('YAML file with more devices (a list shaped like lorawan.devices), e.g. /etc/iotgw/lorawan-devices.yaml'),
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
  lorawan,
});

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
