// `npm run bench:profile [-- --seconds S --devices N --dir DIR]`: V8 CPU profiles of the gateway's threads
// (main and buffer) under the closed-loop MQTT load of the benchmark (every device keeps 8 readings in
// flight, Kafka delivering), then each profile's top entries by self time. Open the .cpuprofile files in
// Chrome DevTools (Performance) for the call trees.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { launchGateway, writeGatewayConfig } from '../helpers/gateway-process.ts';
import { startKafkaMock } from '../helpers/kafka-mock.ts';
import { runSim, say, unitNode } from './bench-tools.ts';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '20' },
    devices: { type: 'string', default: '1000' },
    dir: { type: 'string', default: join(tmpdir(), 'iotgw-profile') },
    top: { type: 'string', default: '25' },
  },
});

const TOPIC = 'bench.telemetry';
const dir = args.dir;
mkdirSync(dir, { recursive: true });
for (const file of readdirSync(dir)) if (file.endsWith('.cpuprofile')) rmSync(join(dir, file));
const work = mkdtempSync(join(tmpdir(), 'iotgw-profile-run-'));
const kafka = await startKafkaMock({ brokers: 3, topics: [{ name: TOPIC, partitions: 6 }] });
const configPath = writeGatewayConfig(work, {
  gateway_id: 'profile',
  log: { level: 'info' },
  mqtt: { host: '127.0.0.1', port: 0, allow_anonymous: true, max_connections_per_address: 100_000 },
  http: { port: 0 },
  kafka: { brokers: [...kafka.brokers], topic: TOPIC, routes: [{ stream: 'telemetry', event_time_field: 'ts' }] },
  buffer: { path: join(work, 'buffer.db') },
});
const node = unitNode();
const gateway = await launchGateway(configPath, { NODE_OPTIONS: node.options }, [...node.args, '--cpu-prof', `--cpu-prof-dir=${dir}`]);
try {
  const sim = await runSim({ port: gateway.mqttPort, devices: Number(args.devices), rate: 0, seconds: Number(args.seconds), seed: 1, inflight: 8 });
  say(`closed loop: ${sim.acked} readings acknowledged in ${(sim.activeMs / 1000).toFixed(1)} s (${Math.round(sim.ackedPerSecond)}/s)`);
} finally {
  await gateway.kill('SIGTERM');
  await kafka.stop();
  rmSync(work, { recursive: true, force: true });
}
for (const file of readdirSync(dir)
  .filter((name) => name.endsWith('.cpuprofile'))
  .sort()) {
  say('');
  say(`${join(dir, file)} (${file.includes('.0.') ? 'main thread' : 'buffer thread'})`);
  for (const line of topEntries(join(dir, file), Number(args.top))) say(`  ${line}`);
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}

/** Self time by function, largest first, as "share% function file:line". */
function topEntries(path: string, count: number): string[] {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, index) => {
    const frame = nodes.get(id)?.callFrame;
    const us = profile.timeDeltas[index] ?? 0;
    total += us;
    if (frame === undefined) return;
    const file = frame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(dist\/)?(src|firmware-sim)\//, '$2/');
    const key = `${frame.functionName || '(anonymous)'} ${file}${file === '' ? '' : `:${frame.lineNumber + 1}`}`;
    self.set(key, (self.get(key) ?? 0) + us);
  });
  const lines = [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([key, us]) => `${((100 * us) / total).toFixed(1).padStart(5)}%  ${key}`);
  return [`${(total / 1e6).toFixed(1)} s sampled`, ...lines];
}
