// Scenario 9: memory for a large, mostly idle fleet: 10,000 MQTT devices connected at once (one connection
// each, keepalive 30 s), publishing 100 readings/s between them, with the systemd unit's node flags. Peak and
// settled RSS of the gateway process, per connected device.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchGateway, writeGatewayConfig } from '../helpers/gateway-process.ts';
import { startKafkaMock } from '../helpers/kafka-mock.ts';
import { rssMb, runSim, say, type UnitNode } from './bench-tools.ts';

const TOPIC = 'bench.idle';

export async function benchIdleFleet(devices: number, seconds: number, node: UnitNode): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'iotgw-bench-idle-'));
  const kafka = await startKafkaMock({ brokers: 1, topics: [{ name: TOPIC, partitions: 3 }] });
  const configPath = writeGatewayConfig(dir, {
    gateway_id: 'bench-idle',
    log: { level: 'info' },
    mqtt: { host: '127.0.0.1', port: 0, allow_anonymous: true, max_connections_per_address: 100_000, max_connections: devices + 1000 },
    http: { port: 0 },
    kafka: { brokers: [...kafka.brokers], topic: TOPIC },
    buffer: { path: join(dir, 'buffer.db') },
  });
  const gateway = await launchGateway(configPath, { NODE_OPTIONS: node.options }, node.args);
  const pid = gateway.child.pid as number;
  try {
    const baseline = rssMb(pid, 'VmRSS');
    const run = await runSim({ port: gateway.mqttPort, devices, rate: 100, seconds, seed: 9 });
    const settled = rssMb(pid, 'VmRSS');
    const peak = rssMb(pid, 'VmHWM');
    say('');
    say(`9. memory with ${devices.toLocaleString('en-US')} MQTT devices connected, mostly idle (100 readings/s between them, ${seconds} s)`);
    say(`   connected: ${run.failed === 0 ? devices : devices - run.failed} (${run.acked} readings acknowledged, ${run.failed} devices failed)`);
    say(
      `   gateway RSS: ${baseline} MB before, ${settled} MB with the fleet connected, peak ${peak} MB: about ${(((settled - baseline) * 1024) / devices).toFixed(1)} KB per connected device`,
    );
  } finally {
    await gateway.kill('SIGTERM');
    await kafka.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
