// AS923 groups 1-4 (RP002-1.0.3 §2.10): one plan shifted by a group offset (AS923-2 -1.8 MHz, AS923-3
// -6.6 MHz, AS923-4 -5.9 MHz), with the 400 ms dwell time of some countries as a setting. Values cross-checked
// with ChirpStack lrwn/src/region/as923.rs and The Things Stack pkg/band/as_923_rp2_v1_0_3.go. RP002-1.0.4 makes
// DownlinkDwellTime 0 the default and lets uplink dwell follow national rules: iotgw leaves both off unless
// lorawan.dwell_time_400ms turns them on.
import { channelList, dataRateTable, payloadTable, type RegionName, type RegionSpec, SF12_TO_SF7_125_KHZ, txPowerSteps } from './region-spec.ts';

export type As923Group = 1 | 2 | 3 | 4;

/** Hz added to the AS923-1 frequencies (§2.10.2). */
const GROUP_OFFSET_HZ: Readonly<Record<As923Group, number>> = { 1: 0, 2: -1_800_000, 3: -6_600_000, 4: -5_900_000 };
const GROUP_NAME: Readonly<Record<As923Group, RegionName>> = { 1: 'AS923-1', 2: 'AS923-2', 3: 'AS923-3', 4: 'AS923-4' };

// §2.10.6 (not repeater compatible); with the dwell time DR0/DR1 are N/A.
const NO_DWELL = payloadTable([
  [0, 59],
  [1, 59],
  [2, 123],
  [3, 123],
  [4, 250],
  [5, 250],
  [6, 250],
]);
const DWELL = payloadTable([
  [0, 0],
  [1, 0],
  [2, 19],
  [3, 61],
  [4, 133],
  [5, 250],
  [6, 250],
]);

/** Effective_RX1DROffset for RX1DROffset 0..7: offsets 6 and 7 raise the RX1 data rate (§2.10.7). */
const EFFECTIVE_RX1_DR_OFFSET = [0, 1, 2, 3, 4, 5, -1, -2] as const;

/**
 * §2.10.7: RX1 DR = min(5, max(MinDR, uplink DR - Effective_RX1DROffset)), MinDR 2 with the downlink dwell
 * time and 0 without; one row per uplink DR0..6.
 */
function rx1DataRates(downlinkDwellTime: boolean): ReadonlyMap<number, readonly number[]> {
  const minDr = downlinkDwellTime ? 2 : 0;
  return new Map(
    Array.from({ length: 7 }, (_, uplinkDr) => [uplinkDr, EFFECTIVE_RX1_DR_OFFSET.map((offset) => Math.min(5, Math.max(minDr, uplinkDr - offset)))]),
  );
}

/** The AS923 plan of `group`. */
export function as923Spec(group: As923Group, dwellTime400ms: boolean): RegionSpec {
  const offset = GROUP_OFFSET_HZ[group];
  const shifted = (frequenciesHz: readonly number[]): number[] => frequenciesHz.map((frequencyHz) => frequencyHz + offset);
  return {
    name: GROUP_NAME[group],
    rx1DelaySeconds: 1,
    joinAcceptDelay1Seconds: 5,
    joinAcceptDelay2Seconds: 6,
    rx2FrequencyHz: 923_200_000 + offset,
    rx2DataRate: 2,
    codingRate: '4/5',
    // §2.10.3: DR7 is FSK 50 kbit/s, left out.
    dataRates: dataRateTable([...SF12_TO_SF7_125_KHZ, [6, 7, 250, true, true]]),
    uplinkMaxPayloadSizes: dwellTime400ms ? DWELL : NO_DWELL,
    downlinkMaxPayloadSizes: dwellTime400ms ? DWELL : NO_DWELL,
    rx1DataRates: rx1DataRates(dwellTime400ms),
    rx1Channel: { rule: 'uplink-frequency' },
    // §2.10.2: the two channels every AS923 device knows.
    regionChannels: channelList(0, shifted([923_200_000, 923_400_000]), 0, 5),
    enabledChannelIndices: [0, 1],
    // TTN's AS_923_925 plan (and AS_923_2_TTN, the same shifted by the group offset): the first five of its
    // extra channels, what one CFList carries. Groups 3 and 4 take the same shift (iotgw's choice).
    extraChannels: channelList(2, shifted([923_600_000, 923_800_000, 924_000_000, 924_200_000, 924_400_000]), 0, 5),
    cfListType: 0,
    downlinkTxPowerDbm: 16,
    // §2.10.3: MaxEIRP +16 dBm by default, TXPower 0..7 in 2 dB steps.
    defaultMaxEirpDbm: 16,
    txPowerOffsetsDb: txPowerSteps(7),
    dwellTime: { uplink: dwellTime400ms, downlink: dwellTime400ms },
    // Duty cycle and listen-before-talk follow each country's rules, which RP002 does not tabulate.
    dutyCycleBands: [],
    subBand: null,
  };
}
