// One Kafka record (message format v2: length, attributes, timestamp and offset deltas, key, value, headers)
// written into one buffer of its exact size. kafkajs 2.2.4 builds each record from a fresh Encoder (a
// zero-filled 512-byte buffer), one more Encoder per header, and a Buffer.from([...]) per varint: with the
// gateway's six headers that is about 16 µs and 4 KB of garbage per record, the largest single cost on the
// forwarding thread. The bytes written here are kafkajs' own for every input (a contract test compares them);
// shapes the gateway never sends (header arrays, number keys, fractional time deltas, ...) are handed to
// kafkajs' encoder unchanged, so even its errors stay its own.

/** What kafkajs' produce request passes to its record encoder, one message at a time. */
export interface RecordFields {
  readonly offsetDelta?: number;
  readonly timestampDelta?: number;
  readonly key?: unknown;
  readonly value?: unknown;
  readonly headers?: unknown;
}

/** kafkajs' Encoder as the record batch reads it: the bytes are `buf` up to `offset`. */
export interface EncodedRecord {
  buf: Buffer;
  offset: number;
}

export type RecordEncoder = (fields: RecordFields) => EncodedRecord;

const INT31 = 2 ** 31;

/**
 * Returns a record encoder equal to `original` (kafkajs' own) in output; `wrap` turns the written buffer into
 * the Encoder instance kafkajs' record batch expects.
 */
export function createRecordEncoder(original: RecordEncoder, wrap: (buf: Buffer) => EncodedRecord): RecordEncoder {
  return (fields) => {
    const { offsetDelta = 0, timestampDelta = 0, key, value, headers = {} } = fields;
    const bodySize = recordBodySize(offsetDelta, timestampDelta, key, value, headers);
    if (bodySize < 0) return original(fields);
    const buf = Buffer.allocUnsafe(varIntSize(bodySize) + bodySize);
    const encoded = wrap(buf);
    encoded.offset = writeRecord(buf, 0, bodySize, offsetDelta, timestampDelta, key, value, headers);
    return encoded;
  };
}

/**
 * The size of a record's body (what its length prefix says), or -1 for a shape this module does not write
 * (kafkajs' encoder must). A record takes `varIntSize(body) + body` bytes.
 */
export function recordBodySize(offsetDelta: unknown, timestampDelta: unknown, key: unknown, value: unknown, headers: unknown): number {
  if (!isFastShape(offsetDelta, timestampDelta, key, value, headers)) return -1;
  const record = headers as Record<string, unknown>;
  let headerCount = 0;
  let headersSize = 0;
  for (const name in record) {
    if (!Object.hasOwn(record, name)) continue;
    const headerValue = record[name];
    if (typeof headerValue !== 'string' && !Buffer.isBuffer(headerValue)) return -1;
    headerCount++;
    headersSize += bytesFieldSize(name) + bytesFieldSize(headerValue);
  }
  return (
    1 +
    varLongSize(timestampDelta as number) +
    varIntSize(offsetDelta as number) +
    bytesFieldSize(key) +
    bytesFieldSize(value) +
    varIntSize(headerCount) +
    headersSize
  );
}

/** Writes a record whose body size recordBodySize() gave (not -1) at `at`; returns the offset after it. */
export function writeRecord(
  buf: Buffer,
  at: number,
  bodySize: number,
  offsetDelta: number,
  timestampDelta: number,
  key: unknown,
  value: unknown,
  headers: unknown,
): number {
  const record = headers as Record<string, string | Buffer>;
  let headerCount = 0;
  for (const name in record) if (Object.hasOwn(record, name)) headerCount++;
  let next = writeVarInt(buf, at, bodySize);
  buf[next++] = 0; // attributes: none are defined for records
  next = writeVarLong(buf, next, timestampDelta);
  next = writeVarInt(buf, next, offsetDelta);
  next = writeBytesField(buf, next, key);
  next = writeBytesField(buf, next, value);
  next = writeVarInt(buf, next, headerCount);
  for (const name in record) {
    if (!Object.hasOwn(record, name)) continue;
    next = writeBytesField(buf, next, name);
    next = writeBytesField(buf, next, record[name]);
  }
  return next;
}

function isFastShape(offsetDelta: unknown, timestampDelta: unknown, key: unknown, value: unknown, headers: unknown): boolean {
  return (
    Number.isInteger(offsetDelta) &&
    Math.abs(offsetDelta as number) < INT31 &&
    Number.isSafeInteger(timestampDelta) &&
    isBytesLike(key) &&
    isBytesLike(value) &&
    typeof headers === 'object' &&
    headers !== null &&
    !Array.isArray(headers) &&
    Object.getPrototypeOf(headers) === Object.prototype
  );
}

/** string, Buffer, or absent (written as length -1): what kafkajs writes the same way in size and bytes. */
function isBytesLike(field: unknown): boolean {
  return field === null || field === undefined || typeof field === 'string' || Buffer.isBuffer(field);
}

function byteLength(field: string | Buffer): number {
  return typeof field === 'string' ? utf8Length(field) : field.length;
}

/**
 * Strings this short are measured and written in JavaScript when they are ASCII (ids, names, ISO dates: a
 * record's key and twelve header strings): a call into Buffer's native UTF-8 code per string cost more than
 * the bytes. Longer or non-ASCII strings go to Buffer.
 */
const SHORT_STRING = 64;

function utf8Length(text: string): number {
  if (text.length > SHORT_STRING) return Buffer.byteLength(text, 'utf8');
  for (let index = 0; index < text.length; index++) if (text.charCodeAt(index) > 0x7f) return Buffer.byteLength(text, 'utf8');
  return text.length;
}

/** Writes `text` (`length` UTF-8 bytes) at `at`; returns the bytes written. */
function writeText(buf: Buffer, at: number, text: string, length: number): number {
  if (length !== text.length || length > SHORT_STRING) return buf.write(text, at, length, 'utf8');
  // length === text.length: every character is one byte, so ASCII.
  for (let index = 0; index < length; index++) buf[at + index] = text.charCodeAt(index);
  return length;
}

function bytesFieldSize(field: unknown): number {
  if (field === null || field === undefined) return varIntSize(-1);
  const length = byteLength(field as string | Buffer);
  return varIntSize(length) + length;
}

/** Longest string whose length prefix is one byte (zigzag(63) = 126). */
const ONE_BYTE_LENGTH = 63;

function writeBytesField(buf: Buffer, at: number, field: unknown): number {
  if (field === null || field === undefined) return writeVarInt(buf, at, -1);
  if (typeof field === 'string') {
    // A short ASCII string (a key, a header name or value) is written in one pass, its one-byte length prefix
    // after it; at the first non-ASCII character the field is written again from the start, as below.
    const chars = field.length;
    if (chars <= ONE_BYTE_LENGTH) {
      let index = 0;
      for (; index < chars; index++) {
        const code = field.charCodeAt(index);
        if (code > 0x7f) break;
        buf[at + 1 + index] = code;
      }
      if (index === chars) {
        buf[at] = chars << 1;
        return at + 1 + chars;
      }
    }
    const length = utf8Length(field);
    const next = writeVarInt(buf, at, length);
    return next + writeText(buf, next, field, length);
  }
  const bytes = field as Buffer;
  const next = writeVarInt(buf, at, bytes.length);
  return next + bytes.copy(buf, next);
}

// Varints as Kafka (and kafkajs) write them: zigzag, then 7 bits per byte, low first.

function zigZag32(value: number): number {
  return ((value << 1) ^ (value >> 31)) >>> 0;
}

export function varIntSize(value: number): number {
  let rest = zigZag32(value);
  let size = 1;
  while (rest >= 0x80) {
    size++;
    rest >>>= 7;
  }
  return size;
}

function writeVarInt(buf: Buffer, at: number, value: number): number {
  let rest = zigZag32(value);
  while (rest >= 0x80) {
    buf[at++] = (rest & 0x7f) | 0x80;
    rest >>>= 7;
  }
  buf[at++] = rest;
  return at;
}

/** 64-bit zigzag; the 32-bit path gives the same bytes for values below 2^31 in magnitude. */
function zigZag64(value: number): bigint {
  const big = BigInt(value);
  return big >= 0n ? big << 1n : (-big << 1n) - 1n;
}

function varLongSize(value: number): number {
  if (Math.abs(value) < INT31) return varIntSize(value);
  let rest = zigZag64(value);
  let size = 1;
  while (rest >= 0x80n) {
    size++;
    rest >>= 7n;
  }
  return size;
}

function writeVarLong(buf: Buffer, at: number, value: number): number {
  if (Math.abs(value) < INT31) return writeVarInt(buf, at, value);
  let rest = zigZag64(value);
  while (rest >= 0x80n) {
    buf[at++] = Number(rest & 0x7fn) | 0x80;
    rest >>= 7n;
  }
  buf[at++] = Number(rest);
  return at;
}
