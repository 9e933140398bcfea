// Uplinks from The Things Network / The Things Stack v3 through its MQTT server integration: one MQTT
// client connection per TTS application (TTS allows one application per connection), subscribed to the
// uplink topic and to the event topics given a stream. Each uplink becomes a record keyed by DevEUI with
// the message as TTS sent it plus an `iotgw` object (f_cnt gap, application, local codec result), the
// same shape as uplinks terminated by the local LoRaWAN server, so one consumer handles both.
//
// TTS publishes at QoS 0 only: there is no acknowledgement to withhold and no retransmission, so whatever
// is published while this link is down, or cannot be committed, is lost; the f_cnt gap on the next
// record (and iotgw_ttn_missed_frames_total) makes such losses visible. The link reconnects on its own
// with exponential backoff and jitter, also after a refused CONNACK (a revoked key may be restored).
import { readFileSync } from 'node:fs';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { StateWrite } from '../../buffer/record-buffer.ts';
import { errorMessage } from '../../errors.ts';
import { backoffDelayMs } from '../../forward/backoff.ts';
import type { Component, HealthReport } from '../../ops/lifecycle.ts';
import { createOnceLogger, type Logger } from '../../ops/log.ts';
import type { Metrics } from '../../ops/metrics.ts';
import type { NewRecord } from '../../record/record.ts';
import { EVENT_TIME_MAX_FUTURE_MS, EVENT_TIME_MAX_PAST_MS } from '../../record/routes.ts';
import type { Accept } from '../ingress.ts';
import { decodePayload, type PayloadCodec } from '../lorawan-server/payload-codec.ts';
import { createFrameGapTracker, type FrameGapTracker, STATE_SCOPE } from './frame-gap-tracker.ts';
import { parseTtsEvent, parseTtsUplink, type TtsRejection, type TtsUplink } from './tts-uplink.ts';

/** The TTS application event topics (after v3/{username}/devices/{device id}/) that can be stored as streams. */
export const TTS_EVENTS = ['join', 'down/queued', 'down/sent', 'down/ack', 'down/nack', 'down/failed', 'service/data', 'location/solved'] as const;
export type TtsEventName = (typeof TTS_EVENTS)[number];

export interface TtnIngressOptions {
  /** mqtts://eu1.cloud.thethings.network:8883 or mqtt://host:1883. */
  readonly url: string;
  /** `{application id}@{tenant id}`. */
  readonly username: string;
  /** The API key; null: read passwordFile at start. */
  readonly password: string | null;
  readonly passwordFile: string | null;
  /** PEM CA bundle for a server with a private CA; null: the system store. */
  readonly caFile: string | null;
  readonly clientId: string;
  /** Uplink topic filters, {username} already substituted. */
  readonly uplinkTopics: readonly string[];
  readonly stream: string;
  /** Event name -> record stream; events not listed are not subscribed to. */
  readonly eventStreams: ReadonlyMap<TtsEventName, string>;
  /** Runs on uplinks that arrive without decoded_payload; null: none. */
  readonly codec: PayloadCodec | null;
  readonly reconnectInitialMs: number;
  readonly reconnectMaxMs: number;
  readonly maxMessageBytes: number;
  readonly rejectLogIntervalMs: number;
}

export interface TtnIngressDeps {
  readonly accept: Accept;
  /** Committed state of a scope (the per-device frame counters), read once at start. */
  readonly loadState: (scope: string) => Promise<ReadonlyMap<string, string>>;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly onReject?: (source: string, reason: string, detail: string) => void;
  /** Jitter source for the reconnect backoff. */
  readonly random?: () => number;
}

export interface TtnIngress extends Component {
  readonly application: string;
  isConnected(): boolean;
}

const SOURCE = 'ttn';
/** Messages whose commit is still pending before mqtt.js is asked to wait (TCP backpressure towards TTS). */
const MAX_IN_FLIGHT = 2_000;

/** The application id is the username up to the '@' of the tenant. */
export function applicationIdOf(username: string): string {
  const at = username.lastIndexOf('@');
  return at === -1 ? username : username.slice(0, at);
}

export function createTtnIngress(options: TtnIngressOptions, deps: TtnIngressDeps): TtnIngress {
  const application = applicationIdOf(options.username);
  const log = deps.log.child({ component: 'ingress.ttn', application });
  const { metrics } = deps;
  const rejectLog = createOnceLogger(options.rejectLogIntervalMs);
  const lossLog = createOnceLogger(options.rejectLogIntervalMs);
  const random = deps.random ?? Math.random;
  const eventTopics = [...options.eventStreams.keys()].map((event) => `v3/${options.username}/devices/+/${event}`);

  let client: MqttClient | null = null;
  let tracker: FrameGapTracker = createFrameGapTracker();
  let connected = false;
  let stopping = false;
  /** Consecutive failed connection attempts; 0 while connected. */
  let attempts = 0;
  let reconnectTimer: NodeJS.Timeout | null = null;
  /** What was last logged about the link ('connected', 'refused:5', 'error:ECONNREFUSED'), so each state is logged once. */
  let linkState = 'starting';
  let lastProblem = 'not connected yet';
  const inFlight = new Set<Promise<void>>();
  let waitingForRoom: (() => void) | null = null;

  function noteLink(state: string, level: 'info' | 'warn' | 'error', fields: Record<string, unknown>, message: string): void {
    if (linkState === state) return;
    linkState = state;
    log[level](fields, message);
  }

  function reject(rejection: TtsRejection | { reason: string; message: string }, topic: string): void {
    metrics.ingressRejected.inc({ source: SOURCE, reason: rejection.reason });
    deps.onReject?.(SOURCE, rejection.reason, rejection.message);
    if (!rejectLog.shouldLog(rejection.reason)) return;
    log.warn(
      { reason: rejection.reason, input: { topic } },
      `TTN message rejected: ${rejection.message} (logged once per reason every ${options.rejectLogIntervalMs / 1000} s; see iotgw_ingress_rejected_total)`,
    );
  }

  function track(work: Promise<void>): void {
    inFlight.add(work);
    void work.finally(() => {
      inFlight.delete(work);
      if (waitingForRoom !== null && inFlight.size < MAX_IN_FLIGHT) {
        const wake = waitingForRoom;
        waitingForRoom = null;
        wake();
      }
    });
  }

  /** Everything up to accept() is synchronous, so two messages of one device never interleave their counter checks. */
  function handleMessage(topic: string, bytes: Buffer): void {
    const receivedAtMs = Date.now();
    if (stopping) {
      reject({ reason: 'shutting-down', message: 'message arrived while the gateway was stopping; not stored' }, topic);
      return;
    }
    const event = eventOf(topic);
    if (event === 'up') {
      handleUplink(topic, bytes, receivedAtMs);
      return;
    }
    const stream = options.eventStreams.get(event as TtsEventName);
    if (stream === undefined) {
      reject({ reason: 'unexpected-topic', message: `no uplink or configured event on topic ${topic} (ttn.events names the events to store)` }, topic);
      return;
    }
    const parsed = parseTtsEvent(bytes, options.maxMessageBytes);
    if (!parsed.ok) {
      reject(parsed, topic);
      return;
    }
    const record: NewRecord = {
      key: parsed.value.devEui ?? parsed.value.deviceId,
      stream,
      source: SOURCE,
      receivedAtMs,
      eventTimeMs: receivedAtMs,
      payload: bytes,
      meta: { 'ttn-event': event, 'ttn-application': application },
    };
    track(commit([record], [], `${event} event of ${record.key}`));
  }

  function handleUplink(topic: string, bytes: Buffer, receivedAtMs: number): void {
    const parsed = parseTtsUplink(bytes, options.maxMessageBytes);
    if (!parsed.ok) {
      reject(parsed, topic);
      return;
    }
    const uplink = parsed.value;
    const verdict = tracker.observe(uplink.devEui, uplink.sessionKeyId, uplink.fCnt);
    if (verdict.kind === 'duplicate') {
      const message = `uplink f_cnt ${uplink.fCnt} of ${uplink.devEui} is not after the last one stored (${verdict.lastFCnt}) in the same session: a duplicate, dropped`;
      reject({ reason: 'duplicate', message }, topic);
      return;
    }
    if (verdict.gap > 0) metrics.ttnMissedFrames.inc({ application }, verdict.gap);
    const state: StateWrite[] = [{ scope: STATE_SCOPE, key: uplink.devEui, value: tracker.stateValue(uplink.devEui) }];
    const record = uplinkRecord(uplink, verdict.gap, receivedAtMs);
    track(commit([record], state, `uplink f_cnt ${uplink.fCnt} of ${uplink.devEui}`));
  }

  function uplinkRecord(uplink: TtsUplink, gap: number, receivedAtMs: number): NewRecord {
    const iotgw: Record<string, unknown> = { f_cnt_gap: gap, application };
    let message = uplink.message;
    if (options.codec !== null && uplink.decodedPayload === undefined) {
      const decoded = decodePayload(options.codec, uplink.fPort, uplink.frmPayload, new Date(uplink.receivedAtMs ?? receivedAtMs));
      iotgw.codec = options.codec.name;
      if (decoded.error !== undefined) iotgw.codec_error = decoded.error;
      if (decoded.data !== undefined || (decoded.warnings?.length ?? 0) > 0) {
        const uplinkMessage = { ...(message.uplink_message as Record<string, unknown>) };
        if (decoded.data !== undefined) uplinkMessage.decoded_payload = decoded.data;
        if (decoded.warnings !== undefined && decoded.warnings.length > 0) uplinkMessage.decoded_payload_warnings = decoded.warnings;
        message = { ...message, uplink_message: uplinkMessage };
      }
    }
    return {
      key: uplink.devEui,
      stream: options.stream,
      source: SOURCE,
      receivedAtMs,
      eventTimeMs: plausibleTime(uplink.receivedAtMs, receivedAtMs),
      payload: Buffer.from(JSON.stringify({ ...message, iotgw })),
      // The frame's identity: the same uplink stored twice (it cannot be, but a consumer can check) has the same one.
      meta: { 'ttn-uplink': `${uplink.devEui}:${uplink.sessionKeyId ?? ''}:${uplink.fCnt}`, 'ttn-application': application },
    };
  }

  async function commit(records: readonly NewRecord[], state: readonly StateWrite[], what: string): Promise<void> {
    const result = await deps.accept(records, state);
    if (result.ok) return;
    metrics.ingressRejected.inc({ source: SOURCE, reason: result.reason });
    deps.onReject?.(SOURCE, result.reason, `${what}: ${result.message}`);
    if (!lossLog.shouldLog(result.reason)) return;
    log.warn(
      { reason: result.reason },
      `TTN ${what} not stored: ${result.message}. TTS publishes at QoS 0 and never sends it again: it is lost (logged once per reason every ${options.rejectLogIntervalMs / 1000} s)`,
    );
  }

  function scheduleReconnect(): void {
    if (stopping || reconnectTimer !== null || client === null) return;
    attempts += 1;
    const delayMs = backoffDelayMs(attempts, { initialMs: options.reconnectInitialMs, maxMs: options.reconnectMaxMs }, random);
    log.debug({ attempt: attempts, delayMs }, 'TTN: reconnecting');
    reconnectTimer = setTimeout(() => {
      reconnectTimer = null;
      if (stopping || client === null) return;
      metrics.ttnReconnects.inc({ application });
      client.reconnect();
    }, delayMs);
  }

  function onConnect(mqttClient: MqttClient): void {
    connected = true;
    attempts = 0;
    metrics.ttnConnected.set({ application }, 1);
    noteLink('connected', 'info', { url: options.url }, `TTN: connected to ${options.url} as ${options.username}`);
    const topics = [...options.uplinkTopics, ...eventTopics];
    mqttClient.subscribe(topics, { qos: 0 }, (error, granted) => {
      if (error) {
        log.error({ err: error, topics }, 'TTN: subscribing failed; reconnecting');
        mqttClient.stream.destroy();
        return;
      }
      const refused = (granted ?? []).filter((grant) => grant.qos === 128).map((grant) => grant.topic);
      if (refused.length > 0) {
        lastProblem = `subscription refused: ${refused.join(', ')}`;
        log.error(
          { topics: refused },
          `TTN refused the subscription to ${refused.join(', ')}: topics must start with v3/${options.username}/ and the API key needs "Read application traffic"`,
        );
      } else {
        log.info({ topics }, 'TTN: subscribed');
      }
    });
  }

  function onError(error: Error & { code?: unknown }): void {
    const code = error.code;
    if (typeof code === 'number') {
      lastProblem = `connection refused (${error.message})`;
      if (code === 4 || code === 5 || code === 134 || code === 135) {
        noteLink(
          `refused:${code}`,
          'error',
          { code },
          `TTN refused the connection: not authorized; check ttn.username (${options.username}) and the API key rights (Read application traffic); retrying every ${options.reconnectMaxMs / 1000} s at most`,
        );
      } else {
        noteLink(`refused:${code}`, 'warn', { code }, `TTN refused the connection: ${error.message}; retrying with backoff`);
      }
      return;
    }
    lastProblem = errorMessage(error);
    noteLink(
      `error:${String(code ?? error.message)}`,
      'warn',
      { err: error },
      `TTN: cannot reach ${options.url} (${errorMessage(error)}); retrying with backoff`,
    );
  }

  function onClose(): void {
    if (connected && !stopping) {
      connected = false;
      metrics.ttnConnected.set({ application }, 0);
      lastProblem = 'connection lost';
      noteLink(
        'disconnected',
        'warn',
        { url: options.url },
        'TTN: connection lost; uplinks TTS publishes until the reconnect are lost (QoS 0) and show up as f_cnt gaps',
      );
    }
    scheduleReconnect();
  }

  return {
    name: `ingress.ttn.${application}`,
    application,

    async start() {
      stopping = false;
      const password = options.password ?? readSecret(options.passwordFile, 'ttn password_file (the TTS API key)');
      const ca = options.caFile === null ? undefined : readSecret(options.caFile, 'ttn.ca_file');
      tracker = createFrameGapTracker(await deps.loadState(STATE_SCOPE));
      metrics.ttnConnected.set({ application }, 0);
      const clientOptions: IClientOptions = {
        clientId: options.clientId,
        username: options.username,
        password,
        clean: true,
        protocolVersion: 4,
        keepalive: 60,
        connectTimeout: 30_000,
        // Our own backoff with jitter replaces mqtt.js' fixed reconnect period (scheduleReconnect).
        reconnectPeriod: 0,
        resubscribe: false,
        ...(ca === undefined ? {} : { ca }),
      };
      const mqttClient = mqtt.connect(options.url, clientOptions);
      // The pre-delivery hook: counter checks and the accept() call happen here, one message at a time;
      // mqtt.js reads the next packet only after the callback, so a slow buffer slows the socket instead of growing memory.
      mqttClient.handleMessage = (packet, callback) => {
        handleMessage(packet.topic, Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload));
        if (inFlight.size < MAX_IN_FLIGHT) callback();
        else waitingForRoom = () => callback();
      };
      mqttClient.on('connect', () => onConnect(mqttClient));
      mqttClient.on('error', onError);
      mqttClient.on('close', onClose);
      client = mqttClient;
      log.info(
        { url: options.url, username: options.username, clientId: options.clientId, devices: tracker.size },
        `TTN: connecting to ${options.url} as ${options.username}`,
      );
    },

    async stop() {
      stopping = true;
      if (reconnectTimer !== null) clearTimeout(reconnectTimer);
      reconnectTimer = null;
      const mqttClient = client;
      client = null;
      waitingForRoom?.();
      waitingForRoom = null;
      if (mqttClient !== null) await mqttClient.endAsync(true);
      await Promise.allSettled([...inFlight]);
      connected = false;
      metrics.ttnConnected.set({ application }, 0);
    },

    health(): HealthReport {
      if (client === null) return { status: 'down', detail: 'not started' };
      if (connected) return { status: 'ok' };
      return { status: 'degraded', detail: `TTN ${options.username}: ${lastProblem}` };
    },

    isConnected: () => connected,
  };
}

/** 'up' or an event name: what follows v3/{username}/devices/{device id}/. Topics of another shape (custom filters) carry uplinks. */
function eventOf(topic: string): string {
  const levels = topic.split('/');
  if (levels[0] !== 'v3' || levels[2] !== 'devices' || levels.length < 5) return 'up';
  return levels.slice(4).join('/');
}

function plausibleTime(timeMs: number | null, receivedAtMs: number): number {
  if (timeMs === null) return receivedAtMs;
  return timeMs >= receivedAtMs - EVENT_TIME_MAX_PAST_MS && timeMs <= receivedAtMs + EVENT_TIME_MAX_FUTURE_MS ? timeMs : receivedAtMs;
}

function readSecret(path: string | null, what: string): string {
  if (path === null || path === '') throw new Error(`${what}: no file given`);
  try {
    return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  } catch (error) {
    throw new Error(`${what}: cannot read ${path}: ${errorMessage(error)}`);
  }
}
