// The serial section of the configuration: defaults, environment coercion, and the cross-section rule that
// LoRaWAN frames from the radio need the LoRaWAN server.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from '../../src/errors.ts';
import { loadConfig } from '../../src/config/load.ts';

test('serial defaults: off, /dev/ttyUSB0 at 57600, EU868 channel 0 SF7BW125, LoRaWAN frames, raw key rule node-<2 bytes>', () => {
  const { serial } = loadConfig({ env: {} });
  assert.equal(serial.enabled, false);
  assert.equal(serial.path, '/dev/ttyUSB0');
  assert.equal(serial.baud_rate, 57600);
  assert.equal(serial.radio_id, '0000000000000001');
  assert.equal(serial.frequency_hz, 868_100_000);
  assert.equal(serial.spreading_factor, 7);
  assert.equal(serial.bandwidth_khz, 125);
  assert.equal(serial.coding_rate, '4/5');
  assert.equal(serial.sync_word, '34');
  assert.equal(serial.frames, 'lorawan');
  assert.deepEqual(serial.raw, { stream: 'radio', key_offset: 0, key_length: 2, key_prefix: 'node-', codec: 'raw', formatter_file: '' });
  assert.equal(serial.reopen_max_delay_ms, 30_000);
});

test('serial keys from the environment are coerced; bad values name the key', () => {
  const config = loadConfig({
    env: { IOTGW__SERIAL__ENABLED: 'yes', IOTGW__SERIAL__FRAMES: 'raw', IOTGW__SERIAL__BANDWIDTH_KHZ: '250', IOTGW__SERIAL__SPREADING_FACTOR: '12' },
  });
  assert.equal(config.serial.enabled, true);
  assert.equal(config.serial.bandwidth_khz, 250);
  assert.equal(config.serial.spreading_factor, 12);
  assert.throws(
    () => loadConfig({ env: { IOTGW__SERIAL__BANDWIDTH_KHZ: '200' } }),
    (error: unknown) => error instanceof ConfigError && error.issues.some((issue) => issue.includes('serial.bandwidth_khz')),
  );
  assert.throws(
    () => loadConfig({ env: { IOTGW__SERIAL__RADIO_ID: 'xyz' } }),
    (error: unknown) => error instanceof ConfigError && error.issues.some((issue) => issue.includes('serial.radio_id')),
  );
});

test('serial.frames lorawan or mixed without lorawan.enabled is a config error that says what to set', () => {
  for (const frames of ['lorawan', 'mixed']) {
    assert.throws(
      () => loadConfig({ env: { IOTGW__SERIAL__ENABLED: 'true', IOTGW__SERIAL__FRAMES: frames } }),
      (error: unknown) =>
        error instanceof ConfigError && error.issues.some((issue) => issue.startsWith('serial.frames') && issue.includes('set lorawan.enabled: true')),
    );
  }
  assert.equal(loadConfig({ env: { IOTGW__SERIAL__ENABLED: 'true', IOTGW__SERIAL__FRAMES: 'mixed', IOTGW__LORAWAN__ENABLED: 'true' } }).serial.frames, 'mixed');
});
