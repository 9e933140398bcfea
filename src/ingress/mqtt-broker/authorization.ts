// What an authenticated client may do, for aedes' authorizePublish and authorizeSubscribe hooks. A PUBLISH to
// devices/{device_id}/{stream} is committed to the buffer here: aedes runs authorizePublish before the QoS 1
// PUBACK (lib/handlers/publish.js), so a device hears PUBACK only for a committed record, and a refusal closes
// the connection [MQTT-3.3.5-2]. A refused SUBSCRIBE answers SUBACK failure and keeps the connection.
// This runs for every PUBLISH, so it is plain callbacks from aedes' hook to the group commit: no promise.
import type { Client, PublishPacket, Subscription } from 'aedes';
import type { NewRecord } from '../../record/record.ts';
import type { Router } from '../../record/routes.ts';
import { printable } from '../../shared/input-text.ts';
import type { AcceptThen } from '../ingress.ts';
import type { Rejections } from '../rejections.ts';
import type { MqttIngressOptions } from './broker.ts';
import { type Identity, type PublishDecision, canSubscribe, decidePublish } from './device-acl.ts';

export type AuthorizationOptions = Pick<MqttIngressOptions, 'maxPayloadBytes'>;

export interface AuthorizationDeps {
  readonly acceptThen: AcceptThen;
  readonly router: Router;
  readonly rejections: Rejections;
  /** Who the client is, as authentication decided at CONNECT; undefined if it never authenticated. */
  readonly identityOf: (client: Client) => Identity | undefined;
  /** Wall clock for a record's received-at. */
  readonly nowMs: () => number;
}

/** aedes' authorizePublish callback: null lets the publish go on, an error refuses it (and closes the connection). */
export type PublishDone = (error: Error | null) => void;

export interface Authorization {
  /** Calls `done` once, when the publish may go on (for QoS 1/2: once its record is committed) or is refused. */
  authorizePublish(client: Client | null, packet: PublishPacket, done: PublishDone): void;
  /** The subscription to grant, or null to answer SUBACK failure. */
  authorizeSubscribe(client: Client, subscription: Subscription): Subscription | null;
}

/** The meta of a device's own publish: none (shared; records are never mutated). */
const NO_META: Readonly<Record<string, string>> = Object.freeze({});

/** Subscriptions one client may hold. */
const MAX_SUBSCRIPTIONS_PER_CLIENT = 32;

/** The last topic an identity was allowed to publish to, and the decision for it. */
interface AllowedTopic {
  readonly topic: string;
  readonly decision: PublishDecision & { readonly allowed: true };
}

export function createAuthorization(options: AuthorizationOptions, deps: AuthorizationDeps): Authorization {
  const subscriptionCounts = new WeakMap<Client, number>();
  // A device publishes to the same topic over and over: its last allowed decision is kept (one per identity,
  // gone with it; a reload that changes a grant makes a new identity), so the common PUBLISH neither re-parses
  // its topic nor makes new strings for the record's key and stream.
  const lastAllowed = new WeakMap<Identity, AllowedTopic>();

  function decide(identity: Identity, topic: string): PublishDecision {
    const last = lastAllowed.get(identity);
    if (last !== undefined && last.topic === topic) return last.decision;
    const decision = decidePublish(identity, topic);
    if (decision.allowed) lastAllowed.set(identity, { topic, decision });
    return decision;
  }

  function reject(reason: string, subject: string, message: string, extra: Record<string, unknown> = {}): void {
    const client = printable(subject, 64);
    deps.rejections.reject(reason, `${client}: ${message}`, { logKey: `${subject}:${reason}`, fields: { client, ...extra } });
  }

  /**
   * Hands the record to the group commit. The one closure per publish carries `done` (and the client's id
   * for a refusal) to the commit's answer; everything before it ran synchronously.
   */
  function commitThenAnswer(record: NewRecord, qos: PublishPacket['qos'], subject: string, done: PublishDone): void {
    // QoS 0 has no acknowledgement to withhold: stored best effort, relayed at once.
    if (qos === 0) {
      deps.acceptThen([record], undefined, (result) => {
        if (!result.ok) reject(result.reason, subject, `QoS 0 publish not stored: ${result.message}`);
      });
      done(null);
      return;
    }
    deps.acceptThen([record], undefined, (result) => {
      if (result.ok) {
        done(null);
        return;
      }
      reject(result.reason, subject, `publish not acknowledged: ${result.message}`);
      done(new Error(result.message));
    });
  }

  return {
    authorizePublish(client, packet, done) {
      // Publishes from the broker itself ($SYS heartbeats, wills) have no client and are not records.
      if (client === null) {
        done(null);
        return;
      }
      const identity = deps.identityOf(client);
      const subject = client.id;
      if (identity === undefined) {
        done(new Error('not authenticated'));
        return;
      }
      const decision = decide(identity, packet.topic);
      if (!decision.allowed) {
        reject(decision.reason, subject, `publish refused: ${printable(decision.detail, 200)}`, { topic: printable(packet.topic, 128) });
        done(new Error(decision.detail));
        return;
      }
      const payload = packet.payload as Buffer;
      if (payload.length > options.maxPayloadBytes) {
        reject('oversize', subject, `publish refused: payload of ${payload.length} bytes exceeds mqtt.max_payload_bytes (${options.maxPayloadBytes})`);
        done(new Error('payload too large'));
        return;
      }
      if (decision.record === null) {
        done(null); // an account's publish outside devices/: relayed, not a record
        return;
      }
      const receivedAtMs = deps.nowMs();
      const { deviceId, stream } = decision.record;
      const record: NewRecord = {
        key: deviceId,
        stream,
        source: 'mqtt',
        receivedAtMs,
        // The buffer's thread reads the event time from the payload when the route names a field (the scan of
        // every payload was 5 % of this thread under load); until then the receive time stands in.
        eventTimeMs: receivedAtMs,
        eventTimeField: deps.router.eventTimeField(stream),
        payload,
        // An account may publish as any device its grant covers: the record says it was not the device.
        meta: identity.kind === 'client' ? { 'published-by': identity.username } : NO_META,
      };
      commitThenAnswer(record, packet.qos, subject, done);
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
