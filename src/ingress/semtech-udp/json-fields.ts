// The JSON half of a GWMP datagram: the body decoded under bounds (nesting checked by a byte scan before
// JSON.parse builds anything), then typed field readers that name the bad field. Shared by the uplink and
// downlink parsers, so both describe bad input in the same words.
import { MAX_JSON_DEPTH } from './packets.ts';

export type JsonObject = Record<string, unknown>;

/** Thrown by the field readers; each per-object parser turns it into a result, so it never leaves the codec. */
export class FieldError extends Error {}

/** Both base64 alphabets (PROTOCOL.TXT's examples use "-"), optional padding; Buffer.from would skip junk silently. */
export const BASE64 = /^[A-Za-z0-9+/\-_]*={0,2}$/;
/** A LoRa data rate as the wire writes it: spreading factor and bandwidth in kHz, e.g. "SF7BW125". */
export const LORA_DATR = /^SF(\d{1,2})BW(\d{1,4})$/;

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Decodes the JSON body from `offset`. Trailing NUL bytes are dropped first: the Kerlink iBTS appends one
 * (seen in ChirpStack's TX_ACK tests) and C forwarders may include their string terminator.
 */
export function parseJsonBody(bytes: Uint8Array, offset: number, what: string): { ok: true; value: JsonObject | null } | { ok: false; message: string } {
  let end = bytes.length;
  while (end > offset && bytes[end - 1] === 0) end -= 1;
  if (end === offset) return { ok: true, value: null };
  const body = bytes.subarray(offset, end);
  const depth = jsonDepth(body);
  if (depth > MAX_JSON_DEPTH) return { ok: false, message: `${what} JSON nests deeper than ${MAX_JSON_DEPTH} levels` };
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    return { ok: false, message: `${what} body is not valid UTF-8` };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { ok: false, message: `${what} body is not valid JSON (${error instanceof Error ? error.message : String(error)})` };
  }
  if (!isObject(value)) return { ok: false, message: `${what} JSON must be an object, got ${describe(value)}` };
  return { ok: true, value };
}

/** Maximum bracket nesting outside string literals, stopping early once past the limit. */
function jsonDepth(body: Uint8Array): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const byte = body[i];
    if (inString) {
      if (byte === 0x5c)
        i += 1; // backslash: skip the escaped character
      else if (byte === 0x22) inString = false;
    } else if (byte === 0x22) inString = true;
    else if (byte === 0x7b || byte === 0x5b) {
      depth += 1;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > MAX_JSON_DEPTH) return deepest;
      }
    } else if (byte === 0x7d || byte === 0x5d) depth -= 1;
  }
  return deepest;
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

// Field readers: each throws FieldError naming the field; the per-object parser turns that into a result.

export function requireNumber(object: JsonObject, key: string): number {
  const value = object[key];
  if (value === undefined) throw new FieldError(`"${key}" is missing`);
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new FieldError(`"${key}" must be a number, got ${describe(value)}`);
  return value;
}

export function requireInteger(object: JsonObject, key: string, min: number, max: number): number {
  const value = requireNumber(object, key);
  if (!Number.isInteger(value) || value < min || value > max) throw new FieldError(`"${key}" must be an integer in ${min}..${max}, got ${value}`);
  return value;
}

export function optionalNumber(object: JsonObject, key: string): number | null {
  return object[key] === undefined || object[key] === null ? null : requireNumber(object, key);
}

export function requireString(object: JsonObject, key: string): string {
  const value = object[key];
  if (value === undefined) throw new FieldError(`"${key}" is missing`);
  if (typeof value !== 'string') throw new FieldError(`"${key}" must be a string, got ${describe(value)}`);
  return value;
}

export function optionalString(object: JsonObject, key: string): string | null {
  return object[key] === undefined || object[key] === null ? null : requireString(object, key);
}

export function optionalBoolean(object: JsonObject, key: string): boolean | undefined {
  const value = object[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') throw new FieldError(`"${key}" must be true or false, got ${describe(value)}`);
  return value;
}
