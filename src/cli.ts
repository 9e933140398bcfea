#!/usr/bin/env node
// iotgw's command line: argv -> command. `run` starts the gateway; `config check|print` validate and show
// the effective configuration; `hash-password` makes the password hashes that mqtt.devices expects.
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { ConfigError, EXIT_CONFIG, errorMessage, needsOperator } from './errors.ts';
import { hashPassword } from './ingress/mqtt-broker/password-hash.ts';
import { createGateway } from './main.ts';
import { configAdvice } from './config/advice.ts';
import { startTimeIssues } from './config/start-checks.ts';
import { loadConfigIsolated } from './config/load-isolated.ts';
import type { Config } from './config/schema.ts';
import { CommandError } from './ops/commands/command-error.ts';
import { LORAWAN_SESSIONS_HELP, sessionsExportCommand, sessionsImportCommand } from './ops/commands/lorawan-sessions.ts';
import type { Io } from './ops/commands/ops-commands.ts';
import { createLogger, type Logger } from './core/log.ts';
import { packageVersion } from './ops/status.ts';
import { SHUTDOWN_DEADLINE_MS, createShutdown } from './ops/shutdown.ts';
import { createSystemdNotifier } from './ops/systemd.ts';
import { createConfigReload } from './ops/config-reload.ts';
import { DEFAULT_WATCHDOG_OPTIONS, createWatchdog, statusSummary } from './ops/watchdog.ts';

const USAGE = `iotgw - IoT edge gateway: MQTT devices -> durable SQLite buffer -> Kafka

Usage:
  iotgw run [--config FILE]            start the gateway (stops cleanly on SIGTERM/SIGINT; SIGHUP,
                                       i.e. systemctl reload iotgw, applies changed device lists)
  iotgw config check [--config FILE]   validate the configuration; print every problem with its key
  iotgw config print [--config FILE]   print the effective configuration (defaults + file + environment), secrets masked
  iotgw hash-password [--cost N]       read a password on stdin, print its hash for mqtt.devices[].password_hash
  iotgw device add ID [--generate-password | --password-stdin] [--cost N] --config FILE
                                       add an MQTT device (id + scrypt hash) to mqtt.devices; comments are kept.
                                       --generate-password (the default) prints a random password once
  iotgw device add --lorawan-abp --dev-eui HEX16 --dev-addr HEX8 --nwk-s-key HEX32 --app-s-key HEX32
                   [--codec raw|cayenne-lpp|javascript --formatter-file FILE.js] [--name ID] [--resets-f-cnt]
                   [--mac-version 1.0.2|1.0.3|1.0.4] [--class A|C] [--no-adr] --config FILE
  iotgw device add --lorawan-otaa --dev-eui HEX16 --join-eui HEX16 --app-key HEX32
                   [--codec raw|cayenne-lpp|javascript --formatter-file FILE.js] [--name ID]
                   [--mac-version 1.0.2|1.0.3|1.0.4] [--class A|C] [--no-adr] --config FILE
                                       add a LoRaWAN device to lorawan.devices (or to lorawan.devices_file if set);
                                       hex may contain : or - separators and is stored lower-case;
                                       --formatter-file (a TTN-style decodeUplink file) is compiled to check it
                                       and stored as an absolute path
  iotgw device import FILE [--format tts-json|chirpstack-csv|iotgw-yaml] [--codec C] [--dry-run] [--skip-invalid]
                   --config FILE       add the LoRaWAN devices of a The Things Stack JSON export, a ChirpStack CSV or
                                       an iotgw YAML list in one write; every row is checked first and each bad one
                                       named, then nothing is written (unless --skip-invalid). iotgw device import --help
  iotgw buffer stats [--json] [--config FILE]
                                       what waits for Kafka: depth, bytes, oldest/newest, dead letters, per
                                       source and stream, file size (read-only; safe while the gateway runs)
  iotgw buffer export [--out FILE] [--dead-letters] [--config FILE]
                                       buffered (or dead-lettered) records as JSON lines to stdout or a new FILE,
                                       for a manual replay; progress on stderr
  iotgw lorawan sessions export [--out FILE | --out -] [--key-file KEY] [--config FILE]
                                       the LoRaWAN sessions (OTAA keys, DevAddrs, frame counters, DevNonces) of the
                                       buffer as JSON, mode 0600, encrypted with --key-file (read-only; safe while
                                       the gateway runs)
  iotgw lorawan sessions import FILE [--key-file KEY] [--all] [--replace] [--dry-run] [--config FILE]
                                       put them into the buffer file (a new SD card, another gateway): devices
                                       continue without rejoining; the gateway must be stopped. iotgw lorawan sessions --help
  iotgw status [--url URL] [--json] [--config FILE]
                                       ask the running gateway: Kafka link, buffer depth and age, ingress rates,
                                       devices, recent rejections (URL and basic auth from the config's http section)
  iotgw commands list [--device ID] [--json] [--url URL] [--config FILE]
                                       commands waiting in the running gateway for their devices (commands.enabled)
  iotgw commands cancel ID [ID...] [--url URL] [--config FILE]
                                       drop waiting commands; each gets a cancelled receipt in Kafka
  iotgw --help | --version

Configuration:
  --config FILE, or the IOTGW_CONFIG environment variable. Without either, the built-in defaults are used
  (MQTT on 0.0.0.0:1883 refusing clients without an identity, Kafka at localhost:9092, buffer in
  ./data/buffer.db, or $STATE_DIRECTORY/buffer.db under systemd). \`npm start\` also allows anonymous clients.
  Every key is documented in config/iotgw.example.yaml. Any key can be overridden from the environment:
  IOTGW__SECTION__KEY=value, e.g. IOTGW__KAFKA__BROKERS=kafka-1:9092,kafka-2:9092 or IOTGW__MQTT__PORT=1884.

Examples:
  iotgw config check --config /etc/iotgw/iotgw.yaml
  iotgw device add em-000001 --generate-password --config /etc/iotgw/iotgw.yaml && systemctl reload iotgw
  openssl rand -base64 24 | tee em-2.secret | iotgw device add em-000002 --password-stdin --config /etc/iotgw/iotgw.yaml
  iotgw device add --lorawan-otaa --dev-eui 70B3D57ED0000001 --join-eui 0000000000000000 \\
      --app-key 2B7E151628AED2A6ABF7158809CF4F3C --codec cayenne-lpp --config /etc/iotgw/iotgw.yaml
  iotgw device import devices.json --dry-run --config /etc/iotgw/iotgw.yaml
  iotgw status --config /etc/iotgw/iotgw.yaml          (or open http://127.0.0.1:8080/ for the status page)
  iotgw buffer stats --config /etc/iotgw/iotgw.yaml
  iotgw buffer export --config /etc/iotgw/iotgw.yaml --out /root/backlog.jsonl
  iotgw buffer export --dead-letters --config /etc/iotgw/iotgw.yaml | jq -r .payload_utf8
  iotgw lorawan sessions export --out /root/sessions.json --config /etc/iotgw/iotgw.yaml

Ops endpoint (http.host:http.port, basic auth with http.auth):
  /  status page    /api/status  its JSON    /metrics  Prometheus    /healthz  alive    /readyz  ready, Kafka up|buffering
  /api/commands  waiting commands    POST /api/commands/{id}/cancel (header X-Iotgw-Request: cancel)

Exit codes:
  0 stopped cleanly / done, 1 runtime failure (e.g. gateway unreachable, buffer file missing), 2 usage error
  (bad id, bad hex key, duplicate device), 78 invalid configuration (systemd does not restart on it).

Docs: README.md (delivery guarantees, configuration reference, pointing devices at the gateway).`;

function usageError(message: string): never {
  process.stderr.write(`iotgw: ${message}\nRun 'iotgw --help' for usage.\n`);
  process.exit(2);
}

/**
 * The config, or exit 78 with its issues. `run` loads it in a worker thread (load-isolated.ts), so the long-lived
 * process never holds the schema; commands that run and exit load it here. The command modules are imported
 * when their command runs for the same reason: they use the schema.
 */
async function readConfig(path: string | undefined, isolated = false): Promise<Config> {
  try {
    const options = { path: path ?? process.env.IOTGW_CONFIG };
    if (isolated) return await loadConfigIsolated(options);
    const { loadConfig } = await import('./config/load.ts');
    return loadConfig(options);
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
  // The TTS API key, top level and per application.
  for (const ttn of [copy.ttn, ...copy.ttn.applications] as { password: string }[]) if (ttn.password !== '') ttn.password = '********';
  // LoRaWAN keys are secrets too: show that one is set, never its value.
  for (const device of copy.lorawan.devices as { nwk_s_key?: string; app_s_key?: string; app_key?: string }[]) {
    for (const name of ['nwk_s_key', 'app_s_key', 'app_key'] as const) if (device[name] !== undefined) device[name] = '********';
  }
  return copy;
}

/** A payload formatter that does not compile is a configuration error: exit 78, systemd does not restart on it. */
function createGatewayOrExit(config: Config, log: Logger): ReturnType<typeof createGateway> {
  try {
    return createGateway(config, { log });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    log.fatal({ err: error }, 'cannot start: invalid configuration');
    process.stderr.write(`iotgw: ${error.message}\n`);
    process.exit(EXIT_CONFIG);
  }
}

async function run(configPath: string | undefined): Promise<void> {
  const config = await readConfig(configPath, true);
  const log = createLogger({ level: config.log.level, gatewayId: config.gateway_id });
  if (configPath === undefined && process.env.IOTGW_CONFIG === undefined) {
    log.info('no --config given: using built-in defaults (see config/iotgw.example.yaml)');
  }
  for (const note of configAdvice(config)) log.warn({ config: 'advice' }, note);
  const gateway = createGatewayOrExit(config, log);

  // systemd (Type=notify): READY=1 after every listener is up, STATUS= and WATCHDOG=1 while healthy, STOPPING=1.
  const notifier = createSystemdNotifier({ log });
  const watchdog = createWatchdog(DEFAULT_WATCHDOG_OPTIONS, { notifier, readiness: () => gateway.readiness(), log });
  const shutdown = createShutdown(
    { deadlineMs: SHUTDOWN_DEADLINE_MS },
    {
      log,
      stop: () => gateway.stop(),
      onStopping: () => {
        watchdog.stop();
        notifier.stopping();
      },
      beforeExit: () => notifier.flush(1_000),
    },
  );
  process.on('SIGTERM', () => shutdown.signal('SIGTERM'));
  process.on('SIGINT', () => shutdown.signal('SIGINT'));
  // SIGHUP (systemctl reload iotgw) re-reads the device lists; one during start waits for the start.
  const configReload = createConfigReload(config, {
    log,
    metrics: gateway.metrics,
    notifier,
    readConfig: () => loadConfigIsolated({ path: configPath ?? process.env.IOTGW_CONFIG }),
    reloadDevices: (next) => gateway.reloadDevices(next),
    statusLine: () => statusSummary(gateway.readiness(), null),
  });
  let started = false;
  let reloadAfterStart = false;
  process.on('SIGHUP', () => {
    if (shutdown.stopping) return;
    if (started) void configReload.reload();
    else reloadAfterStart = true;
  });
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
    // A restart cannot fix these: exit 78 (the unit's RestartPreventExitStatus) and say so on stderr too.
    if (needsOperator(error)) {
      process.stderr.write(`iotgw: cannot start: ${errorMessage(error)}\n`);
      process.exit(EXIT_CONFIG);
    }
    process.exit(1);
  }
  if (shutdown.stopping) return;
  notifier.ready(statusSummary(gateway.readiness(), null));
  watchdog.start();
  started = true;
  if (reloadAfterStart) void configReload.reload();
}

/** Runs an operator command; its CommandError becomes `iotgw: message` and the exit code, without a stack trace. */
async function runCommand(command: () => void | Promise<void>): Promise<void> {
  try {
    await command();
  } catch (error) {
    if (!(error instanceof CommandError)) throw error;
    process.stderr.write(`iotgw: ${error.message}\n`);
    if (error.usage) process.stderr.write("Run 'iotgw --help' for usage.\n");
    process.exitCode = error.exitCode;
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

const OPTIONS = {
  config: { type: 'string', short: 'c' },
  cost: { type: 'string' },
  'password-stdin': { type: 'boolean' },
  'generate-password': { type: 'boolean' },
  'lorawan-abp': { type: 'boolean' },
  'lorawan-otaa': { type: 'boolean' },
  'dev-eui': { type: 'string' },
  'dev-addr': { type: 'string' },
  'nwk-s-key': { type: 'string' },
  'app-s-key': { type: 'string' },
  'join-eui': { type: 'string' },
  'app-key': { type: 'string' },
  codec: { type: 'string' },
  'formatter-file': { type: 'string' },
  name: { type: 'string' },
  'mac-version': { type: 'string' },
  class: { type: 'string' },
  'no-adr': { type: 'boolean' },
  'resets-f-cnt': { type: 'boolean' },
  format: { type: 'string' },
  'dry-run': { type: 'boolean' },
  'key-file': { type: 'string' },
  all: { type: 'boolean' },
  replace: { type: 'boolean' },
  'skip-invalid': { type: 'boolean' },
  json: { type: 'boolean' },
  out: { type: 'string', short: 'o' },
  'dead-letters': { type: 'boolean' },
  url: { type: 'string' },
  device: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

type CommandLine = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
type OptionValues = CommandLine['values'];

/** --cost: log2 of scrypt N for the password hashes (exit 2 when out of range). */
function scryptCost(cost: string | undefined): number {
  const ln = cost === undefined ? 14 : Number(cost);
  if (!Number.isInteger(ln) || ln < 10 || ln > 20) usageError('--cost takes a whole number from 10 to 20 (log2 of scrypt N; default 14)');
  return ln;
}

function deviceAdd(values: OptionValues, ids: readonly string[], io: Io): Promise<void> {
  const cost = scryptCost(values.cost);
  return runCommand(async () =>
    (await import('./ops/commands/ops-commands.ts')).deviceAddCommand(
      {
        configPath: values.config ?? process.env.IOTGW_CONFIG,
        ids,
        passwordStdin: values['password-stdin'] === true,
        generatePassword: values['generate-password'] === true,
        lorawanAbp: values['lorawan-abp'] === true,
        lorawanOtaa: values['lorawan-otaa'] === true,
        devEui: values['dev-eui'],
        devAddr: values['dev-addr'],
        nwkSKey: values['nwk-s-key'],
        appSKey: values['app-s-key'],
        joinEui: values['join-eui'],
        appKey: values['app-key'],
        codec: values.codec,
        formatterFile: values['formatter-file'],
        name: values.name,
        macVersion: values['mac-version'],
        deviceClass: values.class,
        noAdr: values['no-adr'] === true,
        resetsFCnt: values['resets-f-cnt'] === true,
        cost,
      },
      io,
    ),
  );
}

function deviceImport(values: OptionValues, files: readonly string[], io: Io): Promise<void> {
  return runCommand(async () =>
    (await import('./ops/commands/device-import.ts')).deviceImportCommand(
      {
        configPath: values.config ?? process.env.IOTGW_CONFIG,
        files,
        format: values.format,
        codec: values.codec,
        formatterFile: values['formatter-file'],
        dryRun: values['dry-run'] === true,
        skipInvalid: values['skip-invalid'] === true,
      },
      io,
    ),
  );
}

function lorawanSessionsImport(values: OptionValues, files: readonly string[], io: Io): Promise<void> {
  return runCommand(async () =>
    sessionsImportCommand(
      await readConfig(values.config),
      { files, keyFile: values['key-file'], all: values.all === true, replace: values.replace === true, dryRun: values['dry-run'] === true },
      io,
    ),
  );
}

/** ', LoRaWAN US915 sub-band 2 on UDP 0.0.0.0:1700, 12 devices' when LoRaWAN is on. */
function lorawanSummary(config: Config): string {
  const { lorawan } = config;
  if (!lorawan.enabled) return '';
  const subBand = lorawan.region === 'US915' || lorawan.region === 'AU915' ? ` sub-band ${lorawan.sub_band}` : '';
  return `, LoRaWAN ${lorawan.region}${subBand} on UDP ${lorawan.udp.host}:${lorawan.udp.port}, ${lorawan.devices.length} devices`;
}

async function configCheck(configPath: string | undefined): Promise<void> {
  const config = await readConfig(configPath);
  const source = configPath ?? process.env.IOTGW_CONFIG ?? 'built-in defaults';
  const issues = startTimeIssues(config, createLogger({ level: 'silent', gatewayId: config.gateway_id }));
  if (issues.length > 0) {
    process.stderr.write(`iotgw: ${new ConfigError(source, issues).message}\n`);
    process.exit(EXIT_CONFIG);
  }
  process.stdout.write(
    `configuration OK (${source}): gateway ${config.gateway_id}, MQTT ${config.mqtt.host}:${config.mqtt.port}${lorawanSummary(config)}, Kafka ${config.kafka.brokers.join(',')} -> ${config.kafka.topic}, buffer ${config.buffer.path}\n`,
  );
  for (const note of configAdvice(config)) process.stdout.write(`note: ${note}\n`);
}

async function hashPasswordFromStdin(cost: string | undefined): Promise<void> {
  const ln = scryptCost(cost);
  const password = await readStdin();
  if (password.length < 8) {
    process.stderr.write('iotgw: password too short: use at least 8 characters (device secrets should be long and random, e.g. openssl rand -base64 24)\n');
    process.exit(2);
  }
  process.stdout.write(`${await hashPassword(password, { ln, r: 8, p: 1 })}\n`);
}

export async function main(argv: readonly string[]): Promise<void> {
  let parsed: CommandLine;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    usageError(errorMessage(error));
  }
  const { values, positionals } = parsed;
  if (values.version === true) {
    process.stdout.write(`${packageVersion()}\n`);
    return;
  }
  const isDeviceImport = positionals[0] === 'device' && positionals[1] === 'import';
  if (values.help === true && isDeviceImport) {
    process.stdout.write(`${(await import('./ops/commands/device-import.ts')).DEVICE_IMPORT_HELP}\n`);
    return;
  }
  const isLorawanSessions = positionals[0] === 'lorawan' && positionals[1] === 'sessions';
  if (isLorawanSessions && (values.help === true || positionals.length === 2)) {
    process.stdout.write(`${LORAWAN_SESSIONS_HELP}\n`);
    return;
  }
  if (values.help === true || positionals.length === 0) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const io: Io = { stdout: process.stdout, stderr: process.stderr, readStdin };
  if (positionals[0] === 'device' && positionals[1] === 'add') return deviceAdd(values, positionals.slice(2), io);
  if (isDeviceImport) return deviceImport(values, positionals.slice(2), io);
  if (isLorawanSessions && positionals[2] === 'import') return lorawanSessionsImport(values, positionals.slice(3), io);
  const ops = () => import('./ops/commands/ops-commands.ts');
  if (positionals[0] === 'commands' && positionals[1] === 'cancel') {
    return runCommand(async () => (await ops()).commandsCancelCommand(await readConfig(values.config), { url: values.url }, positionals.slice(2), io));
  }
  const command = positionals.join(' ');
  switch (command) {
    case 'buffer stats':
      return runCommand(async () => (await ops()).bufferStatsCommand(await readConfig(values.config), { json: values.json === true }, io));
    case 'lorawan sessions export':
      return runCommand(async () =>
        sessionsExportCommand(
          await readConfig(values.config),
          { out: values.out, keyFile: values['key-file'], stdoutIsTerminal: process.stdout.isTTY === true },
          io,
        ),
      );
    case 'buffer export':
      return runCommand(async () =>
        (await ops()).bufferExportCommand(await readConfig(values.config), { out: values.out, deadLetters: values['dead-letters'] === true }, io),
      );
    case 'status':
      return runCommand(async () => (await ops()).statusCommand(await readConfig(values.config), { url: values.url, json: values.json === true }, io));
    case 'commands list':
      return runCommand(async () =>
        (await ops()).commandsListCommand(await readConfig(values.config), { url: values.url, json: values.json === true, device: values.device }, io),
      );
    case 'run':
      return run(values.config);
    case 'config check':
      return configCheck(values.config);
    case 'config print':
      process.stdout.write(stringify(maskSecrets(await readConfig(values.config))));
      return;
    case 'hash-password':
      return hashPasswordFromStdin(values.cost);
    default:
      usageError(`unknown command '${command}'`);
  }
}

// `iotgw ... | head`: a reader that closes the pipe early is not an error of ours.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

await main(process.argv.slice(2));
