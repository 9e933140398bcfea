// aedes' in-memory persistence with bounds on what clients can make it keep: retained messages (count and
// bytes), persistent sessions with subscriptions (clean session false), and each session's queue of QoS 1/2
// messages waiting for it (count and bytes). At a bound the new item is not kept (a retained message is still
// delivered live, a queued one is dropped for that subscriber only), counted, and reported once per episode.
// Records are unaffected: they are committed in authorizePublish, before any of this.
import memoryPersistence from 'aedes-persistence';

export interface PersistenceLimits {
  readonly maxRetainedMessages: number;
  readonly maxRetainedBytes: number;
  /** Client ids with stored subscriptions (clean session false). */
  readonly maxSessions: number;
  readonly maxQueuedPerClient: number;
  /** Payload bytes queued for all sessions together. */
  readonly maxQueuedBytes: number;
}

export type PersistenceRefusal = 'retained-limit' | 'session-limit' | 'queue-limit';

interface PacketLike {
  readonly topic: string;
  readonly payload: Buffer | string;
}

interface ClientLike {
  readonly id: string;
}

/** The parts of aedes-persistence's promise API that are bounded here (the rest passes through). */
interface MemoryPersistence {
  storeRetained(packet: PacketLike): Promise<void>;
  addSubscriptions(client: ClientLike, subs: readonly unknown[]): Promise<void>;
  subscriptionsByTopic(topic: string): Promise<readonly unknown[]>;
  cleanSubscriptions(client: ClientLike): Promise<void>;
  outgoingEnqueue(sub: { readonly clientId: string }, packet: PacketLike): Promise<void>;
  outgoingEnqueueCombi(subs: readonly { readonly clientId: string }[], packet: PacketLike): Promise<void>;
  outgoingClearMessageId(client: ClientLike, packet: unknown): Promise<PacketLike | undefined>;
}

/** What a topic without offline subscribers matches (aedes only reads it). */
const NO_SUBSCRIPTIONS: readonly unknown[] = Object.freeze([]);
/**
 * An answer known when it is asked for, as a thenable that calls `onFulfilled` at once. aedes calls the two
 * per-PUBLISH lookups below in its chain after each PUBACK (enqueueOffline, then outgoingEnqueueCombi) and
 * only chains `.then(onFulfilled, onRejected)` on them as the last thing it does; a promise there cost two
 * allocations and two microtask hops per publish, at tens of thousands of publishes a second. `await` and
 * `Promise.resolve` adopt it like any thenable (asynchronously, as for a promise); it is not `instanceof
 * Promise`, and nothing here or in aedes asks.
 */
export function settledWith<T>(value: T): Promise<T> {
  const settled = {
    // biome-ignore lint/suspicious/noThenProperty: a thenable on purpose, for aedes' `.then` (see above)
    then(onFulfilled?: ((value: T) => unknown) | null): unknown {
      if (typeof onFulfilled !== 'function') return settled;
      try {
        const result = onFulfilled(value);
        // aedes' callbacks return nothing: answering with a shared settled thenable keeps this allocation-free.
        return result === undefined ? SETTLED_VOID : Promise.resolve(result);
      } catch (error) {
        return Promise.reject(error); // as a promise's then would: the throw becomes the chained rejection
      }
    },
    catch: () => settled,
    // Not on aedes' path: a real promise, so onFinally runs later and a throw in it rejects, as for any promise.
    finally: (onFinally?: (() => void) | null) => Promise.resolve(value).finally(onFinally),
    [Symbol.toStringTag]: 'SettledAnswer',
  };
  return settled as unknown as Promise<T>;
}

const SETTLED_VOID = settledWith<void>(undefined);
const NO_SUBSCRIPTIONS_FOUND = settledWith<readonly unknown[]>(NO_SUBSCRIPTIONS);
const NOTHING_QUEUED = SETTLED_VOID;

function payloadBytes(packet: PacketLike): number {
  return typeof packet.payload === 'string' ? Buffer.byteLength(packet.payload) : packet.payload.length;
}

/** A memory persistence for aedes (pass as `persistence`) that keeps within `limits`. */
export function createBoundedPersistence(
  limits: PersistenceLimits,
  onRefuse: (refusal: PersistenceRefusal, detail: string) => void,
  /** Told of every PUBACK (aedes clears the packet id here, for clean sessions too): the downlink's acknowledgement. */
  onPuback: (client: ClientLike, messageId: number | undefined) => void = () => undefined,
): unknown {
  const base = (memoryPersistence as unknown as () => MemoryPersistence)();
  const retained = new Map<string, number>(); // topic -> payload bytes
  let retainedBytes = 0;
  const sessions = new Set<string>();
  const queued = new Map<string, { count: number; bytes: number }>();
  let queuedBytes = 0;

  const storeRetained = base.storeRetained.bind(base);
  base.storeRetained = async (packet) => {
    const bytes = payloadBytes(packet);
    const previous = retained.get(packet.topic);
    if (bytes === 0) {
      // An empty retained message clears the topic [MQTT-3.3.1-10].
      if (previous !== undefined) {
        retained.delete(packet.topic);
        retainedBytes -= previous;
      }
      return storeRetained(packet);
    }
    const count = retained.size + (previous === undefined ? 1 : 0);
    const total = retainedBytes - (previous ?? 0) + bytes;
    if (count > limits.maxRetainedMessages || total > limits.maxRetainedBytes) {
      onRefuse(
        'retained-limit',
        `retained message on a ${packet.topic.length}-character topic not kept: ${retained.size} retained messages, ${retainedBytes} bytes (limits ${limits.maxRetainedMessages}, ${limits.maxRetainedBytes})`,
      );
      return;
    }
    retained.set(packet.topic, bytes);
    retainedBytes = total;
    return storeRetained(packet);
  };

  const addSubscriptions = base.addSubscriptions.bind(base);
  base.addSubscriptions = async (client, subs) => {
    if (!sessions.has(client.id) && sessions.size >= limits.maxSessions) {
      onRefuse('session-limit', `persistent session not kept: ${sessions.size} sessions with subscriptions already (limit ${limits.maxSessions})`);
      throw new Error(`the broker keeps at most ${limits.maxSessions} persistent sessions; connect with clean session`);
    }
    sessions.add(client.id);
    return addSubscriptions(client, subs);
  };

  const cleanSubscriptions = base.cleanSubscriptions.bind(base);
  base.cleanSubscriptions = (client) => {
    // The memory persistence drops the subscriptions synchronously, within this call: the session leaves
    // `sessions` right after that, in the same turn, so no addSubscriptions for the same id can come between.
    const cleaned = cleanSubscriptions(client);
    sessions.delete(client.id);
    return cleaned;
  };

  // Devices mostly connect with clean session: then no client has a stored subscription, no publish has an
  // offline subscriber, and matching every PUBLISH's topic against the empty trie (a split and a walk, in
  // aedes' path after each PUBACK) is skipped. A client id is in `sessions` from before its subscriptions are
  // stored until after they are cleaned, so while `sessions` is empty, so is the trie.
  const subscriptionsByTopic = base.subscriptionsByTopic.bind(base);
  base.subscriptionsByTopic = (topic) => (sessions.size === 0 ? NO_SUBSCRIPTIONS_FOUND : subscriptionsByTopic(topic));

  /** Whether one more packet may wait for `clientId`; takes its room when it may. */
  function reserve(clientId: string, packet: PacketLike): boolean {
    const bytes = payloadBytes(packet);
    const entry = queued.get(clientId) ?? { count: 0, bytes: 0 };
    if (entry.count >= limits.maxQueuedPerClient || queuedBytes + bytes > limits.maxQueuedBytes) {
      onRefuse(
        'queue-limit',
        `a message for a persistent session was dropped: ${entry.count} messages wait for it, ${queuedBytes} bytes for all (limits ${limits.maxQueuedPerClient} per session, ${limits.maxQueuedBytes} bytes)`,
      );
      return false;
    }
    entry.count += 1;
    entry.bytes += bytes;
    queued.set(clientId, entry);
    queuedBytes += bytes;
    return true;
  }

  const outgoingEnqueue = base.outgoingEnqueue.bind(base);
  base.outgoingEnqueue = async (sub, packet) => {
    if (reserve(sub.clientId, packet)) return outgoingEnqueue(sub, packet);
  };

  const outgoingEnqueueCombi = base.outgoingEnqueueCombi.bind(base);
  const enqueueWithinLimits = async (subs: readonly { readonly clientId: string }[], packet: PacketLike): Promise<void> => {
    const kept = subs.filter((sub) => reserve(sub.clientId, packet));
    if (kept.length > 0) return outgoingEnqueueCombi(kept, packet);
  };
  base.outgoingEnqueueCombi = (subs, packet) => (subs.length === 0 ? NOTHING_QUEUED : enqueueWithinLimits(subs, packet));

  const outgoingClearMessageId = base.outgoingClearMessageId.bind(base);
  base.outgoingClearMessageId = async (client, packet) => {
    onPuback(client, (packet as { messageId?: number } | null)?.messageId);
    const cleared = await outgoingClearMessageId(client, packet);
    const entry = queued.get(client.id);
    if (cleared !== undefined && entry !== undefined) {
      const bytes = payloadBytes(cleared);
      entry.count -= 1;
      entry.bytes -= bytes;
      queuedBytes -= bytes;
      if (entry.count <= 0) queued.delete(client.id);
    }
    return cleared;
  };

  return base;
}
