// `iotgw device import`, run as a user would (the built dist/src/cli.js): its --help, an import
// into a copy of the shipped example config that `config check` then accepts with every comment kept, and a
// refused file that exits 2 with the line named, no stack trace, and the config untouched.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { exampleCopy, iotgw } from '../helpers/iotgw-cli.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURES = join(REPO_ROOT, 'test/fixtures/device-import');

test('device import --help explains the formats, the options and what is refused; --help lists the command', () => {
  const help = iotgw(['device', 'import', '--help']);
  assert.equal(help.status, 0, help.stderr);
  for (const text of [
    'iotgw device import FILE',
    'tts-json',
    'ttn-lw-cli end-devices get APP_ID DEVICE_ID --all',
    'chirpstack-csv',
    'nwk_key (the AppKey of LoRaWAN',
    'iotgw-yaml',
    '--dry-run',
    '--skip-invalid',
    '--codec',
    'sudo systemctl reload iotgw',
  ]) {
    assert.ok(help.stdout.includes(text), text);
  }
  const usage = iotgw(['--help']);
  assert.equal(usage.status, 0);
  assert.match(usage.stdout, /iotgw device import FILE \[--format tts-json\|chirpstack-csv\|iotgw-yaml\]/);
});

test('device import adds a TTS export to the example config: summary, restart hint, comments kept, config check passes', (t) => {
  const config = exampleCopy(t);
  const before = readFileSync(config, 'utf8');
  const imported = iotgw(['device', 'import', join(FIXTURES, 'tts-devices.json'), '--config', config]);
  assert.equal(imported.status, 0, imported.stderr);
  assert.equal(imported.stderr, '');
  assert.match(imported.stdout, /^4 added to .*iotgw\.yaml \(2 OTAA, 2 ABP, read as tts-json\), 0 refused\n/);
  assert.match(imported.stdout, /apply them to the running gateway with sudo systemctl reload iotgw \(no connection is dropped\)\n/);
  // The shipped example has LoRaWAN off: the import says the devices wait for it.
  assert.match(imported.stdout, /note: lorawan\.enabled is not true in this config: LoRaWAN devices are ignored until you set it/);
  const after = readFileSync(config, 'utf8');
  const comments = (text: string) => text.split('\n').filter((line) => line.trimStart().startsWith('#'));
  assert.deepEqual(comments(after), comments(before), 'every comment is kept');
  const check = iotgw(['config', 'check', '--config', config]);
  assert.equal(check.status, 0, check.stderr);

  const again = iotgw(['device', 'import', join(FIXTURES, 'tts-devices.json'), '--dry-run', '--config', config]);
  assert.equal(again.status, 2);
  assert.match(
    again.stderr,
    /tts-devices\.json:2: dev_eui 70b3d57ed0000001: dev_eui: already in lorawan\.devices of [^;]*iotgw\.yaml; leave it out of the file, or remove it there first to change its keys\n/,
  );
  assert.doesNotMatch(again.stderr, /same NwkSKey/, 'a device met again is named once, as a duplicate DevEUI');
  assert.match(again.stderr, /^iotgw: dry run: 0 added, 4 of 4 refused, so .* is unchanged: fix the rows above\n$/m);
  assert.doesNotMatch(again.stderr, /--help/, 'the rows are what to fix, not the command line');
  assert.equal(readFileSync(config, 'utf8'), after);
});

test('device import refuses a bad file with exit 2, names the line, prints no key and no stack trace', (t) => {
  const config = exampleCopy(t);
  const before = readFileSync(config, 'utf8');
  const csv = join(tempDir(t), 'from-chirpstack.csv');
  writeFileSync(
    csv,
    'dev_eui;name;join_eui;nwk_key\n24E124136B502217;em300-1;24E124C0002A0001;5572404C696E6B4C6F52613230313823\n24E124136B502218;em300-2;;5572404C696E6B4C6F5261323031\n',
  );
  const refused = iotgw(['device', 'import', csv, '--format', 'chirpstack-csv', '--config', config]);
  assert.equal(refused.status, 2);
  assert.match(refused.stderr, /from-chirpstack\.csv:3: dev_eui 24e124136b502218: nwk_key: expected 32 hex digits \(AppKey\), got 28 digits; correct it/);
  assert.match(refused.stderr, /; join_eui: missing: iotgw refuses join-requests naming another JoinEUI/);
  assert.match(refused.stderr, /give --skip-invalid to add the 1 valid one/);
  assert.doesNotMatch(refused.stderr, /5572404C696E6B4C6F52/i, 'no key, not even a broken one');
  assert.doesNotMatch(refused.stderr, /\n\s+at /, 'no stack trace');
  assert.equal(readFileSync(config, 'utf8'), before);

  const noConfig = iotgw(['device', 'import', csv]);
  assert.equal(noConfig.status, 2);
  assert.match(noConfig.stderr, /device import edits a config file: give --config FILE/);
  const noFile = iotgw(['device', 'import', '--config', config]);
  assert.equal(noFile.status, 2);
  assert.match(noFile.stderr, /device import takes one file/);
});
