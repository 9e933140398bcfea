// Regional radio parameters (LoRaWAN Regional Parameters, RP002) that the gateway needs to answer a Class-A
// uplink and that the simulator needs to transmit: data rates, receive windows and their frequencies. Only
// EU868 is implemented; the interface leaves room for channel-plan regions such as US915.

export interface DataRate {
  readonly spreadingFactor: number;
  readonly bandwidthKHz: number;
}

export interface Region {
  readonly name: string;
  /** RECEIVE_DELAY1 default, seconds from uplink end to RX1; RX2 opens one second later. */
  readonly rx1DelaySeconds: number;
  /** JOIN_ACCEPT_DELAY1 and JOIN_ACCEPT_DELAY2. */
  readonly joinAcceptDelay1Seconds: number;
  readonly joinAcceptDelay2Seconds: number;
  readonly rx2FrequencyHz: number;
  readonly rx2DataRate: number;
  /** LoRa data rates by index (FSK and LR-FHSS rates are left out: the gateway only handles LoRa). */
  readonly dataRates: ReadonlyMap<number, DataRate>;
  readonly defaultTxPowerDbm: number;
  readonly codingRate: string;
  /** Uplink channels a device may use; the first ones are the region's mandatory default channels. */
  readonly uplinkChannelsHz: readonly number[];
  /** Data-rate index for a Semtech `datr` string such as 'SF7BW125', or null when the region has no such rate. */
  dataRateFromDatr(datr: string): number | null;
  /** `datr` string for a data-rate index; throws RangeError for an index the region does not define. */
  datrFromDataRate(dataRate: number): string;
  /** RX1 data rate for an uplink at `uplinkDataRate` with the session's RX1DROffset. */
  rx1DataRate(uplinkDataRate: number, rx1DrOffset: number): number;
  /** RX1 frequency in Hz for an uplink on `uplinkFrequencyHz`. */
  rx1Frequency(uplinkFrequencyHz: number): number;
}

function datrOf(rate: DataRate): string {
  return `SF${rate.spreadingFactor}BW${rate.bandwidthKHz}`;
}

function createRegion(spec: Omit<Region, 'dataRateFromDatr' | 'datrFromDataRate'>): Region {
  const byDatr = new Map<string, number>();
  for (const [index, rate] of spec.dataRates) byDatr.set(datrOf(rate), index);
  return Object.freeze({
    ...spec,
    dataRateFromDatr: (datr: string) => byDatr.get(typeof datr === 'string' ? datr.toUpperCase() : '') ?? null,
    datrFromDataRate: (dataRate: number) => {
      const rate = spec.dataRates.get(dataRate);
      if (rate === undefined) throw new RangeError(`${spec.name} has no LoRa data rate DR${dataRate}`);
      return datrOf(rate);
    },
  });
}

/** EU863-870 (RP002-1.0.x §2.4). */
export const EU868: Region = createRegion({
  name: 'EU868',
  rx1DelaySeconds: 1,
  joinAcceptDelay1Seconds: 5,
  joinAcceptDelay2Seconds: 6,
  rx2FrequencyHz: 869_525_000,
  rx2DataRate: 0,
  dataRates: new Map([
    [0, { spreadingFactor: 12, bandwidthKHz: 125 }],
    [1, { spreadingFactor: 11, bandwidthKHz: 125 }],
    [2, { spreadingFactor: 10, bandwidthKHz: 125 }],
    [3, { spreadingFactor: 9, bandwidthKHz: 125 }],
    [4, { spreadingFactor: 8, bandwidthKHz: 125 }],
    [5, { spreadingFactor: 7, bandwidthKHz: 125 }],
    [6, { spreadingFactor: 7, bandwidthKHz: 250 }],
  ]),
  defaultTxPowerDbm: 14,
  codingRate: '4/5',
  // 868.1/868.3/868.5 MHz are mandatory on every EU868 device; 867.1..867.9 are the five that networks (TTN,
  // ChirpStack defaults) add through the join-accept CFList.
  uplinkChannelsHz: [868_100_000, 868_300_000, 868_500_000, 867_100_000, 867_300_000, 867_500_000, 867_700_000, 867_900_000],
  // RX1 uses the uplink data rate lowered by RX1DROffset, never below DR0 (RP002 §2.4.7).
  rx1DataRate: (uplinkDataRate, rx1DrOffset) => Math.max(0, uplinkDataRate - rx1DrOffset),
  // RX1 answers on the uplink frequency.
  rx1Frequency: (uplinkFrequencyHz) => uplinkFrequencyHz,
});

const REGIONS: ReadonlyMap<string, Region> = new Map([[EU868.name, EU868]]);

/**
 * The region with this name (case-insensitive), or null. To add US915: a fixed plan of 64 + 8 uplink
 * channels (902.3 MHz + 200 kHz steps at DR0..DR3, 903.0 MHz + 1.6 MHz at DR4), RX1 on downlink channel
 * `uplink channel % 8` (923.3 MHz + 600 kHz steps), RX1 data rate from the DR8..DR13 table by offset, and RX2 on
 * 923.3 MHz at DR8 (SF12BW500); rx1Frequency then has to map frequency -> channel index first.
 */
export function regionByName(name: string): Region | null {
  return typeof name === 'string' ? (REGIONS.get(name.toUpperCase()) ?? null) : null;
}
