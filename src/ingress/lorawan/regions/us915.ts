// US902-928 (RP002-1.0.3 §2.5): 64 + 8 fixed uplink channels of which a network uses one sub-band of eight
// 125 kHz channels and its 500 kHz channel, RX1 on downlink channel `uplink channel % 8`. Values cross-checked
// with ChirpStack lrwn/src/region/us915.rs and The Things Stack pkg/band/us_902_928_rp2_v1_0_3.go.
import { channelGrid, dataRateTable, payloadTable, type RegionSpec, txPowerSteps } from './region-spec.ts';
import { subBandChannelIndices } from './sub-band.ts';

/** 923.3 MHz + 600 kHz steps (§2.5.2). */
export const US915_DOWNLINK_CHANNELS_HZ: readonly number[] = Array.from({ length: 8 }, (_, i) => 923_300_000 + i * 600_000);

/** The US915 plan that uses sub-band `subBand` (1..8; TTN and ChirpStack use 2: channels 8-15 and 65). */
export function us915Spec(subBand: number): RegionSpec {
  return {
    name: 'US915',
    rx1DelaySeconds: 1,
    joinAcceptDelay1Seconds: 5,
    joinAcceptDelay2Seconds: 6,
    rx2FrequencyHz: 923_300_000,
    rx2DataRate: 8,
    codingRate: '4/5',
    // §2.5.3: DR0..4 uplink only, DR8..13 downlink only. DR5/6 (LR-FHSS) and DR7 (RFU) left out. SF8BW500 is
    // both DR4 (up) and DR12 (down): an rxpk's datr is read as the uplink one.
    dataRates: dataRateTable([
      [0, 10, 125, true, false],
      [1, 9, 125, true, false],
      [2, 8, 125, true, false],
      [3, 7, 125, true, false],
      [4, 8, 500, true, false],
      [8, 12, 500, false, true],
      [9, 11, 500, false, true],
      [10, 10, 500, false, true],
      [11, 9, 500, false, true],
      [12, 8, 500, false, true],
      [13, 7, 500, false, true],
    ]),
    // §2.5.6 (not repeater compatible); DR0's 19 bytes are what 400 ms of SF10 carries (FCC dwell time).
    uplinkMaxPayloadSizes: payloadTable([
      [0, 19],
      [1, 61],
      [2, 133],
      [3, 250],
      [4, 250],
    ]),
    downlinkMaxPayloadSizes: payloadTable([
      [8, 61],
      [9, 137],
      [10, 250],
      [11, 250],
      [12, 250],
      [13, 250],
    ]),
    // §2.5.7: RX1DROffset 0..3.
    rx1DataRates: new Map([
      [0, [10, 9, 8, 8]],
      [1, [11, 10, 9, 8]],
      [2, [12, 11, 10, 9]],
      [3, [13, 12, 11, 10]],
      [4, [13, 13, 12, 11]],
    ]),
    rx1Channel: { rule: 'uplink-channel-mod-8', downlinkChannelsHz: US915_DOWNLINK_CHANNELS_HZ },
    // §2.5.2: channels 0..63 at 902.3 MHz + 200 kHz (DR0..3), 64..71 at 903.0 MHz + 1.6 MHz (DR4).
    regionChannels: [...channelGrid(0, 64, 902_300_000, 200_000, 0, 3), ...channelGrid(64, 8, 903_000_000, 1_600_000, 4, 4)],
    enabledChannelIndices: subBandChannelIndices(subBand),
    extraChannels: [],
    cfListType: 1,
    // ChirpStack's downlink TX power for US915.
    downlinkTxPowerDbm: 21,
    // §2.5.3: TXPower 0..14 = 30 dBm - 2 dB * TXPower.
    defaultMaxEirpDbm: 30,
    txPowerOffsetsDb: txPowerSteps(14),
    dwellTime: null,
    // FCC part 15.247 limits dwell time, not duty cycle.
    dutyCycleBands: [],
    subBand,
  };
}
