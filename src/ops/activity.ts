// What the gateway has seen lately, for the status page: a bounded LRU of devices fed by every commit, and a
// ring of the last rejections fed by every ingress (rejections.ts). Created before the ways in and the status
// model, which both hold it.

/** A fixed-capacity ring: push is O(1); the oldest entry is overwritten when full. */
export interface Ring<T> {
  push(item: T): void;
  /** Oldest first. */
  toArray(): T[];
  latest(): T | undefined;
  readonly size: number;
}

export function createRing<T>(capacity: number): Ring<T> {
  if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`ring capacity must be a positive integer, got ${capacity}`);
  const items: T[] = [];
  let next = 0;
  return {
    push(item) {
      if (items.length < capacity) items.push(item);
      else items[next] = item;
      next = (next + 1) % capacity;
    },
    toArray: () => (items.length < capacity ? [...items] : [...items.slice(next), ...items.slice(0, next)]),
    latest: () => (items.length === 0 ? undefined : items[(next - 1 + capacity) % capacity]),
    get size() {
      return items.length;
    },
  };
}

export interface SeenDevice {
  readonly id: string;
  readonly source: string;
  readonly lastSeenMs: number;
  /** Records accepted from this device since it entered the LRU. */
  readonly count: number;
}

/** Device id -> last seen, bounded: the least recently seen device is evicted first. */
export interface DeviceLru {
  /** Called per committed record: an update in place, and a move to the recent end at most once a second per device. */
  seen(id: string, source: string, atMs: number): void;
  /** Most recently seen first, at most `limit`. */
  recent(limit: number): SeenDevice[];
  /** Devices seen at or after `sinceMs`. */
  countSince(sinceMs: number): number;
  readonly size: number;
}

/**
 * How stale a device's place in the eviction order may get. Moving an entry to the end of the Map on every
 * record (a delete and a set: the Map's deleted slots then force a rehash now and then) was 1.5 % of the main
 * thread at 25,000 records/s; moving it once a second keeps eviction least-recently-seen to within a second.
 */
const REORDER_AFTER_MS = 1_000;

export function createDeviceLru(capacity: number): DeviceLru {
  /** In eviction order (least recently moved first); lastSeenMs is exact. */
  const devices = new Map<string, { id: string; source: string; lastSeenMs: number; movedAtMs: number; count: number }>();
  return {
    seen(id, source, atMs) {
      const entry = devices.get(id);
      if (entry !== undefined) {
        entry.source = source;
        entry.lastSeenMs = atMs;
        entry.count += 1;
        if (atMs - entry.movedAtMs < REORDER_AFTER_MS && atMs >= entry.movedAtMs) return;
        entry.movedAtMs = atMs;
        devices.delete(id);
        devices.set(id, entry);
        return;
      }
      devices.set(id, { id, source, lastSeenMs: atMs, movedAtMs: atMs, count: 1 });
      if (devices.size > capacity) devices.delete(devices.keys().next().value as string);
    },
    recent: (limit) =>
      [...devices.values()]
        .sort((a, b) => b.lastSeenMs - a.lastSeenMs)
        .slice(0, limit)
        .map(({ id, source, lastSeenMs, count }) => ({ id, source, lastSeenMs, count })),
    countSince(sinceMs) {
      let count = 0;
      for (const entry of devices.values()) if (entry.lastSeenMs >= sinceMs) count++;
      return count;
    },
    get size() {
      return devices.size;
    },
  };
}

export interface Rejection {
  readonly atMs: number;
  readonly source: string;
  readonly reason: string;
  /** Who and why, already shortened; untrusted text (the page renders it with textContent). */
  readonly detail: string;
}

export interface Activity {
  /** Called with each accept's records once committed. */
  noteAccepted(records: readonly { readonly key: string; readonly source: string }[]): void;
  /** Called by the ingresses wherever they count iotgw_ingress_rejected_total. */
  noteRejection(source: string, reason: string, detail: string): void;
  readonly devices: DeviceLru;
  readonly rejections: Ring<Rejection>;
}

export interface ActivityOptions {
  /** Default 1,000 devices. */
  readonly maxDevices?: number;
  /** Default 50. */
  readonly maxRejections?: number;
}

export function createActivity(options: ActivityOptions = {}, nowMs: () => number = Date.now): Activity {
  const devices = createDeviceLru(options.maxDevices ?? 1_000);
  const rejections = createRing<Rejection>(options.maxRejections ?? 50);
  return {
    devices,
    rejections,
    noteAccepted(records) {
      const atMs = nowMs();
      for (const record of records) devices.seen(record.key, record.source, atMs);
    },
    noteRejection(source, reason, detail) {
      rejections.push({ atMs: nowMs(), source, reason, detail: shorten(detail) });
    },
  };
}

const DETAIL_MAX_CHARS = 240;

/** Text for the page, cut at DETAIL_MAX_CHARS. */
export function shorten(detail: string): string {
  return detail.length > DETAIL_MAX_CHARS ? `${detail.slice(0, DETAIL_MAX_CHARS - 1)}…` : detail;
}
