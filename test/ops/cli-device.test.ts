// `iotgw device add`, run as a user would (the built dist/src/cli.js): MQTT devices with a generated or
// piped password, LoRaWAN ABP/OTAA devices inline or in lorawan.devices_file; comments survive, the result
// passes `config check`, and bad ids, bad hex and duplicates are refused with exit 2 and a clear message.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { verifyPassword } from '../../src/ingress/mqtt-broker/password-hash.ts';
import { exampleCopy, iotgw } from '../helpers/iotgw-cli.ts';
import { tempDir } from '../helpers/temp-dir.ts';

/** Lines of `after` that `before` lacks and lines of `before` that are gone, counting repeats (order kept). */
function lineDiff(before: string, after: string): { added: string[]; removed: string[] } {
  const unmatched = (lines: string[], others: string[]): string[] => {
    const pool = new Map<string, number>();
    for (const line of others) pool.set(line, (pool.get(line) ?? 0) + 1);
    return lines.filter((line) => {
      const left = pool.get(line) ?? 0;
      if (left === 0) return true;
      pool.set(line, left - 1);
      return false;
    });
  };
  return { added: unmatched(after.split('\n'), before.split('\n')), removed: unmatched(before.split('\n'), after.split('\n')) };
}

test('device add ID --generate-password adds a verifiable hash, prints the password once, keeps every comment', async (t) => {
  const path = exampleCopy(t);
  const before = readFileSync(path, 'utf8');
  const added = iotgw(['device', 'add', 'em-000001', '--generate-password', '--cost', '10', '--config', path]);
  assert.equal(added.status, 0, added.stderr);
  const password = /password \(shown only this once[^)]*\): (\S+)/.exec(added.stdout)?.[1];
  assert.ok(password !== undefined && password.length >= 24, added.stdout);
  assert.match(added.stdout, /sudo systemctl reload iotgw/);
  // The example listens on 0.0.0.0:1883: the line to try it goes to this machine.
  assert.ok(
    added.stdout.includes(
      `  mosquitto_pub -h 127.0.0.1 -p 1883 -V mqttv311 -q 1 -i em-000001 -u em-000001 -P ${password} -t devices/em-000001/telemetry -m '{"hello":"iotgw"}'\n`,
    ),
    added.stdout,
  );

  const after = readFileSync(path, 'utf8');
  const { added: newLines, removed } = lineDiff(before, after);
  assert.deepEqual(removed, ['  devices: []'], 'only the empty list became a block list');
  assert.deepEqual(newLines, ['  devices:', '    - id: em-000001', newLines[2]]);
  assert.match(newLines[2] ?? '', /^ {6}password_hash: "?\$scrypt\$ln=10,r=8,p=1\$/);
  const device = (parse(after) as { mqtt: { devices: { id: string; password_hash: string }[] } }).mqtt.devices[0];
  assert.equal(device?.id, 'em-000001');
  assert.equal(await verifyPassword(password, device?.password_hash ?? ''), true);

  const second = iotgw(['device', 'add', 'em-000002', '--password-stdin', '--cost', '10', '--config', path], { input: 'piped-secret-123\n' });
  assert.equal(second.status, 0, second.stderr);
  assert.doesNotMatch(second.stdout, /piped-secret-123/, 'a piped password is never echoed');
  const devices = (parse(readFileSync(path, 'utf8')) as { mqtt: { devices: { id: string; password_hash: string }[] } }).mqtt.devices;
  assert.deepEqual(
    devices.map((entry) => entry.id),
    ['em-000001', 'em-000002'],
  );
  assert.equal(await verifyPassword('piped-secret-123', devices[1]?.password_hash ?? ''), true);

  const check = iotgw(['config', 'check', '--config', path]);
  assert.equal(check.status, 0, check.stderr);
});

test('device add refuses a duplicate, a bad id, a short piped password and a missing --config, with exit 2', (t) => {
  const path = exampleCopy(t);
  assert.equal(iotgw(['device', 'add', 'em-1', '--cost', '10', '--config', path]).status, 0, 'without a flag, a password is generated');
  const unchanged = readFileSync(path, 'utf8');

  const duplicate = iotgw(['device', 'add', 'em-1', '--cost', '10', '--config', path]);
  assert.equal(duplicate.status, 2);
  assert.match(duplicate.stderr, /device 'em-1' is already in mqtt\.devices/);

  const badId = iotgw(['device', 'add', 'em 1/#', '--config', path]);
  assert.equal(badId.status, 2);
  assert.match(badId.stderr, /invalid device id 'em 1\/#': device ids use letters, digits/);

  const short = iotgw(['device', 'add', 'em-2', '--password-stdin', '--config', path], { input: 'short\n' });
  assert.equal(short.status, 2);
  assert.match(short.stderr, /password too short/);

  const noConfig = iotgw(['device', 'add', 'em-3']);
  assert.equal(noConfig.status, 2);
  assert.match(noConfig.stderr, /give --config FILE/);

  const missingFile = iotgw(['device', 'add', 'em-3', '--config', join(tempDir(t), 'nope.yaml')]);
  assert.equal(missingFile.status, 1);
  assert.match(missingFile.stderr, /cannot read the config file .*nope\.yaml/);

  assert.equal(readFileSync(path, 'utf8'), unchanged, 'refused commands leave the file alone');
  assert.doesNotMatch(duplicate.stderr + badId.stderr + short.stderr, /\n\s+at /, 'no stack trace');
});

test('device add --lorawan-abp / --lorawan-otaa add normalized keys under lorawan.devices; bad hex and duplicates are refused', (t) => {
  const path = exampleCopy(t);
  const abp = iotgw([
    'device',
    'add',
    '--lorawan-abp',
    '--dev-eui',
    '70-B3-D5-7E-D0-00-00-01',
    '--dev-addr',
    '26011BDA',
    '--nwk-s-key',
    '2B7E151628AED2A6ABF7158809CF4F3C',
    '--app-s-key',
    '2b:7e:15:16:28:ae:d2:a6:ab:f7:15:88:09:cf:4f:3d',
    '--codec',
    'cayenne-lpp',
    '--config',
    path,
  ]);
  assert.equal(abp.status, 0, abp.stderr);
  assert.match(abp.stdout, /added LoRaWAN ABP device 70b3d57ed0000001/);
  const otaa = iotgw([
    'device',
    'add',
    '--lorawan-otaa',
    '--dev-eui',
    '70B3D57ED0000002',
    '--join-eui',
    '0000000000000000',
    '--app-key',
    '2B7E151628AED2A6ABF7158809CF4F3C',
    '--name',
    'pump-7',
    '--mac-version',
    '1.0.4',
    '--class',
    'c',
    '--no-adr',
    '--config',
    path,
  ]);
  assert.equal(otaa.status, 0, otaa.stderr);
  const { lorawan } = parse(readFileSync(path, 'utf8')) as { lorawan: { devices: Record<string, string>[] } };
  assert.deepEqual(lorawan.devices, [
    {
      dev_eui: '70b3d57ed0000001',
      dev_addr: '26011bda',
      nwk_s_key: '2b7e151628aed2a6abf7158809cf4f3c',
      app_s_key: '2b7e151628aed2a6abf7158809cf4f3d',
      codec: 'cayenne-lpp',
    },
    {
      dev_eui: '70b3d57ed0000002',
      name: 'pump-7',
      join_eui: '0000000000000000',
      app_key: '2b7e151628aed2a6abf7158809cf4f3c',
      codec: 'raw',
      mac_version: '1.0.4',
      class: 'C',
      adr: false,
    },
  ]);
  for (const [flags, why] of [
    [['--mac-version', '1.1'], /--mac-version: expected 1\.0\.2, 1\.0\.3, 1\.0\.4 \(LoRaWAN 1\.1 is not supported\), got '1\.1'/],
    [['--class', 'B'], /--class: expected A or C, got 'B'/],
    [['--resets-f-cnt'], /--resets-f-cnt is for ABP devices/],
  ] as const) {
    const refused = iotgw([
      'device',
      'add',
      '--lorawan-otaa',
      '--dev-eui',
      '70B3D57ED0000009',
      '--join-eui',
      '00'.repeat(8),
      '--app-key',
      '11'.repeat(16),
      ...flags,
      '--config',
      path,
    ]);
    assert.equal(refused.status, 2, refused.stdout);
    assert.match(refused.stderr, why);
  }
  const check = iotgw(['config', 'check', '--config', path]);
  assert.equal(check.status, 0, check.stderr);

  const before = readFileSync(path, 'utf8');
  const badKey = iotgw(['device', 'add', '--lorawan-otaa', '--dev-eui', '70B3D57ED0000003', '--join-eui', '00', '--app-key', 'XYZ', '--config', path]);
  assert.equal(badKey.status, 2);
  assert.match(badKey.stderr, /--join-eui: expected 16 hex digits/);
  const badAppKey = iotgw([
    'device',
    'add',
    '--lorawan-otaa',
    '--dev-eui',
    '70B3D57ED0000003',
    '--join-eui',
    '0000000000000000',
    '--app-key',
    'ZZ7E151628AED2A6ABF7158809CF4F3C',
    '--config',
    path,
  ]);
  assert.equal(badAppKey.status, 2);
  assert.match(badAppKey.stderr, /--app-key: expected 32 hex digits \(AppKey/);
  const missing = iotgw(['device', 'add', '--lorawan-abp', '--dev-eui', '70B3D57ED0000003', '--config', path]);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /--dev-addr is required/);
  const mixed = iotgw(['device', 'add', '--lorawan-abp', '--dev-eui', '70B3D57ED0000003', '--app-key', '2B7E151628AED2A6ABF7158809CF4F3C', '--config', path]);
  assert.equal(mixed.status, 2);
  assert.match(mixed.stderr, /OTAA keys/);
  const codec = iotgw(['device', 'add', '--lorawan-otaa', '--dev-eui', '70B3D57ED0000003', '--codec', 'json', '--config', path]);
  assert.equal(codec.status, 2);
  assert.match(codec.stderr, /--codec: expected raw or cayenne-lpp/);
  const duplicate = iotgw([
    'device',
    'add',
    '--lorawan-otaa',
    '--dev-eui',
    '70b3d57ed0000001',
    '--join-eui',
    '0000000000000000',
    '--app-key',
    '2B7E151628AED2A6ABF7158809CF4F3C',
    '--config',
    path,
  ]);
  assert.equal(duplicate.status, 2);
  assert.match(duplicate.stderr, /dev_eui 70b3d57ed0000001 is already in lorawan\.devices/);
  assert.equal(readFileSync(path, 'utf8'), before);
});

test('with lorawan.devices_file set, device add writes to that file and leaves the config alone', (t) => {
  const dir = tempDir(t);
  const devicesFile = join(dir, 'lorawan-devices.yaml');
  writeFileSync(
    devicesFile,
    '# LoRaWAN devices of the north field\n- dev_eui: 70b3d57ed00000aa\n  join_eui: "0000000000000000"\n  app_key: 2b7e151628aed2a6abf7158809cf4f3c\n',
  );
  const config = join(dir, 'iotgw.yaml');
  const configText = `# site config\nlorawan:\n  devices_file: ${devicesFile}\n`;
  writeFileSync(config, configText);
  const added = iotgw([
    'device',
    'add',
    '--lorawan-otaa',
    '--dev-eui',
    '70B3D57ED00000BB',
    '--join-eui',
    '0000000000000000',
    '--app-key',
    '2B7E151628AED2A6ABF7158809CF4F3C',
    '--config',
    config,
  ]);
  assert.equal(added.status, 0, added.stderr);
  assert.match(added.stdout, /lorawan-devices\.yaml/);
  assert.equal(readFileSync(config, 'utf8'), configText);
  const text = readFileSync(devicesFile, 'utf8');
  assert.match(text, /^# LoRaWAN devices of the north field\n/);
  assert.deepEqual(
    (parse(text) as { dev_eui: string }[]).map((device) => device.dev_eui),
    ['70b3d57ed00000aa', '70b3d57ed00000bb'],
  );
  const duplicate = iotgw([
    'device',
    'add',
    '--lorawan-otaa',
    '--dev-eui',
    '70b3d57ed00000aa',
    '--join-eui',
    '0000000000000000',
    '--app-key',
    '2B7E151628AED2A6ABF7158809CF4F3C',
    '--config',
    config,
  ]);
  assert.equal(duplicate.status, 2);
  assert.match(duplicate.stderr, /already in lorawan\.devices_file/);
  const check = iotgw(['config', 'check', '--config', config]);
  assert.equal(check.status, 0, check.stderr);
});
