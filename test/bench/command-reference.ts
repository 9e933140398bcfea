// The yardstick for command latency (scenario 11): a naive Kafka -> MQTT bridge made of Debian tools, the kind a
// user could put together in five minutes. Not durable, no receipts, no per-device order across restarts:
//
//   kcat -C -o end -u -f '%k %s\n' | mawk -W interactive '... print | "mosquitto_pub -l -q 1 -t devices/" key "/commands/x"'
//
// kcat prints each command as "key value" the moment it has it (-u: unbuffered); mawk reads line by line
// (-W interactive) and keeps one `mosquitto_pub -l` per device key open (awk keeps a `print | cmd` pipe open
// for as long as the same command string is used), so every command goes out on a standing MQTT connection,
// at QoS 1, to devices/{key}/commands/x on a mosquitto broker the devices are connected to. mosquitto_pub -l
// takes a topic only on its command line, hence the one process per device. Keys that could break out of the
// shell command are dropped (the bridge builds a command line from data read from Kafka).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../helpers/gateway-process.ts';
import { waitForPort } from './reference-pipeline.ts';

const TOOLS = ['mosquitto', 'mosquitto_pub', 'kcat', 'mawk'] as const;

/** Which of the bridge's programs this machine lacks (`apt-get install mosquitto mosquitto-clients kcat mawk`). */
export function missingCommandBridgeTools(): string[] {
  return TOOLS.filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
}

/** A mosquitto broker for the devices, on a free loopback port; no persistence, as the bridge has none. */
export interface ReferenceBroker {
  readonly mqttPort: number;
  stop(): Promise<void>;
}

export async function startReferenceBroker(): Promise<ReferenceBroker> {
  const dir = mkdtempSync(join(tmpdir(), 'iotgw-command-reference-'));
  const mqttPort = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, [`listener ${mqttPort} 127.0.0.1`, 'allow_anonymous true', 'persistence false', 'log_type none', ''].join('\n'));
  const broker = spawn('mosquitto', ['-c', conf], { stdio: 'ignore' });
  await waitForPort(mqttPort);
  return {
    mqttPort,
    async stop() {
      await stopChild(broker, false);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface CommandBridgeOptions {
  readonly brokers: readonly string[];
  readonly topic: string;
  readonly mqttPort: number;
  /** librdkafka's fetch.wait.max.ms for kcat (its default is 500). */
  readonly fetchWaitMs: number;
  /** Each command goes to `${before}${key}${after}`: devices/{key}/commands/x by default. */
  readonly mqttTopic?: { readonly before: string; readonly after: string };
  /** MQTT credentials of mosquitto_pub; letters, digits, . _ @ - only (they go on its command line). */
  readonly credentials?: { readonly username: string; readonly password: string };
  /** Default 1. */
  readonly qos?: 0 | 1;
}

export interface CommandBridge {
  /** The shell pipeline as run, for the printout. */
  readonly pipeline: string;
  stop(): Promise<void>;
}

/** Starts the pipeline in its own process group (so stop() ends kcat, mawk and every mosquitto_pub together). */
export function startCommandBridge(options: CommandBridgeOptions): CommandBridge {
  const { before, after } = options.mqttTopic ?? { before: 'devices/', after: '/commands/x' };
  const { credentials } = options;
  for (const word of [before, after, credentials?.username ?? '', credentials?.password ?? '']) {
    if (!/^[A-Za-z0-9_.@/-]*$/.test(word)) throw new Error(`startCommandBridge: ${JSON.stringify(word)} cannot go on a shell command line unquoted`);
  }
  const login = credentials === undefined ? '' : ` -u ${credentials.username} -P ${credentials.password}`;
  const kcat = `kcat -C -q -u -b ${options.brokers.join(',')} -t ${options.topic} -o end -X fetch.wait.max.ms=${options.fetchWaitMs} -f '%k %s\\n'`;
  const publisher = `"exec mosquitto_pub -h 127.0.0.1 -p ${options.mqttPort}${login} -q ${options.qos ?? 1} -l -t ${before}" key "${after}"`;
  const awk = `mawk -W interactive '$1 ~ /^[A-Za-z0-9_.-]+$/ { key = $1; sub(/^[^ ]+ /, ""); cmd = ${publisher}; print | cmd; fflush(cmd) }'`;
  const pipeline = `${kcat} | ${awk}`;
  const child = spawn('sh', ['-c', pipeline], { stdio: 'ignore', detached: true });
  return { pipeline, stop: () => stopChild(child, true) };
}

/** SIGTERM (to the process group when `group`), SIGKILL after 3 s. */
function stopChild(child: ChildProcess, group: boolean): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return Promise.resolve();
  const pid = child.pid;
  const signal = (name: NodeJS.Signals): void => {
    try {
      process.kill(group ? -pid : pid, name);
    } catch {
      // Gone already.
    }
  };
  return new Promise((resolve) => {
    const timer = setTimeout(() => signal('SIGKILL'), 3_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    signal('SIGTERM');
  });
}
