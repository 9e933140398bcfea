// AU915-928 (RP002-1.0.3 §2.8): the US915 channel structure shifted to 915.2 MHz, with 125 kHz DR0..5, one
// 500 kHz uplink rate (DR6) and an uplink dwell-time setting (TxParamSetupReq). Values cross-checked with
// ChirpStack lrwn/src/region/au915.rs and The Things Stack pkg/band/au_915_928_rp2_v1_0_3.go.
import { channelGrid, dataRateTable, payloadTable, type RegionSpec, txPowerSteps } from './region-spec.ts';
import { subBandChannelIndices } from './sub-band.ts';

/** 923.3 MHz + 600 kHz steps (§2.8.2). */
export const AU915_DOWNLINK_CHANNELS_HZ: readonly number[] = Array.from({ length: 8 }, (_, i) => 923_300_000 + i * 600_000);

// §2.8.6 (not repeater compatible). The uplink dwell time removes DR0/DR1 and shortens DR2..4.
const UPLINK_NO_DWELL = payloadTable([
  [0, 59],
  [1, 59],
  [2, 59],
  [3, 123],
  [4, 250],
  [5, 250],
  [6, 250],
]);
const UPLINK_DWELL = payloadTable([
  [0, 0],
  [1, 0],
  [2, 19],
  [3, 61],
  [4, 133],
  [5, 250],
  [6, 250],
]);
// ChirpStack's table has N = 222 at DR10, a slip: M = 250 gives N = 242.
const DOWNLINK = payloadTable([
  [8, 61],
  [9, 137],
  [10, 250],
  [11, 250],
  [12, 250],
  [13, 250],
]);

/** The AU915 plan on sub-band `subBand` (1..8), with or without the 400 ms uplink dwell time. */
export function au915Spec(subBand: number, uplinkDwellTime: boolean): RegionSpec {
  return {
    name: 'AU915',
    rx1DelaySeconds: 1,
    joinAcceptDelay1Seconds: 5,
    joinAcceptDelay2Seconds: 6,
    rx2FrequencyHz: 923_300_000,
    rx2DataRate: 8,
    codingRate: '4/5',
    // §2.8.3: DR0..6 uplink only, DR8..13 downlink only; DR7 (LR-FHSS) left out. SF8BW500 is DR6 up and DR12 down.
    dataRates: dataRateTable([
      [0, 12, 125, true, false],
      [1, 11, 125, true, false],
      [2, 10, 125, true, false],
      [3, 9, 125, true, false],
      [4, 8, 125, true, false],
      [5, 7, 125, true, false],
      [6, 8, 500, true, false],
      [8, 12, 500, false, true],
      [9, 11, 500, false, true],
      [10, 10, 500, false, true],
      [11, 9, 500, false, true],
      [12, 8, 500, false, true],
      [13, 7, 500, false, true],
    ]),
    uplinkMaxPayloadSizes: uplinkDwellTime ? UPLINK_DWELL : UPLINK_NO_DWELL,
    downlinkMaxPayloadSizes: DOWNLINK,
    // §2.8.7: RX1DROffset 0..5.
    rx1DataRates: new Map([
      [0, [8, 8, 8, 8, 8, 8]],
      [1, [9, 8, 8, 8, 8, 8]],
      [2, [10, 9, 8, 8, 8, 8]],
      [3, [11, 10, 9, 8, 8, 8]],
      [4, [12, 11, 10, 9, 8, 8]],
      [5, [13, 12, 11, 10, 9, 8]],
      [6, [13, 13, 12, 11, 10, 9]],
    ]),
    rx1Channel: { rule: 'uplink-channel-mod-8', downlinkChannelsHz: AU915_DOWNLINK_CHANNELS_HZ },
    // §2.8.2: channels 0..63 at 915.2 MHz + 200 kHz (DR0..5), 64..71 at 915.9 MHz + 1.6 MHz (DR6).
    regionChannels: [...channelGrid(0, 64, 915_200_000, 200_000, 0, 5), ...channelGrid(64, 8, 915_900_000, 1_600_000, 6, 6)],
    enabledChannelIndices: subBandChannelIndices(subBand),
    extraChannels: [],
    cfListType: 1,
    // ChirpStack's downlink TX power for AU915 (a forwarder whose power table stops lower uses its highest entry).
    downlinkTxPowerDbm: 30,
    // §2.8.3: TXPower 0..14 = 30 dBm - 2 dB * TXPower.
    defaultMaxEirpDbm: 30,
    txPowerOffsetsDb: txPowerSteps(14),
    // Only uplinks: the downlink data rates have one size table.
    dwellTime: { uplink: uplinkDwellTime, downlink: false },
    dutyCycleBands: [],
    subBand,
  };
}
