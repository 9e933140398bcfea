// LoRa time on air: how long a frame occupies the channel, for duty-cycle accounting of downlinks and for the
// airtime a record reports. Pure arithmetic, shared by the server and firmware-sim. The formula is Semtech's
// (SX1276 datasheet §4.1.1.7 "Time on air", AN1200.13 "LoRa Modem Designer's Guide"):
//
//   Tsym      = 2^SF / BW
//   Tpreamble = (nPreamble + 4.25) * Tsym
//   nPayload  = 8 + max(ceil((8*PL - 4*SF + 28 + 16*CRC - 20*IH) / (4*(SF - 2*DE))) * (CR + 4), 0)
//   ToA       = Tpreamble + nPayload * Tsym
//
// PL the PHYPayload length in bytes, CRC 1 when the payload CRC is sent (LoRaWAN 1.0.2 §3.1/§3.2: uplinks
// carry one, downlinks do not), IH 1 for an implicit header (LoRaWAN always uses the explicit one: 0), DE 1 with
// low data rate optimisation, CR 1..4 for 4/5..4/8.

export interface LoraAirtimeParams {
  /** 6..12 (the SX1276 formula; SX126x's SF5/SF6 are counted differently and LoRaWAN does not use them). */
  readonly spreadingFactor: number;
  /** 125, 250 or 500 in LoRaWAN; any positive value is computed. */
  readonly bandwidthKHz: number;
  /** '4/5'..'4/8', as in a Semtech `codr`. */
  readonly codingRate: string;
  /** PHYPayload length in bytes (MHDR to MIC), 0..255. */
  readonly payloadBytes: number;
  /** The payload CRC: on for LoRaWAN uplinks, off for downlinks (LoRaWAN 1.0.2 §3.1, §3.2). */
  readonly crc: boolean;
  /** Programmed preamble symbols; LoRaWAN uses 8 in every region. */
  readonly preambleSymbols?: number;
  /** LoRaWAN always sends the explicit header. */
  readonly explicitHeader?: boolean;
  /**
   * Low data rate optimisation; by default on when a symbol lasts more than 16 ms, where the SX1276 datasheet
   * makes it mandatory: SF11 and SF12 at 125 kHz, SF12 at 250 kHz, as LoRaMac-node sets it.
   */
  readonly lowDataRateOptimize?: boolean;
}

export const LORAWAN_PREAMBLE_SYMBOLS = 8;

/** Symbol duration in ms. */
export function loraSymbolMs(spreadingFactor: number, bandwidthKHz: number): number {
  return 2 ** spreadingFactor / bandwidthKHz;
}

/** Time on air in ms (fractional: SF7BW125 with 13 bytes is 46.336 ms). Throws RangeError for a parameter out of range. */
export function loraAirtimeMs(params: LoraAirtimeParams): number {
  const { spreadingFactor: sf, bandwidthKHz, payloadBytes, crc } = params;
  const preamble = params.preambleSymbols ?? LORAWAN_PREAMBLE_SYMBOLS;
  if (!Number.isInteger(sf) || sf < 6 || sf > 12) throw new RangeError(`LoRa airtime: spreading factor ${sf} is not 6..12`);
  if (!Number.isFinite(bandwidthKHz) || bandwidthKHz <= 0) throw new RangeError(`LoRa airtime: bandwidth ${bandwidthKHz} kHz is not a positive number`);
  if (!Number.isInteger(payloadBytes) || payloadBytes < 0 || payloadBytes > 255) {
    throw new RangeError(`LoRa airtime: payload of ${payloadBytes} bytes is not 0..255 (a LoRa frame's length is one byte)`);
  }
  if (!Number.isInteger(preamble) || preamble < 6 || preamble > 0xffff) throw new RangeError(`LoRa airtime: preamble of ${preamble} symbols is not 6..65535`);
  const cr = codingRateIndex(params.codingRate);
  if (cr === null) throw new RangeError(`LoRa airtime: coding rate ${JSON.stringify(params.codingRate)} is not 4/5, 4/6, 4/7 or 4/8`);

  const symbolMs = loraSymbolMs(sf, bandwidthKHz);
  const de = (params.lowDataRateOptimize ?? symbolMs > 16) ? 1 : 0;
  const ih = (params.explicitHeader ?? true) ? 0 : 1;
  const numerator = 8 * payloadBytes - 4 * sf + 28 + (crc ? 16 : 0) - 20 * ih;
  const payloadSymbols = 8 + Math.max(Math.ceil(numerator / (4 * (sf - 2 * de))) * (cr + 4), 0);
  // Counted in quarter symbols (the preamble's 4.25) so that the one division below is the only rounding.
  const quarterSymbols = 4 * preamble + 17 + 4 * payloadSymbols;
  return (quarterSymbols * 2 ** sf) / (4 * bandwidthKHz);
}

/** CR for the formula: 1 for '4/5' .. 4 for '4/8'; null for anything else (a Semtech 'OFF'). */
export function codingRateIndex(codingRate: string): number | null {
  const match = typeof codingRate === 'string' ? /^4\/([5-8])$/.exec(codingRate) : null;
  return match?.[1] === undefined ? null : Number(match[1]) - 4;
}

/** SF and bandwidth of a Semtech LoRa `datr` such as 'SF7BW125'; null for anything else (an FSK bit rate). */
export function parseLoraDatr(datr: string): { readonly spreadingFactor: number; readonly bandwidthKHz: number } | null {
  const match = typeof datr === 'string' ? /^SF(\d{1,2})BW(\d{1,3})$/i.exec(datr) : null;
  if (match?.[1] === undefined || match[2] === undefined) return null;
  return { spreadingFactor: Number(match[1]), bandwidthKHz: Number(match[2]) };
}

/**
 * Time on air in ms of a LoRaWAN frame described the way a Semtech packet forwarder does (`datr`, `codr`), or
 * null when they do not describe a LoRa frame this formula covers (or the length is not 0..255). Downlinks go
 * without a payload CRC.
 */
export function lorawanAirtimeMs(datr: string, codingRate: string, payloadBytes: number, direction: 'up' | 'down'): number | null {
  const rate = parseLoraDatr(datr);
  if (rate === null || rate.spreadingFactor < 6 || rate.spreadingFactor > 12 || rate.bandwidthKHz === 0) return null;
  if (codingRateIndex(codingRate) === null || !Number.isInteger(payloadBytes) || payloadBytes < 0 || payloadBytes > 255) return null;
  return loraAirtimeMs({ ...rate, codingRate, payloadBytes, crc: direction === 'up' });
}
