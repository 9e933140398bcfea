// Frame-counter handling for LoRaWAN 1.0.x uplinks (§4.3.1.5): rebuild the 32-bit counter from the 16 bits on
// air, then decide whether the frame is new, a retransmission of the last one, or a replay. Pure arithmetic;
// the caller keeps `nextExpected` (last accepted full counter + 1) per device session and verifies the MIC
// with the full counter before trusting the verdict.

/**
 * Largest accepted distance between the last accepted counter and a new one (LoRaWAN 1.0.1 §4.3.1.5; moved to
 * the Regional Parameters in 1.0.2).
 */
export const MAX_FCNT_GAP = 16_384;

const FCNT16_MODULUS = 0x1_0000;
const FCNT32_MODULUS = 0x1_0000_0000;

/**
 * The full 32-bit counter for a 16-bit counter seen on air, given the next full counter expected. ChirpStack's
 * get_full_f_cnt_up: the previous counter's low bits mean a retransmission; any other value is taken as the
 * nearest counter at or after `nextExpected` with those low bits, wrapping at 2^32.
 */
export function fullFrameCounter(nextExpected: number, onAir16: number): number {
  assertCounter('nextExpected', nextExpected, FCNT32_MODULUS);
  assertCounter('onAir16', onAir16, FCNT16_MODULUS - 1);
  const next = nextExpected % FCNT32_MODULUS;
  const nextLow = next % FCNT16_MODULUS;
  // nextExpected 0 has no previous frame; without this guard 0xFFFF would become next - 1 = -1 (a u32 underflow
  // in ChirpStack). 2^32, stored after accepting 0xFFFFFFFF, does have one.
  if (nextExpected > 0 && onAir16 === (nextLow + FCNT16_MODULUS - 1) % FCNT16_MODULUS) return nextExpected - 1;
  const forward = (onAir16 - nextLow + FCNT16_MODULUS) % FCNT16_MODULUS;
  return (next + forward) % FCNT32_MODULUS;
}

export type FrameCounterVerdict =
  | {
      readonly verdict: 'new';
      /** Frames skipped: full - nextExpected; 0 when none were lost or no uplink was seen yet. */
      readonly gap: number;
    }
  | { readonly verdict: 'retransmission' }
  | { readonly verdict: 'replay' };

/**
 * Classifies a reconstructed counter against the session. `nextExpected` is null until the session has
 * accepted an uplink, and then any counter starts it; after that it is the last accepted counter + 1
 * (0..2^32). Comparisons are modulo 2^32, so a counter that wraps after 0xFFFFFFFF is still "next".
 */
export function classifyFrameCounter(nextExpected: number | null, full: number): FrameCounterVerdict {
  assertCounter('full', full, FCNT32_MODULUS - 1);
  if (nextExpected === null) return { verdict: 'new', gap: 0 };
  assertCounter('nextExpected', nextExpected, FCNT32_MODULUS);
  const next = nextExpected % FCNT32_MODULUS;
  // "The end-device shall not reuse the same FCntUp value, except for retransmission" (§4.3.1.5).
  if (nextExpected > 0 && full === nextExpected - 1) return { verdict: 'retransmission' };
  const gap = (full - next + FCNT32_MODULUS) % FCNT32_MODULUS;
  // The spec accepts a counter less than MAX_FCNT_GAP past the last accepted one (next - 1), so at most
  // MAX_FCNT_GAP - 1 skipped frames. Anything further forward (in 1.0.x a device that reset its counter without
  // rejoining, or an attacker replaying an old frame whose counter looks far ahead), and any counter behind,
  // which appears here as a jump of almost 2^32, is a replay.
  if (gap >= MAX_FCNT_GAP) return { verdict: 'replay' };
  return { verdict: 'new', gap };
}

function assertCounter(name: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) throw new RangeError(`${name} must be an integer in 0..${max}, got ${value}`);
}
