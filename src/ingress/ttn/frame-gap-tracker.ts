// Frame-counter bookkeeping for uplinks that TTS already verified: TTS publishes at QoS 0 and never
// retransmits, so the only sign that uplinks were lost (our link to TTN was down, the device was not heard,
// or a commit failed) is a jump in f_cnt. Per device it keeps the session, the last counter and the last
// message's identity, and judges each uplink: the next one (gap 0), a jump (gap = frames never seen), a new
// session (new session_key_id: no gap), a counter that went back in the same session (an ABP device that
// reset: stored, no gap, marked), or an exact copy of the last message (a duplicate delivery: dropped). TTS
// accepted every uplink it publishes, so nothing but a copy is dropped.
// It also keeps each device's TTS device id (and the application it came from): where the device's downlinks
// go (down/push needs the device id, commands name the DevEUI), known again after a restart.
// Pure; the state is persisted with each record (scope STATE_SCOPE, key DevEUI).

export const STATE_SCOPE = 'ttn.device';

export interface DeviceCounter {
  readonly sessionKeyId: string | null;
  readonly lastFCnt: number;
  /** The identity of the last stored message (TtsUplink.uplinkId); null in state written before it was kept. */
  readonly lastUplinkId: string | null;
  /** The device's TTS device id, from its last uplink; absent in state written before it was kept. */
  readonly deviceId?: string;
}

export type FrameVerdict =
  | { readonly kind: 'first' | 'next' | 'new-session' | 'reset'; readonly gap: 0 }
  | { readonly kind: 'gap'; readonly gap: number }
  | { readonly kind: 'duplicate'; readonly lastFCnt: number };

export function judgeFrame(previous: DeviceCounter | undefined, sessionKeyId: string | null, fCnt: number, uplinkId: string): FrameVerdict {
  if (previous === undefined) return { kind: 'first', gap: 0 };
  if (fCnt === previous.lastFCnt && uplinkId === previous.lastUplinkId && sessionKeyId === previous.sessionKeyId) {
    return { kind: 'duplicate', lastFCnt: previous.lastFCnt };
  }
  if (sessionKeyId !== null && previous.sessionKeyId !== null && sessionKeyId !== previous.sessionKeyId) return { kind: 'new-session', gap: 0 };
  if (fCnt > previous.lastFCnt) {
    const gap = fCnt - previous.lastFCnt - 1;
    return gap === 0 ? { kind: 'next', gap: 0 } : { kind: 'gap', gap };
  }
  // Not ahead, not a copy: TTS accepted it, so the device's counter started over (ABP reset, or 32-bit wrap).
  return { kind: 'reset', gap: 0 };
}

export interface FrameGapTracker {
  /** Judges the uplink and, unless it is a duplicate, records it (and the device id, when given) as the device's latest. */
  observe(devEui: string, sessionKeyId: string | null, fCnt: number, uplinkId: string, deviceId?: string): FrameVerdict;
  /** The TTS device id of a tracked device; undefined when the device is not tracked or its id was never stored. */
  deviceIdOf(devEui: string): string | undefined;
  /** The device's latest counter, as observe() left it: hand it to committed() or failed() with the commit's result. */
  latest(devEui: string): DeviceCounter | undefined;
  /** The commit that stored `counter` succeeded: it is what the buffer holds for the device now. */
  committed(devEui: string, counter: DeviceCounter): void;
  /**
   * The commit that stored `counter` failed (nothing of it was written): unless a later uplink of the device was
   * already observed, the device goes back to its last committed counter, so the next uplink's gap counts the lost
   * one. A later uplink already on its way was judged against the lost one and cannot be corrected.
   */
  failed(devEui: string, counter: DeviceCounter): void;
  /** The device's state as a state-table value (JSON), for the commit that stores its record. */
  stateValue(devEui: string): string | null;
  /** Devices forgotten to stay within maxDevices since the last call: their state rows can go too. */
  takeForgotten(): string[];
  readonly size: number;
}

/**
 * `persisted`: the committed state of STATE_SCOPE (DevEUI -> JSON), as loaded at start. Unreadable entries are
 * skipped. Devices come from the cloud's messages: at most `maxDevices` are tracked, the least recently heard
 * forgotten first (a forgotten device's next uplink counts as its first: no gap can be told for it).
 * `application` ({app}@{tenant}): written into each state row; rows another application wrote are not loaded
 * (every TTN link reads the same scope). Rows that name no application (older state) are loaded by every link.
 */
export function createFrameGapTracker(
  persisted: ReadonlyMap<string, string> = new Map(),
  maxDevices = 100_000,
  application: string | null = null,
): FrameGapTracker {
  const devices = new Map<string, DeviceCounter>();
  const committedCounters = new Map<string, DeviceCounter>();
  let forgotten: string[] = [];
  /** Keeps `devEui` as the most recently heard and forgets the oldest past the bound. */
  function remember(devEui: string, counter: DeviceCounter): void {
    devices.delete(devEui);
    devices.set(devEui, counter);
    while (devices.size > maxDevices) {
      const oldest = devices.keys().next().value as string;
      devices.delete(oldest);
      committedCounters.delete(oldest);
      if (forgotten.length < maxDevices) forgotten.push(oldest);
    }
  }
  for (const [devEui, json] of persisted) {
    const counter = parseCounter(json, application);
    if (counter === null) continue;
    devices.set(devEui, counter);
    committedCounters.set(devEui, counter);
  }
  return {
    observe(devEui, sessionKeyId, fCnt, uplinkId, deviceId) {
      const previous = devices.get(devEui);
      const verdict = judgeFrame(previous, sessionKeyId, fCnt, uplinkId);
      const id = deviceId ?? previous?.deviceId;
      if (verdict.kind !== 'duplicate')
        remember(devEui, { sessionKeyId, lastFCnt: fCnt, lastUplinkId: uplinkId, ...(id === undefined ? {} : { deviceId: id }) });
      return verdict;
    },
    deviceIdOf: (devEui) => devices.get(devEui)?.deviceId,
    takeForgotten() {
      const taken = forgotten;
      forgotten = [];
      return taken;
    },
    latest: (devEui) => devices.get(devEui),
    committed(devEui, counter) {
      committedCounters.set(devEui, counter);
    },
    failed(devEui, counter) {
      if (devices.get(devEui) !== counter) return;
      const previous = committedCounters.get(devEui);
      if (previous === undefined) devices.delete(devEui);
      else devices.set(devEui, previous);
    },
    stateValue(devEui) {
      const counter = devices.get(devEui);
      if (counter === undefined) return null;
      return JSON.stringify({
        session_key_id: counter.sessionKeyId,
        last_f_cnt: counter.lastFCnt,
        last_uplink_id: counter.lastUplinkId,
        ...(counter.deviceId === undefined ? {} : { device_id: counter.deviceId }),
        ...(application === null ? {} : { application }),
      });
    },
    get size() {
      return devices.size;
    },
  };
}

/** A state row back to a counter; null when unreadable, or written by another application than `application`. */
function parseCounter(json: string, application: string | null): DeviceCounter | null {
  try {
    const value = JSON.parse(json) as { session_key_id?: unknown; last_f_cnt?: unknown; last_uplink_id?: unknown; device_id?: unknown; application?: unknown };
    if (application !== null && typeof value.application === 'string' && value.application !== application) return null;
    const sessionKeyId = typeof value.session_key_id === 'string' ? value.session_key_id : null;
    const lastUplinkId = typeof value.last_uplink_id === 'string' ? value.last_uplink_id : null;
    // Written by this gateway from a checked uplink; checked again, as everything read back is.
    const deviceId = typeof value.device_id === 'string' && value.device_id !== '' && value.device_id.length <= 128 ? value.device_id : undefined;
    if (typeof value.last_f_cnt !== 'number' || !Number.isInteger(value.last_f_cnt)) return null;
    return { sessionKeyId, lastFCnt: value.last_f_cnt, lastUplinkId, ...(deviceId === undefined ? {} : { deviceId }) };
  } catch {
    return null;
  }
}
