// What an authenticated client may do, for aedes' authorizePublish and authorizeSubscribe hooks. A PUBLISH to
// devices/{device_id}/{stream} is committed to the buffer here: aedes runs authorizePublish before the QoS 1
// PUBACK (lib/handlers/publish.js), so a device hears PUBACK only for a committed record, and a refusal closes
// the connection [MQTT-3.3.5-2]. A refused SUBSCRIBE answers SUBACK failure and keeps the connection.
import type { Client, PublishPacket, Subscription } from 'aedes';
import type { Router } from '../../record/routes.ts';
import { printable } from '../../shared/input-text.ts';
import type { Accept } from '../ingress.ts';
import type { Rejections } from '../rejections.ts';
import type { MqttIngressOptions } from './broker.ts';
import { type Identity, canSubscribe, decidePublish } from './device-acl.ts';

export type AuthorizationOptions = Pick<MqttIngressOptions, 'maxPayloadBytes'>;

export interface AuthorizationDeps {
  readonly accept: Accept;
  readonly router: Router;
  readonly rejections: Rejections;
  /** Who the client is, as authentication decided at CONNECT; undefined if it never authenticated. */
  readonly identityOf: (client: Client) => Identity | undefined;
  /** Wall clock for a record's received-at. */
  readonly nowMs: () => number;
}

export interface Authorization {
  /** Resolves once the publish may go on (for QoS 1/2: once its record is committed); rejects to refuse it. */
  authorizePublish(client: Client | null, packet: PublishPacket): Promise<void>;
  /** The subscription to grant, or null to answer SUBACK failure. */
  authorizeSubscribe(client: Client, subscription: Subscription): Subscription | null;
}

/** The meta of a device's own publish: none (shared; records are never mutated). */
const NO_META: Readonly<Record<string, string>> = Object.freeze({});

/** Subscriptions one client may hold. */
const MAX_SUBSCRIPTIONS_PER_CLIENT = 32;

export function createAuthorization(options: AuthorizationOptions, deps: AuthorizationDeps): Authorization {
  const subscriptionCounts = new WeakMap<Client, number>();

  function reject(reason: string, subject: string, message: string, extra: Record<string, unknown> = {}): void {
    const client = printable(subject, 64);
    deps.rejections.reject(reason, `${client}: ${message}`, { logKey: `${subject}:${reason}`, fields: { client, ...extra } });
  }

  return {
    async authorizePublish(client, packet) {
      // Publishes from the broker itself ($SYS heartbeats, wills) have no client and are not records.
      if (client === null) return;
      const identity = deps.identityOf(client);
      const subject = client.id;
      if (identity === undefined) throw new Error('not authenticated');
      const decision = decidePublish(identity, packet.topic);
      if (!decision.allowed) {
        reject(decision.reason, subject, `publish refused: ${printable(decision.detail, 200)}`, { topic: printable(packet.topic, 128) });
        throw new Error(decision.detail);
      }
      const payload = packet.payload as Buffer;
      if (payload.length > options.maxPayloadBytes) {
        reject('oversize', subject, `publish refused: payload of ${payload.length} bytes exceeds mqtt.max_payload_bytes (${options.maxPayloadBytes})`);
        throw new Error('payload too large');
      }
      if (decision.record === null) return; // an account's publish outside devices/: relayed, not a record
      const receivedAtMs = deps.nowMs();
      const { deviceId, stream } = decision.record;
      const committed = deps.accept([
        {
          key: deviceId,
          stream,
          source: 'mqtt',
          receivedAtMs,
          eventTimeMs: deps.router.eventTimeMs(stream, payload, receivedAtMs),
          payload,
          // An account may publish as any device its grant covers: the record says it was not the device.
          meta: identity.kind === 'client' ? { 'published-by': identity.username } : NO_META,
        },
      ]);
      // QoS 0 has no acknowledgement to withhold: stored best effort, relayed at once.
      if (packet.qos === 0) {
        void committed.then((result) => {
          if (!result.ok) reject(result.reason, subject, `QoS 0 publish not stored: ${result.message}`);
        });
        return;
      }
      const result = await committed;
      if (!result.ok) {
        reject(result.reason, subject, `publish not acknowledged: ${result.message}`);
        throw new Error(result.message);
      }
    },

    authorizeSubscribe(client, subscription) {
      const identity = deps.identityOf(client);
      const held = subscriptionCounts.get(client) ?? 0;
      if (identity === undefined || !canSubscribe(identity, subscription.topic) || held >= MAX_SUBSCRIPTIONS_PER_CLIENT) {
        const why = held >= MAX_SUBSCRIPTIONS_PER_CLIENT ? `holds ${held} subscriptions already` : `may not subscribe to ${printable(subscription.topic, 128)}`;
        reject('not-authorized', client.id, `subscribe refused: ${printable(client.id, 64)} ${why}`);
        return null;
      }
      subscriptionCounts.set(client, held + 1);
      return subscription;
    },
  };
}
