// The operator commands behind cli.ts: `device add`, `buffer stats`, `buffer export`, `status`. cli.ts parses
// argv and loads the config; these check the rest of the input, do the work and throw CommandError with a
// message for a person (exit 2 for bad input, 1 for a failure).
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { ConfigError } from '../../errors.ts';
import { createFormatterCache } from '../../codecs/javascript-formatter.ts';
import { hashPassword } from '../../ingress/mqtt-broker/password-hash.ts';
import { loadConfig } from '../../config/load.ts';
import type { Config } from '../../config/schema.ts';
import { createLogger } from '../../core/log.ts';
import { bufferExport, bufferStats } from './buffer-commands.ts';
import { CommandError } from './command-error.ts';
import {
  addLorawanDevice,
  type LorawanDeviceSettings,
  addMqttDevice,
  checkDeviceId,
  type LorawanCodec,
  type LorawanDeviceRequest,
  normalizeHex,
} from './device-add.ts';
import { cancelCommand, fetchCommands, formatCommands } from './commands-command.ts';
import { fetchStatus, formatStatus, readAuth, statusUrl } from './status-command.ts';

export interface Io {
  readonly stdout: Writable;
  readonly stderr: Writable;
  readonly readStdin: () => Promise<string>;
}

export interface DeviceAddInput {
  readonly configPath: string | undefined;
  readonly ids: readonly string[];
  readonly passwordStdin: boolean;
  readonly generatePassword: boolean;
  readonly lorawanAbp: boolean;
  readonly lorawanOtaa: boolean;
  readonly devEui: string | undefined;
  readonly devAddr: string | undefined;
  readonly nwkSKey: string | undefined;
  readonly appSKey: string | undefined;
  readonly joinEui: string | undefined;
  readonly appKey: string | undefined;
  readonly codec: string | undefined;
  /** --formatter-file, for --codec javascript. */
  readonly formatterFile: string | undefined;
  readonly name: string | undefined;
  /** LoRaWAN: --mac-version, --class, --no-adr, --resets-f-cnt (absent: the defaults). */
  readonly macVersion?: string | undefined;
  readonly deviceClass?: string | undefined;
  readonly noAdr?: boolean;
  readonly resetsFCnt?: boolean;
  /** log2 of scrypt N. */
  readonly cost: number;
}

export const CODECS: readonly LorawanCodec[] = ['raw', 'cayenne-lpp', 'javascript'];
/** How long a formatter's top-level code may run when device add compiles it to check it. */
const FORMATTER_CHECK_TIMEOUT_MS = 1_000;
const RESTART_HINT = 'apply it to the running gateway with sudo systemctl reload iotgw (no connection is dropped)';

export async function deviceAddCommand(input: DeviceAddInput, io: Io): Promise<void> {
  if (input.configPath === undefined) throw new CommandError('device add edits a config file: give --config FILE (or set IOTGW_CONFIG)', 2);
  if (input.lorawanAbp || input.lorawanOtaa) return lorawanDeviceAdd(input, io, input.configPath);

  const lorawanOnly = (['devEui', 'devAddr', 'nwkSKey', 'appSKey', 'joinEui', 'appKey', 'codec', 'formatterFile', 'macVersion', 'deviceClass'] as const).filter(
    (key) => input[key] !== undefined,
  );
  if (lorawanOnly.length > 0 || input.noAdr === true || input.resetsFCnt === true)
    throw new CommandError('LoRaWAN keys and settings need --lorawan-abp or --lorawan-otaa', 2);
  if (input.ids.length !== 1) throw new CommandError('device add takes one device id, e.g. iotgw device add em-000001 --generate-password --config FILE', 2);
  const id = input.ids[0] as string;
  checkDeviceId(id);
  if (input.passwordStdin && input.generatePassword) throw new CommandError('give --password-stdin or --generate-password, not both', 2);

  let password: string;
  if (input.passwordStdin) {
    password = await io.readStdin();
    if (password.length < 8) {
      throw new CommandError('password too short: use at least 8 characters (device secrets should be long and random, e.g. openssl rand -base64 24)', 2);
    }
  } else {
    password = randomBytes(24).toString('base64url');
  }
  addMqttDevice(input.configPath, id, await hashPassword(password, { ln: input.cost, r: 8, p: 1 }));
  io.stdout.write(`added MQTT device ${id} to ${input.configPath}\n`);
  if (!input.passwordStdin) io.stdout.write(`password (shown only this once; put it in the device now): ${password}\n`);
  io.stdout.write(`the device connects with username = client id = ${id} and publishes to devices/${id}/{stream}\n`);
  io.stdout.write(`${RESTART_HINT}\n`);
  const { host, port } = mqttListener(input.configPath);
  io.stdout.write(`then try it (on this machine; from elsewhere use the gateway's address after -h):\n`);
  const secret = input.passwordStdin ? '"$(cat the-password-file)"' : password;
  io.stdout.write(`  mosquitto_pub -h ${host} -p ${port} -V mqttv311 -q 1 -i ${id} -u ${id} -P ${secret} -t devices/${id}/telemetry -m '{"hello":"iotgw"}'\n`);
}

/** Where `mosquitto_pub` on this machine reaches the plain MQTT listener of the config just edited. */
function mqttListener(configPath: string): { host: string; port: number } {
  try {
    const { mqtt } = loadConfig({ path: configPath });
    const wildcard = mqtt.host === '0.0.0.0' || mqtt.host === '::';
    return { host: wildcard ? '127.0.0.1' : mqtt.host, port: mqtt.port };
  } catch {
    return { host: '127.0.0.1', port: 1883 }; // the config has other problems; config check names them
  }
}

function lorawanDeviceAdd(input: DeviceAddInput, io: Io, configPath: string): void {
  if (input.lorawanAbp && input.lorawanOtaa) throw new CommandError('give --lorawan-abp or --lorawan-otaa, not both', 2);
  if (input.ids.length > 0) throw new CommandError(`a LoRaWAN device is named by --dev-eui (and optionally --name), not '${input.ids.join(' ')}'`, 2);
  if (input.passwordStdin || input.generatePassword)
    throw new CommandError('LoRaWAN devices have keys, not passwords: drop --password-stdin/--generate-password', 2);
  const codec = (input.codec ?? 'raw') as LorawanCodec;
  if (!CODECS.includes(codec)) throw new CommandError(`--codec: expected ${CODECS.join(' or ')}, got '${input.codec}'`, 2);
  const formatter = checkedFormatterFile(codec, input.formatterFile);
  const devEui = normalizeHex('dev-eui', input.devEui, 16, 'DevEUI, 8 bytes');
  const name = input.name === undefined ? {} : { name: input.name };
  const settings = lorawanSettings(input);
  let request: LorawanDeviceRequest;
  if (input.lorawanAbp) {
    const misplaced = (['joinEui', 'appKey'] as const).filter((key) => input[key] !== undefined);
    if (misplaced.length > 0) throw new CommandError('--join-eui and --app-key are OTAA keys: use --lorawan-otaa, or drop them for ABP', 2);
    request = {
      activation: 'abp',
      devEui,
      devAddr: normalizeHex('dev-addr', input.devAddr, 8, 'DevAddr, 4 bytes'),
      nwkSKey: normalizeHex('nwk-s-key', input.nwkSKey, 32, 'NwkSKey, 16 bytes'),
      appSKey: normalizeHex('app-s-key', input.appSKey, 32, 'AppSKey, 16 bytes'),
      codec,
      ...formatter,
      ...name,
      settings,
    };
  } else {
    if (input.resetsFCnt === true) throw new CommandError('--resets-f-cnt is for ABP devices; an OTAA device that reboots joins again', 2);
    const misplaced = (['devAddr', 'nwkSKey', 'appSKey'] as const).filter((key) => input[key] !== undefined);
    if (misplaced.length > 0) throw new CommandError('--dev-addr, --nwk-s-key and --app-s-key are ABP keys: use --lorawan-abp, or drop them for OTAA', 2);
    request = {
      activation: 'otaa',
      devEui,
      joinEui: normalizeHex('join-eui', input.joinEui, 16, 'JoinEUI/AppEUI, 8 bytes'),
      appKey: normalizeHex('app-key', input.appKey, 32, 'AppKey, 16 bytes'),
      codec,
      ...formatter,
      ...name,
      settings,
    };
  }
  const written = addLorawanDevice(configPath, request);
  io.stdout.write(`added LoRaWAN ${request.activation.toUpperCase()} device ${devEui} to ${written}\n${RESTART_HINT}\n`);
}

const MAC_VERSIONS = ['1.0.2', '1.0.3', '1.0.4'] as const;

/** --mac-version, --class, --no-adr, --resets-f-cnt as lorawan.devices keys, checked. */
function lorawanSettings(input: DeviceAddInput): LorawanDeviceSettings {
  const version = input.macVersion;
  if (version !== undefined && !(MAC_VERSIONS as readonly string[]).includes(version)) {
    throw new CommandError(`--mac-version: expected ${MAC_VERSIONS.join(', ')} (LoRaWAN 1.1 is not supported), got '${version}'`, 2);
  }
  const deviceClass = input.deviceClass?.toUpperCase();
  if (deviceClass !== undefined && deviceClass !== 'A' && deviceClass !== 'C')
    throw new CommandError(`--class: expected A or C, got '${input.deviceClass}'`, 2);
  return {
    ...(version === undefined ? {} : { mac_version: version as (typeof MAC_VERSIONS)[number] }),
    ...(deviceClass === 'C' ? { class: 'C' as const } : {}),
    ...(input.noAdr === true ? { adr: false as const } : {}),
    ...(input.resetsFCnt === true ? { resets_f_cnt: true as const } : {}),
  };
}

/**
 * --formatter-file goes with --codec javascript only. The file is compiled now, so a typo or a broken file is
 * caught before the restart, and stored as an absolute path (unless it uses ${VAR}): the gateway resolves a
 * relative path from its own working directory, not from this shell's.
 */
export function checkedFormatterFile(codec: LorawanCodec, file: string | undefined): { readonly formatterFile?: string } {
  if (codec !== 'javascript') {
    if (file !== undefined) throw new CommandError(`--formatter-file goes with --codec javascript (this device has --codec ${codec})`, 2);
    return {};
  }
  if (file === undefined || file === '')
    throw new CommandError('--codec javascript needs --formatter-file PATH: the .js file that defines decodeUplink(input)', 2);
  const stored = file.includes('${') ? file : resolve(file);
  const cache = createFormatterCache(
    { timeoutMs: FORMATTER_CHECK_TIMEOUT_MS, maxOutputBytes: 1 },
    { log: createLogger({ level: 'silent', gatewayId: 'iotgw-device-add' }) },
  );
  try {
    cache.codecFor({ codec: 'javascript', formatterFile: stored });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    throw new CommandError(`--formatter-file ${error.message.replace(/^invalid configuration in formatter_file /, '')}`, 2);
  }
  return { formatterFile: stored };
}

export function bufferStatsCommand(config: Config, options: { readonly json: boolean }, io: Io): void {
  io.stdout.write(bufferStats(config.buffer.path, { maxRecords: config.buffer.max_records, maxBytes: config.buffer.max_bytes }, options));
}

export async function bufferExportCommand(config: Config, options: { readonly out: string | undefined; readonly deadLetters: boolean }, io: Io): Promise<void> {
  await bufferExport(config.buffer.path, { outPath: options.out ?? null, deadLetters: options.deadLetters, stdout: io.stdout, stderr: io.stderr });
}

export async function statusCommand(config: Config, options: { readonly url: string | undefined; readonly json: boolean }, io: Io): Promise<void> {
  const { http } = config;
  const url = options.url ?? statusUrl(http.host, http.port);
  const auth = readAuth(http.auth.username, http.auth.password_file);
  const result = await fetchStatus({ url, auth });
  io.stdout.write(options.json ? `${JSON.stringify(result)}\n` : formatStatus(result, url));
}

/** `iotgw commands list`: what waits in the running gateway for its devices. */
export async function commandsListCommand(
  config: Config,
  options: { readonly url: string | undefined; readonly json: boolean; readonly device: string | undefined },
  io: Io,
): Promise<void> {
  const { http } = config;
  const target = { url: options.url ?? statusUrl(http.host, http.port), auth: readAuth(http.auth.username, http.auth.password_file) };
  const commands = (await fetchCommands(target)).filter((command) => options.device === undefined || command.device_id === options.device);
  io.stdout.write(options.json ? `${JSON.stringify(commands)}\n` : formatCommands(commands, Date.now()));
}

/** `iotgw commands cancel ID...`: each gets a cancelled receipt; an unknown id is an error naming it. */
export async function commandsCancelCommand(config: Config, options: { readonly url: string | undefined }, ids: readonly string[], io: Io): Promise<void> {
  if (ids.length === 0) throw new CommandError('name the command id(s) to cancel: iotgw commands cancel ID [ID...] (see iotgw commands list)');
  const { http } = config;
  const target = { url: options.url ?? statusUrl(http.host, http.port), auth: readAuth(http.auth.username, http.auth.password_file) };
  for (const id of ids) io.stdout.write(await cancelCommand(target, id));
}
