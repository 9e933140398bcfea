// GPS time for DeviceTimeAns against the specification's example, ChirpStack's test vectors (an independent
// implementation, chirpstack/src/gpstime.rs) and the leap seconds around 2017-01-01, and both conversions
// against each other over random instants.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRandom } from '../../../firmware-sim/fleet.ts';
import { GPS_EPOCH_UNIX_MS, gpsTimeFromUnixMs, gpsUtcOffsetSeconds, unixMsFromGpsTime } from '../../../src/ingress/lorawan/gps-time.ts';
import { encodeDownlinkMacCommands, parseDownlinkMacCommands } from '../../../src/ingress/lorawan/mac-commands.ts';

const VECTORS: readonly { readonly utc: string; readonly seconds: number; readonly source: string }[] = [
  { utc: '1980-01-06T00:00:00Z', seconds: 0, source: 'the GPS epoch' },
  { utc: '2016-02-12T14:24:31Z', seconds: 1_139_322_288, source: 'LoRaWAN 1.0.3 §5.9 example (17 leap seconds)' },
  { utc: '2010-01-28T16:36:24Z', seconds: 948_731_799, source: 'ChirpStack gpstime.rs' },
  { utc: '2012-06-30T23:59:59Z', seconds: 1_025_136_014, source: 'ChirpStack gpstime.rs, the second before a leap second' },
  { utc: '2012-07-01T00:00:00Z', seconds: 1_025_136_016, source: 'ChirpStack gpstime.rs, the second after it' },
  { utc: '2025-07-14T00:00:00Z', seconds: 1_436_486_418, source: 'ChirpStack gpstime.rs (18 leap seconds)' },
];

test('GPS seconds of known instants, and back', () => {
  for (const { utc, seconds, source } of VECTORS) {
    assert.deepEqual(gpsTimeFromUnixMs(Date.parse(utc)), { seconds, fraction256: 0 }, source);
    assert.equal(new Date(unixMsFromGpsTime({ seconds, fraction256: 0 })).toISOString(), utc.replace('Z', '.000Z'), source);
  }
});

test('GPS runs 18 s ahead of UTC since 2017-01-01, 17 s before', () => {
  const newYear2017 = Date.parse('2017-01-01T00:00:00Z');
  assert.equal(gpsUtcOffsetSeconds(GPS_EPOCH_UNIX_MS), 0);
  assert.equal(gpsUtcOffsetSeconds(newYear2017 - 1), 17);
  assert.equal(gpsUtcOffsetSeconds(newYear2017), 18);
  assert.equal(gpsUtcOffsetSeconds(Date.parse('2026-06-01T00:00:00Z')), 18);
  // 2016-12-31T23:59:59Z is GPS second 1167264016; the leap second 23:59:60 is 1167264017; 2017 starts at 1167264018.
  assert.equal(gpsTimeFromUnixMs(newYear2017 - 1000).seconds, 1_167_264_016);
  assert.equal(gpsTimeFromUnixMs(newYear2017).seconds, 1_167_264_018);
  assert.equal(unixMsFromGpsTime({ seconds: 1_167_264_017, fraction256: 0 }), newYear2017 - 1000, 'the leap second shows as 23:59:59, as POSIX repeats it');
});

test('the fraction counts 1/256 s, rounded down so the answer is never ahead', () => {
  const second = Date.parse('2024-03-01T12:00:00Z');
  const fraction = (ms: number) => gpsTimeFromUnixMs(second + ms).fraction256;
  assert.deepEqual([fraction(0), fraction(3), fraction(4), fraction(500), fraction(996), fraction(999)], [0, 0, 1, 128, 254, 255]);
  assert.equal(unixMsFromGpsTime(gpsTimeFromUnixMs(second + 500)) - second, 500);
});

test('random instants survive the round trip to within the 1/256 s resolution, and GPS times exactly', () => {
  const random = createRandom(1980);
  const until2100 = Date.parse('2100-01-01T00:00:00Z');
  for (let round = 0; round < 5000; round++) {
    const unixMs = GPS_EPOCH_UNIX_MS + Math.floor(random() * (until2100 - GPS_EPOCH_UNIX_MS));
    const gps = gpsTimeFromUnixMs(unixMs);
    const back = unixMsFromGpsTime(gps);
    assert.ok(back <= unixMs && unixMs - back < 4, `${new Date(unixMs).toISOString()} came back as ${new Date(back).toISOString()}`);
    assert.deepEqual(gpsTimeFromUnixMs(back), gps);
  }
});

test('DeviceTimeAns from the network clock, read back by the simulated device', () => {
  const uplinkEndMs = Date.parse('2026-05-04T10:20:30.625Z');
  const downlink = encodeDownlinkMacCommands([{ command: 'DeviceTimeAns', ...gpsTimeFromUnixMs(uplinkEndMs) }]);
  const [answer] = parseDownlinkMacCommands(downlink).commands;
  assert.ok(answer?.command === 'DeviceTimeAns');
  assert.deepEqual({ seconds: answer.seconds, fraction256: answer.fraction256 }, { seconds: 1_461_925_248, fraction256: 160 });
  assert.equal(unixMsFromGpsTime(answer), uplinkEndMs);
});

test('times a DeviceTimeAns cannot carry are refused', () => {
  assert.throws(() => gpsTimeFromUnixMs(GPS_EPOCH_UNIX_MS - 1), { name: 'RangeError', message: /GPS time starts at 1980-01-06T00:00:00\.000Z/ });
  assert.throws(() => gpsTimeFromUnixMs(Number.NaN), RangeError);
  assert.throws(() => gpsTimeFromUnixMs(Date.parse('2117-01-01T00:00:00Z')), { name: 'RangeError', message: /32-bit GPS seconds/ });
  assert.throws(() => unixMsFromGpsTime({ seconds: -1, fraction256: 0 }), RangeError);
  assert.throws(() => unixMsFromGpsTime({ seconds: 0, fraction256: 256 }), RangeError);
});
