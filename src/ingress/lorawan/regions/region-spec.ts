// The shape of one region's Regional Parameters as plain data (LoRaWAN RP002-1.0.3, with 1.0.4 where the
// region files say so): what each file in this folder fills in and region.ts turns into a Region. Values
// only, no behaviour: a table a reviewer can hold against the spec line by line.

export type RegionName = 'EU868' | 'US915' | 'AU915' | 'AS923-1' | 'AS923-2' | 'AS923-3' | 'AS923-4' | 'IN865' | 'KR920';

/** Every region iotgw has, spelled as RP002 spells them. */
export const REGION_NAMES: readonly RegionName[] = ['EU868', 'US915', 'AU915', 'AS923-1', 'AS923-2', 'AS923-3', 'AS923-4', 'IN865', 'KR920'];

/** A LoRa data rate. FSK and LR-FHSS rates are left out (the gateway handles LoRa only); their indices stay unused. */
export interface DataRate {
  readonly spreadingFactor: number;
  readonly bandwidthKHz: number;
  /** A device may transmit at it. */
  readonly uplink: boolean;
  /** The network may transmit at it (RX1, RX2, Class C). */
  readonly downlink: boolean;
}

/** RP002's M (largest MACPayload) and N (largest FRMPayload without FOpts, M - 8), in bytes; 0 where the spec says N/A. */
export interface MaxPayloadSize {
  readonly m: number;
  readonly n: number;
}

export interface UplinkChannel {
  /** The channel's index in the region's channel numbering (what ChMask bits and CFList positions refer to). */
  readonly index: number;
  readonly frequencyHz: number;
  readonly minDataRate: number;
  readonly maxDataRate: number;
}

/** A frequency band with a transmit duty-cycle limit, for the duty-cycle limiter. */
export interface DutyCycleBand {
  readonly name: string;
  /** Inclusive bounds of the band. */
  readonly minHz: number;
  readonly maxHz: number;
  /** Share of time a transmitter may be on air in this band, 0..1 (0.01 = 1 %). */
  readonly dutyCycle: number;
  /** EIRP cap in the band, dBm. */
  readonly maxEirpDbm: number;
}

/** How RX1's frequency follows from the uplink. */
export type Rx1ChannelRule =
  | { readonly rule: 'uplink-frequency' }
  /** US915/AU915: downlink channel `uplink channel index % 8` of these eight. */
  | { readonly rule: 'uplink-channel-mod-8'; readonly downlinkChannelsHz: readonly number[] };

/** The 400 ms dwell-time limit (TxParamSetupReq regions): on for uplinks and/or downlinks. */
export interface DwellTime {
  readonly uplink: boolean;
  readonly downlink: boolean;
}

export interface RegionSpec {
  readonly name: RegionName;
  /** RECEIVE_DELAY1, s; RECEIVE_DELAY2 is one second more. */
  readonly rx1DelaySeconds: number;
  readonly joinAcceptDelay1Seconds: number;
  readonly joinAcceptDelay2Seconds: number;
  readonly rx2FrequencyHz: number;
  readonly rx2DataRate: number;
  /** LoRa coding rate of every data rate of the region. */
  readonly codingRate: string;
  readonly dataRates: ReadonlyMap<number, DataRate>;
  /** M and N by data rate for uplinks and downlinks, with the dwell-time setting of this plan already applied. */
  readonly uplinkMaxPayloadSizes: ReadonlyMap<number, MaxPayloadSize>;
  readonly downlinkMaxPayloadSizes: ReadonlyMap<number, MaxPayloadSize>;
  /** RX1 data rate by uplink data rate; entry i is for RX1DROffset i (so its length bounds the offset). */
  readonly rx1DataRates: ReadonlyMap<number, readonly number[]>;
  readonly rx1Channel: Rx1ChannelRule;
  /** Every uplink channel the region itself defines (EU868: the three mandatory ones; US915: all 72). */
  readonly regionChannels: readonly UplinkChannel[];
  /** Indices of regionChannels this plan keeps on (US915/AU915: one sub-band; elsewhere all). */
  readonly enabledChannelIndices: readonly number[];
  /** Channels the network adds through the join-accept CFList (type 0 regions), numbered after regionChannels. */
  readonly extraChannels: readonly UplinkChannel[];
  /** 0: CFList of frequencies; 1: CFList of channel masks. */
  readonly cfListType: 0 | 1;
  /** The gateway's transmit power for downlinks (txpk `powe`), dBm. */
  readonly downlinkTxPowerDbm: number;
  /** MaxEIRP a device assumes until told otherwise: the EIRP of TXPower 0, dBm. */
  readonly defaultMaxEirpDbm: number;
  /** TXPower index -> dB below MaxEIRP (index 0 is 0 dB). */
  readonly txPowerOffsetsDb: readonly number[];
  /** null: the region has no dwell-time setting. */
  readonly dwellTime: DwellTime | null;
  readonly dutyCycleBands: readonly DutyCycleBand[];
  /** US915/AU915: the 1-based sub-band of eight 125 kHz channels this plan uses; null elsewhere. */
  readonly subBand: number | null;
}

/** Data rate entries from [index, SF, bandwidth kHz, uplink, downlink] rows. */
export function dataRateTable(rows: readonly DataRateRow[]): ReadonlyMap<number, DataRate> {
  return new Map(rows.map(([index, spreadingFactor, bandwidthKHz, uplink, downlink]) => [index, { spreadingFactor, bandwidthKHz, uplink, downlink }]));
}

type DataRateRow = readonly [number, number, number, boolean, boolean];

/** DR0..DR5 = SF12..SF7 at 125 kHz, both directions: the LoRa rates EU868, AS923, IN865 and KR920 share. */
export const SF12_TO_SF7_125_KHZ: readonly DataRateRow[] = [
  [0, 12, 125, true, true],
  [1, 11, 125, true, true],
  [2, 10, 125, true, true],
  [3, 9, 125, true, true],
  [4, 8, 125, true, true],
  [5, 7, 125, true, true],
];

/** M by data rate (DR0..DR6, not repeater compatible) shared by EU868, IN865 and KR920 (RP002 §2.4.6, §2.12.6, §2.11.6). */
export function euLikePayloadSizes(lastDataRate: number): ReadonlyMap<number, MaxPayloadSize> {
  const m = [59, 59, 59, 123, 250, 250, 250];
  return payloadTable(m.slice(0, lastDataRate + 1).map((size, index) => [index, size] as const));
}

/** RX1 data rate = the uplink's lowered by RX1DROffset, never below DR0 (EU868 §2.4.7, KR920 §2.11.7): DR0..lastDataRate, offsets 0..offsets-1. */
export function loweredRx1DataRates(lastDataRate: number, offsets: number): ReadonlyMap<number, readonly number[]> {
  return new Map(
    Array.from({ length: lastDataRate + 1 }, (_, uplink) => [uplink, Array.from({ length: offsets }, (_, offset) => Math.max(0, uplink - offset))] as const),
  );
}

/** M/N entries from [index, M] rows (N = M - 8: FHDR without FOpts and FPort, LoRaWAN 1.0.x §4.3). */
export function payloadTable(rows: readonly (readonly [number, number])[]): ReadonlyMap<number, MaxPayloadSize> {
  return new Map(rows.map(([index, m]) => [index, { m, n: m === 0 ? 0 : m - 8 }]));
}

/** Channels at `firstHz + i * stepHz`, numbered from `firstIndex`. */
export function channelGrid(firstIndex: number, count: number, firstHz: number, stepHz: number, minDataRate: number, maxDataRate: number): UplinkChannel[] {
  return Array.from({ length: count }, (_, i) => ({ index: firstIndex + i, frequencyHz: firstHz + i * stepHz, minDataRate, maxDataRate }));
}

/** Channels at the given frequencies, numbered from `firstIndex`. */
export function channelList(firstIndex: number, frequenciesHz: readonly number[], minDataRate: number, maxDataRate: number): UplinkChannel[] {
  return frequenciesHz.map((frequencyHz, i) => ({ index: firstIndex + i, frequencyHz, minDataRate, maxDataRate }));
}

/** TXPower offsets 0, -2, -4, ... for indices 0..maxIndex (every region here steps by 2 dB). */
export function txPowerSteps(maxIndex: number): number[] {
  return Array.from({ length: maxIndex + 1 }, (_, i) => (i === 0 ? 0 : -2 * i));
}
