// Scenario 10: memory of the gateway against aedes alone (aedes-alone.ts: the broker it embeds, no storage,
// no Kafka) under the same load, each a fresh process with the systemd unit's node flags: 1,000 devices at
// 2,500 msg/s. Peak RSS of each, and the ratio.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchGateway, writeGatewayConfig } from '../helpers/gateway-process.ts';
import { startKafkaMock } from '../helpers/kafka-mock.ts';
import { rssMb, runSim, say, startAedesAlone, type UnitNode } from './bench-tools.ts';

const TOPIC = 'bench.memory';

export async function benchMemoryVsAedes(devices: number, seconds: number, node: UnitNode): Promise<void> {
  const aedesPeak = await aedesAlonePeakMb(devices, seconds, node);
  const gatewayPeak = await gatewayPeakMb(devices, seconds, node);
  say('');
  say(`10. peak RSS at ${devices.toLocaleString('en-US')} devices and 2,500 msg/s for ${seconds} s, fresh processes, the unit's node flags`);
  say(`   gateway ${gatewayPeak} MB, aedes alone ${aedesPeak} MB: ${(gatewayPeak / aedesPeak).toFixed(2)}x`);
}

async function aedesAlonePeakMb(devices: number, seconds: number, node: UnitNode): Promise<number> {
  const aedes = await startAedesAlone(node);
  try {
    await runSim({ port: aedes.port, devices, rate: 2500, seconds, seed: 10 });
    return rssMb(aedes.pid, 'VmHWM');
  } finally {
    aedes.stop();
  }
}

async function gatewayPeakMb(devices: number, seconds: number, node: UnitNode): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'iotgw-bench-memory-'));
  const kafka = await startKafkaMock({ brokers: 1, topics: [{ name: TOPIC, partitions: 3 }] });
  const configPath = writeGatewayConfig(dir, {
    gateway_id: 'bench-memory',
    log: { level: 'info' },
    mqtt: { host: '127.0.0.1', port: 0, allow_anonymous: true, max_connections_per_address: 100_000 },
    http: { port: 0 },
    kafka: { brokers: [...kafka.brokers], topic: TOPIC },
    buffer: { path: join(dir, 'buffer.db') },
  });
  const gateway = await launchGateway(configPath, { NODE_OPTIONS: node.options }, node.args);
  try {
    await runSim({ port: gateway.mqttPort, devices, rate: 2500, seconds, seed: 10 });
    return rssMb(gateway.child.pid as number, 'VmHWM');
  } finally {
    await gateway.kill('SIGTERM');
    await kafka.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
