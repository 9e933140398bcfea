// A simulated LoRaWAN 1.0.x Class-A end device with real crypto, built on the gateway's own frame layer
// (src/ingress/lorawan): ABP, or OTAA with a join-request (random DevNonce) whose join-accept is decrypted
// and turned into session keys; data uplinks with the full 32-bit FCntUp in MIC and keystream; the ACK of a
// confirmed uplink checked like a radio would (MIC with the NwkSKey, FCtrl.ACK). No I/O here: lorawan-fleet.ts
// carries the frames through simulated packet forwarders. Also derives the devices' keys from the seed and
// turns fleet readings (fleet.ts) into FRMPayloads: Cayenne LPP or a packed binary layout.
import { createHash, randomInt } from 'node:crypto';
import { fullFrameCounter } from '../../src/ingress/lorawan/frame-counter.ts';
import { decodeJoinAccept, deriveSessionKeys, encodeDataFrame, encodeJoinRequest, verifyDataFrameMic } from '../../src/ingress/lorawan/frame-crypto.ts';
import { parsePhyPayload } from '../../src/ingress/lorawan/phy-payload.ts';
import type { DeviceKind, Reading } from '../fleet.ts';

export type PayloadCodec = 'raw' | 'cayenne-lpp';
/** 'mixed': meters and parking sensors speak Cayenne LPP, water meters and street lamps a packed binary layout. */
export type FleetCodec = PayloadCodec | 'mixed';

export type DeviceActivation =
  | { readonly mode: 'abp'; readonly devAddr: string; readonly nwkSKey: Buffer; readonly appSKey: Buffer }
  | { readonly mode: 'otaa'; readonly joinEui: string; readonly appKey: Buffer };

/** Who a device is: fixed by the seed and its index, so a devices file written once matches every later run. */
export interface LorawanIdentity {
  readonly index: number;
  /** The fleet.ts device id (em-000001), used as the device name in the gateway config. */
  readonly name: string;
  readonly kind: DeviceKind;
  /** 16 lower-case hex digits. */
  readonly devEui: string;
  readonly codec: PayloadCodec;
  /** Application port of its readings: one per device kind. */
  readonly fport: number;
  readonly activation: DeviceActivation;
}

const FPORTS: Readonly<Record<DeviceKind, number>> = { 'electricity-meter': 1, 'water-meter': 2, 'parking-sensor': 3, 'street-lamp': 4 };
const LPP_KINDS: ReadonlySet<DeviceKind> = new Set(['electricity-meter', 'parking-sensor']);

function seedBytes(seed: number, index: number, label: string, length: number): Buffer {
  return createHash('sha256').update(`iotgw firmware-sim lorawan|${seed}|${index}|${label}`).digest().subarray(0, length);
}

/** 6 hex digits naming the seed, inside every DevEUI and the JoinEUI: two seeds never share a DevEUI. */
function seedTag(seed: number): string {
  return seedBytes(seed, -1, 'tag', 3).toString('hex');
}

/**
 * The identity of device `index`. DevEUI f1<seed tag><index>; ABP DevAddrs lie in NwkID 0 (NetID 000000, the
 * gateway's default); keys are SHA-256 of (seed, index, name of the key), so they are secrets only as much as
 * the seed is: for tests and benchmarks, never for real devices.
 */
export function deriveIdentity(seed: number, index: number, name: string, kind: DeviceKind, otaa: boolean, codec: FleetCodec): LorawanIdentity {
  const tag = seedTag(seed);
  const devEui = `f1${tag}${index.toString(16).padStart(8, '0')}`;
  const activation: DeviceActivation = otaa
    ? { mode: 'otaa', joinEui: `f1${tag}00000000`, appKey: seedBytes(seed, index, 'app_key', 16) }
    : {
        mode: 'abp',
        devAddr: (seedBytes(seed, index, 'dev_addr', 4).readUInt32BE(0) & 0x01ff_ffff).toString(16).padStart(8, '0'),
        nwkSKey: seedBytes(seed, index, 'nwk_s_key', 16),
        appSKey: seedBytes(seed, index, 'app_s_key', 16),
      };
  const payloadCodec: PayloadCodec = codec === 'mixed' ? (LPP_KINDS.has(kind) ? 'cayenne-lpp' : 'raw') : codec;
  return { index, name, kind, devEui, codec: payloadCodec, fport: FPORTS[kind], activation };
}

// ---- Payloads ---------------------------------------------------------------------------------------------

export interface EncodedReading {
  readonly payload: Buffer;
  /** What the gateway's cayenne-lpp codec must produce (`decoded_payload`); absent for raw devices. */
  readonly decoded?: Record<string, unknown>;
}

/** One Cayenne LPP entry: channel, type (IPSO id - 3200), the integer on the wire, its size and divisor. */
interface LppEntry {
  readonly channel: number;
  readonly type: number;
  readonly key: string;
  readonly wire: number;
  readonly size: number;
  readonly divisor: number;
}

function lpp(entries: readonly LppEntry[]): EncodedReading {
  const payload = Buffer.alloc(entries.reduce((sum, entry) => sum + 2 + entry.size, 0));
  const decoded: Record<string, unknown> = {};
  let offset = 0;
  for (const entry of entries) {
    payload[offset] = entry.channel;
    payload[offset + 1] = entry.type;
    // Signed values go out in two's complement; writeUIntBE takes the unsigned image.
    payload.writeUIntBE(entry.wire < 0 ? entry.wire + 2 ** (8 * entry.size) : entry.wire, offset + 2, entry.size);
    decoded[`${entry.key}_${entry.channel}`] = entry.wire / entry.divisor;
    offset += 2 + entry.size;
  }
  return { payload, decoded };
}

const clamp = (value: number, min: number, max: number): number => Math.min(max, Math.max(min, Math.round(value)));

/**
 * A reading as FRMPayload. Cayenne LPP (big-endian, TTS keys `<type>_<channel>`):
 *   electricity meter  1 energy kWh/1000 (u32) | 2 voltage V/100 (u16) | 3 power W (u16)
 *   water meter        1 generic_sensor litres (u32) | 2 analog_in flow l/min/100 (s16) | 3 digital_in leak
 *   parking sensor     1 presence | 2 percentage battery | 3 temperature °C/10 (s16)
 *   street lamp        1 digital_out on | 2 percentage dim | 3 power W (u16) | 4 digital_in fault
 * Raw (big-endian):
 *   electricity meter  energy Wh u32 | voltage dV u16 | power W u16
 *   water meter        volume l u32 | flow (l/min)/100 u16 | flags u8 (bit 0 leak)
 *   parking sensor     flags u8 (bit 0 occupied) | battery % u8 | temperature °C/10 s16
 *   street lamp        flags u8 (bit 0 on, bit 1 fault) | dim % u8 | power dW u16
 */
export function encodeReading(reading: Reading, codec: PayloadCodec): EncodedReading {
  const e = (channel: number, type: number, key: string, wire: number, size: number, divisor = 1): LppEntry => ({ channel, type, key, wire, size, divisor });
  switch (reading.kind) {
    case 'electricity-meter': {
      const energyWh = clamp(reading.energy_kwh * 1000, 0, 0xffff_ffff);
      const powerW = clamp(reading.power_w, 0, 0xffff);
      if (codec === 'cayenne-lpp') {
        return lpp([
          e(1, 131, 'energy', energyWh, 4, 1000),
          e(2, 116, 'voltage', clamp(reading.voltage_v * 100, 0, 0xffff), 2, 100),
          e(3, 128, 'power', powerW, 2),
        ]);
      }
      const payload = Buffer.alloc(8);
      payload.writeUInt32BE(energyWh, 0);
      payload.writeUInt16BE(clamp(reading.voltage_v * 10, 0, 0xffff), 4);
      payload.writeUInt16BE(powerW, 6);
      return { payload };
    }
    case 'water-meter': {
      const litres = clamp(reading.volume_m3 * 1000, 0, 0xffff_ffff);
      const flow = clamp(reading.flow_lpm * 100, 0, 0x7fff);
      if (codec === 'cayenne-lpp') {
        return lpp([e(1, 100, 'generic_sensor', litres, 4), e(2, 2, 'analog_in', flow, 2, 100), e(3, 0, 'digital_in', reading.leak ? 1 : 0, 1)]);
      }
      const payload = Buffer.alloc(7);
      payload.writeUInt32BE(litres, 0);
      payload.writeUInt16BE(flow, 4);
      payload[6] = reading.leak ? 1 : 0;
      return { payload };
    }
    case 'parking-sensor': {
      const battery = clamp(reading.battery_pct, 0, 100);
      const temperature = clamp(reading.temperature_c * 10, -0x8000, 0x7fff);
      if (codec === 'cayenne-lpp') {
        return lpp([e(1, 102, 'presence', reading.occupied ? 1 : 0, 1), e(2, 120, 'percentage', battery, 1), e(3, 103, 'temperature', temperature, 2, 10)]);
      }
      const payload = Buffer.alloc(4);
      payload[0] = reading.occupied ? 1 : 0;
      payload[1] = battery;
      payload.writeInt16BE(temperature, 2);
      return { payload };
    }
    case 'street-lamp': {
      if (codec === 'cayenne-lpp') {
        return lpp([
          e(1, 1, 'digital_out', reading.on ? 1 : 0, 1),
          e(2, 120, 'percentage', clamp(reading.dim_pct, 0, 100), 1),
          e(3, 128, 'power', clamp(reading.power_w, 0, 0xffff), 2),
          e(4, 0, 'digital_in', reading.fault ? 1 : 0, 1),
        ]);
      }
      const payload = Buffer.alloc(4);
      payload[0] = (reading.on ? 1 : 0) | (reading.fault ? 2 : 0);
      payload[1] = clamp(reading.dim_pct, 0, 100);
      payload.writeUInt16BE(clamp(reading.power_w * 10, 0, 0xffff), 2);
      return { payload };
    }
  }
}

// ---- The device -------------------------------------------------------------------------------------------

/** The session a device holds: ABP from its identity, OTAA from its last join-accept. */
export interface DeviceSession {
  readonly devAddr: string;
  readonly nwkSKey: Buffer;
  readonly appSKey: Buffer;
  /** The FCntUp the next new uplink uses (full 32 bits). */
  readonly fcntUp: number;
  /** The lowest FCntDown a downlink may carry: one past the last one accepted. */
  readonly fcntDownNext: number;
}

/** A frame the device sent with a valid MIC, kept for replays (also across runs, in the state file). */
export interface RecentFrame {
  readonly fcnt: number;
  readonly phyHex: string;
  /** Wall clock when it was last sent and acknowledged by a forwarder's PUSH_ACK (so surely heard), ms since epoch. */
  sentAtMs: number;
}

/** What a state file keeps per device (JSON, snake_case like the gateway's own state). */
export interface SavedDeviceState {
  readonly dev_eui: string;
  readonly session: {
    readonly dev_addr: string;
    readonly nwk_s_key: string;
    readonly app_s_key: string;
    readonly f_cnt_up: number;
    readonly f_cnt_down_next: number;
  } | null;
  /** DevNonces already sent: the gateway refuses a join-request that reuses one (LoRaWAN 1.0.x §6.2.4). */
  readonly dev_nonces: readonly number[];
  readonly recent_frames: readonly RecentFrame[];
}

export interface BuiltUplink {
  readonly phy: Buffer;
  readonly fcnt: number;
}

export interface ReceivedDownlink {
  readonly ack: boolean;
  readonly fcntDown: number;
  readonly fport: number | null;
}

export interface SimLorawanDevice {
  readonly identity: LorawanIdentity;
  session(): DeviceSession | null;
  /** Starts an OTAA join: a join-request with a DevNonce this device never sent before. */
  joinRequest(): { readonly phy: Buffer; readonly devNonce: number };
  /**
   * Offers a join-accept heard in the join windows: decrypted with the AppKey, MIC checked, keys derived with
   * the DevNonce of the pending request. True when it was this device's and the new session is in place.
   */
  acceptJoin(phy: Uint8Array): boolean;
  /** A new data uplink: FCntUp moves on, the frame is kept for replays. Throws without a session. */
  uplink(payload: Uint8Array, fport: number, confirmed: boolean): BuiltUplink;
  /** A new uplink whose MIC has one byte flipped, as if the frame were forged: it still uses up an FCntUp. */
  corruptUplink(payload: Uint8Array, fport: number): BuiltUplink;
  /**
   * A frame of this session the gateway has already moved past (not the latest one), sent at or before
   * `sentBeforeMs`, or null. A replay must come after the gateway's dedup window, or it is just one more
   * reception of the original.
   */
  replayCandidate(random: () => number, sentBeforeMs: number): RecentFrame | null;
  /**
   * The frame with this FCnt was just pushed (again): a replay of it must wait a dedup window from now. On a
   * loaded machine the gateway may read a datagram long after it was sent, and a replay read within the
   * window of its original is one more reception of it, not a replay.
   */
  markSent(fcnt: number): void;
  /** A downlink addressed to this device's DevAddr with a valid MIC, or null (someone else's, or forged). */
  receiveDownlink(phy: Uint8Array): ReceivedDownlink | null;
  snapshot(): SavedDeviceState;
}

const RECENT_FRAMES = 8;
const MAX_SAVED_DEV_NONCES = 1024;

export function createSimLorawanDevice(identity: LorawanIdentity, saved?: SavedDeviceState): SimLorawanDevice {
  const { activation } = identity;
  const usedDevNonces = new Set<number>(saved?.dev_nonces ?? []);
  let recent: RecentFrame[] = [...(saved?.recent_frames ?? [])];
  let pendingDevNonce: number | null = null;
  let session: DeviceSession | null = null;

  const savedSession = saved?.dev_eui === identity.devEui ? saved.session : null;
  if (activation.mode === 'abp') {
    // A saved ABP session counts only while its address and keys are still the identity's.
    const same =
      savedSession !== null &&
      savedSession.dev_addr === activation.devAddr &&
      savedSession.nwk_s_key === activation.nwkSKey.toString('hex') &&
      savedSession.app_s_key === activation.appSKey.toString('hex');
    session = {
      devAddr: activation.devAddr,
      nwkSKey: activation.nwkSKey,
      appSKey: activation.appSKey,
      fcntUp: same ? savedSession.f_cnt_up : 0,
      fcntDownNext: same ? savedSession.f_cnt_down_next : 0,
    };
    if (!same) recent = [];
  } else if (savedSession !== null) {
    session = {
      devAddr: savedSession.dev_addr,
      nwkSKey: Buffer.from(savedSession.nwk_s_key, 'hex'),
      appSKey: Buffer.from(savedSession.app_s_key, 'hex'),
      fcntUp: savedSession.f_cnt_up,
      fcntDownNext: savedSession.f_cnt_down_next,
    };
  }

  function requireSession(): DeviceSession {
    if (session === null) throw new Error(`device ${identity.name} has no session: an OTAA device must join first`);
    return session;
  }

  function build(payload: Uint8Array, fport: number, confirmed: boolean): BuiltUplink {
    const current = requireSession();
    const fcnt = current.fcntUp;
    const phy = encodeDataFrame({
      mtype: confirmed ? 'ConfirmedDataUp' : 'UnconfirmedDataUp',
      devAddr: current.devAddr,
      fcnt32: fcnt,
      fport,
      payload,
      nwkSKey: current.nwkSKey,
      appSKey: current.appSKey,
    });
    session = { ...current, fcntUp: (fcnt + 1) % 2 ** 32 };
    return { phy, fcnt };
  }

  return {
    identity,
    session: () => session,

    joinRequest() {
      if (activation.mode !== 'otaa') throw new Error(`device ${identity.name} is ABP: it does not join`);
      if (usedDevNonces.size >= 0x10000) throw new Error(`device ${identity.name} has used every DevNonce`);
      let devNonce = randomInt(0x10000);
      while (usedDevNonces.has(devNonce)) devNonce = randomInt(0x10000);
      usedDevNonces.add(devNonce);
      pendingDevNonce = devNonce;
      return { phy: encodeJoinRequest({ appKey: activation.appKey, joinEui: activation.joinEui, devEui: identity.devEui, devNonce }), devNonce };
    },

    acceptJoin(phy) {
      if (activation.mode !== 'otaa' || pendingDevNonce === null) return false;
      const accept = decodeJoinAccept(activation.appKey, phy);
      if (!accept.ok) return false;
      const keys = deriveSessionKeys(activation.appKey, accept.joinNonce, accept.netId, pendingDevNonce);
      pendingDevNonce = null;
      // A new session starts both counters at 0 (§6.2.5) and makes every earlier frame meaningless.
      session = { devAddr: accept.devAddr, nwkSKey: keys.nwkSKey, appSKey: keys.appSKey, fcntUp: 0, fcntDownNext: 0 };
      recent = [];
      return true;
    },

    uplink(payload, fport, confirmed) {
      const built = build(payload, fport, confirmed);
      recent.push({ fcnt: built.fcnt, phyHex: built.phy.toString('hex'), sentAtMs: Date.now() });
      if (recent.length > RECENT_FRAMES) recent.shift();
      return built;
    },

    corruptUplink(payload, fport) {
      const built = build(payload, fport, false);
      const phy = Buffer.from(built.phy);
      const micByte = phy.length - 1 - randomInt(4);
      phy[micByte] = (phy[micByte] ?? 0) ^ (1 << randomInt(8));
      return { phy, fcnt: built.fcnt };
    },

    markSent(fcnt) {
      for (const frame of recent) if (frame.fcnt === fcnt) frame.sentAtMs = Date.now();
    },

    replayCandidate(random, sentBeforeMs) {
      // The latest frame would be a retransmission to the gateway, not a replay.
      const candidates = recent.slice(0, -1).filter((frame) => (frame.sentAtMs ?? 0) <= sentBeforeMs);
      if (candidates.length === 0) return null;
      return candidates[Math.floor(random() * candidates.length)] ?? null;
    },

    receiveDownlink(phy) {
      const current = session;
      if (current === null) return null;
      const parsed = parsePhyPayload(phy);
      if (!parsed.ok || parsed.frame.kind !== 'data' || parsed.frame.direction !== 'down') return null;
      const frame = parsed.frame;
      if (frame.devAddr !== current.devAddr) return null;
      const fcntDown = fullFrameCounter(current.fcntDownNext, frame.fcnt16);
      if (!verifyDataFrameMic(current.nwkSKey, 'down', frame.devAddr, fcntDown, frame.micInput, frame.mic)) return null;
      session = { ...current, fcntDownNext: (fcntDown + 1) % 2 ** 32 };
      return { ack: frame.fctrl.ack, fcntDown, fport: frame.fport };
    },

    snapshot() {
      return {
        dev_eui: identity.devEui,
        session:
          session === null
            ? null
            : {
                dev_addr: session.devAddr,
                nwk_s_key: session.nwkSKey.toString('hex'),
                app_s_key: session.appSKey.toString('hex'),
                f_cnt_up: session.fcntUp,
                f_cnt_down_next: session.fcntDownNext,
              },
        dev_nonces: [...usedDevNonces].slice(-MAX_SAVED_DEV_NONCES),
        recent_frames: [...recent],
      };
    },
  };
}
