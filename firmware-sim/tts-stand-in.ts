// A local MQTT server posing as The Things Stack v3's MQTT server integration, for `firmware-sim ttn` and the
// end-to-end tests: aedes on a TCP port, one application whose username is {application id}@{tenant id}
// and whose password is an API key, subscriptions only under v3/{username}/, everything published at QoS 0
// as TTS does, and a subscription outside v3/{username}/ refused in the SUBACK. It can drop its clients' connections and refuse new ones (bad key, server unavailable) so
// the gateway's reconnect path can be exercised, and it says how many subscribers each message reached.
import { randomBytes } from 'node:crypto';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { Aedes, type AuthenticateError } from 'aedes';

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
  };
  const broker = await createStandInBroker(state, uplinkTopic);
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
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => broker.close(() => resolve()));
    },
  };
}

/** aedes with TTS's rules: one application's key, subscriptions under its prefix only, nothing published by clients. */
async function createStandInBroker(state: StandInState, uplinkTopic: string): Promise<Aedes> {
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
    // The integration's downlink topics (down/push, down/replace) are not simulated.
    authorizePublish(_client, _packet, callback) {
      callback(new Error('publishing is not simulated by the TTS stand-in'));
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
