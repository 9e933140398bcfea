// Regional radio parameters (LoRaWAN Regional Parameters RP002-1.0.3) that the gateway needs to answer a Class-A
// uplink and that the simulator needs to transmit: data rates, payload limits, the channel plan, receive
// windows and their frequencies, transmit power, dwell time and duty-cycle bands. The values live as plain data
// in regions/*.ts, one file per region; this module turns a region's data into a Region and finds regions by name
// (with the US915/AU915 sub-band and the AS923/AU915 dwell time as options).
import { as923Spec } from './regions/as923.ts';
import { au915Spec } from './regions/au915.ts';
import { encodeChannelMaskCfList, encodeFrequencyCfList } from './regions/cf-list.ts';
import { type ChannelMaskBlock, channelMaskBlocks } from './regions/channel-mask.ts';
import { EU868_SPEC } from './regions/eu868.ts';
import { IN865_SPEC } from './regions/in865.ts';
import { KR920_SPEC } from './regions/kr920.ts';
import {
  type DataRate,
  type DutyCycleBand,
  type DwellTime,
  type MaxPayloadSize,
  REGION_NAMES,
  type RegionName,
  type RegionSpec,
  type UplinkChannel,
} from './regions/region-spec.ts';
import { DEFAULT_SUB_BAND } from './regions/sub-band.ts';
import { us915Spec } from './regions/us915.ts';

export type { ChannelMaskBlock } from './regions/channel-mask.ts';
export type { DataRate, DutyCycleBand, DwellTime, MaxPayloadSize, RegionName, UplinkChannel } from './regions/region-spec.ts';
export { REGION_NAMES } from './regions/region-spec.ts';
export { DEFAULT_SUB_BAND, MAX_SUB_BAND, MIN_SUB_BAND } from './regions/sub-band.ts';

export type LinkDirection = 'up' | 'down';

export interface Region {
  readonly name: RegionName;
  /** RECEIVE_DELAY1 default, seconds from uplink end to RX1; RX2 opens one second later. */
  readonly rx1DelaySeconds: number;
  /** JOIN_ACCEPT_DELAY1 and JOIN_ACCEPT_DELAY2. */
  readonly joinAcceptDelay1Seconds: number;
  readonly joinAcceptDelay2Seconds: number;
  readonly rx2FrequencyHz: number;
  readonly rx2DataRate: number;
  /** LoRa data rates by index, uplink and downlink (FSK and LR-FHSS rates are left out: the gateway only handles LoRa). */
  readonly dataRates: ReadonlyMap<number, DataRate>;
  /** Data rates a device may transmit at, ascending. */
  readonly uplinkDataRates: readonly number[];
  /** The gateway's transmit power for downlinks (txpk `powe`), dBm. */
  readonly defaultTxPowerDbm: number;
  readonly codingRate: string;
  /** The plan's uplink channels: the ones every device knows first, then the ones the join-accept announces. */
  readonly uplinkChannels: readonly UplinkChannel[];
  /** Channels of the plan a device knows without being told (US915/AU915: the sub-band's nine). */
  readonly defaultUplinkChannels: readonly UplinkChannel[];
  /** Channels the network announces in the join-accept CFList (type 0 regions). */
  readonly extraUplinkChannels: readonly UplinkChannel[];
  /** uplinkChannels' frequencies, in the same order. */
  readonly uplinkChannelsHz: readonly number[];
  /** US915/AU915: the sub-band in use (1..8); null elsewhere. */
  readonly subBand: number | null;
  /** The 400 ms dwell-time setting; null where the region has none. */
  readonly dwellTime: DwellTime | null;
  /** Highest RX1DROffset the region defines. */
  readonly maxRx1DrOffset: number;
  /** 0: CFList of frequencies; 1: CFList of channel masks. */
  readonly cfListType: 0 | 1;
  /** MaxEIRP a device assumes until told otherwise (the EIRP of TXPower 0), dBm. */
  readonly defaultMaxEirpDbm: number;
  /** TXPower index -> dB below MaxEIRP. */
  readonly txPowerOffsetsDb: readonly number[];
  /** Transmit duty-cycle limits by frequency band; empty where the region has none. */
  readonly dutyCycleBands: readonly DutyCycleBand[];
  /**
   * Uplink data-rate index for a Semtech `datr` such as 'SF7BW125', or null when no uplink rate of the region
   * has it. In US915 'SF8BW500' is uplink DR4 (and downlink DR12): an rxpk's datr is always an uplink's.
   */
  dataRateFromDatr(datr: string): number | null;
  /** Downlink data-rate index for a `datr`, or null. */
  downlinkDataRateFromDatr(datr: string): number | null;
  /** `datr` string for a data-rate index; throws RangeError for an index the region does not define. */
  datrFromDataRate(dataRate: number): string;
  /** RX1 data rate for an uplink at `uplinkDataRate` with the session's RX1DROffset; throws RangeError outside the region's table. */
  rx1DataRate(uplinkDataRate: number, rx1DrOffset: number): number;
  /** RX1 frequency in Hz for an uplink on `uplinkFrequencyHz`; null when it is not a channel of a fixed-plan region (US915/AU915). */
  rx1Frequency(uplinkFrequencyHz: number): number | null;
  /** The channel index of an uplink frequency in the region's numbering (defaults, then announced channels), or null. */
  uplinkChannelIndex(frequencyHz: number): number | null;
  /** The region's channel with this index, in the plan or not (US915: any of the 72), or null. */
  uplinkChannel(index: number): UplinkChannel | null;
  /** M and N for a data rate in one direction; null for a rate the region does not define that way, or N/A under the dwell time. */
  maxPayloadSize(dataRate: number, direction: LinkDirection): MaxPayloadSize | null;
  /** EIRP in dBm of a TXPower index, or null for an index the region does not define. */
  txPowerEirpDbm(txPower: number): number | null;
  /** The join-accept CFList for the plan (16 bytes, a fresh copy), or null when the plan announces nothing. */
  cfList(): Buffer | null;
  /** LinkADRReq ChMaskCntl/ChMask blocks that leave exactly the plan's channels on. */
  linkAdrChannelMasks(): readonly ChannelMaskBlock[];
}

export interface RegionOptions {
  /** US915/AU915: the sub-band of eight 125 kHz channels + one 500 kHz channel, 1..8. Default 2. */
  readonly subBand?: number;
  /** AS923 (uplinks and downlinks) and AU915 (uplinks): the 400 ms dwell time. Default off (RP002-1.0.4 default). */
  readonly dwellTime400ms?: boolean;
}

const REGIONS_WITH_SUB_BANDS: ReadonlySet<RegionName> = new Set(['US915', 'AU915']);
const REGIONS_WITH_DWELL_TIME: ReadonlySet<RegionName> = new Set(['AU915', 'AS923-1', 'AS923-2', 'AS923-3', 'AS923-4']);

/** Whether a region has a sub-band choice (US915, AU915). */
export function regionHasSubBands(name: RegionName): boolean {
  return REGIONS_WITH_SUB_BANDS.has(name);
}

/** Whether a region has a dwell-time setting (AS923, AU915). */
export function regionHasDwellTime(name: RegionName): boolean {
  return REGIONS_WITH_DWELL_TIME.has(name);
}

function datrOf(rate: DataRate): string {
  return `SF${rate.spreadingFactor}BW${rate.bandwidthKHz}`;
}

/** A Region over one region's data. */
export function createRegion(spec: RegionSpec): Region {
  const datrIndex = (direction: 'uplink' | 'downlink'): ReadonlyMap<string, number> => {
    const byDatr = new Map<string, number>();
    for (const [index, rate] of spec.dataRates) if (rate[direction] && !byDatr.has(datrOf(rate))) byDatr.set(datrOf(rate), index);
    return byDatr;
  };
  const uplinkByDatr = datrIndex('uplink');
  const downlinkByDatr = datrIndex('downlink');
  const lookup = (byDatr: ReadonlyMap<string, number>, datr: string): number | null =>
    typeof datr === 'string' ? (byDatr.get(datr.toUpperCase()) ?? null) : null;

  const enabled = new Set(spec.enabledChannelIndices);
  const defaultUplinkChannels = spec.regionChannels.filter((channel) => enabled.has(channel.index));
  const uplinkChannels = [...defaultUplinkChannels, ...spec.extraChannels];
  const allChannels = [...spec.regionChannels, ...spec.extraChannels];
  const channelIndexByHz = new Map(allChannels.map((channel) => [channel.frequencyHz, channel.index]));
  const channelByIndex = new Map(allChannels.map((channel) => [channel.index, channel]));
  const regionChannelIndexByHz = new Map(spec.regionChannels.map((channel) => [channel.frequencyHz, channel.index]));
  const maxRx1DrOffset = Math.min(...[...spec.rx1DataRates.values()].map((row) => row.length)) - 1;

  return Object.freeze({
    name: spec.name,
    rx1DelaySeconds: spec.rx1DelaySeconds,
    joinAcceptDelay1Seconds: spec.joinAcceptDelay1Seconds,
    joinAcceptDelay2Seconds: spec.joinAcceptDelay2Seconds,
    rx2FrequencyHz: spec.rx2FrequencyHz,
    rx2DataRate: spec.rx2DataRate,
    dataRates: spec.dataRates,
    uplinkDataRates: [...spec.dataRates].filter(([, rate]) => rate.uplink).map(([index]) => index),
    defaultTxPowerDbm: spec.downlinkTxPowerDbm,
    codingRate: spec.codingRate,
    uplinkChannels,
    defaultUplinkChannels,
    extraUplinkChannels: spec.extraChannels,
    uplinkChannelsHz: uplinkChannels.map((channel) => channel.frequencyHz),
    subBand: spec.subBand,
    dwellTime: spec.dwellTime,
    maxRx1DrOffset,
    cfListType: spec.cfListType,
    defaultMaxEirpDbm: spec.defaultMaxEirpDbm,
    txPowerOffsetsDb: spec.txPowerOffsetsDb,
    dutyCycleBands: spec.dutyCycleBands,
    dataRateFromDatr: (datr: string) => lookup(uplinkByDatr, datr),
    downlinkDataRateFromDatr: (datr: string) => lookup(downlinkByDatr, datr),
    datrFromDataRate: (dataRate: number) => {
      const rate = spec.dataRates.get(dataRate);
      if (rate === undefined) throw new RangeError(`${spec.name} has no LoRa data rate DR${dataRate}`);
      return datrOf(rate);
    },
    rx1DataRate: (uplinkDataRate: number, rx1DrOffset: number) => {
      const rx1 = spec.rx1DataRates.get(uplinkDataRate)?.[rx1DrOffset];
      if (rx1 === undefined) {
        throw new RangeError(
          `${spec.name} defines no RX1 data rate for uplink DR${uplinkDataRate} with RX1DROffset ${rx1DrOffset} (offsets 0..${maxRx1DrOffset})`,
        );
      }
      return rx1;
    },
    rx1Frequency: (uplinkFrequencyHz: number) => {
      const rule = spec.rx1Channel;
      if (rule.rule === 'uplink-frequency') return uplinkFrequencyHz;
      const index = regionChannelIndexByHz.get(uplinkFrequencyHz);
      return index === undefined ? null : (rule.downlinkChannelsHz[index % 8] ?? null);
    },
    uplinkChannelIndex: (frequencyHz: number) => channelIndexByHz.get(frequencyHz) ?? null,
    uplinkChannel: (index: number) => channelByIndex.get(index) ?? null,
    maxPayloadSize: (dataRate: number, direction: LinkDirection) => {
      const rate = spec.dataRates.get(dataRate);
      const size = (direction === 'up' ? spec.uplinkMaxPayloadSizes : spec.downlinkMaxPayloadSizes).get(dataRate);
      if (rate === undefined || !(direction === 'up' ? rate.uplink : rate.downlink) || size === undefined || size.m === 0) return null;
      return size;
    },
    txPowerEirpDbm: (txPower: number) => {
      const offset = spec.txPowerOffsetsDb[txPower];
      return offset === undefined ? null : spec.defaultMaxEirpDbm + offset;
    },
    cfList: () => {
      if (spec.cfListType === 1) return encodeChannelMaskCfList(spec.enabledChannelIndices);
      return spec.extraChannels.length === 0 ? null : encodeFrequencyCfList(spec.extraChannels.map((channel) => channel.frequencyHz));
    },
    linkAdrChannelMasks: () =>
      channelMaskBlocks(
        uplinkChannels.map((channel) => channel.index),
        spec.cfListType === 1 ? 72 : 16,
      ),
  });
}

function specOf(name: RegionName, subBand: number, dwellTime400ms: boolean): RegionSpec {
  switch (name) {
    case 'EU868':
      return EU868_SPEC;
    case 'US915':
      return us915Spec(subBand);
    case 'AU915':
      return au915Spec(subBand, dwellTime400ms);
    case 'AS923-1':
      return as923Spec(1, dwellTime400ms);
    case 'AS923-2':
      return as923Spec(2, dwellTime400ms);
    case 'AS923-3':
      return as923Spec(3, dwellTime400ms);
    case 'AS923-4':
      return as923Spec(4, dwellTime400ms);
    case 'IN865':
      return IN865_SPEC;
    case 'KR920':
      return KR920_SPEC;
  }
}

/** EU863-870 (RP002-1.0.3 §2.4), the default region. */
export const EU868: Region = createRegion(EU868_SPEC);

/** Regions already built, by name and options: a lookup returns the same object for the same plan. */
const built = new Map<string, Region>([['EU868||false', EU868]]);

/** The canonical name for `name` (case-insensitive: 'as923-1' -> 'AS923-1'), or null. */
export function regionNameOf(name: string): RegionName | null {
  if (typeof name !== 'string') return null;
  return REGION_NAMES.find((candidate) => candidate === name.toUpperCase()) ?? null;
}

/**
 * The region with this name (case-insensitive) and plan options, or null for an unknown name. Throws
 * RangeError for options the region does not have (a sub-band outside US915/AU915, a dwell time outside
 * AS923/AU915) or a sub-band outside 1..8: the config validates both first.
 */
export function regionFor(name: string, options: RegionOptions = {}): Region | null {
  const regionName = regionNameOf(name);
  if (regionName === null) return null;
  if (options.subBand !== undefined && !regionHasSubBands(regionName)) {
    throw new RangeError(`${regionName} has no sub-bands (only US915 and AU915 do); leave the sub-band unset`);
  }
  if (options.dwellTime400ms === true && !regionHasDwellTime(regionName)) {
    throw new RangeError(`${regionName} has no dwell-time setting (only AS923 and AU915 do)`);
  }
  const subBand = regionHasSubBands(regionName) ? (options.subBand ?? DEFAULT_SUB_BAND) : undefined;
  const dwellTime400ms = options.dwellTime400ms === true;
  const key = `${regionName}|${subBand ?? ''}|${dwellTime400ms}`;
  let region = built.get(key);
  if (region === undefined) {
    region = createRegion(specOf(regionName, subBand ?? DEFAULT_SUB_BAND, dwellTime400ms));
    built.set(key, region);
  }
  return region;
}

/** The region with this name (case-insensitive) and its default plan (US915/AU915 sub-band 2, no dwell time), or null. */
export function regionByName(name: string): Region | null {
  return regionFor(name);
}
