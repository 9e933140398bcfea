// The Things Stack v3 application messages as they arrive over its MQTT server integration: the JSON of
// an uplink (topic v3/{app}@{tenant}/devices/{device}/up) parsed into what the gateway needs to key,
// order and gap-check it, and the event messages (join, down/ack, ...) checked just enough to key them.
// Pure and total: every input gives a value or a rejection that names the field and what is wrong.
//
// Uplink grammar (the fields read here; everything else is kept as sent):
//   { end_device_ids: { device_id, application_ids: { application_id }, dev_eui?, join_eui?, dev_addr? },
//     received_at?, uplink_message: { session_key_id?, f_port?, f_cnt?, frm_payload?, decoded_payload?,
//     received_at?, rx_metadata?, settings?, ... } }
// f_port and f_cnt are omitted by the TTS JSON mapping when 0, frm_payload when empty (proto3 defaults).
import { createHash } from 'node:crypto';
import { nestsDeeperThan } from '../../shared/json-depth.ts';

export interface TtsUplink {
  readonly deviceId: string;
  /** 16 lower-case hex digits. */
  readonly devEui: string;
  readonly applicationId: string;
  /** Base64 as sent; null when TTS did not send one. Changes with every new session (join). */
  readonly sessionKeyId: string | null;
  readonly fCnt: number;
  readonly fPort: number;
  readonly frmPayload: Buffer;
  readonly decodedPayload: Record<string, unknown> | undefined;
  /** uplink_message.received_at (the network server's time), else the message's received_at; null if neither parses. */
  readonly receivedAtMs: number | null;
  /**
   * What identifies this message, so an exact copy can be told from a device whose counter went back:
   * uplink_message.received_at as sent, else the correlation ids, else a hash of the bytes.
   */
  readonly uplinkId: string;
  /** The whole message, as parsed. */
  readonly message: Record<string, unknown>;
}

export interface TtsEvent {
  readonly deviceId: string;
  /** Lower-case hex when the message names one (join, most downlink events), else null. */
  readonly devEui: string | null;
}

export type TtsRejectReason =
  | 'too-large'
  | 'too-deep'
  | 'malformed-json'
  | 'not-an-uplink'
  | 'not-a-downlink-event'
  | 'missing-device-id'
  | 'missing-dev-eui'
  | 'bad-field';

export interface TtsRejection {
  readonly ok: false;
  readonly reason: TtsRejectReason;
  /** Names the field and what is wrong with it. */
  readonly message: string;
}

export type TtsParseResult<T> = { readonly ok: true; readonly value: T } | TtsRejection;

/** What TTS marks as an uplink; a message without it on an /up topic is something else. */
const UPLINK_FIELD = 'uplink_message';
const DEV_EUI_PATTERN = /^[0-9A-Fa-f]{16}$/;
const BASE64_PATTERN = /^[A-Za-z0-9+/]*={0,2}$/;
const FCNT_MAX = 2 ** 32 - 1;
/** Deepest nesting accepted: TTS messages nest about 6 levels, a decoded_payload a few more. */
const MAX_NESTING = 64;

export function parseTtsUplink(bytes: Buffer, maxBytes: number): TtsParseResult<TtsUplink> {
  const parsed = parseTtsObject(bytes, maxBytes);
  if (!parsed.ok) return parsed;
  const message = parsed.value;
  const ids = ttsDeviceIds(message);
  if (!ids.ok) return ids;
  const { deviceId, devEui } = ids.value;
  const uplink = message[UPLINK_FIELD];
  if (!isObject(uplink)) {
    return reject('not-an-uplink', `device ${deviceId}: no uplink_message object (is this a join or downlink event on an /up topic?)`);
  }
  if (devEui === null) {
    return reject(
      'missing-dev-eui',
      `device ${deviceId}: end_device_ids.dev_eui is missing; records are keyed by DevEUI (set one on the device in the TTS console)`,
    );
  }
  const applicationIds = (message.end_device_ids as Record<string, unknown>).application_ids;
  const applicationId = isObject(applicationIds) ? applicationIds.application_id : undefined;
  if (typeof applicationId !== 'string' || applicationId === '') {
    return reject('bad-field', `device ${deviceId}: end_device_ids.application_ids.application_id must be a non-empty string`);
  }

  const fCnt = uplink.f_cnt ?? 0;
  if (!isInteger(fCnt, 0, FCNT_MAX)) return reject('bad-field', `device ${deviceId}: uplink_message.f_cnt must be an integer 0..2^32-1, got ${show(fCnt)}`);
  const fPort = uplink.f_port ?? 0;
  if (!isInteger(fPort, 0, 255)) return reject('bad-field', `device ${deviceId}: uplink_message.f_port must be an integer 0..255, got ${show(fPort)}`);
  const frm = uplink.frm_payload ?? '';
  if (typeof frm !== 'string' || frm.length % 4 !== 0 || !BASE64_PATTERN.test(frm)) {
    return reject('bad-field', `device ${deviceId}: uplink_message.frm_payload must be base64, got ${show(frm)}`);
  }
  const sessionKeyId = uplink.session_key_id ?? null;
  if (sessionKeyId !== null && (typeof sessionKeyId !== 'string' || sessionKeyId === '' || sessionKeyId.length > 64)) {
    return reject('bad-field', `device ${deviceId}: uplink_message.session_key_id must be a non-empty string, got ${show(sessionKeyId)}`);
  }
  const decoded = uplink.decoded_payload;
  if (decoded !== undefined && !isObject(decoded)) {
    return reject('bad-field', `device ${deviceId}: uplink_message.decoded_payload must be an object, got ${show(decoded)}`);
  }
  return {
    ok: true,
    value: {
      deviceId,
      devEui,
      applicationId,
      sessionKeyId,
      fCnt,
      fPort,
      frmPayload: Buffer.from(frm, 'base64'),
      decodedPayload: decoded,
      receivedAtMs: timeMs(uplink.received_at) ?? timeMs(message.received_at),
      uplinkId: uplinkIdOf(uplink, message, bytes),
      message,
    },
  };
}

/** An event message (join, down/*, service/data, location/solved): stored as sent, keyed by DevEUI or device id. */
export function parseTtsEvent(bytes: Buffer, maxBytes: number): TtsParseResult<TtsEvent> {
  const parsed = parseTtsObject(bytes, maxBytes);
  if (!parsed.ok) return parsed;
  const ids = ttsDeviceIds(parsed.value);
  return ids.ok ? { ok: true, value: ids.value } : ids;
}

/** The message as a JSON object, within the byte and nesting bounds. */
export function parseTtsObject(bytes: Buffer, maxBytes: number): TtsParseResult<Record<string, unknown>> {
  if (bytes.length > maxBytes) return reject('too-large', `message of ${bytes.length} bytes exceeds ttn.max_message_bytes (${maxBytes})`);
  const text = bytes.toString('utf8');
  if (nestsDeeperThan(text, MAX_NESTING)) {
    return reject('too-deep', `objects and arrays nested more than ${MAX_NESTING} levels deep; a TTS message nests about 6`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return reject('malformed-json', `not JSON: ${(error as Error).message}`);
  }
  if (!isObject(value)) return reject('malformed-json', `expected a JSON object, got ${show(value)}`);
  return { ok: true, value };
}

/** end_device_ids: the device id (required, bounded) and the DevEUI in lower case when there is one. */
export function ttsDeviceIds(message: Record<string, unknown>): TtsParseResult<{ deviceId: string; devEui: string | null }> {
  const ids = message.end_device_ids;
  if (!isObject(ids)) return reject('missing-device-id', 'end_device_ids is missing: not a TTS v3 application message');
  const deviceId = ids.device_id;
  if (typeof deviceId !== 'string' || deviceId === '') return reject('missing-device-id', 'end_device_ids.device_id is missing or empty');
  // TTS device ids are at most 36 characters; this one may become a record key.
  if (deviceId.length > 128) return reject('bad-field', `end_device_ids.device_id is ${deviceId.length} characters; TTS ids are at most 36`);
  const devEui = ids.dev_eui;
  if (devEui === undefined || devEui === '') return { ok: true, value: { deviceId, devEui: null } };
  if (typeof devEui !== 'string' || !DEV_EUI_PATTERN.test(devEui)) {
    return reject('bad-field', `device ${deviceId}: end_device_ids.dev_eui must be 16 hex digits, got ${show(devEui)}`);
  }
  return { ok: true, value: { deviceId, devEui: devEui.toLowerCase() } };
}

/** What identifies the message among copies; kept per device, so a long one is kept as its hash. */
function uplinkIdOf(uplink: Record<string, unknown>, message: Record<string, unknown>, bytes: Buffer): string {
  const bounded = (id: string): string => (id.length <= 512 ? id : `sha256:${createHash('sha256').update(id).digest('hex').slice(0, 32)}`);
  if (typeof uplink.received_at === 'string' && uplink.received_at !== '') return bounded(uplink.received_at);
  const ids = message.correlation_ids;
  if (Array.isArray(ids) && ids.length > 0 && ids.every((id) => typeof id === 'string')) return bounded(ids.join(' '));
  return `sha256:${createHash('sha256').update(bytes).digest('hex').slice(0, 32)}`;
}

function reject(reason: TtsRejectReason, message: string): TtsRejection {
  return { ok: false, reason, message };
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function isInteger(value: unknown, min: number, max: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;
}

function timeMs(value: unknown): number | null {
  if (typeof value !== 'string') return null;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : null;
}

/** A short, safe rendering of untrusted input for an error message. */
export function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
}
