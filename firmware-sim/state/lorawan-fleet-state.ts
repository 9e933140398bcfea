// The state of a LoRaWAN fleet run: per device (a member), its simulated LoRaWAN device, its MAC layer and radio
// link, the frames it put on air and what came back (ACKs, joins, commands, MAC commands, ADR changes), plus the
// replays and forgeries planned for it; for the fleet, the progress lines and the report (per device and in
// total) a test compares with what reached Kafka. Only bookkeeping here: what a device sends is
// firmware/lorawan-firmware.ts's call.
import { requiredSnrDb } from '../../src/ingress/lorawan-server/adr.ts';
import type { Region } from '../../src/ingress/lorawan/region.ts';
import type { CommandResult } from '../device-commands.ts';
import { createDeviceBattery, type DeviceBattery } from '../firmware/device-battery.ts';
import { createDeviceMac, type DeviceMac } from '../firmware/lorawan-mac.ts';
import { createFleet, createRandom, type Random, type Reading, type SimDevice } from '../fleet.ts';
import type { PayloadCodec } from '../reading-payload.ts';
import type { AirCounters } from '../transports/lorawan-air.ts';
import {
  createSimLorawanDevice,
  deriveIdentity,
  deviceUplinkChannels,
  type FleetCodec,
  type LorawanIdentity,
  type SavedDeviceState,
  type SimLorawanDevice,
} from '../transports/lorawan-device.ts';
import {
  createRadioLink,
  DEFAULT_LINK_JITTER_DB,
  DEFAULT_PATH_LOSS_DB,
  drawPathLossDb,
  noiseFloorDbm,
  type PathLossSpread,
  type RadioLink,
} from '../transports/radio-link.ts';

/**
 * uplink: a new reading. retransmission: a confirmed uplink again (no ACK heard). repetition: an unconfirmed
 * uplink again, NbTrans > 1 (same FCnt). mac: MAC commands alone (they did not fit beside the reading).
 * replay, corrupt: an attacker's old frame, a forged MIC.
 */
export type FrameKind = 'uplink' | 'replay' | 'corrupt' | 'retransmission' | 'repetition' | 'mac';

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
  readonly dataRate: number;
  /** TX power index and EIRP it went with. */
  readonly txPowerIndex: number;
  readonly txPowerDbm: number;
  /** The best SNR a forwarder reported; null: no forwarder heard it (below the demodulation floor, lost). */
  readonly snrDb: number | null;
  /** FCtrl.ADR and ADRACKReq, and the MAC commands it carried (FOpts or FPort 0), by name. */
  readonly adr: boolean;
  readonly adrAckReq: boolean;
  readonly macCommands: readonly string[];
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

/** A change of the device's ADR settings, and what made it. */
export interface AdrChange {
  /** LinkADRReq: the network asked (and the device applied it); backoff: ADR_ACK_LIMIT + k x ADR_ACK_DELAY uplinks without a downlink. */
  readonly cause: 'LinkADRReq' | 'backoff';
  /** FCntUp of the first uplink with the new settings. */
  readonly fromFcnt: number;
  readonly dataRate: number;
  readonly txPowerIndex: number;
  readonly txPowerDbm: number;
  readonly nbTrans: number;
}

/** The device's MAC activity over the run. */
export interface MacActivity {
  /** Downlink MAC commands received, by name, and what became of them (LinkADRReq counted per request). */
  readonly received: Record<string, number>;
  readonly applied: Record<string, number>;
  readonly refused: Record<string, number>;
  /** Not implemented in the region: no answer (NewChannelReq in US915, TxParamSetupReq in EU868, ...). */
  readonly ignored: Record<string, number>;
  /** Answers the device sent, by name (an answer repeated until a downlink counts once). */
  readonly answered: Record<string, number>;
  /** Its own requests (LinkCheckReq, DeviceTimeReq), by name. */
  readonly requested: Record<string, number>;
  /** Downlinks with MAC commands, by where they carried them: FOpts, or the FRMPayload of FPort 0. */
  readonly carriers: { fopts: number; port0: number };
  /** Downlinks whose MAC commands stopped at an unknown CID (or were cut short): the rest was not read. */
  unknown: number;
  readonly adrChanges: AdrChange[];
  /** LinkCheckAns: after which uplink, and what it said. */
  readonly linkChecks: { readonly afterFcnt: number; readonly margin: number; readonly gwCnt: number }[];
  /** DeviceTimeAns: the GPS time it got, as Unix ms, and the offset to the device's clock at the uplink that asked. */
  deviceTime: {
    readonly gpsSeconds: number;
    readonly fraction256: number;
    readonly unixMs: number;
    /** Wall clock when the DeviceTimeReq uplink went out, and when the answer came. */
    readonly requestedAtMs: number;
    readonly answeredAtMs: number;
    readonly offsetMs: number;
  } | null;
  /** DevStatusAns the device sent: in which uplink, battery and margin (the SNR it heard the DevStatusReq at). */
  readonly devStatus: { readonly fcnt: number; readonly battery: number; readonly margin: number }[];
}

/** The device's radio at the end of the run. */
export interface RadioReport {
  readonly adr: boolean;
  readonly dataRate: number;
  readonly datr: string;
  readonly txPowerIndex: number;
  readonly txPowerDbm: number;
  readonly nbTrans: number;
  readonly pathLossDb: number;
  readonly enabledChannels: readonly number[];
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
  readonly radio: RadioReport;
  readonly mac: MacActivity;
  /** Frames no forwarder heard (below the demodulation floor). */
  readonly lost: number;
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
  /** Frames no forwarder heard: their SNR was below the data rate's demodulation floor. */
  readonly lost: number;
  /** Unconfirmed uplinks sent again for NbTrans > 1. */
  readonly repetitions: number;
  /** Frames with MAC commands only. */
  readonly macFrames: number;
  /** Downlink MAC commands received by name, and the answers sent by name. */
  readonly macCommandsReceived: Record<string, number>;
  readonly macCommandsAnswered: Record<string, number>;
  /** Downlinks whose MAC commands stopped at an unknown CID. */
  readonly macCommandsUnknown: number;
  /** ADR changes applied: LinkADRReq from the network, and the devices' own backoff. */
  readonly adrChanges: { readonly linkAdrReq: number; readonly backoff: number };
  /** Devices per data rate ('DR5') and per TX power ('14 dBm') at the end. */
  readonly dataRates: Record<string, number>;
  readonly txPowers: Record<string, number>;
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
  /** Its radio path to the home forwarder. */
  readonly link: RadioLink;
  /** The data rate a session starts at: what its link carries (it is near or far from the gateways). */
  readonly initialDataRate: number;
  /** How its MAC layer behaves (ADR bit, DeviceTimeReq, LinkCheckReq). */
  readonly macProfile: MacProfile;
  /** The session's MAC layer (data rate, TX power, channels, receive settings); a new one at each join. */
  mac: DeviceMac;
  readonly battery: DeviceBattery;
  /** Its latest reading (a parking sensor's battery). */
  lastReading: Reading | null;
  readonly macActivity: MacActivity;
  /** Wall clock of the latest uplink push (a DeviceTimeAns refers to it). */
  lastUplinkWallMs: number;
  /** performance.now() before which the aggregated duty cycle (DutyCycleReq) forbids the next transmission. */
  quietUntilMs: number;
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

/** One frame a device sent (not an attacker's), for the fleet's onFrame hook. */
export interface DeviceFrameEvent {
  readonly name: string;
  readonly devEui: string;
  readonly frame: SentFrame;
  /** The device's radio once the frame is out. */
  readonly radio: RadioReport;
  /** The device's path loss from its next frame on (its link degrades, it moves). */
  setPathLossDb(pathLossDb: number): void;
}

/** A device's MAC behaviour, the same for the whole fleet. */
export interface MacProfile {
  readonly adr: boolean;
  readonly deviceTime: boolean;
  readonly linkCheckEveryUplinks: number;
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

/** How each device's radio link and MAC layer behave: the fleet's options, handed to every member as they are. */
export interface MemberLinkOptions {
  /** Devices set the ADR bit and follow LinkADRReq (and back off after ADR_ACK_LIMIT uplinks without a downlink). Default true. */
  readonly adr?: boolean;
  /** Every device's path loss to its home forwarder, dB, or a range each device's is drawn from (seeded). Default DEFAULT_PATH_LOSS_DB (115..142 dB). */
  readonly pathLossDb?: number | PathLossSpread;
  /** +/- dB of jitter on each frame's signal. Default DEFAULT_LINK_JITTER_DB (0.5). */
  readonly linkJitterDb?: number;
  /** The data rate every device starts at; default the fastest its link carries at full power with 8 dB to spare. */
  readonly initialDataRate?: number;
  /** Each device asks DeviceTimeReq in the first uplink of its session. Default false. */
  readonly deviceTime?: boolean;
  /** Each device asks LinkCheckReq every N uplinks; 0 = never (default). */
  readonly linkCheckEveryUplinks?: number;
}

export interface MemberOptions extends LorawanFleetShape, MemberLinkOptions {
  readonly region: Region;
  readonly gateways: number;
  readonly replays?: number;
  readonly corruptMics?: number;
  /** OTAA devices join again even when `saved` holds a session. */
  readonly rejoin?: boolean;
}

/** A new device starts at the fastest data rate its link carries at full power with this much to spare, dB. */
const INITIAL_LINK_MARGIN_DB = 8;

/** The members of a run, continuing from `saved` (by DevEUI); replays and forgeries land on devices picked by the seed. */
export function createMembers(options: MemberOptions, saved: ReadonlyMap<string, SavedDeviceState>): Member[] {
  const { region } = options;
  const dataRates = memberDataRates(region);
  const macProfile: MacProfile = {
    adr: options.adr ?? true,
    deviceTime: options.deviceTime ?? false,
    linkCheckEveryUplinks: options.linkCheckEveryUplinks ?? 0,
  };
  const members = fleetIdentities(options).map(({ model, identity }): Member => {
    const random = createRandom((options.seed ^ Math.imul(identity.index + 1, 0x2545f491)) >>> 0);
    // The link draws from a stream of its own: the device's other choices stay those of its seed.
    const linkRandom = createRandom((options.seed ^ Math.imul(identity.index + 1, 0x1b873593) ^ 0x11c0ffee) >>> 0);
    const link = createRadioLink(
      drawPathLossDb(options.pathLossDb ?? DEFAULT_PATH_LOSS_DB, linkRandom),
      options.linkJitterDb ?? DEFAULT_LINK_JITTER_DB,
      linkRandom,
    );
    const rejoin = options.rejoin === true && identity.activation.mode === 'otaa';
    const device = createSimLorawanDevice(identity, rejoin ? undefined : saved.get(identity.devEui));
    const initialDataRate = options.initialDataRate ?? linkDataRate(region, link, dataRates);
    return {
      device,
      model,
      random,
      homeGateway: identity.index % options.gateways,
      link,
      initialDataRate,
      macProfile,
      mac: sessionMac(region, device, initialDataRate, macProfile),
      battery: createDeviceBattery(model.kind, 200 + Math.floor(linkRandom() * 55)),
      lastReading: null,
      macActivity: emptyMacActivity(),
      lastUplinkWallMs: 0,
      quietUntilMs: 0,
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
 * The MAC layer of the device's current session: its channels (the region's defaults, the join-accept's CFList,
 * or the whole plan for ABP) and receive settings, or what the state file kept for the session; before an OTAA
 * join, the defaults it sends its join-requests on.
 */
export function sessionMac(region: Region, device: SimLorawanDevice, dataRate: number, profile: MacProfile): DeviceMac {
  const join = device.joinSettings();
  const rx = {
    rx1DelayS: join?.rx1DelayS ?? region.rx1DelaySeconds,
    rx1DrOffset: join?.rx1DrOffset ?? 0,
    rx2DataRate: join?.rx2DataRate ?? region.rx2DataRate,
    rx2FrequencyHz: region.rx2FrequencyHz,
  };
  const channels = deviceUplinkChannels(region, device.identity.activation.mode, join);
  return createDeviceMac(
    { region, channels, dataRate, rx, adr: profile.adr, deviceTime: profile.deviceTime, linkCheckEveryUplinks: profile.linkCheckEveryUplinks },
    device.savedMac() ?? undefined,
  );
}

/** The fastest of `dataRates` the link carries at the region's full power with INITIAL_LINK_MARGIN_DB to spare, else the slowest. */
function linkDataRate(region: Region, link: RadioLink, dataRates: readonly number[]): number {
  const carried = dataRates.filter((dataRate) => {
    const rate = region.dataRates.get(dataRate);
    const floor = rate === undefined ? null : requiredSnrDb(rate.spreadingFactor);
    return (
      rate !== undefined && floor !== null && region.defaultMaxEirpDbm - link.pathLossDb - noiseFloorDbm(rate.bandwidthKHz) >= floor + INITIAL_LINK_MARGIN_DB
    );
  });
  return carried.at(0) ?? dataRates.at(-1) ?? region.uplinkDataRates[0] ?? 0;
}

export function emptyMacActivity(): MacActivity {
  return {
    received: {},
    applied: {},
    refused: {},
    ignored: {},
    answered: {},
    requested: {},
    carriers: { fopts: 0, port0: 0 },
    unknown: 0,
    adrChanges: [],
    linkChecks: [],
    deviceTime: null,
    devStatus: [],
  };
}

/**
 * The data rates devices pick from: near a gateway SF7, farther ones up to SF10, on 125 kHz channels (EU868
 * DR5..DR2), leaving out rates that cannot carry a 51-byte reading (US915 DR0: 11 bytes). Fastest first.
 */
function memberDataRates(region: Region): number[] {
  return region.uplinkDataRates
    .filter((index) => {
      const rate = region.dataRates.get(index);
      return rate !== undefined && rate.bandwidthKHz === 125 && rate.spreadingFactor <= 10 && (region.maxPayloadSize(index, 'up')?.n ?? 0) >= 51;
    })
    .sort((a, b) => (region.dataRates.get(a)?.spreadingFactor ?? 0) - (region.dataRates.get(b)?.spreadingFactor ?? 0));
}

/** The device's radio now. */
export function radioReport(region: Region, member: Member): RadioReport {
  const settings = member.mac.settings();
  return {
    adr: member.macProfile.adr,
    dataRate: settings.dataRate,
    datr: region.datrFromDataRate(settings.dataRate),
    txPowerIndex: settings.txPowerIndex,
    txPowerDbm: member.mac.txPowerDbm(),
    nbTrans: settings.nbTrans,
    pathLossDb: member.link.pathLossDb,
    enabledChannels: settings.enabled,
  };
}

/** `counts` with one more of `name`. */
export function countOne(counts: Record<string, number>, name: string): void {
  counts[name] = (counts[name] ?? 0) + 1;
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

export function deviceReport(region: Region, member: Member): DeviceReport {
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
    radio: radioReport(region, member),
    mac: member.macActivity,
    lost: member.frames.filter((frame) => frame.snrDb === null && frame.kind !== 'replay').length,
    ...(member.intervalMs === 0 ? {} : { intervalS: member.intervalMs / 1_000 }),
    ...(member.failure === null ? {} : { failure: member.failure }),
  };
}

export function fleetTotals(region: Region, members: readonly Member[], tally: LorawanFleetTally, air: AirCounters): LorawanFleetTotals {
  const frames = members.flatMap((member) => member.frames);
  const count = (predicate: (frame: SentFrame) => boolean): number => frames.filter(predicate).length;
  const sum = (value: (member: Member) => number): number => members.reduce((total, member) => total + value(member), 0);
  const merged = (pick: (activity: MacActivity) => Record<string, number>): Record<string, number> => {
    const total: Record<string, number> = {};
    for (const member of members) for (const [name, n] of Object.entries(pick(member.macActivity))) total[name] = (total[name] ?? 0) + n;
    return total;
  };
  const dataRates: Record<string, number> = {};
  const txPowers: Record<string, number> = {};
  for (const member of members) {
    const radio = radioReport(region, member);
    countOne(dataRates, `DR${radio.dataRate}`);
    countOne(txPowers, `${radio.txPowerDbm} dBm`);
  }
  const adrChanges = members.flatMap((member) => member.macActivity.adrChanges);
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
    lost: count((frame) => frame.snrDb === null && frame.kind !== 'replay'),
    repetitions: count((frame) => frame.kind === 'repetition'),
    macFrames: count((frame) => frame.kind === 'mac'),
    macCommandsReceived: merged((activity) => activity.received),
    macCommandsAnswered: merged((activity) => activity.answered),
    macCommandsUnknown: sum((member) => member.macActivity.unknown),
    adrChanges: {
      linkAdrReq: adrChanges.filter((change) => change.cause === 'LinkADRReq').length,
      backoff: adrChanges.filter((change) => change.cause === 'backoff').length,
    },
    dataRates,
    txPowers,
  };
}
