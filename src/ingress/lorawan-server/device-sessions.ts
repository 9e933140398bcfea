// The devices this gateway serves and their live LoRaWAN sessions: who may send (config), with which keys
// (ABP keys from config, OTAA keys from the last join) and where each frame counter stands. The state that
// must survive a restart (sessions, counters, used DevNonces) is serialized into StateWrites that are
// committed in the same transaction as the records they let through (see buffer/record-store.ts), so after
// kill -9 a counter never stands behind a record that is already in the buffer.
import { createHash } from 'node:crypto';
import type { StateWrite } from '../../buffer/record-buffer.ts';
import type { Logger } from '../../core/log.ts';
import type { PayloadCodec } from '../../codecs/payload-codec.ts';
import type { RxSettings } from './class-a-downlink.ts';
import { type MacState, persistMacState } from './mac-layer.ts';

export interface LorawanDeviceProfile {
  /** 16 lower-case hex digits: the record key. */
  readonly devEui: string;
  /** end_device_ids.device_id in records. */
  readonly name: string;
  readonly codec: PayloadCodec;
  /** ABP without non-volatile counters: a counter back at the start of the count is a reboot, not a replay. */
  readonly resetsFCnt?: boolean;
  /**
   * ABP: the last FCntUp the device is known to have used. Read only while no counter is stored: the counter
   * search starts at its upper 16 bits, and a first frame at or below it is a replay.
   */
  readonly fCntUpHint?: number;
  /** The LoRaWAN version the device implements: 1.0.4 counts DevNonces up (§6.2.4), older versions pick them at random. Default 1.0.3. */
  readonly macVersion?: MacVersion;
  /** ABP: the receive windows the device uses now, where not the region's defaults (lorawan.devices[].rx_windows). */
  readonly rxWindows?: Partial<RxSettings>;
  /** Network ADR for this device when lorawan.adr.enabled (and the device sets the ADR bit). Default true. */
  readonly adr?: boolean;
  /** LoRaWAN class; C listens on RX2 whenever it is not sending. Default A. */
  readonly deviceClass?: 'A' | 'C';
  readonly activation: AbpActivation | OtaaActivation;
}

export type MacVersion = '1.0.2' | '1.0.3' | '1.0.4';

export interface AbpActivation {
  readonly mode: 'abp';
  readonly devAddr: string;
  readonly nwkSKey: Buffer;
  readonly appSKey: Buffer;
}

export interface OtaaActivation {
  readonly mode: 'otaa';
  readonly joinEui: string;
  readonly appKey: Buffer;
}

export interface Session {
  /** 8 lower-case hex digits, display order. */
  readonly devAddr: string;
  readonly nwkSKey: Buffer;
  readonly appSKey: Buffer;
  /** Identifies the session (ABP key fingerprint or the join's nonces): records carry it so a consumer sees re-joins. */
  readonly id: string;
  /** The next expected full 32-bit FCntUp; null until the session's first uplink. */
  fcntUpNext: number | null;
  /** The next FCntDown to use for a downlink (ACK). */
  fcntDown: number;
  /** The last accepted uplink's counter and its commit: a retransmission is stored again only if that commit failed. */
  lastUplink: { readonly fcnt: number; commit: 'pending' | 'committed' | 'failed' } | null;
  /** The MAC layer's state (mac-layer.ts), made at the session's first uplink from `savedMac`; null until then. */
  mac?: MacState | null;
  /** The MAC state as committed, until `mac` is made from it. */
  savedMac?: unknown;
}

export interface LorawanDevice {
  /** Replaced by a reload (SIGHUP); the session and nonces stay with the device object. */
  profile: LorawanDeviceProfile;
  session: Session | null;
  /** DevNonces of past join-requests (LoRaWAN 1.0: the server must not accept one twice), newest last. */
  usedDevNonces: number[];
  /** The last JoinNonce (AppNonce) sent; each join-accept uses the next one. */
  lastJoinNonce: number;
}

/** How many past DevNonces are kept per device: a 1.0.x device picks them at random from 65,536. */
const MAX_DEV_NONCES = 2048;
export const STATE_SCOPE = 'lorawan.device';

/** A device's committed state (scope STATE_SCOPE, key DevEUI) as JSON: what survives a restart. */
export interface PersistedDevice {
  readonly v: 1;
  readonly session: {
    readonly dev_addr: string;
    /** Present for OTAA sessions only; ABP keys stay in the config. */
    readonly nwk_s_key?: string;
    readonly app_s_key?: string;
    readonly id: string;
    readonly f_cnt_up_next: number | null;
    readonly f_cnt_down: number;
    /** The MAC state (TX power, NbTrans, channels, ADR history); absent in state written before it existed. */
    readonly mac?: unknown;
  } | null;
  readonly dev_nonces: readonly number[];
  readonly join_nonce: number;
}

export interface DeviceSessions {
  byDevEui(devEui: string): LorawanDevice | undefined;
  /** Devices whose current session uses this DevAddr (several may share one; the MIC tells them apart). */
  byDevAddr(devAddr: string): readonly LorawanDevice[];
  /** Replaces a device's session (after a join) and re-indexes its DevAddr. */
  activate(device: LorawanDevice, session: Session): void;
  /** A DevAddr no current session uses, inside the NetID's address block. */
  allocateDevAddr(netId: string): string;
  /** The device's persistent state, for the commit that changes it. */
  stateWrite(device: LorawanDevice): StateWrite;
  /**
   * A reload: the devices are now `profiles`. Kept devices keep their live session and counters (an ABP device
   * whose DevAddr or keys changed starts a new session, as at a start); added ones load their committed state
   * from `persisted`; removed ones are forgotten here (their committed state stays in the buffer file).
   */
  replaceProfiles(profiles: readonly LorawanDeviceProfile[], persisted: ReadonlyMap<string, string>): DeviceChanges;
  readonly size: number;
  /** Every device, in no particular order (for status figures). */
  all(): IterableIterator<LorawanDevice>;
}

/** What a reload changed, by DevEUI. */
export interface DeviceChanges {
  readonly added: readonly string[];
  readonly removed: readonly string[];
  /** Any setting changed: name, codec, class, keys, hints. */
  readonly changed: readonly string[];
}

/** ABP sessions are identified by their keys, so changing a device's keys in the config restarts its counters. */
function abpSessionId(activation: AbpActivation): string {
  const digest = createHash('sha256').update(activation.devAddr).update(activation.nwkSKey).update(activation.appSKey).digest('hex');
  return `abp-${digest.slice(0, 12)}`;
}

export function createDeviceSessions(
  profiles: readonly LorawanDeviceProfile[],
  persisted: ReadonlyMap<string, string>,
  deps: { readonly log: Logger },
): DeviceSessions {
  const byEui = new Map<string, LorawanDevice>();
  const byAddr = new Map<string, LorawanDevice[]>();

  function index(device: LorawanDevice): void {
    if (device.session === null) return;
    const list = byAddr.get(device.session.devAddr) ?? [];
    list.push(device);
    byAddr.set(device.session.devAddr, list);
  }

  function unindex(device: LorawanDevice): void {
    if (device.session === null) return;
    const list = byAddr.get(device.session.devAddr)?.filter((candidate) => candidate !== device) ?? [];
    if (list.length === 0) byAddr.delete(device.session.devAddr);
    else byAddr.set(device.session.devAddr, list);
  }

  /** A device as a start finds it: its committed state, an ABP session from the config's keys. */
  function loadDevice(profile: LorawanDeviceProfile, persisted: ReadonlyMap<string, string>): LorawanDevice {
    const saved = parsePersisted(persisted.get(profile.devEui), profile.devEui, deps.log);
    const device: LorawanDevice = {
      profile,
      session: null,
      usedDevNonces: [...(saved?.dev_nonces ?? [])],
      lastJoinNonce: saved?.join_nonce ?? 0,
    };
    const { activation } = profile;
    if (activation.mode === 'abp') {
      device.session = abpSession(activation, saved, profile.devEui);
    } else if (saved?.session?.nwk_s_key !== undefined && saved.session.app_s_key !== undefined) {
      device.session = {
        devAddr: saved.session.dev_addr,
        nwkSKey: Buffer.from(saved.session.nwk_s_key, 'hex'),
        appSKey: Buffer.from(saved.session.app_s_key, 'hex'),
        id: saved.session.id,
        fcntUpNext: saved.session.f_cnt_up_next,
        fcntDown: saved.session.f_cnt_down,
        lastUplink: null,
        ...(saved.session.mac === undefined ? {} : { savedMac: saved.session.mac }),
      };
    }
    return device;
  }

  /** The ABP session of the config's keys, with the committed counters when they belong to the same keys. */
  function abpSession(activation: AbpActivation, saved: PersistedDevice | null, devEui: string): Session {
    const id = abpSessionId(activation);
    const counters = saved?.session?.id === id ? saved.session : null;
    if (saved?.session != null && counters === null) {
      deps.log.warn({ devEui }, 'LoRaWAN ABP device: keys or DevAddr changed in the config, its frame counters start over');
    }
    return {
      devAddr: activation.devAddr,
      nwkSKey: activation.nwkSKey,
      appSKey: activation.appSKey,
      id,
      fcntUpNext: counters?.f_cnt_up_next ?? null,
      fcntDown: counters?.f_cnt_down ?? 0,
      lastUplink: null,
      ...(counters?.mac === undefined ? {} : { savedMac: counters.mac }),
    };
  }

  for (const profile of profiles) {
    const device = loadDevice(profile, persisted);
    byEui.set(profile.devEui, device);
    index(device);
  }

  return {
    byDevEui: (devEui) => byEui.get(devEui),
    byDevAddr: (devAddr) => byAddr.get(devAddr) ?? [],
    activate(device, session) {
      unindex(device);
      device.session = session;
      index(device);
    },
    allocateDevAddr(netId) {
      // NwkID = the 7 low bits of the NetID, in the 7 high bits of the DevAddr (LoRaWAN 1.0.2 §6.1.1).
      const nwkId = Number.parseInt(netId, 16) & 0x7f;
      for (;;) {
        const nwkAddr = Math.floor(Math.random() * 0x2000000);
        const devAddr = ((nwkId * 0x2000000 + nwkAddr) >>> 0).toString(16).padStart(8, '0');
        if (!byAddr.has(devAddr)) return devAddr;
      }
    },
    stateWrite(device) {
      const { session } = device;
      const isOtaa = device.profile.activation.mode === 'otaa';
      const value: PersistedDevice = {
        v: 1,
        session:
          session === null
            ? null
            : {
                dev_addr: session.devAddr,
                ...(isOtaa ? { nwk_s_key: session.nwkSKey.toString('hex'), app_s_key: session.appSKey.toString('hex') } : {}),
                id: session.id,
                f_cnt_up_next: session.fcntUpNext,
                f_cnt_down: session.fcntDown,
                ...macField(session),
              },
        dev_nonces: device.usedDevNonces.slice(-MAX_DEV_NONCES),
        join_nonce: device.lastJoinNonce,
      };
      return { scope: STATE_SCOPE, key: device.profile.devEui, value: JSON.stringify(value) };
    },
    replaceProfiles(next, persisted) {
      const wanted = new Map(next.map((profile) => [profile.devEui, profile] as const));
      const added: string[] = [];
      const removed: string[] = [];
      const changed: string[] = [];
      for (const [devEui, device] of byEui) {
        if (wanted.has(devEui)) continue;
        unindex(device);
        byEui.delete(devEui);
        removed.push(devEui);
      }
      for (const profile of next) {
        const device = byEui.get(profile.devEui);
        if (device === undefined) {
          const loaded = loadDevice(profile, persisted);
          byEui.set(profile.devEui, loaded);
          index(loaded);
          added.push(profile.devEui);
          continue;
        }
        if (sameProfile(device.profile, profile)) continue;
        changed.push(profile.devEui);
        const { activation } = profile;
        if (activation.mode === 'abp' && (device.session === null || device.session.id !== abpSessionId(activation))) {
          unindex(device);
          device.session = abpSession(activation, parsePersisted(persisted.get(profile.devEui), profile.devEui, deps.log), profile.devEui);
          index(device);
        } else if (activation.mode === 'otaa' && device.profile.activation.mode === 'abp') {
          // ABP -> OTAA: the ABP session is not the device's any more; it joins.
          unindex(device);
          device.session = null;
        }
        // OTAA keys changed: the joined session stays until the device joins again with the new AppKey.
        device.profile = profile;
      }
      return { added, removed, changed };
    },
    get size() {
      return byEui.size;
    },
    all: () => byEui.values(),
  };
}

/** Whether a reload leaves the device as it is (codecs compare by name and formatter file: compiled once per file). */
function sameProfile(a: LorawanDeviceProfile, b: LorawanDeviceProfile): boolean {
  const plain = (profile: LorawanDeviceProfile): string => {
    const { codec, activation, ...rest } = profile;
    const keys =
      activation.mode === 'abp'
        ? [activation.devAddr, activation.nwkSKey.toString('hex'), activation.appSKey.toString('hex')]
        : [activation.joinEui, activation.appKey.toString('hex')];
    return JSON.stringify([rest, codec, activation.mode, keys]);
  };
  return plain(a) === plain(b);
}

function macField(session: Session): { mac?: unknown } {
  if (session.mac != null) return { mac: persistMacState(session.mac) };
  return session.savedMac === undefined ? {} : { mac: session.savedMac };
}

/** The committed state text of one device, or null when it is not a state this version can read. */
export function readPersistedDevice(text: string): PersistedDevice | null {
  try {
    const value = JSON.parse(text) as PersistedDevice | null;
    if (typeof value === 'object' && value !== null && value.v === 1) return value;
  } catch {
    // fall through
  }
  return null;
}

function parsePersisted(text: string | undefined, devEui: string, log: Logger): PersistedDevice | null {
  if (text === undefined) return null;
  const value = readPersistedDevice(text);
  if (value !== null) return value;
  log.warn({ devEui }, 'LoRaWAN device state in the buffer is unreadable: the device starts without a session (OTAA devices rejoin)');
  return null;
}

/**
 * Why a join-request's DevNonce is refused, or null after remembering it. LoRaWAN 1.0.4 §6.2.4: the DevNonce is
 * a counter the device keeps across joins, so one not above the last accepted is a replay. 1.0.2/1.0.3 pick it
 * at random: only one already used is refused (the last MAX_DEV_NONCES are remembered).
 */
export function admitDevNonce(device: LorawanDevice, devNonce: number): string | null {
  const used = device.usedDevNonces;
  if (device.profile.macVersion === '1.0.4') {
    // Every DevNonce accepted from a 1.0.4 device was above the one before: the newest is the highest.
    const last = used.at(-1) ?? -1;
    if (devNonce <= last)
      return `DevNonce ${devNonce} is not above the last accepted ${last} (a LoRaWAN 1.0.4 device counts DevNonces up): a replayed join-request, or the device is not 1.0.4 (set its mac_version)`;
  } else if (used.includes(devNonce)) {
    return `DevNonce ${devNonce} was used before: a replayed join-request`;
  }
  used.push(devNonce);
  if (used.length > MAX_DEV_NONCES) used.splice(0, used.length - MAX_DEV_NONCES);
  return null;
}
