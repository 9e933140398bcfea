// Runs the built gateway (`node dist/src/cli.js run`) as its own process, as a user or systemd would, so
// tests can SIGKILL it and restart it on the same buffer. The JSON log lines are parsed and kept.
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { stringify } from 'yaml';
import type { ConfigInput } from '../../src/config/schema.ts';

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));

export interface GatewayProcess {
  readonly mqttPort: number;
  readonly httpPort: number;
  readonly logs: Record<string, unknown>[];
  /** Resolves when a log line matching `test` appears (also if it already did). */
  waitForLog(test: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** GET /readyz as JSON. */
  readiness(): Promise<{ kafka: string; buffer: { depthRecords: number } }>;
  /** GET /metrics as text. */
  metricsText(): Promise<string>;
  /** The value of the first sample of `name` whose labels include every `labels` entry (e.g. 'source="ttn"'); 0 if none. */
  metric(name: string, labels?: readonly string[]): Promise<number>;
  kill(signal: NodeJS.Signals): Promise<number | null>;
  readonly child: ChildProcess;
}

/** A UDP port that was free a moment ago (so a restarted gateway listens where the forwarders send). */
export async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

/** A port that was free a moment ago (so a restarted gateway can take the same one). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export function writeGatewayConfig(dir: string, config: ConfigInput): string {
  const path = join(dir, 'iotgw.yaml');
  writeFileSync(path, stringify(config));
  return path;
}

/** Starts the gateway for a test; it is killed when the test ends. */
export async function startGatewayProcess(
  t: TestContext,
  configPath: string,
  env: NodeJS.ProcessEnv = {},
  nodeArgs: readonly string[] = [],
): Promise<GatewayProcess> {
  const gateway = await launchGateway(configPath, env, nodeArgs);
  t.after(() => gateway.kill('SIGKILL'));
  return gateway;
}

/**
 * Starts the gateway process and resolves once it logged that it started; the caller must kill it.
 * `nodeArgs` go before the script (flags NODE_OPTIONS does not allow, such as --cpu-prof).
 */
export async function launchGateway(configPath: string, env: NodeJS.ProcessEnv = {}, nodeArgs: readonly string[] = []): Promise<GatewayProcess> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npm run build' (npm test does it first)`);
  const child = spawn(process.execPath, [...nodeArgs, CLI, 'run', '--config', configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const logs: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  let stderr = '';
  let partial = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.trim() === '') continue;
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ msg: line });
      }
    }
    for (const wake of waiters) wake();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let done = false;
  void exited.then(() => {
    done = true;
    for (const wake of waiters) wake();
  });

  function waitForLog(test: (line: Record<string, unknown>) => boolean, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`no matching log line within ${timeoutMs} ms; stderr: ${stderr.slice(-2000)}`)), timeoutMs);
      const check = () => {
        const found = logs.find(test);
        if (found !== undefined) finish(null, found);
        else if (done) finish(new Error(`gateway exited before the log line appeared; stderr: ${stderr.slice(-2000)}`));
      };
      function finish(error: Error | null, line?: Record<string, unknown>): void {
        clearTimeout(timer);
        waiters.delete(check);
        if (error !== null) reject(error);
        else resolve(line as Record<string, unknown>);
      }
      waiters.add(check);
      check();
    });
  }

  try {
    await waitForLog((line) => line.msg === 'iotgw started');
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  const mqttLine = await waitForLog((line) => line.msg === 'MQTT broker listening');
  const httpLine = await waitForLog((line) => line.component === 'ops.http' && typeof line.address === 'string');
  const mqttPort = Number(String(mqttLine.tcp).split(':').at(-1));
  const httpPort = Number(String(httpLine.address).split(':').at(-1));

  const metricsText = async (): Promise<string> => (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();

  return {
    mqttPort,
    httpPort,
    logs,
    child,
    waitForLog,
    async readiness() {
      const response = await fetch(`http://127.0.0.1:${httpPort}/readyz`);
      return (await response.json()) as { kafka: string; buffer: { depthRecords: number } };
    },
    metricsText,
    async metric(name, labels = []) {
      const text = await metricsText();
      const line = text
        .split('\n')
        .find((candidate) => (candidate.startsWith(`${name}{`) || candidate.startsWith(`${name} `)) && labels.every((label) => candidate.includes(label)));
      return line === undefined ? 0 : Number(line.split(' ').at(-1));
    },
    async kill(signal) {
      if (done) return child.exitCode;
      child.kill(signal);
      return exited;
    },
  };
}
