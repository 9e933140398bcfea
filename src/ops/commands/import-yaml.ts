// Reads iotgw's own device list into import rows: a YAML list shaped like lorawan.devices (what
// lorawan.devices_file holds), or a whole iotgw config whose lorawan.devices is taken. Entries keep their own
// fields (codec, class, resets_f_cnt, ...); the EUIs and keys are normalized to lower-case hex like the others,
// and the config schema checks the rest in device-import.ts.
import { isMap, isSeq, LineCounter, parseDocument, type YAMLMap } from 'yaml';
import type { DeviceEntry } from './device-add.ts';
import { createRowBuilder, type ImportRow } from './import-rows.ts';
import { CommandError } from './command-error.ts';

/** The hex fields of a lorawan.devices entry: digits, what, secret. */
const HEX_FIELDS: readonly (readonly [string, number, string, boolean])[] = [
  ['dev_eui', 16, 'DevEUI', false],
  ['join_eui', 16, 'JoinEUI/AppEUI', false],
  ['app_key', 32, 'AppKey', true],
  ['dev_addr', 8, 'DevAddr', false],
  ['nwk_s_key', 32, 'NwkSKey', true],
  ['app_s_key', 32, 'AppSKey', true],
];

export function readYamlDevices(text: string, file: string): ImportRow[] {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { uniqueKeys: true, stringKeys: true, lineCounter });
  const error = document.errors[0];
  if (error !== undefined) {
    const line = error.linePos?.[0].line;
    throw new CommandError(`${file}${line === undefined ? '' : `:${line}`}: malformed YAML: ${error.message.split('\n')[0]}`, 2);
  }
  const root = document.contents;
  const list = isMap(root) ? document.getIn(['lorawan', 'devices'], true) : root;
  if (!isSeq(list)) {
    throw new CommandError(`${file}: expected a YAML list of devices (- dev_eui: ...), or an iotgw config with lorawan.devices`, 2);
  }
  return list.items.map((item) => {
    const offset = (item as { range?: readonly number[] } | null)?.range?.[0] ?? 0;
    const line = lineCounter.linePos(offset).line;
    if (!isMap(item)) {
      const row = createRowBuilder(line);
      row.problem('device', 'not a mapping: each list item is a device (dev_eui: ..., then its keys)');
      return row.finish(null);
    }
    return yamlRow(line, item);
  });
}

function yamlRow(line: number, item: YAMLMap): ImportRow {
  const row = createRowBuilder(line);
  const fields = item.toJSON() as Record<string, unknown>;
  const entry: Record<string, string | number | boolean> = {};
  for (const [key, value] of Object.entries(fields)) {
    const hex = HEX_FIELDS.find(([name]) => name === key);
    if (hex !== undefined) {
      const [, digits, what, secret] = hex;
      const normalized = row.hex(key, value, digits, what, { secret });
      if (normalized !== undefined) entry[key] = normalized;
    } else if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') entry[key] = value;
    else row.problem(key, 'expected a single value (a string, number or true/false)');
  }
  if (fields.dev_eui === undefined) row.hex('dev_eui', undefined, 16, 'DevEUI');
  row.setDevEui(typeof entry.dev_eui === 'string' ? entry.dev_eui : undefined);
  return row.finish(entry satisfies DeviceEntry);
}
