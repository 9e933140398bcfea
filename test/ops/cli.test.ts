// The iotgw command line, run as a user would (the built dist/src/cli.js): help, config check/print,
// hash-password, and a bad config that must exit 78 with the key named and no stack trace.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { verifyPassword } from '../../src/ingress/mqtt-broker/password-hash.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));

function iotgw(args: string[], options: { input?: string; env?: NodeJS.ProcessEnv } = {}) {
  const result = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    input: options.input ?? '',
    env: { ...process.env, IOTGW_CONFIG: undefined, ...options.env },
    timeout: 30_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

test('--help lists every command, the config file, environment overrides and exit codes', () => {
  const { status, stdout } = iotgw(['--help']);
  assert.equal(status, 0);
  for (const text of ['iotgw run', 'config check', 'config print', 'hash-password', 'IOTGW__KAFKA__BROKERS', '78']) assert.ok(stdout.includes(text), text);
  for (const text of ['device add', '--lorawan-abp', '--lorawan-otaa', 'buffer stats', 'buffer export', 'iotgw status', 'Examples:', '/api/status']) {
    assert.ok(stdout.includes(text), text);
  }
});

test('--version prints the package version alone', () => {
  const { status, stdout } = iotgw(['--version']);
  assert.equal(status, 0);
  assert.match(stdout, /^\d+\.\d+\.\d+\n$/);
});

test('an unknown command or flag is a usage error (exit 2) that says what was wrong', () => {
  const command = iotgw(['frobnicate']);
  assert.equal(command.status, 2);
  assert.match(command.stderr, /unknown command 'frobnicate'/);
  const flag = iotgw(['run', '--colour']);
  assert.equal(flag.status, 2);
  assert.match(flag.stderr, /--colour/);
});

test('a malformed config exits 78 naming each bad key, with no stack trace; run refuses it the same way', (t) => {
  const path = join(tempDir(t), 'bad.yaml');
  writeFileSync(path, 'mqtt:\n  port: 99999\nkafka:\n  brokers: [nohostport]\nbufer:\n  path: x\n');
  for (const command of [['config', 'check'], ['run']]) {
    const { status, stderr } = iotgw([...command, '--config', path]);
    assert.equal(status, 78, command.join(' '));
    assert.match(stderr, /mqtt\.port: /);
    assert.match(stderr, /kafka\.brokers\.0: expected host:port/);
    assert.match(stderr, /bufer: unknown key/);
    assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
  }
});

test('an unreadable ttn password_file exits 78 from config check and run, naming the key', (t) => {
  const path = join(tempDir(t), 'ttn.yaml');
  writeFileSync(path, 'ttn:\n  enabled: true\n  username: city@ttn\n  password_file: /nonexistent/ttn-api-key\n');
  for (const command of [['config', 'check'], ['run']]) {
    const { status, stderr } = iotgw([...command, '--config', path]);
    assert.equal(status, 78, command.join(' '));
    assert.match(stderr, /ttn\.password_file: cannot read \/nonexistent\/ttn-api-key/);
    assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
  }
});

test('run: a buffer path on a read-only file system exits 78 naming buffer.path and the directory, not ENOENT', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'iotgw-read-only-'));
  const readOnly = join(dir, 'opt-iotgw');
  mkdirSync(readOnly);
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=64k', 'tmpfs', readOnly], { encoding: 'utf8' });
  t.after(() => {
    spawnSync('umount', [readOnly]);
    rmSync(dir, { recursive: true, force: true });
  });
  assert.equal(mount.status, 0, `this test mounts a read-only tmpfs (as ProtectSystem=strict makes /opt) and needs root: ${mount.stderr}`);
  const path = join(dir, 'iotgw.yaml');
  writeFileSync(path, `mqtt: { host: 127.0.0.1, port: 0 }\nhttp: { port: 0 }\nbuffer:\n  path: ${readOnly}/data/buffer.db\n`);
  const { status, stderr } = iotgw(['run', '--config', path]);
  assert.equal(status, 78, stderr);
  assert.match(stderr, new RegExp(`buffer\\.path ${readOnly}/data/buffer\\.db: ${readOnly} is not writable \\(read-only file system\\)`));
  assert.match(stderr, /remove buffer\.path/);
  assert.doesNotMatch(stderr, /ENOENT/);
});

test('run: a kafka.compression whose codec cannot load on this platform exits 78 naming the key, not a restart loop', (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'iotgw.yaml');
  writeFileSync(path, `mqtt: { host: 127.0.0.1, port: 0 }\nhttp: { port: 0 }\nbuffer:\n  path: ${join(dir, 'buffer.db')}\nkafka:\n  compression: lz4\n`);
  // napi-rs' loader refuses the native lz4 binary when told to use WASI and none is installed: a platform without a prebuilt.
  const { status, stderr } = iotgw(['run', '--config', path], { env: { NAPI_RS_FORCE_WASI: 'error' } });
  assert.equal(status, 78, stderr);
  assert.match(stderr, /kafka\.compression lz4: cannot load its codec/);
});

test('run: a buffer file that is not a database exits 78 with what to do, and the file is left untouched', (t) => {
  const dir = tempDir(t);
  const buffer = join(dir, 'buffer.db');
  const garbage = Buffer.from('this was a buffer before the SD card went bad '.repeat(200));
  writeFileSync(buffer, garbage);
  const path = join(dir, 'iotgw.yaml');
  writeFileSync(path, `mqtt: { host: 127.0.0.1, port: 0 }\nhttp: { port: 0 }\nbuffer:\n  path: ${buffer}\n`);
  const { status, stderr } = iotgw(['run', '--config', path]);
  assert.equal(status, 78, stderr);
  assert.match(stderr, /is not a usable SQLite database \(SQLITE_NOTADB/);
  assert.match(stderr, /left it untouched.*\.recover/);
  assert.deepEqual(readFileSync(buffer), garbage);
});

test('config check notes what is valid but open: anonymous access on the network, no devices, an open ops endpoint', (t) => {
  const path = join(tempDir(t), 'iotgw.yaml');
  writeFileSync(path, 'mqtt:\n  allow_anonymous: true\nhttp:\n  host: 0.0.0.0\n');
  const open = iotgw(['config', 'check', '--config', path]);
  assert.equal(open.status, 0, open.stderr);
  assert.match(open.stdout, /^note: mqtt\.allow_anonymous is true on 0\.0\.0\.0:1883/m);
  assert.match(open.stdout, /^note: http\.host is 0\.0\.0\.0 without http\.auth/m);
  writeFileSync(path, 'gateway_id: site-1\n');
  const closed = iotgw(['config', 'check', '--config', path]);
  assert.match(closed.stdout, /^note: no MQTT devices are listed and anonymous access is off.*iotgw device add/m);
  assert.doesNotMatch(closed.stdout, /allow_anonymous is true/);
  assert.doesNotMatch(closed.stdout, /lorawan\.enabled is false/);
  writeFileSync(path, 'lorawan:\n  devices:\n    - { dev_eui: 70b3d57ed0000001, join_eui: "0000000000000000", app_key: 2b7e151628aed2a6abf7158809cf4f3c }\n');
  const off = iotgw(['config', 'check', '--config', path]);
  assert.equal(off.status, 0, off.stderr);
  assert.match(off.stdout, /^note: lorawan\.devices lists 1 devices but lorawan\.enabled is false: they are ignored until you set lorawan\.enabled: true/m);
});

test('config check accepts the shipped example; config print shows the effective config with secrets masked', (t) => {
  const example = fileURLToPath(new URL('../../config/iotgw.example.yaml', import.meta.url));
  const check = iotgw(['config', 'check', '--config', example]);
  assert.equal(check.status, 0, check.stderr);
  assert.match(check.stdout, /configuration OK/);

  const dir = tempDir(t);
  writeFileSync(join(dir, 'pw'), 'sup3r-secret\n');
  const path = join(dir, 'iotgw.yaml');
  writeFileSync(path, `kafka:\n  tls: { enabled: true }\n  sasl: { mechanism: scram-sha-256, username: gw, password_file: ${join(dir, 'pw')} }\n`);
  const print = iotgw(['config', 'print', '--config', path], { env: { IOTGW__MQTT__PORT: '1999' } });
  assert.equal(print.status, 0, print.stderr);
  assert.match(print.stdout, /port: 1999/);
  assert.match(print.stdout, /password: "\*+"|password: \*+/);
  assert.doesNotMatch(print.stdout, /sup3r-secret/);
});

test('hash-password reads stdin and prints a hash that verifies; a short password is refused', async () => {
  const { status, stdout } = iotgw(['hash-password', '--cost', '10'], { input: 'a-long-device-secret\n' });
  assert.equal(status, 0);
  assert.equal(await verifyPassword('a-long-device-secret', stdout.trim()), true);
  const short = iotgw(['hash-password'], { input: 'short\n' });
  assert.equal(short.status, 2);
  assert.match(short.stderr, /too short/);
});
