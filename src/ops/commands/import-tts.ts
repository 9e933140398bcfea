// Reads The Things Stack (v3) end devices, as `ttn-lw-cli end-devices get APP DEVICE --all` prints them (one
// JSON object each; several concatenated make a JSON stream) or as a JSON array, into import rows.
//
// Field names checked against The Things Stack's API definition (lorawan-stack api/ttn/lorawan/v3/end_device.proto,
// api/keys.proto) and its JSON examples (docs "JSON File Reference", lorawan-stack PR #3078):
//   ids.device_id, ids.dev_eui, ids.join_eui (app_eui in older exports), supports_join, lorawan_version
//   (MAC_V1_0_2, or 1.0.2 in templates), frequency_plan_id (EU_863_870...), supports_class_c, multicast,
//   root_keys.app_key.key, session.dev_addr, session.keys.f_nwk_s_int_key.key (the NwkSKey of LoRaWAN 1.0.x,
//   "1.0 compatibility mode"), session.keys.app_s_key.key, session.last_f_cnt_up (last uplink counter used),
//   mac_settings.resets_f_cnt and mac_settings.supports_32_bit_f_cnt (BoolValue: true, or {"value": true}).
// A KeyEnvelope may carry encrypted_key + kek_label instead of key: the plain key is then not in the export.
// `end-devices list` asks the Identity Server, which never holds keys (lorawan-stack issues #4145, #5909), so a
// list export has no keys at all: such rows are refused with the command that exports them.
import { printable } from '../../shared/input-text.ts';
import type { DeviceEntry } from './device-add.ts';
import type { ImportContext } from './device-import.ts';
import { createRowBuilder, type ImportRow, lineAt, macVersionOf, type RowBuilder } from './import-rows.ts';
import { splitJsonValues } from './json-values.ts';

const EXPORT_HINT =
  'export each device with `ttn-lw-cli end-devices get APP_ID DEVICE_ID --all` as a user or API key allowed to read device keys (`end-devices list` returns registry fields only, never keys)';

export function readTtsDevices(text: string, file: string, context: ImportContext = { region: 'EU868', subBand: 2 }): ImportRow[] {
  return splitJsonValues(text, file).map(({ line, text: valueText }) => {
    let device: unknown;
    try {
      device = JSON.parse(valueText);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const position = /position (\d+)/.exec(message)?.[1];
      const row = createRowBuilder(position === undefined ? line : lineAt(valueText, Number(position), line));
      row.problem('JSON', `malformed: ${message.replace(/ in JSON at position.*$/, '')}; fix the file (or export it again)`);
      return row.finish(null);
    }
    return ttsRow(line, device, context);
  });
}

function ttsRow(line: number, device: unknown, context: ImportContext): ImportRow {
  const row = createRowBuilder(line);
  if (!isObject(device)) {
    row.problem('device', 'not a JSON object: expected an end device of The Things Stack ({"ids": {...}, ...})');
    return row.finish(null);
  }
  const devEui = row.hex('ids.dev_eui', at(device, 'ids', 'dev_eui'), 16, 'DevEUI');
  row.setDevEui(devEui);
  const name = row.name('ids.device_id', at(device, 'ids', 'device_id'));
  checkSupported(row, device, context);
  const otaa = isOtaa(device);
  const keys = otaa ? otaaKeys(row, device) : abpKeys(row, device);
  if (devEui === undefined || keys === undefined) return row.finish(null);
  const entry: Record<string, string | number | boolean> = { dev_eui: devEui };
  if (name !== undefined) entry.name = name;
  Object.assign(entry, keys);
  if (device.supports_class_c === true) entry.class = 'C';
  const macVersion = macVersionOf(at(device, 'lorawan_version'));
  if (macVersion !== undefined) entry.mac_version = macVersion;
  return row.finish(entry);
}

/** What iotgw cannot run: LoRaWAN 1.1, other regions, multicast groups, 16-bit counters that would wrap. */
function checkSupported(row: RowBuilder, device: Record<string, unknown>, context: ImportContext): void {
  const { region } = context;
  const version = at(device, 'lorawan_version');
  if (typeof version === 'string' && /^(MAC_V)?1[._]1/.test(version)) {
    row.problem('lorawan_version', `${printable(version, 40)}: iotgw speaks LoRaWAN 1.0.x only; leave this device on its network server`);
  }
  const plan = at(device, 'frequency_plan_id');
  if (typeof plan === 'string' && plan !== '') {
    const planRegion = regionOfTtsPlan(plan);
    if (planRegion === null) {
      row.problem('frequency_plan_id', `${printable(plan, 40)}: a region iotgw does not serve; leave this device on its network server`);
    } else if (!region.startsWith(planRegion)) {
      row.problem(
        'frequency_plan_id',
        `${printable(plan, 40)} is ${planRegion}, this gateway's lorawan.region is ${region}: import it into a gateway of that region, or leave it on its network server`,
      );
    } else {
      // US_902_928_FSB_2 is sub-band 2: a device on another one is not heard by this gateway's radios.
      const subBand = /_FSB_(\d)\b/.exec(plan)?.[1];
      if (subBand !== undefined && Number(subBand) !== context.subBand) {
        row.problem(
          'frequency_plan_id',
          `${printable(plan, 40)} is sub-band ${subBand}, this gateway's lorawan.sub_band is ${context.subBand}: its radios would not hear the device; import it into a gateway on sub-band ${subBand}`,
        );
      }
    }
  }
  if (device.multicast === true) row.problem('multicast', 'a multicast group is not a device; leave it out of the import');
  const resets = resetsFCnt(device);
  if (bool(at(device, 'mac_settings', 'supports_32_bit_f_cnt')) === false && !(resets === true && !isOtaa(device))) {
    row.problem(
      'mac_settings.supports_32_bit_f_cnt',
      'false: iotgw counts frames with 32 bits, so this device would be refused once its 16-bit counter wraps; update its firmware, or for ABP set mac_settings.resets_f_cnt',
    );
  }
}

/** supports_join decides; without it, root keys mean OTAA and a session means ABP. */
function isOtaa(device: Record<string, unknown>): boolean {
  if (typeof device.supports_join === 'boolean') return device.supports_join;
  return device.root_keys !== undefined || device.session === undefined;
}

function otaaKeys(row: RowBuilder, device: Record<string, unknown>): DeviceEntry | undefined {
  const joinEuiField = at(device, 'ids', 'join_eui') === undefined && at(device, 'ids', 'app_eui') !== undefined ? 'ids.app_eui' : 'ids.join_eui';
  const joinEui = row.hex(joinEuiField, at(device, ...joinEuiField.split('.')), 16, 'JoinEUI/AppEUI of an OTAA device');
  const appKey = envelopeKey(row, 'root_keys.app_key', at(device, 'root_keys', 'app_key'), 'AppKey');
  if (joinEui === undefined || appKey === undefined) return undefined;
  return { join_eui: joinEui, app_key: appKey };
}

function abpKeys(row: RowBuilder, device: Record<string, unknown>): DeviceEntry | undefined {
  const session = at(device, 'session');
  if (!isObject(session)) {
    row.problem('session', `missing: an ABP device (supports_join false) needs its session (DevAddr, NwkSKey, AppSKey); ${EXPORT_HINT}`);
    return undefined;
  }
  const devAddr = row.hex('session.dev_addr', session.dev_addr ?? at(device, 'ids', 'dev_addr'), 8, 'DevAddr');
  const nwkSKey = envelopeKey(row, 'session.keys.f_nwk_s_int_key', at(session, 'keys', 'f_nwk_s_int_key'), 'NwkSKey');
  const appSKey = envelopeKey(row, 'session.keys.app_s_key', at(session, 'keys', 'app_s_key'), 'AppSKey');
  if (devAddr === undefined || nwkSKey === undefined || appSKey === undefined) return undefined;
  const entry: Record<string, string | number | boolean | Record<string, number>> = { dev_addr: devAddr, nwk_s_key: nwkSKey, app_s_key: appSKey };
  if (resetsFCnt(device) === true) entry.resets_f_cnt = true;
  const windows = currentRxWindows(device);
  if (windows !== null) entry.rx_windows = windows;
  // The counter the device last used: the gateway refuses that and anything below as a replay.
  const last = session.last_f_cnt_up;
  if (typeof last === 'number' && Number.isInteger(last) && last > 0 && last <= 0xffff_ffff) entry.f_cnt_up_hint = last;
  return entry;
}

/**
 * The receive windows The Things Stack runs the ABP device at now (mac_state.current_parameters: rx1_delay
 * "RX_DELAY_5", rx2_data_rate_index "DATA_RATE_3", rx2_frequency "869525000"): the device keeps them after the
 * move, so iotgw must answer in them until it has moved the device to lorawan.rx_windows. Null when absent.
 */
function currentRxWindows(device: Record<string, unknown>): Record<string, number> | null {
  const number = (value: unknown, prefix: string): number | undefined => {
    const text = typeof value === 'object' && value !== null && 'value' in value ? (value as { value: unknown }).value : value;
    const parsed = typeof text === 'number' ? text : typeof text === 'string' ? Number(text.replace(prefix, '')) : Number.NaN;
    return Number.isInteger(parsed) && parsed >= 0 ? parsed : undefined;
  };
  const current = at(device, 'mac_state', 'current_parameters');
  if (!isObject(current)) return null;
  const delay = number(current.rx1_delay, 'RX_DELAY_');
  const offset = number(current.rx1_data_rate_offset, 'DATA_RATE_OFFSET_');
  const rx2 = number(current.rx2_data_rate_index, 'DATA_RATE_');
  const frequency = number(current.rx2_frequency, '');
  const windows: Record<string, number> = {
    ...(delay === undefined ? {} : { rx1_delay_s: Math.max(1, delay) }),
    ...(offset === undefined ? {} : { rx1_dr_offset: offset }),
    ...(rx2 === undefined ? {} : { rx2_data_rate: rx2 }),
    ...(frequency === undefined || frequency === 0 ? {} : { rx2_frequency_hz: frequency }),
  };
  return Object.keys(windows).length === 0 ? null : windows;
}

/** A KeyEnvelope's plain key; a problem naming why it is absent (not exported, or wrapped with a KEK). */
function envelopeKey(row: RowBuilder, field: string, envelope: unknown, what: string): string | undefined {
  if (isObject(envelope) && envelope.key === undefined && (envelope.encrypted_key !== undefined || envelope.kek_label !== undefined)) {
    const label = typeof envelope.kek_label === 'string' && envelope.kek_label !== '' ? ` with KEK '${printable(envelope.kek_label, 40)}'` : '';
    row.problem(`${field}.key`, `the ${what} is encrypted${label}, not in the clear; ${EXPORT_HINT}`);
    return undefined;
  }
  const key = isObject(envelope) ? envelope.key : undefined;
  if (key === undefined || key === null || key === '') {
    row.problem(`${field}.key`, `missing: the export has no ${what}; ${EXPORT_HINT}`);
    return undefined;
  }
  return row.hex(`${field}.key`, key, 32, what, { secret: true });
}

/** mac_settings.resets_f_cnt, or resets_f_cnt at the top level as older exports put it. */
function resetsFCnt(device: Record<string, unknown>): boolean | undefined {
  return bool(at(device, 'mac_settings', 'resets_f_cnt')) ?? bool(device.resets_f_cnt);
}

/** A protobuf BoolValue in JSON: `true`, or `{"value": true}` (an absent value is false). */
function bool(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (isObject(value)) return value.value === true;
  return undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function at(value: unknown, ...path: string[]): unknown {
  let node = value;
  for (const key of path) node = isObject(node) ? node[key] : undefined;
  return node;
}

/** The RP002 region (AS923 for any of its groups) of a The Things Stack frequency plan id, e.g. EU_863_870_TTN; null for others (CN470, ...). */
function regionOfTtsPlan(plan: string): string | null {
  const families: readonly [string, string][] = [
    ['EU_863_870', 'EU868'],
    ['US_902_928', 'US915'],
    ['AU_915_928', 'AU915'],
    ['AS_92', 'AS923'],
    ['KR_920_923', 'KR920'],
    ['IN_865_867', 'IN865'],
  ];
  return families.find(([prefix]) => plan.startsWith(prefix))?.[1] ?? null;
}
