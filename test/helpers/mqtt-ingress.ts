// Starts the real MQTT ingress (aedes on an ephemeral loopback port) over a real SQLite buffer and the
// real group-commit batcher, for tests of what devices see. Everything is closed through the test context.
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { TestContext } from 'node:test';
import type { RecordBuffer } from '../../src/buffer/record-buffer.ts';
import { openWorkerBuffer } from '../../src/buffer/worker-buffer.ts';
import { createAcceptBatcher } from '../../src/ingress/accept-batcher.ts';
import { createMqttIngress, type MqttIngress, type MqttIngressOptions } from '../../src/ingress/mqtt-broker/broker.ts';
import { createMetrics, type Metrics } from '../../src/core/metrics.ts';
import { createRouter } from '../../src/record/routes.ts';
import { type CapturedLog, captureLog } from './capture-log.ts';
import { tempDir } from './temp-dir.ts';

export interface TestIngress {
  /** The component itself, for what a test drives directly (a reload). */
  readonly ingress: MqttIngress;
  readonly port: number;
  readonly tlsPort: number | null;
  readonly buffer: RecordBuffer;
  readonly bufferPath: string;
  readonly metrics: Metrics;
  readonly logs: CapturedLog;
  /** Value of a counter/gauge sample with these labels (0 when absent). */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
}

export const baseIngressOptions: MqttIngressOptions = {
  host: '127.0.0.1',
  port: 0,
  allowAnonymous: true,
  maxPayloadBytes: 4096,
  maxConnections: 1000,
  maxConnectionsPerAddress: 1000,
  maxHeldBytes: 32 * 1024 * 1024,
  persistence: { maxRetainedMessages: 1000, maxRetainedBytes: 8 * 1024 * 1024, maxSessions: 1000, maxQueuedPerClient: 1000, maxQueuedBytes: 64 * 1024 * 1024 },
  connectTimeoutMs: 5000,
  keepaliveLimitS: 0,
  devices: [],
  clients: [],
  tls: null,
};

export async function startTestIngress(
  t: TestContext,
  overrides: Partial<MqttIngressOptions> = {},
  bufferOptions: { path?: string; maxRecords?: number; whenFull?: 'reject' | 'drop_oldest' } = {},
): Promise<TestIngress> {
  const bufferPath = bufferOptions.path ?? join(tempDir(t), 'buffer.db');
  const logs = captureLog();
  const metrics = createMetrics({ processMetrics: false });
  const buffer = await openWorkerBuffer(
    {
      path: bufferPath,
      maxRecords: bufferOptions.maxRecords ?? 1_000_000,
      maxBytes: 1_000_000_000,
      whenFull: bufferOptions.whenFull ?? 'reject',
    },
    { log: logs.log, metrics },
  );
  const batcher = createAcceptBatcher({ commitIntervalMs: 2, commitMaxRecords: 1000 }, { buffer, log: logs.log, metrics });
  const ingress = createMqttIngress(
    { ...baseIngressOptions, ...overrides },
    { accept: batcher.accept, acceptThen: batcher.acceptThen, router: createRouter('records', []), log: logs.log, metrics },
  );
  await ingress.start();
  t.after(async () => {
    await ingress.stop();
    await batcher.close();
    await buffer.close();
  });
  const address = ingress.address();
  return {
    ingress,
    port: address.tcp.port,
    tlsPort: address.tls?.port ?? null,
    buffer,
    bufferPath,
    metrics,
    logs,
    async metric(name, labels = {}) {
      const metric = metrics.registry.getSingleMetric(name);
      if (metric === undefined) throw new Error(`no metric ${name}`);
      const { values } = await metric.get();
      const sample = values.find((value) => Object.entries(labels).every(([key, expected]) => String(value.labels[key]) === expected));
      return sample?.value ?? 0;
    },
  };
}

/** The records committed to a buffer file, read through a second, read-only connection (what is in the file, not in memory). */
export function storedRows(path: string): { key: string; stream: string; payload: string; meta: Record<string, string> }[] {
  const db = new Database(path, { readonly: true });
  try {
    return (
      db.prepare('SELECT key, stream, payload, meta FROM records ORDER BY seq').all() as { key: string; stream: string; payload: Buffer; meta: string }[]
    ).map((row) => ({ key: row.key, stream: row.stream, payload: row.payload.toString('utf8'), meta: JSON.parse(row.meta) as Record<string, string> }));
  } finally {
    db.close();
  }
}
