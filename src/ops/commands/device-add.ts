// `iotgw device add`: adds an MQTT device (id + scrypt hash) or a LoRaWAN device (ABP or OTAA keys) to the
// YAML config, keeping its comments and layout (yaml's Document API edits the parsed tree, not the text).
// Validates before writing, refuses duplicates, and replaces the file atomically with its owner and mode.
// `device import` appends its devices through the same target (openLorawanTarget), in one write.
import { chownSync, existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { Document, isMap, isSeq, parseDocument, type YAMLSeq } from 'yaml';
import { errorMessage } from '../../errors.ts';
import { expandVariables } from '../../config/environment.ts';
import { deviceId } from '../../config/schema.ts';
import { CommandError } from './command-error.ts';

export type LorawanCodec = 'raw' | 'cayenne-lpp' | 'javascript';

/** Per-device LoRaWAN settings beside the keys, written only when given (the defaults need no key). */
export interface LorawanDeviceSettings {
  readonly mac_version?: '1.0.2' | '1.0.3' | '1.0.4';
  readonly class?: 'A' | 'C';
  readonly adr?: false;
  readonly resets_f_cnt?: true;
}

export type LorawanDeviceRequest = (
  | {
      readonly activation: 'abp';
      readonly devEui: string;
      readonly devAddr: string;
      readonly nwkSKey: string;
      readonly appSKey: string;
      readonly codec: LorawanCodec;
      /** codec javascript: the formatter file, as it is to be written. */
      readonly formatterFile?: string;
      readonly name?: string;
    }
  | {
      readonly activation: 'otaa';
      readonly devEui: string;
      readonly joinEui: string;
      readonly appKey: string;
      readonly codec: LorawanCodec;
      readonly formatterFile?: string;
      readonly name?: string;
    }
) & { readonly settings?: LorawanDeviceSettings };

/** Throws a CommandError (exit 2) naming the id's problem. */
export function checkDeviceId(id: string): void {
  const result = deviceId.safeParse(id);
  if (!result.success) throw new CommandError(`invalid device id '${id}': ${result.error.issues[0]?.message ?? 'not allowed'}`, 2);
}

/** `70-B3-D5-7E-D0-00-00-01`, `70:b3:...` or `70B3D5...` -> 16 lower-case hex digits; CommandError otherwise. */
export function normalizeHex(option: string, value: string | undefined, digits: number, what: string): string {
  if (value === undefined || value === '') throw new CommandError(`--${option} is required (${what}, ${digits} hex digits)`, 2);
  const compact = value.replace(/[\s:-]/g, '');
  if (!new RegExp(`^[0-9A-Fa-f]{${digits}}$`).test(compact)) {
    throw new CommandError(`--${option}: expected ${digits} hex digits (${what}), got '${value}' (${compact.length} characters)`, 2);
  }
  return compact.toLowerCase();
}

/** Adds `{ id, password_hash }` under mqtt.devices. */
export function addMqttDevice(configPath: string, id: string, passwordHash: string): void {
  checkDeviceId(id);
  const document = readYamlDocument(configPath, 'config');
  const root = document.contents;
  if (root !== null && !isMap(root)) throw new CommandError(`${configPath}: the file must hold a YAML mapping of sections`);
  for (const [list, key] of [
    ['devices', 'id'],
    ['clients', 'username'],
  ] as const) {
    const existing = document.getIn(['mqtt', list]);
    if (existing !== undefined && existing !== null && !isSeq(existing)) throw new CommandError(`${configPath}: mqtt.${list} must be a list`);
    for (const entry of existing?.items ?? []) {
      if (isMap(entry) && entry.get(key) === id) {
        throw new CommandError(
          list === 'devices'
            ? `device '${id}' is already in mqtt.devices of ${configPath}; remove it there first to replace its password`
            : `'${id}' is already an account in mqtt.clients of ${configPath}; device ids and account names must differ`,
          2,
        );
      }
    }
  }
  appendToList(document, ['mqtt', 'devices'], [{ id, password_hash: passwordHash }]);
  writeDocument(configPath, document);
}

/** A device entry as written to lorawan.devices: the config schema's snake_case keys and their values. */
export type DeviceEntry = Readonly<Record<string, string | number | boolean | Readonly<Record<string, number>>>>;

/** Where LoRaWAN devices are added: the file lorawan.devices_file names when set, else lorawan.devices of the config. */
export interface LorawanTarget {
  /** The file that is written. */
  readonly path: string;
  /** The devices already configured: each list's YAML items, with the words that name the list in messages. */
  readonly lists: readonly { readonly where: string; readonly items: readonly unknown[] }[];
  /** Whether the config has lorawan.enabled: true (devices added while it is off are ignored). */
  readonly lorawanEnabled: boolean;
  /** lorawan.region of the config (EU868 when unset). */
  readonly region: string;
  /** lorawan.sub_band of the config (2 when unset; US915/AU915 only). */
  readonly subBand: number;
  /** Appends the entries to the target list and replaces its file atomically (one write for any number). */
  appendAndWrite(entries: readonly DeviceEntry[]): void;
}

export function openLorawanTarget(configPath: string, env: NodeJS.ProcessEnv = process.env): LorawanTarget {
  const config = readYamlDocument(configPath, 'config');
  const devicesFileNode = config.getIn(['lorawan', 'devices_file']);
  const devicesFile = typeof devicesFileNode === 'string' && devicesFileNode !== '' ? expandVariables(devicesFileNode, env) : null;
  const inline = config.getIn(['lorawan', 'devices']);
  const fileDocument = devicesFile === null ? null : existsSync(devicesFile) ? readYamlDocument(devicesFile, 'lorawan.devices_file') : new Document([]);
  const fileList = fileDocument?.contents ?? null;
  if (fileDocument !== null && fileList !== null && !isSeq(fileList)) {
    throw new CommandError(`lorawan.devices_file ${devicesFile}: must hold a YAML list of devices (- dev_eui: ...)`);
  }
  const lists: { where: string; items: readonly unknown[] }[] = [];
  for (const [where, list] of [
    [`lorawan.devices of ${configPath}`, inline],
    [`lorawan.devices_file ${devicesFile}`, fileList],
  ] as const) {
    if (list === undefined || list === null) continue;
    if (!isSeq(list)) throw new CommandError(`${where} must be a list`);
    lists.push({ where, items: list.items });
  }
  return {
    path: devicesFile ?? configPath,
    lists,
    lorawanEnabled: config.getIn(['lorawan', 'enabled']) === true,
    region: String(config.getIn(['lorawan', 'region']) ?? 'EU868'),
    subBand: Number(config.getIn(['lorawan', 'sub_band']) ?? 2),
    appendAndWrite(entries) {
      if (fileDocument !== null && devicesFile !== null) {
        appendToList(fileDocument, [], entries);
        writeDocument(devicesFile, fileDocument, configPath);
        return;
      }
      appendToList(config, ['lorawan', 'devices'], entries);
      writeDocument(configPath, config);
    },
  };
}

/** A string field of a configured entry (a YAML map), lower-cased; null when the entry has none. */
export function entryHex(item: unknown, key: string): string | null {
  const value = isMap(item) ? item.get(key) : undefined;
  return typeof value === 'string' ? value.toLowerCase() : null;
}

/**
 * Adds a LoRaWAN device under lorawan.devices, or to the file lorawan.devices_file names (a YAML list).
 * Returns the file written.
 */
export function addLorawanDevice(configPath: string, device: LorawanDeviceRequest, env: NodeJS.ProcessEnv = process.env): string {
  if (device.name !== undefined) checkDeviceId(device.name);
  const target = openLorawanTarget(configPath, env);
  for (const { where, items } of target.lists) {
    for (const item of items) {
      if (entryHex(item, 'dev_eui') === device.devEui) {
        throw new CommandError(`a device with dev_eui ${device.devEui} is already in ${where}; remove it there first to change its keys`, 2);
      }
    }
  }
  const entry: Record<string, string | boolean> = { dev_eui: device.devEui };
  if (device.name !== undefined) entry.name = device.name;
  if (device.activation === 'abp') Object.assign(entry, { dev_addr: device.devAddr, nwk_s_key: device.nwkSKey, app_s_key: device.appSKey });
  else Object.assign(entry, { join_eui: device.joinEui, app_key: device.appKey });
  entry.codec = device.codec;
  if (device.formatterFile !== undefined) entry.formatter_file = device.formatterFile;
  Object.assign(entry, device.settings ?? {});
  target.appendAndWrite([entry]);
  return target.path;
}

function readYamlDocument(path: string, what: string): Document {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new CommandError(`cannot read the ${what} file ${path}: ${errorMessage(error)}`);
  }
  const document = parseDocument(text, { uniqueKeys: true });
  if (document.errors.length > 0) throw new CommandError(`${path}: YAML syntax: ${document.errors[0]?.message.split('\n')[0]}`);
  return document;
}

/** Appends to the sequence at `path` (created if missing); an empty flow list `[]` becomes a block list. */
function appendToList(document: Document, path: readonly string[], items: readonly DeviceEntry[]): void {
  const node = path.length === 0 ? document.contents : document.getIn(path, true);
  if (node === undefined || node === null) {
    if (path.length === 0) document.contents = document.createNode(items);
    else document.setIn(path, document.createNode(items));
    return;
  }
  if (!isSeq(node)) throw new CommandError(`${path.join('.') || 'the file'} must be a list`);
  const list = node as YAMLSeq;
  if (list.items.length === 0) list.flow = false;
  for (const item of items) list.add(document.createNode(item));
}

/** Write a sibling temp file, then rename over the original: a crash leaves the old file or the new one. */
/**
 * Replaces `path` atomically, keeping its owner and mode. A file that does not exist yet (a new
 * lorawan.devices_file) takes them from `like`, the config that names it: made by root with root's group, the
 * service (group iotgw) could not read it and would stop at its next start.
 */
function writeDocument(path: string, document: Document, like?: string): void {
  const text = document.toString({ flowCollectionPadding: false, lineWidth: 0 });
  const temp = `${path}.iotgw-tmp-${process.pid}`;
  try {
    const previous = existsSync(path) ? statSync(path) : like !== undefined && existsSync(like) ? statSync(like) : null;
    writeFileSync(temp, text, { mode: previous === null ? 0o640 : previous.mode & 0o777 });
    if (previous !== null && process.getuid?.() === 0) chownSync(temp, previous.uid, previous.gid);
    renameSync(temp, path);
  } catch (error) {
    const denied = (error as { code?: unknown }).code === 'EACCES' ? ' (run it with sudo, as the owner of the config)' : '';
    throw new CommandError(`cannot write ${path}: ${errorMessage(error).replaceAll(temp, path)}${denied}`);
  }
}
