// The state of an MQTT fleet run: per device, its readings in flight and its ledger of acknowledged seqs
// (and, when it takes commands, its subscription and state reports in flight); for the fleet, the counters,
// failures and ack latencies the progress lines and the report are made of.
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
  /** What the devices made of commands; null when the run took none (`commands` off). */
  readonly commands: MqttCommandsSummary | null;
  /** Per device id. */
  readonly ledger: ReadonlyMap<string, DeviceLedger>;
}

export interface MqttCommandsSummary {
  /** Devices whose subscription to devices/{id}/commands/# was granted (at least once). */
  readonly subscribed: number;
  /** Devices whose subscription the broker refused (SUBACK 0x80). */
  readonly subscribeRefused: number;
  /** Commands received (a redelivery counts again: MQTT QoS 1 is at least once). */
  readonly received: number;
  /** Commands the device acted on. */
  readonly applied: number;
  /** Commands refused: unknown to the device's model, or a payload it cannot use. */
  readonly refused: number;
  /** State reports (one per command) acknowledged by the gateway. */
  readonly reported: number;
  /** State reports never acknowledged when the run ended. */
  readonly unreported: number;
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
  /** Only for a run that takes commands: the per-reading paths check this one field and nothing more. */
  readonly commands: MqttDeviceCommands | undefined;
}

/** A state report sent after a command, until its PUBACK; re-sent after a reconnect, like a reading. */
export interface PendingReport {
  readonly payload: string;
  /** MqttDeviceState.connectionNumber of the latest send. */
  connectionNumber: number;
  packetId: number;
}

/** A device's side of commands. */
export interface MqttDeviceCommands {
  /** devices/{id}/commands/#, subscribed at every connect: a clean session forgets it. */
  readonly filter: string;
  /** devices/{id}/state, encoded once. */
  readonly stateTopic: Buffer;
  /** The SUBSCRIBE waiting for its SUBACK: packet id (0 = none) and the connection it went on. */
  subscribePacketId: number;
  subscribeConnection: number;
  everSubscribed: boolean;
  /** State reports sent and not yet acknowledged, oldest first. */
  readonly reports: PendingReport[];
  /** A config command's interval: at most one new reading per intervalMs; 0 = as the fleet rate allows. */
  intervalMs: number;
  /** performance.now() of the latest new reading. */
  lastReadingAt: number;
  /** Set while the device waits out its interval; it is offered a reading again when the timer fires. */
  holdTimer: NodeJS.Timeout | undefined;
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
  /** Only for a run that takes commands. */
  readonly commands: MqttCommandTally | undefined;
}

export interface MqttCommandTally {
  subscribed: number;
  subscribeRefused: number;
  received: number;
  applied: number;
  refused: number;
  reported: number;
  /** State reports sent and not yet acknowledged: the drain waits for them as for readings. */
  reportsInflight: number;
}

/** `commands`: the device subscribes to commands and reports its state on `stateTopic` (encoded). */
export function createMqttDeviceState(sim: SimDevice, topic: Buffer, commands?: { readonly stateTopic: Buffer }): MqttDeviceState {
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
    commands:
      commands === undefined
        ? undefined
        : {
            filter: `devices/${sim.id}/commands/#`,
            stateTopic: commands.stateTopic,
            subscribePacketId: 0,
            subscribeConnection: 0,
            everSubscribed: false,
            reports: [],
            intervalMs: 0,
            lastReadingAt: 0,
            holdTimer: undefined,
          },
  };
}

export function createMqttFleetTally(startedAt: number, commands = false): MqttFleetTally {
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
    commands: commands ? { subscribed: 0, subscribeRefused: 0, received: 0, applied: 0, refused: 0, reported: 0, reportsInflight: 0 } : undefined,
  };
}

/**
 * The next packet id (1..65535) not held on this connection by a reading or state report in flight or by
 * the SUBSCRIBE waiting for its SUBACK [MQTT-2.3.1-2].
 */
export function takePacketId(device: MqttDeviceState): number {
  let id = device.lastPacketId;
  do {
    id = id >= 0xffff ? 1 : id + 1;
  } while (isPacketIdTaken(device, id));
  device.lastPacketId = id;
  return id;
}

function isPacketIdTaken(device: MqttDeviceState, id: number): boolean {
  const { commands, connectionNumber } = device;
  if (device.pending.some((other) => other.packetId === id && other.connectionNumber === connectionNumber)) return true;
  if (commands === undefined) return false;
  return (
    (commands.subscribePacketId === id && commands.subscribeConnection === connectionNumber) ||
    commands.reports.some((other) => other.packetId === id && other.connectionNumber === connectionNumber)
  );
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

/** The device gives up: its readings (and state reports) in flight stay unacknowledged in its ledger. */
export function recordFailure(tally: MqttFleetTally, device: MqttDeviceState, reason: string): void {
  device.failure = reason;
  tally.failures[reason] = (tally.failures[reason] ?? 0) + 1;
  tally.failed += 1;
  tally.inflight -= device.pending.length;
  if (tally.commands !== undefined && device.commands !== undefined) tally.commands.reportsInflight -= device.commands.reports.length;
  if (!device.everConnected) tally.settled += 1;
  recordOffline(tally, device);
}

/** The SUBACK of the device's command subscription: granted or refused. */
export function recordSubscribed(tally: MqttFleetTally, device: MqttDeviceState, granted: boolean): void {
  const { commands } = device;
  if (commands === undefined || tally.commands === undefined) return;
  commands.subscribePacketId = 0;
  if (!granted) {
    tally.commands.subscribeRefused += 1;
    return;
  }
  if (!commands.everSubscribed) tally.commands.subscribed += 1;
  commands.everSubscribed = true;
}

/** A command arrived and the device acted on it (applied) or refused it; its state report goes in flight. */
export function recordCommand(tally: MqttFleetTally, device: MqttDeviceState, applied: boolean, report: string): PendingReport | undefined {
  const { commands } = device;
  if (commands === undefined || tally.commands === undefined) return undefined;
  tally.commands.received += 1;
  if (applied) tally.commands.applied += 1;
  else tally.commands.refused += 1;
  const pending: PendingReport = { payload: report, connectionNumber: 0, packetId: 0 };
  commands.reports.push(pending);
  tally.commands.reportsInflight += 1;
  return pending;
}

/** A state report's PUBACK; false if it was not in flight. */
export function recordReported(tally: MqttFleetTally, device: MqttDeviceState, report: PendingReport): boolean {
  const reports = device.commands?.reports;
  const position = reports?.indexOf(report) ?? -1;
  if (reports === undefined || tally.commands === undefined || position < 0) return false;
  reports.splice(position, 1);
  tally.commands.reportsInflight -= 1;
  tally.commands.reported += 1;
  return true;
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
    commands: tally.commands === undefined ? null : commandsSummary(tally.commands),
    ledger: new Map(devices.map((device) => [device.sim.id, deviceLedger(device)])),
  };
}

function commandsSummary(tally: MqttCommandTally): MqttCommandsSummary {
  const { subscribed, subscribeRefused, received, applied, refused, reported } = tally;
  return { subscribed, subscribeRefused, received, applied, refused, reported, unreported: received - reported };
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
