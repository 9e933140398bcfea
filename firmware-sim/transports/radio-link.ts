// The radio path between a simulated LoRaWAN device and its home packet forwarder, so that ADR has something to
// act on: a path loss per device (a seeded spread, or set by a test), and for each frame
//   RSSI = TX power (EIRP, dBm) - path loss,   SNR = RSSI - noise floor of the channel's bandwidth,
// with a little seeded jitter. A frame whose SNR is below its spreading factor's demodulation floor (the same
// table the gateway's ADR uses, requiredSnrDb in adr.ts) is not heard. Pure: lorawan-air.ts applies it.
import type { Random } from '../fleet.ts';
import { requiredSnrDb } from '../../src/ingress/lorawan-server/adr.ts';

/** A receiver's noise figure on top of thermal noise (SX1301/SX1276 class concentrators: about 6 dB). */
const NOISE_FIGURE_DB = 6;
/** Thermal noise, dBm per Hz at room temperature. */
const THERMAL_NOISE_DBM_PER_HZ = -174;

/** Default spread of path losses across a fleet, dB: from a device next to a gateway to one several km away. */
export const DEFAULT_PATH_LOSS_DB: PathLossSpread = { minDb: 115, maxDb: 142 };
/** Default jitter of each frame's signal, +/- dB (uniform). */
export const DEFAULT_LINK_JITTER_DB = 0.5;
/** A second forwarder (two-gateway frames) is farther away than the device's home forwarder by this much. */
export const SECOND_GATEWAY_EXTRA_LOSS_DB = 5;

/** Path loss for every device (a number) or drawn per device from a range. */
export type PathLossSpread = { readonly minDb: number; readonly maxDb: number };

/** What a receiver measures of one frame: as a packet forwarder reports it (RSSI whole dBm, SNR in 0.1 dB). */
export interface LinkSample {
  readonly rssiDbm: number;
  readonly snrDb: number;
}

export interface RadioLink {
  /** dB between the device and its home forwarder. */
  readonly pathLossDb: number;
  /** The link changes during a run (the device moved, a truck parks in front of it). */
  setPathLossDb(pathLossDb: number): void;
  /**
   * One frame sent at `txPowerDbm` (EIRP) on a `bandwidthKHz` channel, as heard `extraLossDb` farther away than
   * the home forwarder. Each call draws the next jitter.
   */
  sample(txPowerDbm: number, bandwidthKHz: number, extraLossDb?: number): LinkSample;
  /** The same without jitter: what the link gives on average. */
  expected(txPowerDbm: number, bandwidthKHz: number, extraLossDb?: number): LinkSample;
}

/** -174 dBm/Hz + 10 log10(bandwidth) + the noise figure: -117 dBm at 125 kHz, -111 dBm at 500 kHz. */
export function noiseFloorDbm(bandwidthKHz: number): number {
  return THERMAL_NOISE_DBM_PER_HZ + 10 * Math.log10(bandwidthKHz * 1000) + NOISE_FIGURE_DB;
}

/** Whether a frame at this SNR and spreading factor is demodulated (an SF LoRa does not have never is). */
export function demodulates(snrDb: number, spreadingFactor: number): boolean {
  const floor = requiredSnrDb(spreadingFactor);
  return floor !== null && snrDb >= floor;
}

export function createRadioLink(pathLossDb: number, jitterDb: number, random: Random): RadioLink {
  assertDb('path loss', pathLossDb);
  if (!(jitterDb >= 0 && Number.isFinite(jitterDb))) throw new RangeError(`link jitter must be a number of dB >= 0, got ${jitterDb}`);
  let loss = pathLossDb;
  const measure = (txPowerDbm: number, bandwidthKHz: number, extraLossDb: number, jitter: number): LinkSample => {
    const rssi = txPowerDbm - loss - extraLossDb + jitter;
    return { rssiDbm: Math.round(rssi), snrDb: Math.round((rssi - noiseFloorDbm(bandwidthKHz)) * 10) / 10 };
  };
  return {
    get pathLossDb() {
      return loss;
    },
    setPathLossDb(next) {
      assertDb('path loss', next);
      loss = next;
    },
    sample: (txPowerDbm, bandwidthKHz, extraLossDb = 0) => measure(txPowerDbm, bandwidthKHz, extraLossDb, (random() * 2 - 1) * jitterDb),
    expected: (txPowerDbm, bandwidthKHz, extraLossDb = 0) => measure(txPowerDbm, bandwidthKHz, extraLossDb, 0),
  };
}

/** A device's path loss: the fixed value, or one drawn from the spread. */
export function drawPathLossDb(spread: number | PathLossSpread, random: Random): number {
  if (typeof spread === 'number') return spread;
  return Math.round((spread.minDb + random() * (spread.maxDb - spread.minDb)) * 10) / 10;
}

function assertDb(what: string, value: number): void {
  if (!Number.isFinite(value)) throw new RangeError(`${what} must be a number of dB, got ${value}`);
}
