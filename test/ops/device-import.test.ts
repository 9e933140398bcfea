// `iotgw device import`, called as cli.ts calls it, on real files in a temp dir: exports of The Things Stack
// (JSON array and JSON stream), ChirpStack (CSV) and iotgw (YAML) are added and then loaded with the real
// config loader; every kind of bad row is refused with its line and leaves the config byte for byte as it was;
// 10,000 devices go in with one call.
import assert from 'node:assert/strict';
import { chmodSync, chownSync, copyFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { CommandError } from '../../src/ops/commands/command-error.ts';
import { type DeviceImportInput, deviceImportCommand } from '../../src/ops/commands/device-import.ts';
import { macVersionOf } from '../../src/ops/commands/import-rows.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/device-import/', import.meta.url));
const CONFIG_TEXT = '# site config: comments must survive an import\ngateway_id: depot-01\nlorawan:\n  enabled: true\n  devices: []\n';

interface Outcome {
  readonly stdout: string;
  readonly stderr: string;
  /** The CommandError's exit code, or 0. */
  readonly exitCode: number;
  readonly message: string;
}

function site(t: TestContext, configText = CONFIG_TEXT): { dir: string; config: string } {
  const dir = tempDir(t);
  const config = join(dir, 'iotgw.yaml');
  writeFileSync(config, configText);
  return { dir, config };
}

function runImport(config: string, file: string, options: Partial<DeviceImportInput> = {}): Outcome {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const chunks = { out: '', err: '' };
  stdout.on('data', (chunk: Buffer) => (chunks.out += chunk.toString()));
  stderr.on('data', (chunk: Buffer) => (chunks.err += chunk.toString()));
  const input: DeviceImportInput = {
    configPath: config,
    files: [file],
    format: undefined,
    codec: undefined,
    formatterFile: undefined,
    dryRun: false,
    skipInvalid: false,
    ...options,
  };
  try {
    deviceImportCommand(input, { stdout, stderr, readStdin: async () => '' }, {});
    return { stdout: chunks.out, stderr: chunks.err, exitCode: 0, message: '' };
  } catch (error) {
    if (!(error instanceof CommandError)) throw error;
    return { stdout: chunks.out, stderr: chunks.err, exitCode: error.exitCode, message: error.message };
  }
}

function devicesOf(config: string): Config['lorawan']['devices'] {
  return loadConfig({ path: config, env: {} }).lorawan.devices;
}

function fixture(dir: string, name: string): string {
  const path = join(dir, name);
  copyFileSync(join(FIXTURES, name), path);
  return path;
}

test('a The Things Stack JSON array: OTAA root keys, ABP sessions with their counter, class C; loads with the real loader', (t) => {
  const { dir, config } = site(t);
  chmodSync(config, 0o600);
  const result = runImport(config, fixture(dir, 'tts-devices.json'));
  assert.equal(result.exitCode, 0, result.message + result.stderr);
  assert.match(result.stdout, /^4 added to .*iotgw\.yaml \(2 OTAA, 2 ABP, read as tts-json\), 0 refused\n/);
  assert.match(result.stdout, /sudo systemctl reload iotgw/);
  assert.doesNotMatch(result.stdout + result.stderr, /2b7e1516|2B7E1516|000102030405/i, 'keys are never printed');
  assert.equal(statSync(config).mode & 0o777, 0o600, 'the config keeps its mode');
  assert.match(readFileSync(config, 'utf8'), /^# site config: comments must survive an import\n/);
  assert.deepEqual(devicesOf(config), [
    // Joined OTAA device: its root key is imported, its TTS session is not (it joins through iotgw).
    {
      dev_eui: '70b3d57ed0000001',
      name: 'water-meter-001',
      join_eui: '70b3d57ed0000000',
      app_key: '2b7e151628aed2a6abf7158809cf4f3c',
      mac_version: '1.0.3',
      codec: 'raw',
      class: 'A',
    },
    {
      dev_eui: '70b3d57ed0000002',
      name: 'street-lamp-017',
      join_eui: '70b3d57ed0000000',
      app_key: '2b7e151628aed2a6abf7158809cf4f3d',
      mac_version: '1.0.4',
      codec: 'raw',
      class: 'C',
    },
    {
      dev_eui: '0004a30b001c0530',
      name: 'parking-sensor-042',
      dev_addr: '26011bda',
      nwk_s_key: '2b7e151628aed2a6abf7158809cf4f3c',
      app_s_key: '000102030405060708090a0b0c0d0e0f',
      resets_f_cnt: true,
      // The windows The Things Stack ran it at: iotgw answers in them until it has moved the device to its own.
      rx_windows: { rx1_delay_s: 5, rx1_dr_offset: 0, rx2_data_rate: 3, rx2_frequency_hz: 869_525_000 },
      f_cnt_up_hint: 4711,
      mac_version: '1.0.2',
      codec: 'raw',
      class: 'A',
    },
    {
      dev_eui: '0004a30b001c0531',
      name: 'air-quality-003',
      dev_addr: '26011bdb',
      nwk_s_key: '11112222333344445555666677778888',
      app_s_key: '88887777666655554444333322221111',
      mac_version: '1.0.2',
      codec: 'raw',
      class: 'A',
    },
  ]);
});

test('a The Things Stack export with one JSON object per line: app_eui of older exports, a BoolValue as an object', (t) => {
  const { dir, config } = site(t);
  const result = runImport(config, fixture(dir, 'tts-devices-stream.ndjson'), { codec: 'cayenne-lpp' });
  assert.equal(result.exitCode, 0, result.message + result.stderr);
  const [soil, bin] = devicesOf(config);
  assert.deepEqual(
    { ...soil },
    {
      dev_eui: 'a84041000181c9a1',
      name: 'soil-probe-101',
      join_eui: 'a840410000000101',
      app_key: 'a1b2c3d4e5f60718293a4b5c6d7e8f90',
      mac_version: '1.0.2',
      codec: 'cayenne-lpp',
      class: 'A',
    },
  );
  assert.equal(bin?.resets_f_cnt, true);
  assert.equal(bin?.f_cnt_up_hint, 120);
  assert.equal(bin?.dev_addr, '26011bdc');
});

test('a ChirpStack CSV: nwk_key is the LoRaWAN 1.0.x AppKey (a zero app_key is ignored), a 1.0 session is one NwkSKey', (t) => {
  const { dir, config } = site(t);
  const result = runImport(config, fixture(dir, 'chirpstack-devices.csv'));
  assert.equal(result.exitCode, 0, result.message + result.stderr);
  assert.match(result.stdout, /^3 added .*\(2 OTAA, 1 ABP, read as chirpstack-csv\), 0 refused\n/);
  const devices = devicesOf(config);
  assert.deepEqual(
    devices.map((device) => [device.dev_eui, device.name, device.join_eui, device.app_key]),
    [
      ['24e124136b502217', 'em300-th-0217', '24e124c0002a0001', '5572404c696e6b4c6f52613230313823'],
      ['24e124136b502218', 'em300-th-0218', '24e124c0002a0001', '5572404c696e6b4c6f52613230313824'],
      ['a81758fffe0312a0', 'ers-co2-a0', undefined, undefined],
    ],
  );
  const abp = devices[2];
  assert.equal(abp?.dev_addr, '01a2b3c4');
  assert.equal(abp?.nwk_s_key, '3c4fcf098815f7aba6d2ae2816157e2b');
  assert.equal(abp?.app_s_key, '2b7e151628aed2a6abf7158809cf4f3c');
  assert.equal(abp?.f_cnt_up_hint, 1000, "ChirpStack's f_cnt_up is the next counter expected: the last one used is one less");
  assert.equal(abp?.resets_f_cnt, true, 'skip_fcnt_check');
});

test('an iotgw YAML list goes to lorawan.devices_file when the config names one; entries keep their codec and class', (t) => {
  const { dir } = site(t);
  const devicesFile = join(dir, 'lorawan-devices.yaml');
  writeFileSync(
    devicesFile,
    '# devices of the north field\n- dev_eui: 70b3d57ed00000aa\n  join_eui: "0000000000000000"\n  app_key: 2b7e151628aed2a6abf7158809cf4f3c\n',
  );
  const { config } = site(t, `lorawan:\n  devices_file: ${devicesFile}\n`);
  const configBefore = readFileSync(config, 'utf8');
  const result = runImport(config, fixture(dir, 'iotgw-devices.yaml'));
  assert.equal(result.exitCode, 0, result.message + result.stderr);
  assert.match(result.stdout, /2 added to .*lorawan-devices\.yaml/);
  assert.equal(readFileSync(config, 'utf8'), configBefore, 'the config itself is not touched');
  assert.match(readFileSync(devicesFile, 'utf8'), /^# devices of the north field\n/);
  const devices = devicesOf(config);
  assert.deepEqual(
    devices.map((device) => [device.dev_eui, device.name, device.codec, device.class]),
    [
      ['70b3d57ed00000aa', undefined, 'raw', 'A'],
      ['70b3d57ed00000a1', 'depot-door-1', 'cayenne-lpp', 'A'],
      ['70b3d57ed00000a2', 'depot-pump-2', 'raw', 'C'],
    ],
  );
  assert.equal(devices[2]?.f_cnt_up_hint, 880);
});

test('a new lorawan.devices_file takes the owner, group and mode of the config that names it (the service must read it)', (t) => {
  const { dir } = site(t);
  const devicesFile = join(dir, 'new-devices.yaml');
  const { config } = site(t, `lorawan:\n  enabled: true\n  devices_file: ${devicesFile}\n`);
  chmodSync(config, 0o640);
  // As install.sh leaves /etc/iotgw: root owns it, the service's group reads it. nogroup stands in for iotgw.
  if (process.getuid?.() === 0) chownSync(config, 0, 65534);
  const result = runImport(config, fixture(dir, 'iotgw-devices.yaml'));
  assert.equal(result.exitCode, 0, result.message + result.stderr);
  const made = statSync(devicesFile);
  assert.equal(made.mode & 0o777, 0o640);
  assert.equal(made.gid, statSync(config).gid);
  assert.equal(made.uid, statSync(config).uid);
});

test('importing into a config with LoRaWAN off says the devices are ignored until it is on', (t) => {
  const { dir, config } = site(t, 'lorawan:\n  devices: []\n');
  const result = runImport(config, fixture(dir, 'iotgw-devices.yaml'));
  assert.equal(result.exitCode, 0, result.message + result.stderr);
  assert.match(result.stdout, /lorawan\.enabled is not true in this config: LoRaWAN devices are ignored until you set it/);
});

test('--codec javascript needs --formatter-file, checked once for all; a whole iotgw config is read for its lorawan.devices', (t) => {
  const { dir, config } = site(t);
  const otherGateway = join(dir, 'old-gateway.yaml');
  writeFileSync(
    otherGateway,
    `gateway_id: old\nlorawan:\n  devices:\n    - dev_eui: 70b3d57ed00000b1\n      join_eui: "0000000000000000"\n      app_key: 2b7e151628aed2a6abf7158809cf4f3c\n`,
  );
  assert.match(runImport(config, otherGateway, { codec: 'javascript' }).message, /--codec javascript needs --formatter-file PATH/);
  assert.match(runImport(config, otherGateway, { codec: 'json' }).message, /^--codec: expected raw or cayenne-lpp or javascript, got 'json'$/);
  const formatter = join(FIXTURES, '../formatters/climate-sensor.js');
  const result = runImport(config, otherGateway, { codec: 'javascript', formatterFile: formatter });
  assert.equal(result.exitCode, 0, result.message + result.stderr);
  const [device] = devicesOf(config);
  assert.equal(device?.codec, 'javascript');
  assert.equal(device?.formatter_file, formatter);
});

const OTAA_ROW = (devEui: string, key = '2B7E151628AED2A6ABF7158809CF4F3C') => `${devEui},pump-${devEui.slice(-2)},70B3D57ED0000000,${key}`;
const CSV_HEADER = 'dev_eui,name,join_eui,nwk_key';

const REFUSALS: readonly { name: string; file: string; text: string; expected: RegExp; options?: Partial<DeviceImportInput> }[] = [
  {
    name: 'a key missing from a TTS list export',
    file: 'list.json',
    text: '[{\n  "ids": {"device_id": "pump-1", "application_ids": {"application_id": "water"}, "dev_eui": "70B3D57ED0000001", "join_eui": "70B3D57ED0000000"},\n  "created_at": "2024-05-02T10:00:00Z"\n}]\n',
    expected:
      /list\.json:1: dev_eui 70b3d57ed0000001: root_keys\.app_key\.key: missing: the export has no AppKey; export each device with `ttn-lw-cli end-devices get APP_ID DEVICE_ID --all`/,
  },
  {
    name: 'a key wrapped with a KEK',
    file: 'wrapped.json',
    text: '{"ids": {"device_id": "pump-1", "dev_eui": "70B3D57ED0000001", "join_eui": "70B3D57ED0000000"}, "supports_join": true, "root_keys": {"app_key": {"encrypted_key": "q83v", "kek_label": "js:tenant"}}}\n',
    expected: /wrapped\.json:1: dev_eui 70b3d57ed0000001: root_keys\.app_key\.key: the AppKey is encrypted with KEK 'js:tenant'/,
  },
  {
    name: 'a key of the wrong length',
    file: 'short.csv',
    text: `${CSV_HEADER}\n${OTAA_ROW('70B3D57ED0000001')}\n${OTAA_ROW('70B3D57ED0000002', '2B7E151628AED2A6ABF7158809CF4F')}\n`,
    expected: /short\.csv:3: dev_eui 70b3d57ed0000002: nwk_key: expected 32 hex digits \(AppKey\), got 30 digits; correct it in the file/,
  },
  {
    name: 'a DevEUI of the wrong length',
    file: 'eui.csv',
    text: `${CSV_HEADER}\n${OTAA_ROW('70B3D57ED00001')}\n`,
    expected: /eui\.csv:2: dev_eui: expected 16 hex digits \(DevEUI\), got '70B3D57ED00001' \(14 digits\)/,
  },
  {
    name: 'a DevEUI twice in the file',
    file: 'twice.csv',
    text: `${CSV_HEADER}\n${OTAA_ROW('70B3D57ED0000001')}\n${OTAA_ROW('70B3D57ED0000002')}\n${OTAA_ROW('70-B3-D5-7E-D0-00-00-01')}\n`,
    expected: /twice\.csv:4: dev_eui 70b3d57ed0000001: dev_eui: also on line 2 of this file; keep one of them/,
  },
  {
    name: 'a DevEUI already in the config',
    file: 'configured.csv',
    text: `${CSV_HEADER}\n${OTAA_ROW('70B3D57ED00000C1')}\n`,
    expected: /configured\.csv:2: dev_eui 70b3d57ed00000c1: dev_eui: already in lorawan\.devices of .*iotgw\.yaml/,
  },
  {
    name: 'OTAA without a JoinEUI',
    file: 'nojoin.csv',
    text: `${CSV_HEADER}\n70B3D57ED0000001,pump-1,,2B7E151628AED2A6ABF7158809CF4F3C\n`,
    expected: /nojoin\.csv:2: dev_eui 70b3d57ed0000001: join_eui: missing: iotgw refuses join-requests naming another JoinEUI/,
  },
  {
    name: 'an ABP DevAddr with the same NwkSKey as a configured device',
    file: 'session.csv',
    text: 'dev_eui,dev_addr,nwk_s_enc_key,app_s_key\n70B3D57ED0000001,26011BDA,2B7E151628AED2A6ABF7158809CF4F3C,000102030405060708090A0B0C0D0E0F\n',
    expected: /session\.csv:2: dev_eui 70b3d57ed0000001: dev_addr: 26011bda with the same NwkSKey as a device in lorawan\.devices of/,
  },
  {
    name: 'two ABP devices of the file with one DevAddr and one NwkSKey',
    file: 'sessions.csv',
    text: 'dev_eui,dev_addr,nwk_s_key,app_s_key\n70B3D57ED0000001,26011BEE,2B7E151628AED2A6ABF7158809CF4F3C,000102030405060708090A0B0C0D0E0F\n70B3D57ED0000002,26011BEE,2B7E151628AED2A6ABF7158809CF4F3C,000102030405060708090A0B0C0D0E0F\n',
    expected: /sessions\.csv:3: dev_eui 70b3d57ed0000002: dev_addr: 26011bee with the same NwkSKey as the device on line 2:/,
  },
  {
    name: 'malformed JSON, named by the line of the mistake',
    file: 'broken.json',
    text: '[\n  {\n    "ids": {"dev_eui": "70B3D57ED0000001"}\n    "supports_join": true\n  }\n]\n',
    expected: /broken\.json:4: JSON: malformed: Expected ',' or '}' after property value/,
  },
  {
    name: 'a CSV row with too few fields',
    file: 'ragged.csv',
    text: `${CSV_HEADER}\n${OTAA_ROW('70B3D57ED0000001')}\n70B3D57ED0000002,pump-2\n`,
    expected: /ragged\.csv:3: dev_eui 70b3d57ed0000002: CSV: malformed: 2 fields, the header has 4/,
  },
  {
    name: 'LoRaWAN 1.1 in ChirpStack (nwk_key and app_key differ)',
    file: 'v11.csv',
    text: 'dev_eui,join_eui,nwk_key,app_key\n70B3D57ED0000001,0000000000000000,2B7E151628AED2A6ABF7158809CF4F3C,000102030405060708090A0B0C0D0E0F\n',
    expected: /v11\.csv:2: dev_eui 70b3d57ed0000001: app_key: differs from nwk_key: a LoRaWAN 1\.1 device/,
  },
];

const CONFIGURED =
  '# site config\nlorawan:\n  devices:\n    - dev_eui: 70b3d57ed00000c1\n      join_eui: "0000000000000000"\n      app_key: 2b7e151628aed2a6abf7158809cf4f3c\n    - dev_eui: 70b3d57ed00000c2\n      dev_addr: 26011bda\n      nwk_s_key: 2b7e151628aed2a6abf7158809cf4f3c\n      app_s_key: 2b7e151628aed2a6abf7158809cf4f3d\n';

for (const refusal of REFUSALS) {
  test(`refused: ${refusal.name}; the config is left byte for byte`, (t) => {
    const { dir, config } = site(t, CONFIGURED);
    const path = join(dir, refusal.file);
    writeFileSync(path, refusal.text);
    const result = runImport(config, path, refusal.options);
    assert.equal(result.exitCode, 2, `${result.message}\n${result.stdout}`);
    assert.match(result.stderr, refusal.expected);
    assert.equal(result.stdout, '');
    assert.doesNotMatch(result.stderr + result.message, /2b7e151628aed2a6abf7158809cf4f3c|000102030405060708090a0b0c0d0e0f/i, 'keys are never printed');
    assert.equal(readFileSync(config, 'utf8'), CONFIGURED);
  });
}

test('refused before any row: an unknown --format, a file of no known format, an unterminated object or quote', (t) => {
  const { dir, config } = site(t);
  const notes = join(dir, 'devices.txt');
  writeFileSync(notes, 'pump 1: 70B3D57ED0000001\n');
  assert.match(runImport(config, notes, { format: 'xlsx' }).message, /^--format: expected tts-json, chirpstack-csv, iotgw-yaml, got 'xlsx'$/);
  assert.match(runImport(config, notes).message, /cannot tell the format of .*devices\.txt: give --format tts-json\|chirpstack-csv\|iotgw-yaml/);
  const open = join(dir, 'open.json');
  writeFileSync(open, '{"ids": {"dev_eui": "70B3D57ED0000001"}}\n\n{"ids": {"dev_eui": "70B3D57ED0000002"}\n');
  assert.match(runImport(config, open).message, /open\.json:3: malformed JSON: the object that starts here is never closed/);
  const quote = join(dir, 'quote.csv');
  writeFileSync(quote, `${CSV_HEADER}\n${OTAA_ROW('70B3D57ED0000001')}\n70B3D57ED0000002,"pump 2,70B3D57ED0000000,00\n`);
  assert.match(runImport(config, quote).message, /quote\.csv:3: malformed CSV: the quoted field that starts here is never closed/);
  const missing = runImport(config, join(dir, 'nope.json'));
  assert.equal(missing.exitCode, 2);
  assert.match(missing.message, /cannot read .*nope\.json/);
  assert.equal(readFileSync(config, 'utf8'), CONFIG_TEXT);
});

test('all or nothing: one bad row among good ones writes nothing; --skip-invalid adds the good ones and names the bad one', (t) => {
  const { dir, config } = site(t);
  const path = join(dir, 'mixed.csv');
  const good = ['70B3D57ED0000001', '70B3D57ED0000002', '70B3D57ED0000003', '70B3D57ED0000004'].map((devEui) => OTAA_ROW(devEui));
  writeFileSync(path, [CSV_HEADER, ...good.slice(0, 2), '70B3D57ED0000009,pump-9,70B3D57ED0000000,not-a-key', ...good.slice(2)].join('\n'));
  const refused = runImport(config, path);
  assert.equal(refused.exitCode, 2);
  assert.match(refused.stderr, /mixed\.csv:4: dev_eui 70b3d57ed0000009: nwk_key: expected 32 hex digits/m);
  assert.match(refused.message, /^0 added, 1 of 5 refused, so .*iotgw\.yaml is unchanged: fix the rows above, or give --skip-invalid to add the 4 valid ones$/);
  assert.equal(readFileSync(config, 'utf8'), CONFIG_TEXT, 'byte-identical');

  const dryRun = runImport(config, path, { dryRun: true, skipInvalid: true });
  assert.equal(dryRun.exitCode, 0, dryRun.message);
  assert.match(dryRun.stdout, /^would add 70b3d57ed0000001 \(pump-01\): OTAA, JoinEUI 70b3d57ed0000000, class A, codec raw$/m);
  assert.match(dryRun.stdout, /dry run: 4 would be added to .* \(4 OTAA, 0 ABP, read as chirpstack-csv\), 1 refused; nothing written\n$/);
  assert.equal(readFileSync(config, 'utf8'), CONFIG_TEXT, 'a dry run writes nothing');

  const skipped = runImport(config, path, { skipInvalid: true });
  assert.equal(skipped.exitCode, 0, skipped.message);
  assert.match(skipped.stderr, /mixed\.csv:4: dev_eui 70b3d57ed0000009/);
  assert.match(skipped.stdout, /^4 added to .*, 1 refused\n/);
  assert.deepEqual(
    devicesOf(config).map((device) => device.dev_eui),
    ['70b3d57ed0000001', '70b3d57ed0000002', '70b3d57ed0000003', '70b3d57ed0000004'],
  );
});

test('10,000 devices in one call: a generated TTS JSON export, one write, and the config loads with all of them', (t) => {
  const { dir, config } = site(t);
  const path = join(dir, 'city.json');
  const devices = Array.from({ length: 10_000 }, (_, index) => {
    const suffix = index.toString(16).toUpperCase().padStart(8, '0');
    const ids = { device_id: `meter-${index}`, application_ids: { application_id: 'city' }, dev_eui: `70B3D57E${suffix}`, join_eui: '70B3D57ED0000000' };
    if (index % 4 === 0) {
      const keys = { f_nwk_s_int_key: { key: `2B7E1516${suffix}ABF7158809CF4F3C` }, app_s_key: { key: `00010203${suffix}08090A0B0C0D0E0F` } };
      return { ids, supports_join: false, session: { dev_addr: `26${suffix.slice(2)}`, keys, last_f_cnt_up: index } };
    }
    return { ids, supports_join: true, root_keys: { app_key: { key: `2B7E1516${suffix}ABF7158809CF4F3C` } } };
  });
  writeFileSync(path, `${devices.map((device) => JSON.stringify(device, null, 2)).join('\n')}\n`);
  const result = runImport(config, path);
  assert.equal(result.exitCode, 0, result.message + result.stderr.slice(0, 2000));
  assert.match(result.stdout, /^10000 added to .* \(7500 OTAA, 2500 ABP, read as tts-json\), 0 refused\n/);
  const loaded = devicesOf(config);
  assert.equal(loaded.length, 10_000);
  assert.equal(new Set(loaded.map((device) => device.dev_eui)).size, 10_000);
  assert.equal(loaded[9_999]?.name, 'meter-9999');
  assert.equal(loaded[4]?.f_cnt_up_hint, 4);
});

test('the exported LoRaWAN version becomes mac_version; versions without their own join rules are left to the default', () => {
  const cases: [unknown, string | undefined][] = [
    ['MAC_V1_0_4', '1.0.4'],
    ['MAC_V1_0_2', '1.0.2'],
    ['LORAWAN_1_1_0', undefined],
    ['1.0.3', '1.0.3'],
    ['LORAWAN_1_0_4', '1.0.4'],
    ['MAC_V1_0', undefined],
    ['MAC_V1_1', undefined],
    [104, undefined],
    [' 1.0.4 ', '1.0.4'],
  ];
  for (const [exported, expected] of cases) assert.equal(macVersionOf(exported), expected, String(exported));
});

test("a The Things Stack device of another region than lorawan.region is refused, naming both; of the config's region it is taken", (t) => {
  const device = (devEui: string, plan: string) => ({
    ids: { device_id: `dev-${devEui.slice(-2)}`, dev_eui: devEui, join_eui: '70B3D57ED0000000' },
    frequency_plan_id: plan,
    supports_join: true,
    root_keys: { app_key: { key: '2B7E151628AED2A6ABF7158809CF4F3C' } },
  });
  const devices = [
    device('70B3D57ED0000011', 'US_902_928_FSB_2'),
    device('70B3D57ED0000012', 'CN_470_510_FSB_11'),
    device('70B3D57ED0000013', 'AS_923_925_TTN_AU'),
  ];
  const eu = site(t);
  const file = join(eu.dir, 'devices.json');
  writeFileSync(file, JSON.stringify(devices));
  const refused = runImport(eu.config, file, { skipInvalid: true });
  assert.match(refused.stderr, /70b3d57ed0000011: frequency_plan_id: US_902_928_FSB_2 is US915, this gateway's lorawan\.region is EU868/i);
  assert.match(refused.stderr, /70b3d57ed0000012: frequency_plan_id: CN_470_510_FSB_11: a region iotgw does not serve/i);
  assert.match(refused.stderr, /70b3d57ed0000013: frequency_plan_id: AS_923_925_TTN_AU is AS923, this gateway's lorawan\.region is EU868/i);
  assert.deepEqual(devicesOf(eu.config), []);

  const us = site(t, CONFIG_TEXT.replace('  enabled: true\n', '  enabled: true\n  region: US915\n'));
  const taken = runImport(us.config, file, { skipInvalid: true });
  assert.equal(taken.exitCode, 0, taken.message + taken.stderr);
  assert.deepEqual(
    devicesOf(us.config).map((entry) => entry.dev_eui),
    ['70b3d57ed0000011'],
  );
  // The same device into a gateway on sub-band 1: refused, its radios would not hear it.
  const us1 = site(t, CONFIG_TEXT.replace('  enabled: true\n', '  enabled: true\n  region: US915\n  sub_band: 1\n'));
  const wrongBand = runImport(us1.config, file, { skipInvalid: true });
  assert.match(wrongBand.stderr, /70b3d57ed0000011: frequency_plan_id: US_902_928_FSB_2 is sub-band 2, this gateway's lorawan\.sub_band is 1/i);
});
