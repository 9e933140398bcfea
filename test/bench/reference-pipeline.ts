// The benchmark's yardstick: a non-durable shell pipeline a user could set up in five minutes, measured in the
// same run as the gateway so every figure can be printed as a ratio (absolute figures swing 2x between runs
// and machines here). mosquitto acknowledges QoS 1 at once from memory; `mosquitto_sub -v 'devices/#' | kcat -P`
// carries each message to Kafka keyed by its topic, with acks=all (librdkafka, its default linger).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../helpers/gateway-process.ts';

export interface ReferencePipeline {
  readonly mqttPort: number;
  /** CPU seconds (user + system) of mosquitto, mosquitto_sub and kcat together since they started. */
  cpuSeconds(): number;
  /** Resident memory of the three processes together now (VmRSS) and their summed peaks (VmHWM), MB. */
  rssMb(): { readonly now: number; readonly peak: number };
  stop(): Promise<void>;
}

const TOOLS = ['mosquitto', 'mosquitto_sub', 'kcat'] as const;

/** Which of the reference pipeline's programs this machine lacks (`apt-get install mosquitto mosquitto-clients kcat`). */
export function missingReferenceTools(): string[] {
  return TOOLS.filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
}

export async function startReferencePipeline(brokers: readonly string[], topic: string): Promise<ReferencePipeline> {
  const dir = mkdtempSync(join(tmpdir(), 'iotgw-reference-'));
  const mqttPort = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  // No persistence, no queue limit for the one subscriber (by default mosquitto drops past 1,000 queued QoS 1
  // messages, which would flatter the pipeline's delivery figures).
  writeFileSync(
    conf,
    [
      `listener ${mqttPort} 127.0.0.1`,
      'allow_anonymous true',
      'persistence false',
      'max_queued_messages 0',
      'max_inflight_messages 0',
      'log_type none',
      '',
    ].join('\n'),
  );
  const broker = spawn('mosquitto', ['-c', conf], { stdio: 'ignore' });
  await waitForPort(mqttPort);
  const sub = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(mqttPort), '-q', '1', '-v', '-t', 'devices/#', '-i', 'reference-bridge'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const kcat = spawn('kcat', ['-P', '-b', brokers.join(','), '-t', topic, '-K', ' ', '-X', 'acks=all'], { stdio: ['pipe', 'ignore', 'ignore'] });
  sub.stdout?.pipe(kcat.stdin as NodeJS.WritableStream);
  // Let the subscription be in place before any device publishes.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const children = [broker, sub, kcat];
  return {
    mqttPort,
    cpuSeconds: () => children.reduce((sum, child) => sum + processCpuSeconds(child), 0),
    rssMb() {
      let now = 0;
      let peak = 0;
      for (const child of children) {
        now += statusMb(child, 'VmRSS');
        peak += statusMb(child, 'VmHWM');
      }
      return { now, peak };
    },
    async stop() {
      // mosquitto_sub first so kcat flushes what it holds when its input closes.
      await stopChild(broker, 'SIGTERM');
      await stopChild(sub, 'SIGTERM');
      await stopChild(kcat, 'SIGTERM', 10_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** utime + stime of a process (all its threads), in seconds. */
export function processCpuSeconds(child: ChildProcess | number): number {
  const pid = typeof child === 'number' ? child : child.pid;
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
  } catch {
    return 0;
  }
}

function statusMb(child: ChildProcess, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
    const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(status);
    return match === null ? 0 : Number(match[1]) / 1024;
  } catch {
    return 0;
  }
}

/** Resolves once something listens on 127.0.0.1:`port` (mosquitto, started by a test or bench), else throws after ~5 s. */
export async function waitForPort(port: number): Promise<void> {
  const { connect } = await import('node:net');
  for (let attempt = 0; attempt < 100; attempt++) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`mosquitto did not listen on ${port}`);
}

function stopChild(child: ChildProcess, signal: NodeJS.Signals, graceMs = 3_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
  });
}
