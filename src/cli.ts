#!/usr/bin/env node
// iotgw's command line: argv -> command. `run` starts the gateway; `config check|print` validate and show
// the effective configuration; `hash-password` makes the password hashes that mqtt.devices expects.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { ConfigError, EXIT_CONFIG, errorMessage } from './errors.ts';
import { hashPassword } from './ingress/mqtt-broker/password-hash.ts';
import { createGateway } from './main.ts';
import { loadConfig } from './ops/config/load.ts';
import type { Config } from './ops/config/schema.ts';
import { createLogger } from './ops/log.ts';

const USAGE = `iotgw - IoT edge gateway: MQTT devices -> durable SQLite buffer -> Kafka

Usage:
  iotgw run [--config FILE]            start the gateway (stops cleanly on SIGTERM/SIGINT)
  iotgw config check [--config FILE]   validate the configuration; print every problem with its key
  iotgw config print [--config FILE]   print the effective configuration (defaults + file + environment), secrets masked
  iotgw hash-password [--cost N]       read a password on stdin, print its hash for mqtt.devices[].password_hash
  iotgw --help | --version

Configuration:
  --config FILE, or the IOTGW_CONFIG environment variable. Without either, the built-in defaults are used
  (MQTT on 0.0.0.0:1883 with anonymous access, Kafka at localhost:9092, buffer in ./data/buffer.db).
  Every key is documented in config/iotgw.example.yaml. Any key can be overridden from the environment:
  IOTGW__SECTION__KEY=value, e.g. IOTGW__KAFKA__BROKERS=kafka-1:9092,kafka-2:9092 or IOTGW__MQTT__PORT=1884.

Exit codes:
  0 stopped cleanly, 1 runtime failure, 2 usage error, 78 invalid configuration (systemd does not restart on it).

Docs: README.md (delivery guarantees, configuration reference, pointing devices at the gateway).`;

function usageError(message: string): never {
  process.stderr.write(`iotgw: ${message}\nRun 'iotgw --help' for usage.\n`);
  process.exit(2);
}

function readConfig(path: string | undefined): Config {
  try {
    return loadConfig({ path: path ?? process.env.IOTGW_CONFIG });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`iotgw: ${error.message}\n`);
      process.exit(EXIT_CONFIG);
    }
    throw error;
  }
}

function maskSecrets(config: Config): unknown {
  const copy = structuredClone(config) as Config & { kafka: { sasl: { password: string } } };
  if (copy.kafka.sasl.password !== '') copy.kafka.sasl.password = '********';
  return copy;
}

async function run(configPath: string | undefined): Promise<void> {
  const config = readConfig(configPath);
  const log = createLogger({ level: config.log.level, gatewayId: config.gateway_id });
  if (configPath === undefined && process.env.IOTGW_CONFIG === undefined) {
    log.info('no --config given: using built-in defaults (see config/iotgw.example.yaml)');
  }
  const gateway = createGateway(config, { log });

  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) {
      // Committed records are safe in SQLite; a second signal only skips the wait for the batch in flight.
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting down: no new records, finishing commits and the batch in flight');
    gateway.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  // A bug must not leave a half-working gateway: log it, exit non-zero, let systemd restart it. SQLite holds the data.
  process.on('uncaughtException', (error) => {
    log.fatal({ err: error }, 'uncaught exception; exiting');
    process.exit(1);
  });
  process.on('unhandledRejection', (error) => {
    log.fatal({ err: error }, 'unhandled promise rejection; exiting');
    process.exit(1);
  });

  try {
    await gateway.start();
  } catch (error) {
    log.fatal({ err: error }, `cannot start: ${errorMessage(error)}`);
    await gateway.stop().catch(() => undefined);
    process.exit(1);
  }
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write('password: ');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

export async function main(argv: readonly string[]): Promise<void> {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
  const OPTIONS = {
    config: { type: 'string', short: 'c' },
    cost: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean', short: 'v' },
  } as const;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    usageError(errorMessage(error));
  }
  const { values, positionals } = parsed;
  if (values.help === true || positionals.length === 0) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (values.version === true) {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    process.stdout.write(`${pkg.version}\n`);
    return;
  }
  const command = positionals.join(' ');
  switch (command) {
    case 'run':
      return run(values.config);
    case 'config check': {
      const config = readConfig(values.config);
      process.stdout.write(
        `configuration OK (${values.config ?? process.env.IOTGW_CONFIG ?? 'built-in defaults'}): gateway ${config.gateway_id}, MQTT ${config.mqtt.host}:${config.mqtt.port}, Kafka ${config.kafka.brokers.join(',')} -> ${config.kafka.topic}, buffer ${config.buffer.path}\n`,
      );
      return;
    }
    case 'config print':
      process.stdout.write(stringify(maskSecrets(readConfig(values.config))));
      return;
    case 'hash-password': {
      const ln = values.cost === undefined ? 14 : Number(values.cost);
      if (!Number.isInteger(ln) || ln < 10 || ln > 20) usageError('--cost takes a whole number from 10 to 20 (log2 of scrypt N; default 14)');
      const password = await readStdin();
      if (password.length < 8) {
        process.stderr.write('iotgw: password too short: use at least 8 characters (device secrets should be long and random, e.g. openssl rand -base64 24)\n');
        process.exit(2);
      }
      process.stdout.write(`${await hashPassword(password, { ln, r: 8, p: 1 })}\n`);
      return;
    }
    default:
      usageError(`unknown command '${command}'`);
  }
}

await main(process.argv.slice(2));
