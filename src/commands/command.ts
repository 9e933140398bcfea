// A command on its way to a device: what the intake made of a Kafka message, as kept in the buffer's state
// table (scope COMMAND_SCOPE, one row per command id) until it is delivered, expires, fails or is cancelled.

/** queued: not sent yet; sent: handed to the device's path, waiting for its acknowledgement. */
export type CommandState = 'queued' | 'sent';

export interface Command {
  /** The command-id header or field: unique per command, the receipts' correlation key. */
  readonly id: string;
  readonly deviceId: string;
  /** What the command is (dim, close, config): a level of the MQTT topic. */
  readonly name: string;
  readonly payload: Buffer;
  /** The payload was an object or array, kept as its JSON text (see ParsedCommand.structured). */
  readonly structured: boolean;
  /** LoRaWAN FPort; null when the command did not name one. */
  readonly fport: number | null;
  readonly confirmed: boolean;
  readonly acceptedAtMs: number;
  readonly expiresAtMs: number;
  /** Intake order over all devices: a device's commands go out in this order. */
  readonly seq: number;
  readonly state: CommandState;
  /** Times it was handed to the device's path. */
  readonly attempts: number;
}

/** State scope of the waiting commands (key: command id, value: encodeCommand). */
export const COMMAND_SCOPE = 'command';
/** State scope of finished command ids (value: when it finished, ms): a redelivered Kafka message is not sent twice. */
export const COMMAND_DONE_SCOPE = 'command-done';

interface StoredCommand {
  readonly device: string;
  readonly name: string;
  readonly payload: string;
  readonly structured?: boolean;
  readonly fport: number | null;
  readonly confirmed: boolean;
  readonly accepted: number;
  readonly expires: number;
  readonly seq: number;
  readonly state: CommandState;
  readonly attempts: number;
}

export function encodeCommand(command: Command): string {
  const stored: StoredCommand = {
    device: command.deviceId,
    name: command.name,
    payload: command.payload.toString('base64'),
    ...(command.structured ? { structured: true } : {}),
    fport: command.fport,
    confirmed: command.confirmed,
    accepted: command.acceptedAtMs,
    expires: command.expiresAtMs,
    seq: command.seq,
    state: command.state,
    attempts: command.attempts,
  };
  return JSON.stringify(stored);
}

/** A stored row back to a Command; null for a row this version cannot read (it is then dropped, logged). */
export function decodeCommand(id: string, text: string): Command | null {
  try {
    const stored = JSON.parse(text) as Partial<StoredCommand>;
    if (typeof stored.device !== 'string' || typeof stored.payload !== 'string' || typeof stored.seq !== 'number') return null;
    return {
      id,
      deviceId: stored.device,
      name: typeof stored.name === 'string' ? stored.name : 'command',
      payload: Buffer.from(stored.payload, 'base64'),
      structured: stored.structured === true,
      fport: typeof stored.fport === 'number' ? stored.fport : null,
      confirmed: stored.confirmed === true,
      acceptedAtMs: typeof stored.accepted === 'number' ? stored.accepted : 0,
      expiresAtMs: typeof stored.expires === 'number' ? stored.expires : 0,
      seq: stored.seq,
      state: stored.state === 'sent' ? 'sent' : 'queued',
      attempts: typeof stored.attempts === 'number' ? stored.attempts : 0,
    };
  } catch {
    return null;
  }
}

const DEV_EUI = /^[0-9A-Fa-f]{16}$/;

/**
 * The key a device's commands are kept and served under: a DevEUI (16 hex digits) in lower case, as LoRaWAN
 * records are keyed, whatever case the command used; any other id as it is (MQTT client ids are case-sensitive).
 * The command keeps the id it came with, for its receipts and its MQTT topic.
 */
export function deviceKey(deviceId: string): string {
  return DEV_EUI.test(deviceId) ? deviceId.toLowerCase() : deviceId;
}
