// The state of an MQTT fleet run: per device, its readings in flight and its ledger of acknowledged seqs;
// for the fleet, the counters, failures and ack latencies the progress lines and the report are made of.
// Only bookkeeping here: when to publish is the schedulers' call, what a device does the firmware's.
import { appendSeqRun, type DeviceLedger } from '../device-ledger.ts';
import type { SimDevice } from '../fleet.ts';
import { createLatencyHistogram, type LatencyHistogram, type LatencySummary } from '../latency-histogram.ts';
import type { RunStopReason } from '../schedulers/run-phases.ts';
import type { MqttDeviceConnection } from '../transports/mqtt-device.ts';

/** Why the run stopped starting new readings (see schedulers/run-phases.ts). */
export type MqttFleetStopReason = RunStopReason;

export interface MqttFleetProgress {
  readonly elapsedMs: number;
  readonly devices: number;
  /** Devices that have connected at least once. */
  readonly connected: number;
  /** Devices connected right now. */
  readonly online: number;
  readonly published: number;
  readonly acked: number;
  readonly resent: number;
  readonly failed: number;
  readonly reconnects: number;
  /** Readings published and not yet acknowledged. */
  readonly inflight: number;
  /** New readings per second since the previous snapshot. */
  readonly publishedPerSecond: number;
  /** Acks per second since the previous snapshot. */
  readonly ackedPerSecond: number;
}

export interface MqttFleetReport {
  readonly url: string;
  readonly qos: 0 | 1;
  readonly seed: number;
  readonly devices: number;
  /** Devices that connected at least once. */
  readonly connected: number;
  /** Distinct readings published (re-sends not counted). */
  readonly published: number;
  /** Readings acknowledged with a PUBACK (QoS 1); 0 for QoS 0. */
  readonly acked: number;
  /** published - acked at the end: readings the gateway never confirmed. */
  readonly unacked: number;
  /** Re-sends of unacknowledged readings after reconnects. */
  readonly resent: number;
  /** Devices that gave up. */
  readonly failed: number;
  /** Failed devices per reason. */
  readonly failures: Readonly<Record<string, number>>;
  /** Connection errors seen (by error code or message), including ones a reconnect recovered from. */
  readonly connectionErrors: Readonly<Record<string, number>>;
  /** Successful reconnections after a connection was lost. */
  readonly reconnects: number;
  readonly stoppedBy: MqttFleetStopReason;
  /** Wall time of the whole run: ramp-up, publishing, drain and disconnect. */
  readonly durationMs: number;
  /** From the start until publishing began (start 'together'), or 0 (start 'staggered'). */
  readonly rampUpMs: number;
  /** From the first publish to the last ack (to the last publish for QoS 0); the base of the rates. */
  readonly activeMs: number;
  readonly publishedPerSecond: number;
  readonly ackedPerSecond: number;
  /** PUBACK latency of each send (a re-send is timed from its own send). Zeros for QoS 0. */
  readonly ackLatencyMs: LatencySummary;
  /** Per device id. */
  readonly ledger: ReadonlyMap<string, DeviceLedger>;
}

export interface PendingReading {
  readonly seq: number;
  readonly payload: string;
  /** performance.now() of the latest send. */
  sentAt: number;
  /** MqttDeviceState.connectionNumber of the latest send; a PUBACK only counts on that same connection. */
  connectionNumber: number;
  packetId: number;
}

export interface MqttDeviceState {
  readonly sim: SimDevice;
  /** devices/{id}/{stream}, encoded once. */
  readonly topic: Buffer;
  connection: MqttDeviceConnection | undefined;
  online: boolean;
  /** Counts successful connections; packet ids are only meaningful within one. */
  connectionNumber: number;
  lastPacketId: number;
  everConnected: boolean;
  failure: string | undefined;
  closesWithoutAck: number;
  ackedOnThisConnection: boolean;
  /** Readings sent and not yet acknowledged, oldest first. */
  readonly pending: PendingReading[];
  readonly ackedRuns: number[];
  acked: number;
  published: number;
  resent: number;
}

/** Fleet-wide counters; each moves only through the functions below. */
export interface MqttFleetTally {
  readonly startedAt: number;
  firstPublishAt: number | undefined;
  /** performance.now() of the last delivery: the end of the active time the rates are based on. */
  lastActivityAt: number;
  published: number;
  acked: number;
  resent: number;
  failed: number;
  connected: number;
  online: number;
  reconnects: number;
  inflight: number;
  /** Devices that connected or failed at least once: when all have, the ramp-up is over. */
  settled: number;
  readonly failures: Record<string, number>;
  readonly connectionErrors: Record<string, number>;
  readonly latency: LatencyHistogram;
}

export function createMqttDeviceState(sim: SimDevice, topic: Buffer): MqttDeviceState {
  return {
    sim,
    topic,
    connection: undefined,
    online: false,
    connectionNumber: 0,
    lastPacketId: 0,
    everConnected: false,
    failure: undefined,
    closesWithoutAck: 0,
    ackedOnThisConnection: false,
    pending: [],
    ackedRuns: [],
    acked: 0,
    published: 0,
    resent: 0,
  };
}

export function createMqttFleetTally(startedAt: number): MqttFleetTally {
  return {
    startedAt,
    firstPublishAt: undefined,
    lastActivityAt: startedAt,
    published: 0,
    acked: 0,
    resent: 0,
    failed: 0,
    connected: 0,
    online: 0,
    reconnects: 0,
    inflight: 0,
    settled: 0,
    failures: {},
    connectionErrors: {},
    latency: createLatencyHistogram(),
  };
}

/** A new reading of the device goes in flight (it is sent by the caller). */
export function recordPublished(tally: MqttFleetTally, device: MqttDeviceState, now: number): PendingReading {
  const reading = device.sim.nextReading(Date.now());
  device.published = reading.seq;
  const pending: PendingReading = { seq: reading.seq, payload: JSON.stringify(reading), sentAt: 0, connectionNumber: 0, packetId: 0 };
  device.pending.push(pending);
  tally.published += 1;
  tally.inflight += 1;
  tally.firstPublishAt ??= now;
  return pending;
}

/** A reading was acknowledged (QoS 1) or handed to the socket (QoS 0); false if it was not in flight. */
export function recordDelivered(tally: MqttFleetTally, device: MqttDeviceState, reading: PendingReading, qos: 0 | 1, now: number): boolean {
  const position = device.pending.indexOf(reading);
  if (position < 0) return false;
  device.pending.splice(position, 1);
  tally.inflight -= 1;
  tally.lastActivityAt = now;
  if (qos === 1) {
    tally.latency.record(now - reading.sentAt);
    appendSeqRun(device.ackedRuns, reading.seq);
    device.acked += 1;
    tally.acked += 1;
    device.ackedOnThisConnection = true;
    device.closesWithoutAck = 0;
  }
  return true;
}

/** The device's connection is up; true when it is its first ever. */
export function recordConnected(tally: MqttFleetTally, device: MqttDeviceState): boolean {
  device.online = true;
  tally.online += 1;
  device.connectionNumber += 1;
  device.ackedOnThisConnection = false;
  if (device.everConnected) {
    tally.reconnects += 1;
    return false;
  }
  device.everConnected = true;
  tally.connected += 1;
  tally.settled += 1;
  return true;
}

export function recordResent(tally: MqttFleetTally, device: MqttDeviceState): void {
  tally.resent += 1;
  device.resent += 1;
}

export function recordOffline(tally: MqttFleetTally, device: MqttDeviceState): void {
  if (device.online) tally.online -= 1;
  device.online = false;
}

/** QoS 0 readings taken while offline are gone: nothing will deliver them. */
export function dropPending(tally: MqttFleetTally, device: MqttDeviceState): void {
  tally.inflight -= device.pending.length;
  device.pending.length = 0;
}

/** The device gives up: its readings in flight stay unacknowledged in its ledger. */
export function recordFailure(tally: MqttFleetTally, device: MqttDeviceState, reason: string): void {
  device.failure = reason;
  tally.failures[reason] = (tally.failures[reason] ?? 0) + 1;
  tally.failed += 1;
  tally.inflight -= device.pending.length;
  if (!device.everConnected) tally.settled += 1;
  recordOffline(tally, device);
}

export function countConnectionError(tally: MqttFleetTally, error: string): void {
  tally.connectionErrors[error] = (tally.connectionErrors[error] ?? 0) + 1;
}

/** Progress snapshots; each rate is over the time since the previous snapshot. */
export function createProgressMeter(tally: MqttFleetTally, devices: number): () => MqttFleetProgress {
  let lastAt = tally.startedAt;
  let lastPublished = 0;
  let lastAcked = 0;
  return () => {
    const now = performance.now();
    const seconds = Math.max(0.001, (now - lastAt) / 1_000);
    const { connected, online, published, acked, resent, failed, reconnects, inflight } = tally;
    const publishedPerSecond = Math.round((published - lastPublished) / seconds);
    const ackedPerSecond = Math.round((acked - lastAcked) / seconds);
    lastAt = now;
    lastPublished = published;
    lastAcked = acked;
    const elapsedMs = Math.round(now - tally.startedAt);
    return { elapsedMs, devices, connected, online, published, acked, resent, failed, reconnects, inflight, publishedPerSecond, ackedPerSecond };
  };
}

export interface MqttRunOutcome {
  readonly url: string;
  readonly qos: 0 | 1;
  readonly seed: number;
  readonly stoppedBy: MqttFleetStopReason;
  readonly rampUpMs: number;
}

export function buildMqttFleetReport(tally: MqttFleetTally, devices: readonly MqttDeviceState[], outcome: MqttRunOutcome): MqttFleetReport {
  const activeMs = tally.firstPublishAt === undefined ? 0 : Math.max(0, tally.lastActivityAt - tally.firstPublishAt);
  const perSecond = (count: number): number => (activeMs > 0 ? Math.round((count * 1_000) / activeMs) : 0);
  const { connected, published, acked, resent, failed, failures, connectionErrors, reconnects } = tally;
  return {
    url: outcome.url,
    qos: outcome.qos,
    seed: outcome.seed,
    devices: devices.length,
    connected,
    published,
    acked,
    unacked: published - acked,
    resent,
    failed,
    failures,
    connectionErrors,
    reconnects,
    stoppedBy: outcome.stoppedBy,
    durationMs: Math.round(performance.now() - tally.startedAt),
    rampUpMs: Math.round(outcome.rampUpMs),
    activeMs: Math.round(activeMs),
    publishedPerSecond: perSecond(published),
    ackedPerSecond: perSecond(acked),
    ackLatencyMs: tally.latency.summary(),
    ledger: new Map(devices.map((device) => [device.sim.id, deviceLedger(device)])),
  };
}

function deviceLedger(device: MqttDeviceState): DeviceLedger {
  return {
    deviceId: device.sim.id,
    ackedRuns: device.ackedRuns,
    acked: device.acked,
    unacked: device.published - device.acked,
    published: device.published,
    resent: device.resent,
    ...(device.failure === undefined ? {} : { failure: device.failure }),
  };
}
