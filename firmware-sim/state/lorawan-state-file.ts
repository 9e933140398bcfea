// The --state file of `firmware-sim lorawan`: each device's frame counters, OTAA session, used DevNonces and
// recent frames, kept from one run to the next as a real device keeps them in its flash, so a second run
// does not restart at FCnt 0 (which the gateway would refuse as replays).
import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { SavedDeviceState } from '../transports/lorawan-device.ts';

const STATE_VERSION = 1;

interface StateFile {
  readonly version: number;
  readonly seed: number;
  /** By DevEUI. */
  readonly devices: Record<string, SavedDeviceState>;
}

/** The saved devices by DevEUI; none when the file does not exist or was written for another seed. */
export function readStateFile(path: string, seed: number): Map<string, SavedDeviceState> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw error;
  }
  const state = JSON.parse(text) as StateFile;
  if (state.version !== STATE_VERSION) throw new Error(`${path}: state file version ${state.version}, expected ${STATE_VERSION}`);
  // Another seed means other devices: their counters say nothing about these.
  if (state.seed !== seed) return new Map();
  return new Map(Object.entries(state.devices));
}

export function writeStateFile(path: string, seed: number, devices: readonly SavedDeviceState[]): void {
  const state: StateFile = { version: STATE_VERSION, seed, devices: Object.fromEntries(devices.map((device) => [device.dev_eui, device])) };
  // Write then rename: a run killed mid-write leaves the previous state, not half a file.
  const temporary = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(state, null, 1)}\n`);
  renameSync(temporary, path);
}
