// What the fuzzer feeds: every decoder that reads bytes from outside, with the invariants each must keep for
// any input. A target throws only when one breaks (a decoder that throws, a result of the wrong shape, a
// server that stops answering); bad input itself must come back as a rejection with a reason.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as connectTcp } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { createTtsFleet } from '../../firmware-sim/tts-traffic.ts';
import { type KafkaCommandMessage, parseCommandMessage } from '../../src/commands/command-message.ts';
import { ConfigError } from '../../src/errors.ts';
import type { Accept, AcceptThen } from '../../src/ingress/ingress.ts';
import { verifyDataFrameMic, cryptFrmPayload } from '../../src/ingress/lorawan/frame-crypto.ts';
import { parsePhyPayload } from '../../src/ingress/lorawan/phy-payload.ts';
import { createMqttIngress, type MqttIngress } from '../../src/ingress/mqtt-broker/broker.ts';
import { parseDatagram } from '../../src/ingress/semtech-udp/parse-datagram.ts';
import { createRn2483Radio, type Rn2483Radio } from '../../src/ingress/serial-radio/rn2483-radio.ts';
import { parseTtsEvent, parseTtsUplink } from '../../src/ingress/ttn/tts-uplink.ts';
import { loadConfig } from '../../src/config/load.ts';
import { createLogger } from '../../src/core/log.ts';
import { createMetrics } from '../../src/core/metrics.ts';
import { isDeviceId } from '../../src/record/device-id.ts';
import { createRouter, readTimestampField } from '../../src/record/routes.ts';
import { connectPacket, mqttPacket, mqttString, publishPacket } from '../helpers/mqtt-wire.ts';
import { mockRadio } from '../helpers/serial-radio-mock.ts';
import type { FuzzTarget } from './fuzz-engine.ts';
import { macCommandsTarget } from './mac-commands-target.ts';
import { referenceReadTimestampField } from '../helpers/reference-event-time.ts';

interface Vector {
  readonly id: string;
  readonly kind: string;
  readonly request_hex?: string;
  readonly phy_payload_hex?: string;
  readonly payload?: unknown;
  readonly transcript?: readonly { readonly dir: string; readonly line: string }[];
}
const vectors = JSON.parse(readFileSync(new URL('../fixtures/lorawan/lorawan-vectors.json', import.meta.url), 'utf8')) as Vector[];
const silentLog = createLogger({ level: 'silent', gatewayId: 'fuzz' });

function fail(message: string): never {
  throw new Error(`invariant broken: ${message}`);
}

const semtechUdp: FuzzTarget = {
  name: 'semtech-udp',
  description: 'Semtech UDP datagrams (PUSH_DATA, PULL_DATA, TX_ACK) into parseDatagram, as from any UDP sender',
  coverage: ['src/ingress/semtech-udp/'],
  maxLength: 4096,
  dictionary: [
    '{"rxpk":[',
    '{"stat":',
    '"data":"',
    '"tmst":',
    '"freq":',
    '"datr":"SF7BW125"',
    '"codr":"4/5"',
    '"modu":"LORA"',
    '"time":"',
    '"txpk_ack":{"error":"',
    '}]}',
    'null',
    '1e308',
    '-0',
  ],
  seeds: () => vectors.filter((vector) => vector.request_hex !== undefined).map((vector) => Buffer.from(vector.request_hex as string, 'hex')),
  run(input) {
    const parsed = parseDatagram(input);
    if (!parsed.ok && (typeof parsed.reason !== 'string' || typeof parsed.message !== 'string')) fail('a refusal without reason and message');
  },
};

const PHY_KEY = Buffer.from('44024241ed4ce9a68c6a8bc055233fd3', 'hex');

const phyPayload: FuzzTarget = {
  name: 'phy-payload',
  description: 'LoRaWAN PHYPayloads (from a radio) into parsePhyPayload, then MIC and decryption of what parses as a data frame',
  coverage: ['src/ingress/lorawan/'],
  maxLength: 300,
  seeds: () => vectors.filter((vector) => vector.phy_payload_hex !== undefined).map((vector) => Buffer.from(vector.phy_payload_hex as string, 'hex')),
  run(input) {
    const parsed = parsePhyPayload(input);
    if (!parsed.ok) {
      if (typeof parsed.reason !== 'string') fail('a refusal without a reason');
      return;
    }
    const { frame } = parsed;
    if (frame.kind === 'data') {
      verifyDataFrameMic(PHY_KEY, frame.direction, frame.devAddr, frame.fcnt16, frame.micInput, frame.mic);
      cryptFrmPayload(PHY_KEY, frame.direction, frame.devAddr, frame.fcnt16, frame.frmPayload);
      if (frame.mic.length !== 4 || frame.devAddr.length !== 8) fail('a data frame with a MIC or DevAddr of the wrong size');
    }
  },
};

const ttnJson: FuzzTarget = {
  name: 'ttn-json',
  description: 'The Things Stack v3 MQTT messages (uplinks and events) into parseTtsUplink and parseTtsEvent',
  coverage: ['src/ingress/ttn/tts-uplink.ts', 'src/shared/json-depth.ts'],
  maxLength: 16_384,
  dictionary: [
    '"end_device_ids":{',
    '"device_id":"',
    '"dev_eui":"',
    '"application_ids":{"application_id":"',
    '"uplink_message":{',
    '"f_cnt":',
    '"f_port":',
    '"frm_payload":"',
    '"decoded_payload":{',
    '"session_key_id":"',
    '"received_at":"',
    '"correlation_ids":[',
    '4294967295',
    '4294967296',
    '-1',
    '[[[[[[[[',
    '"\\u0000"',
  ],
  seeds() {
    const fleet = createTtsFleet('fuzz-app', { devices: 4, seed: 7 });
    const generated = fleet.devices.map((device) => Buffer.from(JSON.stringify(fleet.nextUplink(device, 1_760_000_000_000))));
    const documented = vectors
      .filter((vector) => vector.kind === 'tts_v3_mqtt_message' && vector.payload !== undefined)
      .map((vector) => Buffer.from(JSON.stringify(vector.payload)));
    return [...generated, ...documented];
  },
  run(input) {
    for (const parsed of [parseTtsUplink(input, 262_144), parseTtsEvent(input, 262_144)]) {
      if (!parsed.ok && typeof parsed.reason !== 'string') fail('a refusal without a reason');
    }
  },
};

/** The config loader reads a file: each input is written to one, which the loader must accept or refuse with a ConfigError. */
let configDir = '';
const config: FuzzTarget = {
  name: 'config',
  description: 'iotgw.yaml texts into the config loader: a Config or a ConfigError naming the key, nothing else',
  coverage: ['src/config/'],
  maxLength: 8192,
  dictionary: [
    'mqtt:\n  ',
    'kafka:\n  ',
    'buffer:\n  ',
    'lorawan:\n  ',
    'ttn:\n  ',
    'serial:\n  ',
    'devices:\n    - ',
    'port: ',
    'brokers: [',
    'max_payload_bytes: ',
    '&a ',
    '*a',
    '!!binary ',
    '---\n',
    '{',
    '}',
    '[',
    ']',
    ': ',
    '\n',
    '"',
  ],
  seeds: () => [
    readFileSync(fileURLToPath(new URL('../../config/iotgw.example.yaml', import.meta.url))),
    Buffer.from('mqtt:\n  port: 1884\nkafka:\n  brokers: [a:9092]\n'),
    Buffer.from(
      'lorawan:\n  enabled: true\n  devices:\n    - dev_eui: 0004a30b001c0530\n      dev_addr: 26011bda\n      nwk_s_key: 2b7e151628aed2a6abf7158809cf4f3c\n      app_s_key: 000102030405060708090a0b0c0d0e0f\n',
    ),
  ],
  async setup() {
    configDir = mkdtempSync(join(tmpdir(), 'iotgw-fuzz-config-'));
  },
  async teardown() {
    rmSync(configDir, { recursive: true, force: true });
  },
  run(input) {
    const path = join(configDir, 'iotgw.yaml');
    writeFileSync(path, input);
    try {
      loadConfig({ path, env: {} });
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
    }
  },
};

/** A fresh RN2483 driver per input, set up against the emulated module; the input is what the module "sends". */
let radioHarness: ReturnType<typeof mockRadio> | null = null;
const rn2483: FuzzTarget = {
  name: 'rn2483',
  description: 'bytes from an RN2483 radio module on the serial line into the driver (line splitting, radio_rx, answers)',
  coverage: ['src/ingress/serial-radio/'],
  maxLength: 2048,
  dictionary: ['radio_rx  ', 'radio_err\r\n', 'ok\r\n', 'busy\r\n', 'invalid_param\r\n', '4294967245\r\n', '-7\r\n', '\r\n', 'RN2483 1.0.5 Oct 31 2018\r\n'],
  seeds: () => [Buffer.from('radio_rx  48656C6C6F\r\n'), Buffer.from('radio_err\r\n'), Buffer.from('ok\r\nbusy\r\n'), Buffer.from('radio_rx 00ff\r\n-7\r\n')],
  async setup() {
    radioHarness = mockRadio();
  },
  async run(input) {
    const harness = radioHarness ?? fail('no harness');
    const stream = await harness.openStream();
    let radio: Rn2483Radio | null = null;
    try {
      radio = createRn2483Radio(
        stream,
        { settings: { frequencyHz: 868_100_000, spreadingFactor: 7, bandwidthKhz: 125, codingRate: '4/5', syncWord: '34' }, commandTimeoutMs: 200 },
        { log: silentLog, events: { onFrame: () => undefined, onRadioError: () => undefined, onLineProblem: () => undefined, onFailure: () => undefined } },
      );
      await radio.start().catch(() => undefined);
      const binding = stream.port as unknown as { emitData(data: Buffer): void };
      binding.emitData(input);
      for (let turn = 0; turn < 5; turn++) await nextTurn();
    } finally {
      await radio?.stop().catch(() => undefined);
      await new Promise<void>((resolve) => (stream.isOpen ? stream.close(() => resolve()) : resolve()));
    }
  },
};

/** The real MQTT ingress (aedes, the gateway's hooks and guards) on a loopback port; each input is one connection's bytes. */
let mqttIngress: MqttIngress | null = null;
let mqttPort = 0;
let mqttInputs = 0;
const CONNECT = connectPacket({ clientId: 'em-1' });
const PUBLISH_QOS0 = publishPacket('devices/em-1/telemetry', Buffer.from('{}'), 0);
const PUBLISH_QOS1 = publishPacket('devices/em-1/telemetry', Buffer.from('{"n":1}'), 1);
const SUBSCRIBE = mqttPacket(0x82, Buffer.from([0, 1]), mqttString('devices/em-1/#'), Buffer.from([1]));
const PINGREQ = Buffer.from([0xc0, 0]);
const DISCONNECT = Buffer.from([0xe0, 0]);
const mqttAedes: FuzzTarget = {
  name: 'mqtt',
  description: 'MQTT 3.1.1 byte streams (one connection each) into the gateway broker: mqtt-packet, aedes and the gateway hooks',
  coverage: ['node_modules/aedes/', 'node_modules/mqtt-packet/', 'src/ingress/mqtt-broker/'],
  maxLength: 4096,
  dictionary: [CONNECT, PUBLISH_QOS0, PUBLISH_QOS1, SUBSCRIBE, PINGREQ, DISCONNECT, Buffer.from([0xff, 0xff, 0xff, 0x7f]), 'devices/', '$SYS/', '#', '+'],
  seeds: () => [
    CONNECT,
    Buffer.concat([CONNECT, PUBLISH_QOS0]),
    Buffer.concat([CONNECT, PUBLISH_QOS1, PINGREQ, DISCONNECT]),
    Buffer.concat([CONNECT, SUBSCRIBE]),
  ],
  async setup() {
    const accept: Accept = async (records) => ({ ok: true, ids: records.map((_, index) => String(index)) }) as never;
    const acceptThen: AcceptThen = (records, state, done) => void accept(records, state).then(done);
    mqttIngress = createMqttIngress(
      {
        host: '127.0.0.1',
        port: 0,
        allowAnonymous: true,
        maxPayloadBytes: 1024,
        maxConnections: 1000,
        maxConnectionsPerAddress: 1000,
        maxHeldBytes: 1024 * 1024,
        persistence: { maxRetainedMessages: 100, maxRetainedBytes: 65536, maxSessions: 100, maxQueuedPerClient: 100, maxQueuedBytes: 65536 },
        connectTimeoutMs: 1000,
        keepaliveLimitS: 3600,
        devices: [],
        clients: [],
        tls: null,
      },
      { accept, acceptThen, router: createRouter('fuzz', []), log: silentLog, metrics: createMetrics({ processMetrics: false }) },
    );
    await mqttIngress.start();
    mqttPort = mqttIngress.address().tcp.port;
  },
  async teardown() {
    await mqttIngress?.stop();
    mqttIngress = null;
  },
  async run(input) {
    // The input, then end of stream: aedes reads what came and closes its side; the close is the end of the run.
    await new Promise<void>((resolve) => {
      const socket = connectTcp({ port: mqttPort, host: '127.0.0.1' });
      const timer = setTimeout(() => socket.destroy(), 1_000);
      socket.on('error', () => undefined);
      socket.on('data', () => undefined);
      socket.on('close', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.end(input);
    });
    // Now and then: the broker still answers a well-formed CONNECT.
    mqttInputs += 1;
    if (mqttInputs % 200 === 0) {
      const answered = await new Promise<boolean>((resolve) => {
        const socket = connectTcp({ port: mqttPort, host: '127.0.0.1' });
        const timer = setTimeout(() => resolve(false), 2_000);
        socket.on('error', () => resolve(false));
        socket.on('data', (data) => {
          clearTimeout(timer);
          resolve(data[0] === 0x20 && data[3] === 0);
          socket.destroy();
        });
        socket.write(CONNECT);
      });
      if (!answered) fail('the broker stopped answering a valid CONNECT');
    }
  },
};

/**
 * One input is one Kafka message: `key NUL command-id NUL command-name NUL value`. With fewer NULs the last
 * part is the value and the parts before it are the key, then the command-id header (so 0 NULs: the whole
 * input is the value, no key, no headers). An empty key is a null key; an empty header part is no header.
 */
function commandMessageFromInput(input: Buffer): KafkaCommandMessage {
  const parts: Buffer[] = [];
  let rest = input;
  for (let split = 0; split < 3; split++) {
    const at = rest.indexOf(0);
    if (at === -1) break;
    parts.push(rest.subarray(0, at));
    rest = rest.subarray(at + 1);
  }
  const [key, commandId, name] = parts;
  const headers: Record<string, Buffer> = {};
  if (commandId !== undefined && commandId.length > 0) headers['command-id'] = commandId;
  if (name !== undefined && name.length > 0) headers['command-name'] = name;
  return { key: key === undefined || key.length === 0 ? null : key, value: rest, headers };
}

/** The inverse of commandMessageFromInput, for seeds and corpus files. */
function commandMessageInput(key: string, commandId: string, name: string, value: string | Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${key}\0${commandId}\0${name}\0`), Buffer.from(value)]);
}

const COMMAND_LIMITS = { maxPayloadBytes: 256, defaultTtlMs: 600_000 };
const COMMAND_NOW_MS = Date.parse('2025-03-01T12:00:00Z');
const COMMAND_ID = /^[\x21-\x7e]{1,128}$/;
const COMMAND_NAME = /^[A-Za-z0-9._-]{1,64}$/;
/** A refusal's message goes into a receipt and a log line: it may quote the input, but only a bounded piece. */
const MAX_REFUSAL_MESSAGE = 1024;

const commandMessage: FuzzTarget = {
  name: 'command-message',
  description: 'Kafka messages on commands.topic (key, command-id and command-name headers, value) into parseCommandMessage',
  coverage: ['src/commands/command-message.ts'],
  maxLength: 16_384,
  dictionary: [
    '{"command_id":"',
    '"device_id":"',
    '"name":"',
    '"payload":',
    '"payload_hex":"',
    '"payload_base64":"',
    '"port":',
    '"confirmed":',
    '"expires_at":',
    '"ttl_s":',
    '"2025-03-01T12:00:00Z"',
    '1e308',
    '-0',
    'null',
    'true',
    '[[[[[[[[[[[[[[[[',
    '{"a":{"a":{"a":{',
    '"\\u0000"',
    '==',
  ],
  seeds: () => [
    commandMessageInput('lamp-7', 'c-1', 'dim', Buffer.from([1, 2, 0xff])),
    commandMessageInput('lamp-7', '', '', '{"command_id":"c-1","name":"dim","payload":{"level":40},"port":10,"confirmed":true,"ttl_s":600}'),
    commandMessageInput('', 'c-2', '', '{"device_id":"0004a30b001c0530","payload_hex":"00ff","expires_at":"2025-03-01T13:00:00Z"}'),
    commandMessageInput('lamp-7', 'c-3', 'reboot', '{"command_id":"c-3","payload_base64":"AQID","expires_at":1740831000000}'),
    commandMessageInput('lamp-7', 'c-4', '', '{"level":40}'),
    commandMessageInput('lamp-7', 'c-5', '', '{"command_id":"c-6","payload":"x"}'),
    commandMessageInput('lamp-8', '', '', '{"command_id":"c-7","device_id":"lamp-9","payload":[1]}'),
    commandMessageInput('lamp-7', '', '', '{"command_id":"c-8","payload":"x","payload_hex":"0","colour":1}'),
    commandMessageInput('lamp-7', '', '', '{"command_id":"c-9","payload_hex":"0g","port":0,"confirmed":"yes","ttl_s":-1}'),
    commandMessageInput('lamp-7', '', '', '{"command_id":"c-10","payload_base64":"a$==","expires_at":"soon","ttl_s":5}'),
    commandMessageInput('lamp-7', '', '', '{"command_id":"c-11","payload":5,"name":7}'),
    commandMessageInput('lamp 7', 'c 12', 'a/b', 'on'),
    commandMessageInput('lamp-7', 'c-13', '', ''),
    Buffer.from('{"command_id":"c-14",'),
  ],
  run(input) {
    const result = parseCommandMessage(commandMessageFromInput(input), COMMAND_LIMITS, COMMAND_NOW_MS);
    if (result.ok) {
      const { command } = result;
      if (!Buffer.isBuffer(command.payload) || command.payload.length > COMMAND_LIMITS.maxPayloadBytes) fail('a payload over the limit');
      if (!COMMAND_ID.test(command.id)) fail(`an invalid command id ${JSON.stringify(command.id)}`);
      if (!isDeviceId(command.deviceId)) fail(`an invalid device id ${JSON.stringify(command.deviceId)}`);
      if (!COMMAND_NAME.test(command.name)) fail(`an invalid name ${JSON.stringify(command.name)}`);
      if (command.fport !== null && !(Number.isInteger(command.fport) && command.fport >= 1 && command.fport <= 223)) fail(`fport ${command.fport}`);
      if (typeof command.confirmed !== 'boolean') fail('confirmed not a boolean');
      if (!Number.isFinite(command.expiresAtMs)) fail(`expiresAtMs ${command.expiresAtMs}`);
      return;
    }
    if (typeof result.reason !== 'string' || typeof result.message !== 'string' || result.message.length === 0) fail('a refusal without reason and message');
    if (result.message.length > MAX_REFUSAL_MESSAGE) fail(`a refusal message of ${result.message.length} characters`);
    if (result.commandId !== null && !COMMAND_ID.test(result.commandId)) fail(`a refusal naming an invalid command id ${JSON.stringify(result.commandId)}`);
    if (result.deviceId !== null && !isDeviceId(result.deviceId)) fail(`a refusal naming an invalid device id ${JSON.stringify(result.deviceId)}`);
  },
};

/** Fields every payload is read for: plain, nested, array steps, and keys that name prototype properties. */
const EVENT_TIME_FIELDS = ['ts', 'meta.time', 'a.b', 'a.0', 'a.length', 'length', '__proto__', 'a.__proto__.length', 'constructor', ''];

/**
 * One input is a payload, read for each of EVENT_TIME_FIELDS; or `field NUL payload`, read for that field too
 * (a NUL makes any payload invalid JSON, so nothing is lost by splitting there).
 */
const eventTime: FuzzTarget = {
  name: 'event-time',
  description: "MQTT payloads into readTimestampField (a route's event_time_field): the JSON.parse implementation's result, always",
  coverage: ['src/record/json-field.ts', 'src/record/routes.ts'],
  maxLength: 4096,
  dictionary: [
    '{"ts":',
    '"ts":',
    '"t\\u0073":',
    '"meta":{"time":',
    '"a":{"b":',
    '"a":[',
    '"2026-12-06T15:00:00.123Z"',
    '"Sun, 06 Dec 2026 15:00:00 GMT"',
    '1796569200',
    '1796569200123',
    '1796569200.5e0',
    '-0',
    '1e400',
    'true',
    'null',
    '"\\u00e9\\ud800\\n"',
    '"__proto__":',
    '"length":',
    Buffer.from([0xef, 0xbb, 0xbf]),
    Buffer.from([0xed, 0xa0, 0x80]),
    'a.b\0',
  ],
  seeds: () => [
    Buffer.from('{"ts":"2026-12-06T15:00:00.123Z","kwh":12345.67,"v":230.1,"a":1.25,"pf":0.98,"seq":123456}'),
    Buffer.from('{"seq":1,"meta":{"fw":"1.2","time":1796569200},"a":{"b":1796569200123,"c":[1,2]},"ts":1796569200.25}'),
    Buffer.from('{"a":[1796569200,{"b":"x"}],"t\\u0073":"Sun, 06 Dec 2026 15:00:00 GMT","ts":null}'),
    Buffer.from('\ufeff [ {"__proto__": 5, "constructor": {"x": true}}, -0.0e-1, "\\ud83d\\ude00" ]\r\n'),
    Buffer.from('meta.time\0{"meta":{"time":"2026-12-06"},"meta":{"time":false}}'),
  ],
  run(input) {
    const nul = input.indexOf(0);
    const payload = nul === -1 ? input : input.subarray(nul + 1);
    const fields = nul === -1 ? EVENT_TIME_FIELDS : [input.subarray(0, nul).toString('utf8'), ...EVENT_TIME_FIELDS];
    for (const field of fields) {
      const actual = readTimestampField(payload, field);
      const expected = referenceReadTimestampField(payload, field);
      if (!Object.is(actual, expected)) fail(`field ${JSON.stringify(field)}: ${actual}, where JSON.parse gives ${expected}`);
    }
  },
};

export const FUZZ_TARGETS: readonly FuzzTarget[] = [semtechUdp, phyPayload, macCommandsTarget, ttnJson, commandMessage, eventTime, config, rn2483, mqttAedes];
