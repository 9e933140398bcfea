// The stage for the hostile-network tests: the gateway process started as the systemd unit starts it (its
// NODE_OPTIONS heap limits), the mock Kafka cluster, and a firmware-sim fleet of authenticated devices that
// keeps publishing at QoS 1 while a test attacks. finish() stops the fleet and checks what an attack must
// never cost: every reading a device saw acknowledged is in Kafka, in order, and the devices kept being served.
// The gateway's resident memory is sampled throughout, from /proc.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createFleet } from '../../firmware-sim/fleet.ts';
import { type MqttFleetReport, runMqttFleet } from '../../firmware-sim/mqtt-fleet.ts';
import { hashPassword } from '../../src/ingress/mqtt-broker/password-hash.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { allAckedRead, checkDelivery } from '../helpers/delivery-check.ts';
import { type GatewayProcess, freePort, freeUdpPort, startGatewayProcess, writeGatewayConfig } from '../helpers/gateway-process.ts';
import { type KafkaMock, kafkaMockFor, readTopic } from '../helpers/kafka-mock.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { unitNode } from '../helpers/unit-node.ts';
import { waitFor } from '../helpers/wait-for.ts';

const TOPIC = 'hostile.records';
export const FLEET_PASSWORD = 'fleet-device-secret';

export interface HostileGateway {
  readonly gateway: GatewayProcess;
  readonly kafka: KafkaMock;
  readonly dir: string;
  readonly mqttPort: number;
  /** The Semtech UDP port, when lorawan is on. */
  readonly udpPort: number;
  /** Highest resident set size of the gateway process seen so far, in bytes. */
  peakRssBytes(): number;
  /** Stops the fleet and checks delivery; returns the fleet's report and the peak RSS over the whole run. */
  finish(): Promise<{ readonly report: MqttFleetReport; readonly peakRssBytes: number }>;
}

export interface HostileOptions {
  /** Merged over the base config (fleet devices listed with passwords, Kafka, buffer in a temp dir). */
  readonly config?: (base: ConfigInput) => ConfigInput;
  readonly fleetDevices?: number;
  readonly fleetRate?: number;
  readonly lorawan?: boolean;
}

function rssBytes(pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match === null ? 0 : Number(match[1]) * 1024;
  } catch {
    return 0;
  }
}

export async function startHostileGateway(t: TestContext, options: HostileOptions = {}): Promise<HostileGateway> {
  const kafka = await kafkaMockFor(t, { brokers: 1, topics: [{ name: TOPIC, partitions: 4 }] });
  const dir = tempDir(t, 'iotgw-hostile-');
  const devices = options.fleetDevices ?? 20;
  const seed = 4242;
  const passwordHash = await hashPassword(FLEET_PASSWORD, { ln: 10, r: 8, p: 1 });
  const mqttPort = await freePort();
  const udpPort = await freeUdpPort();
  const base: ConfigInput = {
    gateway_id: 'gw-hostile',
    mqtt: {
      host: '127.0.0.1',
      port: mqttPort,
      devices: createFleet({ devices, seed }).map((device) => ({ id: device.id, password_hash: passwordHash })),
    },
    http: { host: '127.0.0.1', port: 0 },
    kafka: { brokers: [...kafka.brokers], topic: TOPIC, retry_initial_ms: 100, retry_max_ms: 1000, request_timeout_ms: 5000, connection_timeout_ms: 1000 },
    buffer: { path: join(dir, 'buffer.db') },
    ...(options.lorawan === true ? { lorawan: { enabled: true, udp: { host: '127.0.0.1', port: udpPort } } } : {}),
  };
  const config = options.config?.(base) ?? base;
  const node = unitNode();
  const gateway = await startGatewayProcess(t, writeGatewayConfig(dir, config), { NODE_OPTIONS: node.options }, node.args);
  const pid = gateway.child.pid ?? 0;
  let peak = rssBytes(pid);
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssBytes(pid));
  }, 100);
  t.after(() => clearInterval(sampler));

  const stopFleet = new AbortController();
  const fleet = runMqttFleet({
    url: `mqtt://127.0.0.1:${mqttPort}`,
    devices,
    ratePerSecond: options.fleetRate ?? 200,
    durationMs: 0,
    qos: 1,
    seed,
    password: FLEET_PASSWORD,
    start: 'staggered',
    reconnectPeriodMs: 500,
    signal: stopFleet.signal,
  });
  t.after(() => stopFleet.abort());
  // The fleet is up before the attack starts, so the attack meets a working gateway.
  await waitFor(async () => (await gateway.metric('iotgw_ingress_accepted_total', ['source="mqtt"'])) >= devices, 'the fleet to be publishing', 30_000, 100);

  return {
    gateway,
    kafka,
    dir,
    mqttPort,
    udpPort,
    peakRssBytes: () => Math.max(peak, rssBytes(pid)),
    async finish() {
      const before = await gateway.metric('iotgw_ingress_accepted_total', ['source="mqtt"']);
      // Still served after the attack: the fleet's readings keep being accepted.
      await waitFor(
        async () => (await gateway.metric('iotgw_ingress_accepted_total', ['source="mqtt"'])) >= before + devices,
        'the fleet to be acknowledged after the attack',
        60_000,
        100,
      );
      await sleep(200);
      stopFleet.abort();
      const report = await fleet;
      clearInterval(sampler);
      const peakRssBytes = Math.max(peak, rssBytes(pid));
      assert.equal(report.failed, 0, `no device gave up: ${JSON.stringify(report.failures)}`);
      assert.ok(report.acked > devices, `the fleet was acknowledged throughout (${report.acked})`);
      await waitFor(async () => (await gateway.readiness()).buffer.depthRecords === 0, 'the buffer to drain', 60_000, 100);
      const messages = await readTopic(kafka.brokers, TOPIC, { until: allAckedRead(report), timeoutMs: 60_000 });
      const check = checkDelivery(report, messages);
      assert.deepEqual(check.missing.slice(0, 10), [], `${check.missing.length} acknowledged readings missing from Kafka`);
      assert.deepEqual(check.outOfOrder, [], 'per-device order');
      return { report, peakRssBytes };
    },
  };
}

/** Log lines of the gateway whose reason or message matches. */
export function logLinesMatching(gateway: GatewayProcess, test: (line: Record<string, unknown>) => boolean): Record<string, unknown>[] {
  return gateway.logs.filter(test);
}

export const MB = 1024 * 1024;
