// The status page's model (beside the flow): bounded rings of buffer/ingress samples (the last ~10 minutes,
// kept server side so a fresh page load shows history), a bounded LRU of recently seen devices fed from the
// accept path, the last rejections fed from the ingress adapters, the health of every way in (MQTT broker,
// Semtech UDP, serial radio, TTN links) read when asked, and rates computed from the Prometheus counters
// between samples. Served as JSON at /api/status; `iotgw status` and the page read it.
import { existsSync, readFileSync } from 'node:fs';
import type { BufferStats } from '../buffer/record-store.ts';
import { errorMessage } from '../errors.ts';
import type { Component, HealthReport } from '../core/lifecycle.ts';
import type { Metrics } from '../core/metrics.ts';

export type KafkaLinkState = 'up' | 'buffering' | 'starting';

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
  /** One Map delete + set per record: cheap enough for the accept path. */
  seen(id: string, source: string, atMs: number): void;
  /** Most recently seen first, at most `limit`. */
  recent(limit: number): SeenDevice[];
  /** Devices seen at or after `sinceMs` (scans the LRU from its recent end). */
  countSince(sinceMs: number): number;
  readonly size: number;
}

export function createDeviceLru(capacity: number): DeviceLru {
  const devices = new Map<string, { id: string; source: string; lastSeenMs: number; count: number }>();
  function newestFirst(): { id: string; source: string; lastSeenMs: number; count: number }[] {
    return [...devices.values()].reverse();
  }
  return {
    seen(id, source, atMs) {
      const entry = devices.get(id);
      if (entry !== undefined) {
        devices.delete(id);
        entry.source = source;
        entry.lastSeenMs = atMs;
        entry.count += 1;
        devices.set(id, entry);
        return;
      }
      devices.set(id, { id, source, lastSeenMs: atMs, count: 1 });
      if (devices.size > capacity) devices.delete(devices.keys().next().value as string);
    },
    recent: (limit) =>
      newestFirst()
        .slice(0, limit)
        .map((entry) => ({ ...entry })),
    countSince(sinceMs) {
      let count = 0;
      for (const entry of newestFirst()) {
        if (entry.lastSeenMs < sinceMs) break;
        count++;
      }
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

/** One way in (an ingress component) as its health() reports it now. */
export interface IngressLink {
  /** The component's name: ingress.mqtt, ingress.semtech-udp, ingress.serial-radio, ingress.ttn.{username}. */
  readonly name: string;
  readonly status: HealthReport['status'];
  /** What the component says about itself (may quote a peer's error: the page renders it with textContent). */
  readonly detail?: string;
}

/** Counter totals at one moment; rates are differences between two of these. */
export interface CounterTotals {
  readonly acceptedBySource: Readonly<Record<string, number>>;
  readonly rejectedBySource: Readonly<Record<string, number>>;
  readonly kafkaSentRecords: number;
  readonly kafkaSendErrors: number;
  readonly bufferDropped: number;
  readonly mqttConnectedClients: number;
}

export interface StatusSample {
  readonly atMs: number;
  readonly kafka: KafkaLinkState;
  readonly depthRecords: number;
  readonly depthBytes: number;
  readonly oldestAgeSeconds: number;
  /** Records/s accepted over the interval before this sample, by source. */
  readonly ingressPerSecond: Readonly<Record<string, number>>;
  readonly kafkaSentPerSecond: number;
}

/** What /api/status returns (all times in ms since the epoch, durations in seconds). */
export interface StatusSnapshot {
  readonly gatewayId: string;
  readonly version: string;
  readonly nowMs: number;
  readonly startedAtMs: number;
  readonly uptimeSeconds: number;
  readonly kafka: {
    readonly state: KafkaLinkState;
    readonly sentRecords: number;
    readonly sendErrors: number;
    readonly sentPerSecond: number;
  };
  readonly buffer: {
    readonly depthRecords: number;
    readonly depthBytes: number;
    readonly oldestAgeSeconds: number;
    readonly deadLetters: number;
    readonly droppedRecords: number;
    readonly maxRecords: number;
    readonly maxBytes: number;
  };
  readonly ingress: {
    readonly perSecond: number;
    readonly sources: readonly {
      readonly source: string;
      readonly accepted: number;
      readonly rejected: number;
      readonly perSecond: number;
    }[];
  };
  readonly devices: {
    readonly connected: number;
    /** Devices seen within the history window (bounded by the LRU's capacity). */
    readonly seenRecently: number;
    readonly recent: readonly SeenDevice[];
  };
  /** Every way in, in start order. */
  readonly links: readonly IngressLink[];
  readonly rejections: readonly Rejection[];
  readonly history: { readonly intervalMs: number; readonly samples: readonly StatusSample[] };
}

export interface StatusOptions {
  readonly gatewayId: string;
  readonly version: string;
  readonly maxRecords: number;
  readonly maxBytes: number;
  /** Default 2,000 ms. */
  readonly sampleIntervalMs?: number;
  /** Default 300 (10 minutes at 2 s). */
  readonly historySamples?: number;
  /** Default 1,000 devices. */
  readonly maxDevices?: number;
  /** Default 50. */
  readonly maxRejections?: number;
}

export interface StatusDeps {
  readonly metrics: Metrics;
  /** The link state and buffer figures now (null while the buffer is closed). */
  readonly live: () => { readonly kafka: KafkaLinkState; readonly buffer: BufferStats | null };
  /** The ingress components, in start order; asked for their health() at each snapshot. Default none. */
  readonly waysIn?: () => readonly Pick<Component, 'name' | 'health'>[];
  readonly nowMs?: () => number;
}

export interface Status extends Component {
  /** Called from the accept path with committed records. */
  noteAccepted(records: readonly { readonly key: string; readonly source: string }[]): void;
  /** Called by ingress adapters wherever they count iotgw_ingress_rejected_total. */
  noteRejection(source: string, reason: string, detail: string): void;
  /** Takes one history sample now (the component does it every sampleIntervalMs). */
  sample(): Promise<void>;
  snapshot(): Promise<StatusSnapshot>;
}

const RECENT_DEVICES_SHOWN = 50;
const DETAIL_MAX_CHARS = 240;

export function createStatus(options: StatusOptions, deps: StatusDeps): Status {
  const nowMs = deps.nowMs ?? Date.now;
  const intervalMs = options.sampleIntervalMs ?? 2_000;
  const history = createRing<StatusSample>(options.historySamples ?? 300);
  const devices = createDeviceLru(options.maxDevices ?? 1_000);
  const rejections = createRing<Rejection>(options.maxRejections ?? 50);
  const startedAtMs = nowMs();
  let previous: { atMs: number; totals: CounterTotals } | null = null;
  let timer: NodeJS.Timeout | null = null;
  let sampling: Promise<void> | null = null;

  function links(): IngressLink[] {
    return (deps.waysIn?.() ?? []).map((component) => {
      let report: HealthReport;
      try {
        report = component.health();
      } catch (error) {
        // A status read must not fail because one component's health() did: show that one as down instead.
        report = { status: 'down', detail: `health check failed: ${errorMessage(error)}` };
      }
      return report.detail === undefined
        ? { name: component.name, status: report.status }
        : { name: component.name, status: report.status, detail: shorten(report.detail) };
    });
  }

  function liveFigures(atMs: number) {
    const { kafka, buffer } = deps.live();
    return {
      kafka,
      depthRecords: buffer?.depthRecords ?? 0,
      depthBytes: buffer?.depthBytes ?? 0,
      oldestAgeSeconds: buffer?.oldestReceivedAtMs == null ? 0 : Math.max(0, Math.round((atMs - buffer.oldestReceivedAtMs) / 1000)),
      deadLetters: buffer?.deadLetters ?? 0,
    };
  }

  async function sample(): Promise<void> {
    const atMs = nowMs();
    const totals = await readCounterTotals(deps.metrics);
    const live = liveFigures(atMs);
    const seconds = previous === null ? 0 : (atMs - previous.atMs) / 1000;
    const rate = (now: number, before: number | undefined): number => (seconds <= 0 ? 0 : round2(Math.max(0, now - (before ?? 0)) / seconds));
    const ingressPerSecond: Record<string, number> = {};
    for (const [source, accepted] of Object.entries(totals.acceptedBySource)) {
      ingressPerSecond[source] = rate(accepted, previous?.totals.acceptedBySource[source]);
    }
    history.push({
      atMs,
      kafka: live.kafka,
      depthRecords: live.depthRecords,
      depthBytes: live.depthBytes,
      oldestAgeSeconds: live.oldestAgeSeconds,
      ingressPerSecond,
      kafkaSentPerSecond: rate(totals.kafkaSentRecords, previous?.totals.kafkaSentRecords),
    });
    previous = { atMs, totals };
  }

  function runSample(): Promise<void> {
    // One sample at a time: a slow registry read must not pile up timers' work.
    sampling ??= sample().finally(() => {
      sampling = null;
    });
    return sampling;
  }

  return {
    name: 'ops.status',

    async start() {
      await runSample();
      timer = setInterval(() => void runSample().catch(() => undefined), intervalMs);
      timer.unref();
    },

    async stop() {
      if (timer !== null) clearInterval(timer);
      timer = null;
      await sampling;
    },

    health(): HealthReport {
      return { status: 'ok' };
    },

    noteAccepted(records) {
      const atMs = nowMs();
      for (const record of records) devices.seen(record.key, record.source, atMs);
    },

    noteRejection(source, reason, detail) {
      rejections.push({
        atMs: nowMs(),
        source,
        reason,
        detail: shorten(detail),
      });
    },

    sample: runSample,

    async snapshot(): Promise<StatusSnapshot> {
      const atMs = nowMs();
      const totals = await readCounterTotals(deps.metrics);
      const live = liveFigures(atMs);
      const last = history.latest();
      const sources = new Set([...Object.keys(totals.acceptedBySource), ...Object.keys(totals.rejectedBySource)]);
      const perSource = [...sources].sort().map((source) => ({
        source,
        accepted: totals.acceptedBySource[source] ?? 0,
        rejected: totals.rejectedBySource[source] ?? 0,
        perSecond: last?.ingressPerSecond[source] ?? 0,
      }));
      const samples = history.toArray();
      return {
        gatewayId: options.gatewayId,
        version: options.version,
        nowMs: atMs,
        startedAtMs,
        uptimeSeconds: Math.round((atMs - startedAtMs) / 1000),
        kafka: {
          state: live.kafka,
          sentRecords: totals.kafkaSentRecords,
          sendErrors: totals.kafkaSendErrors,
          sentPerSecond: last?.kafkaSentPerSecond ?? 0,
        },
        buffer: {
          depthRecords: live.depthRecords,
          depthBytes: live.depthBytes,
          oldestAgeSeconds: live.oldestAgeSeconds,
          deadLetters: live.deadLetters,
          droppedRecords: totals.bufferDropped,
          maxRecords: options.maxRecords,
          maxBytes: options.maxBytes,
        },
        ingress: { perSecond: round2(perSource.reduce((sum, entry) => sum + entry.perSecond, 0)), sources: perSource },
        devices: {
          connected: totals.mqttConnectedClients,
          seenRecently: devices.countSince(atMs - intervalMs * (options.historySamples ?? 300)),
          recent: devices.recent(RECENT_DEVICES_SHOWN),
        },
        links: links(),
        rejections: rejections.toArray().reverse(),
        history: { intervalMs, samples },
      };
    },
  };
}

/** Reads the counters the page needs from the registry (prom-client's get() is async). */
export async function readCounterTotals(metrics: Metrics): Promise<CounterTotals> {
  const [accepted, rejected, sent, errors, dropped, clients] = await Promise.all([
    metrics.ingressAccepted.get(),
    metrics.ingressRejected.get(),
    metrics.kafkaSentRecords.get(),
    metrics.kafkaSendErrors.get(),
    metrics.bufferDropped.get(),
    metrics.mqttConnectedClients.get(),
  ]);
  const bySource = (values: readonly { value: number; labels: Partial<Record<string, string | number>> }[]): Record<string, number> => {
    const result: Record<string, number> = {};
    for (const { value, labels } of values) {
      const source = String(labels.source ?? 'unknown');
      result[source] = (result[source] ?? 0) + value;
    }
    return result;
  };
  const sum = (values: readonly { value: number }[]): number => values.reduce((total, entry) => total + entry.value, 0);
  return {
    acceptedBySource: bySource(accepted.values),
    rejectedBySource: bySource(rejected.values),
    kafkaSentRecords: sum(sent.values),
    kafkaSendErrors: sum(errors.values),
    bufferDropped: sum(dropped.values),
    mqttConnectedClients: sum(clients.values),
  };
}

/** iotgw's version from its package.json (src/ under tsx, dist/src/ when built). */
export function packageVersion(): string {
  for (const relative of ['../../package.json', '../../../package.json']) {
    const url = new URL(relative, import.meta.url);
    if (!existsSync(url)) continue;
    try {
      const pkg = JSON.parse(readFileSync(url, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'iotgw' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // not ours; keep looking
    }
  }
  return 'unknown';
}

function shorten(detail: string): string {
  return detail.length > DETAIL_MAX_CHARS ? `${detail.slice(0, DETAIL_MAX_CHARS - 1)}…` : detail;
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}
