// IN865-867 (RP002-1.0.3 §2.12). Values cross-checked with ChirpStack lrwn/src/region/in865.rs and The Things
// Stack pkg/band/in_865_867_rp2_v1_0_3.go. Neither network announces channels beyond the three defaults, so
// an IN865 join-accept carries no CFList.
import { channelList, dataRateTable, euLikePayloadSizes, type RegionSpec, SF12_TO_SF7_125_KHZ, txPowerSteps } from './region-spec.ts';

const PAYLOAD_SIZES = euLikePayloadSizes(5);

export const IN865_SPEC: RegionSpec = {
  name: 'IN865',
  rx1DelaySeconds: 1,
  joinAcceptDelay1Seconds: 5,
  joinAcceptDelay2Seconds: 6,
  rx2FrequencyHz: 866_550_000,
  rx2DataRate: 2,
  codingRate: '4/5',
  // §2.12.3: DR6 is RFU and DR7 FSK 50 kbit/s (left out).
  dataRates: dataRateTable(SF12_TO_SF7_125_KHZ),
  // §2.12.6 (not repeater compatible).
  uplinkMaxPayloadSizes: PAYLOAD_SIZES,
  downlinkMaxPayloadSizes: PAYLOAD_SIZES,
  // §2.12.7: RX1DROffset 0..7; 6 and 7 raise the data rate (Effective_RX1DROffset -1, -2), at most DR5.
  rx1DataRates: new Map([
    [0, [0, 0, 0, 0, 0, 0, 1, 2]],
    [1, [1, 0, 0, 0, 0, 0, 2, 3]],
    [2, [2, 1, 0, 0, 0, 0, 3, 4]],
    [3, [3, 2, 1, 0, 0, 0, 4, 5]],
    [4, [4, 3, 2, 1, 0, 0, 5, 5]],
    [5, [5, 4, 3, 2, 1, 0, 5, 5]],
  ]),
  rx1Channel: { rule: 'uplink-frequency' },
  // §2.12.2.
  regionChannels: channelList(0, [865_062_500, 865_402_500, 865_985_000], 0, 5),
  enabledChannelIndices: [0, 1, 2],
  extraChannels: [],
  cfListType: 0,
  downlinkTxPowerDbm: 30,
  // §2.12.3: MaxEIRP +30 dBm by default, TXPower 0..10 in 2 dB steps.
  defaultMaxEirpDbm: 30,
  txPowerOffsetsDb: txPowerSteps(10),
  dwellTime: null,
  dutyCycleBands: [],
  subBand: null,
};
