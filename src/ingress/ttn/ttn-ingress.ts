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
// With downlinks on (commands enabled), the link also subscribes to the down events and offers `downlink`:
// which DevEUIs it can address (learned from uplinks, persisted with the frame counters), whether it is up,
// and pushes to v3/{username}/devices/{device id}/down/push (or replace), at QoS 0 like everything TTS takes.
// This module is the MQTT link (connect, subscribe, reconnect, health); tts-message-handler.ts turns each
// message into a committed record, tts-downlink.ts is the downlink codec.
import { readFileSync } from 'node:fs';
import type { IClientOptions, ISubscriptionGrant, MqttClient } from 'mqtt';
import type { Component, HealthReport } from '../../core/lifecycle.ts';
import { errorMessage } from '../../errors.ts';
import { createRetrySchedule } from '../../shared/retry-schedule.ts';
import type { IngressDeps, LoadState } from '../ingress.ts';
import { downlinkTopic, encodeDownlinks, TTS_DOWNLINK_EVENTS, type TtsDownlink, type TtsDownlinkEvent, type TtsQueueOperation } from './tts-downlink.ts';
import { createTtsMessageHandler, type TtsMessageOptions } from './tts-message-handler.ts';

/** The link's options beside the message handler's (username, stream, eventStreams, codec, limits). */
export interface TtnIngressOptions extends TtsMessageOptions {
  /** mqtts://eu1.cloud.thethings.network:8883 or mqtt://host:1883. */
  readonly url: string;
  /** The API key (the config loader has read ttn password_file). */
  readonly password: string;
  /** PEM CA bundle for a server with a private CA; null: the system store. */
  readonly caFile: string | null;
  readonly clientId: string;
  /** Uplink topic filters, {username} already substituted. */
  readonly uplinkTopics: readonly string[];
  readonly reconnectInitialMs: number;
  readonly reconnectMaxMs: number;
}

export interface TtnIngressDeps extends IngressDeps {
  readonly loadState: LoadState;
  /** Jitter source for the reconnect backoff. */
  readonly random?: () => number;
  /** Schedules a reconnect and returns its cancel; tests pass their own to see it pending. Default: setTimeout. */
  readonly schedule?: (callback: () => void, delayMs: number) => () => void;
}

export interface TtnIngress extends Component {
  readonly application: string;
  isConnected(): boolean;
  /** The way to this application's devices (the TTN command path); inert unless options.downlinks. */
  readonly downlink: TtnDownlink;
}

/** What the TTN command path needs of one application's link. */
export interface TtnDownlink {
  /** {application id}@{tenant id}. */
  readonly application: string;
  /** The TTS device id of a DevEUI (16 lower-case hex digits) heard in this application; undefined if not. */
  deviceIdOf(devEui: string): string | undefined;
  /** Connected, and TTS granted the down event subscriptions: a downlink queued now can be followed to its end. */
  isUp(): boolean;
  /**
   * Publishes a push or replace of the device's TTS downlink queue (QoS 0: TTS's answer is down/queued, or nothing).
   * Resolves true once written to the connection, false when the link is down.
   */
  queue(operation: TtsQueueOperation, deviceId: string, downlinks: readonly TtsDownlink[]): Promise<boolean>;
  /** Told of every valid down event of the application, in arrival order. */
  onEvent(listener: (event: TtsDownlinkEvent) => void): void;
  /** Told when the link comes up (true: subscribed to the down events) and when it goes down (false). */
  onLink(listener: (up: boolean) => void): void;
  /** Told when a DevEUI's device id became known or changed (with its uplink's commit). */
  onDevice(listener: (devEui: string) => void): void;
}

export function createTtnIngress(options: TtnIngressOptions, deps: TtnIngressDeps): TtnIngress {
  const application = options.username;
  const log = deps.log.child({ component: 'ingress.ttn', application });
  const { metrics } = deps;
  const eventListeners: ((event: TtsDownlinkEvent) => void)[] = [];
  const linkListeners: ((up: boolean) => void)[] = [];
  const deviceListeners: ((devEui: string) => void)[] = [];
  const messages = createTtsMessageHandler(options, {
    ...deps,
    log,
    onDownlinkEvent: (event) => {
      for (const listener of eventListeners) listener(event);
    },
    onDeviceLearned: (devEui) => {
      for (const listener of deviceListeners) listener(devEui);
    },
  });
  const reconnects = createRetrySchedule(
    { initialMs: options.reconnectInitialMs, maxMs: options.reconnectMaxMs },
    () => {
      if (stopping || client === null) return;
      metrics.ttnReconnects.inc({ application });
      client.reconnect();
    },
    deps,
  );
  const downlinks = options.downlinks === true;
  const downEventTopics = downlinks ? TTS_DOWNLINK_EVENTS.map((event) => `v3/${options.username}/devices/+/${event}`) : [];
  const eventTopics = [...new Set([...[...options.eventStreams.keys()].map((event) => `v3/${options.username}/devices/+/${event}`), ...downEventTopics])];

  let client: MqttClient | null = null;
  let connected = false;
  /** TTS granted every subscription of this connection: until then nothing arrives. */
  let subscribed = false;
  /** TTS granted the down event subscriptions of this connection: downlinks can be followed. */
  let downSubscribed = false;
  let stopping = false;
  /** What was last logged about the link ('connected', 'refused:5', 'error:ECONNREFUSED'), so each state is logged once. */
  let linkState = 'starting';
  let lastProblem = 'not connected yet';

  function noteLink(state: string, level: 'info' | 'warn' | 'error', fields: Record<string, unknown>, message: string): void {
    if (linkState === state) return;
    linkState = state;
    log[level](fields, message);
  }

  /** Down: when the connection that carried the down events ended (lost, or stop()). */
  function downlinkLinkLost(): void {
    if (!downSubscribed) return;
    downSubscribed = false;
    for (const listener of linkListeners) listener(false);
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
      if (downlinks && client === mqttClient && connected && downEventTopics.every((topic) => !refused.includes(topic))) {
        downSubscribed = true;
        for (const listener of linkListeners) listener(true);
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
    downlinkLinkLost();
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
      const devices = await messages.start();
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
        // A downlink published while the link is down fails at once (the command path waits for the link)
        // instead of going out on the next connection, after the path gave up on it.
        queueQoSZero: false,
        ...(ca === undefined ? {} : { ca }),
      };
      // mqtt.js is loaded here, not at import: a gateway without TTN does not carry it (about 17 MB).
      const { connect } = await import('mqtt');
      const mqttClient = connect(options.url, clientOptions);
      // The pre-delivery hook: counter checks and the accept() call happen here, one message at a time;
      // mqtt.js reads the next packet only after the callback, so a slow buffer slows the socket instead of growing memory.
      mqttClient.handleMessage = (packet, callback) => messages.deliver(packet.topic, packet.payload, callback);
      mqttClient.on('connect', () => onConnect(mqttClient));
      mqttClient.on('error', onError);
      mqttClient.on('close', onClose);
      client = mqttClient;
      log.info(
        { url: options.url, username: options.username, clientId: options.clientId, devices },
        `TTN: connecting to ${options.url} as ${options.username}`,
      );
    },

    async stop() {
      stopping = true;
      reconnects.cancel();
      downlinkLinkLost();
      const mqttClient = client;
      client = null;
      messages.stopAccepting();
      if (mqttClient !== null) await mqttClient.endAsync(true);
      await messages.settled();
      connected = false;
      subscribed = false;
      downSubscribed = false;
      metrics.ttnConnected.set({ application }, 0);
    },

    health(): HealthReport {
      if (client === null) return { status: 'down', detail: 'not started' };
      if (connected && subscribed) return { status: 'ok' };
      return { status: 'degraded', detail: `TTN ${options.username}: ${lastProblem}` };
    },

    isConnected: () => connected,

    downlink: {
      application,
      deviceIdOf: (devEui) => (downlinks ? messages.deviceIdOf(devEui) : undefined),
      isUp: () => downSubscribed && connected && !stopping,
      queue(operation, deviceId, queued) {
        const mqttClient = client;
        if (!downlinks || mqttClient === null || !connected || stopping) return Promise.resolve(false);
        const topic = downlinkTopic(options.username, deviceId, operation);
        return new Promise((resolve) => {
          mqttClient.publish(topic, encodeDownlinks(queued), { qos: 0 }, (error) => {
            if (error) log.debug({ err: error, topic }, 'TTN: a downlink could not be published (the link is down)');
            resolve(!error);
          });
        });
      },
      onEvent(listener) {
        eventListeners.push(listener);
      },
      onLink(listener) {
        linkListeners.push(listener);
      },
      onDevice(listener) {
        deviceListeners.push(listener);
      },
    },
  };
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
