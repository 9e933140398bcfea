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
// Every metric label, log line and record names the application by its full username ({app}@{tenant}):
// two tenants may hold applications of the same id.
import { readFileSync } from 'node:fs';
import mqtt, { type IClientOptions, type ISubscriptionGrant, type MqttClient } from 'mqtt';
import type { StateWrite } from '../../buffer/record-buffer.ts';
import { errorMessage } from '../../errors.ts';
import { createRetrySchedule } from '../../shared/retry-schedule.ts';
import type { Component, HealthReport } from '../../core/lifecycle.ts';
import type { LogBudget, Logger } from '../../core/log.ts';
import type { Metrics } from '../../core/metrics.ts';
import type { NewRecord } from '../../record/record.ts';
import { plausibleEventTime } from '../../record/routes.ts';
import type { Accept } from '../ingress.ts';
import { decodedFields, decodePayload, type PayloadCodec } from '../../codecs/payload-codec.ts';
import { createInFlight } from '../in-flight.ts';
import { createRejections } from '../rejections.ts';
import { createFrameGapTracker, type FrameGapTracker, STATE_SCOPE } from './frame-gap-tracker.ts';
import { parseTtsEvent, parseTtsUplink, type TtsRejection, type TtsUplink } from './tts-uplink.ts';
import { printable } from '../../shared/input-text.ts';

/** The TTS application event topics (after v3/{username}/devices/{device id}/) that can be stored as streams. */
export const TTS_EVENTS = ['join', 'down/queued', 'down/sent', 'down/ack', 'down/nack', 'down/failed', 'service/data', 'location/solved'] as const;
export type TtsEventName = (typeof TTS_EVENTS)[number];

export interface TtnIngressOptions {
  /** mqtts://eu1.cloud.thethings.network:8883 or mqtt://host:1883. */
  readonly url: string;
  /** `{application id}@{tenant id}`; also the `application` label of metrics, logs and records. */
  readonly username: string;
  /** The API key (the config loader has read ttn password_file). */
  readonly password: string;
  /** PEM CA bundle for a server with a private CA; null: the system store. */
  readonly caFile: string | null;
  readonly clientId: string;
  /** Uplink topic filters, {username} already substituted. */
  readonly uplinkTopics: readonly string[];
  readonly stream: string;
  /** Event name -> record stream; events not listed are not subscribed to. */
  readonly eventStreams: ReadonlyMap<TtsEventName, string>;
  /** Runs on uplinks that arrive without decoded_payload (RAW_CODEC: none). */
  readonly codec: PayloadCodec;
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
  /** Shared limit on log lines caused by input (log.max_input_warnings_per_minute). */
  readonly logBudget?: LogBudget;
  /** Jitter source for the reconnect backoff. */
  readonly random?: () => number;
  /** Schedules a reconnect and returns its cancel; tests pass their own to see it pending. Default: setTimeout. */
  readonly schedule?: (callback: () => void, delayMs: number) => () => void;
}

export interface TtnIngress extends Component {
  readonly application: string;
  isConnected(): boolean;
}

const SOURCE = 'ttn';
/** Messages whose commit is still pending before mqtt.js is asked to wait (TCP backpressure towards TTS). */
const MAX_IN_FLIGHT = 2_000;

/** What iotgw.codec says when TTS's own payload formatter filled decoded_payload and no local codec ran. */
export const TTS_DECODED = 'tts';

export function createTtnIngress(options: TtnIngressOptions, deps: TtnIngressDeps): TtnIngress {
  const application = options.username;
  const log = deps.log.child({ component: 'ingress.ttn', application });
  const { metrics } = deps;
  const rejections = createRejections({ source: SOURCE, what: 'TTN message', intervalMs: options.rejectLogIntervalMs }, { ...deps, log });
  const reconnects = createRetrySchedule(
    { initialMs: options.reconnectInitialMs, maxMs: options.reconnectMaxMs },
    () => {
      if (stopping || client === null) return;
      metrics.ttnReconnects.inc({ application });
      client.reconnect();
    },
    deps,
  );
  const eventTopics = [...options.eventStreams.keys()].map((event) => `v3/${options.username}/devices/+/${event}`);

  let client: MqttClient | null = null;
  let tracker: FrameGapTracker = createFrameGapTracker();
  let connected = false;
  /** TTS granted every subscription of this connection: until then nothing arrives. */
  let subscribed = false;
  let stopping = false;
  /** What was last logged about the link ('connected', 'refused:5', 'error:ECONNREFUSED'), so each state is logged once. */
  let linkState = 'starting';
  let lastProblem = 'not connected yet';
  let waitingForRoom: (() => void) | null = null;
  // commit() does not reject unless something below it is broken (accept() never rejects): counted and logged, never unhandled.
  const inFlight = createInFlight<string>(
    (error, what) => {
      rejections.reject('internal-error', `${what}: storing failed unexpectedly (${errorMessage(error)}); it may be lost`, {
        level: 'error',
        fields: { err: error },
      });
    },
    () => {
      if (waitingForRoom !== null && inFlight.size < MAX_IN_FLIGHT) {
        const wake = waitingForRoom;
        waitingForRoom = null;
        wake();
      }
    },
  );

  function noteLink(state: string, level: 'info' | 'warn' | 'error', fields: Record<string, unknown>, message: string): void {
    if (linkState === state) return;
    linkState = state;
    log[level](fields, message);
  }

  function reject(rejection: TtsRejection | { reason: string; message: string }, topic: string): void {
    rejections.reject(rejection.reason, rejection.message, { fields: { input: { topic } } });
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
    const what = `${event} event of ${record.key}`;
    inFlight.track(commit([record], [], what), what);
  }

  function handleUplink(topic: string, bytes: Buffer, receivedAtMs: number): void {
    const parsed = parseTtsUplink(bytes, options.maxMessageBytes);
    if (!parsed.ok) {
      reject(parsed, topic);
      return;
    }
    const uplink = parsed.value;
    const verdict = tracker.observe(uplink.devEui, uplink.sessionKeyId, uplink.fCnt, uplink.uplinkId);
    if (verdict.kind === 'duplicate') {
      const message = `uplink f_cnt ${uplink.fCnt} of ${uplink.devEui} is an exact copy of the last one stored (same counter and received_at): a duplicate delivery, dropped`;
      reject({ reason: 'duplicate', message }, topic);
      return;
    }
    const counter = tracker.latest(uplink.devEui);
    const state: StateWrite[] = [
      { scope: STATE_SCOPE, key: uplink.devEui, value: tracker.stateValue(uplink.devEui) },
      // Devices the tracker had to forget: their state rows go too, so the table stays as bounded as the tracker.
      ...tracker.takeForgotten().map((devEui) => ({ scope: STATE_SCOPE, key: devEui, value: null })),
    ];
    const record = uplinkRecord(uplink, verdict.gap, verdict.kind === 'reset', receivedAtMs);
    const what = `uplink f_cnt ${uplink.fCnt} of ${uplink.devEui}`;
    inFlight.track(
      commit([record], state, what).then((stored) => {
        // Lost: the device goes back to its committed counter, so its next record counts this uplink in f_cnt_gap
        // (and the metrics count what the stored records say, never one frame twice).
        if (counter !== undefined && !stored) tracker.failed(uplink.devEui, counter);
        if (!stored) return;
        if (counter !== undefined) tracker.committed(uplink.devEui, counter);
        if (verdict.gap > 0) metrics.ttnMissedFrames.inc({ application }, verdict.gap);
        if (verdict.kind === 'reset') metrics.ttnFCntResets.inc({ application });
      }),
      what,
    );
  }

  function uplinkRecord(uplink: TtsUplink, gap: number, fCntReset: boolean, receivedAtMs: number): NewRecord {
    const iotgw: Record<string, unknown> = { f_cnt_gap: gap, ...(fCntReset ? { f_cnt_reset: true } : {}), application, codec: TTS_DECODED };
    let message = uplink.message;
    if (uplink.decodedPayload === undefined) {
      const decoded = decodePayload(options.codec, uplink.fPort, uplink.frmPayload, new Date(uplink.receivedAtMs ?? receivedAtMs));
      iotgw.codec = options.codec.name;
      if (decoded.error !== undefined) iotgw.codec_error = decoded.error;
      const fields = decodedFields(decoded);
      if (Object.keys(fields).length > 0) message = { ...message, uplink_message: { ...(message.uplink_message as Record<string, unknown>), ...fields } };
    }
    return {
      key: uplink.devEui,
      stream: options.stream,
      source: SOURCE,
      receivedAtMs,
      eventTimeMs: uplink.receivedAtMs === null ? receivedAtMs : (plausibleEventTime(uplink.receivedAtMs, receivedAtMs) ?? receivedAtMs),
      payload: Buffer.from(JSON.stringify({ ...message, iotgw })),
      // The frame's identity: the same uplink stored twice (it cannot be, but a consumer can check) has the same one.
      meta: { 'ttn-uplink': `${uplink.devEui}:${uplink.sessionKeyId ?? ''}:${uplink.fCnt}`, 'ttn-application': application },
    };
  }

  /** Resolves true when stored; false when refused (counted and logged: TTS will not send it again). */
  async function commit(records: readonly NewRecord[], state: readonly StateWrite[], what: string): Promise<boolean> {
    const result = await deps.accept(records, state);
    if (result.ok) return true;
    rejections.reject(result.reason, `${what} not stored: ${result.message}. TTS publishes at QoS 0 and never sends it again: it is lost`);
    return false;
  }

  function scheduleReconnect(): void {
    if (stopping || client === null) return;
    const next = reconnects.failed();
    if (next !== null) log.debug(next, 'TTN: reconnecting');
  }

  function onConnect(mqttClient: MqttClient): void {
    connected = true;
    subscribed = false;
    reconnects.succeeded();
    metrics.ttnConnected.set({ application }, 1);
    noteLink('connected', 'info', { url: options.url }, `TTN: connected to ${options.url} as ${options.username}`);
    const topics = [...options.uplinkTopics, ...eventTopics];
    lastProblem = 'subscribing';
    mqttClient.subscribe(topics, { qos: 0 }, (error, granted) => {
      const refused = refusedTopics(topics, error, granted);
      if (refused === null) {
        lastProblem = `subscribing failed: ${errorMessage(error)}`;
        log.error({ err: error, topics }, 'TTN: subscribing failed; reconnecting');
        mqttClient.stream.destroy();
        return;
      }
      // The connection stays up (granted topics still deliver) and health stays degraded: reconnecting would not
      // change the answer, which depends on ttn.topics and the key's rights.
      if (refused.length > 0) {
        lastProblem = `subscription refused: ${refused.join(', ')}`;
        log.error(
          { topics: refused },
          `TTN refused the subscription to ${refused.join(', ')}: topics must start with v3/${options.username}/ and the API key needs "Read application traffic"`,
        );
      } else {
        subscribed = true;
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
          `TTN refused the connection: not authorized; check ttn.username (${options.username}) and the API key rights (Read application traffic); retrying with backoff (1 s doubling to ${options.reconnectMaxMs / 1000} s)`,
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
    subscribed = false;
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
      const ca = options.caFile === null ? undefined : readCaFile(options.caFile);
      tracker = createFrameGapTracker(await deps.loadState(STATE_SCOPE));
      metrics.ttnConnected.set({ application }, 0);
      const clientOptions: IClientOptions = {
        clientId: options.clientId,
        username: options.username,
        password: options.password,
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
        try {
          handleMessage(packet.topic, Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload));
        } catch (error) {
          // A bug, not bad input (that is refused with a reason): never let it out into mqtt.js, where it is uncaught.
          rejections.reject('internal-error', 'handling the message failed unexpectedly (a bug); it was not stored', {
            level: 'error',
            fields: { err: error, topic: printable(packet.topic, 128) },
          });
        }
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
      reconnects.cancel();
      const mqttClient = client;
      client = null;
      waitingForRoom?.();
      waitingForRoom = null;
      if (mqttClient !== null) await mqttClient.endAsync(true);
      await inFlight.settled();
      connected = false;
      subscribed = false;
      metrics.ttnConnected.set({ application }, 0);
    },

    health(): HealthReport {
      if (client === null) return { status: 'down', detail: 'not started' };
      if (connected && subscribed) return { status: 'ok' };
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

/**
 * The topics TTS refused in its SUBACK (return code 0x80); null when subscribing failed without an answer.
 * mqtt.js 5 reports a SUBACK holding a refusal as an error carrying the packet, so the codes are read from it.
 */
function refusedTopics(topics: readonly string[], error: Error | null | undefined, granted: readonly ISubscriptionGrant[] | undefined): string[] | null {
  if (error) {
    const codes = (error as { packet?: { granted?: unknown } }).packet?.granted;
    if (!Array.isArray(codes)) return null;
    return topics.filter((_, index) => typeof codes[index] === 'number' && codes[index] >= 0x80);
  }
  return (granted ?? []).filter((grant) => grant.qos >= 0x80).map((grant) => grant.topic);
}

function readCaFile(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new Error(`ttn.ca_file: cannot read ${path}: ${errorMessage(error)}; give a readable PEM CA bundle, or '' for the system store`);
  }
}
