// parseCommandMessage, the pure parser of a Kafka message on commands.topic: every accepted shape (raw bytes
// with headers, an envelope with each kind of payload, ids from headers, fields or both) gives the command
// it describes; every refusal gives its reason, a message saying what is expected, and the ids that could be
// read, so the rejected receipt reaches the sender under the right key and command id.
import assert from 'node:assert/strict';
import { deviceKey } from '../../src/commands/command.ts';
import { test } from 'node:test';
import { type KafkaCommandMessage, type ParsedCommand, type ParseLimits, parseCommandMessage } from '../../src/commands/command-message.ts';

const NOW = Date.parse('2025-03-01T12:00:00Z');
const LIMITS: ParseLimits = { maxPayloadBytes: 64, defaultTtlMs: 600_000 };

type Headers = NonNullable<KafkaCommandMessage['headers']>;

/** A message as kafkajs hands it over: Buffers for key, value and header values. */
function message(value: unknown, key: string | null = 'lamp-7', headers: Headers = {}): KafkaCommandMessage {
  const bytes = value === null ? null : Buffer.isBuffer(value) ? value : Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));
  return { key: key === null ? null : Buffer.from(key), value: bytes, headers };
}

const id = (commandId: string): Headers => ({ 'command-id': Buffer.from(commandId) });

function parse(input: KafkaCommandMessage): ReturnType<typeof parseCommandMessage> {
  return parseCommandMessage(input, LIMITS, NOW);
}

const command = (fields: Partial<ParsedCommand>): ParsedCommand => ({
  id: 'c-1',
  deviceId: 'lamp-7',
  name: 'command',
  payload: Buffer.alloc(0),
  structured: false,
  fport: null,
  confirmed: false,
  expiresAtMs: NOW + LIMITS.defaultTtlMs,
  ...fields,
});

const ID_128 = 'x'.repeat(128);
const DEVICE_128 = 'd'.repeat(128);

test('each accepted shape gives the command it describes', () => {
  const cases: [string, KafkaCommandMessage, ParsedCommand][] = [
    [
      'raw bytes with command-id and command-name headers',
      message(Buffer.from([0x01, 0x02, 0xff]), 'lamp-7', { 'command-id': Buffer.from('c-1'), 'command-name': Buffer.from('dim') }),
      command({ name: 'dim', payload: Buffer.from([0x01, 0x02, 0xff]) }),
    ],
    ['raw bytes without a command-name header: named command', message('on', 'lamp-7', id('c-1')), command({ payload: Buffer.from('on') })],
    [
      'header values as strings and as arrays (the first counts)',
      message('on', 'lamp-7', { 'command-id': ['c-1', 'c-2'], 'command-name': 'switch' }),
      command({ name: 'switch', payload: Buffer.from('on') }),
    ],
    [
      'a JSON object without envelope fields is a raw payload, byte for byte',
      message('{ "level": 40 }', 'lamp-7', id('c-1')),
      command({ payload: Buffer.from('{ "level": 40 }') }),
    ],
    ['a JSON array is a raw payload', message('[1,2]', 'lamp-7', id('c-1')), command({ payload: Buffer.from('[1,2]') })],
    [
      'text that starts with { beyond the first 16 bytes is a raw payload, not an envelope',
      message(`${' '.repeat(20)}{"command_id":"c-2","payload":"x"}`, 'lamp-7', id('c-1')),
      command({ payload: Buffer.from(`${' '.repeat(20)}{"command_id":"c-2","payload":"x"}`) }),
    ],
    [
      'envelope with an object payload: sent as JSON text; its name wins over the header',
      message({ command_id: 'c-1', name: 'dim', payload: { level: 40 } }, 'lamp-7', { 'command-name': Buffer.from('ignored') }),
      command({ name: 'dim', payload: Buffer.from('{"level":40}'), structured: true }),
    ],
    ['envelope with an array payload', message({ command_id: 'c-1', payload: [1, 'a'] }), command({ payload: Buffer.from('[1,"a"]'), structured: true })],
    ['envelope with a string payload: its UTF-8 bytes', message({ command_id: 'c-1', payload: 'zäh' }), command({ payload: Buffer.from('zäh', 'utf8') })],
    ['envelope with payload_hex (either case)', message({ command_id: 'c-1', payload_hex: '00ffAb' }), command({ payload: Buffer.from([0x00, 0xff, 0xab]) })],
    ['envelope with an empty payload_hex: a command without bytes', message({ command_id: 'c-1', payload_hex: '' }), command({ payload: Buffer.alloc(0) })],
    ['envelope with payload_base64', message({ command_id: 'c-1', payload_base64: 'AQID/w==' }), command({ payload: Buffer.from([1, 2, 3, 0xff]) })],
    ['envelope after leading whitespace', message(`  \n{"command_id":"c-1","payload":"x"}`), command({ payload: Buffer.from('x') })],
    ['command_id field equal to the header', message({ command_id: 'c-1', payload: 'x' }, 'lamp-7', id('c-1')), command({ payload: Buffer.from('x') })],
    ['command id from the header only, envelope without command_id', message({ payload: 'x' }, 'lamp-7', id('c-1')), command({ payload: Buffer.from('x') })],
    ['device_id field equal to the key', message({ command_id: 'c-1', device_id: 'lamp-7', payload: 'x' }), command({ payload: Buffer.from('x') })],
    ['device_id field and no key', message({ command_id: 'c-1', device_id: 'lamp-7', payload: 'x' }, null), command({ payload: Buffer.from('x') })],
    ['device_id field and an empty key', message({ command_id: 'c-1', device_id: 'lamp-7', payload: 'x' }, ''), command({ payload: Buffer.from('x') })],
    [
      'ids at their longest (128 characters) and with every allowed character',
      message({ command_id: ID_128, payload: 'x' }, DEVICE_128),
      command({ id: ID_128, deviceId: DEVICE_128, payload: Buffer.from('x') }),
    ],
    [
      'printable ASCII command id, device id with . _ : -',
      message({ command_id: '!~{}#/"', payload: 'x' }, 'a.B_9:z-0'),
      command({ id: '!~{}#/"', deviceId: 'a.B_9:z-0', payload: Buffer.from('x') }),
    ],
    [
      'port 1, confirmed',
      message({ command_id: 'c-1', payload: 'x', port: 1, confirmed: true }),
      command({ payload: Buffer.from('x'), fport: 1, confirmed: true }),
    ],
    ['port 223, not confirmed', message({ command_id: 'c-1', payload: 'x', port: 223, confirmed: false }), command({ payload: Buffer.from('x'), fport: 223 })],
    ['ttl_s', message({ command_id: 'c-1', payload: 'x', ttl_s: 30 }), command({ payload: Buffer.from('x'), expiresAtMs: NOW + 30_000 })],
    ['fractional ttl_s', message({ command_id: 'c-1', payload: 'x', ttl_s: 1.5 }), command({ payload: Buffer.from('x'), expiresAtMs: NOW + 1_500 })],
    [
      'expires_at as ISO-8601',
      message({ command_id: 'c-1', payload: 'x', expires_at: '2025-03-01T13:00:00Z' }),
      command({ payload: Buffer.from('x'), expiresAtMs: NOW + 3_600_000 }),
    ],
    [
      'expires_at as epoch milliseconds',
      message({ command_id: 'c-1', payload: 'x', expires_at: NOW + 42 }),
      command({ payload: Buffer.from('x'), expiresAtMs: NOW + 42 }),
    ],
    [
      'expires_at in the past: parsed as given (the queue expires it, with a receipt)',
      message({ command_id: 'c-1', payload: 'x', expires_at: NOW - 1 }),
      command({ payload: Buffer.from('x'), expiresAtMs: NOW - 1 }),
    ],
    [
      'a payload of exactly commands.max_payload_bytes',
      message(Buffer.alloc(LIMITS.maxPayloadBytes, 7), 'lamp-7', id('c-1')),
      command({ payload: Buffer.alloc(LIMITS.maxPayloadBytes, 7) }),
    ],
    ['name of 64 characters', message({ command_id: 'c-1', name: 'n'.repeat(64), payload: 'x' }), command({ name: 'n'.repeat(64), payload: Buffer.from('x') })],
  ];
  for (const [title, input, expected] of cases) {
    const result = parse(input);
    assert.ok(result.ok, `${title}: ${JSON.stringify(result)}`);
    assert.deepEqual(result.command, expected, title);
  }
});

test('the default ttl counts from the time the message is parsed', () => {
  const result = parseCommandMessage(message('x', 'lamp-7', id('c-1')), { ...LIMITS, defaultTtlMs: 5_000 }, NOW + 1_000);
  assert.ok(result.ok);
  assert.equal(result.command.expiresAtMs, NOW + 6_000);
});

test('each refusal gives its reason, a message saying what is expected, and the ids that could be read', () => {
  const deep = `{"command_id":"c-1","payload":${'['.repeat(10_000)}${']'.repeat(10_000)}}`;
  const cases: [string, KafkaCommandMessage, string, string | null, string | null, RegExp][] = [
    // [title, message, reason, commandId, deviceId, message pattern]
    ['malformed JSON starting with {', message('{"command_id":"c-2",', 'lamp-7', id('c-1')), 'malformed-json', 'c-1', 'lamp-7', /not JSON .*payload_hex/],
    ['malformed JSON after whitespace', message('  {payload', null), 'malformed-json', null, null, /not JSON/],
    ['no command id (raw bytes, no header)', message('on'), 'missing-command-id', null, 'lamp-7', /no command-id header and no command_id field/],
    ['no command id (envelope without command_id)', message({ payload: 'x' }), 'missing-command-id', null, 'lamp-7', /every command needs an id/],
    ['command id with a space', message('on', 'lamp-7', id('c 1')), 'bad-command-id', null, 'lamp-7', /1 to 128 printable ASCII characters without spaces/],
    ['command id of 129 characters', message({ command_id: 'x'.repeat(129), payload: 'x' }), 'bad-command-id', null, 'lamp-7', /1 to 128/],
    ['empty command-id header', message('on', 'lamp-7', id('')), 'bad-command-id', null, 'lamp-7', /1 to 128/],
    ['command id with a non-ASCII character', message('on', 'lamp-7', id('c-ü')), 'bad-command-id', null, 'lamp-7', /printable ASCII/],
    ['command_id field not a string', message({ command_id: 7, payload: 'x' }), 'bad-field', null, 'lamp-7', /command_id must be a string/],
    [
      'command_id field differs from the header',
      message({ command_id: 'c-2', payload: 'x' }, 'lamp-7', id('c-1')),
      'conflicting-ids',
      'c-1',
      'lamp-7',
      /"c-2" differs from the command-id header "c-1".*same/,
    ],
    [
      'device_id field differs from the key',
      message({ command_id: 'c-1', device_id: 'lamp-8', payload: 'x' }),
      'conflicting-ids',
      'c-1',
      'lamp-7',
      /"lamp-8" differs from the message key "lamp-7"/,
    ],
    ['device_id field not a string', message({ command_id: 'c-1', device_id: 8, payload: 'x' }), 'bad-field', 'c-1', 'lamp-7', /device_id must be a string/],
    ['no key and no device_id', message({ command_id: 'c-1', payload: 'x' }, null), 'missing-device-id', 'c-1', null, /the key is the device id/],
    ['empty key and no device_id (raw)', message('on', '', id('c-1')), 'missing-device-id', 'c-1', null, /no message key and no device_id field/],
    ['key with a slash', message('on', 'lamp/7', id('c-1')), 'bad-device-id', 'c-1', null, /"lamp\/7" is not valid: letters, digits and \. _ : -/],
    ['key with a space', message('on', 'lamp 7', id('c-1')), 'bad-device-id', 'c-1', null, /at most 128/],
    ['device id of 129 characters', message('on', 'd'.repeat(129), id('c-1')), 'bad-device-id', 'c-1', null, /at most 128/],
    ['device_id field with a +', message({ command_id: 'c-1', device_id: 'a+b', payload: 'x' }, null), 'bad-device-id', 'c-1', null, /not valid/],
    [
      'an unknown field in an envelope (the ids are still read)',
      message({ command_id: 'c-1', payload: 'x', colour: 'red' }),
      'unknown-field',
      'c-1',
      'lamp-7',
      /unknown field\(s\) colour; an envelope has command_id, device_id, name, payload/,
    ],
    [
      'two payload fields',
      message({ command_id: 'c-1', payload: 'x', payload_hex: '00' }),
      'bad-field',
      'c-1',
      'lamp-7',
      /give one of payload, payload_hex, payload_base64, not payload and payload_hex/,
    ],
    [
      'an envelope without a payload',
      message({ command_id: 'c-1', port: 2 }),
      'missing-payload',
      'c-1',
      'lamp-7',
      /has no payload, payload_hex or payload_base64: give one of them/,
    ],
    ['an empty value', message('', 'lamp-7', id('c-1')), 'missing-payload', 'c-1', 'lamp-7', /send the payload bytes, or an envelope/],
    ['no value at all (tombstone)', message(null, 'lamp-7', id('c-1')), 'missing-payload', 'c-1', 'lamp-7', /send the payload bytes/],
    ['payload null', message({ command_id: 'c-1', payload: null }), 'bad-field', 'c-1', 'lamp-7', /payload must be an object, an array or a string/],
    ['payload a number', message({ command_id: 'c-1', payload: 5 }), 'bad-field', 'c-1', 'lamp-7', /use payload_hex or payload_base64 for bytes/],
    ['payload_hex with an odd number of digits', message({ command_id: 'c-1', payload_hex: 'abc' }), 'bad-field', 'c-1', 'lamp-7', /even number of hex digits/],
    ['payload_hex not hex', message({ command_id: 'c-1', payload_hex: 'zz' }), 'bad-field', 'c-1', 'lamp-7', /payload_hex must be/],
    ['payload_hex not a string', message({ command_id: 'c-1', payload_hex: 10 }), 'bad-field', 'c-1', 'lamp-7', /payload_hex must be/],
    [
      'payload_base64 of a bad length',
      message({ command_id: 'c-1', payload_base64: 'abc' }),
      'bad-field',
      'c-1',
      'lamp-7',
      /payload_base64 must be base64 text/,
    ],
    ['payload_base64 with a bad character', message({ command_id: 'c-1', payload_base64: 'ab$=' }), 'bad-field', 'c-1', 'lamp-7', /base64/],
    ['payload_base64 padding inside', message({ command_id: 'c-1', payload_base64: 'A=A=' }), 'bad-field', 'c-1', 'lamp-7', /base64/],
    ['port 0', message({ command_id: 'c-1', payload: 'x', port: 0 }), 'bad-field', 'c-1', 'lamp-7', /port \(LoRaWAN FPort\) must be an integer 1\.\.223/],
    ['port 224', message({ command_id: 'c-1', payload: 'x', port: 224 }), 'bad-field', 'c-1', 'lamp-7', /1\.\.223/],
    ['port 1.5', message({ command_id: 'c-1', payload: 'x', port: 1.5 }), 'bad-field', 'c-1', 'lamp-7', /1\.\.223/],
    ['port as a string', message({ command_id: 'c-1', payload: 'x', port: '7' }), 'bad-field', 'c-1', 'lamp-7', /1\.\.223/],
    ['confirmed a string', message({ command_id: 'c-1', payload: 'x', confirmed: 'yes' }), 'bad-field', 'c-1', 'lamp-7', /confirmed must be true or false/],
    ['confirmed 1', message({ command_id: 'c-1', payload: 'x', confirmed: 1 }), 'bad-field', 'c-1', 'lamp-7', /true or false/],
    [
      'expires_at and ttl_s together',
      message({ command_id: 'c-1', payload: 'x', expires_at: NOW + 1, ttl_s: 5 }),
      'bad-field',
      'c-1',
      'lamp-7',
      /give expires_at or ttl_s, not both/,
    ],
    ['ttl_s 0', message({ command_id: 'c-1', payload: 'x', ttl_s: 0 }), 'bad-field', 'c-1', 'lamp-7', /ttl_s must be a positive number of seconds/],
    ['ttl_s negative', message({ command_id: 'c-1', payload: 'x', ttl_s: -5 }), 'bad-field', 'c-1', 'lamp-7', /positive number/],
    ['ttl_s as a string', message({ command_id: 'c-1', payload: 'x', ttl_s: '60' }), 'bad-field', 'c-1', 'lamp-7', /positive number/],
    ['ttl_s so large the expiry is not a number', message({ command_id: 'c-1', payload: 'x', ttl_s: 1e306 }), 'bad-field', 'c-1', 'lamp-7', /ttl_s/],
    [
      'expires_at not a time',
      message({ command_id: 'c-1', payload: 'x', expires_at: 'tomorrow' }),
      'bad-field',
      'c-1',
      'lamp-7',
      /ISO-8601 time or epoch milliseconds/,
    ],
    ['expires_at a boolean', message({ command_id: 'c-1', payload: 'x', expires_at: true }), 'bad-field', 'c-1', 'lamp-7', /ISO-8601/],
    [
      'raw payload over commands.max_payload_bytes',
      message(Buffer.alloc(LIMITS.maxPayloadBytes + 1), 'lamp-7', id('c-1')),
      'too-large',
      'c-1',
      'lamp-7',
      /65 bytes is larger than commands.max_payload_bytes \(64\)/,
    ],
    [
      'decoded payload_hex over the limit',
      message({ command_id: 'c-1', payload_hex: '00'.repeat(65) }),
      'too-large',
      'c-1',
      'lamp-7',
      /commands.max_payload_bytes/,
    ],
    [
      'object payload whose JSON text is over the limit',
      message({ command_id: 'c-1', payload: { text: 'x'.repeat(60) } }),
      'too-large',
      'c-1',
      'lamp-7',
      /larger than/,
    ],
    [
      'name header with a slash',
      message('on', 'lamp-7', { ...id('c-1'), 'command-name': 'dim/all' }),
      'bad-field',
      'c-1',
      'lamp-7',
      /name "dim\/all": letters, digits/,
    ],
    ['envelope name with a space', message({ command_id: 'c-1', name: 'dim all', payload: 'x' }), 'bad-field', 'c-1', 'lamp-7', /it is a topic level/],
    ['name of 65 characters', message({ command_id: 'c-1', name: 'n'.repeat(65), payload: 'x' }), 'bad-field', 'c-1', 'lamp-7', /at most 64/],
    ['empty name', message({ command_id: 'c-1', name: '', payload: 'x' }), 'bad-field', 'c-1', 'lamp-7', /name ""/],
    ['name not a string', message({ command_id: 'c-1', name: 42, payload: 'x' }), 'bad-field', 'c-1', 'lamp-7', /name must be a string/],
    ['a payload nested thousands of levels deep', message(deep), 'too-deep', 'c-1', 'lamp-7', /nested more than \d+ levels/],
  ];
  // Every case is checked and every difference listed, so one run shows all that is wrong.
  const problems: string[] = [];
  for (const [title, input, reason, commandId, deviceId, pattern] of cases) {
    let result: ReturnType<typeof parseCommandMessage>;
    try {
      result = parse(input);
    } catch (error) {
      problems.push(`${title}: threw ${String(error)}`);
      continue;
    }
    if (result.ok) {
      problems.push(`${title}: accepted ${JSON.stringify(result.command)}`);
      continue;
    }
    if (result.reason !== reason) problems.push(`${title}: reason ${result.reason}, expected ${reason} (${result.message})`);
    if (result.commandId !== commandId) problems.push(`${title}: commandId ${result.commandId}, expected ${commandId}`);
    if (result.deviceId !== deviceId) problems.push(`${title}: deviceId ${result.deviceId}, expected ${deviceId}`);
    if (!pattern.test(result.message)) problems.push(`${title}: message ${JSON.stringify(result.message)} does not match ${pattern}`);
  }
  assert.deepEqual(problems, []);
});

test('a refusal quotes only a bounded piece of the input (it goes into a receipt and a log line)', () => {
  const long = 'x'.repeat(10_000);
  const inputs: [string, KafkaCommandMessage][] = [
    ['bad device id', message('on', `${long}/`, id('c-1'))],
    ['bad name', message({ command_id: 'c-1', name: `${long}/`, payload: 'x' })],
    ['unknown fields with long names', message({ command_id: 'c-1', payload: 'x', [`a${long}`]: 1, [`b${long}`]: 2 })],
    ['conflicting command ids', message({ command_id: long, payload: 'x' }, 'lamp-7', id(`${long}y`))],
    ['conflicting device ids', message({ command_id: 'c-1', device_id: long, payload: 'x' }, `${long}y`)],
  ];
  for (const [title, input] of inputs) {
    const result = parse(input);
    assert.ok(!result.ok, title);
    assert.ok(result.message.length < 1_000, `${title}: a message of ${result.message.length} characters`);
  }
});

test('the device id is kept as given; its key lower-cases a DevEUI only (MQTT client ids are case-sensitive)', () => {
  const upper = parseCommandMessage(
    { key: Buffer.from('70B3D57ED0000001'), value: Buffer.from('x'), headers: { 'command-id': Buffer.from('c-1') } },
    LIMITS,
    NOW,
  );
  assert.equal(upper.ok && upper.command.deviceId, '70B3D57ED0000001', 'receipts and MQTT topics use the id as given');
  assert.equal(deviceKey('70B3D57ED0000001'), '70b3d57ed0000001');
  assert.equal(deviceKey('Lamp-17'), 'Lamp-17');
  assert.equal(deviceKey('70B3D57ED000000'), '70B3D57ED000000', '15 hex digits is no DevEUI');
});

test('an expiry more than a year away is refused (it could not be shown as a time), naming the limit', () => {
  for (const body of [
    { payload: 'x', ttl_s: 1e300 },
    { payload: 'x', expires_at: 1e20 },
    { payload: 'x', ttl_s: 400 * 24 * 3600 },
  ]) {
    const result = parseCommandMessage(
      { key: Buffer.from('lamp-1'), value: Buffer.from(JSON.stringify(body)), headers: { 'command-id': Buffer.from('c-1') } },
      LIMITS,
      NOW,
    );
    assert.equal(result.ok, false, JSON.stringify(body));
    assert.equal(!result.ok && result.reason, 'bad-field');
    assert.match(!result.ok ? result.message : '', /year/);
  }
});
