// What a simulated LoRaWAN Class-A device does during a run: an OTAA device joins first (a new DevNonce per
// attempt, waiting for the join-accept in the join windows); then every device sends the fleet.ts readings
// of its kind, some confirmed (it waits for the ACK in RX1/RX2 and retransmits the same frame, same FCnt, if
// none comes), and the replays of old frames and forged MICs planned for it. Each frame goes into the
// member's record (state/lorawan-fleet-state.ts); the air (transports/lorawan-air.ts) carries it.
import { setTimeout as sleep } from 'node:timers/promises';
import { EU868 } from '../../src/ingress/lorawan/region.ts';
import type { Pacer } from '../schedulers/pacer.ts';
import type { FrameKind, LorawanFleetTally, Member, SentFrame } from '../state/lorawan-fleet-state.ts';
import type { DownlinkWindows, LorawanAir, Transmission } from '../transports/lorawan-air.ts';
import { encodeReading } from '../reading-payload.ts';
import type { RecentFrame } from '../transports/lorawan-device.ts';

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

/** The device's whole run: join if it must, its uplinks (with the planned extras), then the replays still due. */
export async function runDevice(run: LorawanFleetRun, member: Member): Promise<void> {
  if (member.device.session() === null && !(await join(run, member))) {
    if (!run.signal.aborted && performance.now() < run.deadlineMs) member.failure = 'join-failed';
    return;
  }
  const limit = run.settings.messagesPerDevice;
  for (let sent = 0; limit === undefined || sent < limit; sent += 1) {
    if (!(await pace(run))) break;
    await sendUplink(run, member);
    await sendExtras(run, member);
  }
  await flushReplays(run, member);
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
      const sent = await run.air.transmit(member, phy, {
        delaysS: [EU868.joinAcceptDelay1Seconds, EU868.joinAcceptDelay2Seconds],
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
  const { phy, fcnt } = member.device.uplink(encoded.payload, identity.fport, confirmed);
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
    const sent = await run.air.transmit(member, phy);
    member.device.markSent(fcnt);
    record(member, { ...frame, kind: 'uplink', gateways: sent.gateways, pushAcked: sent.pushAcked }, devAddr);
    return;
  }
  for (let attempt = 0; attempt <= run.settings.maxRetransmissions; attempt++) {
    if (attempt > 0 && run.signal.aborted) return;
    const kind: FrameKind = attempt === 0 ? 'uplink' : 'retransmission';
    const { sent, acked } = await transmitConfirmed(run, member, { phy, fcnt }, devAddr);
    record(member, { ...frame, kind, gateways: sent.gateways, pushAcked: sent.pushAcked, acked }, devAddr);
    if (acked) return;
  }
}

/** One transmission of a confirmed frame, listening for its ACK in RX1/RX2 (or missing it on purpose). */
async function transmitConfirmed(
  run: LorawanFleetRun,
  member: Member,
  uplink: { readonly phy: Buffer; readonly fcnt: number },
  devAddr: string,
): Promise<{ sent: Transmission; acked: boolean }> {
  const wait = waitable(run.signal, run.settings.ackTimeoutMs);
  const deaf = member.random() < run.settings.missedAckShare;
  const windows: DownlinkWindows = {
    delaysS: [EU868.rx1DelaySeconds, EU868.rx1DelaySeconds + 1],
    offer(downlink) {
      if (deaf) {
        // The radio was not listening (interference, a collision): the ACK is lost on air.
        if (member.device.session()?.devAddr !== devAddr) return false;
        run.tally.acksMissed += 1;
        return true;
      }
      const received = member.device.receiveDownlink(downlink);
      if (received === null || !received.ack) return false;
      member.acks += 1;
      wait.heard();
      return true;
    },
  };
  const sent = await run.air.transmit(member, uplink.phy, windows);
  // The replay clock of the frame starts at its push, not when the wait for the ACK ends.
  member.device.markSent(uplink.fcnt);
  const acked = await wait.promise;
  sent.stopListening();
  return { sent, acked };
}

/** The forgery and the replay planned for this device, if any, after one of its uplinks. */
async function sendExtras(run: LorawanFleetRun, member: Member): Promise<void> {
  const { identity } = member.device;
  if (member.pendingCorrupt > 0 && (await pace(run))) {
    member.pendingCorrupt -= 1;
    const encoded = encodeReading(member.model.nextReading(Date.now()), identity.codec);
    const { phy, fcnt } = member.device.corruptUplink(encoded.payload, identity.fport);
    const sent = await run.air.transmit(member, phy);
    const frame = {
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
  const sent = await run.air.transmit(member, Buffer.from(old.phyHex, 'hex'));
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
  } as const;
  record(member, { ...frame, gateways: sent.gateways, pushAcked: sent.pushAcked }, original?.devAddr ?? member.device.session()?.devAddr ?? '');
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
