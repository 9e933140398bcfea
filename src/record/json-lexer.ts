// The lexical pieces of JSON as JSON.parse reads them, over bytes: strings, numbers and literals scanned in
// place (each returns the index after the token, or -1 if it is not valid JSON), and the few decoders that
// turn a found token into its value. json-field.ts walks a document with them.
export const QUOTE = 0x22;
const BACKSLASH = 0x5c;
export const COMMA = 0x2c;
export const COLON = 0x3a;
export const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
export const LBRACE = 0x7b;
export const RBRACE = 0x7d;
export const LBRACKET = 0x5b;
export const RBRACKET = 0x5d;
/** What `at` gives past the end, so a truncated document fails every check. */
export const END = -1;

/**
 * The byte at `i`, or END past the end. Every read that can pass the end goes through this: a load that once
 * reads past the end, or a comparison that once sees `undefined`, stays generic in V8's optimized code, and a
 * single malformed payload would slow every later scan down by half.
 */
export function at(bytes: Uint8Array, i: number): number {
  return i < bytes.length ? (bytes[i] as number) : END;
}

export function isDigit(byte: number): boolean {
  return byte >= ZERO && byte <= 0x39;
}

function isHex(byte: number): boolean {
  return isDigit(byte) || (byte >= 0x41 && byte <= 0x46) || (byte >= 0x61 && byte <= 0x66);
}

export function skipWhitespace(bytes: Uint8Array, from: number): number {
  let i = from;
  for (let byte = at(bytes, i); byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09; byte = at(bytes, i)) i += 1;
  return i;
}

/** 1 for the bytes a string holds as they are: all but '"', '\\' and control characters (any byte >= 0x80 too). */
const PLAIN = new Uint8Array(256);
for (let byte = 0x20; byte < 256; byte++) PLAIN[byte] = byte === QUOTE || byte === BACKSLASH ? 0 : 1;

/** The index after the closing quote of the string whose content starts at `from`, or -1. */
export function scanString(bytes: Uint8Array, from: number): number {
  const length = bytes.length;
  let i = from;
  for (;;) {
    while (i < length && PLAIN[bytes[i] as number] === 1) i += 1;
    const byte = at(bytes, i);
    if (byte === QUOTE) return i + 1;
    if (byte !== BACKSLASH) return -1; // a raw control character, or the end
    i = scanEscape(bytes, i + 1);
    if (i < 0) return -1;
  }
}

/** The index after the escape whose letter is at `from` (after the backslash), or -1 for an invalid escape. */
function scanEscape(bytes: Uint8Array, from: number): number {
  const letter = at(bytes, from);
  if (letter === 0x75) {
    for (let k = 1; k <= 4; k++) if (!isHex(at(bytes, from + k))) return -1;
    return from + 5;
  }
  const simple = letter === QUOTE || letter === BACKSLASH || letter === 0x2f || letter === 0x62 || letter === 0x66;
  return simple || letter === 0x6e || letter === 0x72 || letter === 0x74 ? from + 1 : -1;
}

/** The end of the number starting at `from` (RFC 8259: no '+', no leading zeros, digits on both sides of '.'), or -1. */
export function scanNumber(bytes: Uint8Array, from: number): number {
  let i = at(bytes, from) === MINUS ? from + 1 : from;
  const first = at(bytes, i);
  if (first === ZERO) i += 1;
  else if (isDigit(first)) i = skipDigits(bytes, i);
  else return -1;
  if (at(bytes, i) === DOT) {
    if (!isDigit(at(bytes, i + 1))) return -1;
    i = skipDigits(bytes, i + 1);
  }
  const e = at(bytes, i);
  if (e === 0x65 || e === 0x45) {
    const sign = at(bytes, i + 1);
    i += sign === PLUS || sign === MINUS ? 2 : 1;
    if (!isDigit(at(bytes, i))) return -1;
    i = skipDigits(bytes, i);
  }
  return i;
}

function skipDigits(bytes: Uint8Array, from: number): number {
  const length = bytes.length;
  let i = from;
  while (i < length && isDigit(bytes[i] as number)) i += 1;
  return i;
}

const TRUE = new TextEncoder().encode('true');
const FALSE = new TextEncoder().encode('false');
const NULL = new TextEncoder().encode('null');

/** The end of the literal true, false or null at `from`, or -1. */
export function scanLiteral(bytes: Uint8Array, from: number): number {
  const first = at(bytes, from);
  const literal = first === 0x74 ? TRUE : first === 0x66 ? FALSE : first === 0x6e ? NULL : null;
  if (literal === null) return -1;
  for (let k = 1; k < literal.length; k++) if (at(bytes, from + k) !== literal[k]) return -1;
  return from + literal.length;
}

/** Exact doubles: 10^22 is the largest power of ten a double holds exactly. */
const POWERS_OF_TEN = Array.from({ length: 23 }, (_, exponent) => 10 ** exponent);
const MAX_FAST_DIGITS = 15;

/**
 * The number in bytes [start, end) (valid JSON), as Number() reads it. Clinger's fast path: with at most 15
 * digits the digits are an exact integer and 10^0..10^22 are exact, so one multiplication or division rounds
 * correctly, which is what Number() does; anything else goes through Number() itself.
 */
export function toNumber(bytes: Uint8Array, start: number, end: number): number {
  const negative = bytes[start] === MINUS;
  let mantissa = 0;
  let digits = 0;
  let exponent = 0;
  let fraction = false;
  let i = negative ? start + 1 : start;
  for (; i < end; i++) {
    const byte = at(bytes, i);
    if (byte === DOT) fraction = true;
    else if (!isDigit(byte)) break;
    else {
      mantissa = mantissa * 10 + (byte - ZERO);
      digits += 1;
      if (fraction) exponent -= 1;
    }
  }
  if (i < end) exponent += readExponent(bytes, i + 1, end);
  const power = POWERS_OF_TEN[Math.abs(exponent)];
  if (digits > MAX_FAST_DIGITS || power === undefined) return Number(latin1(bytes, start, end));
  const magnitude = exponent < 0 ? mantissa / power : mantissa * power;
  return negative ? -magnitude : magnitude;
}

/** The exponent after 'e' in bytes [from, end); past 1000 it only has to be too big for the fast path. */
function readExponent(bytes: Uint8Array, from: number, end: number): number {
  const sign = bytes[from] === MINUS ? -1 : 1;
  let value = 0;
  for (let k = sign === -1 || bytes[from] === PLUS ? from + 1 : from; k < end && value <= 1000; k++) value = value * 10 + ((bytes[k] ?? ZERO) - ZERO);
  return sign * value;
}

function latin1(bytes: Uint8Array, start: number, end: number): string {
  let text = '';
  for (let i = start; i < end; i++) text += String.fromCharCode(bytes[i] ?? 0);
  return text;
}

/** A BOM inside a string is a character, not a mark to strip (only the document's leading one is). */
const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

/** JSON.parse's reading of a (valid) string's content in bytes [start, end): UTF-8, U+FFFD for bad bytes, escapes. */
export function decodeString(bytes: Uint8Array, start: number, end: number): string {
  let escaped = false;
  let ascii = true;
  for (let i = start; i < end; i++) {
    const byte = bytes[i] as number;
    escaped ||= byte === BACKSLASH;
    ascii &&= byte < 0x80;
  }
  // ASCII reads the same as Latin-1, which a Buffer (what MQTT payloads are) decodes twice as fast.
  if (ascii && !escaped && Buffer.isBuffer(bytes)) return bytes.toString('latin1', start, end);
  // Bytes below 0x80 decode to themselves whatever surrounds them, and the content sits between two '"':
  // decoding it alone gives what decoding the whole document gave there.
  const text = utf8.decode(bytes.subarray(start, end));
  return escaped ? unescapeJson(text) : text;
}

/** Whether the key in bytes [start, end) (a valid string's content) is `key` once decoded. */
export function keyEquals(bytes: Uint8Array, start: number, end: number, key: string): boolean {
  for (let i = start, k = 0; i < end; i++, k++) {
    const byte = bytes[i] as number;
    // Up to the first escape or non-ASCII byte the bytes are the key's code units; from there, decode.
    if (byte === BACKSLASH || byte > 0x7f) return decodeString(bytes, start, end) === key;
    if (byte !== key.charCodeAt(k)) return false;
  }
  return end - start === key.length;
}

function unescapeJson(text: string): string {
  let out = '';
  let from = 0;
  for (let at = text.indexOf('\\'); at !== -1; at = text.indexOf('\\', from)) {
    out += text.slice(from, at);
    const letter = text.charCodeAt(at + 1);
    if (letter === 0x75) {
      // \uXXXX is one UTF-16 code unit, a lone surrogate included, as JSON.parse keeps it.
      out += String.fromCharCode(Number.parseInt(text.slice(at + 2, at + 6), 16));
      from = at + 6;
    } else {
      out += unescapeChar(letter);
      from = at + 2;
    }
  }
  return out + text.slice(from);
}

function unescapeChar(letter: number): string {
  switch (letter) {
    case 0x62:
      return '\b';
    case 0x66:
      return '\f';
    case 0x6e:
      return '\n';
    case 0x72:
      return '\r';
    case 0x74:
      return '\t';
    default:
      return String.fromCharCode(letter); // '"', '\\' and '/' stand for themselves
  }
}
