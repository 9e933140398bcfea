import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EU868, regionByName } from '../../../src/ingress/lorawan/region.ts';

test('EU868 data rates map both ways between index and datr', () => {
  const expected = ['SF12BW125', 'SF11BW125', 'SF10BW125', 'SF9BW125', 'SF8BW125', 'SF7BW125', 'SF7BW250'];
  for (const [index, datr] of expected.entries()) {
    assert.equal(EU868.datrFromDataRate(index), datr);
    assert.equal(EU868.dataRateFromDatr(datr), index);
  }
  assert.equal(EU868.dataRateFromDatr('sf9bw125'), 3);
  assert.equal(EU868.dataRateFromDatr('SF12BW500'), null); // a US915 rate
  assert.equal(EU868.dataRateFromDatr('50000'), null); // FSK is given as a number of bit/s
  assert.throws(() => EU868.datrFromDataRate(7), RangeError);
});

test('EU868 receive windows', () => {
  assert.equal(EU868.rx1DelaySeconds, 1);
  assert.equal(EU868.joinAcceptDelay1Seconds, 5);
  assert.equal(EU868.joinAcceptDelay2Seconds, 6);
  assert.equal(EU868.rx2FrequencyHz, 869_525_000);
  assert.equal(EU868.datrFromDataRate(EU868.rx2DataRate), 'SF12BW125');
  assert.equal(EU868.rx1Frequency(868_300_000), 868_300_000);
  assert.equal(EU868.rx1DataRate(5, 0), 5);
  assert.equal(EU868.rx1DataRate(5, 2), 3);
  assert.equal(EU868.rx1DataRate(1, 5), 0);
});

test('EU868 radio defaults and channels', () => {
  assert.equal(EU868.defaultTxPowerDbm, 14);
  assert.equal(EU868.codingRate, '4/5');
  assert.deepEqual(EU868.uplinkChannelsHz.slice(0, 3), [868_100_000, 868_300_000, 868_500_000]);
  assert.equal(EU868.uplinkChannelsHz.length, 8);
});

test('regionByName knows EU868 only', () => {
  assert.equal(regionByName('EU868'), EU868);
  assert.equal(regionByName('eu868'), EU868);
  assert.equal(regionByName('US915'), null);
});
