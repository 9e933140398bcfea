// Runs a simulated LoRaWAN network against the gateway's Semtech UDP port: G packet forwarders
// (transports/packet-forwarder.ts) and N Class-A devices (transports/lorawan-device.ts) with real crypto.
// OTAA devices join first; every device then sends the fleet.ts readings of its kind, some confirmed (the
// device waits for the ACK in RX1/RX2 and retransmits the same frame if none comes), some heard by two
// forwarders, and on request a few replays of old frames and forged MICs. The report says, per device, what
// went on air and what came back, so a test can compare it with what reached Kafka.
//
// Radio timing: a downlink counts only if it reached the forwarder before its transmit time (its tmst) and
// that time is one of the windows of the device's last uplink on that forwarder (RX1/RX2, or the join
// windows); the device takes it at once instead of waiting for the window, so runs stay fast.
import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { EU868 } from '../src/ingress/lorawan/region.ts';
import { createFleet, createRandom, type Random, type SimDevice } from './fleet.ts';
import { createSimulatedForwarder, type SimulatedForwarder } from './transports/packet-forwarder.ts';
import {
  createSimLorawanDevice,
  deriveIdentity,
  encodeReading,
  type FleetCodec,
  type LorawanIdentity,
  type PayloadCodec,
  type RecentFrame,
  type SavedDeviceState,
  type SimLorawanDevice,
} from './transports/lorawan-device.ts';

export interface LorawanFleetOptions {
  /** The gateway's Semtech UDP listener (lorawan.udp). */
  readonly server: { readonly host: string; readonly port: number };
  /** Simulated packet forwarders (>= 1). */
  readonly gateways: number;
  /** Simulated devices (>= 1). */
  readonly devices: number;
  /** Share of OTAA devices, 0..1, spread evenly over the fleet. Default 0.5. */
  readonly otaaShare?: number;
  /** Default 'mixed'. */
  readonly codec?: FleetCodec;
  /** New transmissions per second across the fleet (joins, uplinks, replays, forgeries); 0 = no limit. */
  readonly ratePerSecond: number;
  /** Stop starting new uplinks this long after the start; 0 or absent: no time limit. */
  readonly durationMs?: number;
  /** Each device sends this many new uplinks, then stops. Without it and without durationMs: 30 s. */
  readonly messagesPerDevice?: number;
  /** Share of uplinks sent confirmed, 0..1. Default 0. */
  readonly confirmedShare?: number;
  /** Share of transmissions heard by two forwarders (needs gateways >= 2), 0..1. Default 0. */
  readonly twoGatewayShare?: number;
  /** Old frames sent again by an "attacker" in range of a forwarder. Default 0. */
  readonly replays?: number;
  /** Uplinks sent with a flipped MIC bit instead of the real one; each uses up an FCntUp. Default 0. */
  readonly corruptMics?: number;
  /** Share of ACKs the device fails to hear (the forwarder sends them), to make it retransmit. Default 0. */
  readonly missedAckShare?: number;
  /** Retransmissions of an unacknowledged confirmed uplink (NbTrans - 1). Default 3. */
  readonly maxRetransmissions?: number;
  /** How long a device waits for an ACK before retransmitting; the RX2 window ends ~2 s after the uplink. Default 3,000. */
  readonly ackTimeoutMs?: number;
  /** How long a joining device waits for the join-accept (JOIN_ACCEPT_DELAY2 is 6 s). Default 7,000. */
  readonly joinTimeoutMs?: number;
  /** Join-requests (each with a new DevNonce) before a device gives up. Default 5. */
  readonly maxJoinAttempts?: number;
  /** Keys, devices and readings follow from it. */
  readonly seed: number;
  /** Device name prefix (see FleetOptions.prefix). Default ''. */
  readonly prefix?: string;
  /** JSON file with each device's counters and session: read at the start if it exists, written at the end. */
  readonly stateFile?: string;
  /** OTAA devices join again even when the state file holds a session. Default false. */
  readonly rejoin?: boolean;
  /** Aborting stops new transmissions and waits no longer for ACKs or join-accepts. */
  readonly signal?: AbortSignal;
}

export type FrameKind = 'uplink' | 'replay' | 'corrupt' | 'retransmission';

/** One frame put on air. */
export interface SentFrame {
  readonly kind: FrameKind;
  /** Full 32-bit FCntUp in the frame. */
  readonly fcnt: number;
  readonly fport: number;
  readonly confirmed: boolean;
  /** The application payload before encryption. */
  readonly plaintextHex: string;
  /** The PHYPayload as sent. */
  readonly phyHex: string;
  /** False for forged MICs; a replay's MIC is valid, but the gateway must still refuse it. */
  readonly valid: boolean;
  /** DevAddr of the session the frame belongs to. */
  readonly devAddr: string;
  /** EUIs of the forwarders that pushed it (one or two). */
  readonly gateways: readonly string[];
  /** How many of those pushes got their PUSH_ACK. */
  readonly pushAcked: number;
  /** Confirmed frames: whether this transmission's ACK was heard. */
  readonly acked?: boolean;
  /** For Cayenne LPP devices: the decoded_payload the gateway should produce. */
  readonly decoded?: Record<string, unknown>;
  readonly sentAtMs: number;
}

export interface DeviceReport {
  readonly name: string;
  readonly devEui: string;
  readonly activation: 'abp' | 'otaa';
  readonly codec: PayloadCodec;
  /** DevAddr at the end (OTAA: of the last join). */
  readonly devAddr: string | null;
  readonly frames: readonly SentFrame[];
  /** ACK downlinks heard (valid MIC, FCtrl.ACK). */
  readonly acks: number;
  readonly joins: { readonly attempts: number; readonly accepted: number };
  /** Why the device stopped early ('join-failed'), if it did. */
  readonly failure?: string;
}

export interface LorawanFleetTotals {
  /** Every transmission: joins not included. */
  readonly sent: number;
  /** New uplinks with a valid MIC: each must become exactly one record. */
  readonly uplinks: number;
  /** Frames with a valid MIC (uplinks, retransmissions, replays). */
  readonly valid: number;
  readonly confirmed: number;
  /** Confirmed uplinks whose ACK was heard (on the first transmission or a retransmission). */
  readonly confirmedAcked: number;
  readonly retransmissions: number;
  readonly replays: number;
  readonly corrupt: number;
  /** Planned replays that found no old frame to send. */
  readonly replaysSkipped: number;
  readonly twoGatewayFrames: number;
  readonly joinAttempts: number;
  readonly joinsAccepted: number;
  readonly acksHeard: number;
  /** ACKs the device was told to miss (missedAckShare). */
  readonly acksMissed: number;
  readonly pushSent: number;
  readonly pushAcked: number;
  /** PULL_RESP received by the forwarders. */
  readonly downlinks: number;
  /** Downlinks that reached their forwarder after their transmit time (answered TOO_LATE). */
  readonly lateDownlinks: number;
  /** Downlinks no listening device took (wrong window, foreign DevAddr, bad MIC). */
  readonly unmatchedDownlinks: number;
  readonly failedDevices: number;
}

export type LorawanFleetStopReason = 'messages' | 'duration' | 'aborted';

export interface LorawanFleetReport {
  readonly server: string;
  readonly seed: number;
  readonly gateways: readonly string[];
  readonly devices: readonly DeviceReport[];
  readonly totals: LorawanFleetTotals;
  readonly stoppedBy: LorawanFleetStopReason;
  readonly durationMs: number;
  /** The device list for the gateway (lorawan.devices / devices_file). */
  devicesConfig(): LorawanDeviceConfigEntry[];
}

export interface LorawanFleetProgress {
  readonly elapsedMs: number;
  readonly sent: number;
  readonly uplinks: number;
  readonly pushAcked: number;
  readonly confirmedAcked: number;
  readonly joinsAccepted: number;
  readonly joining: number;
  readonly devices: number;
}

export interface LorawanFleetHooks {
  /** About once per second. */
  onProgress?(progress: LorawanFleetProgress): void;
}

/** One entry of lorawan.devices, in the config's own snake_case. */
export interface LorawanDeviceConfigEntry {
  readonly dev_eui: string;
  readonly name: string;
  readonly codec: PayloadCodec;
  readonly dev_addr?: string;
  readonly nwk_s_key?: string;
  readonly app_s_key?: string;
  readonly join_eui?: string;
  readonly app_key?: string;
}

const PROGRESS_MS = 1_000;
const DEFAULT_DURATION_MS = 30_000;
const GATEWAY_EUI_PREFIX = 'aa555a00';
const STATE_VERSION = 1;
/** Longer than the largest lorawan.dedup_window_ms (2 s): a copy within the window is a reception, not a replay. */
const REPLAY_MIN_AGE_MS = 2_500;

interface FleetMember {
  readonly model: SimDevice;
  readonly identity: LorawanIdentity;
}

/** The fleet's devices: fleet.ts models (names, kinds, readings) with LoRaWAN identities from the seed. */
function fleetMembers(options: Pick<LorawanFleetOptions, 'devices' | 'otaaShare' | 'codec' | 'seed' | 'prefix'>): FleetMember[] {
  const share = options.otaaShare ?? 0.5;
  if (!(share >= 0 && share <= 1)) throw new RangeError(`otaaShare must be in 0..1, got ${share}`);
  const models = createFleet({ devices: options.devices, seed: options.seed, ...(options.prefix === undefined ? {} : { prefix: options.prefix }) });
  return models.map((model, index) => {
    // Spread evenly: device i is OTAA when floor((i + 1) * share) steps up.
    const otaa = Math.floor((index + 1) * share) > Math.floor(index * share);
    return { model, identity: deriveIdentity(options.seed, index, model.id, model.kind, otaa, options.codec ?? 'mixed') };
  });
}

function configEntry(identity: LorawanIdentity): LorawanDeviceConfigEntry {
  const { activation } = identity;
  const base = { dev_eui: identity.devEui, name: identity.name, codec: identity.codec };
  return activation.mode === 'abp'
    ? { ...base, dev_addr: activation.devAddr, nwk_s_key: activation.nwkSKey.toString('hex'), app_s_key: activation.appSKey.toString('hex') }
    : { ...base, join_eui: activation.joinEui, app_key: activation.appKey.toString('hex') };
}

/** The devices a run with these options simulates, as entries for lorawan.devices_file. Same seed, same list. */
export function lorawanDevicesConfig(options: Pick<LorawanFleetOptions, 'devices' | 'otaaShare' | 'codec' | 'seed' | 'prefix'>): LorawanDeviceConfigEntry[] {
  return fleetMembers(options).map((member) => configEntry(member.identity));
}

/** EUIs of the simulated forwarders: aa555a00 + index, the same in every run. */
export function simulatedGatewayEuis(count: number): string[] {
  return Array.from({ length: count }, (_, index) => `${GATEWAY_EUI_PREFIX}${(index + 1).toString(16).padStart(8, '0')}`);
}

interface StateFile {
  readonly version: number;
  readonly seed: number;
  readonly devices: Record<string, SavedDeviceState>;
}

function readStateFile(path: string, seed: number): Map<string, SavedDeviceState> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw error;
  }
  const state = JSON.parse(text) as StateFile;
  if (state.version !== STATE_VERSION) throw new Error(`${path}: state file version ${state.version}, expected ${STATE_VERSION}`);
  // Another seed means other devices: their counters say nothing about these.
  if (state.seed !== seed) return new Map();
  return new Map(Object.entries(state.devices));
}

function writeStateFile(path: string, seed: number, devices: readonly SimLorawanDevice[]): void {
  const state: StateFile = { version: STATE_VERSION, seed, devices: Object.fromEntries(devices.map((device) => [device.identity.devEui, device.snapshot()])) };
  // Write then rename: a run killed mid-write leaves the previous state, not half a file.
  const temporary = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(state, null, 1)}\n`);
  renameSync(temporary, path);
}

/** Spreads transmissions over time: each acquire() gets the next slot of 1/rate s, first come first served. */
function createPacer(ratePerSecond: number, signal: AbortSignal) {
  const intervalMs = ratePerSecond > 0 ? 1_000 / ratePerSecond : 0;
  let nextAtMs = performance.now();
  return async (): Promise<boolean> => {
    if (signal.aborted) return false;
    if (intervalMs === 0) return true;
    const now = performance.now();
    const at = Math.max(now, nextAtMs);
    nextAtMs = at + intervalMs;
    if (at > now) await sleep(at - now, undefined, { signal }).catch(() => undefined);
    return !signal.aborted;
  };
}

/** A device waiting for a downlink after its last uplink: which windows, heard by which forwarders. */
interface Listener {
  readonly member: Member;
  /** Forwarder EUI -> its tmst at the uplink. */
  readonly uplinkTmst: ReadonlyMap<string, number>;
  readonly delaysS: readonly number[];
  /** Returns true when the downlink was for this listener (taken or deliberately missed). */
  offer(phy: Buffer): boolean;
}

interface Member {
  readonly device: SimLorawanDevice;
  readonly model: SimDevice;
  readonly random: Random;
  /** Index of the forwarder closest to the device; the second one (two-gateway frames) is the next. */
  readonly homeGateway: number;
  readonly datr: string;
  readonly frames: SentFrame[];
  acks: number;
  joinAttempts: number;
  joinsAccepted: number;
  pendingReplays: number;
  pendingCorrupt: number;
  failure: string | null;
}

/** Runs the fleet until each device sent its messages, the duration is over, or the signal aborts. */
export async function runLorawanFleet(options: LorawanFleetOptions, hooks: LorawanFleetHooks = {}): Promise<LorawanFleetReport> {
  if (!Number.isInteger(options.gateways) || options.gateways < 1) throw new RangeError(`gateways must be an integer >= 1, got ${options.gateways}`);
  for (const [name, value] of Object.entries({
    confirmedShare: options.confirmedShare,
    twoGatewayShare: options.twoGatewayShare,
    missedAckShare: options.missedAckShare,
  })) {
    if (value !== undefined && !(value >= 0 && value <= 1)) throw new RangeError(`${name} must be in 0..1, got ${value}`);
  }
  const startedAtMs = performance.now();
  const controller = new AbortController();
  const onAbort = (): void => controller.abort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted === true) controller.abort();
  const { signal } = controller;

  const confirmedShare = options.confirmedShare ?? 0;
  const twoGatewayShare = options.gateways >= 2 ? (options.twoGatewayShare ?? 0) : 0;
  const missedAckShare = options.missedAckShare ?? 0;
  const maxRetransmissions = options.maxRetransmissions ?? 3;
  const ackTimeoutMs = options.ackTimeoutMs ?? 3_000;
  const joinTimeoutMs = options.joinTimeoutMs ?? 7_000;
  const maxJoinAttempts = options.maxJoinAttempts ?? 5;
  const messagesPerDevice = options.messagesPerDevice;
  const durationMs =
    options.durationMs !== undefined && options.durationMs > 0 ? options.durationMs : messagesPerDevice === undefined ? DEFAULT_DURATION_MS : 0;
  const deadlineMs = durationMs > 0 ? startedAtMs + durationMs : Number.POSITIVE_INFINITY;

  const saved = options.stateFile === undefined ? new Map<string, SavedDeviceState>() : readStateFile(options.stateFile, options.seed);
  const members: Member[] = fleetMembers(options).map(({ model, identity }) => {
    const random = createRandom((options.seed ^ Math.imul(identity.index + 1, 0x2545f491)) >>> 0);
    const savedState = saved.get(identity.devEui);
    return {
      device: createSimLorawanDevice(
        identity,
        ...(savedState === undefined || (options.rejoin === true && identity.activation.mode === 'otaa') ? [] : [savedState]),
      ),
      model,
      random,
      homeGateway: identity.index % options.gateways,
      // Devices near a gateway use SF7, farther ones up to SF10 (DR5..DR2).
      datr: EU868.datrFromDataRate(5 - Math.floor(random() * 4)),
      frames: [],
      acks: 0,
      joinAttempts: 0,
      joinsAccepted: 0,
      pendingReplays: 0,
      pendingCorrupt: 0,
      failure: null,
    };
  });
  // Replays and forgeries land on devices picked by the seed.
  const planner = createRandom(options.seed ^ 0x5eed_1a7e);
  for (let i = 0; i < (options.replays ?? 0); i++) (members[Math.floor(planner() * members.length)] as Member).pendingReplays += 1;
  for (let i = 0; i < (options.corruptMics ?? 0); i++) (members[Math.floor(planner() * members.length)] as Member).pendingCorrupt += 1;

  const counters = { lateDownlinks: 0, unmatchedDownlinks: 0, acksMissed: 0, replaysSkipped: 0, joining: 0 };
  const listeners = new Set<Listener>();
  const euis = simulatedGatewayEuis(options.gateways);
  const forwarders: SimulatedForwarder[] = euis.map((gatewayEui) => createSimulatedForwarder({ gatewayEui, server: options.server, keepaliveMs: 5_000 }));

  forwarders.forEach((forwarder, index) => {
    const eui = euis[index] as string;
    forwarder.onDownlink((txpk, _receivedAtMono, receivedAtTmst) => {
      if (txpk.tmst === undefined) return 'NONE';
      // µs from arrival to transmit time, modulo the 32-bit counter: "negative" means the window has passed.
      const leadUs = (txpk.tmst - receivedAtTmst) >>> 0;
      if (leadUs === 0 || leadUs >= 2 ** 31) {
        counters.lateDownlinks += 1;
        return 'TOO_LATE';
      }
      const phy = Buffer.from(txpk.data, 'base64');
      for (const listener of listeners) {
        const uplinkTmst = listener.uplinkTmst.get(eui);
        if (uplinkTmst === undefined) continue;
        if (!listener.delaysS.some((delayS) => (uplinkTmst + delayS * 1_000_000) >>> 0 === txpk.tmst)) continue;
        if (listener.offer(phy)) return 'NONE';
      }
      counters.unmatchedDownlinks += 1;
      return 'NONE';
    });
  });

  /** Pushes one transmission through its forwarder(s); the listener (if any) is in place before it leaves. */
  async function transmit(
    member: Member,
    phy: Buffer,
    listen?: Omit<Listener, 'uplinkTmst' | 'member'>,
  ): Promise<{ gateways: string[]; pushAcked: number; listener: Listener | null }> {
    const home = member.homeGateway;
    const indexes = member.random() < twoGatewayShare ? [home, (home + 1) % forwarders.length] : [home];
    const uplinkTmst = new Map<string, number>();
    const freqMhz = (EU868.uplinkChannelsHz[Math.floor(member.random() * 3)] ?? 868_100_000) / 1e6;
    const pushes = indexes.map((index, order) => {
      const forwarder = forwarders[index] as SimulatedForwarder;
      const tmst = forwarder.tmst();
      uplinkTmst.set(euis[index] as string, tmst);
      // The second gateway is farther away: weaker signal.
      const rssi = Math.round(-70 - member.random() * 30 - order * 15);
      const lsnr = Math.round((9 - member.random() * 12 - order * 5) * 10) / 10;
      return { forwarder, input: { phyPayload: phy, tmst, freqMhz, datr: member.datr, rssi, lsnr } };
    });
    const listener = listen === undefined ? null : { ...listen, member, uplinkTmst };
    if (listener !== null) listeners.add(listener);
    const acked = await Promise.all(pushes.map(({ forwarder, input }) => forwarder.pushRxpk([input])));
    return { gateways: indexes.map((index) => euis[index] as string), pushAcked: acked.filter(Boolean).length, listener };
  }

  /** Resolves true when `heard` is called, false after timeoutMs or on abort. */
  function waitable(timeoutMs: number): { readonly promise: Promise<boolean>; heard(): void } {
    let settle: (value: boolean) => void = () => {};
    const promise = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => done(false), timeoutMs);
      const onStop = (): void => done(false);
      signal.addEventListener('abort', onStop, { once: true });
      function done(value: boolean): void {
        clearTimeout(timer);
        signal.removeEventListener('abort', onStop);
        resolve(value);
      }
      settle = done;
    });
    return { promise, heard: () => settle(true) };
  }

  async function join(member: Member): Promise<boolean> {
    counters.joining += 1;
    try {
      for (let attempt = 0; attempt < maxJoinAttempts; attempt++) {
        if (!(await pace())) return false;
        const { phy } = member.device.joinRequest();
        member.joinAttempts += 1;
        const wait = waitable(joinTimeoutMs);
        const { listener } = await transmit(member, phy, {
          delaysS: [EU868.joinAcceptDelay1Seconds, EU868.joinAcceptDelay2Seconds],
          offer(downlink) {
            if (!member.device.acceptJoin(downlink)) return false;
            wait.heard();
            return true;
          },
        });
        const accepted = await wait.promise;
        if (listener !== null) listeners.delete(listener);
        if (accepted) {
          member.joinsAccepted += 1;
          return true;
        }
      }
      return false;
    } finally {
      counters.joining -= 1;
    }
  }

  function record(member: Member, frame: Omit<SentFrame, 'devAddr' | 'sentAtMs'>, devAddr: string): void {
    member.frames.push({ ...frame, devAddr, sentAtMs: Date.now() });
  }

  /** A new reading; confirmed ones wait for the ACK and go again (same frame, same FCnt) until heard or out of tries. */
  async function sendUplink(member: Member): Promise<void> {
    const { identity } = member.device;
    const encoded = encodeReading(member.model.nextReading(Date.now()), identity.codec);
    const confirmed = member.random() < confirmedShare;
    const { phy, fcnt } = member.device.uplink(encoded.payload, identity.fport, confirmed);
    const devAddr = member.device.session()?.devAddr ?? '';
    const base = {
      fcnt,
      fport: identity.fport,
      confirmed,
      plaintextHex: encoded.payload.toString('hex'),
      phyHex: phy.toString('hex'),
      valid: true,
      ...(encoded.decoded === undefined ? {} : { decoded: encoded.decoded }),
    };
    for (let attempt = 0; attempt <= (confirmed ? maxRetransmissions : 0); attempt++) {
      if (attempt > 0 && signal.aborted) return;
      const kind: FrameKind = attempt === 0 ? 'uplink' : 'retransmission';
      if (!confirmed) {
        const sent = await transmit(member, phy);
        member.device.markSent(fcnt);
        record(member, { ...base, kind, gateways: sent.gateways, pushAcked: sent.pushAcked }, devAddr);
        return;
      }
      const wait = waitable(ackTimeoutMs);
      const deaf = member.random() < missedAckShare;
      const sent = await transmit(member, phy, {
        delaysS: [EU868.rx1DelaySeconds, EU868.rx1DelaySeconds + 1],
        offer(downlink) {
          if (deaf) {
            // The radio was not listening (interference, a collision): the ACK is lost on air.
            if (member.device.session()?.devAddr !== devAddr) return false;
            counters.acksMissed += 1;
            return true;
          }
          const received = member.device.receiveDownlink(downlink);
          if (received === null || !received.ack) return false;
          member.acks += 1;
          wait.heard();
          return true;
        },
      });
      member.device.markSent(fcnt);
      const acked = await wait.promise;
      if (sent.listener !== null) listeners.delete(sent.listener);
      record(member, { ...base, kind, gateways: sent.gateways, pushAcked: sent.pushAcked, acked }, devAddr);
      if (acked) return;
    }
  }

  async function sendExtras(member: Member): Promise<void> {
    const { identity } = member.device;
    if (member.pendingCorrupt > 0 && (await pace())) {
      member.pendingCorrupt -= 1;
      const encoded = encodeReading(member.model.nextReading(Date.now()), identity.codec);
      const { phy, fcnt } = member.device.corruptUplink(encoded.payload, identity.fport);
      const sent = await transmit(member, phy);
      const devAddr = member.device.session()?.devAddr ?? '';
      record(
        member,
        {
          kind: 'corrupt',
          fcnt,
          fport: identity.fport,
          confirmed: false,
          plaintextHex: encoded.payload.toString('hex'),
          phyHex: phy.toString('hex'),
          valid: false,
          gateways: sent.gateways,
          pushAcked: sent.pushAcked,
        },
        devAddr,
      );
    }
    if (member.pendingReplays > 0) {
      const old = member.device.replayCandidate(member.random, Date.now() - REPLAY_MIN_AGE_MS);
      if (old !== null && (await pace())) await sendReplay(member, old);
    }
  }

  /** Replays still planned when a device has sent its uplinks: wait until an old frame is old enough. */
  async function flushReplays(member: Member): Promise<void> {
    while (member.pendingReplays > 0 && !signal.aborted) {
      const old = member.device.replayCandidate(member.random, Number.POSITIVE_INFINITY);
      if (old === null) return;
      const waitMs = old.sentAtMs + REPLAY_MIN_AGE_MS - Date.now();
      if (waitMs > 0) await sleep(waitMs, undefined, { signal }).catch(() => undefined);
      if (!(await pacer())) return;
      await sendReplay(member, old);
    }
  }

  async function sendReplay(member: Member, old: RecentFrame): Promise<void> {
    member.pendingReplays -= 1;
    const phy = Buffer.from(old.phyHex, 'hex');
    const sent = await transmit(member, phy);
    // A second replay of the same frame within the dedup window would merge with this one.
    member.device.markSent(old.fcnt);
    const original = member.frames.find((frame) => frame.phyHex === old.phyHex);
    record(
      member,
      {
        kind: 'replay',
        fcnt: old.fcnt,
        fport: original?.fport ?? member.device.identity.fport,
        confirmed: original?.confirmed ?? false,
        plaintextHex: original?.plaintextHex ?? '',
        phyHex: old.phyHex,
        valid: true,
        gateways: sent.gateways,
        pushAcked: sent.pushAcked,
      },
      original?.devAddr ?? member.device.session()?.devAddr ?? '',
    );
  }

  const pacer = createPacer(options.ratePerSecond, signal);
  const pace = async (): Promise<boolean> => performance.now() < deadlineMs && (await pacer());

  async function runDevice(member: Member): Promise<void> {
    if (member.device.session() === null && !(await join(member))) {
      if (!signal.aborted && performance.now() < deadlineMs) member.failure = 'join-failed';
      return;
    }
    let sent = 0;
    while (messagesPerDevice === undefined || sent < messagesPerDevice) {
      if (!(await pace())) break;
      await sendUplink(member);
      sent += 1;
      await sendExtras(member);
    }
    await flushReplays(member);
  }

  let stoppedBy: LorawanFleetStopReason = 'messages';
  const progressTimer = setInterval(() => hooks.onProgress?.(progress()), PROGRESS_MS);
  progressTimer.unref();
  try {
    await Promise.all(forwarders.map((forwarder) => forwarder.start()));
    // Downlinks need the route a PULL_DATA opens: wait for each forwarder's PULL_ACK (or give up quietly).
    const routeDeadline = performance.now() + 5_000;
    while (forwarders.some((forwarder) => forwarder.counters().pullAcked === 0) && performance.now() < routeDeadline && !signal.aborted) await sleep(10);
    await Promise.all(members.map(runDevice));
    if (signal.aborted) stoppedBy = 'aborted';
    else if (performance.now() >= deadlineMs) stoppedBy = 'duration';
  } finally {
    clearInterval(progressTimer);
    options.signal?.removeEventListener('abort', onAbort);
    await Promise.all(forwarders.map((forwarder) => forwarder.stop()));
    if (options.stateFile !== undefined)
      writeStateFile(
        options.stateFile,
        options.seed,
        members.map((member) => member.device),
      );
  }

  function progress(): LorawanFleetProgress {
    let sent = 0;
    let uplinks = 0;
    let confirmedAcked = 0;
    let joinsAccepted = 0;
    for (const member of members) {
      sent += member.frames.length;
      joinsAccepted += member.joinsAccepted;
      for (const frame of member.frames) {
        if (frame.kind === 'uplink') uplinks += 1;
        if (frame.acked === true) confirmedAcked += 1;
      }
    }
    return {
      elapsedMs: Math.round(performance.now() - startedAtMs),
      sent,
      uplinks,
      pushAcked: forwarders.reduce((sum, forwarder) => sum + forwarder.counters().pushAcked, 0),
      confirmedAcked,
      joinsAccepted,
      joining: counters.joining,
      devices: members.length,
    };
  }

  const devices: DeviceReport[] = members.map((member) => ({
    name: member.device.identity.name,
    devEui: member.device.identity.devEui,
    activation: member.device.identity.activation.mode,
    codec: member.device.identity.codec,
    devAddr: member.device.session()?.devAddr ?? null,
    frames: member.frames,
    acks: member.acks,
    joins: { attempts: member.joinAttempts, accepted: member.joinsAccepted },
    ...(member.failure === null ? {} : { failure: member.failure }),
  }));
  counters.replaysSkipped = members.reduce((sum, member) => sum + member.pendingReplays, 0);
  const frames = devices.flatMap((device) => device.frames);
  const count = (predicate: (frame: SentFrame) => boolean): number => frames.filter(predicate).length;
  const forwarderCounters = forwarders.map((forwarder) => forwarder.counters());
  const totals: LorawanFleetTotals = {
    sent: frames.length,
    uplinks: count((frame) => frame.kind === 'uplink'),
    valid: count((frame) => frame.valid),
    confirmed: count((frame) => frame.kind === 'uplink' && frame.confirmed),
    confirmedAcked: count((frame) => frame.acked === true),
    retransmissions: count((frame) => frame.kind === 'retransmission'),
    replays: count((frame) => frame.kind === 'replay'),
    corrupt: count((frame) => frame.kind === 'corrupt'),
    replaysSkipped: counters.replaysSkipped,
    twoGatewayFrames: count((frame) => frame.gateways.length > 1),
    joinAttempts: members.reduce((sum, member) => sum + member.joinAttempts, 0),
    joinsAccepted: members.reduce((sum, member) => sum + member.joinsAccepted, 0),
    acksHeard: members.reduce((sum, member) => sum + member.acks, 0),
    acksMissed: counters.acksMissed,
    pushSent: forwarderCounters.reduce((sum, counter) => sum + counter.pushSent, 0),
    pushAcked: forwarderCounters.reduce((sum, counter) => sum + counter.pushAcked, 0),
    downlinks: forwarderCounters.reduce((sum, counter) => sum + counter.downlinks, 0),
    lateDownlinks: counters.lateDownlinks,
    unmatchedDownlinks: counters.unmatchedDownlinks,
    failedDevices: members.filter((member) => member.failure !== null).length,
  };
  const identities = members.map((member) => member.device.identity);
  return {
    server: `${options.server.host}:${options.server.port}`,
    seed: options.seed,
    gateways: euis,
    devices,
    totals,
    stoppedBy,
    durationMs: Math.round(performance.now() - startedAtMs),
    devicesConfig: () => identities.map(configEntry),
  };
}
