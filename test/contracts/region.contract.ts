// The Region contract: what every region table, with every plan option, must hold to be usable by the LoRaWAN
// server and firmware-sim (after aedes-persistence abstract.js). Invariants only; the spec's values are
// spot-checked per region in test/ingress/lorawan/region.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ChannelMaskBlock, Region } from '../../src/ingress/lorawan/region.ts';
import { decodeCfList } from '../../src/ingress/lorawan/regions/cf-list.ts';

/** The channels a device has on after LinkADRReq blocks, starting from all on (LoRaWAN 1.0.2 §5.2, RP002 §2.4.5/§2.5.5). */
function applyChannelMasks(blocks: readonly ChannelMaskBlock[], channelCount: 16 | 72): number[] {
  const on = new Set<number>(Array.from({ length: channelCount }, (_, index) => index));
  const setBits = (first: number, count: number, mask: number): void => {
    for (let bit = 0; bit < count; bit++) {
      if ((mask >>> bit) & 1) on.add(first + bit);
      else on.delete(first + bit);
    }
  };
  for (const { chMaskCntl, chMask } of blocks) {
    if (channelCount === 16) {
      assert.equal(chMaskCntl, 0, 'a 16-channel region uses ChMaskCntl 0');
      setBits(0, 16, chMask);
    } else if (chMaskCntl <= 3) {
      setBits(chMaskCntl * 16, 16, chMask);
    } else {
      assert.ok(chMaskCntl === 6 || chMaskCntl === 7, `ChMaskCntl ${chMaskCntl}`);
      for (let group = 0; group < 4; group++) setBits(group * 16, 16, chMaskCntl === 6 ? 0xffff : 0);
      setBits(64, 8, chMask);
    }
  }
  return [...on].sort((a, b) => a - b);
}

export function regionContract(label: string, region: Region): void {
  test(`${label}: receive windows and data rates`, () => {
    assert.ok(region.rx1DelaySeconds >= 1);
    assert.equal(region.joinAcceptDelay2Seconds, region.joinAcceptDelay1Seconds + 1, 'JOIN_ACCEPT_DELAY2 = JOIN_ACCEPT_DELAY1 + 1 s');
    assert.ok(region.uplinkDataRates.length > 0);
    for (const [index, rate] of region.dataRates) {
      assert.ok(rate.spreadingFactor >= 7 && rate.spreadingFactor <= 12, `DR${index} SF`);
      assert.ok([125, 250, 500].includes(rate.bandwidthKHz), `DR${index} bandwidth`);
      assert.ok(rate.uplink || rate.downlink, `DR${index} is used one way at least`);
      const datr = region.datrFromDataRate(index);
      if (rate.uplink) assert.equal(region.dataRateFromDatr(datr), index, `DR${index} is the uplink rate of ${datr}`);
      if (rate.downlink && !rate.uplink) assert.equal(region.downlinkDataRateFromDatr(datr), index, `DR${index} is the downlink rate of ${datr}`);
      for (const direction of ['up', 'down'] as const) {
        const size = region.maxPayloadSize(index, direction);
        if (size === null) continue;
        assert.ok(direction === 'up' ? rate.uplink : rate.downlink, `DR${index} has a ${direction}link size only if used that way`);
        assert.equal(size.n, size.m - 8, `DR${index} ${direction}: N = M - 8`);
        assert.ok(size.m >= 19 && size.m <= 250, `DR${index} ${direction}: a PHYPayload of at most 255 bytes`);
      }
    }
    assert.deepEqual(
      region.uplinkDataRates,
      [...region.dataRates].filter(([, rate]) => rate.uplink).map(([index]) => index),
    );
    assert.ok(region.dataRates.get(region.rx2DataRate)?.downlink, 'RX2 is a downlink rate');
    assert.ok(region.maxPayloadSize(region.rx2DataRate, 'down') !== null, 'RX2 carries something');
  });

  test(`${label}: every plan channel is answered in RX1 at a downlink rate for every data rate and offset`, () => {
    assert.ok(region.uplinkChannels.length > 0);
    assert.equal(new Set(region.uplinkChannelsHz).size, region.uplinkChannelsHz.length, 'channel frequencies are distinct');
    assert.deepEqual(
      region.uplinkChannels.map((channel) => channel.frequencyHz),
      region.uplinkChannelsHz,
    );
    assert.deepEqual(region.uplinkChannels, [...region.defaultUplinkChannels, ...region.extraUplinkChannels]);
    for (const channel of region.uplinkChannels) {
      assert.equal(region.uplinkChannelIndex(channel.frequencyHz), channel.index);
      assert.deepEqual(region.uplinkChannel(channel.index), channel);
      assert.ok(region.rx1Frequency(channel.frequencyHz) !== null, `channel ${channel.index} has an RX1 frequency`);
      for (let dr = channel.minDataRate; dr <= channel.maxDataRate; dr++) {
        assert.ok(region.dataRates.get(dr)?.uplink, `channel ${channel.index} allows uplink DR${dr}`);
        for (let offset = 0; offset <= region.maxRx1DrOffset; offset++) {
          assert.ok(region.dataRates.get(region.rx1DataRate(dr, offset))?.downlink, `RX1 for DR${dr} + offset ${offset}`);
        }
      }
    }
  });

  test(`${label}: the CFList announces the plan and the LinkADRReq masks leave exactly the plan on`, () => {
    const cfList = region.cfList();
    if (cfList === null) {
      assert.equal(region.cfListType, 0);
      assert.deepEqual(region.extraUplinkChannels, []);
    } else {
      const decoded = decodeCfList(cfList);
      assert.ok(decoded.ok);
      assert.equal(decoded.cfList.type, region.cfListType);
      if (decoded.cfList.type === 0) {
        const announced = decoded.cfList.frequenciesHz.filter((frequencyHz) => frequencyHz !== 0);
        assert.deepEqual(
          announced,
          region.extraUplinkChannels.map((channel) => channel.frequencyHz),
        );
      } else {
        assert.deepEqual(
          decoded.cfList.channelIndices,
          region.uplinkChannels.map((channel) => channel.index),
        );
      }
    }
    const layout = region.cfListType === 1 ? 72 : 16;
    assert.deepEqual(
      applyChannelMasks(region.linkAdrChannelMasks(), layout),
      region.uplinkChannels.map((channel) => channel.index).sort((a, b) => a - b),
    );
  });

  test(`${label}: TX power steps and duty-cycle bands`, () => {
    assert.equal(region.txPowerOffsetsDb[0], 0);
    for (const [index, offset] of region.txPowerOffsetsDb.entries()) assert.equal(offset, index === 0 ? 0 : -2 * index, `TXPower ${index}`);
    assert.equal(region.txPowerEirpDbm(0), region.defaultMaxEirpDbm);
    assert.equal(region.txPowerEirpDbm(region.txPowerOffsetsDb.length), null);
    const bands = [...region.dutyCycleBands].sort((a, b) => a.minHz - b.minHz);
    for (const [index, band] of bands.entries()) {
      assert.ok(band.minHz < band.maxHz && band.dutyCycle > 0 && band.dutyCycle <= 1, band.name);
      const next = bands[index + 1];
      if (next !== undefined) assert.ok(band.maxHz <= next.minHz, `${band.name} and ${next.name} do not overlap`);
    }
  });
}
