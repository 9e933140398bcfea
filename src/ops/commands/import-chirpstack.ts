// Reads a ChirpStack (v4) device list in CSV into import rows. ChirpStack itself has no CSV export: the import
// scripts people use with it write one column per field of its API (chirpstack_api api.Device, DeviceKeys and
// DeviceActivation), and that is what is read here:
//   dev_eui, name, join_eui, nwk_key, app_key, dev_addr, app_s_key, nwk_s_enc_key, s_nwk_s_int_key,
//   f_nwk_s_int_key, f_cnt_up, skip_fcnt_check, plus class / lorawan_version when the file has them.
// Column names are matched loosely (case, spaces, camelCase as in the REST API: devEui) with the aliases the
// scripts use (app_eui, device_name, nwk_s_key, ...); other columns (device_profile_id, description, tags) are
// ignored. LoRaWAN 1.0.x: ChirpStack keeps the AppKey in nwk_key ("For LoRaWAN 1.0.x, use this field for the
// LoRaWAN 1.0.x AppKey", DeviceKeys in chirpstack_api), and app_key is only for 1.1 (often all zeros). So nwk_key
// is the AppKey; app_key is used only when nwk_key is empty (scripts that name the 1.0 AppKey app_key); both
// set and different is a 1.1 device, which iotgw does not speak. In a 1.0 session the three network session
// keys are one NwkSKey; f_cnt_up is the next uplink counter expected, so the last one used is f_cnt_up - 1.
import { printable } from '../../shared/input-text.ts';
import type { DeviceEntry } from './device-add.ts';
import { readCsv } from './csv-records.ts';
import { createRowBuilder, type ImportRow, macVersionOf, type RowBuilder } from './import-rows.ts';
import { CommandError } from './command-error.ts';

const ALIASES: Readonly<Record<string, string>> = {
  deveui: 'dev_eui',
  device_eui: 'dev_eui',
  joineui: 'join_eui',
  app_eui: 'join_eui',
  appeui: 'join_eui',
  device_name: 'name',
  nwkkey: 'nwk_key',
  appkey: 'app_key',
  application_key: 'app_key',
  devaddr: 'dev_addr',
  device_address: 'dev_addr',
  appskey: 'app_s_key',
  nwkskey: 'nwk_s_key',
  fcnt_up: 'f_cnt_up',
  skip_f_cnt_check: 'skip_fcnt_check',
  device_class: 'class',
  mac_version: 'lorawan_version',
};

const KEYS_HINT =
  'export the keys too: ChirpStack keeps the AppKey of a LoRaWAN 1.0.x device in nwk_key (API DeviceService.GetKeys) and an ABP session in dev_addr, app_s_key, nwk_s_enc_key (GetActivation)';

const JOIN_EUI_HINT =
  "iotgw refuses join-requests naming another JoinEUI (AppEUI) than the configured one, and ChirpStack exports leave it empty when it was never set: take it from the device's label or its vendor's sheet (often 0000000000000000)";

export function readChirpstackDevices(text: string, file: string): ImportRow[] {
  const { header, records } = readCsv(text, file);
  const columns = header.fields.map(columnName);
  if (!columns.includes('dev_eui')) {
    throw new CommandError(
      `${file}:${header.line}: not a ChirpStack device CSV: no dev_eui column (the header names ${printable(header.fields.join(', '), 200)}); give --format if this is another format`,
      2,
    );
  }
  return records.map((record) => {
    if (record.fields.length !== columns.length) {
      const row = createRowBuilder(record.line);
      const devEui = record.fields[columns.indexOf('dev_eui')]?.replace(/[\s:-]/g, '') ?? '';
      if (/^[0-9A-Fa-f]{16}$/.test(devEui)) row.setDevEui(devEui.toLowerCase());
      row.problem('CSV', `malformed: ${record.fields.length} fields, the header has ${columns.length}; quote fields that contain the delimiter`);
      return row.finish(null);
    }
    const values = new Map<string, string>();
    columns.forEach((column, index) => {
      const value = record.fields[index] ?? '';
      if (value !== '' && !values.has(column)) values.set(column, value);
    });
    return chirpstackRow(record.line, values);
  });
}

/** `DevEUI`, `dev eui`, `devEui` -> dev_eui; then the aliases. */
function columnName(name: string): string {
  const snake = name
    .trim()
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .replace(/[\s-]+/g, '_');
  return ALIASES[snake] ?? snake;
}

function chirpstackRow(line: number, values: ReadonlyMap<string, string>): ImportRow {
  const row = createRowBuilder(line);
  const devEui = row.hex('dev_eui', values.get('dev_eui'), 16, 'DevEUI');
  row.setDevEui(devEui);
  const name = row.name('name', values.get('name'));
  const version = values.get('lorawan_version');
  if (version !== undefined && /1[._]1/.test(version)) row.problem('lorawan_version', `${printable(version, 40)}: iotgw speaks LoRaWAN 1.0.x only`);
  const deviceClass = classOf(row, values.get('class'));
  const rootKey = appKeyOf(row, values);
  const hasSession = ['dev_addr', 'app_s_key', 'nwk_s_key', 'nwk_s_enc_key', 's_nwk_s_int_key', 'f_nwk_s_int_key'].some((column) => values.has(column));
  let keys: DeviceEntry | undefined;
  if (rootKey !== null) {
    const joinEui = values.has('join_eui') ? row.hex('join_eui', values.get('join_eui'), 16, 'JoinEUI/AppEUI') : missing(row, 'join_eui', JOIN_EUI_HINT);
    keys = joinEui === undefined || rootKey === undefined ? undefined : { join_eui: joinEui, app_key: rootKey };
  } else if (hasSession) keys = abpKeys(row, values);
  else row.problem('keys', `missing: no nwk_key (AppKey) for OTAA and no ABP session; ${KEYS_HINT}`);
  if (devEui === undefined || keys === undefined) return row.finish(null);
  const entry: Record<string, string | number | boolean> = { dev_eui: devEui };
  if (name !== undefined) entry.name = name;
  Object.assign(entry, keys);
  if (deviceClass === 'C') entry.class = 'C';
  const macVersion = macVersionOf(version);
  if (macVersion !== undefined) entry.mac_version = macVersion;
  return row.finish(entry);
}

/** The root key (see the header), undefined when it is malformed, null when the row has none. */
function appKeyOf(row: RowBuilder, values: ReadonlyMap<string, string>): string | undefined | null {
  const nwkKey = nonZero(values.get('nwk_key'));
  const appKey = nonZero(values.get('app_key'));
  if (nwkKey === undefined && appKey === undefined) return null;
  const key = row.hex(nwkKey === undefined ? 'app_key' : 'nwk_key', nwkKey ?? appKey, 32, 'AppKey', { secret: true });
  if (key !== undefined && nwkKey !== undefined && appKey !== undefined && key !== row.hex('app_key', appKey, 32, 'AppKey', { secret: true })) {
    row.problem('app_key', 'differs from nwk_key: a LoRaWAN 1.1 device (in 1.0.x ChirpStack keeps the AppKey in nwk_key only); iotgw speaks 1.0.x only');
    return undefined;
  }
  return key;
}

function abpKeys(row: RowBuilder, values: ReadonlyMap<string, string>): DeviceEntry | undefined {
  const devAddr = row.hex('dev_addr', values.get('dev_addr'), 8, 'DevAddr');
  const appSKey = row.hex('app_s_key', values.get('app_s_key'), 32, 'AppSKey', { secret: true });
  // LoRaWAN 1.0.x has one NwkSKey; ChirpStack stores it as all three network session keys of 1.1.
  const nwkColumns = ['nwk_s_key', 'f_nwk_s_int_key', 'nwk_s_enc_key', 's_nwk_s_int_key'].filter((column) => values.has(column));
  const nwkKeys = new Set(nwkColumns.map((column) => row.hex(column, values.get(column), 32, 'NwkSKey', { secret: true })));
  const nwkSKey = nwkColumns.length === 0 ? missing(row, 'nwk_s_enc_key', `no NwkSKey for the ABP session; ${KEYS_HINT}`) : [...nwkKeys][0];
  if (nwkKeys.size > 1) row.problem(nwkColumns.join('/'), 'differ: a LoRaWAN 1.1 session (in 1.0.x they are one NwkSKey); iotgw speaks 1.0.x only');
  if (devAddr === undefined || appSKey === undefined || nwkSKey === undefined || nwkKeys.size > 1) return undefined;
  const entry: Record<string, string | number | boolean> = { dev_addr: devAddr, nwk_s_key: nwkSKey, app_s_key: appSKey };
  if (/^(true|1|yes)$/i.test(values.get('skip_fcnt_check') ?? '')) entry.resets_f_cnt = true;
  const next = values.get('f_cnt_up');
  if (next !== undefined) {
    const count = Number(next);
    if (!Number.isInteger(count) || count < 0 || count > 0xffff_ffff)
      row.problem('f_cnt_up', `'${printable(next, 40)}' is not a frame counter (a whole number from 0)`);
    else if (count > 0) entry.f_cnt_up_hint = count - 1;
  }
  return entry;
}

function classOf(row: RowBuilder, value: string | undefined): 'A' | 'C' | undefined {
  const upper = value
    ?.trim()
    .toUpperCase()
    .replace(/^CLASS[_ ]?/, '');
  if (upper === undefined || upper === 'A' || upper === 'C') return upper;
  row.problem('class', `'${printable(value ?? '', 40)}': iotgw runs class A and C devices (a class B device also works as class A: write A)`);
  return undefined;
}

/** An empty or all-zero key is no key (ChirpStack fills the unused one with zeros). */
function nonZero(value: string | undefined): string | undefined {
  return value === undefined || /^[0\s:-]*$/.test(value) ? undefined : value;
}

function missing(row: RowBuilder, field: string, message: string): undefined {
  row.problem(field, `missing: ${message}`);
  return undefined;
}
