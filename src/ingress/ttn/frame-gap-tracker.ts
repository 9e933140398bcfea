// Frame-counter bookkeeping for uplinks that TTS already verified: TTS publishes at QoS 0 and never
// retransmits, so the only sign that uplinks were lost (our link to TTN was down, or the device was not
// heard) is a jump in f_cnt. Per device it keeps the session and the last counter, and judges each uplink:
// the next one (gap 0), a jump (gap = frames never seen), a duplicate (same session, counter not ahead:
// dropped), or the start of a new session (new session_key_id, or a counter back near 0 after a re-join
// or an ABP reset: no gap). Pure; the state is persisted with each record (scope STATE_SCOPE, key DevEUI).

export const STATE_SCOPE = 'ttn.device';

export interface DeviceCounter {
  readonly sessionKeyId: string | null;
  readonly lastFCnt: number;
}

export type FrameVerdict =
  | { readonly kind: 'first' | 'next' | 'new-session'; readonly gap: 0 }
  | { readonly kind: 'gap'; readonly gap: number }
  | { readonly kind: 'duplicate'; readonly lastFCnt: number };

/** A counter at or below this, behind the last one by at least this much, is a device that started over. */
const RESTART_FCNT = 16;

export function judgeFrame(previous: DeviceCounter | undefined, sessionKeyId: string | null, fCnt: number): FrameVerdict {
  if (previous === undefined) return { kind: 'first', gap: 0 };
  if (sessionKeyId !== null && previous.sessionKeyId !== null && sessionKeyId !== previous.sessionKeyId) return { kind: 'new-session', gap: 0 };
  if (fCnt > previous.lastFCnt) {
    const gap = fCnt - previous.lastFCnt - 1;
    return gap === 0 ? { kind: 'next', gap: 0 } : { kind: 'gap', gap };
  }
  if (fCnt <= RESTART_FCNT && previous.lastFCnt - fCnt >= RESTART_FCNT) return { kind: 'new-session', gap: 0 };
  return { kind: 'duplicate', lastFCnt: previous.lastFCnt };
}

export interface FrameGapTracker {
  /** Judges the uplink and, unless it is a duplicate, records it as the device's latest. */
  observe(devEui: string, sessionKeyId: string | null, fCnt: number): FrameVerdict;
  /** The device's state as a state-table value (JSON), for the commit that stores its record. */
  stateValue(devEui: string): string | null;
  readonly size: number;
}

/** `persisted`: the committed state of STATE_SCOPE (DevEUI -> JSON), as loaded at start. Unreadable entries are skipped. */
export function createFrameGapTracker(persisted: ReadonlyMap<string, string> = new Map()): FrameGapTracker {
  const devices = new Map<string, DeviceCounter>();
  for (const [devEui, json] of persisted) {
    const counter = parseCounter(json);
    if (counter !== null) devices.set(devEui, counter);
  }
  return {
    observe(devEui, sessionKeyId, fCnt) {
      const verdict = judgeFrame(devices.get(devEui), sessionKeyId, fCnt);
      if (verdict.kind !== 'duplicate') devices.set(devEui, { sessionKeyId, lastFCnt: fCnt });
      return verdict;
    },
    stateValue(devEui) {
      const counter = devices.get(devEui);
      return counter === undefined ? null : JSON.stringify({ session_key_id: counter.sessionKeyId, last_f_cnt: counter.lastFCnt });
    },
    get size() {
      return devices.size;
    },
  };
}

function parseCounter(json: string): DeviceCounter | null {
  try {
    const value = JSON.parse(json) as { session_key_id?: unknown; last_f_cnt?: unknown };
    const sessionKeyId = typeof value.session_key_id === 'string' ? value.session_key_id : null;
    return typeof value.last_f_cnt === 'number' && Number.isInteger(value.last_f_cnt) ? { sessionKeyId, lastFCnt: value.last_f_cnt } : null;
  } catch {
    return null;
  }
}
