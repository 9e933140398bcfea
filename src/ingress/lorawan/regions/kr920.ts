// KR920-923 (RP002-1.0.3 §2.11). Values cross-checked with ChirpStack lrwn/src/region/kr920.rs and The Things
// Stack pkg/band/kr_920_923_rp2_v1_0_3.go; the four extra channels are TTN's KR_920_923_TTN plan. Korea
// regulates with listen-before-talk (done by the gateway and devices), not a duty cycle.
import { channelList, dataRateTable, euLikePayloadSizes, loweredRx1DataRates, type RegionSpec, SF12_TO_SF7_125_KHZ, txPowerSteps } from './region-spec.ts';

const PAYLOAD_SIZES = euLikePayloadSizes(5);

export const KR920_SPEC: RegionSpec = {
  name: 'KR920',
  rx1DelaySeconds: 1,
  joinAcceptDelay1Seconds: 5,
  joinAcceptDelay2Seconds: 6,
  rx2FrequencyHz: 921_900_000,
  rx2DataRate: 0,
  codingRate: '4/5',
  // §2.11.3.
  dataRates: dataRateTable(SF12_TO_SF7_125_KHZ),
  // §2.11.6.
  uplinkMaxPayloadSizes: PAYLOAD_SIZES,
  downlinkMaxPayloadSizes: PAYLOAD_SIZES,
  // §2.11.7: the uplink data rate lowered by RX1DROffset (0..5), never below DR0.
  rx1DataRates: loweredRx1DataRates(5, 6),
  rx1Channel: { rule: 'uplink-frequency' },
  // §2.11.2.
  regionChannels: channelList(0, [922_100_000, 922_300_000, 922_500_000], 0, 5),
  enabledChannelIndices: [0, 1, 2],
  extraChannels: channelList(3, [922_700_000, 922_900_000, 923_100_000, 923_300_000], 0, 5),
  cfListType: 0,
  // ChirpStack's downlink TX power for KR920.
  downlinkTxPowerDbm: 23,
  // §2.11.3: MaxEIRP +14 dBm by default, TXPower 0..7 in 2 dB steps.
  defaultMaxEirpDbm: 14,
  txPowerOffsetsDb: txPowerSteps(7),
  dwellTime: null,
  dutyCycleBands: [],
  subBand: null,
};
