// What a simulated device makes of a command from the back office, by model, as field firmware would (pure:
// name and payload bytes in, what to do or why not out), and the state report it sends after acting. The
// transport delivers the command (firmware/mqtt-commands.ts for MQTT); the model acts (fleet.ts `actuate`).
//
// Commands; a JSON payload is what the gateway delivers for an envelope's object payload:
//   street lamp   dim {"level": 0..100} (0 = off) | on | off            (the payload of on/off is ignored)
//   water meter   valve {"open": true|false} | open | close
//   every model   config {"interval_s": 1..86400}                       one reading per interval from then on
// Anything else is refused with {"error": "unknown command"}; a known command with a payload it cannot use
// with {"error": "bad payload: ..."}.
import type { Actuation, ActuatorState, DeviceKind } from './fleet.ts';

export type DeviceCommand =
  | { readonly action: 'actuate'; readonly actuation: Actuation }
  | { readonly action: 'config'; readonly intervalS: number }
  | { readonly action: 'refuse'; readonly error: string };

/** What a device acted on, as its state report says it: the actuator's state, the new interval, or why not. */
export type CommandResult = ActuatorState | { readonly interval_s: number } | { readonly error: string };

export const UNKNOWN_COMMAND = 'unknown command';
/** A day: a meter that reports less often than daily is configured by other means. */
export const MAX_INTERVAL_S = 86_400;
/** Larger payloads are not parsed: no command here needs more than a few bytes. */
const MAX_PAYLOAD_BYTES = 1_024;

export function parseDeviceCommand(kind: DeviceKind, name: string, payload: Uint8Array): DeviceCommand {
  if (name === 'config') {
    const interval = jsonField(payload, 'interval_s');
    if (!Number.isInteger(interval) || (interval as number) < 1 || (interval as number) > MAX_INTERVAL_S) {
      return badPayload(`config needs {"interval_s": 1..${MAX_INTERVAL_S}}`);
    }
    return { action: 'config', intervalS: interval as number };
  }
  switch (kind) {
    case 'street-lamp':
      return lampCommand(name, payload);
    case 'water-meter':
      return valveCommand(name, payload);
    case 'electricity-meter':
    case 'parking-sensor':
      return { action: 'refuse', error: UNKNOWN_COMMAND };
  }
}

function lampCommand(name: string, payload: Uint8Array): DeviceCommand {
  switch (name) {
    case 'dim': {
      const level = jsonField(payload, 'level');
      if (typeof level !== 'number' || !(level >= 0 && level <= 100)) return badPayload('dim needs {"level": 0..100}');
      const dimPct = Math.round(level);
      return { action: 'actuate', actuation: { kind: 'lamp', on: dimPct > 0, dimPct } };
    }
    case 'on':
      return { action: 'actuate', actuation: { kind: 'lamp', on: true } };
    case 'off':
      return { action: 'actuate', actuation: { kind: 'lamp', on: false } };
    default:
      return { action: 'refuse', error: UNKNOWN_COMMAND };
  }
}

function valveCommand(name: string, payload: Uint8Array): DeviceCommand {
  switch (name) {
    case 'valve': {
      const open = jsonField(payload, 'open');
      if (typeof open !== 'boolean') return badPayload('valve needs {"open": true|false}');
      return { action: 'actuate', actuation: { kind: 'valve', open } };
    }
    case 'open':
    case 'close':
      return { action: 'actuate', actuation: { kind: 'valve', open: name === 'open' } };
    default:
      return { action: 'refuse', error: UNKNOWN_COMMAND };
  }
}

function badPayload(what: string): DeviceCommand {
  return { action: 'refuse', error: `bad payload: ${what}` };
}

/** A field of a JSON object payload; undefined for anything else (not JSON, not an object, too large). */
function jsonField(payload: Uint8Array, field: string): unknown {
  if (payload.length === 0 || payload.length > MAX_PAYLOAD_BYTES) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>)[field] : undefined;
  } catch {
    return undefined;
  }
}

export interface StateReportInput {
  readonly deviceId: string;
  readonly kind: DeviceKind;
  /** The command's name (a topic level). */
  readonly command: string;
  /** Only when the transport carries it (an MQTT topic with {command_id}); a plain payload has none. */
  readonly commandId: string | undefined;
  readonly result: CommandResult;
  /** When the device acted (ms since the epoch): it acts as the command arrives. */
  readonly nowMs: number;
}

/**
 * The state report a device sends after a command, e.g.
 *   {"device_id":"sl-000002","kind":"street-lamp","command":"dim","on":true,"dim_pct":40,"ts":"..."}
 *   {"device_id":"em-000001","kind":"electricity-meter","command":"reboot","error":"unknown command","ts":"..."}
 */
export function stateReport(input: StateReportInput): string {
  return JSON.stringify({
    device_id: input.deviceId,
    kind: input.kind,
    command: input.command,
    ...(input.commandId === undefined ? {} : { command_id: input.commandId }),
    ...input.result,
    ts: new Date(input.nowMs).toISOString(),
  });
}
