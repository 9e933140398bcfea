import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeCayenneLpp } from '../../src/codecs/cayenne-lpp.ts';

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
