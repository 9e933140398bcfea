// The configuration loader: the shipped example must load and list every key; environment overrides,
// secret files and every kind of mistake must give a message naming the key.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../../src/errors.ts';
import { loadConfig } from '../../src/config/load.ts';
import { configSchema } from '../../src/config/schema.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const EXAMPLE = new URL('../../config/iotgw.example.yaml', import.meta.url).pathname;

function issuesOf(run: () => unknown): readonly string[] {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error.issues;
  }
  assert.fail('expected the configuration to be refused');
}

/** Every leaf key path of the schema, e.g. 'mqtt.tls.port'. */
function schemaKeys(schema: z.ZodType, prefix = ''): string[] {
  let inner: z.ZodType = schema;
  for (let depth = 0; depth < 10; depth++) {
    const def = (inner as unknown as { def: { type: string; innerType?: z.ZodType; in?: z.ZodType; out?: z.ZodType } }).def;
    if (def.innerType !== undefined) inner = def.innerType;
    else if (def.type === 'pipe' && def.out !== undefined) inner = def.out;
    else break;
  }
  if (inner instanceof z.ZodObject) {
    return Object.entries(inner.shape).flatMap(([key, child]) => schemaKeys(child as z.ZodType, prefix === '' ? key : `${prefix}.${key}`));
  }
  return [prefix];
}

function hasPath(value: unknown, path: string): boolean {
  let node = value;
  for (const key of path.split('.')) {
    if (typeof node !== 'object' || node === null || !(key in node)) return false;
    node = (node as Record<string, unknown>)[key];
  }
  return true;
}

test('the example config loads with the real loader and equals the defaults except gateway_id', () => {
  const fromExample = loadConfig({ path: EXAMPLE, env: {} });
  const defaults = loadConfig({ env: {} });
  assert.equal(fromExample.gateway_id, 'meter-room-01');
  assert.deepEqual({ ...fromExample, gateway_id: 'x' }, { ...defaults, gateway_id: 'x' });
});

/** Keys the example shows commented out, because setting them would override a default that depends on where iotgw runs. */
const COMMENTED_KEYS: Readonly<Record<string, RegExp>> = {
  'buffer.path': /^buffer:\n(?: {2}#.*\n)* {2}# path: \/var\/lib\/iotgw\/buffer\.db$/m,
  // Unset means the region's own; a value would pin EU868's for every region.
  'lorawan.rx_windows.rx2_data_rate': /^ {2}rx_windows:\n(?: {4}.*\n)* {4}# rx2_data_rate: \d+$/m,
  'lorawan.rx_windows.rx2_frequency_hz': /^ {2}rx_windows:\n(?: {4}.*\n)* {4}# rx2_frequency_hz: \d+$/m,
};

test('the example config documents every key of the schema', () => {
  const text = readFileSync(EXAMPLE, 'utf8');
  const example = parse(text) as unknown;
  const keys = schemaKeys(configSchema);
  assert.ok(keys.includes('mqtt.tls.require_client_cert') && keys.includes('buffer.when_full') && keys.length > 40, `walked ${keys.length} keys`);
  const missing = keys.filter((key) => !hasPath(example, key) && !(COMMENTED_KEYS[key]?.test(text) ?? false));
  assert.deepEqual(missing, [], 'add these keys to config/iotgw.example.yaml');
});

test('installed as it ships, the example puts the buffer in the state directory and refuses anonymous clients', () => {
  const asService = loadConfig({ path: EXAMPLE, env: { STATE_DIRECTORY: '/var/lib/iotgw', CONFIGURATION_DIRECTORY: '/etc/iotgw' } });
  assert.equal(asService.buffer.path, '/var/lib/iotgw/buffer.db');
  assert.equal(asService.mqtt.allow_anonymous, false);
  assert.equal(loadConfig({ path: EXAMPLE, env: {} }).buffer.path, 'data/buffer.db', 'outside systemd: relative to the working directory');
});

test('under systemd a relative buffer.path is refused with the key, why, and what to write instead', (t) => {
  const path = join(tempDir(t), 'iotgw.yaml');
  writeFileSync(path, 'buffer:\n  path: data/buffer.db\n');
  const issues = issuesOf(() => loadConfig({ path, env: { STATE_DIRECTORY: '/var/lib/iotgw' } }));
  assert.equal(issues.length, 1);
  assert.match(issues[0] ?? '', /^buffer\.path: "data\/buffer\.db" is relative.*\/opt\/iotgw.*Remove the key to use \/var\/lib\/iotgw\/buffer\.db/);
  assert.equal(loadConfig({ path, env: {} }).buffer.path, 'data/buffer.db', 'outside systemd the same file is fine');
  writeFileSync(path, 'buffer:\n  path: /srv/iotgw/buffer.db\n');
  assert.equal(
    loadConfig({ path, env: { STATE_DIRECTORY: '/var/lib/iotgw' } }).buffer.path,
    '/srv/iotgw/buffer.db',
    "an absolute path is the operator's choice",
  );
});

test('a whole-number key written with a unit or a thousands separator is refused saying how to write it', (t) => {
  const path = join(tempDir(t), 'iotgw.yaml');
  writeFileSync(
    path,
    'lorawan:\n  f_cnt_recovery_interval_s: 5m\n  devices:\n    - { dev_eui: 70b3d57ed0000001, dev_addr: "26011001", nwk_s_key: 2b7e151628aed2a6abf7158809cf4f3c, app_s_key: 2b7e151628aed2a6abf7158809cf4f3c, f_cnt_up_hint: "131,075" }\n',
  );
  const issues = issuesOf(() => loadConfig({ path, env: {} }));
  assert.ok(
    issues.some((issue) => /^lorawan\.f_cnt_recovery_interval_s: expected a whole number of at least 1, written without units or separators/.test(issue)),
    issues.join('\n'),
  );
  assert.ok(
    issues.some((issue) =>
      /f_cnt_up_hint: expected a whole number from 0 to 4,294,967,295, written without units or separators: the last uplink frame counter/.test(issue),
    ),
    issues.join('\n'),
  );
});

test('the keys the issue names exist with their defaults', () => {
  const config = loadConfig({ env: {} });
  assert.equal(config.mqtt.host, '0.0.0.0');
  assert.equal(config.mqtt.port, 1883);
  assert.equal(config.mqtt.allow_anonymous, false, 'closed by default');
  assert.deepEqual(config.kafka.brokers, ['localhost:9092']);
  assert.equal(config.kafka.topic, 'iotgw.records');
  assert.equal(config.buffer.path, 'data/buffer.db');
  assert.equal(config.http.port, 8080);
  assert.ok(config.gateway_id.length > 0);
  assert.ok(Object.isFrozen(config.kafka));
});

test('IOTGW__SECTION__KEY overrides the file, with lists, numbers and flags coerced', (t) => {
  const path = join(tempDir(t), 'iotgw.yaml');
  writeFileSync(path, 'mqtt:\n  port: 1884\nkafka:\n  topic: from-file\n');
  const config = loadConfig({
    path,
    env: { IOTGW__KAFKA__BROKERS: 'a:9092, b:9093', IOTGW__MQTT__PORT: '2883', IOTGW__MQTT__ALLOW_ANONYMOUS: 'false', IOTGW__BUFFER__STATE: undefined },
  });
  assert.deepEqual(config.kafka.brokers, ['a:9092', 'b:9093']);
  assert.equal(config.mqtt.port, 2883);
  assert.equal(config.mqtt.allow_anonymous, false);
  assert.equal(config.kafka.topic, 'from-file');
});

test('secrets come from files, with ${VAR} expanded in the path', (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'kafka-password'), 's3cret\n');
  const path = join(dir, 'iotgw.yaml');
  writeFileSync(
    path,
    'kafka:\n  tls: { enabled: true }\n  sasl:\n    mechanism: scram-sha-512\n    username: gw\n    password_file: ${CREDENTIALS_DIRECTORY}/kafka-password\n',
  );
  const config = loadConfig({ path, env: { CREDENTIALS_DIRECTORY: dir } });
  assert.equal(config.kafka.sasl.password, 's3cret');
  const missing = issuesOf(() => loadConfig({ path, env: { CREDENTIALS_DIRECTORY: join(dir, 'nope') } }));
  assert.match(missing[0] ?? '', /^kafka\.sasl\.password_file: cannot read/);
});

test('ttn API key files are read by the loader: a missing or empty one is a config error naming the key, only while ttn is enabled', (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'ttn-api-key'), 'NNSXS.KEY\n');
  writeFileSync(join(dir, 'empty-key'), '');
  const path = join(dir, 'iotgw.yaml');
  const ttn = (enabled: boolean, parkingKey: string): string =>
    `ttn:\n  enabled: ${enabled}\n  username: city@ttn\n  password_file: \${CREDENTIALS_DIRECTORY}/ttn-api-key\n` +
    `  applications:\n    - { username: parking@ttn, password_file: "${join(dir, parkingKey)}" }\n`;
  writeFileSync(path, ttn(true, 'ttn-api-key'));
  const config = loadConfig({ path, env: { CREDENTIALS_DIRECTORY: dir } });
  assert.equal(config.ttn.password, 'NNSXS.KEY');
  assert.equal(config.ttn.applications[0]?.password, 'NNSXS.KEY');
  const missing = issuesOf(() => loadConfig({ path, env: { CREDENTIALS_DIRECTORY: join(dir, 'nope') } }));
  assert.match(missing[0] ?? '', /^ttn\.password_file: cannot read .*nope\/ttn-api-key/);
  writeFileSync(path, ttn(true, 'empty-key'));
  const empty = issuesOf(() => loadConfig({ path, env: { CREDENTIALS_DIRECTORY: dir } }));
  assert.match(empty[0] ?? '', /^ttn\.applications\.0\.password_file: .*empty-key is empty/);
  writeFileSync(path, ttn(false, 'no-such-file'));
  assert.equal(loadConfig({ path, env: { CREDENTIALS_DIRECTORY: dir } }).ttn.password, '', 'disabled: not read');
});

test('bad configs are refused with the key and the problem', (t) => {
  const dir = tempDir(t);
  const cases: [string, RegExp][] = [
    ['mqtt:\n  port: 70000\n', /^mqtt\.port: .*65535/],
    ['mqtt:\n  prot: 1883\n', /^mqtt\.prot: unknown key/],
    ['kafka:\n  brokers: [kafka]\n', /^kafka\.brokers\.0: expected host:port/],
    ['buffer:\n  when_full: sometimes\n', /^buffer\.when_full: /],
    ['mqtt:\n  devices:\n    - id: em-1\n      password_hash: hunter2\n', /^mqtt\.devices\.0\.password_hash: expected a password hash/],
    ['kafka:\n  sasl: { mechanism: plain, username: u, password: p }\n', /^kafka\.sasl\.mechanism: plain sends the password in clear/],
    ['mqtt:\n  tls: { cert_file: /etc/c.pem }\n', /^mqtt\.tls: set both cert_file and key_file/],
    ['mqtt: [1, 2\n', /YAML syntax/],
    ['- just\n- a list\n', /must contain a YAML mapping/],
    [
      'lorawan:\n  devices:\n    - { dev_eui: 0004a30b001c0530, join_eui: 70b3d57ed0000000, app_key: 98929b92c49edba9676d646d3b612456, codec: javascript }\n',
      /^lorawan\.devices\.0\.formatter_file: codec javascript needs formatter_file/,
    ],
    [
      'lorawan:\n  devices:\n    - { dev_eui: 0004a30b001c0530, join_eui: 70b3d57ed0000000, app_key: 98929b92c49edba9676d646d3b612456, formatter_file: /x.js }\n',
      /^lorawan\.devices\.0\.formatter_file: formatter_file is used only with codec javascript/,
    ],
    ['formatters:\n  timeout_ms: 0\n', /^formatters\.timeout_ms: /],
    ['formatters:\n  timeout_ms: 1001\n', /^formatters\.timeout_ms: .*1000/],
  ];
  for (const [index, [yaml, expected]] of cases.entries()) {
    const path = join(dir, `bad-${index}.yaml`);
    writeFileSync(path, yaml);
    const issues = issuesOf(() => loadConfig({ path, env: {} }));
    assert.ok(
      issues.some((issue) => expected.test(issue)),
      `${JSON.stringify(yaml)} -> ${JSON.stringify(issues)}`,
    );
  }
  assert.match(issuesOf(() => loadConfig({ env: { IOTGW__HTTP__PORT: 'eighty' } }))[0] ?? '', /^http\.port: /);
  assert.match(issuesOf(() => loadConfig({ path: join(dir, 'absent.yaml'), env: {} }))[0] ?? '', /cannot read the file/);
});

test('payload limits that would let Kafka refuse an acknowledged record are refused, naming both keys', (t) => {
  const path = join(tempDir(t), 'iotgw.yaml');
  writeFileSync(path, 'mqtt:\n  max_payload_bytes: 2000000\n');
  const issues = issuesOf(() => loadConfig({ path, env: {} }));
  assert.match(issues.join('\n'), /mqtt\.max_payload_bytes: 2000000 bytes plus up to 4096 of headers exceeds kafka\.max_message_bytes \(1000000\)/);
  writeFileSync(path, 'mqtt:\n  max_payload_bytes: 2000000\nkafka:\n  max_message_bytes: 3000000\n');
  assert.equal(loadConfig({ path, env: {} }).kafka.max_message_bytes, 3_000_000, 'raised together, it is fine');
});

test('found by fuzzing: an empty section and an undefined YAML alias are refused as config errors, not crashes', (t) => {
  const path = join(tempDir(t), 'iotgw.yaml');
  writeFileSync(path, 'lorawan:\nmqtt:\n  port: 1884\n');
  assert.match(issuesOf(() => loadConfig({ path, env: {} })).join('\n'), /lorawan: /);
  writeFileSync(path, 'mqtt:\n  port: *nowhere\n');
  assert.match(issuesOf(() => loadConfig({ path, env: {} })).join('\n'), /YAML: .*alias/i);
  writeFileSync(path, 'a: &a [*a, *a]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n');
  assert.ok(issuesOf(() => loadConfig({ path, env: {} })).length > 0, 'an alias bomb is refused too');
});

test('paths are finished by the loader: ${VAR} expanded in every file key, formatter files made absolute', (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'iotgw.yaml');
  writeFileSync(
    path,
    [
      'mqtt:',
      '  tls:',
      '    cert_file: ${CREDENTIALS_DIRECTORY}/cert.pem',
      '    key_file: ${CREDENTIALS_DIRECTORY}/key.pem',
      '    crl_file: ${CREDENTIALS_DIRECTORY}/crl.pem',
      'buffer:',
      '  path: ${STATE_DIRECTORY}/buffer.db',
      'serial:',
      '  raw: { codec: javascript, formatter_file: formatters/node.js }',
      '',
    ].join('\n'),
  );
  const config = loadConfig({ path, env: { CREDENTIALS_DIRECTORY: '/run/credentials/iotgw.service', STATE_DIRECTORY: '/var/lib/iotgw' } });
  assert.equal(config.mqtt.tls.cert_file, '/run/credentials/iotgw.service/cert.pem');
  assert.equal(config.mqtt.tls.crl_file, '/run/credentials/iotgw.service/crl.pem');
  assert.equal(config.buffer.path, '/var/lib/iotgw/buffer.db');
  assert.equal(config.serial.raw.formatter_file, join(process.cwd(), 'formatters/node.js'));
});
