// The config sections of the ingress adapters: mqtt (the embedded broker), lorawan (Semtech UDP and the
// LoRaWAN devices), serial (an RN2483/RN2903 radio module) and ttn (The Things Stack's MQTT integration).
// schema.ts puts them into the config beside the other sections.
import { z } from 'zod';
import { DEFAULT_SUB_BAND, MAX_SUB_BAND, MIN_SUB_BAND, REGION_NAMES, regionHasDwellTime, regionHasSubBands } from '../ingress/lorawan/region.ts';
import { count, deviceId, flag, hex, list, passwordHash, port, topicFilter, wholeNumberMessage } from './schema-fields.ts';

/** f_cnt_up_hint is copied from logs and other servers, where counters are shown as 131,075. */
const FCNT_HINT_MESSAGE = `${wholeNumberMessage(0, 0xffff_ffff)}: the last uplink frame counter the device used`;

const mqttTls = z
  .strictObject({
    port: port.default(8883).describe('TLS listener port; the listener starts only when cert_file and key_file are set'),
    cert_file: z.string().default('').describe('PEM server certificate (chain) for the TLS listener'),
    key_file: z.string().default('').describe('PEM private key for the TLS listener'),
    ca_file: z.string().default('').describe('PEM CA bundle that signs device certificates (needed for client-certificate authentication)'),
    require_client_cert: flag.default(false).describe("devices must present a certificate signed by ca_file; the certificate's CN is the device id"),
    crl_file: z.string().default('').describe('PEM certificate revocation list(s) from the CA in ca_file: revoked device certificates are refused'),
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

export const mqtt = z
  .strictObject({
    host: z.string().min(1).default('0.0.0.0').describe('address the plain MQTT listener binds to'),
    port: port.default(1883).describe('plain MQTT (TCP) port; 0 picks a free port'),
    allow_anonymous: flag
      .default(false)
      .describe(
        'accept clients without credentials; they may publish only under devices/{client id}/, and never with the client id of a listed device. For trying iotgw out; `npm start` turns it on',
      ),
    max_payload_bytes: count()
      .max(16 * 1024 * 1024)
      .default(65536)
      .describe('largest accepted PUBLISH payload; larger ones are rejected, counted and the client disconnected'),
    max_connections: count().default(20000).describe('simultaneous MQTT connections; further ones are refused and counted'),
    max_connections_per_address: count()
      .default(500)
      .describe('simultaneous MQTT connections from one source address; raise it when many devices share one NAT address'),
    max_held_bytes: count(65536)
      .default(32 * 1024 * 1024)
      .describe('bytes of MQTT packets still arriving, over all connections together; a connection that would go past it is closed'),
    max_retained_messages: count(0).default(1000).describe('retained messages the broker keeps; more are delivered live but not kept'),
    max_retained_bytes: count(0)
      .default(8 * 1024 * 1024)
      .describe('payload bytes of all retained messages together'),
    max_sessions: count(0).default(1000).describe('persistent sessions (clean session false) with subscriptions; a new one past it is refused'),
    max_queued_messages_per_client: count(0)
      .default(1000)
      .describe('QoS 1/2 messages waiting for one persistent session; more are dropped for that subscriber and counted'),
    max_queued_bytes: count(0)
      .default(64 * 1024 * 1024)
      .describe('payload bytes waiting for all persistent sessions together'),
    connect_timeout_ms: count().default(10000).describe('a socket that has not sent CONNECT by then is closed'),
    keepalive_limit_s: count(0)
      .max(65535)
      .default(3600)
      .describe('keepalive a client must ask for: 1..this many seconds (0 and larger values are refused with return code 2); 0 here = any, including 0'),
    reject_log_interval_s: count()
      .default(60)
      .describe('a refused publish, subscribe or connection is logged at most once per client and reason per interval (always counted)'),
    tls: mqttTls,
    devices: z.array(mqttDevice).default([]).describe('device identities with password hashes'),
    clients: z.array(mqttClient).default([]).describe('non-device accounts (dashboards, services) with topic ACLs'),
  })
  .prefault({});

const lorawanDevice = z
  .strictObject({
    dev_eui: hex(16, 'the DevEUI printed on the device, 8 bytes'),
    name: deviceId.optional().describe('device id in records (end_device_ids.device_id); default eui-{dev_eui}'),
    codec: z
      .enum(['raw', 'cayenne-lpp', 'javascript'])
      .default('raw')
      .describe('payload codec producing decoded_payload: raw (none), cayenne-lpp, or javascript (formatter_file)'),
    formatter_file: z
      .string()
      .min(1)
      .optional()
      .describe('codec javascript: the file defining decodeUplink(input) (TTN device repository style), e.g. /etc/iotgw/formatters/em300-th.js'),
    dev_addr: hex(8, 'ABP DevAddr, 4 bytes').optional().describe('ABP: the device address'),
    nwk_s_key: hex(32, 'ABP NwkSKey, 16 bytes').optional().describe('ABP: network session key (secret)'),
    app_s_key: hex(32, 'ABP AppSKey, 16 bytes').optional().describe('ABP: application session key (secret)'),
    join_eui: hex(16, 'OTAA JoinEUI/AppEUI, 8 bytes').optional().describe('OTAA: JoinEUI (AppEUI in LoRaWAN 1.0)'),
    app_key: hex(32, 'OTAA AppKey, 16 bytes').optional().describe('OTAA: root key (secret)'),
    mac_version: z
      .enum(['1.0.2', '1.0.3', '1.0.4'])
      .optional()
      .describe(
        'LoRaWAN version the device implements (default 1.0.3). OTAA 1.0.4 devices count their DevNonce up from 0, so a join-request whose DevNonce is not above the last one is refused as a replay; 1.0.2/1.0.3 devices pick it at random and only reuse is refused',
      ),
    adr: flag.optional().describe('false: no network ADR for this device even when lorawan.adr.enabled (default true)'),
    class: z
      .enum(['A', 'C'])
      .default('A')
      .describe('LoRaWAN device class: A hears downlinks only after its uplinks; C listens all the time, so commands go at once (on RX2)'),
    resets_f_cnt: flag
      .optional()
      .describe(
        'ABP: the device restarts its frame counter at 0 when it reboots (no non-volatile memory); a counter back at the start begins a new count instead of being refused as a replay. Weakens replay protection for this device',
      ),
    rx_windows: z
      .strictObject({
        rx1_delay_s: count(1).max(15).optional().describe('seconds from the end of an uplink to its RX1'),
        rx1_dr_offset: count(0).max(7).optional().describe('RX1DROffset'),
        rx2_data_rate: count(0).max(15).optional().describe('RX2 data rate index'),
        rx2_frequency_hz: count(100_000_000).max(1_000_000_000).optional().describe('RX2 frequency in Hz'),
      })
      .optional()
      .describe(
        "ABP: the receive windows the device uses now (its firmware's, or what its previous network server set), where not the region's defaults; iotgw answers in them and moves the device to lorawan.rx_windows with RXParamSetupReq/RXTimingSetupReq",
      ),
    f_cnt_up_hint: z.coerce
      .number({ error: (issue) => (issue.code === 'invalid_type' ? FCNT_HINT_MESSAGE : undefined) })
      .int({ error: FCNT_HINT_MESSAGE })
      .min(0, { error: FCNT_HINT_MESSAGE })
      .max(0xffff_ffff, { error: FCNT_HINT_MESSAGE })
      .optional()
      .describe(
        'ABP: the last uplink frame counter the device is known to have used (from the previous network server, or its own display). Read only while the gateway has no counter stored for the device: the counter search starts at its upper 16 bits, and a first frame at or below it is refused as a replay',
      ),
  })
  .superRefine((device, context) => {
    if (device.f_cnt_up_hint !== undefined && device.app_key !== undefined) {
      context.addIssue({ code: 'custom', path: ['f_cnt_up_hint'], message: 'f_cnt_up_hint is for ABP devices; an OTAA device counts from 0 after each join' });
    }
    if (device.rx_windows !== undefined && device.app_key !== undefined) {
      context.addIssue({
        code: 'custom',
        path: ['rx_windows'],
        message: 'rx_windows is for ABP devices; an OTAA device gets lorawan.rx_windows in its join-accept',
      });
    }
    if (device.resets_f_cnt === true && device.app_key !== undefined) {
      context.addIssue({ code: 'custom', path: ['resets_f_cnt'], message: 'resets_f_cnt is for ABP devices; an OTAA device that reboots joins again' });
    }
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
  })
  .superRefine((device, context) => {
    if (device.codec === 'javascript' && device.formatter_file === undefined) {
      context.addIssue({
        code: 'custom',
        path: ['formatter_file'],
        message: 'codec javascript needs formatter_file: the .js file that defines decodeUplink(input)',
      });
    }
    if (device.codec !== 'javascript' && device.formatter_file !== undefined) {
      context.addIssue({
        code: 'custom',
        path: ['formatter_file'],
        message: `formatter_file is used only with codec javascript (this device has codec ${device.codec})`,
      });
    }
  });

const lorawanGateway = z.strictObject({
  eui: hex(16, 'gateway EUI, the gateway_ID of its global_conf.json, 8 bytes').describe("the gateway_ID in the packet forwarder's global_conf.json"),
  addresses: z
    .array(z.ipv4().or(z.ipv6()))
    .default([])
    .describe('source IP addresses its datagrams may come from; empty = any (the protocol has no authentication: pin them where you can)'),
});

const lorawanSessionBackup = z
  .strictObject({
    path: z
      .string()
      .default('')
      .describe(
        "file the devices' sessions (keys, frame counters, DevNonces) are backed up to, encrypted, while the gateway runs; best on another medium than the buffer's (a USB stick), e.g. /mnt/backup/iotgw-sessions.enc. '' = off",
      ),
    interval_s: count(60).default(3600).describe('seconds between backups; the first one follows shortly after start'),
    key_file: z
      .string()
      .default('')
      .describe('file holding the 32-byte AES-256-GCM key as 64 hex digits (openssl rand -hex 32), readable by the gateway only (mode 0600)'),
  })
  .refine((backup) => backup.path === '' || backup.key_file !== '', {
    path: ['key_file'],
    message: 'session_backup.path is set: give key_file too (a file with 64 hex digits, made with: umask 077; openssl rand -hex 32 > FILE)',
  })
  .prefault({});

export const lorawan = z
  .strictObject({
    enabled: flag.default(false).describe('terminate LoRaWAN: listen for Semtech UDP packet forwarders and decrypt uplinks'),
    region: z
      .enum(REGION_NAMES)
      .default('EU868')
      .describe('LoRaWAN Regional Parameters (RP002) of the devices: data rates, channels, receive windows, join-accept CFList'),
    sub_band: count(MIN_SUB_BAND)
      .max(MAX_SUB_BAND)
      .default(DEFAULT_SUB_BAND)
      .describe('US915/AU915: the sub-band (eight 125 kHz channels and one 500 kHz channel) devices are told to use; 2 = channels 8-15 and 65'),
    dwell_time_400ms: flag
      .default(false)
      .describe('AS923 (uplinks and downlinks) and AU915 (uplinks): the 400 ms dwell-time limit some countries impose, with its smaller payloads'),
    net_id: hex(6, 'NetID, 3 bytes').default('000000').describe('NetID in join-accepts; 000000 is for private networks'),
    dedup_window_ms: count(0).max(2000).default(200).describe('copies of one frame heard by several gateways within this window become one record'),
    max_frames_in_flight: count(100)
      .default(10_000)
      .describe('frames held while the buffer commits; past this, new frames are refused and counted (UDP cannot slow the radios down)'),
    stream: z.string().min(1).default('uplink').describe('record stream of uplinks (kafka.routes can send it to its own topic)'),
    gateway_status_stream: z.string().default('').describe("record stream for packet forwarders' stat reports; '' keeps them as metrics only"),
    reject_log_interval_s: count()
      .default(600)
      .describe('a rejection (bad MIC, replay, unknown device) is logged at most once per device and reason per interval'),
    f_cnt_recovery_max_tries: count(0)
      .max(65535)
      .default(64)
      .describe(
        "an ABP device with no stored frame counter (new install, lost buffer file, migration) whose MIC fails with the counter's upper 16 bits 0 is searched for: up to this many MIC checks, one per value of the upper bits, from 1 or from its f_cnt_up_hint's (64 reaches counter 4,259,839). 0 turns the search off",
      ),
    f_cnt_recovery_interval_s: count()
      .default(300)
      .describe('each such device is searched at most once per interval, so frames forged for a known DevAddr cost one MIC check each, not a search'),
    udp: z
      .strictObject({
        host: z.string().min(1).default('0.0.0.0').describe('address the Semtech UDP listener binds to'),
        port: port.default(1700).describe("Semtech UDP port (the packet forwarder's serv_port_up and serv_port_down); 0 picks a free port"),
        max_datagrams_per_second: count()
          .default(200)
          .describe('datagrams one source address may send per second (bursts of twice that); more are dropped and counted as rate-limited'),
      })
      .prefault({}),
    gateways: z
      .array(lorawanGateway)
      .default([])
      .describe(
        'the packet forwarders allowed to send (by gateway EUI, optionally pinned to source addresses); datagrams of any other gateway are dropped unanswered. Empty: any gateway, up to max_gateways at once',
      ),
    max_gateways: count()
      .default(100)
      .describe('gateways tracked at once when lorawan.gateways is empty (each has its metrics); datagrams of further ones are dropped'),
    adr: z
      .strictObject({
        enabled: flag
          .default(true)
          .describe(
            'network ADR (ChirpStack default algorithm): devices that set the ADR bit are moved to the fastest data rate and lowest TX power their link allows (LinkADRReq). Per device: lorawan.devices[].adr',
          ),
        installation_margin_db: z.coerce
          .number()
          .min(0)
          .max(30)
          .default(10)
          .describe('dB of SNR kept in reserve above what a data rate needs; more is safer on links that fade (rain, parked cars)'),
        min_data_rate: count(0).max(15).default(0).describe('lowest data rate index ADR moves a device to'),
        max_data_rate: count(0).max(15).default(15).describe("highest data rate index ADR moves a device to (capped at the region's fastest 125 kHz rate)"),
        announce_channels: flag
          .default(false)
          .describe(
            "send the region's extra channels (NewChannelReq) to devices that know only the default ones (ABP devices get no join-accept CFList); off: their firmware's channels are left as they are",
          ),
      })
      .prefault({}),
    rx_windows: z
      .strictObject({
        rx1_delay_s: count(1)
          .max(15)
          .default(1)
          .describe('seconds from the end of an uplink to RX1 (RX2 one second later); more than 1 gives a gateway on a slow backhaul time to schedule'),
        rx1_dr_offset: count(0).max(7).default(0).describe("RX1DROffset: how many data rates below the uplink's RX1 answers (the region's table)"),
        rx2_data_rate: count(0).max(15).optional().describe("RX2 data rate index (default: the region's, e.g. DR0 in EU868; TTN uses DR3 there)"),
        rx2_frequency_hz: count(100_000_000).max(1_000_000_000).optional().describe("RX2 frequency in Hz (default: the region's, e.g. 869525000 in EU868)"),
      })
      .prefault({})
      .describe(
        'the receive windows devices are told to use: OTAA devices in their join-accept, every device by RXParamSetupReq/RXTimingSetupReq until it confirms; downlinks use them from then on',
      ),
    max_duty_cycle: count(0)
      .max(15)
      .default(0)
      .describe("DutyCycleReq: devices transmit at most 1/2^n of the time (e.g. 7: 0.8 %); 0 = no limit beyond the region's"),
    dev_status_interval_s: count(0)
      .default(86_400)
      .describe(
        'each device is asked for its battery level and link margin (DevStatusReq) this often; the answer goes into its next record as iotgw.dev_status. 0 = never',
      ),
    devices: z.array(lorawanDevice).default([]).describe('LoRaWAN devices: ABP with session keys or OTAA with a root key'),
    devices_file: z.string().default('').describe('YAML file with more devices (a list shaped like lorawan.devices), e.g. /etc/iotgw/lorawan-devices.yaml'),
    session_backup: lorawanSessionBackup,
  })
  .superRefine((lorawan, context) => {
    // A value that cannot take effect in the region is a mistake worth stopping for (a US setting left behind).
    if (lorawan.sub_band !== DEFAULT_SUB_BAND && !regionHasSubBands(lorawan.region)) {
      context.addIssue({
        code: 'custom',
        path: ['sub_band'],
        message: `${lorawan.region} has no sub-bands (only US915 and AU915 do): remove sub_band or leave it at ${DEFAULT_SUB_BAND}`,
      });
    }
    if (lorawan.dwell_time_400ms && !regionHasDwellTime(lorawan.region)) {
      context.addIssue({
        code: 'custom',
        path: ['dwell_time_400ms'],
        message: `${lorawan.region} has no dwell-time setting (only AS923-1..4 and AU915 do): set dwell_time_400ms to false`,
      });
    }
  })
  .prefault({});

const serialRaw = z
  .strictObject({
    stream: z.string().min(1).default('radio').describe('record stream of raw (non-LoRaWAN) frames'),
    key_offset: count(0).max(254).default(0).describe('byte offset of the node id inside a raw frame'),
    key_length: count(1).max(32).default(2).describe('bytes of the node id; the record key is key_prefix + their lower-case hex'),
    key_prefix: z.string().default('node-').describe('put before the hex node id in the record key'),
    codec: z
      .enum(['raw', 'cayenne-lpp', 'javascript'])
      .default('raw')
      .describe('decodes the bytes after the node id into decoded_payload (called with fPort 1)'),
    formatter_file: z.string().default('').describe("for codec 'javascript': the file defining decodeUplink(input)"),
  })
  .refine((raw) => raw.codec !== 'javascript' || raw.formatter_file !== '', "codec 'javascript' needs formatter_file")
  .prefault({});

export const serial = z
  .strictObject({
    enabled: flag.default(false).describe('receive LoRa frames from a Microchip RN2483/RN2903 radio module on a serial port'),
    path: z.string().min(1).default('/dev/ttyUSB0').describe("serial port of the module: a USB adapter (/dev/ttyUSB0) or a Raspberry Pi's UART (/dev/serial0)"),
    baud_rate: count(1200).default(57600).describe('the RN2483 talks 57600 8N1'),
    radio_id: hex(16, "this radio's id in LoRaWAN rx_metadata, 8 bytes")
      .default('0000000000000001')
      .describe('gateway EUI the serial radio reports in LoRaWAN records (rx_metadata); make it unique per site'),
    frequency_hz: count(100_000_000).max(1_000_000_000).default(868_100_000).describe('receive frequency (868100000 = EU868 channel 0; US915 e.g. 902300000)'),
    spreading_factor: count(7).max(12).default(7).describe('LoRa spreading factor 7..12'),
    bandwidth_khz: z.coerce
      .number()
      .refine((khz) => khz === 125 || khz === 250 || khz === 500, 'expected 125, 250 or 500')
      .default(125)
      .transform((khz) => khz as 125 | 250 | 500)
      .describe('LoRa bandwidth in kHz: 125, 250 or 500'),
    coding_rate: z.enum(['4/5', '4/6', '4/7', '4/8']).default('4/5').describe('LoRa coding rate'),
    sync_word: z
      .string()
      .regex(/^[0-9A-Fa-f]{1,2}$/, 'expected one byte in hex, e.g. 34')
      .default('34')
      .describe('LoRa sync word in hex: 34 for LoRaWAN public networks, 12 for private ones'),
    frames: z
      .enum(['lorawan', 'raw', 'mixed'])
      .default('lorawan')
      .describe(
        'lorawan: every frame is a LoRaWAN uplink (needs lorawan.enabled); raw: point-to-point frames keyed by serial.raw; mixed: frames of configured LoRaWAN devices go to LoRaWAN, the rest are raw',
      ),
    raw: serialRaw,
    command_timeout_ms: count(100).default(2000).describe('a radio command without an answer by then means the module is gone: the port is reopened'),
    reopen_max_delay_ms: count(1000).default(30000).describe('the port is reopened after 1 s, doubling up to this delay while it stays unavailable'),
    reject_log_interval_s: count()
      .default(600)
      .describe('a rejected frame or an ignored line from the module is logged at most once per reason per interval (always counted)'),
  })
  .prefault({});

const ttnCodec = {
  codec: z
    .enum(['raw', 'cayenne-lpp', 'javascript'])
    .default('raw')
    .describe('local payload codec for uplinks that arrive without decoded_payload: raw (none), cayenne-lpp, or javascript (formatter_file)'),
  formatter_file: z.string().default('').describe('codec javascript: file defining decodeUplink(input), as in the TTS console'),
};

const ttnApplication = z.strictObject({
  username: z.string().min(1).describe('MQTT username: {application id}@{tenant id} (tenant ttn on The Things Network)'),
  password: z.string().default('').describe('the API key (NNSXS....); prefer password_file. Never logged'),
  password_file: z.string().default('').describe('file holding the API key, e.g. ${CREDENTIALS_DIRECTORY}/ttn-api-key'),
  topics: list(topicFilter).default([]).describe("uplink topic filters; {username} is replaced; [] = ['v3/{username}/devices/+/up']"),
  ...ttnCodec,
});

export const ttn = z
  .strictObject({
    enabled: flag.default(false).describe('receive uplinks from The Things Network / The Things Stack v3 over its MQTT server integration'),
    url: z
      .string()
      .regex(/^(mqtts?|tcp|tls|ssl):\/\/[^/\s]+$/, 'expected mqtts://host:8883 or mqtt://host:1883')
      .default('mqtts://eu1.cloud.thethings.network:8883')
      .describe('the TTS MQTT server (TTS console: Integrations -> MQTT); shared by every application'),
    username: z.string().default('').describe('MQTT username {application id}@{tenant id}; required when enabled'),
    password: z.string().default('').describe('the API key (env IOTGW__TTN__PASSWORD); prefer password_file. Never logged'),
    password_file: z
      .string()
      .default('')
      .describe('file holding the API key, read at start (e.g. ${CREDENTIALS_DIRECTORY}/ttn-api-key); the key needs "Read application traffic"'),
    topics: list(topicFilter).default(['v3/{username}/devices/+/up']).describe('uplink topic filters; {username} is replaced by the username'),
    ca_file: z.string().default('').describe('PEM CA bundle for a TTS server with a private CA (default: the system store)'),
    stream: z.string().min(1).default('uplink').describe('record stream of TTN uplinks (the same as lorawan.stream: one consumer for both)'),
    events: z
      .partialRecord(z.enum(['join', 'down/queued', 'down/sent', 'down/ack', 'down/nack', 'down/failed', 'service/data', 'location/solved']), z.string())
      .default({})
      .describe("event -> record stream, e.g. join: ttn-joins; '' or absent = not subscribed"),
    ...ttnCodec,
    reconnect_max_ms: count(1000).default(60_000).describe('longest wait between reconnects; the wait starts at 1 s and doubles, with jitter'),
    max_message_bytes: count(1024)
      .default(256 * 1024)
      .describe('larger TTS messages are rejected and counted'),
    reject_log_interval_s: count().default(600).describe('a rejected message is logged at most once per reason per interval (always counted)'),
    applications: z.array(ttnApplication).default([]).describe('more TTS applications on the same url, each its own MQTT connection'),
  })
  .superRefine((ttn, context) => {
    if (!ttn.enabled) return;
    const entries = [
      { path: [] as string[], ...ttn },
      ...ttn.applications.map((application, index) => ({ path: ['applications', String(index)], ...application })),
    ];
    for (const entry of entries) {
      if (entry.username === '')
        context.addIssue({ code: 'custom', path: [...entry.path, 'username'], message: 'required when ttn.enabled: {application id}@{tenant id}' });
      else if (!/^[^@\s/+#]+@[^@\s/+#]+$/.test(entry.username))
        context.addIssue({ code: 'custom', path: [...entry.path, 'username'], message: 'expected {application id}@{tenant id}, e.g. city-meters@ttn' });
      if (entry.password === '' && entry.password_file === '')
        context.addIssue({
          code: 'custom',
          path: [...entry.path, 'password_file'],
          message: 'give the file holding the API key (or password, e.g. from IOTGW__TTN__PASSWORD)',
        });
      if (entry.codec === 'javascript' && entry.formatter_file === '')
        context.addIssue({ code: 'custom', path: [...entry.path, 'formatter_file'], message: 'codec javascript needs formatter_file' });
    }
    const usernames = entries.map((entry) => entry.username);
    if (new Set(usernames).size !== usernames.length) context.addIssue({ code: 'custom', path: ['applications'], message: 'an application is listed twice' });
  })
  .prefault({});
