// A local MQTT server posing as The Things Stack v3's MQTT server integration, for `firmware-sim ttn` and the
// end-to-end tests: aedes on a TCP port, one application whose username is {application id}@{tenant id}
// and whose password is an API key, subscriptions only under v3/{username}/, everything published at QoS 0
// as TTS does, and a subscription outside v3/{username}/ refused in the SUBACK. It can drop its clients' connections and refuse new ones (bad key, server unavailable) so
// the gateway's reconnect path can be exercised, and it says how many subscribers each message reached.
// Downlinks: it takes down/push and down/replace (read with the gateway's own codec), keeps a queue per
// device, and answers as TTS would: down/queued at once, then, as if the device uplinked right away,
// down/sent and (confirmed) down/ack. Tests choose another fate per device: nack (TTS keeps the downlink
// queued for the next uplink), fail (down/failed with a TTS error), hold (queued until deviceUplink()), or
// ignore (no answer at all, as for a key without the downlink right). Devices are known from the uplinks
// published through the stand-in; a downlink for an unknown device gets no answer, as from TTS. A simulated
// device can take what goes on air for it (setDeviceReceiver; tts-traffic.ts's model devices act on commands).
import { randomBytes } from 'node:crypto';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { Aedes, type AuthenticateError } from 'aedes';
import { parseTtsDownlinks, type TtsDownlink, type TtsQueueOperation } from '../src/ingress/ttn/tts-downlink.ts';

export interface TtsStandInOptions {
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 0: a free port. */
  readonly port?: number;
  readonly applicationId: string;
  /** Default 'ttn', as on The Things Network. */
  readonly tenantId?: string;
  /** Default: a random key in the TTS format (NNSXS.{id}.{secret}). */
  readonly apiKey?: string;
}

/** How new connections are answered: accepted, refused as TTS refuses a bad or revoked key, or as an unavailable server. */
export type ConnectPolicy = 'accept' | 'not-authorized' | 'unavailable';

/**
 * What becomes of one downlink pushed to the stand-in (after down/queued, except for ignore):
 * - ack: sent at once (the device uplinked), then acked if confirmed;
 * - nack: sent, then nacked if confirmed; it stays queued (TTS sends it again at the next uplink);
 * - fail: down/failed with the fate's error;
 * - hold: stays queued until deviceUplink();
 * - ignore: no event at all, nothing queued.
 */
export type DownlinkFate = 'ack' | 'nack' | 'fail' | 'hold' | 'ignore';

/** TTS's ErrorDetails, as down/failed carries it. */
export interface TtsErrorDetails {
  readonly namespace: string;
  readonly name: string;
  readonly message_format: string;
  readonly attributes?: Record<string, string | number>;
  readonly code?: number;
}

/** One down/push or down/replace as received. */
export interface ReceivedDownlinkOperation {
  readonly deviceId: string;
  readonly operation: TtsQueueOperation;
  /** Read with the codec; null when TTS would have refused the body (`refusal` says why). */
  readonly downlinks: readonly TtsDownlink[] | null;
  readonly refusal?: string;
  /** The body as published. */
  readonly body: string;
}

/** What a failed downlink says unless the test gives its own error. */
export const DEFAULT_DOWNLINK_ERROR: TtsErrorDetails = {
  namespace: 'pkg/networkserver',
  name: 'no_downlink_path',
  message_format: 'no downlink path available for device `{device_uid}`',
  attributes: { device_uid: 'unknown' },
  code: 9,
};

export interface TtsStandIn {
  /** mqtt://host:port */
  readonly url: string;
  readonly username: string;
  readonly apiKey: string;
  /** Clients whose subscriptions match `topic` now (default: any uplink topic of the application). */
  subscribers(topic?: string): number;
  /** Resolves when a client subscribed to the application's uplinks is connected. */
  waitForSubscriber(timeoutMs?: number): Promise<void>;
  /** Publishes at QoS 0 (TTS never uses more); resolves with the number of subscribers it was handed to. */
  publish(topic: string, payload: Buffer | string): Promise<number>;
  /** Closes every client connection at once, as a network cut would; returns how many. */
  dropConnections(): number;
  setConnectPolicy(policy: ConnectPolicy): void;
  /** CONNECTs seen: accepted and refused. */
  stats(): { readonly accepted: number; readonly refused: number };
  /**
   * The fates of the next downlinks pushed for the device, in order; the last one stays for every later downlink
   * ('ack' until set). `error` is what 'fail' reports (default DEFAULT_DOWNLINK_ERROR).
   */
  setDownlinkFates(deviceId: string, fates: readonly DownlinkFate[], error?: TtsErrorDetails): void;
  /** Every push and replace received, in order. */
  downlinkOperations(): readonly ReceivedDownlinkOperation[];
  /** The device's TTS downlink queue now (held and nacked downlinks). */
  downlinkQueue(deviceId: string): readonly TtsDownlink[];
  /**
   * Who receives the device's downlinks on air: called with each one as it goes out, before down/sent (at
   * once for 'ack' and 'nack' fates, at deviceUplink() for held ones). undefined: nobody (the default).
   */
  setDeviceReceiver(deviceId: string, receiver: ((downlink: TtsDownlink) => void) | undefined): void;
  /** The device uplinks: the head of its queue goes out (down/sent, then down/ack or down/nack if confirmed). False if the queue was empty. */
  deviceUplink(deviceId: string, answer?: 'ack' | 'nack'): Promise<boolean>;
  stop(): Promise<void>;
}

export function generateApiKey(): string {
  const b32 = (bytes: number): string => [...randomBytes(bytes)].map((byte) => 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'[byte % 32]).join('');
  return `NNSXS.${b32(39)}.${b32(52)}`;
}

/** Who may connect and subscribe, and what the stand-in has seen. */
interface StandInState {
  readonly username: string;
  readonly apiKey: string;
  /** v3/{username}/ */
  readonly prefix: string;
  policy: ConnectPolicy;
  accepted: number;
  refused: number;
  /** Client id -> topic filters it subscribed to, while connected. */
  readonly subscriptions: Map<string, Set<string>>;
  /** Wakes waitForSubscriber calls when an uplink subscriber arrives. */
  readonly subscriberWaiters: Set<() => void>;
  readonly downlinks: DownlinkState;
}

interface QueuedDownlink {
  readonly downlink: TtsDownlink;
  /** Correlation ids TTS adds (as:downlink:...). */
  readonly ttsIds: readonly string[];
}

interface DownlinkState {
  /** Device id -> end_device_ids as in its uplinks. */
  readonly devices: Map<string, Record<string, unknown>>;
  readonly fates: Map<string, { fates: DownlinkFate[]; error: TtsErrorDetails }>;
  readonly queues: Map<string, QueuedDownlink[]>;
  readonly fCntDown: Map<string, number>;
  /** Device id -> the simulated device that hears its downlinks. */
  readonly receivers: Map<string, (downlink: TtsDownlink) => void>;
  readonly operations: ReceivedDownlinkOperation[];
  /** Events go out one device operation at a time, in order. */
  chain: Promise<void>;
}

export async function startTtsStandIn(options: TtsStandInOptions): Promise<TtsStandIn> {
  const username = `${options.applicationId}@${options.tenantId ?? 'ttn'}`;
  const prefix = `v3/${username}/`;
  const uplinkTopic = `${prefix}devices/stand-in/up`;
  const state: StandInState = {
    username,
    apiKey: options.apiKey ?? generateApiKey(),
    prefix,
    policy: 'accept',
    accepted: 0,
    refused: 0,
    subscriptions: new Map(),
    subscriberWaiters: new Set(),
    downlinks: { devices: new Map(), fates: new Map(), queues: new Map(), fCntDown: new Map(), receivers: new Map(), operations: [], chain: Promise.resolve() },
  };
  const publishEvent = (topic: string, message: Record<string, unknown>): Promise<void> =>
    new Promise((resolve, reject) =>
      broker.publish({ cmd: 'publish', topic, payload: Buffer.from(JSON.stringify(message)), qos: 0, retain: false, dup: false }, (error) =>
        error ? reject(error) : resolve(),
      ),
    );
  const downlinks = createDownlinkSimulator(state, publishEvent);
  const broker = await createStandInBroker(state, uplinkTopic, downlinks.operation);
  const { server, sockets, url } = await listen(broker, options);
  const countMatching = (topic: string): number => subscribersOf(state, topic);

  return {
    url,
    username,
    apiKey: state.apiKey,
    subscribers: (topic = uplinkTopic) => countMatching(topic),
    waitForSubscriber: (timeoutMs = 30_000) => waitForSubscriber(state, uplinkTopic, url, timeoutMs),
    publish(topic, payload) {
      const reached = countMatching(topic);
      const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
      learnDevice(state.downlinks, body);
      return new Promise((resolve, reject) =>
        broker.publish({ cmd: 'publish', topic, payload: body, qos: 0, retain: false, dup: false }, (error) => (error ? reject(error) : resolve(reached))),
      );
    },
    dropConnections() {
      const count = sockets.size;
      for (const socket of sockets) socket.destroy();
      return count;
    },
    setConnectPolicy(next) {
      state.policy = next;
    },
    stats: () => ({ accepted: state.accepted, refused: state.refused }),
    setDownlinkFates(deviceId, fates, error = DEFAULT_DOWNLINK_ERROR) {
      state.downlinks.fates.set(deviceId, { fates: fates.length === 0 ? ['ack'] : [...fates], error });
    },
    downlinkOperations: () => [...state.downlinks.operations],
    setDeviceReceiver(deviceId, receiver) {
      if (receiver === undefined) state.downlinks.receivers.delete(deviceId);
      else state.downlinks.receivers.set(deviceId, receiver);
    },
    downlinkQueue: (deviceId) => (state.downlinks.queues.get(deviceId) ?? []).map((queued) => queued.downlink),
    deviceUplink: (deviceId, answer = 'ack') => downlinks.uplink(deviceId, answer),
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => broker.close(() => resolve()));
    },
  };
}

/** aedes with TTS's rules: one application's key, subscriptions under its prefix only, clients publish only downlinks. */
async function createStandInBroker(
  state: StandInState,
  uplinkTopic: string,
  onDownlinkOperation: (deviceId: string, operation: TtsQueueOperation, body: Buffer) => void,
): Promise<Aedes> {
  const refusal = (returnCode: 3 | 5, message: string): AuthenticateError => Object.assign(new Error(message), { returnCode });
  const broker = await Aedes.createBroker({
    // TTS accepts long client ids (aedes' default is the MQTT 3.1.1 minimum of 23).
    maxClientsIdLength: 256,
    authenticate(_client, user, password, done) {
      if (state.policy === 'unavailable') {
        state.refused += 1;
        return done(refusal(3, 'server unavailable'), false);
      }
      if (state.policy === 'not-authorized' || user !== state.username || password?.toString('utf8') !== state.apiKey) {
        state.refused += 1;
        return done(refusal(5, 'not authorized'), false);
      }
      state.accepted += 1;
      done(null, true);
    },
    authorizeSubscribe(_client, subscription, callback) {
      // As TTS: a filter outside the application is refused in the SUBACK (0x80); the connection stays up.
      if (!subscription.topic.startsWith(state.prefix)) return callback(null, null);
      callback(null, { ...subscription, qos: 0 });
    },
    // Only the integration's downlink topics take publishes (TTS closes the connection for anything else here).
    // Nobody subscribes to them, so letting the publish through delivers it to no one.
    authorizePublish(_client, packet, callback) {
      const match = DOWNLINK_TOPIC.exec(packet.topic);
      if (match === null || match[1] !== state.username) return callback(new Error(`${packet.topic}: only down/push and down/replace take publishes`));
      const body = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : Buffer.from(packet.payload);
      onDownlinkOperation(match[2] as string, match[3] as TtsQueueOperation, body);
      callback(null);
    },
  });
  broker.on('subscribe', (subs, client) => {
    const topics = state.subscriptions.get(client.id) ?? new Set<string>();
    for (const sub of subs) topics.add(sub.topic);
    state.subscriptions.set(client.id, topics);
    if (subscribersOf(state, uplinkTopic) > 0) for (const wake of state.subscriberWaiters) wake();
  });
  broker.on('clientDisconnect', (client) => state.subscriptions.delete(client.id));
  return broker;
}

const DOWNLINK_TOPIC = /^v3\/([^/]+)\/devices\/([^/]+)\/down\/(push|replace)$/;
/** As TTS's max_message_size for the integration; a body beyond it is refused. */
const MAX_DOWNLINK_BODY_BYTES = 16 * 1024;

/** Remembers the end_device_ids of an uplink published through the stand-in, so its downlinks can be answered. */
function learnDevice(state: DownlinkState, body: Buffer): void {
  if (body[0] !== 0x7b) return;
  try {
    const ids = (JSON.parse(body.toString('utf8')) as { end_device_ids?: unknown }).end_device_ids;
    if (typeof ids !== 'object' || ids === null) return;
    const deviceId = (ids as { device_id?: unknown }).device_id;
    if (typeof deviceId === 'string' && deviceId !== '' && state.devices.size < 100_000) state.devices.set(deviceId, ids as Record<string, unknown>);
  } catch {
    // Malformed uplinks are published on purpose; they teach nothing.
  }
}

/** The downlink side of the stand-in: operations in, TTS's events out, one device operation after another. */
function createDownlinkSimulator(
  state: StandInState,
  publishEvent: (topic: string, message: Record<string, unknown>) => Promise<void>,
): {
  operation(deviceId: string, operation: TtsQueueOperation, body: Buffer): void;
  uplink(deviceId: string, answer: 'ack' | 'nack'): Promise<boolean>;
} {
  const { downlinks } = state;
  const nextFate = (deviceId: string): { fate: DownlinkFate; error: TtsErrorDetails } => {
    const entry = downlinks.fates.get(deviceId);
    const fate = entry === undefined ? 'ack' : ((entry.fates.length > 1 ? entry.fates.shift() : entry.fates[0]) as DownlinkFate);
    const error = entry?.error ?? DEFAULT_DOWNLINK_ERROR;
    // TTS names the device in its errors as {application id}.{device id}.
    const applicationId = state.username.split('@')[0] ?? state.username;
    return { fate, error: error === DEFAULT_DOWNLINK_ERROR ? { ...error, attributes: { device_uid: `${applicationId}.${deviceId}` } } : error };
  };
  const eventOf = (deviceId: string, ids: Record<string, unknown>, kind: string, queued: QueuedDownlink, extra: Record<string, unknown> = {}) => {
    const downlink = {
      ...(extra.f_cnt === undefined ? {} : { session_key_id: 'AXBSH1Pk6Z0G166RlH16CQ==', f_cnt: extra.f_cnt }),
      f_port: queued.downlink.fPort,
      ...(queued.downlink.frmPayload.length === 0 ? {} : { frm_payload: queued.downlink.frmPayload.toString('base64') }),
      ...(queued.downlink.confirmed ? { confirmed: true } : {}),
      priority: 'NORMAL',
      correlation_ids: [...queued.downlink.correlationIds, ...queued.ttsIds],
    };
    const body = kind === 'failed' ? { downlink, error: extra.error } : downlink;
    return {
      topic: `${state.prefix}devices/${deviceId}/down/${kind}`,
      message: {
        end_device_ids: ids,
        correlation_ids: [...queued.ttsIds, `as:up:${randomBytes(13).toString('hex').toUpperCase()}`],
        received_at: new Date().toISOString(),
        [`downlink_${kind}`]: body,
      },
    };
  };
  /** Takes the downlink out of the device's queue, unless a replace took it already. */
  const dequeue = (deviceId: string, queued: QueuedDownlink): void => {
    const queue = downlinks.queues.get(deviceId) ?? [];
    const at = queue.indexOf(queued);
    if (at !== -1) queue.splice(at, 1);
  };
  /** On air: down/sent, then (confirmed) the device's answer; acked ones leave the queue, nacked ones stay. */
  async function transmit(deviceId: string, ids: Record<string, unknown>, queued: QueuedDownlink, answer: 'ack' | 'nack'): Promise<void> {
    const fCnt = (downlinks.fCntDown.get(deviceId) ?? 0) + 1;
    downlinks.fCntDown.set(deviceId, fCnt);
    downlinks.receivers.get(deviceId)?.(queued.downlink);
    const sent = eventOf(deviceId, ids, 'sent', queued, { f_cnt: fCnt });
    await publishEvent(sent.topic, sent.message);
    if (!queued.downlink.confirmed || answer === 'ack') dequeue(deviceId, queued);
    if (!queued.downlink.confirmed) return;
    const reply = eventOf(deviceId, ids, answer, queued, { f_cnt: fCnt });
    await publishEvent(reply.topic, reply.message);
  }
  async function handle(deviceId: string, operation: TtsQueueOperation, body: Buffer): Promise<void> {
    const parsed = parseTtsDownlinks(body, MAX_DOWNLINK_BODY_BYTES);
    const received = { deviceId, operation, body: body.toString('utf8') };
    if (!parsed.ok) {
      downlinks.operations.push({ ...received, downlinks: null, refusal: parsed.message });
      return;
    }
    downlinks.operations.push({ ...received, downlinks: parsed.value });
    const ids = downlinks.devices.get(deviceId);
    // TTS refuses a downlink for a device it does not know, without an event on the integration.
    if (ids === undefined) return;
    const queue = downlinks.queues.get(deviceId) ?? [];
    if (operation === 'replace') queue.length = 0;
    downlinks.queues.set(deviceId, queue);
    for (const downlink of parsed.value) {
      const { fate, error } = nextFate(deviceId);
      if (fate === 'ignore') continue;
      const queued: QueuedDownlink = { downlink, ttsIds: [`as:downlink:${randomBytes(13).toString('hex').toUpperCase()}`] };
      queue.push(queued);
      const event = eventOf(deviceId, ids, 'queued', queued);
      await publishEvent(event.topic, event.message);
      if (fate === 'hold') continue;
      if (fate === 'fail') {
        dequeue(deviceId, queued);
        const failed = eventOf(deviceId, ids, 'failed', queued, { error });
        await publishEvent(failed.topic, failed.message);
        continue;
      }
      await transmit(deviceId, ids, queued, fate);
    }
  }
  const enqueue = (work: () => Promise<void>): Promise<void> => {
    const run = downlinks.chain.then(work);
    downlinks.chain = run.catch(() => undefined);
    return run;
  };
  return {
    operation(deviceId, operation, body) {
      // After the publish is handled, as TTS answers asynchronously.
      void enqueue(() => new Promise<void>((resolve) => setImmediate(resolve)).then(() => handle(deviceId, operation, body))).catch(() => undefined);
    },
    async uplink(deviceId, answer) {
      let transmitted = false;
      await enqueue(async () => {
        const head = downlinks.queues.get(deviceId)?.[0];
        const ids = downlinks.devices.get(deviceId);
        if (head === undefined || ids === undefined) return;
        transmitted = true;
        await transmit(deviceId, ids, head, answer);
      });
      return transmitted;
    },
  };
}

/** A TCP server handing its connections to the broker; keeps the sockets so they can be cut. */
async function listen(broker: Aedes, options: TtsStandInOptions): Promise<{ server: Server; sockets: Set<Socket>; url: string }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    broker.handle(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return { server, sockets, url: `mqtt://${host}:${address.port}` };
}

/** Clients whose subscriptions match `topic` now. */
function subscribersOf(state: StandInState, topic: string): number {
  let count = 0;
  for (const filters of state.subscriptions.values()) if ([...filters].some((filter) => topicMatches(filter, topic))) count += 1;
  return count;
}

function waitForSubscriber(state: StandInState, uplinkTopic: string, url: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const wake = (): void => {
      clearTimeout(timer);
      state.subscriberWaiters.delete(wake);
      resolve();
    };
    const timer = setTimeout(() => {
      state.subscriberWaiters.delete(wake);
      reject(new Error(`no client subscribed to ${state.prefix}devices/+/up within ${timeoutMs} ms (is iotgw running with ttn.enabled and ttn.url ${url}?)`));
    }, timeoutMs);
    state.subscriberWaiters.add(wake);
    if (subscribersOf(state, uplinkTopic) > 0) wake();
  });
}

/** MQTT topic filter matching (+ one level, # the rest). */
export function topicMatches(filter: string, topic: string): boolean {
  const filterLevels = filter.split('/');
  const topicLevels = topic.split('/');
  for (const [index, level] of filterLevels.entries()) {
    if (level === '#') return true;
    if (index >= topicLevels.length) return false;
    if (level !== '+' && level !== topicLevels[index]) return false;
  }
  return filterLevels.length === topicLevels.length;
}
