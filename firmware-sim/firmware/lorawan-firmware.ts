// What a simulated LoRaWAN Class-A device does during a run: an OTAA device joins first (a new DevNonce per
// attempt, waiting for the join-accept in the join windows); then every device sends the fleet.ts readings
// of its kind, some confirmed (it waits for the ACK in RX1/RX2 and retransmits the same frame, same FCnt, if
// none comes), unconfirmed ones NbTrans times (same FCnt, until a downlink comes), and the replays of old frames
// and forged MICs planned for it. After each uplink it listens in RX1/RX2 for a downlink, and like any Class A
// device it does not transmit again before RX1 has passed without one (RX2 it keeps listening to): a command in it
// (device-commands.ts reads the FPort and bytes) goes to the model, so the next readings show it; a config command
// spaces the uplinks; a confirmed downlink is acknowledged by FCtrl.ACK in the next uplink (§4.3.1.2); MAC commands
// go to the device's MAC layer (lorawan-mac.ts, through lorawan-mac-activity.ts), whose answers, ADR bits and
// ADR_ACK_CNT backoff ride in the next uplinks. Each frame and command goes into the member's record
// (state/lorawan-fleet-state.ts); the air (transports/lorawan-air.ts) carries it, through the device's radio link.
// The region and the MAC layer decide the radio: a device transmits on one of its enabled channels at its data
// rate and TX power, and listens in RX1/RX2 on the frequencies and data rates the region derives from that uplink,
// with the receive settings of its join-accept or of RXParamSetupReq/RXTimingSetupReq/DlChannelReq.
import { setTimeout as sleep } from 'node:timers/promises';
import { lorawanAirtimeMs } from '../../src/ingress/lorawan/airtime.ts';
import type { Region } from '../../src/ingress/lorawan/region.ts';
import { applyDeviceCommand, parseLorawanCommand } from '../device-commands.ts';
import type { Pacer } from '../schedulers/pacer.ts';
import {
  type DeviceFrameEvent,
  type FrameKind,
  type LorawanFleetTally,
  type Member,
  radioReport,
  type SentFrame,
  sessionMac,
} from '../state/lorawan-fleet-state.ts';
import type { DownlinkWindows, HeardDownlink, LorawanAir, ReceiveWindowSettings, TransmitSettings, Transmission } from '../transports/lorawan-air.ts';
import { encodeReading } from '../reading-payload.ts';
import type { BuiltUplink, ReceivedDownlink, RecentFrame } from '../transports/lorawan-device.ts';
import { fitsBeside, macOnlyFrame, nextUplinkMac, recordUplinkMac, takeDownlinkMac, type UplinkMac } from './lorawan-mac-activity.ts';

export interface LorawanFirmwareSettings {
  /** Share of uplinks sent confirmed, 0..1. */
  readonly confirmedShare: number;
  /** Share of ACKs the device fails to hear, to make it retransmit. */
  readonly missedAckShare: number;
  /** Retransmissions of an unacknowledged confirmed uplink (NbTrans - 1). */
  readonly maxRetransmissions: number;
  readonly ackTimeoutMs: number;
  readonly joinTimeoutMs: number;
  /** Join-requests (each with a new DevNonce) before a device gives up. */
  readonly maxJoinAttempts: number;
  /** New uplinks per device; undefined: until the deadline. */
  readonly messagesPerDevice: number | undefined;
}

/** One fleet run: what the device functions below read and move. */
export interface LorawanFleetRun {
  readonly settings: LorawanFirmwareSettings;
  /** The regional parameters the devices follow. */
  readonly region: Region;
  readonly air: LorawanAir;
  readonly tally: LorawanFleetTally;
  readonly signal: AbortSignal;
  /** performance.now() after which no new uplink starts; Infinity without a duration. */
  readonly deadlineMs: number;
  /** The next transmission slot at the fleet's rate; false once aborted. */
  readonly pacer: Pacer;
  /** Told of every frame a device sends (not an attacker's). */
  readonly onFrame?: (event: DeviceFrameEvent) => void;
}

/** Longer than the largest lorawan.dedup_window_ms (2 s): a copy within the window is a reception, not a replay. */
const REPLAY_MIN_AGE_MS = 2_500;

/** One transmission's channel, data rate and power. */
interface Radio extends TransmitSettings {
  readonly dataRate: number;
  readonly txPowerIndex: number;
}

/**
 * An enabled channel of the device's that allows its data rate (picked at random, as LoRaWAN devices hop); with
 * none that does, the first enabled channel at its fastest rate.
 */
function pickRadio(run: LorawanFleetRun, member: Member): Radio {
  const { region } = run;
  const settings = member.mac.settings();
  const power = { txPowerDbm: member.mac.txPowerDbm(), txPowerIndex: settings.txPowerIndex };
  const usable = member.mac.usableChannels();
  const channel = usable[Math.floor(member.random() * usable.length)];
  if (channel !== undefined)
    return { frequencyHz: channel.frequencyHz, dataRate: settings.dataRate, datr: region.datrFromDataRate(settings.dataRate), ...power };
  const fallback = settings.channels.find((candidate) => settings.enabled.includes(candidate.index)) ?? region.uplinkChannels[0];
  if (fallback === undefined) throw new Error(`${region.name} has no uplink channel`);
  return { frequencyHz: fallback.frequencyHz, dataRate: fallback.maxDataRate, datr: region.datrFromDataRate(fallback.maxDataRate), ...power };
}

/**
 * The receive windows after an uplink on `radio` (§3.3): RX1 on the frequency and data rate the region derives
 * from the uplink's (if it can; a DlChannelReq may have set the frequency), RX2 one second later on its fixed ones.
 * A join-request is answered after the join-accept delays with the region's defaults; later uplinks use the
 * session's receive settings (the join-accept's, ABP the region's, or what RXParamSetupReq/RXTimingSetupReq set).
 */
function receiveWindows(run: LorawanFleetRun, member: Member, radio: Radio, kind: 'join' | 'data'): ReceiveWindowSettings[] {
  const { region } = run;
  const rx =
    kind === 'join'
      ? { rx1DelayS: region.joinAcceptDelay1Seconds, rx1DrOffset: 0, rx2DataRate: region.rx2DataRate, rx2FrequencyHz: region.rx2FrequencyHz }
      : member.mac.settings().rx;
  const rx2DelayS = kind === 'join' ? region.joinAcceptDelay2Seconds : rx.rx1DelayS + 1;
  const windows: ReceiveWindowSettings[] = [];
  const rx1FrequencyHz = kind === 'join' ? region.rx1Frequency(radio.frequencyHz) : member.mac.rx1FrequencyHz(radio.frequencyHz);
  if (rx1FrequencyHz !== null) {
    const rx1DataRate = region.rx1DataRate(radio.dataRate, rx.rx1DrOffset);
    windows.push({ delayS: rx.rx1DelayS, frequencyHz: rx1FrequencyHz, datr: region.datrFromDataRate(rx1DataRate) });
  }
  windows.push({ delayS: rx2DelayS, frequencyHz: rx.rx2FrequencyHz, datr: region.datrFromDataRate(rx.rx2DataRate) });
  return windows;
}

/** A Class A device listens until its last window, RECEIVE_DELAY2 after the uplink (§3.3). */
function listeningMs(windows: readonly ReceiveWindowSettings[]): number {
  return Math.max(0, ...windows.map((window) => window.delayS)) * 1_000;
}

/** Until its first window has passed (RX1, or RX2 without one) a device waits before it transmits again. */
function firstWindowMs(windows: readonly ReceiveWindowSettings[]): number {
  return Math.min(...windows.map((window) => window.delayS)) * 1_000;
}

/** The device's whole run: join if it must, its uplinks (with the planned extras), then the replays still due. */
export async function runDevice(run: LorawanFleetRun, member: Member): Promise<void> {
  if (member.device.session() === null && !(await join(run, member))) {
    if (!run.signal.aborted && performance.now() < run.deadlineMs) member.failure = 'join-failed';
    return;
  }
  const limit = run.settings.messagesPerDevice;
  for (let sent = 0; limit === undefined || sent < limit; sent += 1) {
    await waitForInterval(run, member);
    if (!(await pace(run))) break;
    await sendUplink(run, member);
    await sendExtras(run, member);
  }
  await flushReplays(run, member);
  // The last uplink's receive windows are still open: a command may come in them.
  await sleepUntil(run, member.listeningUntilMs);
}

/** With a reporting interval (a config command), the next uplink waits for it, or for the deadline. */
async function waitForInterval(run: LorawanFleetRun, member: Member): Promise<void> {
  if (member.intervalMs === 0 || member.lastUplinkAtMs === 0) return;
  await sleepUntil(run, Math.min(member.lastUplinkAtMs + member.intervalMs, run.deadlineMs));
}

async function sleepUntil(run: LorawanFleetRun, atMs: number): Promise<void> {
  const waitMs = atMs - performance.now();
  if (waitMs > 0 && !run.signal.aborted) await sleep(waitMs, undefined, { signal: run.signal }).catch(() => undefined);
}

/** A transmission slot before the deadline. */
async function pace(run: LorawanFleetRun): Promise<boolean> {
  return performance.now() < run.deadlineMs && (await run.pacer());
}

async function join(run: LorawanFleetRun, member: Member): Promise<boolean> {
  run.tally.joining += 1;
  try {
    for (let attempt = 0; attempt < run.settings.maxJoinAttempts; attempt++) {
      if (!(await pace(run))) return false;
      const { phy } = member.device.joinRequest();
      member.joinAttempts += 1;
      const wait = waitable(run.signal, run.settings.joinTimeoutMs);
      const radio = pickRadio(run, member);
      const sent = await run.air.transmit(member, phy, radio, {
        windows: receiveWindows(run, member, radio, 'join'),
        offer(downlink) {
          if (!member.device.acceptJoin(downlink)) return false;
          wait.heard();
          return true;
        },
      });
      const accepted = await wait.promise;
      sent.stopListening();
      if (accepted) {
        member.joinsAccepted += 1;
        // A new session: the channels of its CFList, the receive settings of the join-accept, ADR from the start.
        member.mac = sessionMac(run.region, member.device, member.initialDataRate, member.macProfile);
        return true;
      }
    }
    return false;
  } finally {
    run.tally.joining -= 1;
  }
}

/** What a frame of the device's carries besides its payload, for its record. */
type FrameBase = Omit<
  SentFrame,
  'devAddr' | 'sentAtMs' | 'kind' | 'gateways' | 'pushAcked' | 'frequencyHz' | 'datr' | 'dataRate' | 'txPowerIndex' | 'txPowerDbm' | 'snrDb'
>;

/**
 * A new reading, with the MAC answers and requests that fit beside it in FOpts; those that do not go first in a
 * frame of their own. Confirmed readings wait for the ACK and go again (same frame, same FCnt) until heard or out
 * of tries; unconfirmed ones go NbTrans times unless a downlink comes first.
 */
async function sendUplink(run: LorawanFleetRun, member: Member): Promise<void> {
  const { identity } = member.device;
  const reading = member.model.nextReading(Date.now());
  member.lastReading = reading;
  const encoded = encodeReading(reading, identity.codec);
  const confirmed = member.random() < run.settings.confirmedShare;
  member.lastUplinkAtMs = performance.now();
  let mac = nextUplinkMac(member);
  if (!fitsBeside(member, mac.bytes.length, encoded.payload.length)) {
    await sendMacFrame(run, member, mac);
    if (run.signal.aborted) return;
    // Repeated answers would not fit this time either: they go in the next uplink that has room.
    mac = nextUplinkMac(member);
    if (!fitsBeside(member, mac.bytes.length, encoded.payload.length)) mac = { ...mac, commands: [], bytes: Buffer.alloc(0) };
  }
  const ack = takeAckDue(member);
  const built = member.device.uplink(encoded.payload, identity.fport, confirmed, ack, { adr: mac.adr, adrAckReq: mac.adrAckReq, fopts: mac.bytes });
  recordUplinkMac(member, mac, built.fcnt);
  const frame: FrameBase = {
    fcnt: built.fcnt,
    fport: identity.fport,
    confirmed,
    plaintextHex: encoded.payload.toString('hex'),
    phyHex: built.phy.toString('hex'),
    valid: true,
    ...macFields(mac),
    ...(encoded.decoded === undefined ? {} : { decoded: encoded.decoded }),
  };
  if (!confirmed) {
    await sendUnconfirmed(run, member, built, frame, 'uplink');
    return;
  }
  for (let attempt = 0; attempt <= run.settings.maxRetransmissions; attempt++) {
    if (attempt > 0 && run.signal.aborted) return;
    const kind: FrameKind = attempt === 0 ? 'uplink' : 'retransmission';
    const { sent, acked, radio } = await transmitConfirmed(run, member, built);
    record(run, member, { ...frame, ...onAir(radio, sent), kind, acked });
    if (acked) return;
  }
}

/** MAC commands that did not fit beside the reading: alone, in FOpts (up to 15 bytes) or on FPort 0. */
async function sendMacFrame(run: LorawanFleetRun, member: Member, mac: UplinkMac): Promise<void> {
  const carrier = macOnlyFrame(mac.bytes);
  const built = member.device.uplink(carrier.payload, carrier.fport, false, takeAckDue(member), {
    adr: mac.adr,
    adrAckReq: mac.adrAckReq,
    fopts: carrier.fopts,
  });
  recordUplinkMac(member, mac, built.fcnt);
  const frame: FrameBase = {
    fcnt: built.fcnt,
    fport: carrier.fport ?? 0,
    confirmed: false,
    plaintextHex: carrier.payload.toString('hex'),
    phyHex: built.phy.toString('hex'),
    valid: true,
    ...macFields(mac),
  };
  await sendUnconfirmed(run, member, built, frame, 'mac');
}

/** The FCtrl.ACK of a confirmed downlink heard since the last uplink goes in the next frame (§4.3.1.2). */
function takeAckDue(member: Member): boolean {
  const ack = member.ackDue;
  member.ackDue = false;
  return ack;
}

function macFields(mac: UplinkMac): Pick<SentFrame, 'adr' | 'adrAckReq' | 'macCommands'> {
  return { adr: mac.adr, adrAckReq: mac.adrAckReq, macCommands: mac.commands.map((command) => command.command) };
}

/**
 * An unconfirmed frame, NbTrans times (LoRaWAN 1.0.4 §5.3): each transmission waits for its RX1 (a Class A device
 * sends nothing while its windows are open), and a downlink in its windows ends the repetitions.
 */
async function sendUnconfirmed(run: LorawanFleetRun, member: Member, built: BuiltUplink, frame: FrameBase, kind: FrameKind): Promise<void> {
  const nbTrans = member.mac.settings().nbTrans;
  for (let transmission = 0; transmission < nbTrans; transmission++) {
    if (transmission > 0 && run.signal.aborted) return;
    const heard = await transmitUnconfirmed(run, member, built, frame, transmission === 0 ? kind : 'repetition');
    if (heard) return;
  }
}

/** One transmission; resolves once a downlink came in its windows (true) or its RX1 passed without one (false). */
async function transmitUnconfirmed(run: LorawanFleetRun, member: Member, built: BuiltUplink, frame: FrameBase, kind: FrameKind): Promise<boolean> {
  await sleepUntil(run, member.quietUntilMs);
  const radio = pickRadio(run, member);
  const windows = receiveWindows(run, member, radio, 'data');
  const window = waitable(run.signal, firstWindowMs(windows));
  member.lastUplinkWallMs = Date.now();
  const sent = await run.air.transmit(member, built.phy, radio, {
    windows,
    offer(downlink, heard) {
      if (takeDownlink(member, downlink, heard) === null) return false;
      window.heard();
      return true;
    },
  });
  member.listeningUntilMs = performance.now() + listeningMs(windows);
  setTimeout(() => sent.stopListening(), listeningMs(windows)).unref();
  member.device.markSent(built.fcnt);
  keepDutyCycle(run, member, radio, built.phy);
  record(run, member, { ...frame, ...onAir(radio, sent), kind });
  return window.promise;
}

/** The radio fields of a frame's record. */
function onAir(
  radio: Radio,
  sent: Transmission,
): Pick<SentFrame, 'frequencyHz' | 'datr' | 'dataRate' | 'txPowerIndex' | 'txPowerDbm' | 'snrDb' | 'gateways' | 'pushAcked'> {
  const snrs = sent.heardBy.map((reception) => reception.snrDb);
  return {
    frequencyHz: radio.frequencyHz,
    datr: radio.datr,
    dataRate: radio.dataRate,
    txPowerIndex: radio.txPowerIndex,
    txPowerDbm: radio.txPowerDbm,
    snrDb: snrs.length === 0 ? null : Math.max(...snrs),
    gateways: sent.gateways,
    pushAcked: sent.pushAcked,
  };
}

/** DutyCycleReq's aggregated duty cycle: after a frame of airtime T the device keeps quiet T x (2^MaxDutyCycle - 1). */
function keepDutyCycle(run: LorawanFleetRun, member: Member, radio: Radio, phy: Buffer): void {
  const { maxDutyCycle } = member.mac.settings();
  if (maxDutyCycle === 0) return;
  const airtimeMs = lorawanAirtimeMs(radio.datr, run.region.codingRate, phy.length, 'up') ?? 0;
  member.quietUntilMs = performance.now() + airtimeMs * (2 ** maxDutyCycle - 1);
}

/** One transmission of a confirmed frame, listening for its ACK in RX1/RX2 (or missing it on purpose). */
async function transmitConfirmed(run: LorawanFleetRun, member: Member, uplink: BuiltUplink): Promise<{ sent: Transmission; acked: boolean; radio: Radio }> {
  await sleepUntil(run, member.quietUntilMs);
  const devAddr = member.device.session()?.devAddr ?? '';
  const wait = waitable(run.signal, run.settings.ackTimeoutMs);
  const deaf = member.random() < run.settings.missedAckShare;
  const radio = pickRadio(run, member);
  const windows: DownlinkWindows = {
    windows: receiveWindows(run, member, radio, 'data'),
    offer(downlink, heard) {
      if (deaf) {
        // The radio was not listening (interference, a collision): the ACK is lost on air.
        if (member.device.session()?.devAddr !== devAddr) return false;
        run.tally.acksMissed += 1;
        return true;
      }
      const received = takeDownlink(member, downlink, heard);
      if (received === null) return false;
      if (!received.ack) return true;
      member.acks += 1;
      wait.heard();
      return true;
    },
  };
  member.lastUplinkWallMs = Date.now();
  const sent = await run.air.transmit(member, uplink.phy, radio, windows);
  // The replay clock of the frame starts at its push, not when the wait for the ACK ends.
  member.device.markSent(uplink.fcnt);
  keepDutyCycle(run, member, radio, uplink.phy);
  const acked = await wait.promise;
  sent.stopListening();
  return { sent, acked, radio };
}

/** The forgery and the replay planned for this device, if any, after one of its uplinks. */
async function sendExtras(run: LorawanFleetRun, member: Member): Promise<void> {
  const { identity } = member.device;
  if (member.pendingCorrupt > 0 && (await pace(run))) {
    member.pendingCorrupt -= 1;
    const encoded = encodeReading(member.model.nextReading(Date.now()), identity.codec);
    const { phy, fcnt } = member.device.corruptUplink(encoded.payload, identity.fport);
    const radio = pickRadio(run, member);
    const sent = await run.air.transmit(member, phy, radio);
    const frame = {
      kind: 'corrupt',
      fcnt,
      fport: identity.fport,
      confirmed: false,
      plaintextHex: encoded.payload.toString('hex'),
      phyHex: phy.toString('hex'),
      valid: false,
      adr: false,
      adrAckReq: false,
      macCommands: [],
    } as const;
    record(run, member, { ...frame, ...onAir(radio, sent) }, member.device.session()?.devAddr ?? '');
  }
  if (member.pendingReplays > 0) {
    const old = member.device.replayCandidate(member.random, Date.now() - REPLAY_MIN_AGE_MS);
    if (old !== null && (await pace(run))) await sendReplay(run, member, old);
  }
}

/** Replays still planned when a device has sent its uplinks: wait until an old frame is old enough. */
async function flushReplays(run: LorawanFleetRun, member: Member): Promise<void> {
  while (member.pendingReplays > 0 && !run.signal.aborted) {
    const old = member.device.replayCandidate(member.random, Number.POSITIVE_INFINITY);
    if (old === null) return;
    const waitMs = old.sentAtMs + REPLAY_MIN_AGE_MS - Date.now();
    if (waitMs > 0) await sleep(waitMs, undefined, { signal: run.signal }).catch(() => undefined);
    if (!(await run.pacer())) return;
    await sendReplay(run, member, old);
  }
}

/** An attacker next to the device's home forwarder sends an old frame again: always heard, whatever the device's link. */
async function sendReplay(run: LorawanFleetRun, member: Member, old: RecentFrame): Promise<void> {
  member.pendingReplays -= 1;
  const radio = pickRadio(run, member);
  const attacker = { homeGateway: member.homeGateway, random: member.random, link: null };
  const sent = await run.air.transmit(attacker, Buffer.from(old.phyHex, 'hex'), radio);
  // A second replay of the same frame within the dedup window would merge with this one.
  member.device.markSent(old.fcnt);
  const original = member.frames.find((frame) => frame.phyHex === old.phyHex);
  const frame = {
    kind: 'replay',
    fcnt: old.fcnt,
    fport: original?.fport ?? member.device.identity.fport,
    confirmed: original?.confirmed ?? false,
    plaintextHex: original?.plaintextHex ?? '',
    phyHex: old.phyHex,
    valid: true,
    adr: original?.adr ?? false,
    adrAckReq: original?.adrAckReq ?? false,
    macCommands: original?.macCommands ?? [],
  } as const;
  record(run, member, { ...frame, ...onAir(radio, sent) }, original?.devAddr ?? member.device.session()?.devAddr ?? '');
}

/**
 * A downlink heard in a receive window, if it is this device's (DevAddr, MIC): a confirmed one is to be
 * acknowledged by the next uplink, its MAC commands go to the MAC layer (any downlink also ends repeated answers
 * and ADR_ACK_CNT), and an application payload (FPort > 0) is a command to act on.
 */
function takeDownlink(member: Member, phy: Buffer, heard: HeardDownlink): ReceivedDownlink | null {
  const received = member.device.receiveDownlink(phy);
  if (received === null) return null;
  if (received.confirmed) member.ackDue = true;
  takeDownlinkMac(member, received, heard);
  if (received.fport !== null && received.fport > 0) actOnCommand(member, received, received.fport);
  return received;
}

/** Reads the command, has the model act on it (the next readings show it), and records what it did. */
function actOnCommand(member: Member, downlink: ReceivedDownlink, fport: number): void {
  const { name, command } = parseLorawanCommand(member.model.kind, fport, downlink.payload);
  const done = applyDeviceCommand(member.model, command);
  if (done.intervalS !== undefined) member.intervalMs = done.intervalS * 1_000;
  member.commands.push({
    fcntDown: downlink.fcntDown,
    fport,
    confirmed: downlink.confirmed,
    payloadHex: downlink.payload.toString('hex'),
    name,
    applied: done.applied,
    result: done.result,
    effectiveFromFcnt: member.device.session()?.fcntUp ?? 0,
    receivedAtMs: Date.now(),
  });
}

/** Keeps the frame in the member's record; the run's onFrame hook hears of the device's own frames. */
function record(run: LorawanFleetRun, member: Member, frame: Omit<SentFrame, 'devAddr' | 'sentAtMs'>, devAddr = member.device.session()?.devAddr ?? ''): void {
  const sentFrame: SentFrame = { ...frame, devAddr, sentAtMs: Date.now() };
  member.frames.push(sentFrame);
  if (run.onFrame === undefined || frame.kind === 'replay' || frame.kind === 'corrupt') return;
  const { identity } = member.device;
  run.onFrame({
    name: identity.name,
    devEui: identity.devEui,
    frame: sentFrame,
    radio: radioReport(run.region, member),
    setPathLossDb: (pathLossDb) => member.link.setPathLossDb(pathLossDb),
  });
}

/** Resolves true when `heard` is called, false after timeoutMs or on abort. */
function waitable(signal: AbortSignal, timeoutMs: number): { readonly promise: Promise<boolean>; heard(): void } {
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
