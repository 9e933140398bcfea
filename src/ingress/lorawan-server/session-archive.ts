// The LoRaWAN session archive: what `iotgw lorawan sessions export` writes, `import` reads back and the periodic
// backup (session-backup.ts) keeps. Per device it holds the committed state row (scope lorawan.device) exactly as
// the gateway wrote it, so fields added to PersistedDevice later travel too, and the session spelled out with
// both keys (ABP keys come from the config) so another network server could take the devices over. Plain JSON,
// or that JSON sealed with AES-256-GCM behind a one-line header. Pure: no files, no clock.
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { printable } from '../../shared/input-text.ts';
import { createDeviceSessions, type LorawanDeviceProfile, type PersistedDevice, readPersistedDevice } from './device-sessions.ts';

export const ARCHIVE_FORMAT = 'iotgw-lorawan-sessions';
export const ARCHIVE_VERSION = 1;

export interface ArchivedSession {
  /** 8 lower-case hex digits. */
  readonly dev_addr: string;
  /** 32 lower-case hex digits; null for an ABP row whose keys the config no longer has (its counters belong to other keys). */
  readonly nwk_s_key: string | null;
  readonly app_s_key: string | null;
  readonly id: string;
  /** The next FCntUp the gateway accepts (full 32 bits); null until the session's first uplink. */
  readonly f_cnt_up_next: number | null;
  /** The next FCntDown the gateway uses. */
  readonly f_cnt_down: number;
}

export interface ArchivedDevice {
  /** 16 lower-case hex digits. */
  readonly dev_eui: string;
  readonly activation: 'abp' | 'otaa';
  readonly session: ArchivedSession | null;
  readonly dev_nonces: readonly number[];
  readonly join_nonce: number;
  /** The state row as committed (PersistedDevice JSON, later fields included): what import writes back. */
  readonly state: Readonly<Record<string, unknown>>;
}

export interface SessionArchive {
  readonly format: typeof ARCHIVE_FORMAT;
  readonly version: typeof ARCHIVE_VERSION;
  /** ISO 8601. */
  readonly exported_at: string;
  readonly gateway_id: string;
  /** In DevEUI order. */
  readonly devices: readonly ArchivedDevice[];
}

/** What the config says about a device, as far as the archive is concerned. */
export interface ConfiguredDevice {
  readonly devEui: string;
  readonly activation: 'abp' | 'otaa';
  /** ABP: the session the config's keys make; a state row's counters apply only under the same session id. */
  readonly abpSession: { readonly devAddr: string; readonly nwkSKey: Buffer; readonly appSKey: Buffer; readonly id: string } | null;
}

/** Sessions built with no stored state never log; the logger is only there to satisfy the signature. */
const SILENT = pino({ enabled: false });

/** The configured devices by DevEUI, with the session id the gateway gives each ABP device (device-sessions.ts). */
export function configuredDevices(profiles: readonly LorawanDeviceProfile[]): ReadonlyMap<string, ConfiguredDevice> {
  const sessions = createDeviceSessions(profiles, new Map(), { log: SILENT });
  const devices = new Map<string, ConfiguredDevice>();
  for (const profile of profiles) {
    const session = sessions.byDevEui(profile.devEui)?.session ?? null;
    const isAbp = profile.activation.mode === 'abp';
    devices.set(profile.devEui, {
      devEui: profile.devEui,
      activation: profile.activation.mode,
      abpSession: isAbp && session !== null ? { devAddr: session.devAddr, nwkSKey: session.nwkSKey, appSKey: session.appSKey, id: session.id } : null,
    });
  }
  return devices;
}

export interface BuiltArchive {
  readonly archive: SessionArchive;
  /** State rows left out because this version cannot read them, with why (the gateway ignores them too). */
  readonly unreadable: readonly { readonly devEui: string; readonly problem: string }[];
}

/** The archive of every committed device state row; ABP keys from the config when they are the row's session's. */
export function buildSessionArchive(
  rows: ReadonlyMap<string, string>,
  configured: ReadonlyMap<string, ConfiguredDevice>,
  meta: { readonly exportedAtMs: number; readonly gatewayId: string },
): BuiltArchive {
  const devices: ArchivedDevice[] = [];
  const unreadable: { devEui: string; problem: string }[] = [];
  for (const [devEui, text] of [...rows].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const persisted = readPersistedDevice(text);
    const problems = persisted === null ? ['not a state this version of iotgw can read'] : persistedStateProblems(persisted);
    if (persisted === null || problems.length > 0) {
      unreadable.push({ devEui, problem: problems.join('; ') });
      continue;
    }
    const config = configured.get(devEui);
    const saved = persisted.session;
    const abp = config?.abpSession;
    const keys =
      saved?.nwk_s_key !== undefined && saved.app_s_key !== undefined
        ? { nwk_s_key: saved.nwk_s_key, app_s_key: saved.app_s_key }
        : abp != null && abp.id === saved?.id
          ? { nwk_s_key: abp.nwkSKey.toString('hex'), app_s_key: abp.appSKey.toString('hex') }
          : { nwk_s_key: null, app_s_key: null };
    devices.push({
      dev_eui: devEui,
      // Without the config: a row holding session keys (or no session yet) is OTAA, since ABP rows never hold keys.
      activation: config?.activation ?? (saved === null || saved.nwk_s_key !== undefined ? 'otaa' : 'abp'),
      session: saved === null ? null : { dev_addr: saved.dev_addr, ...keys, id: saved.id, f_cnt_up_next: saved.f_cnt_up_next, f_cnt_down: saved.f_cnt_down },
      dev_nonces: persisted.dev_nonces,
      join_nonce: persisted.join_nonce,
      state: JSON.parse(text) as Record<string, unknown>,
    });
  }
  return {
    archive: { format: ARCHIVE_FORMAT, version: ARCHIVE_VERSION, exported_at: new Date(meta.exportedAtMs).toISOString(), gateway_id: meta.gatewayId, devices },
    unreadable,
  };
}

/** The plain JSON document (keys inside: the caller writes it with mode 0600). */
export function encodeSessionArchive(archive: SessionArchive): Buffer {
  return Buffer.from(`${JSON.stringify(archive, null, 2)}\n`, 'utf8');
}

// Sealed form:  HEADER | IV (12 bytes, random) | AES-256-GCM ciphertext of the JSON document | tag (16 bytes)
//   HEADER = "iotgw-lorawan-sessions+aes-256-gcm;v=1;key=<key id>\n" (ASCII), authenticated as additional data.
// The key id (16 hex digits of an HMAC of a constant under the key) tells a wrong key from a damaged file; it
// reveals nothing that would help find a 256-bit key.
const SEALED_PREFIX = `${ARCHIVE_FORMAT}+aes-256-gcm;`;
const SEALED_HEADER = /^iotgw-lorawan-sessions\+aes-256-gcm;v=(\d{1,6});key=([0-9a-f]{16})$/;
const SEALED_VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const MAX_HEADER_BYTES = 128;
export const ARCHIVE_KEY_BYTES = 32;

/** 16 hex digits naming a key, printed in errors and reports (never the key). */
export function archiveKeyId(key: Buffer): string {
  return createHmac('sha256', key).update('iotgw-lorawan-sessions key id').digest('hex').slice(0, 16);
}

/** The document encrypted and authenticated with a 32-byte key. */
export function sealSessionArchive(archive: SessionArchive, key: Buffer): Buffer {
  assertKey(key);
  const header = Buffer.from(`${SEALED_PREFIX}v=${SEALED_VERSION};key=${archiveKeyId(key)}\n`, 'ascii');
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(header);
  const ciphertext = Buffer.concat([cipher.update(encodeSessionArchive(archive)), cipher.final()]);
  return Buffer.concat([header, iv, ciphertext, cipher.getAuthTag()]);
}

export type OpenedArchive =
  | { readonly ok: true; readonly archive: SessionArchive; readonly sealed: boolean }
  | {
      readonly ok: false;
      /** not-archive: some other file; needs-key / wrong-key: about the key; damaged: cut off or altered; invalid: readable but not a valid archive. */
      readonly reason: 'not-archive' | 'needs-key' | 'wrong-key' | 'damaged' | 'invalid';
      /** One line each, naming the field (devices[3] (0011223344556677).session.f_cnt_down: ...). */
      readonly problems: readonly string[];
    };

/** Reads a plain or sealed archive and checks every device in it; `key` opens a sealed one. Never throws. */
export function openSessionArchive(bytes: Uint8Array, key: Buffer | null): OpenedArchive {
  const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const start = data.subarray(0, SEALED_PREFIX.length).toString('latin1');
  if (start === SEALED_PREFIX) return openSealed(data, key);
  if (data.length > 0 && SEALED_PREFIX.startsWith(start))
    return { ok: false, reason: 'damaged', problems: ['the encrypted export is cut off inside its header'] };
  const text = data.toString('utf8');
  if (!text.trimStart().startsWith('{')) {
    return { ok: false, reason: 'not-archive', problems: ['not an iotgw LoRaWAN session export (neither its JSON nor its encrypted form)'] };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { ok: false, reason: 'damaged', problems: [`not valid JSON (${(error as Error).message}): the file is cut off or was edited by hand`] };
  }
  const checked = checkArchive(value);
  return checked.ok ? { ok: true, archive: checked.archive, sealed: false } : { ok: false, reason: 'invalid', problems: checked.problems };
}

function openSealed(data: Buffer, key: Buffer | null): OpenedArchive {
  const newline = data.subarray(0, MAX_HEADER_BYTES).indexOf(0x0a);
  const fail = (reason: 'needs-key' | 'wrong-key' | 'damaged' | 'invalid', problem: string): OpenedArchive => ({ ok: false, reason, problems: [problem] });
  if (newline < 0) return fail('damaged', 'the encrypted export is cut off inside its header');
  const header = data.subarray(0, newline + 1);
  const match = SEALED_HEADER.exec(header.subarray(0, newline).toString('latin1'));
  if (match === null) return fail('damaged', `its header is damaged: ${printable(header.subarray(0, newline).toString('latin1'), 80)}`);
  const version = Number(match[1]);
  if (version !== SEALED_VERSION) {
    return fail(
      'invalid',
      `it is encrypted in version ${version} of the format, which this iotgw does not know (it knows ${SEALED_VERSION}): import it with the iotgw that wrote it or a newer one`,
    );
  }
  const fileKeyId = match[2] as string;
  if (key === null)
    return fail('needs-key', `it is encrypted (key id ${fileKeyId}): give --key-file with the key it was written with (lorawan.session_backup.key_file)`);
  const givenKeyId = archiveKeyId(key);
  if (givenKeyId !== fileKeyId) {
    return fail(
      'wrong-key',
      `it was encrypted with another key (key id ${fileKeyId}; the key given has id ${givenKeyId}): give the key file it was written with`,
    );
  }
  if (data.length < header.length + IV_BYTES + TAG_BYTES) return fail('damaged', 'the encrypted export is cut off (shorter than its header, IV and tag)');
  const iv = data.subarray(header.length, header.length + IV_BYTES);
  const tag = data.subarray(data.length - TAG_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAAD(header);
  decipher.setAuthTag(tag);
  let plaintext: Buffer;
  try {
    plaintext = Buffer.concat([decipher.update(data.subarray(header.length + IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
  } catch {
    return fail('damaged', 'it does not authenticate with its key: the file is cut off or was altered. Nothing in it can be trusted; use an earlier copy');
  }
  const opened = openSessionArchive(plaintext, null);
  return opened.ok ? { ...opened, sealed: true } : opened;
}

function assertKey(key: Buffer): void {
  if (key.length !== ARCHIVE_KEY_BYTES) throw new RangeError(`the session archive key must be ${ARCHIVE_KEY_BYTES} bytes, got ${key.length}`);
}

// ---- Validation -----------------------------------------------------------------------------------------

const HEX_8 = /^[0-9a-f]{8}$/;
const HEX_16 = /^[0-9a-f]{16}$/;
const HEX_32 = /^[0-9a-f]{32}$/;
const FCNT_LIMIT = 2 ** 32;
/** A 1.0.x device draws DevNonces from 65,536 values; the gateway keeps at most 2,048 of them. */
const MAX_DEV_NONCES = 65_536;
const MAX_DEVICES = 1_000_000;
const MAX_SESSION_ID_CHARS = 128;

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const isCount = (value: unknown, limit: number): value is number => Number.isInteger(value) && (value as number) >= 0 && (value as number) <= limit;

/** What is wrong with a committed state row, field by field; empty when the gateway can use it as it is. */
export function persistedStateProblems(state: PersistedDevice): string[] {
  const problems: string[] = [];
  const session: unknown = state.session;
  if (session !== null) {
    if (!isObject(session)) {
      problems.push('state.session: expected an object or null');
    } else {
      if (typeof session.dev_addr !== 'string' || !HEX_8.test(session.dev_addr)) problems.push('state.session.dev_addr: expected 8 lower-case hex digits');
      if ((session.nwk_s_key === undefined) !== (session.app_s_key === undefined)) problems.push('state.session: nwk_s_key and app_s_key go together');
      for (const name of ['nwk_s_key', 'app_s_key'] as const) {
        const value = session[name];
        if (value !== undefined && (typeof value !== 'string' || !HEX_32.test(value)))
          problems.push(`state.session.${name}: expected 32 lower-case hex digits`);
      }
      if (typeof session.id !== 'string' || session.id === '' || session.id.length > MAX_SESSION_ID_CHARS) {
        problems.push(`state.session.id: expected a text of 1 to ${MAX_SESSION_ID_CHARS} characters`);
      }
      if (session.f_cnt_up_next !== null && !isCount(session.f_cnt_up_next, FCNT_LIMIT)) {
        problems.push('state.session.f_cnt_up_next: expected null or a whole number from 0 to 2^32');
      }
      if (!isCount(session.f_cnt_down, FCNT_LIMIT)) problems.push('state.session.f_cnt_down: expected a whole number from 0 to 2^32');
    }
  }
  const nonces: unknown = state.dev_nonces;
  if (!Array.isArray(nonces) || nonces.length > MAX_DEV_NONCES || !nonces.every((nonce) => isCount(nonce, 0xffff))) {
    problems.push(`state.dev_nonces: expected a list of at most ${MAX_DEV_NONCES} DevNonces (0 to 65535)`);
  }
  // JoinNonce (AppNonce in 1.0.x) is 3 bytes (LoRaWAN 1.0.3 §6.2.5).
  if (!isCount(state.join_nonce, 0xffffff)) problems.push('state.join_nonce: expected a whole number from 0 to 16777215');
  return problems;
}

type Checked = { readonly ok: true; readonly archive: SessionArchive } | { readonly ok: false; readonly problems: readonly string[] };

function checkArchive(value: unknown): Checked {
  if (!isObject(value) || value.format !== ARCHIVE_FORMAT) {
    return { ok: false, problems: [`not an iotgw LoRaWAN session export: "format" must be "${ARCHIVE_FORMAT}"`] };
  }
  if (value.version !== ARCHIVE_VERSION) {
    const newer = Number.isInteger(value.version) && (value.version as number) > ARCHIVE_VERSION;
    return {
      ok: false,
      problems: [
        newer
          ? `written in version ${String(value.version)} of the format, newer than this iotgw knows (${ARCHIVE_VERSION}): import it with the iotgw that wrote it`
          : `"version" must be ${ARCHIVE_VERSION}`,
      ],
    };
  }
  const problems: string[] = [];
  if (typeof value.exported_at !== 'string' || Number.isNaN(Date.parse(value.exported_at))) problems.push('exported_at: expected an ISO 8601 time');
  if (value.gateway_id !== undefined && typeof value.gateway_id !== 'string') problems.push('gateway_id: expected a text');
  if (!Array.isArray(value.devices) || value.devices.length > MAX_DEVICES) {
    return { ok: false, problems: [...problems, `devices: expected a list of at most ${MAX_DEVICES} devices`] };
  }
  const devices: ArchivedDevice[] = [];
  const seen = new Set<string>();
  value.devices.forEach((entry: unknown, index: number) => {
    const devEui = isObject(entry) && typeof entry.dev_eui === 'string' ? entry.dev_eui.toLowerCase() : '';
    const where = `devices[${index}]${HEX_16.test(devEui) ? ` (${devEui})` : ''}`;
    if (HEX_16.test(devEui)) {
      if (seen.has(devEui)) problems.push(`${where}: DevEUI ${devEui} is listed twice`);
      seen.add(devEui);
    }
    const checked = checkDevice(entry);
    problems.push(...checked.problems.map((problem) => `${where}.${problem}`));
    if (checked.device !== null) devices.push(checked.device);
  });
  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    archive: {
      format: ARCHIVE_FORMAT,
      version: ARCHIVE_VERSION,
      exported_at: value.exported_at as string,
      gateway_id: typeof value.gateway_id === 'string' ? value.gateway_id : '',
      devices,
    },
  };
}

/** One archived device: its fields, and that its spelled-out session says what its state row says. */
function checkDevice(entry: unknown): { readonly device: ArchivedDevice | null; readonly problems: string[] } {
  if (!isObject(entry)) return { device: null, problems: ['expected an object'] };
  const problems: string[] = [];
  const devEui = typeof entry.dev_eui === 'string' ? entry.dev_eui.toLowerCase() : '';
  if (!HEX_16.test(devEui)) problems.push('dev_eui: expected 16 hex digits');
  if (entry.activation !== 'abp' && entry.activation !== 'otaa') problems.push('activation: expected "abp" or "otaa"');
  const state = isObject(entry.state) ? readPersistedDevice(JSON.stringify(entry.state)) : null;
  if (state === null) return { device: null, problems: [...problems, 'state: expected the device state object as the gateway commits it ("v": 1)'] };
  problems.push(...persistedStateProblems(state));
  if (problems.length > 0) return { device: null, problems };

  const session: unknown = entry.session;
  const saved = state.session;
  if (saved === null) {
    if (session !== null) problems.push('session: the state holds no session, so this must be null');
  } else if (!isObject(session)) {
    problems.push('session: expected an object (the state holds a session)');
  } else {
    for (const name of ['dev_addr', 'id', 'f_cnt_up_next', 'f_cnt_down'] as const) {
      if (session[name] !== saved[name])
        problems.push(`session.${name}: ${printable(String(JSON.stringify(session[name])), 40)} differs from state.session.${name} (edit both or neither)`);
    }
    for (const name of ['nwk_s_key', 'app_s_key'] as const) {
      const value = session[name];
      const text = typeof value === 'string' ? value.toLowerCase() : value;
      if (text !== null && (typeof text !== 'string' || !HEX_32.test(text))) problems.push(`session.${name}: expected 32 hex digits, or null when unknown`);
      else if (saved[name] !== undefined && text !== saved[name])
        problems.push(`session.${name}: differs from the key in state.session (edit both or neither)`);
    }
  }
  if (
    !Array.isArray(entry.dev_nonces) ||
    entry.dev_nonces.length !== state.dev_nonces.length ||
    entry.dev_nonces.some((nonce, i) => nonce !== state.dev_nonces[i])
  ) {
    problems.push('dev_nonces: differs from state.dev_nonces (edit both or neither)');
  }
  if (entry.join_nonce !== state.join_nonce) problems.push('join_nonce: differs from state.join_nonce (edit both or neither)');
  if (problems.length > 0) return { device: null, problems };
  const keys = isObject(session) ? session : null;
  const lowerKey = (value: unknown): string | null => (typeof value === 'string' ? value.toLowerCase() : null);
  return {
    device: {
      dev_eui: devEui,
      activation: entry.activation as 'abp' | 'otaa',
      session:
        saved === null || keys === null
          ? null
          : {
              dev_addr: saved.dev_addr,
              nwk_s_key: lowerKey(keys.nwk_s_key),
              app_s_key: lowerKey(keys.app_s_key),
              id: saved.id,
              f_cnt_up_next: saved.f_cnt_up_next,
              f_cnt_down: saved.f_cnt_down,
            },
      dev_nonces: state.dev_nonces,
      join_nonce: state.join_nonce,
      state: entry.state as Record<string, unknown>,
    },
    problems,
  };
}
