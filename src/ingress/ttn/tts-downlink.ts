// Downlinks through The Things Stack v3's MQTT server integration, both directions, pure: the body the gateway
// publishes to v3/{app}@{tenant}/devices/{device}/down/push (or down/replace), and the events TTS publishes
// about each downlink (down/queued, down/sent, down/ack, down/nack, down/failed) parsed into what a command
// path needs: the kind, the device, the correlation ids the push carried (TTS keeps them on every event of
// that downlink, beside its own) and, for down/failed, TTS's error as text. Total: every input gives a value
// or a rejection that names the field. firmware-sim's TTS stand-in reads the push with the same grammar.
//
// Push / replace body (ApplicationDownlinks in TTS api/messages.proto):
//   { downlinks: [ { f_port: 1..223, frm_payload: base64, confirmed?: bool, priority?: "NORMAL",
//                    correlation_ids?: [string of at most 100 characters] } ] }
//   replace with an empty list clears the device's queue.
// Event (ApplicationUp; TTS leaves out fields at their default: false, 0, ""):
//   { end_device_ids: { device_id, application_ids, dev_eui?, ... }, correlation_ids?: [string], received_at?,
//     downlink_queued | downlink_sent | downlink_ack | downlink_nack: ApplicationDownlink
//   | downlink_failed: { downlink: ApplicationDownlink, error: { namespace, name, message_format, attributes?, code? } } }
//   ApplicationDownlink: { session_key_id?, f_port?, f_cnt?, frm_payload?, confirmed?, priority?, correlation_ids? }
import { printable } from '../../shared/input-text.ts';
import { isInteger, isObject, parseTtsObject, show, type TtsParseResult, type TtsRejectReason, type TtsRejection, ttsDeviceIds } from './tts-uplink.ts';

/** The downlink event topics (after v3/{username}/devices/{device id}/), in the order a downlink goes through them. */
export const TTS_DOWNLINK_EVENTS = ['down/queued', 'down/sent', 'down/ack', 'down/nack', 'down/failed'] as const;
export type TtsDownlinkEventName = (typeof TTS_DOWNLINK_EVENTS)[number];
export type TtsDownlinkEventKind = 'queued' | 'sent' | 'ack' | 'nack' | 'failed';

/** What can be pushed to the device's TTS queue. */
export type TtsQueueOperation = 'push' | 'replace';

/** LoRaWAN FRMPayload bound: the largest application payload of any region and data rate (EU868 DR7, US915 DR4). */
export const MAX_FRM_PAYLOAD_BYTES = 242;
/** TTS refuses longer correlation ids (api/messages.proto: repeated.items.string.max_len = 100). */
export const MAX_CORRELATION_ID_CHARS = 100;
/** Correlation ids read per list; TTS adds a handful per component, so a real event holds well under this. */
const MAX_CORRELATION_IDS = 64;

export interface TtsDownlink {
  /** 1..223 (0 is for MAC commands, 224 for the test protocol). */
  readonly fPort: number;
  readonly frmPayload: Buffer;
  readonly confirmed: boolean;
  readonly correlationIds: readonly string[];
}

export interface TtsDownlinkEvent {
  readonly kind: TtsDownlinkEventKind;
  readonly deviceId: string;
  /** Lower-case hex when the message names one, else null. */
  readonly devEui: string | null;
  /** The downlink's correlation ids, then the message's: ours (from the push) are among them. */
  readonly correlationIds: readonly string[];
  /** The downlink's frame counter (down/sent and later), null when TTS left it out (0) or before it has one. */
  readonly fCnt: number | null;
  /** down/failed: TTS's error, for a person ("pkg/networkserver:no_downlink_path: ..."); null otherwise. */
  readonly error: string | null;
}

/**
 * TTS's id rule for devices and applications: 3 to 36 lower-case letters, digits and single dashes, starting and
 * ending with a letter or digit. Such an id is safe as a level of a topic the gateway publishes to.
 */
const TTS_ID = /^[a-z0-9](?:-?[a-z0-9]){2,35}$/;

export function isTtsId(value: string): boolean {
  return TTS_ID.test(value);
}

export function downlinkTopic(username: string, deviceId: string, operation: TtsQueueOperation): string {
  return `v3/${username}/devices/${deviceId}/down/${operation}`;
}

/** The push / replace body. Every downlink NORMAL priority: commands queue behind nothing and ahead of nothing. */
export function encodeDownlinks(downlinks: readonly TtsDownlink[]): string {
  return JSON.stringify({
    downlinks: downlinks.map((downlink) => ({
      f_port: downlink.fPort,
      frm_payload: downlink.frmPayload.toString('base64'),
      priority: 'NORMAL',
      confirmed: downlink.confirmed,
      correlation_ids: [...downlink.correlationIds],
    })),
  });
}

/** Downlinks read per push; TTS's own queue limit is far higher, this is a bound for the reader. */
const MAX_DOWNLINKS_PER_OPERATION = 100;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
/** TxSchedulePriority (TTS api/lorawan.proto). */
const PRIORITIES: readonly string[] = ['LOWEST', 'LOW', 'BELOW_NORMAL', 'NORMAL', 'ABOVE_NORMAL', 'HIGH', 'HIGHEST'];

/** A push / replace body, as TTS reads it (the TTS stand-in's side; the gateway only writes them). */
export function parseTtsDownlinks(bytes: Buffer, maxBytes: number): TtsParseResult<readonly TtsDownlink[]> {
  const parsed = parseTtsObject(bytes, maxBytes);
  if (!parsed.ok) return parsed;
  const list = parsed.value.downlinks;
  if (!Array.isArray(list)) return reject('bad-field', `downlinks must be a list, got ${show(list)}`);
  if (list.length > MAX_DOWNLINKS_PER_OPERATION)
    return reject('bad-field', `${list.length} downlinks in one operation; at most ${MAX_DOWNLINKS_PER_OPERATION}`);
  const downlinks: TtsDownlink[] = [];
  for (const [index, item] of list.entries()) {
    const where = `downlinks[${index}]`;
    if (!isObject(item)) return reject('bad-field', `${where} must be an object, got ${show(item)}`);
    if (!isInteger(item.f_port, 1, 223)) return reject('bad-field', `${where}.f_port must be an integer 1..223, got ${show(item.f_port)}`);
    const frm = item.frm_payload ?? '';
    if (typeof frm !== 'string' || frm.length % 4 !== 0 || !BASE64.test(frm))
      return reject('bad-field', `${where}.frm_payload must be base64, got ${show(frm)}`);
    if (item.confirmed !== undefined && typeof item.confirmed !== 'boolean') return reject('bad-field', `${where}.confirmed must be true or false`);
    if (item.priority !== undefined && !PRIORITIES.includes(item.priority as string)) {
      return reject('bad-field', `${where}.priority must be one of ${PRIORITIES.join(', ')}, got ${show(item.priority)}`);
    }
    const ids = item.correlation_ids ?? [];
    if (!Array.isArray(ids) || ids.some((id) => typeof id !== 'string' || id.length > MAX_CORRELATION_ID_CHARS)) {
      return reject('bad-field', `${where}.correlation_ids must be strings of at most ${MAX_CORRELATION_ID_CHARS} characters`);
    }
    downlinks.push({ fPort: item.f_port, frmPayload: Buffer.from(frm, 'base64'), confirmed: item.confirmed === true, correlationIds: ids as string[] });
  }
  return { ok: true, value: downlinks };
}

const EVENT_KINDS: Readonly<Record<TtsDownlinkEventName, TtsDownlinkEventKind>> = {
  'down/queued': 'queued',
  'down/sent': 'sent',
  'down/ack': 'ack',
  'down/nack': 'nack',
  'down/failed': 'failed',
};

export function isTtsDownlinkEvent(event: string): event is TtsDownlinkEventName {
  return Object.hasOwn(EVENT_KINDS, event);
}

/** A down event message, checked as strictly as an uplink: bounded, an object of the kind its topic says. */
export function parseTtsDownlinkEvent(event: TtsDownlinkEventName, bytes: Buffer, maxBytes: number): TtsParseResult<TtsDownlinkEvent> {
  const parsed = parseTtsObject(bytes, maxBytes);
  if (!parsed.ok) return parsed;
  const message = parsed.value;
  const ids = ttsDeviceIds(message);
  if (!ids.ok) return ids;
  const { deviceId, devEui } = ids.value;
  const kind = EVENT_KINDS[event];
  const field = `downlink_${kind}`;
  const body = message[field];
  if (!isObject(body)) return reject('not-a-downlink-event', `device ${deviceId}: no ${field} object on a ${event} topic`);
  let downlink = body;
  let error: string | null = null;
  if (kind === 'failed') {
    if (!isObject(body.downlink)) return reject('bad-field', `device ${deviceId}: downlink_failed.downlink must be an object, got ${show(body.downlink)}`);
    downlink = body.downlink;
    if (body.error !== undefined && !isObject(body.error)) {
      return reject('bad-field', `device ${deviceId}: downlink_failed.error must be an object, got ${show(body.error)}`);
    }
    error = isObject(body.error) ? renderTtsError(body.error) : 'TTS gave no error';
  }
  const own = correlationIds(downlink.correlation_ids, `${field === 'downlink_failed' ? 'downlink_failed.downlink' : field}.correlation_ids`, deviceId);
  if (!own.ok) return own;
  const outer = correlationIds(message.correlation_ids, 'correlation_ids', deviceId);
  if (!outer.ok) return outer;
  const fCnt = downlink.f_cnt ?? null;
  if (fCnt !== null && !isInteger(fCnt, 0, 2 ** 32 - 1))
    return reject('bad-field', `device ${deviceId}: ${field}.f_cnt must be an integer 0..2^32-1, got ${show(fCnt)}`);
  return { ok: true, value: { kind, deviceId, devEui, correlationIds: [...own.value, ...outer.value], fCnt, error } };
}

function correlationIds(value: unknown, name: string, deviceId: string): TtsParseResult<readonly string[]> {
  if (value === undefined) return { ok: true, value: [] };
  if (!Array.isArray(value)) return reject('bad-field', `device ${deviceId}: ${name} must be a list of strings, got ${show(value)}`);
  if (value.length > MAX_CORRELATION_IDS)
    return reject('bad-field', `device ${deviceId}: ${name} holds ${value.length} ids; at most ${MAX_CORRELATION_IDS} are read`);
  for (const id of value) {
    // TTS's own ids are at most 100 characters; a little slack for other senders, still a bound.
    if (typeof id !== 'string' || id.length > 2 * MAX_CORRELATION_ID_CHARS) {
      return reject('bad-field', `device ${deviceId}: ${name} must hold strings of at most ${2 * MAX_CORRELATION_ID_CHARS} characters, got ${show(id)}`);
    }
  }
  return { ok: true, value: value as string[] };
}

/**
 * TTS's ErrorDetails as one line: "{namespace}:{name}: {message_format with its attributes filled in}".
 * message_format holds {attribute} placeholders (ICU style); only plain values are filled in, each bounded.
 */
export function renderTtsError(error: Record<string, unknown>): string {
  const text = (value: unknown, maxChars: number): string => (typeof value === 'string' ? printable(value, maxChars) : '');
  const attributes = isObject(error.attributes) ? error.attributes : {};
  const format = text(error.message_format, 240);
  const message = format.replace(/\{([A-Za-z0-9_]{1,64})\}/g, (placeholder, name: string) => {
    const value = Object.hasOwn(attributes, name) ? attributes[name] : undefined;
    return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? printable(String(value), 64) : placeholder;
  });
  const where = [text(error.namespace, 64), text(error.name, 64)].filter((part) => part !== '').join(':');
  const code = typeof error.code === 'number' && Number.isInteger(error.code) ? ` (code ${error.code})` : '';
  const line = [where, message].filter((part) => part !== '').join(': ');
  return line === '' ? `TTS gave an error without a message${code}` : `${line}${code}`;
}

function reject(reason: TtsRejectReason, message: string): TtsRejection {
  return { ok: false, reason, message };
}
