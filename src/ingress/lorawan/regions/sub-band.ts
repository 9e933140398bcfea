// Sub-bands of the US915 and AU915 plans (RP002-1.0.3 §2.5.2, §2.8.2): sub-band s (1..8) is the eight 125 kHz
// channels 8(s-1)..8(s-1)+7 and the one 500 kHz channel 64+(s-1) between them.

export const MIN_SUB_BAND = 1;
export const MAX_SUB_BAND = 8;
/** What The Things Network and ChirpStack's default configs use in the US and Australia. */
export const DEFAULT_SUB_BAND = 2;

/** Channel indices of sub-band `subBand`; throws RangeError outside 1..8 (config validates it before). */
export function subBandChannelIndices(subBand: number): number[] {
  if (!Number.isInteger(subBand) || subBand < MIN_SUB_BAND || subBand > MAX_SUB_BAND) {
    throw new RangeError(`sub-band must be an integer in ${MIN_SUB_BAND}..${MAX_SUB_BAND}, got ${subBand}`);
  }
  const first = (subBand - 1) * 8;
  return [...Array.from({ length: 8 }, (_, i) => first + i), 64 + subBand - 1];
}
