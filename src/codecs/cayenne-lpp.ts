// Cayenne LPP codec for decrypted FRMPayloads: the most common self-describing sensor format, decoded at the
// edge so records carry values and not just bytes. Output keys follow The Things Stack (`temperature_3`), so a
// consumer sees the same JSON whether a frame came through TTN or straight off the radio. The decoder never
// throws; the encoder (firmware-sim, tests) is driven by the same type table, so the two cannot drift.
//
// Grammar: frame = { channel(1) | type(1) | value(size of type) }*; values big-endian, signed ones two's
// complement; type = IPSO object id - 3200 (myDevices Cayenne LPP; extended types from ElectronicCats/CayenneLPP).

export type CayenneLppResult =
  | { readonly ok: true; readonly data: Record<string, unknown> }
  /** `data` holds what decoded before the error: the values up to the bad entry are still good. */
  | { readonly ok: false; readonly error: string; readonly data: Record<string, unknown> };

/** One number on the wire: `size` bytes big-endian (two's complement when signed); value = wire / multiplier. */
export interface CayenneLppField {
  readonly size: number;
  readonly signed: boolean;
  readonly multiplier: number;
}

export interface CayenneLppTypeSpec {
  /** IPSO object id - 3200: the type byte. */
  readonly id: number;
  /** The Things Stack key (base types) or its snake_case analogue (extended types). */
  readonly key: string;
  /** One number, or named numbers in wire order (accelerometer x, y, z; gps latitude, longitude, altitude). */
  readonly value: CayenneLppField | Readonly<Record<string, CayenneLppField>>;
}

const u = (size: number, multiplier = 1): CayenneLppField => ({ size, signed: false, multiplier });
const s = (size: number, multiplier = 1): CayenneLppField => ({ size, signed: true, multiplier });
const xyz = (multiplier: number) => ({ x: s(2, multiplier), y: s(2, multiplier), z: s(2, multiplier) });

export const CAYENNE_LPP_TYPES = [
  // The 12 base types (IPSO 3200..3336), as The Things Stack decodes them.
  { id: 0, key: 'digital_in', value: u(1) },
  { id: 1, key: 'digital_out', value: u(1) },
  { id: 2, key: 'analog_in', value: s(2, 100) },
  { id: 3, key: 'analog_out', value: s(2, 100) },
  { id: 101, key: 'luminosity', value: u(2) },
  { id: 102, key: 'presence', value: u(1) },
  { id: 103, key: 'temperature', value: s(2, 10) },
  { id: 104, key: 'relative_humidity', value: u(1, 2) },
  { id: 113, key: 'accelerometer', value: xyz(1000) },
  { id: 115, key: 'barometric_pressure', value: u(2, 10) },
  { id: 134, key: 'gyrometer', value: xyz(100) },
  { id: 136, key: 'gps', value: { latitude: s(3, 10_000), longitude: s(3, 10_000), altitude: s(3, 100) } },
  // Extended types (ElectronicCats/CayenneLPP; not understood by myDevices Cayenne nor the TTS formatter).
  { id: 100, key: 'generic_sensor', value: u(4) },
  { id: 116, key: 'voltage', value: u(2, 100) },
  { id: 117, key: 'current', value: u(2, 1000) },
  { id: 118, key: 'frequency', value: u(4) },
  { id: 120, key: 'percentage', value: u(1) },
  { id: 121, key: 'altitude', value: s(2) },
  { id: 125, key: 'concentration', value: u(2) },
  { id: 128, key: 'power', value: u(2) },
  { id: 130, key: 'distance', value: u(4, 1000) },
  { id: 131, key: 'energy', value: u(4, 1000) },
  { id: 132, key: 'direction', value: u(2) },
  { id: 133, key: 'unix_time', value: u(4) },
  { id: 135, key: 'colour', value: { r: u(1), g: u(1), b: u(1) } },
  { id: 142, key: 'switch', value: u(1) },
] as const satisfies readonly CayenneLppTypeSpec[];

export type CayenneLppType = (typeof CAYENNE_LPP_TYPES)[number]['key'];

/** One entry to encode; `value` is in the type's unit (°C, V, kWh...), a number or an object like { x, y, z }. */
export interface CayenneLppEntry {
  /** 0..255. */
  readonly channel: number;
  readonly type: CayenneLppType;
  readonly value: number | Readonly<Record<string, number>>;
}

interface LppType extends CayenneLppTypeSpec {
  /** Value bytes: the sum of the field sizes. */
  readonly size: number;
}

const withSize = (spec: CayenneLppTypeSpec): LppType => ({ ...spec, size: fieldsOf(spec.value).reduce((sum, [, field]) => sum + field.size, 0) });
const BY_ID = new Map<number, LppType>(CAYENNE_LPP_TYPES.map((spec) => [spec.id, withSize(spec)]));
const BY_KEY = new Map<string, LppType>(CAYENNE_LPP_TYPES.map((spec) => [spec.key, withSize(spec)]));

export function decodeCayenneLpp(bytes: Uint8Array): CayenneLppResult {
  const data: Record<string, unknown> = {};
  if (!(bytes instanceof Uint8Array)) return { ok: false, error: `expected bytes (Uint8Array), got ${bytes === null ? 'null' : typeof bytes}`, data };
  let offset = 0;
  while (offset < bytes.length) {
    const channel = bytes[offset] ?? 0;
    if (offset + 1 >= bytes.length) {
      return { ok: false, error: `truncated at offset ${offset}: channel ${channel} has no type byte`, data };
    }
    const typeId = bytes[offset + 1] ?? 0;
    const type = BY_ID.get(typeId);
    if (type === undefined) {
      // The value's length depends on the type, so nothing after an unknown type can be located.
      return { ok: false, error: `unknown Cayenne LPP type ${typeId} (0x${hex(typeId)}) at offset ${offset + 1}, channel ${channel}`, data };
    }
    const valueOffset = offset + 2;
    const available = bytes.length - valueOffset;
    if (available < type.size) {
      return {
        ok: false,
        error: `truncated ${type.key} (type ${typeId}, 0x${hex(typeId)}) at offset ${offset}, channel ${channel}: needs ${type.size} value bytes, ${available} left`,
        data,
      };
    }
    // Repeated `<key>_<channel>` overwrites, as the TTS formatter's map does.
    data[`${type.key}_${channel}`] = decodeValue(type.value, bytes, valueOffset);
    offset = valueOffset + type.size;
  }
  return { ok: true, data };
}

/**
 * The frame for `entries`, in order. Values are rounded to the type's resolution; a value beyond the type's
 * range saturates at its bound rather than wrapping (a wrapped reading would decode as a plausible wrong one).
 * Throws RangeError for what has no encoding: an unknown type, a channel outside 0..255, a value that is not
 * a finite number, or an object missing one of the type's fields.
 */
export function encodeCayenneLpp(entries: readonly CayenneLppEntry[]): Buffer {
  const types = entries.map((entry) => typeOf(entry));
  const frame = Buffer.alloc(types.reduce((sum, type) => sum + 2 + type.size, 0));
  let offset = 0;
  entries.forEach((entry, index) => {
    const type = types[index] as LppType;
    frame[offset] = entry.channel;
    frame[offset + 1] = type.id;
    offset += 2;
    for (const [name, field] of fieldsOf(type.value)) {
      writeField(frame, offset, field, fieldValue(entry, name));
      offset += field.size;
    }
  });
  return frame;
}

function typeOf(entry: CayenneLppEntry): LppType {
  const type = BY_KEY.get(entry.type);
  if (type === undefined) throw new RangeError(`encodeCayenneLpp: unknown type '${String(entry.type)}'`);
  if (!Number.isInteger(entry.channel) || entry.channel < 0 || entry.channel > 255) {
    throw new RangeError(`encodeCayenneLpp: ${entry.type} channel must be an integer 0..255, got ${entry.channel}`);
  }
  return type;
}

/** A type's fields in wire order; a single-number type has one field with no name (''). */
function fieldsOf(value: CayenneLppTypeSpec['value']): [string, CayenneLppField][] {
  return isField(value) ? [['', value]] : Object.entries(value);
}

function isField(value: CayenneLppTypeSpec['value']): value is CayenneLppField {
  return typeof value.size === 'number';
}

function fieldValue(entry: CayenneLppEntry, name: string): number {
  const value = name === '' ? entry.value : typeof entry.value === 'object' && entry.value !== null ? entry.value[name] : undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    const what = name === '' ? 'a finite number' : `an object with a finite number '${name}'`;
    throw new RangeError(`encodeCayenneLpp: ${entry.type}_${entry.channel} must be ${what}, got ${JSON.stringify(entry.value)}`);
  }
  return value;
}

function decodeValue(layout: CayenneLppTypeSpec['value'], bytes: Uint8Array, offset: number): unknown {
  if (isField(layout)) return readField(layout, bytes, offset);
  const value: Record<string, number> = {};
  let fieldOffset = offset;
  for (const [name, field] of Object.entries(layout)) {
    value[name] = readField(field, bytes, fieldOffset);
    fieldOffset += field.size;
  }
  return value;
}

function readField(field: CayenneLppField, bytes: Uint8Array, offset: number): number {
  return (field.signed ? readInt(bytes, offset, field.size) : readUint(bytes, offset, field.size)) / field.multiplier;
}

function writeField(frame: Buffer, offset: number, field: CayenneLppField, value: number): void {
  const range = 2 ** (8 * field.size);
  const [min, max] = field.signed ? [-range / 2, range / 2 - 1] : [0, range - 1];
  const wire = Math.min(max, Math.max(min, Math.round(value * field.multiplier)));
  // writeUIntBE takes the unsigned image of a two's complement value.
  frame.writeUIntBE(wire < 0 ? wire + range : wire, offset, field.size);
}

/** Big-endian unsigned, built with multiplication so 4-byte values above 0x7FFFFFFF stay positive. */
function readUint(bytes: Uint8Array, offset: number, size: number): number {
  let value = 0;
  for (let i = 0; i < size; i++) value = value * 256 + (bytes[offset + i] ?? 0);
  return value;
}

function readInt(bytes: Uint8Array, offset: number, size: number): number {
  const value = readUint(bytes, offset, size);
  const range = 2 ** (8 * size);
  return value >= range / 2 ? value - range : value;
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}
