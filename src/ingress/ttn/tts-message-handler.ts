// The message side of the TTN ingress: one MQTT message from TTS -> a record, committed. Uplinks are parsed,
// checked against the device's f_cnt (the gap tracker: duplicates dropped, gaps and resets noted) and stored
// with an `iotgw` object (f_cnt gap, application, local codec result) beside the message as TTS sent it;
// configured events are stored as they came. The counters are committed with the record, in one accept().
// Commits still pending are bounded: past MAX_IN_FLIGHT the link's read callback waits, so TCP slows TTS down.
// With downlinks on, the down events (down/queued ... down/failed) are also parsed for the command path, and
// each device's TTS device id is kept with its counters, so its downlinks can be addressed.
// The MQTT link itself (connect, subscribe, reconnect) is ttn-ingress.ts.
import type { StateWrite } from '../../buffer/record-buffer.ts';
import { decodedFields, decodePayload, type PayloadCodec } from '../../codecs/payload-codec.ts';
import { errorMessage } from '../../errors.ts';
import type { NewRecord } from '../../record/record.ts';
import { plausibleEventTime } from '../../record/routes.ts';
import { printable } from '../../shared/input-text.ts';
import { createInFlight } from '../in-flight.ts';
import type { IngressDeps, LoadState } from '../ingress.ts';
import { createRejections } from '../rejections.ts';
import { createFrameGapTracker, type FrameGapTracker, STATE_SCOPE } from './frame-gap-tracker.ts';
import { isTtsDownlinkEvent, isTtsId, parseTtsDownlinkEvent, type TtsDownlinkEvent } from './tts-downlink.ts';
import { parseTtsEvent, parseTtsUplink, type TtsRejection, type TtsUplink } from './tts-uplink.ts';

/** The TTS application event topics (after v3/{username}/devices/{device id}/) that can be stored as streams. */
export const TTS_EVENTS = ['join', 'down/queued', 'down/sent', 'down/ack', 'down/nack', 'down/failed', 'service/data', 'location/solved'] as const;
export type TtsEventName = (typeof TTS_EVENTS)[number];

/** What iotgw.codec says when TTS's own payload formatter filled decoded_payload and no local codec ran. */
export const TTS_DECODED = 'tts';

export interface TtsMessageOptions {
  /** `{application id}@{tenant id}`; also the `application` label of metrics, logs and records. */
  readonly username: string;
  readonly stream: string;
  /** Event name -> record stream; events not listed are not subscribed to. */
  readonly eventStreams: ReadonlyMap<TtsEventName, string>;
  /** Runs on uplinks that arrive without decoded_payload (RAW_CODEC: none). */
  readonly codec: PayloadCodec;
  readonly maxMessageBytes: number;
  readonly rejectLogIntervalMs: number;
  /** Parse the down events for the command path (the link subscribes to them). Default false. */
  readonly downlinks?: boolean;
}

/** `log` is the link's logger (component ingress.ttn, the application). */
export interface TtsMessageDeps extends IngressDeps {
  readonly loadState: LoadState;
  /** Each valid down event, when options.downlinks. */
  readonly onDownlinkEvent?: (event: TtsDownlinkEvent) => void;
  /** A device's TTS device id became known (or changed), with the commit of its uplink. */
  readonly onDeviceLearned?: (devEui: string) => void;
}

export interface TtsMessageHandler {
  /** Loads the committed frame counters and accepts messages again; resolves with the number of devices known. */
  start(): Promise<number>;
  /**
   * mqtt.js' handleMessage: handles the message, then calls `done` (mqtt.js reads the next packet only then)
   * at once, or once there is room among the pending commits.
   */
  deliver(topic: string, payload: Buffer | string, done: () => void): void;
  /** Refuses messages from now on and lets a waiting `done` go; call before closing the link. */
  stopAccepting(): void;
  /** Resolves when every pending commit has finished. */
  settled(): Promise<void>;
  /** The TTS device id of a DevEUI (lower-case hex) heard in this application; bounded with the frame counters. */
  deviceIdOf(devEui: string): string | undefined;
}

const SOURCE = 'ttn';
/** Messages whose commit is still pending before mqtt.js is asked to wait (TCP backpressure towards TTS). */
const MAX_IN_FLIGHT = 2_000;

export function createTtsMessageHandler(options: TtsMessageOptions, deps: TtsMessageDeps): TtsMessageHandler {
  const application = options.username;
  const { log, metrics } = deps;
  const rejections = createRejections({ source: SOURCE, what: 'TTN message', intervalMs: options.rejectLogIntervalMs }, { ...deps, log });
  let tracker: FrameGapTracker = createFrameGapTracker();
  let stopping = false;
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
    const forDownlinks = options.downlinks === true && isTtsDownlinkEvent(event);
    if (stream === undefined && !forDownlinks) {
      reject({ reason: 'unexpected-topic', message: `no uplink or configured event on topic ${topic} (ttn.events names the events to store)` }, topic);
      return;
    }
    // A down event the command path cannot use is refused (counted once); its wait then ends by timeout. When
    // ttn.events stores the event, it is stored all the same if it can be keyed, as it was before downlinks.
    const downlink = forDownlinks ? parseTtsDownlinkEvent(event, bytes, options.maxMessageBytes) : null;
    if (downlink?.ok) deps.onDownlinkEvent?.(downlink.value);
    if (stream === undefined) {
      if (downlink !== null && !downlink.ok) reject(downlink, topic);
      return;
    }
    const parsed = parseTtsEvent(bytes, options.maxMessageBytes);
    if (!parsed.ok) {
      reject(parsed, topic);
      return;
    }
    if (downlink !== null && !downlink.ok) reject(downlink, topic);
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
    // Kept only when it can be a level of the downlink topic (TTS ids always can).
    const deviceId = isTtsId(uplink.deviceId) ? uplink.deviceId : undefined;
    const learned = deviceId !== undefined && tracker.deviceIdOf(uplink.devEui) !== deviceId;
    const verdict = tracker.observe(uplink.devEui, uplink.sessionKeyId, uplink.fCnt, uplink.uplinkId, deviceId);
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
        if (learned) deps.onDeviceLearned?.(uplink.devEui);
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

  return {
    async start() {
      stopping = false;
      tracker = createFrameGapTracker(await deps.loadState(STATE_SCOPE), undefined, application);
      return tracker.size;
    },

    deliver(topic, payload, done) {
      try {
        handleMessage(topic, Buffer.isBuffer(payload) ? payload : Buffer.from(payload));
      } catch (error) {
        // A bug, not bad input (that is refused with a reason): never let it out into mqtt.js, where it is uncaught.
        rejections.reject('internal-error', 'handling the message failed unexpectedly (a bug); it was not stored', {
          level: 'error',
          fields: { err: error, topic: printable(topic, 128) },
        });
      }
      if (inFlight.size < MAX_IN_FLIGHT) done();
      else waitingForRoom = () => done();
    },

    stopAccepting() {
      stopping = true;
      waitingForRoom?.();
      waitingForRoom = null;
    },

    settled: () => inFlight.settled(),

    deviceIdOf: (devEui) => tracker.deviceIdOf(devEui),
  };
}

/** 'up' or an event name: what follows v3/{username}/devices/{device id}/. Topics of another shape (custom filters) carry uplinks. */
function eventOf(topic: string): string {
  const levels = topic.split('/');
  if (levels[0] !== 'v3' || levels[2] !== 'devices' || levels.length < 5) return 'up';
  return levels.slice(4).join('/');
}
