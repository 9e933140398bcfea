// The downlink duty-cycle ledger: limits per band and per gateway, the one-hour window sliding bucket by bucket,
// the time a refused frame would fit, airtime given back, and the bound on gateways. Time is passed in.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lorawanAirtimeMs } from '../../../src/ingress/lorawan/airtime.ts';
import {
  createDownlinkDutyCycle,
  type DownlinkDutyCycleOptions,
  type DutyCycleBand,
  type DutyCycleGrant,
} from '../../../src/ingress/lorawan-server/downlink-duty-cycle.ts';

/**
 * EU868 sub-bands as LoRaMac-node assigns a frequency to a band (src/mac/region/RegionEU868.c, VerifyRfFreq):
 * 863-865 MHz 0.1 %, 865-868 1 %, above 868-868.6 1 %, 868.7-869.2 0.1 %, 869.4-869.65 10 %, 869.7-870 1 %
 * (ETSI EN 300 220 / ERC REC 70-03; named here as the sub-bands are commonly called). 868.0 MHz belongs to
 * 865-868 there; listing that band first gives it the shared edge here too.
 */
const EU868_BANDS: readonly DutyCycleBand[] = [
  { name: 'g', minHz: 865_000_000, maxHz: 868_000_000, dutyCycle: 0.01 },
  { name: 'g1', minHz: 868_000_000, maxHz: 868_600_000, dutyCycle: 0.01 },
  { name: 'g2', minHz: 868_700_000, maxHz: 869_200_000, dutyCycle: 0.001 },
  { name: 'g3', minHz: 869_400_000, maxHz: 869_650_000, dutyCycle: 0.1 },
  { name: 'g4', minHz: 869_700_000, maxHz: 870_000_000, dutyCycle: 0.01 },
  { name: '863-865', minHz: 863_000_000, maxHz: 864_999_999, dutyCycle: 0.001 },
];

const GW_A = 'aa555a0000000001';
const GW_B = 'aa555a0000000002';
const MINUTE = 60_000;
const HOUR = 3_600_000;

function ledger(overrides: Partial<DownlinkDutyCycleOptions> = {}) {
  return createDownlinkDutyCycle({ bands: EU868_BANDS, maxGateways: 16, ...overrides });
}

function granted(result: ReturnType<ReturnType<typeof ledger>['reserve']>): DutyCycleGrant {
  assert.ok(result.ok, result.ok ? '' : result.message);
  return result;
}

test('each band of each gateway has its own allowance', () => {
  const dutyCycle = ledger();
  // g1 (RX1 on 868.1 MHz): 1 % of an hour = 36 s.
  for (let second = 0; second < 36; second++) granted(dutyCycle.reserve(GW_A, 868_100_000, 1000, second * 1000));
  const full = dutyCycle.reserve(GW_A, 868_300_000, 1, 36_000);
  assert.equal(full.ok, false);
  assert.ok(!full.ok && full.reason === 'duty-cycle');
  assert.equal(full.band.name, 'g1');
  assert.equal(full.usedMs, 36_000);
  assert.equal(full.limitMs, 36_000);
  assert.match(full.message, /gateway aa555a0000000001 on 868\.3 MHz refused: band g1 \(868-868\.6 MHz, 1 %\) has 0 ms of its 36 s per 1 h left/);

  // Another band of the same gateway (RX2 on 869.525 MHz, g3, 10 %), and the same band of another gateway.
  assert.equal(granted(dutyCycle.reserve(GW_A, 869_525_000, 30_000, 36_000)).band?.name, 'g3');
  granted(dutyCycle.reserve(GW_B, 868_100_000, 36_000, 36_000));
  assert.deepEqual(
    dutyCycle.usage(GW_A, 36_000).map(({ band, usedMs, limitMs }) => [band.name, usedMs, limitMs]),
    [
      ['g1', 36_000, 36_000],
      ['g3', 30_000, 360_000],
    ],
  );

  // g2 (0.1 % = 3.6 s): one 51-byte SF12 downlink (2465.792 ms) fits, a second does not.
  const sf12 = lorawanAirtimeMs('SF12BW125', '4/5', 51, 'down');
  assert.ok(sf12 !== null && sf12 > 1800);
  granted(dutyCycle.reserve(GW_B, 868_900_000, sf12, 0));
  const second = dutyCycle.reserve(GW_B, 868_900_000, sf12, 1);
  assert.ok(!second.ok && second.reason === 'duty-cycle' && second.band.name === 'g2');
});

test('fractional airtimes add up to the limit and not past it', () => {
  const dutyCycle = ledger();
  const frame = lorawanAirtimeMs('SF7BW125', '4/5', 13, 'down');
  assert.equal(frame, 41.216);
  let grants = 0;
  for (let index = 0; index < 100; index++) if (dutyCycle.reserve(GW_A, 869_000_000, frame, index).ok) grants++;
  // 3600 / 41.216 = 87.3: 87 frames of the 0.1 % band's 3.6 s.
  assert.equal(grants, 87);
  // A frame that fills the allowance exactly fits (3600 - 87 * 41.216 = 14.208 ms, summed in floats).
  granted(dutyCycle.reserve(GW_A, 869_000_000, 3600 - 87 * 41.216, 200));
  assert.equal(dutyCycle.reserve(GW_A, 869_000_000, 0.001, 200).ok, false);
});

test('the window slides: airtime is remembered for at least an hour and at most a bucket longer', () => {
  const dutyCycle = ledger();
  granted(dutyCycle.reserve(GW_A, 868_100_000, 36_000, 10_000)); // bucket 0 (0..60 s), full allowance
  const late = dutyCycle.reserve(GW_A, 868_100_000, 1000, HOUR - 1);
  assert.ok(!late.ok && late.reason === 'duty-cycle');
  // Bucket 0 leaves the window when bucket 61 starts: 61 minutes, never earlier than an hour after the 10 s mark.
  assert.equal(late.retryInMs, 61 * MINUTE - (HOUR - 1));
  assert.equal(dutyCycle.reserve(GW_A, 868_100_000, 1000, 61 * MINUTE - 1).ok, false);
  granted(dutyCycle.reserve(GW_A, 868_100_000, 1000, 61 * MINUTE));
  assert.deepEqual(
    dutyCycle.usage(GW_A, 61 * MINUTE).map((use) => use.usedMs),
    [1000],
  );
  // Nothing of it is left two hours on.
  assert.deepEqual(dutyCycle.usage(GW_A, 61 * MINUTE + 2 * HOUR), []);
});

test('a refusal says when the frame would fit, counting the buckets that must leave first', () => {
  const dutyCycle = ledger();
  for (const minute of [0, 10, 20]) granted(dutyCycle.reserve(GW_A, 868_500_000, 12_000, minute * MINUTE + 5_000));
  const now = 59 * MINUTE;
  const small = dutyCycle.reserve(GW_A, 868_500_000, 5_000, now);
  assert.ok(!small.ok && small.reason === 'duty-cycle');
  assert.equal(small.retryInMs, 2 * MINUTE); // minute 0's bucket goes at 61 min
  const large = dutyCycle.reserve(GW_A, 868_500_000, 20_000, now);
  assert.ok(!large.ok && large.reason === 'duty-cycle');
  assert.equal(large.retryInMs, 12 * MINUTE); // minutes 0 and 10 must both go: 71 min
  assert.match(large.message, /it fits in 720 s/);
  // Longer than the band's whole hour: it never fits, on a fresh gateway as well.
  const never = dutyCycle.reserve(GW_B, 868_900_000, 3_601, now);
  assert.ok(!never.ok && never.reason === 'duty-cycle');
  assert.equal(never.retryInMs, null);
  assert.match(never.message, /never fits/);
  // Waiting the time it gave is enough.
  granted(dutyCycle.reserve(GW_A, 868_500_000, 5_000, now + 2 * MINUTE));
});

test('airtime of a frame the gateway did not send is given back once', () => {
  const dutyCycle = ledger();
  const first = granted(dutyCycle.reserve(GW_A, 868_100_000, 20_000, 0));
  granted(dutyCycle.reserve(GW_A, 868_100_000, 16_000, 30 * MINUTE));
  assert.equal(dutyCycle.reserve(GW_A, 868_100_000, 10_000, 31 * MINUTE).ok, false);
  dutyCycle.release(first, 31 * MINUTE);
  dutyCycle.release(first, 31 * MINUTE); // twice: its bucket has nothing more to give
  assert.deepEqual(
    dutyCycle.usage(GW_A, 31 * MINUTE).map((use) => use.usedMs),
    [16_000],
  );
  granted(dutyCycle.reserve(GW_A, 868_100_000, 10_000, 31 * MINUTE));
  // Once its bucket has left the window, a grant has nothing left to give back, and takes nothing from newer ones.
  dutyCycle.release(first, 62 * MINUTE);
  assert.deepEqual(
    dutyCycle.usage(GW_A, 62 * MINUTE).map((use) => use.usedMs),
    [26_000],
  );
  // A grant without a band (a region without duty cycle) releases nothing.
  dutyCycle.release({ ok: true, gatewayEui: GW_A, band: null, airtimeMs: 5, reservedAtMs: 0 }, 62 * MINUTE);
  assert.equal(dutyCycle.usage(GW_A, 62 * MINUTE)[0]?.usedMs, 26_000);
});

test('band edges, frequencies outside every band, and regions without bands', () => {
  const dutyCycle = ledger();
  assert.equal(dutyCycle.bandFor(868_000_000)?.name, 'g'); // the shared edge goes to the first band listed
  assert.equal(dutyCycle.bandFor(868_000_001)?.name, 'g1');
  assert.equal(dutyCycle.bandFor(869_650_000)?.name, 'g3');
  assert.equal(dutyCycle.bandFor(868_650_000), null);
  assert.equal(dutyCycle.bandFor(864_000_000)?.name, '863-865');
  assert.equal(dutyCycle.bandFor(862_999_999), null);
  const outside = dutyCycle.reserve(GW_A, 868_650_000, 10, 0);
  assert.ok(!outside.ok && outside.reason === 'no-band');
  assert.match(outside.message, /868\.65 MHz through gateway aa555a0000000001: the frequency is in none of the region's duty-cycle bands/);
  assert.equal(dutyCycle.gatewayCount, 0);

  const unlimited = ledger({ bands: [] });
  for (let index = 0; index < 1000; index++) {
    const grant = granted(unlimited.reserve(`gw-${index}`, 923_300_000, 10_000, index));
    assert.equal(grant.band, null);
  }
  assert.equal(unlimited.gatewayCount, 0);
  assert.equal(unlimited.bandFor(923_300_000), null);
});

test('gateways are bounded: an idle one makes room, a busy one is never forgotten', () => {
  const dutyCycle = ledger({ maxGateways: 3 });
  for (const [index, gateway] of ['gw-1', 'gw-2', 'gw-3'].entries()) granted(dutyCycle.reserve(gateway, 868_100_000, 30_000, index * MINUTE));
  // gw-1 sends again later: it is now the most recently used.
  granted(dutyCycle.reserve('gw-1', 869_525_000, 1000, 50 * MINUTE));
  const busy = dutyCycle.reserve('gw-4', 868_100_000, 1000, 55 * MINUTE);
  assert.ok(!busy.ok && busy.reason === 'too-many-gateways');
  assert.match(busy.message, /already tracks 3 gateways that transmitted within the last 1 h/);
  assert.equal(dutyCycle.gatewayCount, 3);

  // gw-2 (minute 1) leaves the window at 62 min; it is the least recently used, so it makes room.
  assert.equal(dutyCycle.reserve('gw-4', 868_100_000, 1000, 62 * MINUTE - 1).ok, false);
  granted(dutyCycle.reserve('gw-4', 868_100_000, 1000, 62 * MINUTE));
  assert.equal(dutyCycle.gatewayCount, 3);
  assert.deepEqual(dutyCycle.usage('gw-2', 62 * MINUTE), []);
  // gw-1's airtime is still counted: its g3 use from minute 50 is kept.
  assert.deepEqual(
    dutyCycle.usage('gw-1', 62 * MINUTE).map((use) => [use.band.name, use.usedMs]),
    [['g3', 1000]],
  );
  // gw-3 (minute 2) is next in line, at 63 min.
  assert.equal(dutyCycle.reserve('gw-5', 868_100_000, 1000, 62 * MINUTE + 30_000).ok, false);
  granted(dutyCycle.reserve('gw-5', 868_100_000, 1000, 63 * MINUTE));
  assert.equal(dutyCycle.gatewayCount, 3);
});

test('a long-running gateway keeps only the buckets inside the window', () => {
  const dutyCycle = ledger();
  // Ten hours of a 500 ms downlink every minute on g3: the usage is always the last 61 buckets' worth.
  for (let minute = 0; minute < 600; minute++) {
    granted(dutyCycle.reserve(GW_A, 869_525_000, 500, minute * MINUTE + 1));
    const [use] = dutyCycle.usage(GW_A, minute * MINUTE + 1);
    assert.equal(use?.usedMs, Math.min(minute + 1, 61) * 500, `minute ${minute}`);
  }
});

test('a clock that steps back files airtime in the newest bucket: kept longer, never shorter', () => {
  const dutyCycle = ledger();
  granted(dutyCycle.reserve(GW_A, 868_100_000, 20_000, 10 * MINUTE));
  granted(dutyCycle.reserve(GW_A, 868_100_000, 16_000, 5 * MINUTE));
  // Both sit in minute 10's bucket: full until 71 min.
  assert.equal(dutyCycle.reserve(GW_A, 868_100_000, 1000, 70 * MINUTE).ok, false);
  granted(dutyCycle.reserve(GW_A, 868_100_000, 36_000, 71 * MINUTE));
});

test('bad options and inputs are programming errors, named', () => {
  const band = EU868_BANDS[0];
  assert.ok(band !== undefined);
  assert.throws(() => ledger({ bands: [{ ...band, dutyCycle: 0 }] }), /band g has duty cycle 0/);
  assert.throws(() => ledger({ bands: [{ ...band, dutyCycle: 1.5 }] }), /duty cycle 1\.5/);
  assert.throws(() => ledger({ bands: [{ ...band, minHz: 870_000_000 }] }), /band g has edges 870000000\.\.868000000 Hz/);
  assert.throws(() => ledger({ bands: [{ ...band, name: '' }] }), /a band has no name/);
  assert.throws(() => ledger({ maxGateways: 0 }), /maxGateways 0/);
  assert.throws(() => ledger({ windowMs: HOUR, bucketMs: 7 * MINUTE }), /multiple of bucketMs/);
  const dutyCycle = ledger();
  assert.throws(() => dutyCycle.reserve(GW_A, 868_100_000, Number.NaN, 0), /airtime NaN ms/);
  assert.throws(() => dutyCycle.reserve(GW_A, 868_100_000, -1, 0), /airtime -1 ms/);
  assert.throws(() => dutyCycle.reserve('x'.repeat(65), 868_100_000, 1, 0), /is not 1\.\.64 characters/);
  assert.throws(() => dutyCycle.reserve(GW_A, Number.POSITIVE_INFINITY, 1, 0), /frequency Infinity Hz/);
  assert.throws(() => dutyCycle.reserve(GW_A, 868_100_000, 1, Number.NaN), /time NaN ms/);
});
