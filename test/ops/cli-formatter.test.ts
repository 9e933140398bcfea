// Payload formatters from the command line, run as a user would (the built dist/src/cli.js): `device add
// --codec javascript --formatter-file` checks the file and stores its absolute path; `config check` compiles
// every formatter and fails with exit 78 naming a broken one; `run` refuses to start on one the same way.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { tempDir } from '../helpers/temp-dir.ts';

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));
const EXAMPLE = fileURLToPath(new URL('../../config/iotgw.example.yaml', import.meta.url));
const CLIMATE = fileURLToPath(new URL('../fixtures/formatters/climate-sensor.js', import.meta.url));
const OTAA_KEYS = ['--dev-eui', '70B3D57ED0000011', '--join-eui', '0000000000000000', '--app-key', '2B7E151628AED2A6ABF7158809CF4F3C'];

function iotgw(args: string[], cwd: string) {
  const result = spawnSync(process.execPath, [CLI, ...args], {
    cwd,
    encoding: 'utf8',
    input: '',
    // LoRaWAN on (its formatters are compiled only then), with ports that cannot clash if `run` got far.
    env: {
      ...process.env,
      IOTGW_CONFIG: undefined,
      IOTGW__LORAWAN__ENABLED: 'true',
      IOTGW__LORAWAN__UDP__PORT: '0',
      IOTGW__MQTT__PORT: '0',
      IOTGW__HTTP__PORT: '0',
    },
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

test('device add --codec javascript stores the checked formatter; config check and run refuse a broken one with exit 78', (t) => {
  const dir = tempDir(t);
  const config = join(dir, 'iotgw.yaml');
  writeFileSync(config, readFileSync(EXAMPLE, 'utf8'));
  mkdirSync(join(dir, 'formatters'));
  const formatter = join(dir, 'formatters', 'climate-sensor.js');
  copyFileSync(CLIMATE, formatter);

  const added = iotgw(
    ['device', 'add', '--lorawan-otaa', ...OTAA_KEYS, '--codec', 'javascript', '--formatter-file', 'formatters/climate-sensor.js', '--config', config],
    dir,
  );
  assert.equal(added.status, 0, added.stderr);
  const { lorawan } = parse(readFileSync(config, 'utf8')) as { lorawan: { devices: Record<string, string>[] } };
  assert.equal(lorawan.devices[0]?.codec, 'javascript');
  assert.equal(lorawan.devices[0]?.formatter_file, formatter, 'a relative path is stored absolute');
  const good = iotgw(['config', 'check', '--config', config], dir);
  assert.equal(good.status, 0, good.stderr);

  writeFileSync(formatter, 'function decodeUplink(input) {\n  return { data: { a: 1 };\n}\n');
  const check = iotgw(['config', 'check', '--config', config], dir);
  assert.equal(check.status, 78);
  assert.match(check.stderr, new RegExp(`lorawan\\.devices\\.0\\.formatter_file: ${formatter}: JavaScript syntax error on line 2`));
  const run = iotgw(['run', '--config', config], dir);
  assert.equal(run.status, 78);
  assert.match(run.stderr, new RegExp(`invalid configuration in formatter_file ${formatter}:\\n  - JavaScript syntax error on line 2`));

  const broken = iotgw(
    ['device', 'add', '--lorawan-otaa', ...OTAA_KEYS.with(1, '70B3D57ED0000012'), '--codec', 'javascript', '--formatter-file', formatter, '--config', config],
    dir,
  );
  assert.equal(broken.status, 2);
  assert.match(broken.stderr, /--formatter-file .*climate-sensor\.js:\n {2}- JavaScript syntax error on line 2/);
  const missingFile = iotgw(['device', 'add', '--lorawan-otaa', ...OTAA_KEYS.with(1, '70B3D57ED0000012'), '--codec', 'javascript', '--config', config], dir);
  assert.equal(missingFile.status, 2);
  assert.match(missingFile.stderr, /--codec javascript needs --formatter-file PATH/);
  const wrongCodec = iotgw(
    ['device', 'add', '--lorawan-otaa', ...OTAA_KEYS.with(1, '70B3D57ED0000012'), '--formatter-file', formatter, '--config', config],
    dir,
  );
  assert.equal(wrongCodec.status, 2);
  assert.match(wrongCodec.stderr, /--formatter-file goes with --codec javascript \(this device has --codec raw\)/);
  assert.equal((parse(readFileSync(config, 'utf8')) as { lorawan: { devices: unknown[] } }).lorawan.devices.length, 1, 'nothing refused was written');
});
