// The periodic session backup over a real SQLite buffer and real files: what it writes (sealed, mode 0600,
// replaced atomically), what it does when it cannot (counted each time, logged once per cause, never thrown),
// that it never replaces a backup holding sessions the buffer lacks (a new card before the import), and the
// config mapper that refuses a missing, malformed or exposed key file before the gateway starts.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { stringify } from 'yaml';
import { createSqliteStore, type SqliteStore } from '../../../src/buffer/sqlite-store.ts';
import { loadConfig } from '../../../src/config/load.ts';
import { createMetrics, type Metrics } from '../../../src/core/metrics.ts';
import { ConfigError } from '../../../src/errors.ts';
import { STATE_SCOPE } from '../../../src/ingress/lorawan-server/device-sessions.ts';
import { configuredDevices, openSessionArchive } from '../../../src/ingress/lorawan-server/session-archive.ts';
import { createSessionBackup, type SessionBackup, type SessionBackupOptions } from '../../../src/ingress/lorawan-server/session-backup.ts';
import { sessionBackupOptionsFromConfig } from '../../../src/ingress/lorawan-server/session-backup-config.ts';
import { RAW_CODEC } from '../../../src/codecs/payload-codec.ts';
import { captureLog, type CapturedLog } from '../../helpers/capture-log.ts';
import { tempDir } from '../../helpers/temp-dir.ts';
import { waitFor } from '../../helpers/wait-for.ts';

const KEY_HEX = 'c0ffee0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d';
const KEY = Buffer.from(KEY_HEX, 'hex');
const OTAA_EUI = '70b3d57ed0000001';
const ABP_EUI = '0004a30b001c0530';

const DEVICES = configuredDevices([
  { devEui: OTAA_EUI, name: 'lamp-1', codec: RAW_CODEC, activation: { mode: 'otaa', joinEui: '70b3d57ed0000000', appKey: Buffer.alloc(16, 1) } },
  {
    devEui: ABP_EUI,
    name: 'meter-1',
    codec: RAW_CODEC,
    activation: { mode: 'abp', devAddr: '26011bda', nwkSKey: Buffer.alloc(16, 2), appSKey: Buffer.alloc(16, 3) },
  },
]);

function otaaState(fCntUpNext: number): string {
  const session = { dev_addr: '26a1b2c3', nwk_s_key: 'aa'.repeat(16), app_s_key: 'bb'.repeat(16), id: 'join-1', f_cnt_up_next: fCntUpNext, f_cnt_down: 0 };
  return JSON.stringify({ v: 1, session, dev_nonces: [771], join_nonce: 1 });
}

function openStore(t: TestContext, dir: string, name = 'buffer.db'): SqliteStore {
  const store = createSqliteStore({ path: join(dir, name), maxRecords: 1000, maxBytes: 1_000_000, whenFull: 'reject' });
  t.after(() => store.close());
  return store;
}

function commitState(store: SqliteStore, devEui: string, value: string): void {
  store.append([], [{ scope: STATE_SCOPE, key: devEui, value }]);
}

interface Harness {
  readonly backup: SessionBackup;
  readonly metrics: Metrics;
  readonly captured: CapturedLog;
}

function backupOf(store: { readState(scope: string): ReadonlyMap<string, string> }, options: Partial<SessionBackupOptions> & { path: string }): Harness {
  const metrics = createMetrics({ processMetrics: false });
  const captured = captureLog('debug');
  const backup = createSessionBackup(
    { intervalMs: 3_600_000, key: KEY, gatewayId: 'meter-room-01', devices: DEVICES, ...options },
    { readState: async (scope) => store.readState(scope), log: captured.log, metrics },
  );
  return { backup, metrics, captured };
}

async function failures(metrics: Metrics, reason: string): Promise<number> {
  return (await metrics.lorawanSessionBackupFailures.get()).values.find((value) => value.labels.reason === reason)?.value ?? 0;
}

function sessionsIn(path: string, key = KEY): ReadonlyMap<string, unknown> {
  const opened = openSessionArchive(readFileSync(path), key);
  assert.ok(opened.ok, 'the backup opens with its key');
  return new Map(opened.archive.devices.map((device) => [device.dev_eui, device.state]));
}

test('a backup is the committed state, sealed, mode 0600, replaced atomically by the next one', async (t) => {
  const dir = tempDir(t);
  const store = openStore(t, dir);
  commitState(store, OTAA_EUI, otaaState(5));
  const path = join(dir, 'backup', 'sessions.enc');
  mkdirSync(join(dir, 'backup'));
  const { backup, metrics } = backupOf(store, { path });

  assert.deepEqual(await backup.backupNow(), { ok: true, devices: 1 });
  assert.equal(statSync(path).mode & 0o777, 0o600);
  assert.deepEqual(sessionsIn(path), new Map([[OTAA_EUI, JSON.parse(otaaState(5))]]));
  assert.ok(((await metrics.lorawanSessionBackupLastSuccess.get()).values[0]?.value ?? 0) > 0, 'the last-success gauge is set');

  commitState(store, OTAA_EUI, otaaState(9));
  commitState(
    store,
    ABP_EUI,
    JSON.stringify({ v: 1, session: { dev_addr: '26011bda', id: 'abp-x', f_cnt_up_next: 3, f_cnt_down: 0 }, dev_nonces: [], join_nonce: 0 }),
  );
  assert.deepEqual(await backup.backupNow(), { ok: true, devices: 2 });
  assert.deepEqual((sessionsIn(path).get(OTAA_EUI) as { session: { f_cnt_up_next: number } }).session.f_cnt_up_next, 9);
  assert.deepEqual(readdirSync(join(dir, 'backup')), ['sessions.enc'], 'no temp file left beside it');
  assert.equal(statSync(path).mode & 0o777, 0o600);
});

test('a failing backup is counted each time, logged once per cause with what to do, and the recovery is logged', async (t) => {
  const dir = tempDir(t);
  const store = openStore(t, dir);
  commitState(store, OTAA_EUI, otaaState(5));
  const stick = join(dir, 'usb-stick');
  const { backup, metrics, captured } = backupOf(store, { path: join(stick, 'sessions.enc') });
  const failed = () => captured.lines().filter((line) => String(line.msg).startsWith('LoRaWAN session backup failed'));

  const first = await backup.backupNow();
  assert.equal(first.ok, false);
  assert.equal(first.ok ? '' : first.cause, 'ENOENT');
  await backup.backupNow();
  assert.equal(await failures(metrics, 'ENOENT'), 2, 'counted each time');
  assert.equal(failed().length, 1, 'logged once');
  assert.match(String(failed()[0]?.msg), /usb-stick does not exist \(a USB stick or network share not mounted\?\): mount it/);
  assert.equal(failed()[0]?.level, 'error');
  assert.equal(backup.health().status, 'degraded');

  mkdirSync(stick);
  assert.equal((await backup.backupNow()).ok, true);
  assert.ok(captured.messages().includes('LoRaWAN session backup written again'));
  assert.equal(backup.health().status, 'ok');

  const broken = backupOf(
    {
      readState: () => {
        throw new Error('buffer thread gone');
      },
    },
    { path: join(stick, 'other.enc') },
  );
  const outcome = await broken.backup.backupNow();
  assert.equal(outcome.ok ? '' : outcome.cause, 'read-state');
  assert.equal(await failures(broken.metrics, 'read-state'), 1);
  assert.match(String(broken.captured.lines()[0]?.msg), /could not be read from the buffer: buffer thread gone/);
});

test('a backup holding sessions the buffer lacks (a new card, not imported yet) is not replaced, nor one it cannot read', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'sessions.enc');
  const old = openStore(t, dir, 'old.db');
  commitState(old, OTAA_EUI, otaaState(5));
  assert.equal((await backupOf(old, { path }).backup.backupNow()).ok, true);
  const saved = readFileSync(path);

  const fresh = openStore(t, dir, 'new.db');
  const { backup, metrics, captured } = backupOf(fresh, { path });
  const outcome = await backup.backupNow();
  assert.equal(outcome.ok ? '' : outcome.cause, 'would-lose-sessions');
  assert.deepEqual(readFileSync(path), saved, 'the only copy of the sessions is untouched');
  assert.equal(await failures(metrics, 'would-lose-sessions'), 1);
  assert.match(
    String(captured.lines()[0]?.msg),
    new RegExp(`holds sessions of 1 configured devices that this buffer has no state for \\(${OTAA_EUI}\\).*iotgw lorawan sessions import`),
  );

  const otherKey = backupOf(fresh, { path, key: Buffer.alloc(32, 9) });
  const unreadable = await otherKey.backup.backupNow();
  assert.equal(unreadable.ok ? '' : unreadable.cause, 'previous-unreadable');
  assert.match(
    unreadable.ok ? '' : unreadable.message,
    /cannot be read with lorawan\.session_backup\.key_file \(it was encrypted with another key.*Move it aside/,
  );
  assert.deepEqual(readFileSync(path), saved);

  // Only configured devices count: a backup whose sessions are all of devices no longer configured is replaced.
  assert.equal((await backupOf(fresh, { path, devices: new Map() }).backup.backupNow()).ok, true);
  assert.equal(sessionsIn(path).size, 0);
});

test('started, the first backup comes shortly after start; stopped, the schedule ends', async (t) => {
  const dir = tempDir(t);
  const store = openStore(t, dir);
  commitState(store, OTAA_EUI, otaaState(5));
  const path = join(dir, 'sessions.enc');
  const { backup, captured } = backupOf(store, { path, firstDelayMs: 0 });
  await backup.start();
  t.after(() => backup.stop());
  await waitFor(() => captured.messages().includes('LoRaWAN session backup written'), 'the first backup', 10_000);
  assert.equal(sessionsIn(path).size, 1);
  await backup.stop();
  assert.equal(backup.health().status, 'ok');
});

function writeConfig(dir: string, backup: Record<string, unknown>, lorawanEnabled = true): string {
  const path = join(dir, 'iotgw.yaml');
  writeFileSync(
    path,
    stringify({
      buffer: { path: join(dir, 'buffer.db') },
      lorawan: {
        enabled: lorawanEnabled,
        devices: [{ dev_eui: OTAA_EUI, join_eui: '70b3d57ed0000000', app_key: '01'.repeat(16) }],
        session_backup: backup,
      },
    }),
  );
  return path;
}

function configIssues(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error.message;
  }
  return assert.fail('expected a ConfigError');
}

test('the backup config: off by default; a missing, malformed or exposed key file stops the start with a ConfigError', (t) => {
  const dir = tempDir(t);
  const keyFile = join(dir, 'backup.key');
  writeFileSync(keyFile, `${KEY_HEX}\n`, { mode: 0o600 });
  const env = { BACKUP_DIR: join(dir, 'stick') };

  assert.equal(sessionBackupOptionsFromConfig(loadConfig({ env: {} }), env), null, 'off by default');
  assert.equal(loadConfig({ env: {} }).lorawan.session_backup.interval_s, 3600);
  const off = writeConfig(dir, { path: '${BACKUP_DIR}/sessions.enc', key_file: keyFile }, false);
  assert.equal(sessionBackupOptionsFromConfig(loadConfig({ path: off, env }), env), null, 'nothing to back up with LoRaWAN off');

  const good = loadConfig({ path: writeConfig(dir, { path: '${BACKUP_DIR}/sessions.enc', key_file: keyFile, interval_s: 600 }), env });
  const options = sessionBackupOptionsFromConfig(good, env);
  assert.equal(options?.path, join(dir, 'stick', 'sessions.enc'));
  assert.equal(options?.intervalMs, 600_000);
  assert.deepEqual(options?.key, KEY);
  assert.equal(options?.devices.get(OTAA_EUI)?.activation, 'otaa');

  assert.match(
    configIssues(() => loadConfig({ path: writeConfig(dir, { path: '/mnt/backup/sessions.enc' }), env })),
    /lorawan\.session_backup\.key_file: session_backup\.path is set: give key_file too/,
  );
  assert.match(
    configIssues(() => loadConfig({ path: writeConfig(dir, { path: '/mnt/x.enc', key_file: keyFile, interval_s: 5 }), env })),
    /lorawan\.session_backup\.interval_s: expected a whole number of at least 60/,
  );

  const missing = loadConfig({ path: writeConfig(dir, { path: '/mnt/x.enc', key_file: join(dir, 'nope.key') }), env });
  assert.match(
    configIssues(() => sessionBackupOptionsFromConfig(missing, env)),
    /lorawan\.session_backup:\n {2}- key_file: cannot read .*nope\.key/,
  );

  writeFileSync(join(dir, 'short.key'), 'c0ffee\n', { mode: 0o600 });
  const short = loadConfig({ path: writeConfig(dir, { path: '/mnt/x.enc', key_file: join(dir, 'short.key') }), env });
  assert.match(
    configIssues(() => sessionBackupOptionsFromConfig(short, env)),
    /must hold a 32-byte key as 64 hex digits .*openssl rand -hex 32/,
  );

  chmodSync(keyFile, 0o640);
  const exposed = loadConfig({ path: writeConfig(dir, { path: '/mnt/x.enc', key_file: keyFile }), env });
  assert.match(
    configIssues(() => sessionBackupOptionsFromConfig(exposed, env)),
    /has mode 0640, so other users may read .*chmod 600/,
  );
});

test('after a reload the backup carries the ABP keys of the config now, not of the start', async (t) => {
  const dir = tempDir(t);
  const store = openStore(t, dir);
  const rekeyed = configuredDevices([
    {
      devEui: ABP_EUI,
      name: 'meter-1',
      codec: RAW_CODEC,
      activation: { mode: 'abp', devAddr: '26011bda', nwkSKey: Buffer.alloc(16, 9), appSKey: Buffer.alloc(16, 3) },
    },
  ]);
  // The gateway, reloaded with new keys for the device, has committed the new session's counters.
  const id = rekeyed.get(ABP_EUI)?.abpSession?.id;
  assert.ok(id !== undefined);
  commitState(store, ABP_EUI, JSON.stringify({ v: 1, session: { dev_addr: '26011bda', id, f_cnt_up_next: 3, f_cnt_down: 0 }, dev_nonces: [], join_nonce: 0 }));
  const path = join(dir, 'sessions.enc');
  const { backup } = backupOf(store, { path });
  const abpKeys = () => {
    const opened = openSessionArchive(readFileSync(path), KEY);
    assert.ok(opened.ok);
    return opened.archive.devices.find((device) => device.dev_eui === ABP_EUI)?.session?.nwk_s_key;
  };
  assert.deepEqual(await backup.backupNow(), { ok: true, devices: 1 });
  assert.equal(abpKeys(), null, 'the keys of the start do not make that session');
  backup.replaceDevices(rekeyed);
  assert.deepEqual(await backup.backupNow(), { ok: true, devices: 1 });
  assert.equal(abpKeys(), '09'.repeat(16));
});
