// Messages from the gateway to one device's MQTT connection (commands), with the device's PUBACK as the
// outcome. aedes has no "publish to this client and tell me when it acknowledged" call, so: the message goes
// out with client.publish at QoS 1; aedes' authorizeForward hook (forward()) gives it a packet id taken from
// the client's own id counter, so it cannot collide with the client's other messages; the bounded persistence
// reports every PUBACK (puback()); the PUBACK with that id from that connection settles the send.
// A device is reachable while it is connected and subscribed at QoS 1 or more to a filter that matches the
// topic (MQTT only delivers what a client subscribed to, and a QoS 0 subscription gets no PUBACK; a persistent
// session brings its subscriptions back at connect). For a persistent session aedes also stores the message
// to send it again at the next connect; when a send ends without PUBACK that copy is dropped, because the
// delivery decides whether the command goes again (it may have expired or been cancelled meanwhile).
import type { Aedes, AedesPublishPacket, Client } from 'aedes';
import type { Identity } from './device-acl.ts';
import { topicMatches } from './device-acl.ts';

/** acked: PUBACK received; gone: the connection ended first; timeout: connected, but no PUBACK in time. */
export type DownlinkOutcome = 'acked' | 'gone' | 'timeout';

export interface MqttDownlink {
  reachable(deviceId: string, topic: string): boolean;
  /** One send per device at a time (the caller keeps order); a second concurrent send is refused as 'gone'. */
  send(deviceId: string, topic: string, payload: Buffer): Promise<DownlinkOutcome>;
  /** Told when a device may have become reachable (it connected or subscribed). */
  onReachable(listener: (deviceId: string) => void): void;
}

export interface DownlinkTracker extends MqttDownlink {
  attach(broker: Aedes): void;
  /** aedes' authorizeForward: numbers the gateway's own messages. */
  forward(client: Client, packet: AedesPublishPacket): AedesPublishPacket;
  /** A PUBACK arrived from `client` for `messageId`. */
  puback(client: { readonly id: string }, messageId: number | undefined): void;
  /** Settles every pending send as gone (broker stopping). */
  close(): void;
}

interface Pending {
  readonly client: Client;
  readonly body: Buffer;
  messageId: number | null;
  readonly settle: (outcome: DownlinkOutcome) => void;
}

/** aedes' per-client packet id counter (lib/client.js, used by QoSPacket): 1..65535, wrapping. */
interface ClientInternals {
  _nextId?: number;
  subscriptions?: Record<string, { readonly qos?: number } | undefined>;
}

/** aedes' persistence call that forgets a message stored for a persistent session (also used on PUBACK). */
interface OutgoingStore {
  outgoingClearMessageId(client: Client, packet: { readonly messageId: number }): Promise<unknown>;
}

export interface DownlinkTrackerOptions {
  /** How long a connected device has to PUBACK. */
  readonly ackTimeoutMs: number;
}

export function createDownlinkTracker(options: DownlinkTrackerOptions, identityOf: (client: Client) => Identity | undefined): DownlinkTracker {
  /** aedes' own registry of live clients by client id (a device's client id is its device id: authentication.ts). */
  let clients: Readonly<Record<string, Client | undefined>> = {};
  const pending = new Map<string, Pending>();
  const byBody = new WeakMap<Buffer, Pending>();
  /** The send waiting on each connection (a device has one connection, and one send at a time). */
  const byClient = new WeakMap<object, Pending>();
  const listeners: ((deviceId: string) => void)[] = [];
  let store: OutgoingStore | null = null;

  function deviceOf(client: Client): string | null {
    const identity = identityOf(client);
    return identity === undefined || identity.kind === 'client' ? null : identity.deviceId;
  }

  /** The device's live connection. Looked up, never kept: a closed client held here would keep its buffers. */
  function connectionOf(deviceId: string): Client | undefined {
    const client = clients[deviceId];
    return client === undefined || client.closed || deviceOf(client) !== deviceId ? undefined : client;
  }

  function notify(deviceId: string): void {
    for (const listener of listeners) listener(deviceId);
  }

  return {
    attach(broker) {
      store = (broker as unknown as { persistence?: OutgoingStore }).persistence ?? null;
      clients = (broker as unknown as { clients?: Record<string, Client> }).clients ?? {};
      broker.on('clientReady', (client) => {
        const deviceId = deviceOf(client);
        if (deviceId !== null) notify(deviceId);
      });
      broker.on('subscribe', (_subscriptions, client) => {
        const deviceId = deviceOf(client);
        if (deviceId !== null && connectionOf(deviceId) === client) notify(deviceId);
      });
      broker.on('clientDisconnect', (client) => {
        const deviceId = deviceOf(client);
        const waiting = deviceId === null ? undefined : pending.get(deviceId);
        if (waiting?.client === client) waiting.settle('gone');
      });
    },

    reachable(deviceId, topic) {
      const client = connectionOf(deviceId);
      if (client === undefined) return false;
      const subscriptions = (client as unknown as ClientInternals).subscriptions ?? {};
      // aedes sends at the QoS of a subscription to exactly this topic when there is one (lib/client.js).
      const exact = subscriptions[topic];
      if (exact !== undefined) return (exact.qos ?? 0) >= 1;
      return Object.entries(subscriptions).some(([filter, subscription]) => (subscription?.qos ?? 0) >= 1 && topicMatches(filter, topic));
    },

    send(deviceId, topic, payload) {
      const client = connectionOf(deviceId);
      if (client === undefined || pending.has(deviceId)) return Promise.resolve('gone');
      // A Buffer of our own: its identity marks this message in forward().
      const body = Buffer.from(payload);
      return new Promise<DownlinkOutcome>((resolve) => {
        const timer = setTimeout(() => entry.settle('timeout'), options.ackTimeoutMs);
        timer.unref();
        const entry: Pending = {
          client,
          body,
          messageId: null,
          settle(outcome) {
            if (pending.get(deviceId) !== entry) return;
            pending.delete(deviceId);
            byClient.delete(client);
            clearTimeout(timer);
            if (outcome !== 'acked' && !client.clean && entry.messageId !== null) {
              void store?.outgoingClearMessageId(client, { messageId: entry.messageId }).catch(() => undefined);
            }
            resolve(outcome);
          },
        };
        pending.set(deviceId, entry);
        byBody.set(body, entry);
        byClient.set(client, entry);
        client.publish({ cmd: 'publish', topic, payload: body, qos: 1, retain: false, dup: false }, (error) => {
          if (error !== undefined && error !== null) entry.settle('gone');
        });
      });
    },

    onReachable(listener) {
      listeners.push(listener);
    },

    forward(client, packet) {
      const entry = Buffer.isBuffer(packet.payload) ? byBody.get(packet.payload) : undefined;
      if (entry === undefined || entry.client !== client) return packet;
      const internals = client as unknown as ClientInternals;
      const next = internals._nextId;
      if (typeof next !== 'number') return packet; // unknown aedes internals: no PUBACK match, the send times out
      entry.messageId = next;
      internals._nextId = next >= 65535 ? 1 : next + 1;
      return Object.assign(packet, { messageId: next });
    },

    puback(client, messageId) {
      const entry = byClient.get(client);
      if (entry !== undefined && messageId !== undefined && entry.messageId === messageId) entry.settle('acked');
    },

    close() {
      for (const entry of [...pending.values()]) entry.settle('gone');
    },
  };
}
