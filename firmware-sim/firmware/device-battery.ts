// The battery level a simulated device reports in its DevStatusAns (LoRaWAN 1.0.4 §5.5: 0 external power,
// 1..254 from empty to full, 255 not measurable). Street lamps and electricity meters run on the mains; a parking
// sensor reports the battery its readings show; a water meter's battery runs down slowly with every uplink.
import type { DeviceKind, Reading } from '../fleet.ts';

/** DevStatusAns battery: external power. */
const EXTERNAL_POWER = 0;
const FULL = 254;
/** A water meter loses one step of 254 every this many uplinks. */
const UPLINKS_PER_STEP = 50;

export interface DeviceBattery {
  /** The level for a DevStatusAns now: after `uplinks` uplinks, with the device's latest reading (if any). */
  level(uplinks: number, latest: Reading | null): number;
}

/** `startLevel` (1..254) is where a water meter's battery stands at the start of the run. */
export function createDeviceBattery(kind: DeviceKind, startLevel: number): DeviceBattery {
  return {
    level(uplinks, latest) {
      if (kind === 'street-lamp' || kind === 'electricity-meter') return EXTERNAL_POWER;
      if (latest?.kind === 'parking-sensor') return 1 + Math.round((Math.max(0, Math.min(100, latest.battery_pct)) / 100) * (FULL - 1));
      return Math.max(1, Math.min(FULL, startLevel) - Math.floor(uplinks / UPLINKS_PER_STEP));
    },
  };
}
