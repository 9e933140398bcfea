// The status page's model (beside the flow): bounded rings of buffer/ingress samples (the last ~10 minutes,
// kept server side so a fresh page load shows history), a bounded LRU of recently seen devices fed from the
// accept path, the last rejections fed from the ingress adapters, the health of every way in (MQTT broker,
// Semtech UDP, serial radio, TTN links) read when asked, and rates computed from the Prometheus counters
// between samples. Served as JSON at /api/status; `iotgw status` and the page read it.
import type { LorawanRadioStatus } from '../ingress/lorawan-server/lorawan-server.ts';
import { existsSync, readFileSync } from 'node:fs';
import { type BufferStats, oldestAgeSeconds } from '../buffer/record-store.ts';
import { errorMessage } from '../errors.ts';
import type { Component, HealthReport } from '../core/lifecycle.ts';
import type { Metrics } from '../core/metrics.ts';
import type { LinkState as KafkaLinkState } from '../forward/forwarder.ts';
import { type Activity, createRing, type Rejection, type SeenDevice, shorten } from './activity.ts';

export type { KafkaLinkState };

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
  /** iotgw_commands_total by status. */
  readonly commandsByStatus: Readonly<Record<string, number>>;
  /** iotgw_commands_waiting by state (queued, sent). */
  readonly commandsWaiting: Readonly<Record<string, number>>;
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
  /** Commands to devices: waiting by state, and receipts by status since the start (all empty when commands are off). */
  readonly commands: { readonly waiting: Readonly<Record<string, number>>; readonly byStatus: Readonly<Record<string, number>> };
  readonly rejections: readonly Rejection[];
  readonly history: { readonly intervalMs: number; readonly samples: readonly StatusSample[] };
  /** LoRaWAN devices by data rate and TX power, and recent ADR changes; null when LoRaWAN is off. */
  readonly lorawan: LorawanRadioStatus | null;
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
}

export interface StatusDeps {
  readonly metrics: Metrics;
  /** The link state and buffer figures now (null while the buffer is closed). */
  readonly live: () => { readonly kafka: KafkaLinkState; readonly buffer: BufferStats | null };
  /** The ingress components, in start order; asked for their health() at each snapshot. */
  readonly waysIn: readonly Pick<Component, 'name' | 'health'>[];
  /** Devices seen and rejections, as the accept path and the ingresses report them. */
  readonly activity: Activity;
  /** The LoRaWAN network's radio figures; absent (or null) when LoRaWAN is off. */
  readonly lorawan?: () => LorawanRadioStatus | null;
  readonly nowMs?: () => number;
}

export interface Status extends Component {
  /** Takes one history sample now (the component does it every sampleIntervalMs). */
  sample(): Promise<void>;
  snapshot(): Promise<StatusSnapshot>;
}

const RECENT_DEVICES_SHOWN = 50;

export function createStatus(options: StatusOptions, deps: StatusDeps): Status {
  const nowMs = deps.nowMs ?? Date.now;
  const intervalMs = options.sampleIntervalMs ?? 2_000;
  const history = createRing<StatusSample>(options.historySamples ?? 300);
  const { devices, rejections } = deps.activity;
  const startedAtMs = nowMs();
  let previous: { atMs: number; totals: CounterTotals } | null = null;
  let timer: NodeJS.Timeout | null = null;
  let sampling: Promise<void> | null = null;

  function links(): IngressLink[] {
    return deps.waysIn.map((component) => {
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
      oldestAgeSeconds: oldestAgeSeconds(buffer, atMs),
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
        commands: { waiting: totals.commandsWaiting, byStatus: totals.commandsByStatus },
        rejections: rejections.toArray().reverse(),
        history: { intervalMs, samples },
        lorawan: deps.lorawan?.() ?? null,
      };
    },
  };
}

/** Reads the counters the page needs from the registry (prom-client's get() is async). */
export async function readCounterTotals(metrics: Metrics): Promise<CounterTotals> {
  const [accepted, rejected, sent, errors, dropped, clients, commands, waiting] = await Promise.all([
    metrics.ingressAccepted.get(),
    metrics.ingressRejected.get(),
    metrics.kafkaSentRecords.get(),
    metrics.kafkaSendErrors.get(),
    metrics.bufferDropped.get(),
    metrics.mqttConnectedClients.get(),
    metrics.commands.get(),
    metrics.commandsWaiting.get(),
  ]);
  const byLabel = (label: string, values: readonly { value: number; labels: Partial<Record<string, string | number>> }[]): Record<string, number> => {
    const result: Record<string, number> = {};
    for (const { value, labels } of values) {
      const key = String(labels[label] ?? 'unknown');
      result[key] = (result[key] ?? 0) + value;
    }
    return result;
  };
  const bySource = (values: readonly { value: number; labels: Partial<Record<string, string | number>> }[]): Record<string, number> =>
    byLabel('source', values);
  const sum = (values: readonly { value: number }[]): number => values.reduce((total, entry) => total + entry.value, 0);
  return {
    acceptedBySource: bySource(accepted.values),
    rejectedBySource: bySource(rejected.values),
    kafkaSentRecords: sum(sent.values),
    kafkaSendErrors: sum(errors.values),
    bufferDropped: sum(dropped.values),
    mqttConnectedClients: sum(clients.values),
    commandsByStatus: byLabel('status', commands.values),
    commandsWaiting: byLabel('state', waiting.values),
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

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}
