// EU863-870 (RP002-1.0.3 §2.4). Values cross-checked with ChirpStack lrwn/src/region/eu868.rs and The Things
// Stack pkg/band/eu_863_870_rp2_v1_0_3.go; the five extra channels are the ones TTN and ChirpStack announce.
import { channelList, dataRateTable, euLikePayloadSizes, loweredRx1DataRates, type RegionSpec, SF12_TO_SF7_125_KHZ, txPowerSteps } from './region-spec.ts';

export const EU868_SPEC: RegionSpec = {
  name: 'EU868',
  rx1DelaySeconds: 1,
  joinAcceptDelay1Seconds: 5,
  joinAcceptDelay2Seconds: 6,
  rx2FrequencyHz: 869_525_000,
  rx2DataRate: 0,
  codingRate: '4/5',
  // §2.4.3; DR7 is FSK 50 kbit/s and DR8..11 LR-FHSS: left out.
  dataRates: dataRateTable([...SF12_TO_SF7_125_KHZ, [6, 7, 250, true, true]]),
  // §2.4.6 (not repeater compatible). ChirpStack's table has N = 222 at DR4, a slip: M = 250 gives N = 242.
  uplinkMaxPayloadSizes: euLikePayloadSizes(6),
  downlinkMaxPayloadSizes: euLikePayloadSizes(6),
  // §2.4.7: the uplink data rate lowered by RX1DROffset (0..5), never below DR0.
  rx1DataRates: loweredRx1DataRates(6, 6),
  rx1Channel: { rule: 'uplink-frequency' },
  // §2.4.2: every EU868 device knows these three; networks add up to five with the CFList (§2.4.4).
  regionChannels: channelList(0, [868_100_000, 868_300_000, 868_500_000], 0, 5),
  enabledChannelIndices: [0, 1, 2],
  extraChannels: channelList(3, [867_100_000, 867_300_000, 867_500_000, 867_700_000, 867_900_000], 0, 5),
  cfListType: 0,
  // What iotgw has always sent with (the g1 sub-band allows 14 dBm ERP).
  downlinkTxPowerDbm: 14,
  // §2.4.3: MaxEIRP +16 dBm by default, TXPower 0..7 in 2 dB steps.
  defaultMaxEirpDbm: 16,
  txPowerOffsetsDb: txPowerSteps(7),
  dwellTime: null,
  // ETSI EN 300 220-2 V3.1.1 sub-bands as RP002 §2.4.1 refers to them (the LoRaWAN 1.0 names g, g1, g2, g3, g4;
  // V3.1.1 splits g into K and L). EIRP caps: 14 dBm ERP = 16.15 dBm EIRP, 27 dBm ERP = 29.15 dBm EIRP.
  dutyCycleBands: [
    { name: 'g (K) 863.0-865.0 MHz', minHz: 863_000_000, maxHz: 865_000_000, dutyCycle: 0.001, maxEirpDbm: 16.15 },
    { name: 'g (L) 865.0-868.0 MHz', minHz: 865_000_000, maxHz: 868_000_000, dutyCycle: 0.01, maxEirpDbm: 16.15 },
    { name: 'g1 (M) 868.0-868.6 MHz', minHz: 868_000_000, maxHz: 868_600_000, dutyCycle: 0.01, maxEirpDbm: 16.15 },
    { name: 'g2 (N) 868.7-869.2 MHz', minHz: 868_700_000, maxHz: 869_200_000, dutyCycle: 0.001, maxEirpDbm: 16.15 },
    { name: 'g3 (P) 869.4-869.65 MHz', minHz: 869_400_000, maxHz: 869_650_000, dutyCycle: 0.1, maxEirpDbm: 29.15 },
    { name: 'g4 (R) 869.7-870.0 MHz', minHz: 869_700_000, maxHz: 870_000_000, dutyCycle: 0.01, maxEirpDbm: 16.15 },
  ],
  subBand: null,
};
