// What every `device import` format is read into: one ImportRow per device in the file, with the line it starts
// on, its DevEUI when readable, and either the lorawan.devices entry it becomes or every problem found in it.
// The format readers (import-tts.ts, import-chirpstack.ts, import-yaml.ts) build rows with createRowBuilder, so
// problems read alike whatever the source, and a key's value never gets into a message.
import { isDeviceId } from '../../record/device-id.ts';
import { printable } from '../../shared/input-text.ts';
import type { DeviceEntry } from './device-add.ts';

export interface ImportRow {
  /** 1-based line of the file where the device starts (or where its text is malformed). */
  readonly line: number;
  /** 16 lower-case hex digits, or null when the row has no readable DevEUI. */
  readonly devEui: string | null;
  /** The entry to write; null when the row has problems. */
  readonly entry: DeviceEntry | null;
  /** `field: what is wrong, and what to do`, one per problem. */
  readonly problems: readonly string[];
}

export interface RowBuilder {
  /**
   * The value as `digits` lower-case hex digits (`:`, `-` and spaces are dropped), or undefined with a problem
   * recorded. A `secret` value is never quoted in the problem; an EUI or DevAddr is.
   */
  hex(field: string, value: unknown, digits: number, what: string, options?: { readonly secret?: boolean }): string | undefined;
  /** A device id for `name`, or undefined (with a problem when the value is not a valid id). */
  name(field: string, value: unknown): string | undefined;
  problem(field: string, message: string): void;
  /** Records the DevEUI the row is named by in messages. */
  setDevEui(devEui: string | undefined): void;
  /** The row: its entry when no problem was recorded. */
  finish(entry: DeviceEntry | null): ImportRow;
}

const DEVICE_ID_HINT = 'device ids use letters, digits and . _ : - (at most 128)';

export function createRowBuilder(line: number): RowBuilder {
  const problems: string[] = [];
  let devEui: string | null = null;
  return {
    hex(field, value, digits, what, options = {}) {
      if (value === undefined || value === null || value === '') {
        problems.push(`${field}: missing (${what}, ${digits} hex digits); add it to the file`);
        return undefined;
      }
      if (typeof value !== 'string') {
        const hint = typeof value === 'number' ? ': quote it in the file, so that leading zeros are kept' : '';
        problems.push(`${field}: expected ${digits} hex digits as a string (${what}), got a ${typeof value}${hint}`);
        return undefined;
      }
      const compact = value.replace(/[\s:-]/g, '');
      if (/^[0-9A-Fa-f]*$/.test(compact) && compact.length === digits) return compact.toLowerCase();
      const reason = /^[0-9A-Fa-f]*$/.test(compact) ? `${compact.length} digits` : 'characters that are not hex digits';
      const got = options.secret === true ? reason : `'${printable(value, 40)}' (${reason})`;
      problems.push(`${field}: expected ${digits} hex digits (${what}), got ${got}; correct it in the file`);
      return undefined;
    },
    name(field, value) {
      if (value === undefined || value === null || value === '') return undefined;
      if (typeof value === 'string' && isDeviceId(value)) return value;
      problems.push(
        `${field}: '${printable(String(value), 40)}' is not a valid device id (${DEVICE_ID_HINT}); rename it in the file, or leave it empty for eui-{dev_eui}`,
      );
      return undefined;
    },
    problem(field, message) {
      problems.push(`${field}: ${message}`);
    },
    setDevEui(value) {
      devEui = value ?? null;
    },
    finish(entry) {
      return { line, devEui, entry: problems.length === 0 ? entry : null, problems };
    },
  };
}

/** 1-based line of `offset` in `text`, counting from `firstLine`. */
export function lineAt(text: string, offset: number, firstLine = 1): number {
  let line = firstLine;
  for (let index = text.indexOf('\n'); index !== -1 && index < offset; index = text.indexOf('\n', index + 1)) line += 1;
  return line;
}

/**
 * The lorawan.devices mac_version of an exported LoRaWAN version (TTS MAC_V1_0_4, ChirpStack 1.0.4 or
 * LORAWAN_1_0_4); undefined for others, which take the default (1.0.0-1.0.3 share the join rules).
 */
export function macVersionOf(exported: unknown): '1.0.2' | '1.0.3' | '1.0.4' | undefined {
  if (typeof exported !== 'string') return undefined;
  const match = /^(?:MAC_V|LORAWAN_)?1[._]0[._]([234])$/i.exec(exported.trim());
  return match === null ? undefined : (`1.0.${match[1]}` as '1.0.2' | '1.0.3' | '1.0.4');
}
