// Cayenne LPP decoder for decrypted FRMPayloads: the most common self-describing sensor format, decoded at the
// edge so records carry values and not just bytes. Output keys follow The Things Stack (`temperature_3`), so a
// consumer sees the same JSON whether a frame came through TTN or straight off the radio. Never throws.
//
// Grammar: frame = { channel(1) | type(1) | value(size of type) }*; values big-endian, signed ones two's
// complement; type = IPSO object id - 3200 (myDevices Cayenne LPP; extended types from ElectronicCats/CayenneLPP).

export type CayenneLppResult =
  | { readonly ok: true; readonly data: Record<string, unknown> }
  /** `data` holds what decoded before the error: the values up to the bad entry are still good. */
  | { readonly ok: false; readonly error: string; readonly data: Record<string, unknown> };

interface LppType {
  /** The Things Stack key (base types) or its snake_case analogue (extended types). */
  readonly key: string;
  readonly size: number;
  readonly decode: (bytes: Uint8Array, offset: number) => unknown;
}

const uint =
  (size: number, divisor = 1) =>
  (bytes: Uint8Array, offset: number) =>
    readUint(bytes, offset, size) / divisor;
const int =
  (size: number, divisor = 1) =>
  (bytes: Uint8Array, offset: number) =>
    readInt(bytes, offset, size) / divisor;
const xyz = (divisor: number) => (bytes: Uint8Array, offset: number) => ({
  x: readInt(bytes, offset, 2) / divisor,
  y: readInt(bytes, offset + 2, 2) / divisor,
  z: readInt(bytes, offset + 4, 2) / divisor,
});

const LPP_TYPES = new Map<number, LppType>([
  // The 12 base types (IPSO 3200..3336), as The Things Stack decodes them.
  [0, { key: 'digital_in', size: 1, decode: uint(1) }],
  [1, { key: 'digital_out', size: 1, decode: uint(1) }],
  [2, { key: 'analog_in', size: 2, decode: int(2, 100) }],
  [3, { key: 'analog_out', size: 2, decode: int(2, 100) }],
  [101, { key: 'luminosity', size: 2, decode: uint(2) }],
  [102, { key: 'presence', size: 1, decode: uint(1) }],
  [103, { key: 'temperature', size: 2, decode: int(2, 10) }],
  [104, { key: 'relative_humidity', size: 1, decode: uint(1, 2) }],
  [113, { key: 'accelerometer', size: 6, decode: xyz(1000) }],
  [115, { key: 'barometric_pressure', size: 2, decode: uint(2, 10) }],
  [134, { key: 'gyrometer', size: 6, decode: xyz(100) }],
  [
    136,
    {
      key: 'gps',
      size: 9,
      decode: (bytes, offset) => ({
        latitude: readInt(bytes, offset, 3) / 10_000,
        longitude: readInt(bytes, offset + 3, 3) / 10_000,
        altitude: readInt(bytes, offset + 6, 3) / 100,
      }),
    },
  ],
  // Extended types (ElectronicCats/CayenneLPP; not understood by myDevices Cayenne nor the TTS formatter).
  [100, { key: 'generic_sensor', size: 4, decode: uint(4) }],
  [116, { key: 'voltage', size: 2, decode: uint(2, 100) }],
  [117, { key: 'current', size: 2, decode: uint(2, 1000) }],
  [118, { key: 'frequency', size: 4, decode: uint(4) }],
  [120, { key: 'percentage', size: 1, decode: uint(1) }],
  [121, { key: 'altitude', size: 2, decode: int(2) }],
  [125, { key: 'concentration', size: 2, decode: uint(2) }],
  [128, { key: 'power', size: 2, decode: uint(2) }],
  [130, { key: 'distance', size: 4, decode: uint(4, 1000) }],
  [131, { key: 'energy', size: 4, decode: uint(4, 1000) }],
  [132, { key: 'direction', size: 2, decode: uint(2) }],
  [133, { key: 'unix_time', size: 4, decode: uint(4) }],
  [135, { key: 'colour', size: 3, decode: (bytes, offset) => ({ r: bytes[offset] ?? 0, g: bytes[offset + 1] ?? 0, b: bytes[offset + 2] ?? 0 }) }],
  [142, { key: 'switch', size: 1, decode: uint(1) }],
]);

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
    const type = LPP_TYPES.get(typeId);
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
    data[`${type.key}_${channel}`] = type.decode(bytes, valueOffset);
    offset = valueOffset + type.size;
  }
  return { ok: true, data };
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
