// One radio reception of a frame, whatever brought it (a Semtech UDP packet forwarder, a serial radio):
// what the LoRaWAN server needs to dedupe, answer in RX1/RX2 and describe the reception in the record.

export interface Reception {
  /** 16 lower-case hex digits; for a serial radio, the configured id of the radio. */
  readonly gatewayEui: string;
  /** Concentrator counter at the end of reception, µs, 32-bit wrapping (Semtech `tmst`); null if unknown. */
  readonly timestampUs: number | null;
  /** Gateway GPS time of reception (ISO 8601), only when the gateway has a fix. */
  readonly gatewayTime: string | null;
  readonly frequencyHz: number;
  /** Semtech form, e.g. 'SF7BW125'. */
  readonly datr: string;
  readonly codingRate: string | null;
  readonly rssi: number;
  readonly signalRssi: number | null;
  readonly snr: number | null;
  readonly channel: number | null;
  readonly rfChain: number | null;
  /** Gateway wall clock when the datagram arrived. */
  readonly receivedAtMs: number;
}

/** Best first: the reception a downlink should go through (highest SNR, then RSSI). */
export function byReceptionQuality(a: Reception, b: Reception): number {
  const snr = (b.snr ?? -Infinity) - (a.snr ?? -Infinity);
  if (snr !== 0 && Number.isFinite(snr)) return snr;
  return b.rssi - a.rssi;
}
