// `iotgw lorawan sessions export|import` and the periodic session backup, run as a user runs them: the built CLI
// and the gateway process on real SQLite files, an OTAA device that really joined and an ABP device, frames built
// with the gateway's own encoders and carried by a simulated packet forwarder. After export -> a new, empty buffer
// -> import, the gateway started on it must accept the next uplinks of both devices without a join, and refuse
// replays of frames from before the move. Then every refusal: the gateway running, a damaged, altered or foreign
// file, a wrong or missing key, an unknown device, an exposed key file; and --dry-run writing nothing.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createSimulatedForwarder, type SimulatedForwarder } from '../../firmware-sim/transports/packet-forwarder.ts';
import { readStateReadOnly } from '../../src/buffer/buffer-state-file.ts';
import { createSqliteStore } from '../../src/buffer/sqlite-store.ts';
import { loadConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { decodeJoinAccept, deriveSessionKeys, encodeDataFrame, encodeJoinRequest } from '../../src/ingress/lorawan/frame-crypto.ts';
import { parsePhyPayload } from '../../src/ingress/lorawan/phy-payload.ts';
import { STATE_SCOPE } from '../../src/ingress/lorawan-server/device-sessions.ts';
import { openSessionArchive, type SessionArchive } from '../../src/ingress/lorawan-server/session-archive.ts';
import type { Txpk } from '../../src/ingress/semtech-udp/packets.ts';
import { CommandError } from '../../src/ops/commands/command-error.ts';
import { sessionsExportCommand } from '../../src/ops/commands/lorawan-sessions.ts';
import { freeUdpPort, type GatewayProcess, startGatewayProcess, writeGatewayConfig } from '../helpers/gateway-process.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait-for.ts';

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));
const run = promisify(execFile);

/** The CLI in its own process, without blocking this one (the gateway's log pipe keeps draining). */
async function iotgw(args: readonly string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { env: { ...process.env, IOTGW_CONFIG: undefined }, timeout: 60_000 });
    return { status: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { status: failed.code ?? -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

const OTAA = { dev_eui: '70b3d57ed0000101', join_eui: '70b3d57ed0000100', app_key: '98929b92c49edba9676d646d3b612456' } as const;
const ABP = {
  dev_eui: '70b3d57ed0000102',
  dev_addr: '26011bda',
  nwk_s_key: '2b7e151628aed2a6abf7158809cf4f3c',
  app_s_key: '000102030405060708090a0b0c0d0e0f',
} as const;
const KEY_HEX = '5f1d3c2b4a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f001';
const GATEWAY_EUI = 'aa555a0000000001';

interface Session {
  readonly devAddr: string;
  readonly nwkSKey: Buffer;
  readonly appSKey: Buffer;
}

const ABP_SESSION: Session = { devAddr: ABP.dev_addr, nwkSKey: Buffer.from(ABP.nwk_s_key, 'hex'), appSKey: Buffer.from(ABP.app_s_key, 'hex') };

function uplink(session: Session, fcnt: number): Buffer {
  return encodeDataFrame({ mtype: 'UnconfirmedDataUp', ...session, fcnt32: fcnt, fport: 2, payload: Buffer.from([fcnt & 0xff, 0x42]) });
}

interface BackupConfig {
  readonly path: string;
  readonly key_file: string;
  readonly interval_s?: number;
}

function gatewayConfig(dir: string, options: { readonly buffer: string; readonly udpPort: number; readonly backup?: BackupConfig }): string {
  const config: ConfigInput = {
    gateway_id: 'meter-room-07',
    mqtt: { host: '127.0.0.1', port: 0 },
    http: { host: '127.0.0.1', port: 0 },
    kafka: { brokers: ['127.0.0.1:1'], connection_timeout_ms: 200, retry_initial_ms: 100, retry_max_ms: 500 },
    buffer: { path: options.buffer },
    lorawan: {
      enabled: true,
      net_id: '000013',
      udp: { host: '127.0.0.1', port: options.udpPort },
      dedup_window_ms: 50,
      devices: [OTAA, ABP],
      ...(options.backup === undefined ? {} : { session_backup: options.backup }),
    },
  };
  mkdirSync(dir, { recursive: true });
  return writeGatewayConfig(dir, config);
}

async function forwarderTo(t: TestContext, udpPort: number, downlinks: Txpk[] = []): Promise<SimulatedForwarder> {
  const forwarder = createSimulatedForwarder({ gatewayEui: GATEWAY_EUI, server: { host: '127.0.0.1', port: udpPort }, keepaliveMs: 1_000 });
  forwarder.onDownlink((txpk) => {
    downlinks.push(txpk);
    return 'NONE';
  });
  await forwarder.start();
  t.after(() => forwarder.stop());
  // PULL_ACK: the gateway has the downlink route a join-accept needs.
  await waitFor(() => forwarder.counters().pullAcked > 0, 'the PULL_ACK', 10_000);
  return forwarder;
}

/** MType 001 in the MHDR (LoRaWAN 1.0.2 §4.2.1). */
const isJoinAccept = (txpk: Txpk): boolean => (Buffer.from(txpk.data, 'base64')[0] ?? 0) >> 5 === 1;

const accepted = (gateway: GatewayProcess): Promise<number> => gateway.metric('iotgw_ingress_accepted_total', ['source="semtech-udp"']);
const rejected = (gateway: GatewayProcess, reason: string): Promise<number> =>
  gateway.metric('iotgw_ingress_rejected_total', ['source="semtech-udp"', `reason="${reason}"`]);

function keyFile(dir: string, mode = 0o600): string {
  const path = join(dir, 'session-backup.key');
  writeFileSync(path, `${KEY_HEX}\n`, { mode });
  chmodSync(path, mode);
  return path;
}

function archiveIn(path: string, key: Buffer | null = null): SessionArchive {
  const opened = openSessionArchive(readFileSync(path), key);
  assert.ok(opened.ok, `${path} opens: ${opened.ok ? '' : opened.problems.join('; ')}`);
  return opened.archive;
}

test('sessions exported from a running gateway and imported into a new buffer: OTAA goes on without a join, ABP with its counters, replays stay refused', async (t) => {
  const dir = tempDir(t);
  const oldBuffer = join(dir, 'old-card', 'buffer.db');
  const udpPort = await freeUdpPort();
  const oldConfig = gatewayConfig(join(dir, 'old-card'), { buffer: oldBuffer, udpPort });
  let gateway = await startGatewayProcess(t, oldConfig, { IOTGW_CLOCK_TRUSTED: '1' });

  // The OTAA device joins for real; then both devices send.
  const downlinks: Txpk[] = [];
  const forwarder = await forwarderTo(t, udpPort, downlinks);
  const appKey = Buffer.from(OTAA.app_key, 'hex');
  await forwarder.pushRxpk([{ phyPayload: encodeJoinRequest({ appKey, joinEui: OTAA.join_eui, devEui: OTAA.dev_eui, devNonce: 0x1234 }) }]);
  await waitFor(() => downlinks.some(isJoinAccept), 'the join-accept', 15_000);
  const accept = decodeJoinAccept(appKey, Buffer.from((downlinks.find(isJoinAccept) as Txpk).data, 'base64'));
  assert.ok(accept.ok, 'the join-accept decrypts with the AppKey');
  const otaa: Session = { devAddr: accept.devAddr, ...deriveSessionKeys(appKey, accept.joinNonce, accept.netId, 0x1234) };
  for (const fcnt of [0, 1, 2]) assert.equal(await forwarder.pushRxpk([{ phyPayload: uplink(otaa, fcnt) }]), true);
  for (const fcnt of [10, 11]) assert.equal(await forwarder.pushRxpk([{ phyPayload: uplink(ABP_SESSION, fcnt) }]), true);
  await waitFor(async () => (await accepted(gateway)) === 5, 'five uplinks committed', 20_000, 100);

  // Export beside the running gateway; an import into its buffer is refused.
  const exportPath = join(dir, 'sessions.json');
  const exported = await iotgw(['lorawan', 'sessions', 'export', '--out', exportPath, '--config', oldConfig]);
  assert.equal(exported.status, 0, exported.stderr);
  assert.match(
    exported.stderr,
    new RegExp(`exported 2 LoRaWAN devices \\(2 with a session\\) from ${oldBuffer} to ${exportPath}, as plain JSON: it holds session keys`),
  );
  assert.equal(exported.stdout, '', 'nothing on the terminal');
  assert.equal(statSync(exportPath).mode & 0o777, 0o600);
  const archive = archiveIn(exportPath);
  assert.equal(archive.gateway_id, 'meter-room-07');
  const byEui = new Map(archive.devices.map((device) => [device.dev_eui, device]));
  assert.deepEqual(byEui.get(OTAA.dev_eui)?.session, {
    dev_addr: otaa.devAddr,
    nwk_s_key: otaa.nwkSKey.toString('hex'),
    app_s_key: otaa.appSKey.toString('hex'),
    id: byEui.get(OTAA.dev_eui)?.session?.id,
    f_cnt_up_next: 3,
    f_cnt_down: JSON.parse(readStateReadOnly(oldBuffer, STATE_SCOPE).get(OTAA.dev_eui) ?? '').session.f_cnt_down,
  });
  assert.deepEqual(byEui.get(OTAA.dev_eui)?.dev_nonces, [0x1234]);
  assert.equal(byEui.get(ABP.dev_eui)?.session?.nwk_s_key, ABP.nwk_s_key, 'ABP keys from the config, for another network server');
  assert.equal(byEui.get(ABP.dev_eui)?.session?.f_cnt_up_next, 12);
  const again = await iotgw(['lorawan', 'sessions', 'export', '--out', exportPath, '--config', oldConfig]);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /exists: an export never replaces a file/);

  const whileRunning = await iotgw(['lorawan', 'sessions', 'import', exportPath, '--config', oldConfig]);
  assert.equal(whileRunning.status, 1);
  assert.match(whileRunning.stderr, /is open in another process: the gateway runs on it .*Stop the gateway first \(sudo systemctl stop iotgw\)/);
  const dryWhileRunning = await iotgw(['lorawan', 'sessions', 'import', exportPath, '--dry-run', '--config', oldConfig]);
  assert.equal(dryWhileRunning.status, 0, dryWhileRunning.stderr);
  assert.match(dryWhileRunning.stdout, /the buffer already has its state: kept/);
  assert.match(dryWhileRunning.stdout, /note: the gateway runs on .*stop it before the import/);

  // The card dies: the gateway is gone; a new card, a new empty buffer.
  assert.equal(await gateway.kill('SIGKILL'), null);
  const newBuffer = join(dir, 'new-card', 'state', 'buffer.db');
  const newUdpPort = await freeUdpPort();
  const newConfig = gatewayConfig(join(dir, 'new-card'), { buffer: newBuffer, udpPort: newUdpPort });

  const dry = await iotgw(['lorawan', 'sessions', 'import', exportPath, '--dry-run', '--config', newConfig]);
  assert.equal(dry.status, 0, dry.stderr);
  assert.match(dry.stdout, new RegExp(`${OTAA.dev_eui} OTAA DevAddr ${otaa.devAddr}, FCntUp next 3, FCntDown \\d+: would be imported`));
  assert.match(dry.stdout, /dry run: 2 of 2 devices would be imported .*nothing was written/);
  assert.match(dry.stdout, /does not exist yet: the import creates it/);
  assert.equal(existsSync(newBuffer), false, '--dry-run wrote nothing');

  const imported = await iotgw(['lorawan', 'sessions', 'import', exportPath, '--config', newConfig]);
  assert.equal(imported.status, 0, imported.stderr);
  assert.match(imported.stdout, new RegExp(`${ABP.dev_eui} ABP  DevAddr ${ABP.dev_addr}, FCntUp next 12, FCntDown \\d+: imported\\n`));
  assert.match(imported.stdout, /imported 2 of 2 devices into .* \(one transaction\)/);
  assert.deepEqual(readStateReadOnly(newBuffer, STATE_SCOPE), readStateReadOnly(oldBuffer, STATE_SCOPE), 'the state rows, as committed');
  const twice = await iotgw(['lorawan', 'sessions', 'import', exportPath, '--config', newConfig]);
  assert.match(twice.stdout, /the buffer already has its state: kept \(--replace overwrites it\)/);
  assert.match(twice.stdout, /imported 0 of 2 devices/);

  // The gateway on the new card continues both devices.
  gateway = await startGatewayProcess(t, newConfig, { IOTGW_CLOCK_TRUSTED: '1' });
  const newDownlinks: Txpk[] = [];
  const newForwarder = await forwarderTo(t, newUdpPort, newDownlinks);
  // First, frames from before the move: only the imported counters tell them from new ones. An older one is a
  // replay; the last one is a retransmission of a frame already stored. Neither is stored again.
  for (const phyPayload of [uplink(otaa, 1), uplink(ABP_SESSION, 10), uplink(otaa, 2), uplink(ABP_SESSION, 11)]) {
    assert.equal(await newForwarder.pushRxpk([{ phyPayload }]), true);
  }
  await waitFor(
    async () => (await rejected(gateway, 'replay')) === 2 && (await rejected(gateway, 'retransmission')) === 2,
    'the frames from before the move refused',
    20_000,
    100,
  );
  assert.equal(await accepted(gateway), 0);
  assert.equal(await newForwarder.pushRxpk([{ phyPayload: uplink(otaa, 3) }]), true);
  assert.equal(await newForwarder.pushRxpk([{ phyPayload: uplink(ABP_SESSION, 12) }]), true);
  await waitFor(async () => (await accepted(gateway)) === 2, 'the next uplink of each device', 20_000, 100);
  assert.equal(await rejected(gateway, 'replay'), 2, 'nothing else refused');
  assert.equal(await rejected(gateway, 'mic-mismatch'), 0);
  assert.equal(newDownlinks.filter(isJoinAccept).length, 0, 'no join-accept: the OTAA device never joined again');
  // A downlink after the move (an ACK, a MAC answer) goes on from the imported FCntDown: a device drops a repeated one.
  const importedFCntDown = new Map(archive.devices.map((device) => [device.session?.dev_addr, device.session?.f_cnt_down ?? 0]));
  for (const txpk of newDownlinks) {
    const parsed = parsePhyPayload(Buffer.from(txpk.data, 'base64'));
    if (parsed.ok && parsed.frame.kind === 'data') assert.ok(parsed.frame.fcnt16 >= (importedFCntDown.get(parsed.frame.devAddr) ?? 0), 'FCntDown continues');
  }
  assert.equal(await gateway.metric('iotgw_lorawan_joins_total'), 0);
});

test('the gateway writes its first backup shortly after start, sealed and 0600, and it imports; an exposed or missing key file stops the start', async (t) => {
  const dir = tempDir(t);
  const key = keyFile(dir);
  const backupPath = join(dir, 'iotgw-sessions.enc');
  const buffer = join(dir, 'buffer.db');
  const store = createSqliteStore({ path: buffer, maxRecords: 100, maxBytes: 100_000, whenFull: 'reject' });
  const otaaState = {
    v: 1,
    session: { dev_addr: '26a1b2c3', nwk_s_key: 'aa'.repeat(16), app_s_key: 'bb'.repeat(16), id: 'j-1', f_cnt_up_next: 7, f_cnt_down: 1 },
    dev_nonces: [5],
    join_nonce: 1,
  };
  store.append([], [{ scope: STATE_SCOPE, key: OTAA.dev_eui, value: JSON.stringify(otaaState) }]);
  store.close();
  const config = gatewayConfig(dir, { buffer, udpPort: await freeUdpPort(), backup: { path: backupPath, key_file: key } });

  const gateway = await startGatewayProcess(t, config, { IOTGW_CLOCK_TRUSTED: '1' });
  await gateway.waitForLog((line) => line.msg === 'LoRaWAN session backup written', 30_000);
  assert.equal(statSync(backupPath).mode & 0o777, 0o600);
  assert.deepEqual(archiveIn(backupPath, Buffer.from(KEY_HEX, 'hex')).devices[0]?.state, otaaState);
  assert.ok((await gateway.metric('iotgw_lorawan_session_backup_last_success_timestamp_seconds')) > 0);
  assert.equal(await gateway.kill('SIGTERM'), 0);
  assert.match(readFileSync(backupPath).subarray(0, 60).toString('latin1'), /^iotgw-lorawan-sessions\+aes-256-gcm;v=1;key=[0-9a-f]{16}\n/);
  const restoredBuffer = join(dir, 'restored', 'buffer.db');
  const restoredConfig = gatewayConfig(join(dir, 'restored'), { buffer: restoredBuffer, udpPort: 0 });
  const restored = await iotgw(['lorawan', 'sessions', 'import', backupPath, '--key-file', key, '--config', restoredConfig]);
  assert.equal(restored.status, 0, restored.stderr);
  assert.match(restored.stdout, /1 devices, exported .* by gateway meter-room-07 \(encrypted, authenticated\)/);
  assert.deepEqual(readStateReadOnly(restoredBuffer, STATE_SCOPE), readStateReadOnly(buffer, STATE_SCOPE));

  chmodSync(key, 0o644);
  const exposed = await iotgw(['run', '--config', config]);
  assert.equal(exposed.status, 78, 'a configuration error: systemd does not restart on it');
  assert.match(exposed.stderr, /lorawan\.session_backup:\n {2}- key_file: .*session-backup\.key has mode 0644, so other users may read .*chmod 600/);

  const missingKey = gatewayConfig(join(dir, 'other'), { buffer, udpPort: 0, backup: { path: backupPath, key_file: join(dir, 'gone.key') } });
  const missing = await iotgw(['run', '--config', missingKey]);
  assert.equal(missing.status, 78);
  assert.match(missing.stderr, /key_file: cannot read .*gone\.key/);
});

test('import refuses a damaged, altered or foreign file and a wrong or missing key, writing nothing; unknown devices are skipped unless --all', async (t) => {
  const dir = tempDir(t);
  const key = keyFile(dir);
  const buffer = join(dir, 'buffer.db');
  const store = createSqliteStore({ path: buffer, maxRecords: 100, maxBytes: 100_000, whenFull: 'reject' });
  const stranger = '70b3d57ed00001ff';
  const state = (fCntUpNext: number) => ({
    v: 1,
    session: { dev_addr: '26a1b2c3', nwk_s_key: 'aa'.repeat(16), app_s_key: 'bb'.repeat(16), id: 'j-1', f_cnt_up_next: fCntUpNext, f_cnt_down: 1 },
    dev_nonces: [5],
    join_nonce: 1,
  });
  store.append(
    [],
    [
      { scope: STATE_SCOPE, key: OTAA.dev_eui, value: JSON.stringify(state(7)) },
      { scope: STATE_SCOPE, key: stranger, value: JSON.stringify(state(70)) },
      // The ABP device under keys the config does not have any more.
      {
        scope: STATE_SCOPE,
        key: ABP.dev_eui,
        value: JSON.stringify({
          v: 1,
          session: { dev_addr: ABP.dev_addr, id: 'abp-0123456789ab', f_cnt_up_next: 40, f_cnt_down: 0 },
          dev_nonces: [],
          join_nonce: 0,
        }),
      },
    ],
  );
  store.close();
  const config = gatewayConfig(dir, { buffer, udpPort: 0 });
  const sealed = join(dir, 'sessions.enc');
  const exported = await iotgw(['lorawan', 'sessions', 'export', '--out', sealed, '--key-file', key, '--config', config]);
  assert.equal(exported.status, 0, exported.stderr);
  assert.match(exported.stderr, /exported 3 LoRaWAN devices \(3 with a session, 1 not in the config\) .* encrypted \(key id [0-9a-f]{16}\)/);
  assert.match(exported.stderr, new RegExp(`note: 1 ABP sessions without keys .*: ${ABP.dev_eui}`));
  const toStdout = await iotgw(['lorawan', 'sessions', 'export', '--out', '-', '--config', config]);
  assert.equal(toStdout.status, 0, toStdout.stderr);
  assert.equal(JSON.parse(toStdout.stdout).devices.length, 3, '--out - prints the document');

  const target = join(dir, 'new', 'buffer.db');
  const newConfig = gatewayConfig(join(dir, 'new'), { buffer: target, udpPort: 0 });
  const importing = (file: string, ...flags: string[]) => iotgw(['lorawan', 'sessions', 'import', file, ...flags, '--config', newConfig]);

  const noKey = await importing(sealed);
  assert.equal(noKey.status, 2);
  assert.match(noKey.stderr, /sessions\.enc is refused, nothing was imported: it is encrypted \(key id [0-9a-f]{16}\): give --key-file/);
  const otherKey = join(dir, 'other.key');
  writeFileSync(otherKey, `${'ab'.repeat(32)}\n`, { mode: 0o600 });
  const wrongKey = await importing(sealed, '--key-file', otherKey);
  assert.equal(wrongKey.status, 2);
  assert.match(wrongKey.stderr, /it was encrypted with another key/);
  const tampered = join(dir, 'tampered.enc');
  const bytes = readFileSync(sealed);
  bytes[bytes.length - 40] = (bytes[bytes.length - 40] as number) ^ 0x04;
  writeFileSync(tampered, bytes);
  const altered = await importing(tampered, '--key-file', key);
  assert.equal(altered.status, 2);
  assert.match(altered.stderr, /does not authenticate with its key: the file is cut off or was altered/);
  const truncated = join(dir, 'truncated.enc');
  writeFileSync(truncated, readFileSync(sealed).subarray(0, 200));
  assert.equal((await importing(truncated, '--key-file', key)).status, 2);
  const foreign = join(dir, 'devices.csv');
  writeFileSync(foreign, 'dev_eui,name\n70b3d57ed0000101,x\n');
  const notArchive = await importing(foreign);
  assert.equal(notArchive.status, 2);
  assert.match(notArchive.stderr, /not an iotgw LoRaWAN session export/);
  const edited = join(dir, 'edited.json');
  const document = JSON.parse(toStdout.stdout);
  document.devices[0].session.nwk_s_key = 'not hex';
  writeFileSync(edited, JSON.stringify(document));
  const invalid = await importing(edited);
  assert.equal(invalid.status, 2);
  assert.match(invalid.stderr, /devices\[0\] \(70b3d57ed0000101\)\.session\.nwk_s_key: expected 32 hex digits/);
  assert.equal(existsSync(target), false, 'nothing written by any refused import');

  // A config whose devices were not restored: nothing to import into, said loudly, nothing written.
  const bare = join(dir, 'bare.yaml');
  writeFileSync(bare, `buffer:\n  path: ${target}\n`);
  const noDevices = await iotgw(['lorawan', 'sessions', 'import', sealed, '--key-file', key, '--config', bare]);
  assert.equal(noDevices.status, 2);
  assert.match(
    noDevices.stderr,
    /none of the 3 devices in .*sessions\.enc is in this config \(and lorawan\.enabled is not true\), so nothing was imported: restore lorawan\.devices/,
  );
  assert.equal(existsSync(target), false);

  const imported = await importing(sealed, '--key-file', key);
  assert.equal(imported.status, 0, imported.stderr);
  assert.match(imported.stdout, new RegExp(`${stranger} OTAA .*: not in the config: skipped \\(--all imports it anyway\\)`));
  assert.match(
    imported.stdout,
    new RegExp(`${ABP.dev_eui} ABP .*: imported; its counters will not apply: the keys in the config differ \\(session abp-0123456789ab in the file`),
  );
  assert.match(imported.stdout, /imported 2 of 3 devices/);
  assert.deepEqual([...readStateReadOnly(target, STATE_SCOPE).keys()], [OTAA.dev_eui, ABP.dev_eui].sort());

  const all = await importing(sealed, '--key-file', key, '--all', '--replace');
  assert.equal(all.status, 0, all.stderr);
  assert.match(all.stdout, new RegExp(`${stranger} OTAA .*: imported; not in the config: it waits in the buffer until the device is added`));
  assert.match(all.stdout, /imported 3 of 3 devices/);
  assert.match(all.stdout, /\(replacing the state the buffer had\)/);
  assert.deepEqual(JSON.parse(readStateReadOnly(target, STATE_SCOPE).get(stranger) ?? ''), state(70));
});

test('export prints the keys to a terminal only when --out - asks for it', async (t) => {
  const dir = tempDir(t);
  const buffer = join(dir, 'buffer.db');
  createSqliteStore({ path: buffer, maxRecords: 100, maxBytes: 100_000, whenFull: 'reject' }).close();
  const config = loadConfig({ path: gatewayConfig(dir, { buffer, udpPort: 0 }), env: {} });
  const written: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      written.push(chunk.toString('utf8'));
      callback();
    },
  });
  const io = { stdout: sink, stderr: sink, readStdin: async () => '' };
  await assert.rejects(
    sessionsExportCommand(config, { out: undefined, keyFile: undefined, stdoutIsTerminal: true }, io),
    (error: unknown) => error instanceof CommandError && error.exitCode === 2 && /not printed to a terminal: give --out FILE .*or --out -/.test(error.message),
  );
  assert.deepEqual(written, [], 'nothing written');
  await sessionsExportCommand(config, { out: '-', keyFile: undefined, stdoutIsTerminal: true }, io);
  assert.match(written[0] ?? '', /^\{\n {2}"format": "iotgw-lorawan-sessions"/);
});

test('a buffer file the import creates as root belongs to the owner of its directory, as the state directory does', {
  skip: process.getuid?.() !== 0 && 'needs root',
}, async (t) => {
  const dir = tempDir(t);
  const source = join(dir, 'buffer.db');
  const store = createSqliteStore({ path: source, maxRecords: 100, maxBytes: 100_000, whenFull: 'reject' });
  store.append([], [{ scope: STATE_SCOPE, key: OTAA.dev_eui, value: JSON.stringify({ v: 1, session: null, dev_nonces: [1], join_nonce: 1 }) }]);
  store.close();
  const exportPath = join(dir, 'sessions.json');
  assert.equal((await iotgw(['lorawan', 'sessions', 'export', '--out', exportPath, '--config', gatewayConfig(dir, { buffer: source, udpPort: 0 })])).status, 0);
  const stateDirectory = join(dir, 'var-lib-iotgw');
  mkdirSync(stateDirectory);
  chownSync(stateDirectory, 4321, 4322);
  const target = join(stateDirectory, 'buffer.db');
  const imported = await iotgw(['lorawan', 'sessions', 'import', exportPath, '--config', gatewayConfig(join(dir, 'new'), { buffer: target, udpPort: 0 })]);
  assert.equal(imported.status, 0, imported.stderr);
  assert.match(imported.stdout, /created .*buffer\.db, owned like its directory \(uid 4321, gid 4322\)/);
  assert.deepEqual([statSync(target).uid, statSync(target).gid], [4321, 4322]);
});
