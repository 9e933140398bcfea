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
import type { Actuation, ActuatorState, DeviceKind, SimDevice } from './fleet.ts';

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

// ---- LoRaWAN: a command as downlink bytes ----------------------------------------------------------------
// A LoRaWAN downlink carries no command name, only an FPort and the FRMPayload. The simulated LoRaWAN and TTN
// devices read it like this (one command per frame):
//   FPort 10  street lamp   0x01 LL       dim to LL % (0..100, 0 = off)
//                           0x02 BB       off (00) | on (01, at the last level commanded)
//   FPort 11  every model   0x10 MM[MM]   reporting interval in minutes (u8 or u16 big-endian, 1..1440)
//   FPort 12  water meter   0x20 BB       valve closed (00) | open (01)
// and, on any FPort, a JSON object, which is what the gateway sends for an envelope's object payload when
// the device has no formatter: {"level": 0..100} dim, {"on": true|false}, {"open": true|false} valve,
// {"interval_s": 1..86400} config. What the payload means decides; a lamp command to a meter is refused.

/** The FPorts of the binary command format above. */
export const LORAWAN_COMMAND_PORTS = { lamp: 10, config: 11, valve: 12 } as const;

/** A downlink read as a command: the MQTT command it matches (for the report) and what to do. */
export interface LorawanCommand {
  /** dim, on, off, valve, config; 'unknown' when the payload names nothing the devices know. */
  readonly name: string;
  readonly command: DeviceCommand;
}

const JSON_OBJECT_START = 0x7b;
const MAX_INTERVAL_MINUTES = MAX_INTERVAL_S / 60;

/** Reads an application downlink (FPort 1..223, FRMPayload decrypted) as a command for a device of `kind`. */
export function parseLorawanCommand(kind: DeviceKind, fport: number, payload: Uint8Array): LorawanCommand {
  if (payload[0] === JSON_OBJECT_START) return jsonLorawanCommand(kind, payload);
  const [opcode, ...args] = payload;
  const json = (value: Record<string, unknown>): Uint8Array => Buffer.from(JSON.stringify(value));
  const named = (name: string, body: Uint8Array = new Uint8Array(0)): LorawanCommand => ({ name, command: parseDeviceCommand(kind, name, body) });
  const bad = (name: string, what: string): LorawanCommand => ({ name, command: badPayload(what) });
  switch (`${fport}:${opcode}`) {
    case `${LORAWAN_COMMAND_PORTS.lamp}:${0x01}`: {
      const level = args[0];
      if (args.length !== 1 || level === undefined || level > 100) return bad('dim', 'dim needs 01 LL, LL 0..100');
      return named('dim', json({ level }));
    }
    case `${LORAWAN_COMMAND_PORTS.lamp}:${0x02}`:
      if (args.length !== 1 || (args[0] !== 0 && args[0] !== 1)) return bad('on', 'on/off needs 02 00 or 02 01');
      return named(args[0] === 1 ? 'on' : 'off');
    case `${LORAWAN_COMMAND_PORTS.config}:${0x10}`: {
      const minutes = args.length === 1 ? (args[0] ?? 0) : args.length === 2 ? ((args[0] ?? 0) << 8) | (args[1] ?? 0) : 0;
      if (minutes < 1 || minutes > MAX_INTERVAL_MINUTES) return bad('config', `config needs 10 MM or 10 MMMM, 1..${MAX_INTERVAL_MINUTES} minutes`);
      return named('config', json({ interval_s: minutes * 60 }));
    }
    case `${LORAWAN_COMMAND_PORTS.valve}:${0x20}`:
      if (args.length !== 1 || (args[0] !== 0 && args[0] !== 1)) return bad('valve', 'valve needs 20 00 or 20 01');
      return named('valve', json({ open: args[0] === 1 }));
    default:
      return { name: 'unknown', command: { action: 'refuse', error: UNKNOWN_COMMAND } };
  }
}

/** A JSON object payload: the field it sets names the command. */
function jsonLorawanCommand(kind: DeviceKind, payload: Uint8Array): LorawanCommand {
  const has = (field: string): boolean => jsonField(payload, field) !== undefined;
  if (has('level')) return { name: 'dim', command: parseDeviceCommand(kind, 'dim', payload) };
  if (has('interval_s')) return { name: 'config', command: parseDeviceCommand(kind, 'config', payload) };
  if (has('open')) return { name: 'valve', command: parseDeviceCommand(kind, 'valve', payload) };
  if (has('on')) {
    const on = jsonField(payload, 'on');
    if (typeof on !== 'boolean') return { name: 'on', command: badPayload('on needs {"on": true|false}') };
    return { name: on ? 'on' : 'off', command: parseDeviceCommand(kind, on ? 'on' : 'off', new Uint8Array(0)) };
  }
  return { name: 'unknown', command: { action: 'refuse', error: UNKNOWN_COMMAND } };
}

/** What a device did with a command: its result (as a state report says it) and, for config, the new interval. */
export interface AppliedCommand {
  readonly result: CommandResult;
  readonly applied: boolean;
  /** Only for an applied config command: the transport spaces the readings by it. */
  readonly intervalS?: number;
}

/** Acts on a parsed command with the model's actuator; a config command is left to the transport (intervalS). */
export function applyDeviceCommand(sim: SimDevice, command: DeviceCommand): AppliedCommand {
  switch (command.action) {
    case 'actuate': {
      // parseDeviceCommand only asks a model for the actuator it has; null would be a mismatch of the two.
      const state = sim.actuate(command.actuation);
      return state === null ? { result: { error: UNKNOWN_COMMAND }, applied: false } : { result: state, applied: true };
    }
    case 'config':
      return { result: { interval_s: command.intervalS }, applied: true, intervalS: command.intervalS };
    case 'refuse':
      return { result: { error: command.error }, applied: false };
  }
}
