// A map for state keyed by outside input (usernames, source addresses, gateway EUIs, stream names): bounded
// in entries and in bytes, with an age limit, so no sender can grow it without bound. At a bound the oldest
// entries go first (insertion order; `set` on an existing key moves it to the newest place). Evictions are
// counted, so a component can say when its bound was hit.

export interface BoundedMapOptions<K, V> {
  readonly maxEntries: number;
  /** Bytes of all entries together, as `sizeOf` counts them. */
  readonly maxBytes: number;
  /** Entries older than this (since their last `set`) are gone; Infinity keeps them until evicted. */
  readonly maxAgeMs: number;
  /** An entry's size in bytes; the default counts a string key's UTF-16 length twice plus 64 for the entry. */
  readonly sizeOf?: (key: K, value: V) => number;
  readonly nowMs?: () => number;
}

export interface BoundedMap<K, V> {
  get(key: K): V | undefined;
  has(key: K): boolean;
  /** Stores the entry as the newest; evicts the oldest ones while a bound is exceeded. False if the entry alone is over maxBytes. */
  set(key: K, value: V): boolean;
  delete(key: K): boolean;
  clear(): void;
  readonly size: number;
  readonly bytes: number;
  /** Entries dropped to keep a bound (not counting age expiry or delete). */
  readonly evictions: number;
  /** Entries not yet expired, oldest first. */
  values(): IterableIterator<V>;
  entries(): IterableIterator<[K, V]>;
}

interface Slot<V> {
  readonly value: V;
  readonly bytes: number;
  readonly atMs: number;
}

const ENTRY_OVERHEAD_BYTES = 64;

function defaultSizeOf(key: unknown): number {
  return ENTRY_OVERHEAD_BYTES + (typeof key === 'string' ? key.length * 2 : 8);
}

export function createBoundedMap<K, V>(options: BoundedMapOptions<K, V>): BoundedMap<K, V> {
  const sizeOf = options.sizeOf ?? defaultSizeOf;
  const nowMs = options.nowMs ?? (() => performance.now());
  const slots = new Map<K, Slot<V>>();
  let bytes = 0;
  let evictions = 0;

  function remove(key: K, slot: Slot<V>): void {
    slots.delete(key);
    bytes -= slot.bytes;
  }

  /** Drops expired entries from the oldest end (entries are in set order, so the expired ones come first). */
  function expire(now: number): void {
    if (options.maxAgeMs === Number.POSITIVE_INFINITY) return;
    for (const [key, slot] of slots) {
      if (now - slot.atMs <= options.maxAgeMs) return;
      remove(key, slot);
    }
  }

  function fresh(key: K): Slot<V> | undefined {
    const slot = slots.get(key);
    if (slot === undefined) return undefined;
    if (nowMs() - slot.atMs > options.maxAgeMs) {
      remove(key, slot);
      return undefined;
    }
    return slot;
  }

  return {
    get: (key) => fresh(key)?.value,
    has: (key) => fresh(key) !== undefined,
    set(key, value) {
      const now = nowMs();
      const existing = slots.get(key);
      if (existing !== undefined) remove(key, existing);
      const entryBytes = sizeOf(key, value);
      if (entryBytes > options.maxBytes) return false;
      expire(now);
      while (slots.size > 0 && (slots.size >= options.maxEntries || bytes + entryBytes > options.maxBytes)) {
        const oldest = slots.entries().next().value as [K, Slot<V>];
        remove(oldest[0], oldest[1]);
        evictions += 1;
      }
      slots.set(key, { value, bytes: entryBytes, atMs: now });
      bytes += entryBytes;
      return true;
    },
    delete(key) {
      const slot = slots.get(key);
      if (slot === undefined) return false;
      remove(key, slot);
      return true;
    },
    clear() {
      slots.clear();
      bytes = 0;
    },
    get size() {
      return slots.size;
    },
    get bytes() {
      return bytes;
    },
    get evictions() {
      return evictions;
    },
    *values() {
      for (const [, value] of this.entries()) yield value;
    },
    *entries() {
      const now = nowMs();
      for (const [key, slot] of [...slots]) if (now - slot.atMs <= options.maxAgeMs) yield [key, slot.value] as [K, V];
    },
  };
}
