import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CAYENNE_LPP_TYPES, type CayenneLppField, type CayenneLppTypeSpec, decodeCayenneLpp, encodeCayenneLpp } from '../../src/codecs/cayenne-lpp.ts';

const hex = (value: string): Buffer => Buffer.from(value, 'hex');

test('an empty payload decodes to no values', () => {
  assert.deepEqual(decodeCayenneLpp(new Uint8Array(0)), { ok: true, data: {} });
});

test('an unknown type stops decoding, names offset, type and channel, and keeps what came before', () => {
  const result = decodeCayenneLpp(hex('03670110' + '05ff0102'));
  assert.equal(result.ok, false);
  assert.deepEqual(result.data, { temperature_3: 27.2 });
  assert.ok(!result.ok);
  assert.match(result.error, /unknown Cayenne LPP type 255 \(0xff\) at offset 5, channel 5/);
});

test('a truncated value is an error naming the type, the offset and the bytes missing', () => {
  const result = decodeCayenneLpp(hex('0367011005670a'));
  assert.ok(!result.ok);
  assert.deepEqual(result.data, { temperature_3: 27.2 });
  assert.match(result.error, /truncated temperature \(type 103, 0x67\) at offset 4, channel 5: needs 2 value bytes, 1 left/);
  const gps = decodeCayenneLpp(hex('018806765ff2960a0003'));
  assert.ok(!gps.ok);
  assert.match(gps.error, /truncated gps .* needs 9 value bytes, 8 left/);
});

test('a trailing channel byte without a type is an error', () => {
  const result = decodeCayenneLpp(hex('0367011007'));
  assert.ok(!result.ok);
  assert.deepEqual(result.data, { temperature_3: 27.2 });
  assert.match(result.error, /offset 4: channel 7 has no type byte/);
});

test('extended types decode with their sizes and divisors', () => {
  const payload = hex(
    [
      '0164075bcd15', // generic_sensor 123456789
      '02740ce4', // voltage 33.00 V
      '037503e8', // current 1.000 A
      '047600000384', // frequency 900 Hz
      '057832', // percentage 50
      '0679ff9c', // altitude -100 m
      '077d0190', // concentration 400 ppm
      '088007d0', // power 2000 W
      '0982000004d2', // distance 1.234 m
      '0a83ffffffff', // energy: above 0x7FFFFFFF must stay positive
      '0b840167', // direction 359 (2 bytes, as the ElectronicCats encoder writes it)
      '0c8565a0bc00', // unix_time
      '0d87ff8000', // colour
      '0e8e01', // switch
    ].join(''),
  );
  assert.deepEqual(decodeCayenneLpp(payload), {
    ok: true,
    data: {
      generic_sensor_1: 123_456_789,
      voltage_2: 33,
      current_3: 1,
      frequency_4: 900,
      percentage_5: 50,
      altitude_6: -100,
      concentration_7: 400,
      power_8: 2000,
      distance_9: 1.234,
      energy_10: 4_294_967.295,
      direction_11: 359,
      unix_time_12: 1_705_032_704,
      colour_13: { r: 255, g: 128, b: 0 },
      switch_14: 1,
    },
  });
});

test('signed values use two’s complement at their own width', () => {
  assert.deepEqual(decodeCayenneLpp(hex('0102ffff' + '0288800000800000ffffff')), {
    ok: true,
    data: { analog_in_1: -0.01, gps_2: { latitude: -838.8608, longitude: -838.8608, altitude: -0.01 } },
  });
});

test('a repeated key overwrites, as the TTS formatter does', () => {
  assert.deepEqual(decodeCayenneLpp(hex('036700010367000a')), { ok: true, data: { temperature_3: 1 } });
});

test('input that is not bytes is an error, not a throw', () => {
  const result = decodeCayenneLpp(null as unknown as Uint8Array);
  assert.ok(!result.ok);
  assert.deepEqual(result.data, {});
});

// ---- Encoder: the same type table, both directions ---------------------------------------------------------

/** A type's fields in wire order; a single-number type has one, named ''. */
function fieldsOf(spec: CayenneLppTypeSpec): [string, CayenneLppField][] {
  const { value } = spec;
  return typeof value.size === 'number' ? [['', value as CayenneLppField]] : Object.entries(value as Record<string, CayenneLppField>);
}

/** Wire values spanning a field: its bounds, zero, and one with a fraction finer than the resolution. */
function sampleValue(field: CayenneLppField, sample: number): number {
  const range = 2 ** (8 * field.size);
  const [min, max] = field.signed ? [-range / 2, range / 2 - 1] : [0, range - 1];
  return [min, max, 0, Math.floor(max / 3) + 0.37][sample % 4] ?? 0;
}

/** Four values of the type, in its unit: a number, or an object of numbers for composite types. */
function entryValues(spec: CayenneLppTypeSpec): (number | Record<string, number>)[] {
  const fields = fieldsOf(spec);
  return [0, 1, 2, 3].map((sample) => {
    const values = fields.map(([name, field]) => [name, sampleValue(field, sample) / field.multiplier] as const);
    return fields.length === 1 && fields[0]?.[0] === '' ? (values[0]?.[1] ?? 0) : Object.fromEntries(values);
  });
}

function assertWithinResolution(actual: unknown, expected: number | Record<string, number>, spec: CayenneLppTypeSpec, label: string): void {
  for (const [name, field] of fieldsOf(spec)) {
    const got = name === '' ? actual : (actual as Record<string, unknown>)[name];
    const want = typeof expected === 'number' ? expected : (expected[name] ?? Number.NaN);
    assert.equal(typeof got, 'number', `${label}${name}`);
    assert.ok(Math.abs((got as number) - want) <= 0.5 / field.multiplier + 1e-9, `${label}${name}: ${got} vs ${want}`);
  }
}

test('round trip: every type, at its bounds, zero and in between, decodes to what was encoded within its resolution', () => {
  for (const spec of CAYENNE_LPP_TYPES) {
    const values = entryValues(spec);
    const entries = values.map((value, channel) => ({ channel, type: spec.key, value }));
    const decoded = decodeCayenneLpp(encodeCayenneLpp(entries));
    assert.ok(decoded.ok, `${spec.key}: ${decoded.ok ? '' : decoded.error}`);
    assert.equal(Object.keys(decoded.data).length, values.length, spec.key);
    for (const [channel, value] of values.entries()) assertWithinResolution(decoded.data[`${spec.key}_${channel}`], value, spec, `${spec.key}_${channel}`);
  }
});

test('round trip: all types in one frame, each key <type>_<channel>', () => {
  const entries = CAYENNE_LPP_TYPES.map((spec, channel) => ({ channel, type: spec.key, value: entryValues(spec)[3] ?? 0 }));
  const decoded = decodeCayenneLpp(encodeCayenneLpp(entries));
  assert.ok(decoded.ok);
  assert.deepEqual(
    Object.keys(decoded.data),
    CAYENNE_LPP_TYPES.map((spec, channel) => `${spec.key}_${channel}`),
  );
});

test('the encoder writes the bytes of the fixtures the decoder reads (ElectronicCats layout)', () => {
  const frame = encodeCayenneLpp([
    { channel: 3, type: 'temperature', value: 27.2 },
    { channel: 1, type: 'analog_in', value: -0.01 },
    { channel: 2, type: 'gps', value: { latitude: -838.8608, longitude: -838.8608, altitude: -0.01 } },
    { channel: 10, type: 'energy', value: 4_294_967.295 },
    { channel: 13, type: 'colour', value: { r: 255, g: 128, b: 0 } },
  ]);
  assert.equal(frame.toString('hex'), '03670110' + '0102ffff' + '0288800000800000ffffff' + '0a83ffffffff' + '0d87ff8000');
});

test('the encoder rounds to the resolution and saturates at the range instead of wrapping', () => {
  const frame = encodeCayenneLpp([
    { channel: 1, type: 'temperature', value: 21.04 },
    { channel: 2, type: 'relative_humidity', value: 200 },
    { channel: 3, type: 'voltage', value: -5 },
    { channel: 4, type: 'temperature', value: -5000 },
  ]);
  assert.deepEqual(decodeCayenneLpp(frame), {
    ok: true,
    data: { temperature_1: 21, relative_humidity_2: 127.5, voltage_3: 0, temperature_4: -3276.8 },
  });
});

test('the encoder refuses what has no encoding, naming the entry', () => {
  const encode = (entry: unknown) => () => encodeCayenneLpp([entry as Parameters<typeof encodeCayenneLpp>[0][number]]);
  assert.throws(encode({ channel: 1, type: 'smell', value: 1 }), /unknown type 'smell'/);
  assert.throws(encode({ channel: 256, type: 'temperature', value: 1 }), /temperature channel must be an integer 0\.\.255, got 256/);
  assert.throws(encode({ channel: 1, type: 'temperature', value: Number.NaN }), /temperature_1 must be a finite number/);
  assert.throws(encode({ channel: 1, type: 'temperature', value: { x: 1 } }), /temperature_1 must be a finite number/);
  assert.throws(encode({ channel: 2, type: 'gps', value: { latitude: 1, longitude: 2 } }), /gps_2 must be an object with a finite number 'altitude'/);
  assert.throws(encode({ channel: 2, type: 'gps', value: null }), /gps_2 must be an object/);
});
