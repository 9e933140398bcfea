// Loads the configuration once at start: YAML file -> IOTGW__SECTION__KEY environment overlay ->
// *_file secrets -> schema validation -> a frozen Config. Every problem is reported with its key,
// as a ConfigError (the CLI prints it and exits 78), never as a stack trace.
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError, errorMessage } from '../errors.ts';
import { deepFreeze, expandVariables, stateDirectory } from './environment.ts';
import { type Config, configSchema } from './schema.ts';

export { expandVariables, stateDirectory } from './environment.ts';

export interface LoadConfigOptions {
  /** YAML file; undefined means built-in defaults plus the environment. */
  readonly path?: string | undefined;
  /** Environment to overlay (IOTGW__*) and expand ${VAR} in file paths; defaults to process.env. */
  readonly env?: NodeJS.ProcessEnv;
}

const ENV_PREFIX = 'IOTGW__';
/** What a record adds to its payload in Kafka: key, headers (record-id, gateway-id, times, stream, meta) and framing. */
const RECORD_OVERHEAD_BYTES = 4096;

export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  const source = options.path ?? 'built-in defaults';
  const raw = options.path === undefined ? {} : readYamlFile(options.path);
  const overlaid = overlayEnvironment(raw, env);
  defaultToStateDirectory(overlaid, env);
  const issues: string[] = [];
  resolveSecretFiles(overlaid, env, issues);
  const devicesFile = mergeLorawanDevicesFile(overlaid, env, issues);
  if (issues.length > 0) throw new ConfigError(source, issues);

  const parsed = configSchema.safeParse(overlaid);
  if (!parsed.success)
    throw new ConfigError(
      source,
      parsed.error.issues.map((issue) => describeIssue(issue, devicesFile)),
    );
  resolvePaths(parsed.data, env);
  const crossFieldIssues = [...checkCrossField(parsed.data), ...checkServicePaths(parsed.data, env)];
  if (crossFieldIssues.length > 0) throw new ConfigError(source, crossFieldIssues);
  resolveTtnPasswordFiles(parsed.data, env, issues);
  if (issues.length > 0) throw new ConfigError(source, issues);
  return deepFreeze(parsed.data);
}

/**
 * Expands ${VAR} in every key that names a file (systemd's ${CREDENTIALS_DIRECTORY}, ${STATE_DIRECTORY}) and
 * makes formatter files absolute (relative to the working directory), once: components get finished paths.
 */
function resolvePaths(config: Config, env: NodeJS.ProcessEnv): void {
  const expand = (text: string): string => expandVariables(text, env);
  const formatter = (file: string | undefined): string | undefined => (file === undefined || file === '' ? file : resolve(expand(file)));
  const { mqtt, kafka, http, ttn, lorawan, serial, buffer } = config as Mutable<Config>;
  buffer.path = expand(buffer.path);
  for (const tls of [mqtt.tls, kafka.tls] as Record<string, unknown>[]) {
    for (const key of ['cert_file', 'key_file', 'ca_file', 'crl_file']) if (typeof tls[key] === 'string') tls[key] = expand(tls[key] as string);
  }
  kafka.sasl.password_file = expand(kafka.sasl.password_file);
  http.auth.password_file = expand(http.auth.password_file);
  ttn.ca_file = expand(ttn.ca_file);
  for (const application of [ttn, ...ttn.applications] as { password_file: string; formatter_file: string }[]) {
    application.password_file = expand(application.password_file);
    application.formatter_file = formatter(application.formatter_file) ?? '';
  }
  lorawan.devices_file = expand(lorawan.devices_file);
  for (const device of lorawan.devices as { formatter_file?: string }[]) {
    const file = formatter(device.formatter_file);
    if (file !== undefined) device.formatter_file = file;
  }
  serial.path = expand(serial.path);
  serial.raw.formatter_file = formatter(serial.raw.formatter_file) ?? '';
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] extends object ? Mutable<T[K]> : T[K] };

function readYamlFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(path, [`cannot read the file: ${errorMessage(error)}`]);
  }
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true, stringKeys: true });
  if (document.errors.length > 0) {
    throw new ConfigError(
      path,
      document.errors.map((error) => `YAML syntax: ${yamlErrorText(error, text)}`),
    );
  }
  let value: unknown;
  try {
    // Aliases are resolved here (an undefined one throws), with a cap on how far they may expand.
    value = document.toJS({ maxAliasCount: 100 });
  } catch (error) {
    throw new ConfigError(path, [`YAML: ${errorMessage(error).split('\n')[0]}`]);
  }
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(path, ['the file must contain a YAML mapping of sections (gateway_id, mqtt, kafka, buffer, http)']);
  }
  return value as Record<string, unknown>;
}

/** IOTGW__KAFKA__BROKERS=a:9092,b:9092 sets kafka.brokers; the schema coerces strings to numbers, flags and lists. */
function overlayEnvironment(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const result = structuredClone(raw);
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || value === undefined) continue;
    const path = name.slice(ENV_PREFIX.length).toLowerCase().split('__');
    let node: Record<string, unknown> = result;
    for (const key of path.slice(0, -1)) {
      const next = node[key];
      if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
      node = node[key] as Record<string, unknown>;
    }
    node[path.at(-1) as string] = value;
  }
  return result;
}

/** Under systemd the buffer lives in the state directory unless the file says otherwise. */
function defaultToStateDirectory(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): void {
  const directory = stateDirectory(env);
  if (directory === null) return;
  const buffer = raw.buffer;
  if (buffer !== undefined && (typeof buffer !== 'object' || buffer === null || Array.isArray(buffer))) return; // the schema reports it
  const section = (buffer ?? {}) as Record<string, unknown>;
  if (section.path !== undefined) return;
  raw.buffer = { ...section, path: `${directory}/buffer.db` };
}

/**
 * Under the systemd unit (STATE_DIRECTORY set) a relative buffer.path resolves under WorkingDirectory
 * (/opt/iotgw), which ProtectSystem=strict makes read-only: the service could never open its buffer.
 */
function checkServicePaths(config: Config, env: NodeJS.ProcessEnv): string[] {
  const directory = stateDirectory(env);
  if (directory === null || isAbsolute(config.buffer.path)) return [];
  return [
    `buffer.path: "${config.buffer.path}" is relative, so the service would put it under its working directory (/opt/iotgw), which it may not write (ProtectSystem=strict). Remove the key to use ${directory}/buffer.db, or give an absolute path under ${directory}`,
  ];
}

/** `password_file: ${CREDENTIALS_DIRECTORY}/kafka` fills `password` from the file (systemd LoadCredential=). */
function resolveSecretFiles(raw: Record<string, unknown>, env: NodeJS.ProcessEnv, issues: string[]): void {
  const sasl = (raw.kafka as Record<string, unknown> | undefined)?.sasl as Record<string, unknown> | undefined;
  if (sasl === undefined || typeof sasl.password_file !== 'string' || sasl.password_file === '') return;
  const password = readSecretFile('kafka.sasl.password_file', sasl.password_file, env, issues);
  if (password !== null) sasl.password = password;
}

/**
 * ttn.password_file and ttn.applications[].password_file (the TTS API keys) fill `password`, when ttn is enabled:
 * after validation, so a disabled section may keep a path that does not exist on this machine.
 */
function resolveTtnPasswordFiles(config: Config, env: NodeJS.ProcessEnv, issues: string[]): void {
  if (!config.ttn.enabled) return;
  const entries = [
    { key: 'ttn', entry: config.ttn },
    ...config.ttn.applications.map((application, index) => ({ key: `ttn.applications.${index}`, entry: application })),
  ];
  for (const { key, entry } of entries) {
    if (entry.password_file === '') continue;
    const password = readSecretFile(`${key}.password_file`, entry.password_file, env, issues);
    if (password === '') issues.push(`${key}.password_file: ${expandVariables(entry.password_file, env)} is empty; it must hold the TTS API key (NNSXS....)`);
    else if (password !== null) entry.password = password;
  }
}

/** The file's text without its final newline; null (and an issue naming `key`) when it cannot be read. */
function readSecretFile(key: string, file: string, env: NodeJS.ProcessEnv, issues: string[]): string | null {
  const path = expandVariables(file, env);
  try {
    return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  } catch (error) {
    issues.push(`${key}: cannot read ${path}: ${errorMessage(error)}`);
    return null;
  }
}

/** Where the devices of lorawan.devices_file start in the merged list, so problems name the file. */
interface DevicesFileSpan {
  readonly path: string;
  readonly firstIndex: number;
}

/** The yaml library's first message line, without its trailing colon, with the offending line quoted. */
function yamlErrorText(error: { message: string; linePos?: readonly { line: number; col: number }[] }, text: string): string {
  const first = (error.message.split('\n')[0] ?? '').replace(/:\s*$/, '');
  const line = error.linePos?.[0]?.line;
  const source = line === undefined ? undefined : text.split('\n')[line - 1]?.trim();
  return source === undefined || source === '' ? first : `${first}: "${source.slice(0, 80)}"`;
}

/** `lorawan.devices_file` holds a YAML list of devices; they are appended to lorawan.devices. */
function mergeLorawanDevicesFile(raw: Record<string, unknown>, env: NodeJS.ProcessEnv, issues: string[]): DevicesFileSpan | null {
  if (typeof raw.lorawan !== 'object' || raw.lorawan === null || Array.isArray(raw.lorawan)) return null; // the schema reports it
  const lorawan = raw.lorawan as Record<string, unknown>;
  if (typeof lorawan.devices_file !== 'string' || lorawan.devices_file === '') return null;
  const path = expandVariables(lorawan.devices_file, env);
  let listed: unknown;
  try {
    const document = parseDocument(readFileSync(path, 'utf8'), { uniqueKeys: true, stringKeys: true });
    if (document.errors.length > 0) {
      issues.push(`lorawan.devices_file: ${path}: YAML syntax: ${document.errors[0]?.message.split('\n')[0]}`);
      return null;
    }
    listed = document.toJS({ maxAliasCount: 100 }) ?? [];
  } catch (error) {
    issues.push(`lorawan.devices_file: cannot read ${path}: ${errorMessage(error)}`);
    return null;
  }
  if (!Array.isArray(listed)) {
    issues.push(`lorawan.devices_file: ${path} must hold a YAML list of devices (- dev_eui: ...), like lorawan.devices`);
    return null;
  }
  const inline = Array.isArray(lorawan.devices) ? (lorawan.devices as unknown[]) : [];
  lorawan.devices = [...inline, ...listed];
  return { path, firstIndex: inline.length };
}

function describeIssue(issue: z.core.$ZodIssue, devicesFile: DevicesFileSpan | null = null): string {
  let key = issue.path.map(String).join('.');
  const [section, list, index, ...rest] = issue.path;
  if (devicesFile !== null && section === 'lorawan' && list === 'devices' && typeof index === 'number' && index >= devicesFile.firstIndex) {
    key = [`${devicesFile.path}[${index - devicesFile.firstIndex}]`, ...rest.map(String)].join('.');
  }
  if (issue.code === 'unrecognized_keys') {
    const prefix = key === '' ? '' : `${key}.`;
    return issue.keys.map((unknown) => `${prefix}${unknown}: unknown key (check the spelling against config/iotgw.example.yaml)`).join('\n  - ');
  }
  return `${key || '(top level)'}: ${issue.message}`;
}

function checkCrossField(config: Config): string[] {
  const issues: string[] = [];
  const { tls, devices, clients } = config.mqtt;
  if ((tls.cert_file === '') !== (tls.key_file === '')) {
    issues.push('mqtt.tls: set both cert_file and key_file to start the TLS listener, or neither');
  }
  if (tls.require_client_cert && tls.ca_file === '') {
    issues.push('mqtt.tls.require_client_cert: needs mqtt.tls.ca_file, the CA that signs device certificates');
  }
  const seen = new Set<string>();
  for (const [index, device] of devices.entries()) {
    if (seen.has(device.id)) issues.push(`mqtt.devices.${index}.id: device "${device.id}" is listed twice`);
    seen.add(device.id);
  }
  for (const [index, client] of clients.entries()) {
    if (seen.has(client.username)) issues.push(`mqtt.clients.${index}.username: "${client.username}" is already a device or client`);
    seen.add(client.username);
  }
  const { sasl, tls: kafkaTls } = config.kafka;
  if (sasl.mechanism !== 'none' && sasl.username === '') issues.push(`kafka.sasl.username: required for ${sasl.mechanism}`);
  if (sasl.mechanism === 'plain' && !kafkaTls.enabled) {
    issues.push('kafka.sasl.mechanism: plain sends the password in clear text; set kafka.tls.enabled: true');
  }
  if ((kafkaTls.cert_file === '') !== (kafkaTls.key_file === '')) {
    issues.push('kafka.tls: set both cert_file and key_file for mutual TLS, or neither');
  }
  const devEuis = new Set<string>();
  for (const [index, device] of config.lorawan.devices.entries()) {
    if (devEuis.has(device.dev_eui)) issues.push(`lorawan.devices.${index}.dev_eui: ${device.dev_eui} is listed twice`);
    devEuis.add(device.dev_eui);
  }
  // A record Kafka refuses for good is dead-lettered after the device was told it was stored: refuse limits
  // that let such records in. Headers (record-id, gateway-id, times, stream, meta) take up to a few KiB.
  const largestMqttRecord = config.mqtt.max_payload_bytes + RECORD_OVERHEAD_BYTES;
  if (largestMqttRecord > config.kafka.max_message_bytes) {
    issues.push(
      `mqtt.max_payload_bytes: ${config.mqtt.max_payload_bytes} bytes plus up to ${RECORD_OVERHEAD_BYTES} of headers exceeds kafka.max_message_bytes (${config.kafka.max_message_bytes}): Kafka would refuse such records after devices were told they were stored; lower mqtt.max_payload_bytes, or raise kafka.max_message_bytes together with the cluster's message.max.bytes`,
    );
  }
  const largestTtnRecord = config.ttn.max_message_bytes + config.formatters.max_output_bytes + RECORD_OVERHEAD_BYTES;
  if (config.ttn.enabled && largestTtnRecord > config.kafka.max_message_bytes) {
    issues.push(
      `ttn.max_message_bytes: ${config.ttn.max_message_bytes} bytes plus a decoded payload (formatters.max_output_bytes ${config.formatters.max_output_bytes}) and headers exceeds kafka.max_message_bytes (${config.kafka.max_message_bytes}); lower ttn.max_message_bytes or raise kafka.max_message_bytes`,
    );
  }
  const gatewayEuis = new Set<string>();
  for (const [index, gateway] of config.lorawan.gateways.entries()) {
    if (gatewayEuis.has(gateway.eui)) issues.push(`lorawan.gateways.${index}.eui: ${gateway.eui} is listed twice`);
    gatewayEuis.add(gateway.eui);
  }
  if (config.kafka.retry_max_ms < config.kafka.retry_initial_ms) {
    issues.push('kafka.retry_max_ms: must be at least kafka.retry_initial_ms');
  }
  if (config.serial.enabled && config.serial.frames !== 'raw' && !config.lorawan.enabled) {
    issues.push(
      `serial.frames: ${config.serial.frames} hands frames to the LoRaWAN server, which is off; set lorawan.enabled: true (with lorawan.devices), or serial.frames: raw`,
    );
  }
  return issues;
}
