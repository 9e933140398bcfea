// lorawan.region, lorawan.sub_band and lorawan.dwell_time_400ms through the real loader (environment overlay
// IOTGW__LORAWAN__*) and into the LoRaWAN network's options: every RP002 name is accepted as RP002 spells it,
// the sub-band and dwell time reach the region, and a value that cannot take effect in the region is refused
// with the key and what to write instead.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RAW_CODEC } from '../../src/codecs/payload-codec.ts';
import { loadConfig } from '../../src/config/load.ts';
import { ConfigError } from '../../src/errors.ts';
import { REGION_NAMES } from '../../src/ingress/lorawan/region.ts';
import { lorawanNetworkOptionsFromConfig } from '../../src/ingress/lorawan-server/lorawan-config.ts';

function regionOf(env: Record<string, string>) {
  return lorawanNetworkOptionsFromConfig(loadConfig({ env }), () => RAW_CODEC).region;
}

function issuesOf(env: Record<string, string>): readonly string[] {
  try {
    loadConfig({ env });
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error.issues;
  }
  assert.fail('expected the configuration to be refused');
}

test('every RP002 region name is a lorawan.region; EU868 by default', () => {
  assert.equal(regionOf({}).name, 'EU868');
  for (const name of REGION_NAMES) assert.equal(regionOf({ IOTGW__LORAWAN__REGION: name }).name, name);
});

test('lorawan.sub_band picks the US915/AU915 sub-band, 2 by default', () => {
  assert.equal(regionOf({ IOTGW__LORAWAN__REGION: 'US915' }).subBand, 2);
  const us = regionOf({ IOTGW__LORAWAN__REGION: 'US915', IOTGW__LORAWAN__SUB_BAND: '3' });
  assert.equal(us.subBand, 3);
  assert.equal(us.uplinkChannelsHz[0], 905_500_000, 'channel 16');
  assert.equal(regionOf({ IOTGW__LORAWAN__REGION: 'AU915', IOTGW__LORAWAN__SUB_BAND: '8' }).uplinkChannelsHz.at(-1), 927_100_000, 'channel 71');
});

test('lorawan.dwell_time_400ms reaches AS923 and AU915', () => {
  const as = regionOf({ IOTGW__LORAWAN__REGION: 'AS923-2', IOTGW__LORAWAN__DWELL_TIME_400MS: 'true' });
  assert.deepEqual(as.dwellTime, { uplink: true, downlink: true });
  assert.equal(as.maxPayloadSize(2, 'down')?.m, 19);
  assert.deepEqual(regionOf({ IOTGW__LORAWAN__REGION: 'AU915', IOTGW__LORAWAN__DWELL_TIME_400MS: 'true' }).dwellTime, { uplink: true, downlink: false });
  assert.deepEqual(regionOf({ IOTGW__LORAWAN__REGION: 'AS923-1' }).dwellTime, { uplink: false, downlink: false });
});

test('region names, sub-bands and dwell times that cannot work are refused with the key', () => {
  assert.match(issuesOf({ IOTGW__LORAWAN__REGION: 'us915' }).join('\n'), /lorawan\.region/);
  assert.match(issuesOf({ IOTGW__LORAWAN__REGION: 'AS923' }).join('\n'), /lorawan\.region/);
  assert.match(issuesOf({ IOTGW__LORAWAN__REGION: 'US915', IOTGW__LORAWAN__SUB_BAND: '9' }).join('\n'), /lorawan\.sub_band/);
  const subBand = issuesOf({ IOTGW__LORAWAN__REGION: 'EU868', IOTGW__LORAWAN__SUB_BAND: '3' }).join('\n');
  assert.match(subBand, /lorawan\.sub_band/);
  assert.match(subBand, /EU868 has no sub-bands \(only US915 and AU915 do\)/);
  const dwell = issuesOf({ IOTGW__LORAWAN__REGION: 'KR920', IOTGW__LORAWAN__DWELL_TIME_400MS: 'true' }).join('\n');
  assert.match(dwell, /lorawan\.dwell_time_400ms/);
  assert.match(dwell, /KR920 has no dwell-time setting/);
  // The default sub-band is what the example config shows for every region: not an error.
  assert.equal(regionOf({ IOTGW__LORAWAN__REGION: 'IN865', IOTGW__LORAWAN__SUB_BAND: '2' }).name, 'IN865');
});
