// `iotgw lorawan sessions export|import`: the LoRaWAN sessions in the buffer file (OTAA keys from the last join,
// DevAddrs, frame counters, used DevNonces) out to a session archive (ingress/lorawan-server/session-archive.ts)
// and back into a buffer file, so a new SD card or another gateway continues every device: OTAA without a
// rejoin, ABP with its counters. Export reads beside the running gateway (read-only, WAL); import checks the
// whole file first, then writes every state row in one transaction while holding the buffer file exclusively,
// which it can only do while the gateway is stopped. Keys are never printed.
import { chownSync, existsSync, statSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { RAW_CODEC } from '../../codecs/payload-codec.ts';
import type { Config } from '../../config/schema.ts';
import { errorMessage, GatewayError } from '../../errors.ts';
import { type ExclusiveBuffer, openBufferExclusively, readStateReadOnly } from '../../buffer/buffer-state-file.ts';
import type { StateWrite } from '../../buffer/record-store.ts';
import { STATE_SCOPE } from '../../ingress/lorawan-server/device-sessions.ts';
import { deviceProfileFromEntry } from '../../ingress/lorawan-server/lorawan-config.ts';
import {
  type ArchivedDevice,
  archiveKeyId,
  buildSessionArchive,
  type ConfiguredDevice,
  configuredDevices,
  encodeSessionArchive,
  openSessionArchive,
  sealSessionArchive,
} from '../../ingress/lorawan-server/session-archive.ts';
import { readArchiveKeyFile } from '../../ingress/lorawan-server/session-key-file.ts';
import { writeFileAtomically } from '../../shared/atomic-file.ts';
import { CommandError, inputError } from './command-error.ts';
import type { Io } from './ops-commands.ts';

export const LORAWAN_SESSIONS_HELP = `iotgw lorawan sessions export [--out FILE | --out -] [--key-file KEY] --config FILE
iotgw lorawan sessions import FILE [--key-file KEY] [--all] [--replace] [--dry-run] --config FILE

Moves the LoRaWAN devices' sessions (OTAA session keys from the last join, DevAddr, frame counters, used
DevNonces, JoinNonce) out of the buffer file named by buffer.path and into another one: after a dead SD card, a
new card or another gateway then continues every device, OTAA without rejoining, ABP with its frame counters.

export   reads the buffer (read-only: safe while the gateway runs) and writes a JSON document (format
         iotgw-lorawan-sessions, version 1) with, per device, DevEUI, DevAddr, NwkSKey and AppSKey (ABP keys from
         the config), session id, next FCntUp, FCntDown, DevNonces, JoinNonce and the raw state row.
         --out FILE   a new file, mode 0600, written atomically; an existing file is never replaced
         --out -      stdout, even to a terminal (without --out it goes to stdout only when that is not a terminal)
         --key-file   encrypt it (AES-256-GCM) with the key in KEY (64 hex digits), as the periodic backup
                      (lorawan.session_backup) does; without it the file holds session keys in clear text
import   checks the whole file first (plain or encrypted: --key-file), then writes every device's state in one
         transaction into the buffer file (created if missing). Refused while anything has the buffer open:
         stop the gateway first (sudo systemctl stop iotgw).
         --all        also import devices that are not in the config (they wait there until they are added)
         --replace    overwrite a device's state the buffer already has (default: keep it; the gateway has
                      heard the device since, so the buffer's state is the newer one)
         --dry-run    check everything and report what would be imported; write nothing

An ABP device's counters apply only while the config has the same DevAddr and keys as the session in the file;
otherwise its state is still imported and the report says its counters will not apply.
Exit codes: 0 done (devices skipped are listed), 2 bad input (the file is damaged, altered, not an export, or
the key is wrong: nothing written), 1 the buffer cannot be read or written (or the gateway is running).

Examples:
  iotgw lorawan sessions export --out /root/sessions.json --config /etc/iotgw/iotgw.yaml
  sudo systemctl stop iotgw
  iotgw lorawan sessions import /mnt/backup/iotgw-sessions.enc --key-file /root/session-backup.key --dry-run --config /etc/iotgw/iotgw.yaml
  iotgw lorawan sessions import /mnt/backup/iotgw-sessions.enc --key-file /root/session-backup.key --config /etc/iotgw/iotgw.yaml
  sudo systemctl start iotgw`;

/** An archive of a million devices is well below this; a larger file is not one. */
const MAX_ARCHIVE_BYTES = 256 * 1024 * 1024;

export interface SessionsExportInput {
  /** '-' = stdout; undefined = stdout unless it is a terminal. */
  readonly out: string | undefined;
  readonly keyFile: string | undefined;
  readonly stdoutIsTerminal: boolean;
  readonly nowMs?: number;
}

export interface SessionsImportInput {
  readonly files: readonly string[];
  readonly keyFile: string | undefined;
  readonly all: boolean;
  readonly replace: boolean;
  readonly dryRun: boolean;
}

function configured(config: Config): ReadonlyMap<string, ConfiguredDevice> {
  return configuredDevices(config.lorawan.devices.map((entry) => deviceProfileFromEntry(entry, () => RAW_CODEC)));
}

function keyFrom(path: string | undefined, io: Io): Buffer | null {
  if (path === undefined) return null;
  const file = readArchiveKeyFile(path);
  if (!file.ok) throw inputError(`--key-file: ${file.problem}`);
  if (file.exposed) io.stderr.write(`warning: ${path} has mode ${file.mode.toString(8).padStart(4, '0')}: other users may read the key (chmod 600 ${path})\n`);
  return file.key;
}

function asCommandError(error: unknown): never {
  if (error instanceof GatewayError) throw new CommandError(error.message);
  throw error;
}

export async function sessionsExportCommand(config: Config, input: SessionsExportInput, io: Io): Promise<void> {
  const key = keyFrom(input.keyFile, io);
  const toStdout = input.out === '-' || input.out === undefined;
  if (input.out === undefined && input.stdoutIsTerminal) {
    throw new CommandError(
      'the export holds session keys and is not printed to a terminal: give --out FILE (written with mode 0600), or --out - to print it anyway',
      2,
    );
  }
  let rows: ReadonlyMap<string, string>;
  try {
    rows = readStateReadOnly(config.buffer.path, STATE_SCOPE);
  } catch (error) {
    asCommandError(error);
  }
  const devices = configured(config);
  const { archive, unreadable } = buildSessionArchive(rows, devices, { exportedAtMs: input.nowMs ?? Date.now(), gatewayId: config.gateway_id });
  const bytes = key === null ? encodeSessionArchive(archive) : sealSessionArchive(archive, key);
  if (toStdout) {
    io.stdout.write(bytes);
  } else {
    const out = input.out as string;
    try {
      await writeFileAtomically(out, bytes, { mode: 0o600, replace: false });
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      throw new CommandError(
        code === 'EEXIST'
          ? `${out} exists: an export never replaces a file; give another name or remove it first`
          : code === 'ENOENT'
            ? `cannot write ${out}: the directory ${dirname(out)} does not exist (a USB stick not mounted?)`
            : `cannot write ${out}: ${errorMessage(error)}`,
      );
    }
  }
  const withSession = archive.devices.filter((device) => device.session !== null).length;
  const notConfigured = archive.devices.filter((device) => !devices.has(device.dev_eui)).length;
  const where = toStdout ? 'stdout' : input.out;
  const form = key === null ? 'as plain JSON: it holds session keys, keep it like a password' : `encrypted (key id ${archiveKeyId(key)})`;
  io.stderr.write(
    `exported ${archive.devices.length} LoRaWAN devices (${withSession} with a session${notConfigured > 0 ? `, ${notConfigured} not in the config` : ''}) from ${config.buffer.path} to ${where}, ${form}\n`,
  );
  const keyless = archive.devices.filter((device) => device.session !== null && device.session.nwk_s_key === null).map((device) => device.dev_eui);
  if (keyless.length > 0) {
    io.stderr.write(
      `note: ${keyless.length} ABP sessions without keys (the config no longer has the keys their counters belong to): ${keyless.slice(0, 10).join(', ')}${keyless.length > 10 ? ', ...' : ''}\n`,
    );
  }
  for (const row of unreadable) io.stderr.write(`left out ${row.devEui}: its state cannot be read (${row.problem}); the gateway ignores it too\n`);
}

type Verdict = { readonly kind: 'import'; readonly notes: readonly string[] } | { readonly kind: 'skip'; readonly why: string };

/** What the gateway will make of one archived device under this config, before looking at the buffer. */
function verdictFor(device: ArchivedDevice, config: ConfiguredDevice | undefined, all: boolean): Verdict {
  if (config === undefined) {
    return all
      ? { kind: 'import', notes: ['not in the config: it waits in the buffer until the device is added'] }
      : { kind: 'skip', why: 'not in the config: skipped (--all imports it anyway)' };
  }
  const { session } = device;
  const hasOtaaKeys = session !== null && typeof device.state.session === 'object' && device.state.session !== null && 'nwk_s_key' in device.state.session;
  if (config.activation === 'abp') {
    const configId = config.abpSession?.id;
    if (session?.id === configId) return { kind: 'import', notes: [] };
    return {
      kind: 'import',
      notes: [
        `its counters will not apply: the keys in the config differ (${session === null ? 'the file holds no session' : `session ${session.id} in the file`}, ${configId ?? 'none'} from the config's DevAddr and keys)`,
      ],
    };
  }
  if (session === null) return { kind: 'import', notes: ['no session yet: the device joins'] };
  if (!hasOtaaKeys) return { kind: 'import', notes: ['the config has it as OTAA but the file holds an ABP session: the device must join again'] };
  return { kind: 'import', notes: [] };
}

function describe(device: ArchivedDevice): string {
  const session = device.session;
  const counters = session === null ? 'no session' : `DevAddr ${session.dev_addr}, FCntUp next ${session.f_cnt_up_next ?? '-'}, FCntDown ${session.f_cnt_down}`;
  return `${device.dev_eui} ${device.activation.toUpperCase().padEnd(4)} ${counters}`;
}

export async function sessionsImportCommand(config: Config, input: SessionsImportInput, io: Io): Promise<void> {
  if (input.files.length !== 1)
    throw new CommandError('lorawan sessions import takes one file, e.g. iotgw lorawan sessions import sessions.enc --key-file KEY --config FILE', 2);
  const file = input.files[0] as string;
  const key = keyFrom(input.keyFile, io);
  let bytes: Buffer;
  try {
    const size = (await stat(file)).size;
    if (size > MAX_ARCHIVE_BYTES) throw new CommandError(`${file} is ${size} bytes, larger than any session export: is it the right file?`, 2);
    bytes = await readFile(file);
  } catch (error) {
    if (error instanceof CommandError) throw error;
    throw new CommandError(`cannot read ${file}: ${errorMessage(error)}`);
  }
  const opened = openSessionArchive(bytes, key);
  if (!opened.ok) {
    const lines = opened.problems.slice(0, 50);
    const more = opened.problems.length > lines.length ? `\n  ... and ${opened.problems.length - lines.length} more` : '';
    throw inputError(
      lines.length === 1
        ? `${file} is refused, nothing was imported: ${lines[0]}`
        : `${file} is refused, nothing was imported:\n  ${lines.join('\n  ')}${more}`,
    );
  }
  const { archive } = opened;
  const devices = configured(config);
  const verdicts = archive.devices.map((device) => ({ device, verdict: verdictFor(device, devices.get(device.dev_eui), input.all) }));
  const path = config.buffer.path;
  if (archive.devices.length > 0 && verdicts.every(({ verdict }) => verdict.kind === 'skip')) {
    const lorawanOff = config.lorawan.enabled ? '' : ' (and lorawan.enabled is not true)';
    throw inputError(
      `none of the ${archive.devices.length} devices in ${file} is in this config${lorawanOff}, so nothing was imported: restore lorawan.devices or lorawan.devices_file first (or give --all to keep their sessions until they are added)`,
    );
  }
  if (!opened.sealed && key !== null) io.stdout.write(`note: ${file} is a plain export, not encrypted: --key-file was not needed\n`);

  let buffer: ExclusiveBuffer | null = null;
  let existing: ReadonlyMap<string, string> = new Map();
  const notes: string[] = [];
  const creates = !existsSync(path);
  try {
    if (!input.dryRun) {
      buffer = openBufferExclusively(path, { create: true });
      existing = buffer.readState(STATE_SCOPE);
    } else {
      existing = dryRunState(path, notes);
    }
    const writes: StateWrite[] = [];
    const lines = [
      `${file}: ${archive.devices.length} devices, exported ${archive.exported_at}${archive.gateway_id === '' ? '' : ` by gateway ${archive.gateway_id}`}${opened.sealed ? ' (encrypted, authenticated)' : ''}`,
    ];
    for (const { device, verdict } of verdicts) {
      if (verdict.kind === 'skip') {
        lines.push(`  ${describe(device)}: ${verdict.why}`);
        continue;
      }
      if (existing.has(device.dev_eui) && !input.replace) {
        lines.push(`  ${describe(device)}: the buffer already has its state: kept (--replace overwrites it)`);
        continue;
      }
      writes.push({ scope: STATE_SCOPE, key: device.dev_eui, value: JSON.stringify(device.state) });
      const replaced = existing.has(device.dev_eui) ? ' (replacing the state the buffer had)' : '';
      lines.push(`  ${describe(device)}: ${input.dryRun ? 'would be imported' : 'imported'}${replaced}${verdict.notes.map((note) => `; ${note}`).join('')}`);
    }
    buffer?.writeState(writes);
    io.stdout.write(`${lines.join('\n')}\n`);
    if (input.dryRun) {
      io.stdout.write(`dry run: ${writes.length} of ${archive.devices.length} devices would be imported into ${path}; nothing was written\n`);
      for (const note of notes) io.stdout.write(`note: ${note}\n`);
    } else {
      io.stdout.write(`imported ${writes.length} of ${archive.devices.length} devices into ${path} (one transaction)\n`);
    }
  } catch (error) {
    asCommandError(error);
  } finally {
    buffer?.close();
  }
  if (input.dryRun) return;
  if (creates) io.stdout.write(`${ownNewBuffer(path)}\n`);
  io.stdout.write('start the gateway on it: sudo systemctl start iotgw\n');
}

/**
 * A buffer file the import created as root belongs to root, and the gateway (user iotgw) could not open it: it
 * is given to the owner of its directory (/var/lib/iotgw belongs to iotgw), or the operator is told to.
 */
function ownNewBuffer(path: string): string {
  const owner = statSync(dirname(path));
  if (process.getuid?.() !== 0) return `created ${path}: it belongs to the user who ran this; the gateway's user must be able to write it`;
  if (owner.uid === 0) return `created ${path}, owned by root: give it to the gateway's user before starting it (sudo chown iotgw: ${path})`;
  chownSync(path, owner.uid, owner.gid);
  return `created ${path}, owned like its directory (uid ${owner.uid}, gid ${owner.gid})`;
}

/** The state a real import would find, read without writing; notes say what the real import would meet. */
function dryRunState(path: string, notes: string[]): ReadonlyMap<string, string> {
  let buffer: ExclusiveBuffer;
  try {
    buffer = openBufferExclusively(path, { create: false });
  } catch (error) {
    if (error instanceof GatewayError && error.code === 'BUFFER_MISSING') {
      notes.push(`${path} does not exist yet: the import creates it`);
      return new Map();
    }
    if (error instanceof GatewayError && error.code === 'BUFFER_IN_USE') {
      notes.push(`the gateway runs on ${path}: stop it before the import (sudo systemctl stop iotgw)`);
      return readStateReadOnly(path, STATE_SCOPE);
    }
    throw error;
  }
  try {
    return buffer.readState(STATE_SCOPE);
  } finally {
    buffer.close();
  }
}
