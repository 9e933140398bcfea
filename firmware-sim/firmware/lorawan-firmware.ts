// What a simulated LoRaWAN Class-A device does during a run: an OTAA device joins first (a new DevNonce per
// attempt, waiting for the join-accept in the join windows); then every device sends the fleet.ts readings
// of its kind, some confirmed (it waits for the ACK in RX1/RX2 and retransmits the same frame, same FCnt, if
// none comes), and the replays of old frames and forged MICs planned for it. After each uplink it listens in
// RX1/RX2 (in the background for unconfirmed ones) for a downlink: a command in it (device-commands.ts reads
// the FPort and bytes) goes to the model, so the next readings show it; a config command spaces the uplinks;
// a confirmed downlink is acknowledged by FCtrl.ACK in the next uplink (§4.3.1.2). Each frame and command goes
// into the member's record (state/lorawan-fleet-state.ts); the air (transports/lorawan-air.ts) carries it.
// The region decides the radio: a device transmits on one of its channels (the region's defaults, then the ones
// its join-accept's CFList gave it) at its data rate, and listens in RX1/RX2 on the frequencies and data rates
// the region derives from that uplink, with the RX1 delay, RX1DROffset and RX2 data rate its join-accept set.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Region } from '../../src/ingress/lorawan/region.ts';
import { applyDeviceCommand, parseLorawanCommand } from '../device-commands.ts';
import type { Pacer } from '../schedulers/pacer.ts';
import type { FrameKind, LorawanFleetTally, Member, SentFrame } from '../state/lorawan-fleet-state.ts';
import type { DownlinkWindows, LorawanAir, RadioSettings, ReceiveWindowSettings, Transmission } from '../transports/lorawan-air.ts';
import { encodeReading } from '../reading-payload.ts';
import { deviceUplinkChannels, type ReceivedDownlink, type RecentFrame } from '../transports/lorawan-device.ts';

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
}

/** Longer than the largest lorawan.dedup_window_ms (2 s): a copy within the window is a reception, not a replay. */
const REPLAY_MIN_AGE_MS = 2_500;

/** One transmission's channel and data rate. */
interface Radio extends RadioSettings {
  readonly dataRate: number;
}

/**
 * A channel of the device's (picked at random, as LoRaWAN devices hop) that allows its data rate; with none
 * that does, the first channel at its fastest rate.
 */
function pickRadio(run: LorawanFleetRun, member: Member): Radio {
  const { region } = run;
  const channels = deviceUplinkChannels(region, member.device.identity.activation.mode, member.device.joinSettings());
  const usable = channels.filter((channel) => channel.minDataRate <= member.dataRate && member.dataRate <= channel.maxDataRate);
  const channel = usable[Math.floor(member.random() * usable.length)];
  if (channel !== undefined) return { frequencyHz: channel.frequencyHz, dataRate: member.dataRate, datr: member.datr };
  const fallback = channels[0] ?? region.uplinkChannels[0];
  if (fallback === undefined) throw new Error(`${region.name} has no uplink channel`);
  return { frequencyHz: fallback.frequencyHz, dataRate: fallback.maxDataRate, datr: region.datrFromDataRate(fallback.maxDataRate) };
}

/**
 * The receive windows after an uplink on `radio` (§3.3): RX1 on the frequency and data rate the region derives
 * from the uplink's (if it can), RX2 one second later on its fixed ones. A join-request is answered after the
 * join-accept delays with the region's defaults; later uplinks use what the join-accept set (ABP: the defaults).
 */
function receiveWindows(run: LorawanFleetRun, member: Member, radio: Radio, kind: 'join' | 'data'): ReceiveWindowSettings[] {
  const { region } = run;
  const joined = kind === 'data' ? member.device.joinSettings() : null;
  const rx1DelayS = kind === 'join' ? region.joinAcceptDelay1Seconds : (joined?.rx1DelayS ?? region.rx1DelaySeconds);
  const rx2DelayS = kind === 'join' ? region.joinAcceptDelay2Seconds : rx1DelayS + 1;
  const rx2DataRate = joined?.rx2DataRate ?? region.rx2DataRate;
  const windows: ReceiveWindowSettings[] = [];
  const rx1FrequencyHz = region.rx1Frequency(radio.frequencyHz);
  if (rx1FrequencyHz !== null) {
    const rx1DataRate = region.rx1DataRate(radio.dataRate, joined?.rx1DrOffset ?? 0);
    windows.push({ delayS: rx1DelayS, frequencyHz: rx1FrequencyHz, datr: region.datrFromDataRate(rx1DataRate) });
  }
  windows.push({ delayS: rx2DelayS, frequencyHz: region.rx2FrequencyHz, datr: region.datrFromDataRate(rx2DataRate) });
  return windows;
}

/** A Class A device listens until its last window, RECEIVE_DELAY2 after the uplink (§3.3). */
function listeningMs(windows: readonly ReceiveWindowSettings[]): number {
  return Math.max(0, ...windows.map((window) => window.delayS)) * 1_000;
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
        return true;
      }
    }
    return false;
  } finally {
    run.tally.joining -= 1;
  }
}

/** A new reading; confirmed ones wait for the ACK and go again (same frame, same FCnt) until heard or out of tries. */
async function sendUplink(run: LorawanFleetRun, member: Member): Promise<void> {
  const { identity } = member.device;
  const encoded = encodeReading(member.model.nextReading(Date.now()), identity.codec);
  const confirmed = member.random() < run.settings.confirmedShare;
  const ack = member.ackDue;
  member.ackDue = false;
  member.lastUplinkAtMs = performance.now();
  const { phy, fcnt } = member.device.uplink(encoded.payload, identity.fport, confirmed, ack);
  const devAddr = member.device.session()?.devAddr ?? '';
  const frame = {
    fcnt,
    fport: identity.fport,
    confirmed,
    plaintextHex: encoded.payload.toString('hex'),
    phyHex: phy.toString('hex'),
    valid: true,
    ...(encoded.decoded === undefined ? {} : { decoded: encoded.decoded }),
  };
  if (!confirmed) {
    // Nothing to wait for: the device listens in the background and goes on (its downlink arrives ahead of RX1).
    const radio = pickRadio(run, member);
    const windows = receiveWindows(run, member, radio, 'data');
    const sent = await run.air.transmit(member, phy, radio, {
      windows,
      offer: (downlink) => takeDownlink(member, downlink) !== null,
    });
    member.listeningUntilMs = performance.now() + listeningMs(windows);
    setTimeout(() => sent.stopListening(), listeningMs(windows)).unref();
    member.device.markSent(fcnt);
    record(member, { ...frame, ...onAir(radio), kind: 'uplink', gateways: sent.gateways, pushAcked: sent.pushAcked }, devAddr);
    return;
  }
  for (let attempt = 0; attempt <= run.settings.maxRetransmissions; attempt++) {
    if (attempt > 0 && run.signal.aborted) return;
    const kind: FrameKind = attempt === 0 ? 'uplink' : 'retransmission';
    const { sent, acked, radio } = await transmitConfirmed(run, member, { phy, fcnt }, devAddr);
    record(member, { ...frame, ...onAir(radio), kind, gateways: sent.gateways, pushAcked: sent.pushAcked, acked }, devAddr);
    if (acked) return;
  }
}

/** The radio fields of a frame's record. */
function onAir(radio: Radio): Pick<SentFrame, 'frequencyHz' | 'datr'> {
  return { frequencyHz: radio.frequencyHz, datr: radio.datr };
}

/** One transmission of a confirmed frame, listening for its ACK in RX1/RX2 (or missing it on purpose). */
async function transmitConfirmed(
  run: LorawanFleetRun,
  member: Member,
  uplink: { readonly phy: Buffer; readonly fcnt: number },
  devAddr: string,
): Promise<{ sent: Transmission; acked: boolean; radio: Radio }> {
  const wait = waitable(run.signal, run.settings.ackTimeoutMs);
  const deaf = member.random() < run.settings.missedAckShare;
  const radio = pickRadio(run, member);
  const windows: DownlinkWindows = {
    windows: receiveWindows(run, member, radio, 'data'),
    offer(downlink) {
      if (deaf) {
        // The radio was not listening (interference, a collision): the ACK is lost on air.
        if (member.device.session()?.devAddr !== devAddr) return false;
        run.tally.acksMissed += 1;
        return true;
      }
      const received = takeDownlink(member, downlink);
      if (received === null) return false;
      if (!received.ack) return true;
      member.acks += 1;
      wait.heard();
      return true;
    },
  };
  const sent = await run.air.transmit(member, uplink.phy, radio, windows);
  // The replay clock of the frame starts at its push, not when the wait for the ACK ends.
  member.device.markSent(uplink.fcnt);
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
      ...onAir(radio),
      kind: 'corrupt',
      fcnt,
      fport: identity.fport,
      confirmed: false,
      plaintextHex: encoded.payload.toString('hex'),
      phyHex: phy.toString('hex'),
      valid: false,
    } as const;
    record(member, { ...frame, gateways: sent.gateways, pushAcked: sent.pushAcked }, member.device.session()?.devAddr ?? '');
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

async function sendReplay(run: LorawanFleetRun, member: Member, old: RecentFrame): Promise<void> {
  member.pendingReplays -= 1;
  const radio = pickRadio(run, member);
  const sent = await run.air.transmit(member, Buffer.from(old.phyHex, 'hex'), radio);
  // A second replay of the same frame within the dedup window would merge with this one.
  member.device.markSent(old.fcnt);
  const original = member.frames.find((frame) => frame.phyHex === old.phyHex);
  const frame = {
    ...onAir(radio),
    kind: 'replay',
    fcnt: old.fcnt,
    fport: original?.fport ?? member.device.identity.fport,
    confirmed: original?.confirmed ?? false,
    plaintextHex: original?.plaintextHex ?? '',
    phyHex: old.phyHex,
    valid: true,
  } as const;
  record(member, { ...frame, gateways: sent.gateways, pushAcked: sent.pushAcked }, original?.devAddr ?? member.device.session()?.devAddr ?? '');
}

/**
 * A downlink heard in a receive window, if it is this device's (DevAddr, MIC): a confirmed one is to be
 * acknowledged by the next uplink, and an application payload (FPort > 0) is a command to act on.
 */
function takeDownlink(member: Member, phy: Buffer): ReceivedDownlink | null {
  const received = member.device.receiveDownlink(phy);
  if (received === null) return null;
  if (received.confirmed) member.ackDue = true;
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

function record(member: Member, frame: Omit<SentFrame, 'devAddr' | 'sentAtMs'>, devAddr: string): void {
  member.frames.push({ ...frame, devAddr, sentAtMs: Date.now() });
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
