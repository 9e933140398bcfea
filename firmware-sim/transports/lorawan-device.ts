// A simulated LoRaWAN 1.0.x Class-A end device with real crypto, built on the gateway's own frame layer
// (src/ingress/lorawan): ABP, or OTAA with a join-request (random DevNonce) whose join-accept is decrypted
// and turned into session keys; data uplinks with the full 32-bit FCntUp in MIC and keystream; the ACK of a
// confirmed uplink checked like a radio would (MIC with the NwkSKey, FCtrl.ACK); a downlink's FRMPayload
// decrypted (a command, for firmware/lorawan-firmware.ts to act on) and a confirmed downlink acknowledged by
// FCtrl.ACK in the next uplink (§4.3.1.2, the firmware sets it). A join-accept also tells the device its
// receive windows (DLSettings, RxDelay) and, in its CFList, the channels to use (deviceUplinkChannels). Uplinks
// carry the FCtrl ADR bits and MAC commands the device's MAC layer (firmware/lorawan-mac.ts) gives them, and a
// downlink's FOpts come back with it. No I/O here: lorawan-air.ts carries the frames through simulated packet
// forwarders. Also derives the devices' keys from the seed; their FRMPayloads come from reading-payload.ts.
import { createHash, randomInt } from 'node:crypto';
import { fullFrameCounter } from '../../src/ingress/lorawan/frame-counter.ts';
import {
  cryptFrmPayload,
  decodeJoinAccept,
  deriveSessionKeys,
  encodeDataFrame,
  encodeJoinRequest,
  frmPayloadKey,
  verifyDataFrameMic,
} from '../../src/ingress/lorawan/frame-crypto.ts';
import { parsePhyPayload } from '../../src/ingress/lorawan/phy-payload.ts';
import type { Region, UplinkChannel } from '../../src/ingress/lorawan/region.ts';
import { decodeCfList } from '../../src/ingress/lorawan/regions/cf-list.ts';
import type { PersistedDeviceMac } from '../firmware/lorawan-mac.ts';
import type { DeviceKind } from '../fleet.ts';
import type { PayloadCodec } from '../reading-payload.ts';

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

/** The FPort of each kind's readings (also what the TTS stand-in's model devices use). */
export const READING_FPORTS: Readonly<Record<DeviceKind, number>> = { 'electricity-meter': 1, 'water-meter': 2, 'parking-sensor': 3, 'street-lamp': 4 };
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
  return { index, name, kind, devEui, codec: payloadCodec, fport: READING_FPORTS[kind], activation };
}

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

/** What the last join-accept told the device (LoRaWAN 1.0.2 §6.2.5): its receive windows and the CFList, if any. */
export interface JoinSettings {
  readonly rx1DrOffset: number;
  readonly rx2DataRate: number;
  /** Seconds from the end of an uplink to RX1 (RxDelay, where 0 also means 1). */
  readonly rx1DelayS: number;
  readonly cfList: Buffer | null;
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
    /** OTAA: what the join-accept said; absent in files written before regions. */
    readonly join?: { readonly rx1_dr_offset: number; readonly rx2_data_rate: number; readonly rx1_delay_s: number; readonly cf_list: string | null };
    /** The session's MAC state (data rate, TX power, channels, receive settings); absent in files written before MAC commands. */
    readonly mac?: PersistedDeviceMac;
  } | null;
  /** DevNonces already sent: the gateway refuses a join-request that reuses one (LoRaWAN 1.0.x §6.2.4). */
  readonly dev_nonces: readonly number[];
  readonly recent_frames: readonly RecentFrame[];
}

export interface BuiltUplink {
  readonly phy: Buffer;
  readonly fcnt: number;
}

/** FCtrl bits and MAC commands of an uplink (LoRaWAN 1.0.x §4.3.1). */
export interface UplinkFrameOptions {
  readonly adr?: boolean;
  readonly adrAckReq?: boolean;
  /** MAC commands in clear, at most 15 bytes; never with FPort 0. */
  readonly fopts?: Uint8Array;
}

export interface ReceivedDownlink {
  readonly ack: boolean;
  /** ConfirmedDataDown: the device must set FCtrl.ACK in its next uplink (§4.3.1.2). */
  readonly confirmed: boolean;
  readonly fcntDown: number;
  readonly fport: number | null;
  /** MAC commands in FOpts (in clear in 1.0.x); absent when the frame has none. */
  readonly fopts?: Buffer;
  /** FRMPayload decrypted (AppSKey for FPort 1..255, NwkSKey for MAC commands on FPort 0); empty without one. */
  readonly payload: Buffer;
}

export interface SimLorawanDevice {
  readonly identity: LorawanIdentity;
  session(): DeviceSession | null;
  /** What the join-accept of the current session said; null for ABP and before the first join. */
  joinSettings(): JoinSettings | null;
  /** The MAC state the state file kept for the session the device started with; null when there is none. */
  savedMac(): PersistedDeviceMac | null;
  /** Starts an OTAA join: a join-request with a DevNonce this device never sent before. */
  joinRequest(): { readonly phy: Buffer; readonly devNonce: number };
  /**
   * Offers a join-accept heard in the join windows: decrypted with the AppKey, MIC checked, keys derived with
   * the DevNonce of the pending request. True when it was this device's and the new session is in place.
   */
  acceptJoin(phy: Uint8Array): boolean;
  /**
   * A new data uplink: FCntUp moves on, the frame is kept for replays. Throws without a session. `ack` sets
   * FCtrl.ACK, the acknowledgement of a confirmed downlink received since the last uplink (§4.3.1.2). FPort null:
   * no FRMPayload (MAC commands in FOpts only); FPort 0: `payload` is MAC commands, encrypted with the NwkSKey.
   */
  uplink(payload: Uint8Array, fport: number | null, confirmed: boolean, ack?: boolean, frame?: UplinkFrameOptions): BuiltUplink;
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
  /** The state to keep, with the session's MAC state when given. */
  snapshot(mac?: PersistedDeviceMac): SavedDeviceState;
}

const RECENT_FRAMES = 8;
const MAX_SAVED_DEV_NONCES = 1024;

export function createSimLorawanDevice(identity: LorawanIdentity, saved?: SavedDeviceState): SimLorawanDevice {
  const { activation } = identity;
  const usedDevNonces = new Set<number>(saved?.dev_nonces ?? []);
  const restored = restoreSession(identity, saved);
  let session = restored.session;
  let joined = restored.joinSettings;
  let savedMac = restored.mac;
  let recent: RecentFrame[] = restored.keepsRecentFrames ? [...(saved?.recent_frames ?? [])] : [];
  let pendingDevNonce: number | null = null;

  function build(payload: Uint8Array, fport: number | null, confirmed: boolean, ack = false, frame: UplinkFrameOptions = {}): BuiltUplink {
    if (session === null) throw new Error(`device ${identity.name} has no session: an OTAA device must join first`);
    const built = encodeUplink(session, payload, fport, confirmed, ack, frame);
    session = { ...session, fcntUp: (built.fcnt + 1) % 2 ** 32 };
    return built;
  }

  return {
    identity,
    session: () => session,
    joinSettings: () => joined,
    savedMac: () => savedMac,
    joinRequest() {
      if (activation.mode !== 'otaa') throw new Error(`device ${identity.name} is ABP: it does not join`);
      const devNonce = newDevNonce(identity, usedDevNonces);
      pendingDevNonce = devNonce;
      return { phy: encodeJoinRequest({ appKey: activation.appKey, joinEui: activation.joinEui, devEui: identity.devEui, devNonce }), devNonce };
    },
    acceptJoin(phy) {
      if (activation.mode !== 'otaa' || pendingDevNonce === null) return false;
      const accepted = sessionFromJoinAccept(activation.appKey, phy, pendingDevNonce);
      if (accepted === null) return false;
      pendingDevNonce = null;
      // A new session makes every earlier frame meaningless.
      session = accepted.session;
      joined = accepted.settings;
      savedMac = null;
      recent = [];
      return true;
    },
    uplink(payload, fport, confirmed, ack, frame) {
      const built = build(payload, fport, confirmed, ack, frame);
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
      const received = session === null ? null : decodeDownlink(session, phy);
      if (received === null) return null;
      session = received.session;
      return received.downlink;
    },
    snapshot: (mac) => snapshotOf(identity, session, joined, usedDevNonces, recent, mac),
  };
}

/**
 * The session a device starts with: ABP from its identity (counters from `saved` while its address and keys
 * are still the identity's), OTAA the saved one, if any. Recent frames only count within the same session.
 */
function restoreSession(
  identity: LorawanIdentity,
  saved: SavedDeviceState | undefined,
): { session: DeviceSession | null; joinSettings: JoinSettings | null; keepsRecentFrames: boolean; mac: PersistedDeviceMac | null } {
  const { activation } = identity;
  const savedSession = saved?.dev_eui === identity.devEui ? saved.session : null;
  if (activation.mode === 'abp') {
    const same =
      savedSession !== null &&
      savedSession.dev_addr === activation.devAddr &&
      savedSession.nwk_s_key === activation.nwkSKey.toString('hex') &&
      savedSession.app_s_key === activation.appSKey.toString('hex');
    const { devAddr, nwkSKey, appSKey } = activation;
    const counters = same ? { fcntUp: savedSession.f_cnt_up, fcntDownNext: savedSession.f_cnt_down_next } : { fcntUp: 0, fcntDownNext: 0 };
    return { session: { devAddr, nwkSKey, appSKey, ...counters }, joinSettings: null, keepsRecentFrames: same, mac: same ? (savedSession.mac ?? null) : null };
  }
  if (savedSession === null) return { session: null, joinSettings: null, keepsRecentFrames: true, mac: null };
  const session: DeviceSession = {
    devAddr: savedSession.dev_addr,
    nwkSKey: Buffer.from(savedSession.nwk_s_key, 'hex'),
    appSKey: Buffer.from(savedSession.app_s_key, 'hex'),
    fcntUp: savedSession.f_cnt_up,
    fcntDownNext: savedSession.f_cnt_down_next,
  };
  const join = savedSession.join;
  const joinSettings: JoinSettings | null =
    join === undefined
      ? null
      : {
          rx1DrOffset: join.rx1_dr_offset,
          rx2DataRate: join.rx2_data_rate,
          rx1DelayS: join.rx1_delay_s,
          cfList: join.cf_list === null ? null : Buffer.from(join.cf_list, 'hex'),
        };
  return { session, joinSettings, keepsRecentFrames: true, mac: savedSession.mac ?? null };
}

/** A DevNonce this device never sent before: the gateway refuses a reused one (LoRaWAN 1.0.x §6.2.4). */
function newDevNonce(identity: LorawanIdentity, used: Set<number>): number {
  if (used.size >= 0x10000) throw new Error(`device ${identity.name} has used every DevNonce`);
  let devNonce = randomInt(0x10000);
  while (used.has(devNonce)) devNonce = randomInt(0x10000);
  used.add(devNonce);
  return devNonce;
}

/** The session (and receive settings) a join-accept for this device's pending DevNonce gives, or null if it is not one. */
function sessionFromJoinAccept(appKey: Buffer, phy: Uint8Array, devNonce: number): { session: DeviceSession; settings: JoinSettings } | null {
  const accept = decodeJoinAccept(appKey, phy);
  if (!accept.ok) return null;
  const keys = deriveSessionKeys(appKey, accept.joinNonce, accept.netId, devNonce);
  return {
    // A new session starts both counters at 0 (§6.2.5).
    session: { devAddr: accept.devAddr, nwkSKey: keys.nwkSKey, appSKey: keys.appSKey, fcntUp: 0, fcntDownNext: 0 },
    // RxDelay 0 means 1 s (§5.7).
    settings: { rx1DrOffset: accept.rx1DrOffset, rx2DataRate: accept.rx2DataRate, rx1DelayS: Math.max(1, accept.rxDelay), cfList: accept.cfList },
  };
}

/**
 * The channels a device transmits on in `region`: an ABP device is provisioned with the whole plan; an OTAA
 * device knows the region's default channels (for US915/AU915 the sub-band it was set up for) until a
 * join-accept's CFList adds up to five channels after them (type 0) or sets the channel mask (type 1).
 */
export function deviceUplinkChannels(region: Region, activation: DeviceActivation['mode'], join: JoinSettings | null): readonly UplinkChannel[] {
  if (activation === 'abp') return region.uplinkChannels;
  const defaults = region.defaultUplinkChannels;
  const decoded = join === null || join.cfList === null ? null : decodeCfList(join.cfList);
  if (decoded === null || !decoded.ok) return defaults;
  const { cfList } = decoded;
  if (cfList.type === 1) {
    const masked = cfList.channelIndices.map((index) => region.uplinkChannel(index)).filter((channel): channel is UplinkChannel => channel !== null);
    return masked.length > 0 ? masked : defaults;
  }
  // The slots follow the default channels, each usable at the default channels' data rates (RP002-1.0.3 §2.4.4).
  const template = defaults[0];
  if (template === undefined) return defaults;
  const added = cfList.frequenciesHz.flatMap((frequencyHz, slot) =>
    frequencyHz === 0 ? [] : [{ index: defaults.length + slot, frequencyHz, minDataRate: template.minDataRate, maxDataRate: template.maxDataRate }],
  );
  return [...defaults, ...added];
}

function encodeUplink(
  session: DeviceSession,
  payload: Uint8Array,
  fport: number | null,
  confirmed: boolean,
  ack: boolean,
  frame: UplinkFrameOptions,
): BuiltUplink {
  const fcnt = session.fcntUp;
  const phy = encodeDataFrame({
    mtype: confirmed ? 'ConfirmedDataUp' : 'UnconfirmedDataUp',
    devAddr: session.devAddr,
    fcnt32: fcnt,
    ack,
    adr: frame.adr === true,
    adrAckReq: frame.adrAckReq === true,
    ...(frame.fopts === undefined || frame.fopts.length === 0 ? {} : { fopts: frame.fopts }),
    fport,
    payload,
    nwkSKey: session.nwkSKey,
    appSKey: session.appSKey,
  });
  return { phy, fcnt };
}

/**
 * A downlink for this session (its DevAddr, a valid MIC), its FRMPayload decrypted, and the session with
 * FCntDown moved past it; else null.
 */
export function decodeDownlink(session: DeviceSession, phy: Uint8Array): { downlink: ReceivedDownlink; session: DeviceSession } | null {
  const parsed = parsePhyPayload(phy);
  if (!parsed.ok || parsed.frame.kind !== 'data' || parsed.frame.direction !== 'down') return null;
  const frame = parsed.frame;
  if (frame.devAddr !== session.devAddr) return null;
  const fcntDown = fullFrameCounter(session.fcntDownNext, frame.fcnt16);
  // The last FCntDown again is a copy of a frame already taken (or a replay): not processed twice (§4.3.1.5).
  if (session.fcntDownNext > 0 && fcntDown === session.fcntDownNext - 1) return null;
  if (!verifyDataFrameMic(session.nwkSKey, 'down', frame.devAddr, fcntDown, frame.micInput, frame.mic)) return null;
  const payload =
    frame.fport === null ? Buffer.alloc(0) : cryptFrmPayload(frmPayloadKey(frame.fport, session), 'down', frame.devAddr, fcntDown, frame.frmPayload);
  return {
    downlink: {
      ack: frame.fctrl.ack,
      confirmed: frame.confirmed,
      fcntDown,
      fport: frame.fport,
      ...(frame.fopts.length === 0 ? {} : { fopts: Buffer.from(frame.fopts) }),
      payload,
    },
    session: { ...session, fcntDownNext: (fcntDown + 1) % 2 ** 32 },
  };
}

function snapshotOf(
  identity: LorawanIdentity,
  session: DeviceSession | null,
  join: JoinSettings | null,
  usedDevNonces: ReadonlySet<number>,
  recent: readonly RecentFrame[],
  mac: PersistedDeviceMac | undefined,
): SavedDeviceState {
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
            ...(join === null
              ? {}
              : {
                  join: {
                    rx1_dr_offset: join.rx1DrOffset,
                    rx2_data_rate: join.rx2DataRate,
                    rx1_delay_s: join.rx1DelayS,
                    cf_list: join.cfList === null ? null : join.cfList.toString('hex'),
                  },
                }),
            ...(mac === undefined ? {} : { mac }),
          },
    dev_nonces: [...usedDevNonces].slice(-MAX_SAVED_DEV_NONCES),
    recent_frames: [...recent],
  };
}
