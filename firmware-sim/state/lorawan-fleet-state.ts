// The state of a LoRaWAN fleet run: per device (a member), its simulated LoRaWAN device, the frames it put
// on air and what came back (ACKs, joins, commands), plus the replays and forgeries planned for it; for the fleet,
// the progress lines and the report (per device and in total) a test compares with what reached Kafka.
// Only bookkeeping here: what a device sends is firmware/lorawan-firmware.ts's call.
import type { Region } from '../../src/ingress/lorawan/region.ts';
import type { CommandResult } from '../device-commands.ts';
import { createFleet, createRandom, type Random, type SimDevice } from '../fleet.ts';
import type { PayloadCodec } from '../reading-payload.ts';
import type { AirCounters } from '../transports/lorawan-air.ts';
import {
  createSimLorawanDevice,
  deriveIdentity,
  type FleetCodec,
  type LorawanIdentity,
  type SavedDeviceState,
  type SimLorawanDevice,
} from '../transports/lorawan-device.ts';

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
  /** The channel and data rate it went on. */
  readonly frequencyHz: number;
  readonly datr: string;
  /** Confirmed frames: whether this transmission's ACK was heard. */
  readonly acked?: boolean;
  /** For Cayenne LPP devices: the decoded_payload the gateway should produce. */
  readonly decoded?: Record<string, unknown>;
  readonly sentAtMs: number;
}

/** An application downlink (FPort > 0) the device heard, read as a command (device-commands.ts), and what it did. */
export interface ReceivedCommand {
  readonly fcntDown: number;
  readonly fport: number;
  /** ConfirmedDataDown: the device's next uplink carries FCtrl.ACK. */
  readonly confirmed: boolean;
  /** The FRMPayload, decrypted. */
  readonly payloadHex: string;
  /** The command it matches (dim, on, off, valve, config), 'unknown' if none. */
  readonly name: string;
  /** false: refused (unknown to the model, or a payload it cannot use). */
  readonly applied: boolean;
  /** The new state, as the MQTT devices' state report says it ({on, dim_pct}, {valve}, {interval_s}), or {error}. */
  readonly result: CommandResult;
  /** FCntUp of the next new uplink: it and every later reading show the new state. */
  readonly effectiveFromFcnt: number;
  readonly receivedAtMs: number;
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
  /** Commands received in downlinks, in order. */
  readonly commands: readonly ReceivedCommand[];
  /** Reporting interval set by a config command, in seconds; absent: as fast as the run's rate allows. */
  readonly intervalS?: number;
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
  /** Application downlinks (FPort > 0) the devices heard, read as commands; applied + refused. */
  readonly commandsReceived: number;
  readonly commandsApplied: number;
  readonly commandsRefused: number;
}

export type LorawanFleetStopReason = 'messages' | 'duration' | 'aborted';

export interface LorawanFleetReport {
  readonly server: string;
  /** The region the devices transmit in (RP002 name), with its sub-band where it has one. */
  readonly region: string;
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

/** The options that decide which devices exist, and so their keys. */
export interface LorawanFleetShape {
  readonly devices: number;
  /** Share of OTAA devices, 0..1, spread evenly over the fleet. Default 0.5. */
  readonly otaaShare?: number;
  /** Default 'mixed'. */
  readonly codec?: FleetCodec;
  readonly seed: number;
  readonly prefix?: string;
}

/** One device of the run. */
export interface Member {
  readonly device: SimLorawanDevice;
  readonly model: SimDevice;
  readonly random: Random;
  /** Index of the forwarder closest to the device; the second one (two-gateway frames) is the next. */
  readonly homeGateway: number;
  /** The data rate its uplinks use (it is near or far from the gateways), and its datr. */
  readonly dataRate: number;
  readonly datr: string;
  readonly frames: SentFrame[];
  acks: number;
  joinAttempts: number;
  joinsAccepted: number;
  pendingReplays: number;
  pendingCorrupt: number;
  failure: string | null;
  readonly commands: ReceivedCommand[];
  /** A confirmed downlink was heard since the last new uplink: that uplink sets FCtrl.ACK. */
  ackDue: boolean;
  /** Set by a config command; 0: none. */
  intervalMs: number;
  /** performance.now() of the latest new uplink; 0 before the first. */
  lastUplinkAtMs: number;
  /** performance.now() until which the device still listens for a downlink of its latest transmission. */
  listeningUntilMs: number;
}

/** Fleet-wide counts no single member holds. */
export interface LorawanFleetTally {
  readonly startedAtMs: number;
  /** ACKs the devices missed on purpose. */
  acksMissed: number;
  /** Devices waiting for a join-accept now. */
  joining: number;
}

/** The fleet's devices: fleet.ts models (names, kinds, readings) with LoRaWAN identities from the seed. */
export function fleetIdentities(shape: LorawanFleetShape): { readonly model: SimDevice; readonly identity: LorawanIdentity }[] {
  const share = shape.otaaShare ?? 0.5;
  if (!(share >= 0 && share <= 1)) throw new RangeError(`otaaShare must be in 0..1, got ${share}`);
  const models = createFleet({ devices: shape.devices, seed: shape.seed, ...(shape.prefix === undefined ? {} : { prefix: shape.prefix }) });
  return models.map((model, index) => {
    // Spread evenly: device i is OTAA when floor((i + 1) * share) steps up.
    const otaa = Math.floor((index + 1) * share) > Math.floor(index * share);
    return { model, identity: deriveIdentity(shape.seed, index, model.id, model.kind, otaa, shape.codec ?? 'mixed') };
  });
}

export function configEntry(identity: LorawanIdentity): LorawanDeviceConfigEntry {
  const { activation } = identity;
  const base = { dev_eui: identity.devEui, name: identity.name, codec: identity.codec };
  return activation.mode === 'abp'
    ? { ...base, dev_addr: activation.devAddr, nwk_s_key: activation.nwkSKey.toString('hex'), app_s_key: activation.appSKey.toString('hex') }
    : { ...base, join_eui: activation.joinEui, app_key: activation.appKey.toString('hex') };
}

export interface MemberOptions extends LorawanFleetShape {
  readonly region: Region;
  readonly gateways: number;
  readonly replays?: number;
  readonly corruptMics?: number;
  /** OTAA devices join again even when `saved` holds a session. */
  readonly rejoin?: boolean;
}

/** The members of a run, continuing from `saved` (by DevEUI); replays and forgeries land on devices picked by the seed. */
export function createMembers(options: MemberOptions, saved: ReadonlyMap<string, SavedDeviceState>): Member[] {
  const dataRates = memberDataRates(options.region);
  const members = fleetIdentities(options).map(({ model, identity }): Member => {
    const random = createRandom((options.seed ^ Math.imul(identity.index + 1, 0x2545f491)) >>> 0);
    const rejoin = options.rejoin === true && identity.activation.mode === 'otaa';
    const dataRate = dataRates[Math.floor(random() * dataRates.length)] ?? options.region.rx2DataRate;
    return {
      device: createSimLorawanDevice(identity, rejoin ? undefined : saved.get(identity.devEui)),
      model,
      random,
      homeGateway: identity.index % options.gateways,
      dataRate,
      datr: options.region.datrFromDataRate(dataRate),
      frames: [],
      acks: 0,
      joinAttempts: 0,
      joinsAccepted: 0,
      pendingReplays: 0,
      pendingCorrupt: 0,
      failure: null,
      commands: [],
      ackDue: false,
      intervalMs: 0,
      lastUplinkAtMs: 0,
      listeningUntilMs: 0,
    };
  });
  const planner = createRandom(options.seed ^ 0x5eed_1a7e);
  const pick = (): Member => members[Math.floor(planner() * members.length)] as Member;
  for (let i = 0; i < (options.replays ?? 0); i++) pick().pendingReplays += 1;
  for (let i = 0; i < (options.corruptMics ?? 0); i++) pick().pendingCorrupt += 1;
  return members;
}

/**
 * The data rates devices pick from: near a gateway SF7, farther ones up to SF10, on 125 kHz channels (EU868
 * DR5..DR2), leaving out rates that cannot carry a 51-byte reading (US915 DR0: 11 bytes).
 */
function memberDataRates(region: Region): number[] {
  return region.uplinkDataRates
    .filter((index) => {
      const rate = region.dataRates.get(index);
      return rate !== undefined && rate.bandwidthKHz === 125 && rate.spreadingFactor <= 10 && (region.maxPayloadSize(index, 'up')?.n ?? 0) >= 51;
    })
    .sort((a, b) => (region.dataRates.get(a)?.spreadingFactor ?? 0) - (region.dataRates.get(b)?.spreadingFactor ?? 0));
}

export function fleetProgress(members: readonly Member[], tally: LorawanFleetTally, air: AirCounters): LorawanFleetProgress {
  const frames = members.flatMap((member) => member.frames);
  return {
    elapsedMs: Math.round(performance.now() - tally.startedAtMs),
    sent: frames.length,
    uplinks: frames.filter((frame) => frame.kind === 'uplink').length,
    pushAcked: air.pushAcked,
    confirmedAcked: frames.filter((frame) => frame.acked === true).length,
    joinsAccepted: members.reduce((sum, member) => sum + member.joinsAccepted, 0),
    joining: tally.joining,
    devices: members.length,
  };
}

export function deviceReport(member: Member): DeviceReport {
  const { identity } = member.device;
  return {
    name: identity.name,
    devEui: identity.devEui,
    activation: identity.activation.mode,
    codec: identity.codec,
    devAddr: member.device.session()?.devAddr ?? null,
    frames: member.frames,
    acks: member.acks,
    joins: { attempts: member.joinAttempts, accepted: member.joinsAccepted },
    commands: member.commands,
    ...(member.intervalMs === 0 ? {} : { intervalS: member.intervalMs / 1_000 }),
    ...(member.failure === null ? {} : { failure: member.failure }),
  };
}

export function fleetTotals(members: readonly Member[], tally: LorawanFleetTally, air: AirCounters): LorawanFleetTotals {
  const frames = members.flatMap((member) => member.frames);
  const count = (predicate: (frame: SentFrame) => boolean): number => frames.filter(predicate).length;
  const sum = (value: (member: Member) => number): number => members.reduce((total, member) => total + value(member), 0);
  return {
    sent: frames.length,
    uplinks: count((frame) => frame.kind === 'uplink'),
    valid: count((frame) => frame.valid),
    confirmed: count((frame) => frame.kind === 'uplink' && frame.confirmed),
    confirmedAcked: count((frame) => frame.acked === true),
    retransmissions: count((frame) => frame.kind === 'retransmission'),
    replays: count((frame) => frame.kind === 'replay'),
    corrupt: count((frame) => frame.kind === 'corrupt'),
    replaysSkipped: sum((member) => member.pendingReplays),
    twoGatewayFrames: count((frame) => frame.gateways.length > 1),
    joinAttempts: sum((member) => member.joinAttempts),
    joinsAccepted: sum((member) => member.joinsAccepted),
    acksHeard: sum((member) => member.acks),
    acksMissed: tally.acksMissed,
    pushSent: air.pushSent,
    pushAcked: air.pushAcked,
    downlinks: air.downlinks,
    lateDownlinks: air.lateDownlinks,
    unmatchedDownlinks: air.unmatchedDownlinks,
    failedDevices: members.filter((member) => member.failure !== null).length,
    commandsReceived: sum((member) => member.commands.length),
    commandsApplied: sum((member) => member.commands.filter((command) => command.applied).length),
    commandsRefused: sum((member) => member.commands.filter((command) => !command.applied).length),
  };
}
