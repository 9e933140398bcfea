// Runs a simulated fleet as MQTT 3.1.1 clients (one connection per device) publishing JSON readings
// to `devices/{id}/{stream}` on the gateway's broker, and keeps an exact ledger of which readings were
// acknowledged. Devices behave like firmware: a reading waits for its PUBACK, an unacknowledged one is
// re-sent with the same seq after a reconnect, and a device the broker refuses gives up.
// mqtt.js owns each connection (CONNECT, keepalive, reconnect, TLS, DISCONNECT); readings bypass its
// publish(): see `send` for why.

import { connect } from 'mqtt';
import type { IClientOptions, MqttClient } from 'mqtt';
import { appendSeqRun } from '../device-ledger.ts';
import type { DeviceLedger } from '../device-ledger.ts';
import { createFleet } from '../fleet.ts';
import type { SimDevice } from '../fleet.ts';
import { createLatencyHistogram } from '../latency-histogram.ts';
import type { LatencySummary } from '../latency-histogram.ts';
import { encodePublish, encodeTopic } from './mqtt-publish-packet.ts';

export interface MqttFleetOptions {
  /** Broker URL: mqtt://host:1883, mqtts://host:8883 (tcp:// and tls:// too). */
  readonly url: string;
  /** Simulated devices, one MQTT connection each. */
  readonly devices: number;
  /**
   * Total new readings per second across the fleet, spread evenly (10 ms ticks, round-robin over the
   * devices that have a free in-flight slot). 0 = each device publishes as fast as its acks allow.
   */
  readonly ratePerSecond: number;
  /** Stop starting new readings this long (ms) after publishing starts (see `start`); 0 = until `messages` or abort. */
  readonly durationMs: number;
  /** Stop after this many new readings in total (re-sends not counted). */
  readonly messages?: number;
  readonly qos: 0 | 1;
  readonly seed: number;
  /** Topic level after the device id. Default 'telemetry'. */
  readonly stream?: string;
  /** If set, each device connects with username = its id and this password. */
  readonly password?: string;
  /** Unacknowledged readings a device may have at once. Default 1: wait for the PUBACK, like firmware. */
  readonly inflightPerDevice?: number;
  /** Connection attempts in progress at once while ramping up. Default 50. */
  readonly connectConcurrency?: number;
  /**
   * 'together' (default): connect the whole fleet first, then all devices start publishing and the
   * `durationMs` clock starts; a benchmark then measures the steady state, not the ramp-up.
   * 'staggered': each device publishes as soon as it is connected; the clock starts at once.
   * Devices that are still not connected at `connectDeadlineMs` join whenever they connect.
   */
  readonly start?: MqttFleetStart;
  /** Device id prefix (see FleetOptions.prefix). Default ''. */
  readonly prefix?: string;
  /** After the stop, how long to wait for outstanding acks (re-sending as needed). Default 10,000. */
  readonly drainTimeoutMs?: number;
  /** Give up when no device has connected within this long; with start 'together', stop waiting for the rest. Default 30,000. */
  readonly connectDeadlineMs?: number;
  /** Base reconnect delay; each device adds +-25 % jitter so a fleet does not reconnect in lockstep. Default 1,000. */
  readonly reconnectPeriodMs?: number;
  /**
   * MQTT 3.1.1 has no negative PUBACK: a broker that refuses a publish closes the connection
   * [MQTT-3.3.5-2]. A device whose connection closes this many times in a row with a publish
   * outstanding and no PUBACK is counted as failed. Default 3.
   */
  readonly maxClosesWithoutAck?: number;
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  /** Aborting stops at once (no drain), ends every client and resolves with the report. */
  readonly signal?: AbortSignal;
}

export type MqttFleetStart = 'together' | 'staggered';

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

export interface MqttFleetHooks {
  /** Called about once per second while the run is going. */
  onProgress?(snapshot: MqttFleetProgress): void;
}

export type MqttFleetStopReason = 'messages' | 'duration' | 'aborted' | 'all-failed' | 'no-connection';

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

const DEFAULT_STREAM = 'telemetry';
const noop = (): void => {};
const TICK_MS = 10;
const PROGRESS_MS = 1_000;
const END_TIMEOUT_MS = 3_000;
// A stalled scheduler (busy or descheduled process) catches up at most 1 s worth of tokens, so the
// rate holds on a loaded box; the catch-up burst is bounded anyway by the devices' free in-flight slots.
const MAX_CATCH_UP_S = 1;

interface PendingReading {
  readonly seq: number;
  readonly payload: string;
  /** performance.now() of the latest send. */
  sentAt: number;
  /** DeviceState.connection of the latest send; a PUBACK only counts on that same connection. */
  connection: number;
  packetId: number;
}

interface DeviceState {
  readonly sim: SimDevice;
  readonly topic: Buffer;
  client: MqttClient | undefined;
  online: boolean;
  /** Counts successful connections; packet ids are only meaningful within one. */
  connection: number;
  lastPacketId: number;
  everConnected: boolean;
  /** The first connection attempt has not ended yet (it holds a connectConcurrency slot). */
  firstAttemptPending: boolean;
  queued: boolean;
  failure: string | undefined;
  closesWithoutAck: number;
  ackedOnThisConnection: boolean;
  /** Readings sent and not yet acknowledged, oldest first. */
  readonly pending: PendingReading[];
  readonly ackedRuns: number[];
  acked: number;
  published: number;
  resent: number;
  retryTimer: NodeJS.Timeout | undefined;
}

/** Runs the fleet until the stop condition, then ends every client and reports. Never rejects once started. */
export async function runMqttFleet(options: MqttFleetOptions, hooks: MqttFleetHooks = {}): Promise<MqttFleetReport> {
  validateOptions(options);
  const qos = options.qos;
  const topicStream = options.stream ?? DEFAULT_STREAM;
  const inflightPerDevice = options.inflightPerDevice ?? 1;
  const connectConcurrency = options.connectConcurrency ?? 50;
  const drainTimeoutMs = options.drainTimeoutMs ?? 10_000;
  const connectDeadlineMs = options.connectDeadlineMs ?? 30_000;
  const reconnectPeriodMs = options.reconnectPeriodMs ?? 1_000;
  const maxClosesWithoutAck = options.maxClosesWithoutAck ?? 3;
  const messageLimit = options.messages ?? Number.POSITIVE_INFINITY;
  const rate = options.ratePerSecond;
  const startMode = options.start ?? 'together';

  const fleet = createFleet({ devices: options.devices, seed: options.seed, prefix: options.prefix ?? '' });
  const devices: DeviceState[] = fleet.map((sim) => ({
    sim,
    topic: encodeTopic(`devices/${sim.id}/${topicStream}`),
    client: undefined,
    online: false,
    connection: 0,
    lastPacketId: 0,
    everConnected: false,
    firstAttemptPending: false,
    queued: false,
    failure: undefined,
    closesWithoutAck: 0,
    ackedOnThisConnection: false,
    pending: [],
    ackedRuns: [],
    acked: 0,
    published: 0,
    resent: 0,
    retryTimer: undefined,
  }));

  const latency = createLatencyHistogram();
  const failures: Record<string, number> = {};
  const connectionErrors: Record<string, number> = {};
  const startedAt = performance.now();
  let firstPublishAt: number | undefined;
  let lastProgressAt = startedAt;
  let lastActivityAt = startedAt;
  let published = 0;
  let acked = 0;
  let resent = 0;
  let failed = 0;
  let connected = 0;
  let online = 0;
  let reconnects = 0;
  let inflight = 0;
  let lastProgressPublished = 0;
  let lastProgressAcked = 0;
  let nextToConnect = 0;
  let connecting = 0;
  let stoppedBy: MqttFleetStopReason | undefined;
  let finishing = false;
  let publishing = false;
  let rampUpMs = 0;
  /** Devices that connected or failed at least once: when all have, the ramp-up is over. */
  let settled = 0;

  // Devices with a free in-flight slot, waiting for a rate token: a ring of indices, each at most once.
  const ready = new Int32Array(devices.length);
  let readyHead = 0;
  let readySize = 0;
  let tokens = 0;
  let lastTickAt = startedAt;

  let tickTimer: NodeJS.Timeout | undefined;
  let durationTimer: NodeJS.Timeout | undefined;
  let drainTimer: NodeJS.Timeout | undefined;
  let deadlineTimer: NodeJS.Timeout | undefined;
  let progressTimer: NodeJS.Timeout | undefined;

  let resolveDone: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve;
  });

  const isActive = (device: DeviceState): boolean => !finishing && device.failure === undefined;

  const enqueue = (index: number): void => {
    const device = devices[index];
    if (device === undefined || device.queued) return;
    device.queued = true;
    ready[(readyHead + readySize) % ready.length] = index;
    readySize += 1;
  };

  const dequeue = (): DeviceState | undefined => {
    if (readySize === 0) return undefined;
    const device = devices[ready[readyHead] ?? 0];
    readyHead = (readyHead + 1) % ready.length;
    readySize -= 1;
    if (device !== undefined) device.queued = false;
    return device;
  };

  const canPublishNew = (device: DeviceState): boolean =>
    publishing && stoppedBy === undefined && isActive(device) && device.online && device.pending.length < inflightPerDevice && published < messageLimit;

  /**
   * Writes the PUBLISH straight to the connection mqtt.js manages, and `onPuback` matches the acks.
   * Through client.publish() mqtt.js clones each packet into its outgoing store, writes it in six
   * small chunks and logs ~30 times; at 1,000 devices that was the simulator's main CPU cost. Its
   * store would also re-send unacked QoS 1 publishes by itself after a reconnect, even with
   * clean: true, on top of our own re-send. Here the ledger is the only copy.
   */
  const send = (device: DeviceState, reading: PendingReading): void => {
    const stream = device.client?.stream;
    // Offline: the 'connect' handler re-sends it (QoS 1).
    if (!device.online || stream === undefined) return;
    reading.connection = device.connection;
    reading.packetId = 0;
    reading.packetId = qos === 1 ? nextPacketId(device) : 0;
    reading.sentAt = performance.now();
    const packet = encodePublish(device.topic, reading.payload, qos, reading.packetId);
    if (qos === 1) {
      stream.write(packet);
    } else {
      // QoS 0 has no ack: handing the bytes to the socket is as delivered as it gets.
      stream.write(packet, (err?: Error | null) => {
        if (!err && isActive(device) && reading.connection === device.connection) onDelivered(device, reading);
      });
    }
  };

  const nextPacketId = (device: DeviceState): number => {
    let id = device.lastPacketId;
    do {
      id = id >= 0xffff ? 1 : id + 1;
    } while (device.pending.some((other) => other.packetId === id && other.connection === device.connection));
    device.lastPacketId = id;
    return id;
  };

  const onPuback = (device: DeviceState, packetId: number | undefined): void => {
    const reading = device.pending.find((candidate) => candidate.packetId === packetId && candidate.connection === device.connection);
    // A PUBACK for nothing we are waiting for (e.g. a duplicate) changes nothing [MQTT-4.3.2].
    if (reading !== undefined) onDelivered(device, reading);
  };

  const publishNew = (device: DeviceState): void => {
    const reading = device.sim.nextReading(Date.now());
    device.published = reading.seq;
    const pendingReading: PendingReading = {
      seq: reading.seq,
      payload: JSON.stringify(reading),
      sentAt: 0,
      connection: 0,
      packetId: 0,
    };
    device.pending.push(pendingReading);
    published += 1;
    inflight += 1;
    firstPublishAt ??= performance.now();
    send(device, pendingReading);
    if (published >= messageLimit) beginStop('messages');
  };

  const replenish = (now: number): void => {
    tokens = Math.min(tokens + ((now - lastTickAt) / 1_000) * rate, Math.max(1, rate * MAX_CATCH_UP_S));
    lastTickAt = now;
  };

  /**
   * Without a rate, a device refills its free slots at once. With one, it takes a token now if one is
   * left and nobody is queued before it (so pacing does not hinge on timer resolution, which is poor
   * on a loaded box), and otherwise queues for the next tick.
   */
  const refill = (index: number, device: DeviceState): void => {
    if (!canPublishNew(device)) return;
    if (rate === 0) {
      while (canPublishNew(device)) publishNew(device);
      return;
    }
    if (readySize === 0) {
      replenish(performance.now());
      while (tokens >= 1 && canPublishNew(device)) {
        tokens -= 1;
        publishNew(device);
      }
    }
    if (canPublishNew(device)) enqueue(index);
  };

  const onDelivered = (device: DeviceState, reading: PendingReading): void => {
    const now = performance.now();
    const position = device.pending.indexOf(reading);
    if (position < 0) return;
    device.pending.splice(position, 1);
    inflight -= 1;
    lastActivityAt = now;
    if (qos === 1) {
      latency.record(now - reading.sentAt);
      appendSeqRun(device.ackedRuns, reading.seq);
      device.acked += 1;
      acked += 1;
      device.ackedOnThisConnection = true;
      device.closesWithoutAck = 0;
    }
    if (stoppedBy !== undefined) {
      checkDrained();
    } else {
      refill(device.sim.index, device);
    }
  };

  const tick = (): void => {
    replenish(performance.now());
    while (tokens >= 1 && stoppedBy === undefined) {
      const device = dequeue();
      if (device === undefined) break;
      if (!canPublishNew(device)) continue;
      publishNew(device);
      tokens -= 1;
      if (canPublishNew(device)) enqueue(device.sim.index);
    }
  };

  const countError = (key: string): void => {
    connectionErrors[key] = (connectionErrors[key] ?? 0) + 1;
  };

  const firstAttemptEnded = (device: DeviceState): void => {
    if (!device.firstAttemptPending) return;
    device.firstAttemptPending = false;
    connecting -= 1;
    startConnects();
  };

  const fail = (device: DeviceState, reason: string): void => {
    if (device.failure !== undefined || finishing) return;
    device.failure = reason;
    failures[reason] = (failures[reason] ?? 0) + 1;
    failed += 1;
    inflight -= device.pending.length;
    if (!device.everConnected) settled += 1;
    if (device.online) online -= 1;
    device.online = false;
    clearTimeout(device.retryTimer);
    if (device.client !== undefined) void endClient(device.client, false);
    firstAttemptEnded(device);
    if (failed === devices.length) {
      beginStop('all-failed');
      finish();
    } else if (stoppedBy !== undefined) {
      checkDrained();
    } else if (settled === devices.length) {
      startPublishing();
    }
  };

  const startDevice = (device: DeviceState): void => {
    const clientOptions: IClientOptions = {
      clientId: device.sim.id,
      protocolVersion: 4,
      clean: true,
      keepalive: 30,
      reconnectPeriod: Math.round(reconnectPeriodMs * (0.75 + Math.random() * 0.5)),
      connectTimeout: 10_000,
      // A QoS 0 reading taken while offline is dropped, as firmware without storage would.
      queueQoSZero: false,
      resubscribe: false,
      // PINGREQ every keepalive instead of re-arming a timer on every PUBACK (cheaper at high rates).
      reschedulePings: false,
      // mqtt.js logs through `debug` several times per packet; even disabled that costs CPU.
      log: noop,
    };
    if (options.password !== undefined) {
      clientOptions.username = device.sim.id;
      clientOptions.password = options.password;
    }
    if (options.ca !== undefined) clientOptions.ca = options.ca;
    if (options.cert !== undefined) clientOptions.cert = options.cert;
    if (options.key !== undefined) clientOptions.key = options.key;

    device.firstAttemptPending = true;
    connecting += 1;
    const client = connect(options.url, clientOptions);
    device.client = client;

    client.on('connect', () => {
      if (!isActive(device)) return;
      device.online = true;
      online += 1;
      device.connection += 1;
      // Each reading leaves at once: with inflight > 1 Nagle would hold the 2nd..nth PUBLISH back until
      // the first is ACKed at TCP level, adding latency that belongs to neither device nor gateway.
      const socket = client.stream as { setNoDelay?: (noDelay: boolean) => unknown };
      socket.setNoDelay?.(true);
      device.ackedOnThisConnection = false;
      if (device.everConnected) {
        reconnects += 1;
      } else {
        device.everConnected = true;
        connected += 1;
        settled += 1;
        if (publishing) clearTimeout(deadlineTimer);
      }
      // At-least-once, like firmware: what was not acknowledged goes again, same seq, same payload.
      // First, before anything below can publish new readings into `pending`.
      if (qos === 1) {
        for (const reading of device.pending) {
          resent += 1;
          device.resent += 1;
          send(device, reading);
        }
      }
      firstAttemptEnded(device);
      if (settled === devices.length) startPublishing();
      refill(device.sim.index, device);
    });

    client.on('close', () => {
      if (!isActive(device)) return;
      firstAttemptEnded(device);
      if (!device.online) return;
      device.online = false;
      online -= 1;
      if (qos === 0) {
        inflight -= device.pending.length;
        device.pending.length = 0;
      } else if (device.pending.length > 0 && !device.ackedOnThisConnection) {
        device.closesWithoutAck += 1;
        if (device.closesWithoutAck >= maxClosesWithoutAck) {
          fail(device, `connection closed ${device.closesWithoutAck} times with a publish outstanding and no PUBACK (publish not authorized?)`);
          return;
        }
      }
      if (stoppedBy !== undefined) checkDrained();
    });

    client.on('packetreceive', (packet) => {
      if (packet.cmd === 'puback' && isActive(device)) onPuback(device, packet.messageId);
    });

    client.on('error', (err: Error & { code?: unknown }) => {
      if (!isActive(device)) return;
      const code = err.code;
      if (typeof code === 'number' && err.message.startsWith('Connection refused')) {
        // CONNACK return codes [MQTT-3.2.2.3]: 3 (server unavailable) is temporary; the rest need a person.
        countError(err.message);
        if (code === 3) {
          clearTimeout(device.retryTimer);
          device.retryTimer = setTimeout(() => {
            device.retryTimer = undefined;
            if (isActive(device)) client.reconnect();
          }, reconnectPeriodMs);
          firstAttemptEnded(device);
        } else {
          fail(device, err.message);
        }
        return;
      }
      countError(typeof code === 'string' ? code : err.message);
    });
  };

  function startConnects(): void {
    while (connecting < connectConcurrency && nextToConnect < devices.length && stoppedBy === undefined) {
      const device = devices[nextToConnect];
      nextToConnect += 1;
      if (device !== undefined) startDevice(device);
    }
  }

  function startPublishing(): void {
    if (publishing || stoppedBy !== undefined) return;
    publishing = true;
    if (connected > 0) clearTimeout(deadlineTimer);
    rampUpMs = startMode === 'together' ? performance.now() - startedAt : 0;
    lastTickAt = performance.now();
    if (rate > 0) tickTimer = setInterval(tick, TICK_MS);
    if (options.durationMs > 0) durationTimer = setTimeout(() => beginStop('duration'), options.durationMs);
    for (const device of devices) refill(device.sim.index, device);
  }

  function checkDrained(): void {
    if (stoppedBy !== undefined && inflight <= 0) finish();
  }

  function beginStop(reason: MqttFleetStopReason): void {
    if (stoppedBy !== undefined) return;
    stoppedBy = reason;
    clearInterval(tickTimer);
    clearTimeout(durationTimer);
    clearTimeout(deadlineTimer);
    readySize = 0;
    for (const device of devices) device.queued = false;
    if (reason === 'messages' || reason === 'duration') {
      drainTimer = setTimeout(finish, drainTimeoutMs);
      // Deferred: beginStop can run inside publishNew, before the reading's bookkeeping is complete.
      setImmediate(checkDrained);
    }
  }

  function finish(): void {
    if (finishing) return;
    finishing = true;
    stoppedBy ??= 'aborted';
    clearInterval(tickTimer);
    clearTimeout(durationTimer);
    clearTimeout(drainTimer);
    clearTimeout(deadlineTimer);
    clearInterval(progressTimer);
    options.signal?.removeEventListener('abort', onAbort);
    const ends: Promise<void>[] = [];
    for (const device of devices) {
      clearTimeout(device.retryTimer);
      if (device.client !== undefined) ends.push(endClient(device.client, device.online));
    }
    void allWithin(ends, END_TIMEOUT_MS).then(() => {
      // A socket still open now (a peer that stopped reading) is destroyed: no handle outlives the run.
      for (const device of devices) device.client?.stream?.destroy();
      resolveDone();
    });
  }

  function onAbort(): void {
    beginStop('aborted');
    finish();
  }

  const snapshot = (): MqttFleetProgress => {
    const now = performance.now();
    const seconds = Math.max(0.001, (now - lastProgressAt) / 1_000);
    const progress: MqttFleetProgress = {
      elapsedMs: Math.round(now - startedAt),
      devices: devices.length,
      connected,
      online,
      published,
      acked,
      resent,
      failed,
      reconnects,
      inflight,
      publishedPerSecond: Math.round((published - lastProgressPublished) / seconds),
      ackedPerSecond: Math.round((acked - lastProgressAcked) / seconds),
    };
    lastProgressAt = now;
    lastProgressPublished = published;
    lastProgressAcked = acked;
    return progress;
  };

  if (options.signal?.aborted) {
    stoppedBy = 'aborted';
    finish();
  } else {
    options.signal?.addEventListener('abort', onAbort, { once: true });
    deadlineTimer = setTimeout(() => {
      if (connected > 0) {
        startPublishing();
      } else {
        beginStop('no-connection');
        finish();
      }
    }, connectDeadlineMs);
    if (startMode === 'staggered') startPublishing();
    const onProgress = hooks.onProgress;
    if (onProgress !== undefined) progressTimer = setInterval(() => onProgress(snapshot()), PROGRESS_MS);
    startConnects();
  }

  await done;

  const ledger = new Map<string, DeviceLedger>();
  for (const device of devices) {
    const entry: DeviceLedger = {
      deviceId: device.sim.id,
      ackedRuns: device.ackedRuns,
      acked: device.acked,
      unacked: device.published - device.acked,
      published: device.published,
      resent: device.resent,
      ...(device.failure === undefined ? {} : { failure: device.failure }),
    };
    ledger.set(device.sim.id, entry);
  }
  const activeMs = firstPublishAt === undefined ? 0 : Math.max(0, lastActivityAt - firstPublishAt);
  const perSecond = (count: number): number => (activeMs > 0 ? Math.round((count * 1_000) / activeMs) : 0);
  return {
    url: options.url,
    qos,
    seed: options.seed,
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
    stoppedBy: stoppedBy ?? 'aborted',
    durationMs: Math.round(performance.now() - startedAt),
    rampUpMs: Math.round(rampUpMs),
    activeMs: Math.round(activeMs),
    publishedPerSecond: perSecond(published),
    ackedPerSecond: perSecond(acked),
    ackLatencyMs: latency.summary(),
    ledger,
  };
}

/**
 * Ends a client; resolves when its socket is closed. Graceful (DISCONNECT) only when it is online:
 * mqtt.js then waits for its own outstanding packets (none: readings bypass it) before disconnecting.
 */
function endClient(client: MqttClient, online: boolean): Promise<void> {
  return new Promise((resolve) => {
    const stream = client.stream as { closed?: boolean } | undefined;
    const graceful = online && client.connected && Object.keys(client.outgoing).length === 0;
    // mqtt.js calls back from the socket's 'close' event; do not depend on it for a socket long closed.
    if (stream === undefined || stream.closed === true) {
      client.end(true);
      resolve();
      return;
    }
    client.end(!graceful, () => resolve());
  });
}

/** Waits for all of `promises`, or `timeoutMs`, whichever comes first; leaves no timer behind. */
function allWithin(promises: readonly Promise<void>[], timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
  });
  return Promise.race([Promise.all(promises).then(() => undefined), timeout]).finally(() => clearTimeout(timer));
}

function validateOptions(options: MqttFleetOptions): void {
  const integerAtLeast = (name: string, value: number | undefined, min: number): void => {
    if (value !== undefined && (!Number.isInteger(value) || value < min)) {
      throw new RangeError(`runMqttFleet: ${name} must be an integer >= ${min}, got ${value}`);
    }
  };
  const numberAtLeast = (name: string, value: number | undefined, min: number): void => {
    if (value !== undefined && (!Number.isFinite(value) || value < min)) {
      throw new RangeError(`runMqttFleet: ${name} must be a number >= ${min}, got ${value}`);
    }
  };
  integerAtLeast('devices', options.devices, 1);
  numberAtLeast('ratePerSecond', options.ratePerSecond, 0);
  numberAtLeast('durationMs', options.durationMs, 0);
  integerAtLeast('messages', options.messages, 1);
  integerAtLeast('inflightPerDevice', options.inflightPerDevice, 1);
  integerAtLeast('connectConcurrency', options.connectConcurrency, 1);
  numberAtLeast('drainTimeoutMs', options.drainTimeoutMs, 0);
  numberAtLeast('connectDeadlineMs', options.connectDeadlineMs, 0);
  numberAtLeast('reconnectPeriodMs', options.reconnectPeriodMs, 1);
  integerAtLeast('maxClosesWithoutAck', options.maxClosesWithoutAck, 1);
  if (options.start !== undefined && options.start !== 'together' && options.start !== 'staggered') {
    throw new RangeError(`runMqttFleet: start must be 'together' or 'staggered', got '${String(options.start)}'`);
  }
  if (options.qos !== 0 && options.qos !== 1) {
    throw new RangeError(`runMqttFleet: qos must be 0 or 1, got ${String(options.qos)}`);
  }
  if (!Number.isInteger(options.seed)) throw new RangeError(`runMqttFleet: seed must be an integer, got ${options.seed}`);
  if (options.stream !== undefined && (options.stream === '' || /[#+/]/.test(options.stream) || options.stream.includes('\u0000'))) {
    throw new RangeError(`runMqttFleet: stream must be one topic level without / + #, got '${options.stream}'`);
  }
  let protocol: string;
  try {
    protocol = new URL(options.url).protocol;
  } catch {
    throw new RangeError(`runMqttFleet: url is not a URL: '${options.url}'`);
  }
  // WebSocket URLs would need a test of the raw PUBLISH write over mqtt.js's ws stream first.
  if (!['mqtt:', 'mqtts:', 'tcp:', 'tls:', 'ssl:'].includes(protocol)) {
    throw new RangeError(`runMqttFleet: url must be mqtt://, mqtts://, tcp:// or tls://, got '${options.url}'`);
  }
}
