// The regions as data (RP002-1.0.3): every table spot-checked against the spec's values (and ChirpStack's lrwn
// tests where they give vectors), RX1 data rate and frequency for each region, datr round trips (US915's
// SF8BW500 is uplink DR4 and downlink DR12), CFList bytes against hand-computed spec layouts and against
// lora-packet (an independent implementation), and the LinkADRReq channel-mask blocks.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import loraPacketModule from 'lora-packet';
import { encodeJoinAccept } from '../../../src/ingress/lorawan/frame-crypto.ts';
import { EU868, REGION_NAMES, type Region, regionByName, regionFor, regionNameOf } from '../../../src/ingress/lorawan/region.ts';
import { decodeCfList, encodeChannelMaskCfList, encodeFrequencyCfList } from '../../../src/ingress/lorawan/regions/cf-list.ts';
import { channelMaskBlocks } from '../../../src/ingress/lorawan/regions/channel-mask.ts';
import { regionContract } from '../../contracts/region.contract.ts';

// lora-packet is CommonJS with module.exports = its functions; its types describe them as `default`.
const loraPacket = loraPacketModule as unknown as typeof loraPacketModule.default;

function region(name: string, options: Parameters<typeof regionFor>[1] = {}): Region {
  const found = regionFor(name, options);
  assert.ok(found !== null, `${name} is a region`);
  return found;
}

test('EU868 data rates map both ways between index and datr', () => {
  const expected = ['SF12BW125', 'SF11BW125', 'SF10BW125', 'SF9BW125', 'SF8BW125', 'SF7BW125', 'SF7BW250'];
  for (const [index, datr] of expected.entries()) {
    assert.equal(EU868.datrFromDataRate(index), datr);
    assert.equal(EU868.dataRateFromDatr(datr), index);
    assert.equal(EU868.downlinkDataRateFromDatr(datr), index);
  }
  assert.equal(EU868.dataRateFromDatr('sf9bw125'), 3);
  assert.equal(EU868.dataRateFromDatr('SF12BW500'), null); // a US915 rate
  assert.equal(EU868.dataRateFromDatr('50000'), null); // FSK is given as a number of bit/s
  assert.throws(() => EU868.datrFromDataRate(7), RangeError); // FSK: left out, index not reused
  assert.deepEqual(EU868.uplinkDataRates, [0, 1, 2, 3, 4, 5, 6]);
});

test('EU868 receive windows', () => {
  assert.equal(EU868.rx1DelaySeconds, 1);
  assert.equal(EU868.joinAcceptDelay1Seconds, 5);
  assert.equal(EU868.joinAcceptDelay2Seconds, 6);
  assert.equal(EU868.rx2FrequencyHz, 869_525_000);
  assert.equal(EU868.datrFromDataRate(EU868.rx2DataRate), 'SF12BW125');
  assert.equal(EU868.rx1Frequency(868_300_000), 868_300_000);
  assert.equal(EU868.rx1Frequency(869_000_000), 869_000_000, 'RX1 answers on whatever frequency the uplink used');
  assert.equal(EU868.rx1DataRate(5, 0), 5);
  assert.equal(EU868.rx1DataRate(5, 2), 3);
  assert.equal(EU868.rx1DataRate(1, 5), 0);
  assert.equal(EU868.rx1DataRate(6, 5), 1);
  assert.equal(EU868.maxRx1DrOffset, 5);
  assert.throws(() => EU868.rx1DataRate(5, 6), /RX1DROffset 6 \(offsets 0\.\.5\)/);
});

test('EU868 radio defaults, channels, payload limits, TX power and duty-cycle bands', () => {
  assert.equal(EU868.defaultTxPowerDbm, 14);
  assert.equal(EU868.codingRate, '4/5');
  assert.deepEqual(EU868.uplinkChannelsHz.slice(0, 3), [868_100_000, 868_300_000, 868_500_000]);
  assert.equal(EU868.uplinkChannelsHz.length, 8);
  assert.deepEqual(
    EU868.extraUplinkChannels.map((channel) => [channel.index, channel.frequencyHz]),
    [
      [3, 867_100_000],
      [4, 867_300_000],
      [5, 867_500_000],
      [6, 867_700_000],
      [7, 867_900_000],
    ],
  );
  assert.equal(EU868.uplinkChannelIndex(867_900_000), 7);
  assert.equal(EU868.uplinkChannelIndex(869_525_000), null);
  // RP002-1.0.3 §2.4.6: M/N 59/51 at DR0..2, 123/115 at DR3, 250/242 at DR4..7.
  assert.deepEqual(EU868.maxPayloadSize(0, 'down'), { m: 59, n: 51 });
  assert.deepEqual(EU868.maxPayloadSize(3, 'up'), { m: 123, n: 115 });
  assert.deepEqual(EU868.maxPayloadSize(4, 'up'), { m: 250, n: 242 });
  assert.equal(EU868.maxPayloadSize(7, 'up'), null);
  // §2.4.3: MaxEIRP 16 dBm, TXPower 0..7 each 2 dB lower.
  assert.equal(EU868.defaultMaxEirpDbm, 16);
  assert.equal(EU868.txPowerEirpDbm(0), 16);
  assert.equal(EU868.txPowerEirpDbm(7), 2);
  assert.equal(EU868.txPowerEirpDbm(8), null);
  assert.equal(EU868.dwellTime, null);
  assert.equal(EU868.subBand, null);
  const band = (hz: number) => EU868.dutyCycleBands.find((candidate) => candidate.minHz <= hz && hz <= candidate.maxHz);
  assert.equal(band(868_100_000)?.dutyCycle, 0.01, 'g1: 1 %');
  assert.equal(band(867_500_000)?.dutyCycle, 0.01, 'g (L): 1 %');
  assert.equal(band(869_525_000)?.dutyCycle, 0.1, 'g3, the RX2 frequency: 10 %');
  assert.equal(band(868_900_000)?.dutyCycle, 0.001, 'g2: 0.1 %');
  assert.equal(band(869_300_000), undefined, '869.2-869.4 MHz is not for LoRaWAN');
});

test('US915 sub-band 2: its eight 125 kHz channels and its 500 kHz channel; SF8BW500 is DR4 up and DR12 down', () => {
  const us = region('US915');
  assert.equal(us.subBand, 2, 'sub-band 2 by default');
  assert.deepEqual(
    us.uplinkChannels.map((channel) => channel.index),
    [8, 9, 10, 11, 12, 13, 14, 15, 65],
  );
  assert.deepEqual(us.uplinkChannelsHz, [903_900_000, 904_100_000, 904_300_000, 904_500_000, 904_700_000, 904_900_000, 905_100_000, 905_300_000, 904_600_000]);
  assert.deepEqual(us.extraUplinkChannels, []);
  assert.equal(us.dataRateFromDatr('SF8BW500'), 4);
  assert.equal(us.downlinkDataRateFromDatr('SF8BW500'), 12);
  assert.equal(us.dataRateFromDatr('SF12BW500'), null, 'DR8 is downlink only');
  assert.equal(us.downlinkDataRateFromDatr('SF12BW500'), 8);
  assert.equal(us.dataRateFromDatr('SF10BW125'), 0);
  assert.equal(us.dataRateFromDatr('SF12BW125'), null, 'no SF11/SF12 uplinks in US915');
  assert.deepEqual(us.uplinkDataRates, [0, 1, 2, 3, 4]);
  for (const index of [0, 1, 2, 3, 4, 8, 9, 10, 11, 12, 13]) {
    const datr = us.datrFromDataRate(index);
    assert.equal(index < 8 ? us.dataRateFromDatr(datr) : us.downlinkDataRateFromDatr(datr), index, `DR${index} round trip`);
  }
  assert.throws(() => us.datrFromDataRate(5), RangeError, 'DR5 is LR-FHSS, left out');
  // RP002-1.0.3 §2.5.7.
  assert.equal(us.rx1DataRate(0, 0), 10);
  assert.equal(us.rx1DataRate(3, 0), 13);
  assert.equal(us.rx1DataRate(4, 0), 13);
  assert.equal(us.rx1DataRate(4, 3), 11);
  assert.equal(us.rx1DataRate(0, 3), 8);
  assert.equal(us.maxRx1DrOffset, 3);
  // RX1 on downlink channel (uplink channel % 8); ChirpStack's us915.rs vectors: 914.9 -> 927.5, 903.0 -> 923.3.
  assert.equal(us.rx1Frequency(914_900_000), 927_500_000);
  assert.equal(us.rx1Frequency(903_000_000), 923_300_000);
  assert.equal(us.rx1Frequency(903_900_000), 923_300_000, 'channel 8 -> downlink 0');
  assert.equal(us.rx1Frequency(904_600_000), 923_900_000, 'channel 65 -> downlink 1');
  assert.equal(us.rx1Frequency(902_400_000), null, 'not a US915 channel');
  assert.equal(us.rx2FrequencyHz, 923_300_000);
  assert.equal(us.datrFromDataRate(us.rx2DataRate), 'SF12BW500');
  // §2.5.6: DR0 carries 11 bytes of application payload; downlink DR8 53.
  assert.deepEqual(us.maxPayloadSize(0, 'up'), { m: 19, n: 11 });
  assert.equal(us.maxPayloadSize(0, 'down'), null);
  assert.deepEqual(us.maxPayloadSize(8, 'down'), { m: 61, n: 53 });
  assert.deepEqual(us.maxPayloadSize(9, 'down'), { m: 137, n: 129 });
  assert.deepEqual(us.maxPayloadSize(13, 'down'), { m: 250, n: 242 });
  assert.equal(us.defaultMaxEirpDbm, 30);
  assert.equal(us.txPowerEirpDbm(14), 2);
  assert.deepEqual(us.dutyCycleBands, []);
});

test('US915 and AU915 take the sub-band; each sub-band is its own plan object', () => {
  const us1 = region('US915', { subBand: 1 });
  assert.deepEqual(
    us1.uplinkChannels.map((channel) => channel.index),
    [0, 1, 2, 3, 4, 5, 6, 7, 64],
  );
  assert.equal(us1.uplinkChannelsHz[0], 902_300_000);
  const us8 = region('US915', { subBand: 8 });
  assert.deepEqual(us8.uplinkChannelsHz.at(-1), 914_200_000, 'channel 71');
  assert.equal(regionFor('US915', { subBand: 2 }), regionByName('US915'), 'the same plan is the same object');
  assert.throws(() => regionFor('US915', { subBand: 9 }), /sub-band must be an integer in 1\.\.8/);
  assert.throws(() => regionFor('EU868', { subBand: 2 }), /EU868 has no sub-bands/);
  assert.throws(() => regionFor('KR920', { dwellTime400ms: true }), /KR920 has no dwell-time setting/);
});

test('AU915: DR0..6 up, DR8..13 down, RX1 by the AU table, the uplink dwell time shrinks DR0..4', () => {
  const au = region('AU915', { subBand: 2 });
  assert.deepEqual(
    au.uplinkChannels.map((channel) => [channel.index, channel.frequencyHz]),
    [...Array.from({ length: 8 }, (_, i) => [8 + i, 916_800_000 + i * 200_000]), [65, 917_500_000]],
  );
  assert.equal(au.dataRateFromDatr('SF8BW500'), 6);
  assert.equal(au.downlinkDataRateFromDatr('SF8BW500'), 12);
  assert.equal(au.dataRateFromDatr('SF12BW125'), 0);
  // RP002-1.0.3 §2.8.7.
  assert.equal(au.rx1DataRate(0, 0), 8);
  assert.equal(au.rx1DataRate(5, 0), 13);
  assert.equal(au.rx1DataRate(6, 0), 13);
  assert.equal(au.rx1DataRate(6, 5), 9);
  assert.equal(au.rx1DataRate(2, 1), 9);
  assert.equal(au.maxRx1DrOffset, 5);
  // ChirpStack au915.rs vectors: 915.9 MHz (channel 64) and 915.2 MHz (channel 0) answer on 923.3 MHz.
  assert.equal(au.rx1Frequency(915_900_000), 923_300_000);
  assert.equal(au.rx1Frequency(915_200_000), 923_300_000);
  assert.equal(au.rx1Frequency(927_800_000), 927_500_000, 'channel 63');
  assert.equal(au.rx2FrequencyHz, 923_300_000);
  assert.equal(au.rx2DataRate, 8);
  assert.deepEqual(au.maxPayloadSize(0, 'up'), { m: 59, n: 51 });
  assert.deepEqual(au.dwellTime, { uplink: false, downlink: false });
  const dwell = region('AU915', { dwellTime400ms: true });
  assert.equal(dwell.maxPayloadSize(0, 'up'), null, 'N/A under the dwell time');
  assert.deepEqual(dwell.maxPayloadSize(2, 'up'), { m: 19, n: 11 });
  assert.deepEqual(dwell.maxPayloadSize(8, 'down'), { m: 61, n: 53 }, 'downlinks keep their sizes');
  assert.equal(au.txPowerEirpDbm(0), 30);
});

test('AS923 groups: the same plan shifted by the group offset; RX1 offsets 6 and 7 raise the rate; the dwell time sets MinDR 2', () => {
  const expected: Record<string, readonly number[]> = {
    'AS923-1': [923_200_000, 923_400_000],
    'AS923-2': [921_400_000, 921_600_000],
    'AS923-3': [916_600_000, 916_800_000],
    'AS923-4': [917_300_000, 917_500_000],
  };
  for (const [name, defaults] of Object.entries(expected)) {
    const as = region(name);
    assert.equal(as.name, name);
    assert.deepEqual(
      as.defaultUplinkChannels.map((channel) => channel.frequencyHz),
      defaults,
      `${name} default channels (ChirpStack as923.rs)`,
    );
    assert.equal(as.rx2FrequencyHz, defaults[0], `${name} RX2 on its first default channel`);
    assert.equal(as.rx2DataRate, 2);
    assert.equal(as.extraUplinkChannels.length, 5);
    assert.equal(as.extraUplinkChannels[0]?.frequencyHz, (defaults[0] ?? 0) + 400_000);
  }
  const as1 = region('AS923-1');
  assert.deepEqual(as1.uplinkChannelsHz, [923_200_000, 923_400_000, 923_600_000, 923_800_000, 924_000_000, 924_200_000, 924_400_000]);
  // ChirpStack as923.rs tests, without and with the dwell time.
  const noDwell = [
    [5, 0, 5],
    [5, 1, 4],
    [5, 3, 2],
    [5, 4, 1],
    [5, 5, 0],
    [5, 6, 5],
    [5, 7, 5],
    [2, 6, 3],
    [2, 7, 4],
  ] as const;
  for (const [uplink, offset, rx1] of noDwell) assert.equal(as1.rx1DataRate(uplink, offset), rx1, `DR${uplink} offset ${offset}`);
  const dwell = region('AS923-1', { dwellTime400ms: true });
  for (const [uplink, offset, rx1] of [
    [5, 4, 2],
    [5, 5, 2],
    [2, 6, 3],
    [0, 0, 2],
  ] as const) {
    assert.equal(dwell.rx1DataRate(uplink, offset), rx1, `dwell: DR${uplink} offset ${offset}`);
  }
  assert.equal(as1.maxRx1DrOffset, 7);
  assert.equal(as1.rx1Frequency(923_600_000), 923_600_000);
  // RP002-1.0.3 §2.10.6 (RP002-1.0.5 Table 73 has the same values).
  assert.deepEqual(as1.maxPayloadSize(2, 'up'), { m: 123, n: 115 });
  assert.deepEqual(dwell.maxPayloadSize(2, 'down'), { m: 19, n: 11 });
  assert.deepEqual(dwell.maxPayloadSize(4, 'up'), { m: 133, n: 125 });
  assert.equal(dwell.maxPayloadSize(1, 'up'), null);
  assert.equal(as1.defaultMaxEirpDbm, 16);
});

test('IN865 and KR920', () => {
  const india = region('IN865');
  assert.deepEqual(india.uplinkChannelsHz, [865_062_500, 865_402_500, 865_985_000]);
  assert.equal(india.rx2FrequencyHz, 866_550_000);
  assert.equal(india.datrFromDataRate(india.rx2DataRate), 'SF10BW125');
  assert.equal(india.rx1DataRate(0, 7), 2, 'RX1DROffset 7 raises by two');
  assert.equal(india.rx1DataRate(5, 6), 5, 'never above DR5');
  assert.equal(india.rx1DataRate(3, 2), 1);
  assert.equal(india.cfList(), null, 'no extra channels: no CFList');
  assert.equal(india.txPowerEirpDbm(10), 10);
  assert.throws(() => india.datrFromDataRate(6), RangeError, 'DR6 is RFU');

  const korea = region('KR920');
  assert.deepEqual(korea.uplinkChannelsHz, [922_100_000, 922_300_000, 922_500_000, 922_700_000, 922_900_000, 923_100_000, 923_300_000]);
  assert.equal(korea.rx2FrequencyHz, 921_900_000);
  assert.equal(korea.rx2DataRate, 0);
  assert.equal(korea.rx1DataRate(5, 5), 0);
  assert.equal(korea.maxRx1DrOffset, 5);
  assert.equal(korea.defaultMaxEirpDbm, 14);
  assert.deepEqual(korea.maxPayloadSize(3, 'down'), { m: 123, n: 115 });
});

// Every region and plan option against the Region contract.
for (const name of REGION_NAMES) regionContract(name, region(name));
for (let subBand = 1; subBand <= 8; subBand++) {
  regionContract(`US915 sub-band ${subBand}`, region('US915', { subBand }));
  regionContract(`AU915 sub-band ${subBand}`, region('AU915', { subBand }));
}
for (const name of ['AU915', 'AS923-1', 'AS923-2', 'AS923-3', 'AS923-4']) regionContract(`${name} with the dwell time`, region(name, { dwellTime400ms: true }));

test('RX1 data-rate tables, whole, as RP002-1.0.3 prints them (§2.4.7, §2.5.7, §2.8.7, §2.11.7)', () => {
  const table = (plan: Region, uplinkDrs: readonly number[]): number[][] =>
    uplinkDrs.map((dr) => Array.from({ length: plan.maxRx1DrOffset + 1 }, (_, offset) => plan.rx1DataRate(dr, offset)));
  assert.deepEqual(table(region('US915'), [0, 1, 2, 3, 4]), [
    [10, 9, 8, 8],
    [11, 10, 9, 8],
    [12, 11, 10, 9],
    [13, 12, 11, 10],
    [13, 13, 12, 11],
  ]);
  assert.deepEqual(table(region('AU915'), [0, 1, 2, 3, 4, 5, 6]), [
    [8, 8, 8, 8, 8, 8],
    [9, 8, 8, 8, 8, 8],
    [10, 9, 8, 8, 8, 8],
    [11, 10, 9, 8, 8, 8],
    [12, 11, 10, 9, 8, 8],
    [13, 12, 11, 10, 9, 8],
    [13, 13, 12, 11, 10, 9],
  ]);
  // EU868 and KR920: the uplink data rate lowered by the offset, never below DR0.
  for (const plan of [EU868, region('KR920')]) {
    const drs = plan.uplinkDataRates;
    assert.deepEqual(
      table(plan, drs),
      drs.map((dr) => [0, 1, 2, 3, 4, 5].map((offset) => Math.max(0, dr - offset))),
      plan.name,
    );
  }
});

test('regionByName knows every RP002 name, case-insensitively, and nothing else', () => {
  assert.equal(regionByName('EU868'), EU868);
  assert.equal(regionByName('eu868'), EU868);
  assert.equal(regionByName('as923-2')?.name, 'AS923-2');
  assert.equal(regionNameOf('kr920'), 'KR920');
  assert.equal(regionByName('US902'), null);
  assert.equal(regionByName('AS923'), null, 'the group must be named');
  assert.deepEqual(
    REGION_NAMES.map((name) => regionByName(name)?.name),
    ['EU868', 'US915', 'AU915', 'AS923-1', 'AS923-2', 'AS923-3', 'AS923-4', 'IN865', 'KR920'],
  );
});

test('CFList type 0: five frequencies in 100 Hz units, little-endian, then CFListType 0 (RP002-1.0.3 §2.4.4)', () => {
  // ChirpStack lrwn cflist.rs vector: 867.1..867.9 MHz.
  assert.equal(EU868.cfList()?.toString('hex'), '184f84e85684b85e84886684586e8400');
  // 923.6 MHz = 9,236,000 x 100 Hz = 0x8CEE20 -> 20 ee 8c, and so on.
  assert.equal(region('AS923-1').cfList()?.toString('hex'), '20ee8cf0f58cc0fd8c90058d600d8d00');
  assert.equal(region('AS923-2').cfList()?.toString('hex'), 'd0a78ca0af8c70b78c40bf8c10c78c00');
  // Four channels: the fifth slot is 0 (unused).
  assert.equal(region('KR920').cfList()?.toString('hex'), 'f8ca8cc8d28c98da8c68e28c00000000');
  assert.deepEqual(decodeCfList(Buffer.from('f8ca8cc8d28c98da8c68e28c00000000', 'hex')), {
    ok: true,
    cfList: { type: 0, frequenciesHz: [922_700_000, 922_900_000, 923_100_000, 923_300_000, 0] },
  });
  assert.throws(() => encodeFrequencyCfList([868_100_050]), /multiple of 100 Hz/);
  assert.throws(() => encodeFrequencyCfList([1, 2, 3, 4, 5, 6].map(() => 868_100_000)), /at most 5/);
  assert.throws(() => encodeFrequencyCfList([50_000_000]), TypeError, 'below 100 MHz is RFU');
});

test('CFList type 1: ChMask0..4 little-endian, RFU, CFListType 1, with exactly the sub-band on (RP002-1.0.3 §2.5.4)', () => {
  // Sub-band 2: channels 8-15 -> ChMask0 = 0xff00 (bytes 00 ff); channel 65 -> ChMask4 bit 1 (bytes 02 00).
  assert.equal(region('US915').cfList()?.toString('hex'), '00ff0000000000000200000000000001');
  assert.equal(region('US915', { subBand: 1 }).cfList()?.toString('hex'), 'ff000000000000000100000000000001');
  assert.equal(region('AU915', { subBand: 8 }).cfList()?.toString('hex'), '00000000000000ff8000000000000001');
  // ChirpStack lrwn cflist.rs vector: channels 0-7 only.
  assert.equal(encodeChannelMaskCfList([0, 1, 2, 3, 4, 5, 6, 7]).toString('hex'), 'ff000000000000000000000000000001');
  assert.deepEqual(decodeCfList(region('US915', { subBand: 3 }).cfList() ?? Buffer.alloc(0)), {
    ok: true,
    cfList: { type: 1, channelIndices: [16, 17, 18, 19, 20, 21, 22, 23, 66] },
  });
  assert.throws(() => encodeChannelMaskCfList([72]), /not in 0\.\.71/);
  const rfu = decodeCfList(Buffer.from('00000000000000000000000000000002', 'hex'));
  assert.equal(rfu.ok, false);
  assert.equal(decodeCfList(Buffer.alloc(15)).ok, false);
});

test('lora-packet reads the CFList of a join-accept built with each region, and its MIC verifies', () => {
  const appKey = Buffer.from('0102030405060708090a0b0c0d0e0f10', 'hex');
  for (const name of ['EU868', 'US915', 'AU915', 'AS923-3', 'KR920']) {
    const plan = region(name);
    const cfList = plan.cfList() ?? undefined;
    assert.ok(cfList !== undefined, `${name} has a CFList`);
    const phy = encodeJoinAccept(appKey, {
      joinNonce: 7,
      netId: '000013',
      devAddr: '26011234',
      rx1DrOffset: 0,
      rx2DataRate: plan.rx2DataRate,
      rxDelay: 1,
      cfList,
    });
    assert.equal(phy.length, 33);
    const decrypted = loraPacket.fromWire(loraPacket.decryptJoinAccept(loraPacket.fromWire(phy), appKey));
    assert.equal(decrypted.getMType(), 'Join Accept');
    assert.ok(loraPacket.verifyMIC(decrypted, undefined, appKey), `${name}: lora-packet verifies the MIC over the CFList`);
    assert.deepEqual(decrypted.CFList, cfList, `${name}: the CFList bytes`);
    assert.equal((decrypted.DLSettings?.[0] ?? -1) & 0x0f, plan.rx2DataRate, `${name}: RX2 data rate in DLSettings`);
    if (plan.cfListType === 0) {
      // lora-packet gives FreqCh4 (the first CFList slot) big-endian, in 100 Hz units.
      assert.equal(decrypted.getCFListFreqChFour().readUIntBE(0, 3) * 100, plan.extraUplinkChannels[0]?.frequencyHz);
    }
  }
});

test('LinkADRReq channel masks that keep exactly the plan on', () => {
  assert.deepEqual(EU868.linkAdrChannelMasks(), [{ chMaskCntl: 0, chMask: 0x00ff }]);
  assert.deepEqual(region('IN865').linkAdrChannelMasks(), [{ chMaskCntl: 0, chMask: 0x0007 }]);
  assert.deepEqual(region('KR920').linkAdrChannelMasks(), [{ chMaskCntl: 0, chMask: 0x007f }]);
  assert.deepEqual(region('AS923-1').linkAdrChannelMasks(), [{ chMaskCntl: 0, chMask: 0x007f }]);
  // All 125 kHz off with the 500 kHz channel of the sub-band, then the 16-channel group that holds its eight.
  assert.deepEqual(region('US915').linkAdrChannelMasks(), [
    { chMaskCntl: 7, chMask: 0x0002 },
    { chMaskCntl: 0, chMask: 0xff00 },
  ]);
  assert.deepEqual(region('US915', { subBand: 1 }).linkAdrChannelMasks(), [
    { chMaskCntl: 7, chMask: 0x0001 },
    { chMaskCntl: 0, chMask: 0x00ff },
  ]);
  assert.deepEqual(region('AU915', { subBand: 6 }).linkAdrChannelMasks(), [
    { chMaskCntl: 7, chMask: 0x0020 },
    { chMaskCntl: 2, chMask: 0xff00 },
  ]);
  // ChirpStack us915.rs vector: channels 0-15 + 64, 65.
  assert.deepEqual(channelMaskBlocks([...Array.from({ length: 16 }, (_, i) => i), 64, 65], 72), [
    { chMaskCntl: 7, chMask: 0x0003 },
    { chMaskCntl: 0, chMask: 0xffff },
  ]);
  assert.deepEqual(channelMaskBlocks([...Array.from({ length: 64 }, (_, i) => i), 70], 72), [{ chMaskCntl: 6, chMask: 0x0040 }]);
  assert.throws(() => channelMaskBlocks([16], 16), RangeError);
});
