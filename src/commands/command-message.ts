// A Kafka message on commands.topic -> a command, or the reason it is refused (pure; fuzzed).
//
// The key is the device id (DevEUI for LoRaWAN). The command id comes from the `command-id` header or the
// `command_id` field. The value is either an envelope, a JSON object with at least one of ENVELOPE_FIELDS,
// e.g. {"command_id":"c-1","name":"dim","payload":{"level":40},"ttl_s":600}, or, anything else, the
// payload's raw bytes (name from the `command-name` header). In an envelope the payload is one of
// `payload` (an object or array: sent as JSON text; a string: its UTF-8 bytes), `payload_hex`, `payload_base64`.
import { isDeviceId } from '../record/device-id.ts';
import type { Command } from './command.ts';
import { nestsDeeperThan } from '../shared/json-depth.ts';

export interface KafkaCommandMessage {
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers?: Readonly<Record<string, Buffer | string | readonly (Buffer | string)[] | undefined>>;
}

/** What a Kafka message says; the queue adds when it was accepted, its order and its delivery state. */
export type ParsedCommand = Pick<Command, 'id' | 'deviceId' | 'name' | 'payload' | 'structured' | 'fport' | 'confirmed' | 'expiresAtMs'>;

export type CommandRefusal =
  | 'malformed-json'
  | 'missing-command-id'
  | 'bad-command-id'
  | 'missing-device-id'
  | 'bad-device-id'
  | 'conflicting-ids'
  | 'bad-field'
  | 'unknown-field'
  | 'missing-payload'
  | 'too-large'
  | 'too-deep';

export type ParseResult =
  | { readonly ok: true; readonly command: ParsedCommand }
  | {
      readonly ok: false;
      readonly reason: CommandRefusal;
      readonly message: string;
      /** What could be read, for the rejected receipt (its key and command-id). */
      readonly commandId: string | null;
      readonly deviceId: string | null;
    };

export interface ParseLimits {
  readonly maxPayloadBytes: number;
  readonly defaultTtlMs: number;
}

export const ENVELOPE_FIELDS = ['command_id', 'device_id', 'name', 'payload', 'payload_hex', 'payload_base64', 'port', 'confirmed', 'expires_at', 'ttl_s'];
const COMMAND_ID = /^[\x21-\x7e]{1,128}$/;
const NAME = /^[A-Za-z0-9._-]{1,64}$/;
const DEFAULT_NAME = 'command';
/** Longest a command may wait: a year (and an expiry a Date can hold). */
const MAX_TTL_MS = 366 * 24 * 3600 * 1000;
/** An object payload is sent as JSON text: JSON.stringify recurses, and overflows the stack on a few thousand levels. */
const MAX_NESTING = 64;

function header(message: KafkaCommandMessage, name: string): string | null {
  const raw = message.headers?.[name];
  const value = Array.isArray(raw) ? raw[0] : raw;
  if (value === undefined) return null;
  return Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
}

function isEnvelope(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && ENVELOPE_FIELDS.some((field) => field in value);
}

export function parseCommandMessage(message: KafkaCommandMessage, limits: ParseLimits, nowMs: number): ParseResult {
  const keyText = message.key === null || message.key.length === 0 ? null : message.key.toString('utf8');
  let commandId = header(message, 'command-id');
  let deviceId = keyText;
  const refuse = (reason: CommandRefusal, text: string): ParseResult => ({
    ok: false,
    reason,
    message: text,
    commandId: commandId !== null && COMMAND_ID.test(commandId) ? commandId : null,
    deviceId: deviceId !== null && isDeviceId(deviceId) ? deviceId : null,
  });
  const value = message.value ?? Buffer.alloc(0);

  let envelope: Record<string, unknown> | null = null;
  if (value.length > 0 && (value[0] === 0x7b || /^\s*\{/.test(value.subarray(0, 16).toString('latin1')))) {
    try {
      const parsed: unknown = JSON.parse(value.toString('utf8'));
      if (isEnvelope(parsed)) envelope = parsed;
    } catch (error) {
      return refuse(
        'malformed-json',
        `the value starts like a JSON envelope but is not JSON (${(error as Error).message}): fix the JSON, or send bytes that start with { in an envelope as payload_hex or payload_base64`,
      );
    }
  }

  if (envelope !== null) {
    for (const [field, current] of [
      ['command_id', commandId],
      ['device_id', deviceId],
    ] as const) {
      const given = envelope[field];
      if (given === undefined) continue;
      if (typeof given !== 'string') return refuse('bad-field', `${field} must be a string`);
      if (current !== null && current !== given) {
        return refuse(
          'conflicting-ids',
          `${field} ${JSON.stringify(given.slice(0, 128))} differs from the ${field === 'command_id' ? 'command-id header' : 'message key'} ${JSON.stringify(current.slice(0, 128))}: give it once, or the same in both`,
        );
      }
      if (field === 'command_id') commandId = given;
      else deviceId = given;
    }
    // After the ids, so the rejected receipt carries them.
    const unknown = Object.keys(envelope).filter((field) => !ENVELOPE_FIELDS.includes(field));
    if (unknown.length > 0) {
      const named = unknown.slice(0, 5).map((field) => field.slice(0, 64));
      return refuse('unknown-field', `unknown field(s) ${named.join(', ')}; an envelope has ${ENVELOPE_FIELDS.join(', ')}`);
    }
  }

  if (commandId === null)
    return refuse('missing-command-id', 'no command-id header and no command_id field: every command needs an id, for receipts and to recognise a duplicate');
  if (!COMMAND_ID.test(commandId)) return refuse('bad-command-id', 'a command id is 1 to 128 printable ASCII characters without spaces');
  if (deviceId === null) return refuse('missing-device-id', 'no message key and no device_id field: the key is the device id (the DevEUI for LoRaWAN)');
  if (!isDeviceId(deviceId))
    return refuse('bad-device-id', `device id ${JSON.stringify(deviceId.slice(0, 64))} is not valid: letters, digits and . _ : - (at most 128)`);

  let name = header(message, 'command-name') ?? DEFAULT_NAME;
  let payload: Buffer = value;
  let structured = false;
  let fport: number | null = null;
  let confirmed = false;
  let expiresAtMs = nowMs + limits.defaultTtlMs;
  if (envelope !== null) {
    if (nestsDeeperThan(value.toString('utf8'), MAX_NESTING)) {
      return refuse('too-deep', `objects and arrays nested more than ${MAX_NESTING} levels deep; send such a payload as payload_hex or payload_base64`);
    }
    const body = envelopeFields(envelope, nowMs, limits.defaultTtlMs);
    if (!body.ok) return refuse(body.reason, body.message);
    ({ payload, structured, fport, confirmed, expiresAtMs } = body);
    if (envelope.name !== undefined) {
      if (typeof envelope.name !== 'string') return refuse('bad-field', 'name must be a string: letters, digits and . _ - (at most 64)');
      name = envelope.name;
    }
  } else if (value.length === 0) {
    return refuse('missing-payload', 'the value is empty: send the payload bytes, or an envelope with payload, payload_hex or payload_base64');
  }
  if (!NAME.test(name)) return refuse('bad-field', `name ${JSON.stringify(name.slice(0, 64))}: letters, digits and . _ - (at most 64); it is a topic level`);
  if (payload.length > limits.maxPayloadBytes) {
    return refuse('too-large', `a payload of ${payload.length} bytes is larger than commands.max_payload_bytes (${limits.maxPayloadBytes})`);
  }
  return { ok: true, command: { id: commandId, deviceId, name, payload, structured, fport, confirmed, expiresAtMs } };
}

type EnvelopeBody =
  | {
      readonly ok: true;
      readonly payload: Buffer;
      readonly structured: boolean;
      readonly fport: number | null;
      readonly confirmed: boolean;
      readonly expiresAtMs: number;
    }
  | { readonly ok: false; readonly reason: CommandRefusal; readonly message: string };

function envelopeFields(envelope: Record<string, unknown>, nowMs: number, defaultTtlMs: number): EnvelopeBody {
  const bad = (message: string): EnvelopeBody => ({ ok: false, reason: 'bad-field', message });
  const given = ['payload', 'payload_hex', 'payload_base64'].filter((field) => envelope[field] !== undefined);
  if (given.length === 0)
    return { ok: false, reason: 'missing-payload', message: 'the envelope has no payload, payload_hex or payload_base64: give one of them' };
  if (given.length > 1) return bad(`give one of payload, payload_hex, payload_base64, not ${given.join(' and ')}`);
  let payload: Buffer;
  const { payload: object, payload_hex: hex, payload_base64: base64 } = envelope;
  if (hex !== undefined) {
    if (typeof hex !== 'string' || !/^(?:[0-9A-Fa-f]{2})*$/.test(hex)) return bad('payload_hex must be an even number of hex digits');
    payload = Buffer.from(hex, 'hex');
  } else if (base64 !== undefined) {
    if (typeof base64 !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(base64) || base64.length % 4 !== 0) return bad('payload_base64 must be base64 text');
    payload = Buffer.from(base64, 'base64');
  } else if (typeof object === 'string') {
    payload = Buffer.from(object, 'utf8');
  } else if (typeof object === 'object' && object !== null) {
    payload = Buffer.from(JSON.stringify(object), 'utf8');
  } else {
    return bad('payload must be an object, an array or a string (use payload_hex or payload_base64 for bytes)');
  }
  const { port, confirmed, expires_at: expiresAt, ttl_s: ttl } = envelope;
  if (port !== undefined && !(Number.isInteger(port) && (port as number) >= 1 && (port as number) <= 223))
    return bad('port (LoRaWAN FPort) must be an integer 1..223');
  if (confirmed !== undefined && typeof confirmed !== 'boolean') return bad('confirmed must be true or false');
  if (expiresAt !== undefined && ttl !== undefined) return bad('give expires_at or ttl_s, not both');
  let expiresAtMs = nowMs + defaultTtlMs;
  if (ttl !== undefined) {
    // The expiry must be finite too: Infinity would be stored as null (JSON) and read back as 0, expired.
    if (typeof ttl !== 'number' || ttl <= 0 || !Number.isFinite(nowMs + ttl * 1000)) return bad('ttl_s must be a positive number of seconds');
    if (ttl * 1000 > MAX_TTL_MS) return bad(`ttl_s must be at most ${MAX_TTL_MS / 1000} (a year)`);
    expiresAtMs = nowMs + ttl * 1000;
  } else if (expiresAt !== undefined) {
    const at = typeof expiresAt === 'number' ? expiresAt : typeof expiresAt === 'string' ? Date.parse(expiresAt) : Number.NaN;
    if (!Number.isFinite(at)) return bad('expires_at must be an ISO-8601 time or epoch milliseconds');
    if (at > nowMs + MAX_TTL_MS) return bad('expires_at must be within a year from now');
    expiresAtMs = at;
  }
  const structured = hex === undefined && base64 === undefined && typeof object === 'object';
  return { ok: true, payload, structured, fport: port === undefined ? null : (port as number), confirmed: confirmed === true, expiresAtMs };
}
