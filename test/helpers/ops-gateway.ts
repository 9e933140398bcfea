// The whole gateway in this process (createGateway from src/main.ts) on free ports, over a real SQLite
// buffer and librdkafka's mock cluster, for tests of the ops endpoint: /metrics, /readyz, the status page.
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { createGateway, type Gateway } from '../../src/main.ts';
import { type Config, type ConfigInput, configSchema } from '../../src/config/schema.ts';
import { type CapturedLog, captureLog } from './capture-log.ts';
import { type KafkaMock, kafkaMockFor } from './kafka-mock.ts';
import { tempDir } from './temp-dir.ts';

export const OPS_TOPIC = 'ops.records';

export interface OpsGateway {
  readonly gateway: Gateway;
  readonly kafka: KafkaMock;
  readonly config: Config;
  readonly dir: string;
  readonly logs: CapturedLog;
  /** http://127.0.0.1:PORT */
  readonly baseUrl: string;
  /** mqtt://127.0.0.1:PORT */
  readonly mqttUrl: string;
}

export async function startOpsGateway(
  t: TestContext,
  overrides: { readonly http?: ConfigInput['http']; readonly lorawan?: ConfigInput['lorawan']; readonly serial?: ConfigInput['serial'] } = {},
): Promise<OpsGateway> {
  const kafka = await kafkaMockFor(t, { brokers: 1, topics: [{ name: OPS_TOPIC, partitions: 2 }] });
  const dir = tempDir(t);
  const config = configSchema.parse({
    gateway_id: 'gw-ops-test',
    log: { level: 'warn' },
    mqtt: { host: '127.0.0.1', port: 0, allow_anonymous: true },
    http: { host: '127.0.0.1', port: 0, ...overrides.http },
    kafka: {
      brokers: [...kafka.brokers],
      topic: OPS_TOPIC,
      retry_initial_ms: 50,
      retry_max_ms: 300,
      request_timeout_ms: 3000,
      connection_timeout_ms: 500,
    },
    buffer: { path: join(dir, 'buffer.db') },
    ...(overrides.lorawan === undefined ? {} : { lorawan: overrides.lorawan }),
    ...(overrides.serial === undefined ? {} : { serial: overrides.serial }),
  } satisfies ConfigInput);
  const logs = captureLog('warn');
  const gateway = createGateway(config, { log: logs.log });
  await gateway.start();
  t.after(() => gateway.stop());
  return {
    gateway,
    kafka,
    config,
    dir,
    logs,
    baseUrl: `http://127.0.0.1:${gateway.httpAddress().port}`,
    mqttUrl: `mqtt://127.0.0.1:${gateway.mqttAddress().tcp.port}`,
  };
}
