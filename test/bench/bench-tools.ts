// Shared by the benchmark scenarios: firmware-sim runs, /proc readings, the gateway's metrics, percentiles.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { freePort } from '../helpers/gateway-process.ts';
import { fileURLToPath } from 'node:url';
import type { GatewayProcess } from '../helpers/gateway-process.ts';

import type { UnitNode } from '../helpers/unit-node.ts';

export { type UnitNode, unitNode } from '../helpers/unit-node.ts';

const SIM = fileURLToPath(new URL('../../dist/firmware-sim/cli.js', import.meta.url));
const AEDES_ALONE = fileURLToPath(new URL('./aedes-alone.mjs', import.meta.url));

export const say = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

export interface SimSummary {
  published: number;
  acked: number;
  failed: number;
  ackedPerSecond: number;
  activeMs: number;
  ackLatencyMs: { p50: number; p99: number; max: number };
}

export interface SimRun {
  readonly port: number;
  readonly devices: number;
  /** Readings per second for the whole fleet; 0 = as fast as PUBACKs allow (closed loop). */
  readonly rate: number;
  readonly seconds: number;
  readonly seed: number;
  /** Readings in flight per device (closed loop). */
  readonly inflight?: number;
}

/** firmware-sim mqtt in its own process (the load generator must not share the gateway's event loop). */
export function runSim(run: SimRun): Promise<SimSummary> {
  const child = spawn(
    process.execPath,
    [
      SIM,
      'mqtt',
      ...['--url', `mqtt://127.0.0.1:${run.port}`, '--devices', String(run.devices), '--rate', String(run.rate), '--duration', String(run.seconds)],
      ...['--seed', String(run.seed), '--inflight', String(run.inflight ?? 1), '--json', '--quiet'],
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString('utf8');
  });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => {
      try {
        resolve(JSON.parse(out) as SimSummary);
      } catch {
        reject(new Error(`firmware-sim exited ${code} without a JSON summary: ${out.slice(0, 500)}`));
      }
    });
  });
}

export /** VmHWM (peak) or VmRSS (now) of a process, in MB. */
function rssMb(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(status);
  return match === null ? Number.NaN : Math.round(Number(match[1]) / 1024);
}

/** A counter's value in the gateway's /metrics (summed over label sets that start with `name`). */
export async function metric(gateway: GatewayProcess, name: string): Promise<number> {
  const text = await gateway.metricsText();
  let total = 0;
  for (const line of text.split('\n'))
    if (line.startsWith(name) && (line[name.length] === ' ' || line[name.length] === '{' || name.endsWith(','))) total += Number(line.split(' ').at(-1));
  return total;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

/**
 * User + system CPU seconds used so far (fields 14 and 15 of /proc/.../stat, in Linux's 1/100 s): the whole
 * process, or with `mainThreadOnly` its main thread alone (the event loop, where the gateway's work happens).
 */
export function cpuSeconds(pid: number, mainThreadOnly = false): number {
  const stat = readFileSync(mainThreadOnly ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** aedes alone (aedes-alone.mjs: the broker the gateway embeds, no storage, no Kafka) in its own process. */
export async function startAedesAlone(node: UnitNode): Promise<{ readonly port: number; readonly pid: number; stop(): void }> {
  const port = await freePort();
  const child = spawn(process.execPath, [...node.args, AEDES_ALONE, String(port)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, NODE_OPTIONS: node.options },
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`aedes-alone exited ${code}`)));
  });
  return { port, pid: child.pid as number, stop: () => child.kill('SIGTERM') };
}
