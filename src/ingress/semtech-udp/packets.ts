// The Semtech UDP packet-forwarder protocol ("GWMP", PROTOCOL.TXT v1.3+ of Lora-net/packet_forwarder) as
// pure functions: one datagram in, one typed value or a reason out, and the encoders for both directions
// (the gateway's udp-transport.ts and firmware-sim's simulated forwarder share them, so the two ends cannot
// drift). No I/O here. The port carries unauthenticated input, so parsing never throws.
//
// Wire grammar (all datagrams; multi-byte numbers do not occur outside the JSON):
//
//   datagram   = version token identifier body
//   version    = %x01 / %x02                 ; 2 = PROTOCOL.TXT v1.3+; 1 still spoken by old forwarders
//   token      = 2OCTET                      ; random per request; echoed verbatim, never re-serialised
//   identifier = %x00 PUSH_DATA / %x01 PUSH_ACK / %x02 PULL_DATA / %x03 PULL_RESP / %x04 PULL_ACK / %x05 TX_ACK
//
//   PUSH_DATA  (gw -> srv)  ver tok 00 eui json            ; json = {"rxpk":[...]?, "stat":{...}?}
//   PUSH_ACK   (srv -> gw)  ver tok 01                     ; exactly 4 bytes, token of the PUSH_DATA
//   PULL_DATA  (gw -> srv)  ver tok 02 eui                 ; exactly 12 bytes; its source is the downlink route
//   PULL_RESP  (srv -> gw)  ver tok 03 json                ; json = {"txpk":{...}}; NO gateway EUI
//   PULL_ACK   (srv -> gw)  ver tok 04                     ; exactly 4 bytes, token of the PULL_DATA
//   TX_ACK     (gw -> srv)  ver tok 05 eui [json] [%x00]   ; json = {"txpk_ack":{"error":..}}; absent = no error
//   eui        = 8OCTET                      ; gateway_ID, big-endian (display order): hex as-is
//
// Bounds: a datagram is at most MAX_DATAGRAM_BYTES (the largest UDP payload); its JSON may nest at most
// MAX_JSON_DEPTH levels and carry at most MAX_RXPK_PER_DATAGRAM rxpk. See those constants for why.

/** Largest datagram accepted: the UDP length field's limit. Real forwarders send far less (lora_pkt_fwd ~4.5 KB). */
export const MAX_DATAGRAM_BYTES = 65_535;
/**
 * JSON nesting accepted. The protocol needs 4 ({"rxpk":[{"rsig":[{...}]}]}); V8's JSON.parse is iterative,
 * so depth cannot overflow the stack, but 64 KB of brackets still costs ~20 ms of allocation per datagram,
 * an easy way to stall the event loop from an unauthenticated port. A byte scan (~0.1 ms) refuses it first.
 */
export const MAX_JSON_DEPTH = 16;
/** rxpk per PUSH_DATA: the SX1302 forwarder's NB_PKT_MAX (the legacy one sends at most 8). */
export const MAX_RXPK_PER_DATAGRAM = 255;
/** LoRa PHY payloads are at most 255 bytes (one length octet in the LoRa header). */
export const MAX_PHY_PAYLOAD_BYTES = 255;

export const PUSH_DATA = 0x00;
export const PUSH_ACK = 0x01;
export const PULL_DATA = 0x02;
export const PULL_RESP = 0x03;
export const PULL_ACK = 0x04;
export const TX_ACK = 0x05;

export type ProtocolVersion = 1 | 2;

/** Why a whole datagram was refused. */
export type DatagramRejectReason =
  | 'too-short' // < 4 bytes, or a type that carries an EUI shorter than 12
  | 'too-long' // > MAX_DATAGRAM_BYTES
  | 'unknown-version' // version byte not 1 or 2
  | 'unknown-identifier' // identifier byte not 0..5
  | 'bad-length' // fixed-size datagram (PULL_DATA, PUSH_ACK, PULL_ACK) of the wrong size
  | 'bad-json' // body is not UTF-8 JSON, not an object, or nested too deep
  | 'bad-field'; // JSON is valid but a structural field has the wrong type (rxpk not an array, txpk missing...)

/** Why one rxpk in an otherwise good PUSH_DATA was refused; the others in the datagram still count. */
export type RxpkRejectReason = 'not-an-object' | 'bad-field' | 'unsupported-modulation' | 'size-mismatch';

/** One received radio packet, typed; units in the names where the wire has none. */
export interface Rxpk {
  /** UTC receive time (ISO 8601) as the gateway wrote it; only with a GPS time reference, else null. */
  readonly time: string | null;
  /** GPS time of reception, ms since 1980-01-06 (GPS only), else null. */
  readonly tmms: number | null;
  /** Concentrator µs counter at end of reception; 32-bit unsigned, wraps every ~71.6 min. Class-A timing base. */
  readonly tmst: number;
  /** Centre frequency in Hz: Math.round(freq MHz × 1e6), exact for every 1 Hz step in the ISM bands. */
  readonly frequencyHz: number;
  /** Concentrator IF channel. */
  readonly chan: number;
  /** RF chain. */
  readonly rfch: number;
  /** PHY CRC: 1 OK, -1 bad, 0 no CRC. LoRaWAN uplinks always carry a CRC, so only 1 is a usable frame. */
  readonly crcStatus: 1 | 0 | -1;
  readonly modulation: 'LORA' | 'FSK';
  /** LoRa: "SF7BW125" (bandwidth in kHz); FSK: bit/s. */
  readonly datr: string | number;
  /** LoRa coding rate "4/5".."4/8" ("OFF" from lora_pkt_fwd when undefined); null for FSK. */
  readonly codr: string | null;
  /** RSSI in dBm (on SX1302 the channel RSSI). */
  readonly rssi: number;
  /** SX1302 only: the signal RSSI in dBm, else null. */
  readonly rssis: number | null;
  /** LoRa SNR in dB (0.1 dB precision); null for FSK. */
  readonly lsnr: number | null;
  /** Payload length in bytes, as declared by the gateway (checked against data). */
  readonly size: number;
  /** The PHYPayload, decoded from base64. */
  readonly data: Buffer;
}

/** A gateway's periodic status (PUSH_DATA "stat", every stat_interval, 30 s by default). */
export interface GatewayStat {
  /** Gateway's UTC time, "expanded" form as sent, e.g. "2014-01-12 08:59:28 GMT" (not RFC 3339). */
  readonly time: string;
  /** Latitude, longitude (degrees) and altitude (m): absent when the gateway has no GPS fix. */
  readonly lati?: number;
  readonly long?: number;
  readonly alti?: number;
  /** Packets received / received with CRC OK / forwarded since the last stat. */
  readonly rxnb: number;
  readonly rxok: number;
  readonly rxfw: number;
  /** Percentage of upstream datagrams acknowledged by this server. */
  readonly ackr: number;
  /** Downlink datagrams received / packets emitted since the last stat. */
  readonly dwnb: number;
  readonly txnb: number;
  /** SX1302 only: concentrator temperature, °C. */
  readonly temp?: number;
}

/** A downlink, as PULL_RESP carries it (LoRa only: iotgw never sends FSK). */
export interface Txpk {
  /** Send immediately, ignoring tmst (Class C). */
  readonly imme?: boolean;
  /** Concentrator µs counter at which to send (Class A: uplink tmst + RX delay), 32-bit. */
  readonly tmst?: number;
  /** MHz, like the wire. */
  readonly freq: number;
  readonly rfch: number;
  /** TX power, dBm. */
  readonly powe: number;
  readonly modu: 'LORA';
  readonly datr: string;
  readonly codr: string;
  /** Inverted polarity: true for LoRaWAN downlinks to devices. */
  readonly ipol: boolean;
  readonly size: number;
  /** PHYPayload, base64. */
  readonly data: string;
  /** Disable the physical-layer CRC (LoRaWAN downlinks carry none). */
  readonly ncrc?: boolean;
}

export interface PushData {
  readonly type: 'PUSH_DATA';
  readonly version: ProtocolVersion;
  /** The 2 token bytes verbatim (a copy, not a view into the receive buffer). */
  readonly token: Buffer;
  /** 16 lower-case hex digits. */
  readonly gatewayEui: string;
  /** The valid rxpk, in datagram order. */
  readonly rxpk: readonly Rxpk[];
  readonly stat: GatewayStat | null;
  /** rxpk entries refused individually; `index` is the position in the datagram's rxpk array. */
  readonly rejectedRxpk: readonly { readonly index: number; readonly reason: RxpkRejectReason; readonly message: string }[];
  /** Why a present "stat" was unusable (the rxpk are unaffected), else null. */
  readonly statError: string | null;
}

export interface PullData {
  readonly type: 'PULL_DATA';
  readonly version: ProtocolVersion;
  readonly token: Buffer;
  readonly gatewayEui: string;
}

export interface TxAck {
  readonly type: 'TX_ACK';
  readonly version: ProtocolVersion;
  readonly token: Buffer;
  readonly gatewayEui: string;
  /** txpk_ack.error: 'TOO_LATE', 'COLLISION_PACKET', ...; 'NONE' and an absent payload both mean null (sent). */
  readonly error: string | null;
  /** SX1302 (PROTOCOL v1.5) txpk_ack.warn, e.g. 'TX_POWER' (sent with a different power), else null. */
  readonly warn: string | null;
}

export interface PushAck {
  readonly type: 'PUSH_ACK';
  readonly version: ProtocolVersion;
  readonly token: Buffer;
}

export interface PullAck {
  readonly type: 'PULL_ACK';
  readonly version: ProtocolVersion;
  readonly token: Buffer;
}

export interface PullResp {
  readonly type: 'PULL_RESP';
  readonly version: ProtocolVersion;
  readonly token: Buffer;
  readonly txpk: Txpk;
}

export type Datagram = PushData | PullData | TxAck | PushAck | PullAck | PullResp;

export type DatagramParseResult =
  | { readonly ok: true; readonly datagram: Datagram }
  | { readonly ok: false; readonly reason: DatagramRejectReason; readonly message: string };

const IDENTIFIER_NAMES = ['PUSH_DATA', 'PUSH_ACK', 'PULL_DATA', 'PULL_RESP', 'PULL_ACK', 'TX_ACK'] as const;
const HEADER_BYTES = 4;
const HEADER_WITH_EUI_BYTES = 12;
const UINT32_MAX = 0xffff_ffff;
const utf8 = new TextDecoder('utf-8', { fatal: true });

type JsonObject = Record<string, unknown>;

class FieldError extends Error {}

function reject(reason: DatagramRejectReason, message: string): DatagramParseResult {
  return { ok: false, reason, message };
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Parses one datagram. Never throws: anything unexpected becomes `{ ok: false, reason, message }`. */
export function parseDatagram(bytes: Uint8Array): DatagramParseResult {
  try {
    return parseUnchecked(bytes);
  } catch (error) {
    // Defence in depth: every path above returns a result; an exception here is a bug, still not the caller's crash.
    return reject('bad-field', `datagram could not be parsed: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function parseUnchecked(bytes: Uint8Array): DatagramParseResult {
  if (bytes.length < HEADER_BYTES) return reject('too-short', `datagram of ${bytes.length} bytes is shorter than the 4-byte header`);
  if (bytes.length > MAX_DATAGRAM_BYTES) return reject('too-long', `datagram of ${bytes.length} bytes exceeds ${MAX_DATAGRAM_BYTES}`);
  const version = bytes[0];
  if (version !== 1 && version !== 2) {
    return reject('unknown-version', `protocol version ${version} is not supported (1 and 2 are); is this a Semtech packet forwarder?`);
  }
  const token = Buffer.from(bytes.subarray(1, 3));
  const identifier = bytes[3] ?? -1;
  const name = IDENTIFIER_NAMES[identifier];
  if (name === undefined)
    return reject('unknown-identifier', `identifier 0x${identifier.toString(16).padStart(2, '0')} is not a GWMP datagram type (0x00-0x05)`);

  if (identifier === PUSH_ACK || identifier === PULL_ACK) {
    if (bytes.length !== HEADER_BYTES) return reject('bad-length', `${name} must be exactly 4 bytes, got ${bytes.length}`);
    return { ok: true, datagram: { type: name as 'PUSH_ACK' | 'PULL_ACK', version, token } };
  }
  if (identifier === PULL_RESP) return parsePullResp(version, token, bytes);

  if (bytes.length < HEADER_WITH_EUI_BYTES) return reject('too-short', `${name} of ${bytes.length} bytes is shorter than header + gateway EUI (12)`);
  const gatewayEui = Buffer.from(bytes.subarray(HEADER_BYTES, HEADER_WITH_EUI_BYTES)).toString('hex');
  if (identifier === PULL_DATA) {
    if (bytes.length !== HEADER_WITH_EUI_BYTES) return reject('bad-length', `PULL_DATA must be exactly 12 bytes, got ${bytes.length}`);
    return { ok: true, datagram: { type: 'PULL_DATA', version, token, gatewayEui } };
  }
  if (identifier === TX_ACK) return parseTxAck(version, token, gatewayEui, bytes);
  return parsePushData(version, token, gatewayEui, bytes);
}

/**
 * Decodes the JSON body from `offset`. Trailing NUL bytes are dropped first: the Kerlink iBTS appends one
 * (seen in ChirpStack's TX_ACK tests) and C forwarders may include their string terminator.
 */
function parseJsonBody(bytes: Uint8Array, offset: number, what: string): { ok: true; value: JsonObject | null } | { ok: false; message: string } {
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

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

function parsePushData(version: ProtocolVersion, token: Buffer, gatewayEui: string, bytes: Uint8Array): DatagramParseResult {
  const body = parseJsonBody(bytes, HEADER_WITH_EUI_BYTES, 'PUSH_DATA');
  if (!body.ok) return reject('bad-json', `${body.message} (gateway ${gatewayEui})`);
  if (body.value === null) return reject('bad-json', `PUSH_DATA from gateway ${gatewayEui} carries no JSON after the EUI`);
  const json = body.value;

  const rxpkJson = json.rxpk;
  if (rxpkJson !== undefined && !Array.isArray(rxpkJson)) {
    return reject('bad-field', `PUSH_DATA from gateway ${gatewayEui}: "rxpk" must be an array, got ${describe(rxpkJson)}`);
  }
  if (rxpkJson !== undefined && rxpkJson.length > MAX_RXPK_PER_DATAGRAM) {
    return reject('bad-field', `PUSH_DATA from gateway ${gatewayEui} carries ${rxpkJson.length} rxpk; at most ${MAX_RXPK_PER_DATAGRAM} are accepted`);
  }
  const rxpk: Rxpk[] = [];
  const rejectedRxpk: { index: number; reason: RxpkRejectReason; message: string }[] = [];
  (rxpkJson ?? []).forEach((entry: unknown, index: number) => {
    const parsed = parseRxpk(entry);
    if (parsed.ok) rxpk.push(parsed.rxpk);
    else rejectedRxpk.push({ index, reason: parsed.reason, message: `rxpk[${index}]: ${parsed.message}` });
  });

  let stat: GatewayStat | null = null;
  let statError: string | null = null;
  if (json.stat !== undefined) {
    const parsed = parseStat(json.stat);
    if (parsed.ok) stat = parsed.stat;
    else statError = parsed.message;
  }
  return { ok: true, datagram: { type: 'PUSH_DATA', version, token, gatewayEui, rxpk, stat, rejectedRxpk, statError } };
}

// Field readers: each throws FieldError naming the field; the per-object parser turns that into a result.

function requireNumber(object: JsonObject, key: string): number {
  const value = object[key];
  if (value === undefined) throw new FieldError(`"${key}" is missing`);
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new FieldError(`"${key}" must be a number, got ${describe(value)}`);
  return value;
}

function requireInteger(object: JsonObject, key: string, min: number, max: number): number {
  const value = requireNumber(object, key);
  if (!Number.isInteger(value) || value < min || value > max) throw new FieldError(`"${key}" must be an integer in ${min}..${max}, got ${value}`);
  return value;
}

function optionalNumber(object: JsonObject, key: string): number | null {
  return object[key] === undefined || object[key] === null ? null : requireNumber(object, key);
}

function requireString(object: JsonObject, key: string): string {
  const value = object[key];
  if (value === undefined) throw new FieldError(`"${key}" is missing`);
  if (typeof value !== 'string') throw new FieldError(`"${key}" must be a string, got ${describe(value)}`);
  return value;
}

function optionalString(object: JsonObject, key: string): string | null {
  return object[key] === undefined || object[key] === null ? null : requireString(object, key);
}

function optionalBoolean(object: JsonObject, key: string): boolean | undefined {
  const value = object[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') throw new FieldError(`"${key}" must be true or false, got ${describe(value)}`);
  return value;
}

/** Both base64 alphabets (PROTOCOL.TXT's examples use "-"), optional padding; Buffer.from would skip junk silently. */
const BASE64 = /^[A-Za-z0-9+/\-_]*={0,2}$/;
const LORA_DATR = /^SF(\d{1,2})BW(\d{1,4})$/;
/** ISO 8601 date-time with a zone ("compact" form from lora_pkt_fwd: 2013-03-31T16:21:17.528002Z). */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})$/;

type RxpkResult = { ok: true; rxpk: Rxpk } | { ok: false; reason: RxpkRejectReason; message: string };

function parseRxpk(entry: unknown): RxpkResult {
  if (!isObject(entry)) return { ok: false, reason: 'not-an-object', message: `must be an object, got ${describe(entry)}` };
  try {
    const modulation = requireString(entry, 'modu');
    if (modulation !== 'LORA' && modulation !== 'FSK') {
      return { ok: false, reason: 'unsupported-modulation', message: `modulation "${modulation.slice(0, 20)}" is not supported (LORA and FSK are)` };
    }
    const time = optionalString(entry, 'time');
    if (time !== null && (!ISO_TIME.test(time) || Number.isNaN(Date.parse(time)))) {
      throw new FieldError(`"time" must be an ISO 8601 UTC time like 2013-03-31T16:21:17.528002Z, got ${describe(time)}`);
    }
    const tmms = optionalNumber(entry, 'tmms');
    if (tmms !== null && (!Number.isInteger(tmms) || tmms < 0)) throw new FieldError(`"tmms" must be a non-negative integer, got ${tmms}`);
    const tmst = requireInteger(entry, 'tmst', 0, UINT32_MAX);
    const freqMhz = requireNumber(entry, 'freq');
    // 1 MHz..10 GHz: wide enough for every LoRa band, narrow enough to catch Hz or kHz sent by mistake.
    if (freqMhz < 1 || freqMhz > 10_000) throw new FieldError(`"freq" must be in MHz (e.g. 868.1), got ${freqMhz}`);
    const chan = requireInteger(entry, 'chan', 0, 255);
    const rfch = requireInteger(entry, 'rfch', 0, 255);
    const crcStatus = requireNumber(entry, 'stat');
    if (crcStatus !== 1 && crcStatus !== 0 && crcStatus !== -1) throw new FieldError(`"stat" (CRC status) must be 1, 0 or -1, got ${crcStatus}`);
    let datr: string | number;
    if (modulation === 'LORA') {
      datr = requireString(entry, 'datr');
      if (!LORA_DATR.test(datr)) throw new FieldError(`"datr" must look like "SF7BW125" for LoRa, got ${describe(datr)}`);
    } else {
      datr = requireNumber(entry, 'datr');
      if (datr <= 0) throw new FieldError(`"datr" must be a positive bit rate for FSK, got ${datr}`);
    }
    const codr = optionalString(entry, 'codr');
    if (modulation === 'LORA' && codr === null) throw new FieldError('"codr" is missing (required for LoRa)');
    const rssi = requireNumber(entry, 'rssi');
    const rssis = optionalNumber(entry, 'rssis');
    const lsnr = optionalNumber(entry, 'lsnr');
    const size = requireInteger(entry, 'size', 0, MAX_PHY_PAYLOAD_BYTES);
    const encoded = requireString(entry, 'data');
    if (encoded.length > 4 * Math.ceil(MAX_PHY_PAYLOAD_BYTES / 3) + 4 || !BASE64.test(encoded)) throw new FieldError('"data" must be base64');
    const data = Buffer.from(encoded, 'base64');
    if (data.length !== size) {
      return { ok: false, reason: 'size-mismatch', message: `"data" decodes to ${data.length} bytes but "size" says ${size}` };
    }
    return {
      ok: true,
      rxpk: {
        time,
        tmms,
        tmst,
        frequencyHz: Math.round(freqMhz * 1e6),
        chan,
        rfch,
        crcStatus,
        modulation,
        datr,
        codr,
        rssi,
        rssis,
        lsnr,
        size,
        data,
      },
    };
  } catch (error) {
    if (error instanceof FieldError) return { ok: false, reason: 'bad-field', message: error.message };
    throw error;
  }
}

function parseStat(value: unknown): { ok: true; stat: GatewayStat } | { ok: false; message: string } {
  if (!isObject(value)) return { ok: false, message: `"stat" must be an object, got ${describe(value)}` };
  try {
    const lati = optionalNumber(value, 'lati');
    const long = optionalNumber(value, 'long');
    const alti = optionalNumber(value, 'alti');
    const temp = optionalNumber(value, 'temp');
    const time = requireString(value, 'time');
    // lora_pkt_fwd writes "2014-01-12 08:59:28 GMT" (23 characters); anything long is not a time.
    if (time.length > 40) throw new FieldError(`"time" is ${time.length} characters; a gateway time is at most 40`);
    const stat: GatewayStat = {
      time,
      ...(lati === null ? {} : { lati }),
      ...(long === null ? {} : { long }),
      ...(alti === null ? {} : { alti }),
      rxnb: requireNumber(value, 'rxnb'),
      rxok: requireNumber(value, 'rxok'),
      rxfw: requireNumber(value, 'rxfw'),
      ackr: requireNumber(value, 'ackr'),
      dwnb: requireNumber(value, 'dwnb'),
      txnb: requireNumber(value, 'txnb'),
      ...(temp === null ? {} : { temp }),
    };
    return { ok: true, stat };
  } catch (error) {
    if (error instanceof FieldError) return { ok: false, message: `stat: ${error.message}` };
    throw error;
  }
}

function parseTxAck(version: ProtocolVersion, token: Buffer, gatewayEui: string, bytes: Uint8Array): DatagramParseResult {
  const body = parseJsonBody(bytes, HEADER_WITH_EUI_BYTES, 'TX_ACK');
  if (!body.ok) return reject('bad-json', `${body.message} (gateway ${gatewayEui})`);
  let error: string | null = null;
  let warn: string | null = null;
  if (body.value !== null && body.value.txpk_ack !== undefined) {
    const ack = body.value.txpk_ack;
    if (!isObject(ack)) return reject('bad-field', `TX_ACK from gateway ${gatewayEui}: "txpk_ack" must be an object, got ${describe(ack)}`);
    if (ack.error !== undefined && typeof ack.error !== 'string') {
      return reject('bad-field', `TX_ACK from gateway ${gatewayEui}: "txpk_ack.error" must be a string, got ${describe(ack.error)}`);
    }
    if (typeof ack.error === 'string' && ack.error !== 'NONE' && ack.error !== '') error = ack.error.slice(0, 64);
    if (typeof ack.warn === 'string' && ack.warn !== 'NONE' && ack.warn !== '') warn = ack.warn.slice(0, 64);
  }
  return { ok: true, datagram: { type: 'TX_ACK', version, token, gatewayEui, error, warn } };
}

function parsePullResp(version: ProtocolVersion, token: Buffer, bytes: Uint8Array): DatagramParseResult {
  const body = parseJsonBody(bytes, HEADER_BYTES, 'PULL_RESP');
  if (!body.ok) return reject('bad-json', body.message);
  if (body.value === null) return reject('bad-json', 'PULL_RESP carries no JSON');
  const txpkJson = body.value.txpk;
  if (!isObject(txpkJson)) return reject('bad-field', `PULL_RESP: "txpk" must be an object, got ${txpkJson === undefined ? 'nothing' : describe(txpkJson)}`);
  try {
    const modu = requireString(txpkJson, 'modu');
    if (modu !== 'LORA') throw new FieldError(`"modu" ${describe(modu)} is not supported (LORA is)`);
    const imme = optionalBoolean(txpkJson, 'imme');
    const tmst = txpkJson.tmst === undefined ? undefined : requireInteger(txpkJson, 'tmst', 0, UINT32_MAX);
    const ncrc = optionalBoolean(txpkJson, 'ncrc');
    const txpk: Txpk = {
      ...(imme === undefined ? {} : { imme }),
      ...(tmst === undefined ? {} : { tmst }),
      freq: requireNumber(txpkJson, 'freq'),
      rfch: requireInteger(txpkJson, 'rfch', 0, 255),
      powe: requireNumber(txpkJson, 'powe'),
      modu,
      datr: requireString(txpkJson, 'datr'),
      codr: requireString(txpkJson, 'codr'),
      // lora_pkt_fwd treats an absent ipol as false.
      ipol: optionalBoolean(txpkJson, 'ipol') ?? false,
      size: requireInteger(txpkJson, 'size', 0, MAX_PHY_PAYLOAD_BYTES),
      data: requireString(txpkJson, 'data'),
      ...(ncrc === undefined ? {} : { ncrc }),
    };
    return { ok: true, datagram: { type: 'PULL_RESP', version, token, txpk } };
  } catch (error) {
    if (error instanceof FieldError) return reject('bad-field', `PULL_RESP txpk: ${error.message}`);
    throw error;
  }
}

// Encoders. They take trusted values from our own code: a wrong token or EUI is a programmer error and throws.

function header(version: ProtocolVersion, token: Uint8Array, identifier: number): Buffer {
  if (token.length !== 2) throw new RangeError(`token must be 2 bytes, got ${token.length}`);
  return Buffer.from([version, token[0] ?? 0, token[1] ?? 0, identifier]);
}

function euiBytes(gatewayEui: string): Buffer {
  if (!/^[0-9a-fA-F]{16}$/.test(gatewayEui)) throw new RangeError(`gateway EUI must be 16 hex digits, got "${gatewayEui}"`);
  return Buffer.from(gatewayEui, 'hex');
}

export function encodePushAck(version: ProtocolVersion, token: Uint8Array): Buffer {
  return header(version, token, PUSH_ACK);
}

export function encodePullAck(version: ProtocolVersion, token: Uint8Array): Buffer {
  return header(version, token, PULL_ACK);
}

/** Key order follows PROTOCOL.TXT's example, so the vector re-encodes byte for byte. */
export function encodePullResp(version: ProtocolVersion, token: Uint8Array, txpk: Txpk): Buffer {
  const json = {
    imme: txpk.imme,
    tmst: txpk.tmst,
    freq: txpk.freq,
    rfch: txpk.rfch,
    powe: txpk.powe,
    modu: txpk.modu,
    datr: txpk.datr,
    codr: txpk.codr,
    ipol: txpk.ipol,
    size: txpk.size,
    data: txpk.data,
    ncrc: txpk.ncrc,
  };
  // JSON.stringify omits the undefined optionals.
  return Buffer.concat([header(version, token, PULL_RESP), Buffer.from(JSON.stringify({ txpk: json }), 'utf8')]);
}

export function encodePullData(version: ProtocolVersion, token: Uint8Array, gatewayEui: string): Buffer {
  return Buffer.concat([header(version, token, PULL_DATA), euiBytes(gatewayEui)]);
}

/** `error` undefined sends the 12-byte form (no JSON: "no error"); a string, 'NONE' included, sends {"txpk_ack":{"error":..}}. */
export function encodeTxAck(version: ProtocolVersion, token: Uint8Array, gatewayEui: string, error?: string): Buffer {
  const parts = [header(version, token, TX_ACK), euiBytes(gatewayEui)];
  if (error !== undefined) parts.push(Buffer.from(JSON.stringify({ txpk_ack: { error } }), 'utf8'));
  return Buffer.concat(parts);
}

/** The wire form of an Rxpk; key order as in the vectors (time first, then lora_pkt_fwd's order). */
function rxpkToJson(rxpk: Rxpk): Record<string, unknown> {
  return {
    time: rxpk.time ?? undefined,
    tmms: rxpk.tmms ?? undefined,
    tmst: rxpk.tmst,
    chan: rxpk.chan,
    rfch: rxpk.rfch,
    freq: rxpk.frequencyHz / 1e6,
    stat: rxpk.crcStatus,
    modu: rxpk.modulation,
    datr: rxpk.datr,
    codr: rxpk.codr ?? undefined,
    rssi: rxpk.rssi,
    rssis: rxpk.rssis ?? undefined,
    lsnr: rxpk.lsnr ?? undefined,
    size: rxpk.size,
    data: rxpk.data.toString('base64'),
  };
}

function statToJson(stat: GatewayStat): Record<string, unknown> {
  return {
    time: stat.time,
    lati: stat.lati,
    long: stat.long,
    alti: stat.alti,
    rxnb: stat.rxnb,
    rxok: stat.rxok,
    rxfw: stat.rxfw,
    ackr: stat.ackr,
    dwnb: stat.dwnb,
    txnb: stat.txnb,
    temp: stat.temp,
  };
}

/** Gateway side (firmware-sim). Encodes the typed Rxpk back to the wire: parse(encode(x)) gives x again. */
export function encodePushData(
  version: ProtocolVersion,
  token: Uint8Array,
  gatewayEui: string,
  content: { readonly rxpk?: readonly Rxpk[]; readonly stat?: GatewayStat },
): Buffer {
  const json = { rxpk: content.rxpk?.map(rxpkToJson), stat: content.stat === undefined ? undefined : statToJson(content.stat) };
  return Buffer.concat([header(version, token, PUSH_DATA), euiBytes(gatewayEui), Buffer.from(JSON.stringify(json), 'utf8')]);
}

/** Checks a downlink before it is sent; returns what is wrong, or null. */
export function checkTxpk(txpk: Txpk): string | null {
  if (txpk.imme !== true && txpk.tmst === undefined) return 'txpk needs either imme: true or a tmst';
  if (txpk.tmst !== undefined && (!Number.isInteger(txpk.tmst) || txpk.tmst < 0 || txpk.tmst > UINT32_MAX))
    return `txpk.tmst ${txpk.tmst} is not a 32-bit µs count`;
  if (!Number.isFinite(txpk.freq) || txpk.freq < 1 || txpk.freq > 10_000) return `txpk.freq ${txpk.freq} must be in MHz (e.g. 869.525)`;
  if (!LORA_DATR.test(txpk.datr)) return `txpk.datr "${txpk.datr}" must look like "SF12BW125"`;
  if (!BASE64.test(txpk.data)) return 'txpk.data must be base64';
  const length = Buffer.from(txpk.data, 'base64').length;
  if (length !== txpk.size) return `txpk.data decodes to ${length} bytes but txpk.size says ${txpk.size}`;
  if (txpk.size > MAX_PHY_PAYLOAD_BYTES) return `txpk.size ${txpk.size} exceeds ${MAX_PHY_PAYLOAD_BYTES}`;
  return null;
}
