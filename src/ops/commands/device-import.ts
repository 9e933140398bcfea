// `iotgw device import FILE`: adds the LoRaWAN devices of an export (The Things Stack JSON, a ChirpStack CSV, or
// iotgw's own YAML list), thousands in one call. Every row is checked first: its fields (by the format's reader),
// the config schema (the loader's own, so what is written loads), and duplicates within the file and with the
// devices already configured, each through a Map (no pairwise scan). Only when every row is good, or with
// --skip-invalid, are the devices appended to the target of `device add` in one atomic write. Keys are never printed.
import { readFileSync, statSync } from 'node:fs';
import { extname } from 'node:path';
import { errorMessage } from '../../errors.ts';
import { lorawan } from '../../config/schema-ingress.ts';
import { CommandError, inputError } from './command-error.ts';
import { type DeviceEntry, entryHex, type LorawanCodec, type LorawanTarget, openLorawanTarget } from './device-add.ts';
import { readChirpstackDevices } from './import-chirpstack.ts';
import type { ImportRow } from './import-rows.ts';
import { readTtsDevices } from './import-tts.ts';
import { readYamlDevices } from './import-yaml.ts';
import { CODECS, checkedFormatterFile, type Io } from './ops-commands.ts';

export const IMPORT_FORMATS = ['tts-json', 'chirpstack-csv', 'iotgw-yaml'] as const;
type ImportFormat = (typeof IMPORT_FORMATS)[number];

/** What a reader checks rows against: the config's region. */
export interface ImportContext {
  readonly region: string;
  /** lorawan.sub_band (US915/AU915). */
  readonly subBand: number;
}

const READERS: Readonly<Record<ImportFormat, (text: string, file: string, context: ImportContext) => ImportRow[]>> = {
  'tts-json': readTtsDevices,
  'chirpstack-csv': readChirpstackDevices,
  'iotgw-yaml': readYamlDevices,
};

/** Larger exports are split and imported in parts (a string this size is already near what V8 allows). */
const MAX_IMPORT_BYTES = 256 * 1024 * 1024;
/** The schema of one lorawan.devices entry, as the config loader applies it. */
const DEVICE_SCHEMA = lorawan.unwrap().shape.devices.unwrap().element;
const LORAWAN_OFF_HINT =
  'note: lorawan.enabled is not true in this config: LoRaWAN devices are ignored until you set it (and lorawan.udp for the packet forwarders)';
const RESTART_HINT = 'apply them to the running gateway with sudo systemctl reload iotgw (no connection is dropped)';

export const DEVICE_IMPORT_HELP = `iotgw device import FILE [--format F] [--codec C [--formatter-file FILE.js]] [--dry-run] [--skip-invalid] --config FILE

Adds the LoRaWAN devices listed in FILE to lorawan.devices (or to lorawan.devices_file when the config sets one),
in one atomic write that keeps comments, owner and mode. Every row is checked first; each bad one is named
(FILE:LINE, its DevEUI, the field, what to do) and then nothing is written, unless --skip-invalid is given.

Formats (chosen by extension, .json/.csv/.yaml, or by content; --format forces one):
  tts-json        The Things Stack v3: \`ttn-lw-cli end-devices get APP_ID DEVICE_ID --all\` output, one object per
                  device (a JSON array or objects one after another). \`end-devices list\` exports hold no keys.
  chirpstack-csv  ChirpStack v4 fields as CSV columns: dev_eui, name, join_eui, nwk_key (the AppKey of LoRaWAN
                  1.0.x), app_key, dev_addr, app_s_key, nwk_s_enc_key, f_cnt_up, skip_fcnt_check, class.
  iotgw-yaml      a list shaped like lorawan.devices (another gateway's lorawan.devices_file, or its config).

Options:
  --codec raw|cayenne-lpp|javascript   codec of the imported devices (default raw; an iotgw-yaml entry keeps its own)
  --formatter-file FILE.js             with --codec javascript: the decodeUplink(input) file for all of them
  --dry-run                            check everything and list what would be added; write nothing
  --skip-invalid                       add the valid devices even when some are refused (they are still listed)

Refused: missing or wrapped keys, bad hex, OTAA without a JoinEUI, a DevEUI listed twice or already configured,
an ABP DevAddr with the same NwkSKey as another device, LoRaWAN 1.1, a frequency plan of another region than lorawan.region, malformed rows.
Exit codes: 0 added (or would be, with --dry-run), 2 bad input (nothing written), 1 the config cannot be written.
Apply them to the running gateway afterwards with sudo systemctl reload iotgw.`;

export interface DeviceImportInput {
  readonly configPath: string | undefined;
  readonly files: readonly string[];
  readonly format: string | undefined;
  readonly codec: string | undefined;
  readonly formatterFile: string | undefined;
  readonly dryRun: boolean;
  readonly skipInvalid: boolean;
}

interface Checked {
  readonly accepted: DeviceEntry[];
  readonly refused: ImportRow[];
}

export function deviceImportCommand(input: DeviceImportInput, io: Io, env: NodeJS.ProcessEnv = process.env): void {
  if (input.configPath === undefined) throw new CommandError('device import edits a config file: give --config FILE (or set IOTGW_CONFIG)', 2);
  const [file, ...extra] = input.files;
  if (file === undefined || extra.length > 0) throw new CommandError('device import takes one file: iotgw device import FILE --config FILE', 2);
  const codec = (input.codec ?? 'raw') as LorawanCodec;
  if (!CODECS.includes(codec)) throw new CommandError(`--codec: expected ${CODECS.join(' or ')}, got '${input.codec}'`, 2);
  const { formatterFile } = checkedFormatterFile(codec, input.formatterFile);
  const text = readImportFile(file);
  const format = importFormat(file, text, input.format);
  const target = openLorawanTarget(input.configPath, env);
  const rows = READERS[format](text, file, { region: target.region, subBand: target.subBand });
  if (rows.length === 0) throw inputError(`${file}: no devices in the file (read as ${format})`);
  const defaults: DeviceEntry = formatterFile === undefined ? { codec } : { codec, formatter_file: formatterFile };
  const checked = checkRows(rows, target, defaults);
  report(checked, { file, format, total: rows.length, target, dryRun: input.dryRun, skipInvalid: input.skipInvalid }, io);
}

function readImportFile(file: string): string {
  try {
    const { size } = statSync(file);
    if (size > MAX_IMPORT_BYTES) {
      throw inputError(`${file}: ${size} bytes is more than device import reads at once (${MAX_IMPORT_BYTES}); split the file and import the parts`);
    }
    return readFileSync(file, 'utf8');
  } catch (error) {
    if (error instanceof CommandError) throw error;
    throw inputError(`cannot read ${file}: ${errorMessage(error)}`);
  }
}

function importFormat(file: string, text: string, forced: string | undefined): ImportFormat {
  if (forced !== undefined) {
    const format = IMPORT_FORMATS.find((name) => name === forced);
    if (format === undefined) throw new CommandError(`--format: expected ${IMPORT_FORMATS.join(', ')}, got '${forced}'`, 2);
    return format;
  }
  const extension = extname(file).toLowerCase();
  if (['.json', '.jsonl', '.ndjson'].includes(extension)) return 'tts-json';
  if (extension === '.csv') return 'chirpstack-csv';
  if (extension === '.yaml' || extension === '.yml') return 'iotgw-yaml';
  const start = text.replace(/^\uFEFF/, '').trimStart();
  const firstLine = start.split('\n', 1)[0] ?? '';
  if (start.startsWith('{') || start.startsWith('[')) return 'tts-json';
  if (/dev_?eui/i.test(firstLine) && /[,;]/.test(firstLine)) return 'chirpstack-csv';
  if (start.startsWith('- ') || start.startsWith('lorawan:') || start.startsWith('#')) return 'iotgw-yaml';
  throw new CommandError(`cannot tell the format of ${file}: give --format ${IMPORT_FORMATS.join('|')}`, 2);
}

/** Who already holds a DevEUI, and an ABP session (DevAddr + NwkSKey): for messages, and to tell a device from itself. */
interface Holders {
  readonly devEuis: Map<string, string>;
  readonly sessions: Map<string, { readonly devEui: string | null; readonly what: string }>;
}

/** Each row against the schema, the file's earlier rows and the configured devices: a Map lookup each. */
function checkRows(rows: readonly ImportRow[], target: LorawanTarget, defaults: DeviceEntry): Checked {
  const configured: Holders = { devEuis: new Map(), sessions: new Map() };
  for (const { where, items } of target.lists) {
    for (const item of items) {
      const devEui = entryHex(item, 'dev_eui');
      if (devEui !== null) configured.devEuis.set(devEui, where);
      const session = sessionKey(entryHex(item, 'dev_addr'), entryHex(item, 'nwk_s_key'));
      if (session !== null) configured.sessions.set(session, { devEui, what: `a device in ${where}` });
    }
  }
  const earlier = new Map<string, number>();
  const checked: Checked = { accepted: [], refused: [] };
  for (const row of rows) {
    const entry = row.entry === null ? null : { ...row.entry, ...(row.entry.codec === undefined ? defaults : {}) };
    const problems = [...row.problems, ...schemaProblems(entry), ...duplicateProblems(row, entry, configured, earlier)];
    if (problems.length === 0 && entry !== null) checked.accepted.push(entry);
    else checked.refused.push({ ...row, problems });
  }
  return checked;
}

/** What the config loader would say about the entry: it is checked with the loader's own schema. */
function schemaProblems(entry: DeviceEntry | null): string[] {
  const parsed = entry === null ? null : DEVICE_SCHEMA.safeParse(entry);
  if (parsed === null || parsed.success) return [];
  return parsed.error.issues.map((issue) => `${issue.path.join('.') || 'device'}: ${issue.message}`);
}

/**
 * A DevEUI configured already or on an earlier line; an ABP DevAddr with the same NwkSKey as another device.
 * A DevAddr alone may be shared (the MIC tells the devices apart, and the loader accepts it), but with the same
 * NwkSKey both devices' frames verify, so the gateway would file one device's records under the other.
 */
function duplicateProblems(row: ImportRow, entry: DeviceEntry | null, holders: Holders, earlier: Map<string, number>): string[] {
  const problems: string[] = [];
  if (row.devEui !== null) {
    const where = holders.devEuis.get(row.devEui);
    const line = earlier.get(row.devEui);
    if (where !== undefined) problems.push(`dev_eui: already in ${where}; leave it out of the file, or remove it there first to change its keys`);
    if (line !== undefined) problems.push(`dev_eui: also on line ${line} of this file; keep one of them`);
    else earlier.set(row.devEui, row.line);
  }
  const session = entry === null ? null : sessionKey(lowerText(entry.dev_addr), lowerText(entry.nwk_s_key));
  if (session === null) return problems;
  const other = holders.sessions.get(session);
  if (other === undefined) holders.sessions.set(session, { devEui: row.devEui, what: `the device on line ${row.line}` });
  else if (other.devEui !== row.devEui) {
    // The same device again is refused above, as a duplicate DevEUI.
    problems.push(
      `dev_addr: ${entry?.dev_addr} with the same NwkSKey as ${other.what}: the gateway could not tell their frames apart; one of them has the wrong keys`,
    );
  }
  return problems;
}

function sessionKey(devAddr: string | null, nwkSKey: string | null): string | null {
  return devAddr === null || nwkSKey === null ? null : `${devAddr}/${nwkSKey}`;
}

function lowerText(value: DeviceEntry[string] | undefined): string | null {
  return typeof value === 'string' ? value.toLowerCase() : null;
}

interface ReportOptions {
  readonly file: string;
  readonly format: ImportFormat;
  readonly total: number;
  readonly target: LorawanTarget;
  readonly dryRun: boolean;
  readonly skipInvalid: boolean;
}

/** Refusals on stderr, one line each; then the one-line summary, the write and the restart hint. */
function report({ accepted, refused }: Checked, options: ReportOptions, io: Io): void {
  const { file, total, target } = options;
  for (const row of refused) {
    io.stderr.write(`${file}:${row.line}: ${row.devEui === null ? '' : `dev_eui ${row.devEui}: `}${row.problems.join('; ')}\n`);
  }
  const prefix = options.dryRun ? 'dry run: ' : '';
  if (refused.length > 0 && !options.skipInvalid) {
    const valid = accepted.length === 1 ? 'the 1 valid one' : `the ${accepted.length} valid ones`;
    const skip = accepted.length === 0 ? '' : `, or give --skip-invalid to add ${valid}`;
    throw inputError(`${prefix}0 added, ${refused.length} of ${total} refused, so ${target.path} is unchanged: fix the rows above${skip}`);
  }
  if (accepted.length === 0) throw inputError(`${prefix}0 added, all ${total} refused: ${target.path} is unchanged`);
  const otaa = accepted.filter((entry) => entry.app_key !== undefined).length;
  const kinds = `${otaa} OTAA, ${accepted.length - otaa} ABP`;
  if (options.dryRun) {
    for (const entry of accepted) io.stdout.write(`would add ${describe(entry)}\n`);
    io.stdout.write(
      `dry run: ${accepted.length} would be added to ${target.path} (${kinds}, read as ${options.format}), ${refused.length} refused; nothing written\n`,
    );
    return;
  }
  target.appendAndWrite(accepted);
  io.stdout.write(`${accepted.length} added to ${target.path} (${kinds}, read as ${options.format}), ${refused.length} refused\n${RESTART_HINT}\n`);
  if (!target.lorawanEnabled) io.stdout.write(`${LORAWAN_OFF_HINT}\n`);
}

/** A device for a person, without its keys. */
function describe(entry: DeviceEntry): string {
  const activation = entry.app_key === undefined ? `ABP, DevAddr ${entry.dev_addr}` : `OTAA, JoinEUI ${entry.join_eui}`;
  const name = entry.name === undefined ? '' : ` (${entry.name})`;
  return `${entry.dev_eui}${name}: ${activation}, class ${entry.class ?? 'A'}, codec ${entry.codec}`;
}
