// Simulated smart-city devices (electricity and water meters, parking sensors, street lamps) whose
// readings are fully determined by the seed, the device's index, the times they are asked for and the
// commands they were given (a lamp's dimmer, a water meter's valve: `actuate`).
// Transports (mqtt-device.ts and later LoRaWAN, TTN, serial) only carry what these models produce,
// so the same seed gives the same fleet and the same payloads whichever way they travel.

export type DeviceKind = 'electricity-meter' | 'water-meter' | 'parking-sensor' | 'street-lamp';

/** Fields every reading carries: who, which reading of that device, and when it was taken. */
export interface ReadingBase {
  readonly device_id: string;
  readonly kind: DeviceKind;
  /** Per-device sequence number: 1 for the first reading, then +1 per reading. */
  readonly seq: number;
  /** Event time: ISO-8601 (UTC) of the moment the reading was taken. */
  readonly ts: string;
}

export interface ElectricityMeterReading extends ReadingBase {
  readonly kind: 'electricity-meter';
  /** Cumulative register; never decreases. */
  readonly energy_kwh: number;
  readonly voltage_v: number;
  readonly power_w: number;
}

export interface WaterMeterReading extends ReadingBase {
  readonly kind: 'water-meter';
  /** Cumulative register; never decreases. */
  readonly volume_m3: number;
  readonly flow_lpm: number;
  readonly leak: boolean;
}

export interface ParkingSensorReading extends ReadingBase {
  readonly kind: 'parking-sensor';
  readonly occupied: boolean;
  readonly battery_pct: number;
  readonly temperature_c: number;
}

export interface StreetLampReading extends ReadingBase {
  readonly kind: 'street-lamp';
  readonly on: boolean;
  readonly dim_pct: number;
  readonly power_w: number;
  readonly fault: boolean;
}

export type Reading = ElectricityMeterReading | WaterMeterReading | ParkingSensorReading | StreetLampReading;

/** What a command sets on a device (device-commands.ts reads it from the command). */
export type Actuation =
  /** A street lamp's switch and dimmer; without `dimPct`, on comes back at the last level commanded (or 100). */
  | { readonly kind: 'lamp'; readonly on: boolean; readonly dimPct?: number }
  /** A water meter's shut-off valve. */
  | { readonly kind: 'valve'; readonly open: boolean };

/** An actuator's state after a command, as the device reports it (snake_case, like its readings). */
export type ActuatorState = { readonly on: boolean; readonly dim_pct: number } | { readonly valve: 'open' | 'closed' };

export interface SimDevice {
  readonly id: string;
  readonly kind: DeviceKind;
  /** 0-based position in the fleet; the device's random stream depends on it and the seed only. */
  readonly index: number;
  /**
   * Takes the next reading at `nowMs` (ms since epoch; also its `ts`). Cumulative registers
   * integrate over the time since the previous reading, and a clock that goes backwards adds nothing.
   */
  nextReading(nowMs: number): Reading;
  /**
   * Sets the device's actuator as a command from the back office would, and returns its new state; the
   * readings after it show the change. null when the model has no such actuator. Without a call the
   * readings are exactly those of the seed.
   */
  actuate(actuation: Actuation): ActuatorState | null;
}

export interface FleetOptions {
  /** Number of devices (>= 1). */
  readonly devices: number;
  /** Any 32-bit integer; the same seed gives the same fleet and readings. */
  readonly seed: number;
  /** Put before every id (e.g. 'site2-') so several simulators can share one gateway. Default ''. */
  readonly prefix?: string;
}

/** A uniform random number in [0, 1). */
export type Random = () => number;

/** mulberry32: a 32-bit state PRNG, good enough for simulation and tiny (no dependency needed). */
export function createRandom(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// The reference city has >150,000 electricity meters, >30,000 street lamps, water meters (assumed
// ~15,000) and >5,000 parking sensors; the fleet keeps those proportions.
const KIND_WEIGHTS: readonly (readonly [DeviceKind, number])[] = [
  ['electricity-meter', 150],
  ['street-lamp', 30],
  ['water-meter', 15],
  ['parking-sensor', 5],
];

const ID_CODES: Readonly<Record<DeviceKind, string>> = {
  'electricity-meter': 'em',
  'water-meter': 'wm',
  'parking-sensor': 'ps',
  'street-lamp': 'sl',
};

const HOUR_MS = 3_600_000;

/** Builds `devices` devices with ids like `em-000001`, `sl-000002`; index and seed fix everything. */
export function createFleet(options: FleetOptions): SimDevice[] {
  const { devices, seed } = options;
  const prefix = options.prefix ?? '';
  if (!Number.isInteger(devices) || devices < 1) {
    throw new RangeError(`createFleet: devices must be an integer >= 1, got ${devices}`);
  }
  const kinds = kindSequence(devices);
  const fleet: SimDevice[] = [];
  for (let index = 0; index < devices; index++) {
    const kind = kinds[index] ?? 'electricity-meter';
    const id = `${prefix}${ID_CODES[kind]}-${String(index + 1).padStart(6, '0')}`;
    // Each device gets its own stream, so device 7 reads the same in a fleet of 10 or 100,000.
    const random = createRandom(mixSeed(seed, index));
    fleet.push(createDevice(kind, id, index, random));
  }
  return fleet;
}

/**
 * Assigns kinds by smooth weighted round-robin, so any slice of the fleet has the city's proportions.
 * The first four devices are one of each kind, so even a tiny demo fleet shows every model.
 */
function kindSequence(count: number): DeviceKind[] {
  const result: DeviceKind[] = [];
  for (const [kind] of KIND_WEIGHTS) {
    if (result.length < count) result.push(kind);
  }
  const total = KIND_WEIGHTS.reduce((sum, [, weight]) => sum + weight, 0);
  const current = KIND_WEIGHTS.map(() => 0);
  while (result.length < count) {
    let best = 0;
    for (let i = 0; i < KIND_WEIGHTS.length; i++) {
      current[i] = (current[i] ?? 0) + (KIND_WEIGHTS[i]?.[1] ?? 0);
      if ((current[i] ?? 0) > (current[best] ?? 0)) best = i;
    }
    current[best] = (current[best] ?? 0) - total;
    result.push(KIND_WEIGHTS[best]?.[0] ?? 'electricity-meter');
  }
  return result;
}

/** A murmur3-style finaliser over (seed, index): neighbouring devices get unrelated streams. */
function mixSeed(seed: number, index: number): number {
  let h = (seed ^ Math.imul(index + 1, 0x9e3779b9)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function createDevice(kind: DeviceKind, id: string, index: number, random: Random): SimDevice {
  switch (kind) {
    case 'electricity-meter':
      return createElectricityMeter(id, index, random);
    case 'water-meter':
      return createWaterMeter(id, index, random);
    case 'parking-sensor':
      return createParkingSensor(id, index, random);
    case 'street-lamp':
      return createStreetLamp(id, index, random);
  }
}

// A fleet takes many readings in the same millisecond; formatting the time once per ms saves a
// Date and a toISOString per reading, a visible share of the cost at 20,000 readings per second.
let cachedTimeMs = Number.NaN;
let cachedTime = '';
function isoTime(ms: number): string {
  if (ms !== cachedTimeMs) {
    cachedTimeMs = ms;
    cachedTime = new Date(ms).toISOString();
  }
  return cachedTime;
}

function round(value: number, decimals: number): number {
  const factor = 10 ** decimals;
  return Math.round(value * factor) / factor;
}

/** Roughly normal (sum of three uniforms), mean 0, spread about +-1.5. */
function noise(random: Random): number {
  return random() + random() + random() - 1.5;
}

/** Hours elapsed since the previous reading; 0 for the first one and when the clock went backwards. */
function createElapsed(): (nowMs: number) => number {
  let lastMs: number | undefined;
  return (nowMs) => {
    const hours = lastMs === undefined ? 0 : Math.max(0, nowMs - lastMs) / HOUR_MS;
    if (lastMs === undefined || nowMs > lastMs) lastMs = nowMs;
    return hours;
  };
}

function createElectricityMeter(id: string, index: number, random: Random): SimDevice {
  const elapsedHours = createElapsed();
  let seq = 0;
  let energyKwh = 1_000 + random() * 49_000;
  // A household draws a few hundred watts to a few kilowatts; the load drifts between readings.
  const basePowerW = 200 + random() * 2_800;
  let powerW = basePowerW;
  return {
    id,
    kind: 'electricity-meter',
    index,
    actuate: () => null,
    nextReading(nowMs) {
      seq += 1;
      energyKwh += (powerW * elapsedHours(nowMs)) / 1_000;
      powerW = Math.min(basePowerW * 3, Math.max(0, powerW + noise(random) * 0.1 * basePowerW));
      return {
        device_id: id,
        kind: 'electricity-meter',
        seq,
        ts: isoTime(nowMs),
        // Rounding down keeps the register monotonic even after rounding.
        energy_kwh: Math.floor(energyKwh * 1_000) / 1_000,
        voltage_v: round(230 + noise(random) * 4, 1),
        power_w: round(powerW, 1),
      };
    },
  };
}

function createWaterMeter(id: string, index: number, random: Random): SimDevice {
  const elapsedHours = createElapsed();
  let seq = 0;
  let volumeM3 = 50 + random() * 2_000;
  let flowLpm = 0;
  let leak = false;
  let valveOpen = true;
  return {
    id,
    kind: 'water-meter',
    index,
    actuate(actuation) {
      if (actuation.kind !== 'valve') return null;
      valveOpen = actuation.open;
      return { valve: valveOpen ? 'open' : 'closed' };
    },
    nextReading(nowMs) {
      seq += 1;
      volumeM3 += (flowLpm * 60 * elapsedHours(nowMs)) / 1_000;
      // A leak is rare and lasts a while: it starts with p=0.002 and ends with p=0.05 per reading.
      leak = leak ? random() >= 0.05 : random() < 0.002;
      const inUse = random() < 0.3;
      flowLpm = (inUse ? 2 + random() * 13 : 0) + (leak ? 0.5 + random() : 0);
      // A closed valve stops all flow, a leak's too; the random stream goes on as if it were open, so after
      // reopening the flow and leak are again the seed's (the register has missed what did not flow).
      if (!valveOpen) flowLpm = 0;
      return {
        device_id: id,
        kind: 'water-meter',
        seq,
        ts: isoTime(nowMs),
        volume_m3: Math.floor(volumeM3 * 1_000) / 1_000,
        flow_lpm: round(flowLpm, 2),
        leak: leak && valveOpen,
      };
    },
  };
}

function createParkingSensor(id: string, index: number, random: Random): SimDevice {
  let seq = 0;
  let occupied = random() < 0.5;
  let batteryPct = 60 + random() * 40;
  let temperatureC = 5 + random() * 20;
  return {
    id,
    kind: 'parking-sensor',
    index,
    actuate: () => null,
    nextReading(nowMs) {
      seq += 1;
      if (random() < 0.1) occupied = !occupied;
      batteryPct = Math.max(0, batteryPct - random() * 0.02);
      temperatureC = Math.min(45, Math.max(-20, temperatureC + noise(random) * 0.3));
      return {
        device_id: id,
        kind: 'parking-sensor',
        seq,
        ts: isoTime(nowMs),
        occupied,
        battery_pct: round(batteryPct, 1),
        temperature_c: round(temperatureC, 1),
      };
    },
  };
}

function createStreetLamp(id: string, index: number, random: Random): SimDevice {
  let seq = 0;
  const ratedPowerW = 40 + Math.floor(random() * 111);
  // Lamps switch within half an hour of 18:00 and 06:00 (UTC of the reading time), not all at once.
  const switchOffsetHours = random() * 0.5;
  let fault = false;
  // A command overrides the dusk-to-dawn schedule until the next command, as a manual override does.
  let manual: { on: boolean; dimPct: number } | undefined;
  let lastLevel = 100;
  return {
    id,
    kind: 'street-lamp',
    index,
    actuate(actuation) {
      if (actuation.kind !== 'lamp') return null;
      // Level 0 is off, as on a DALI dimmer; `on` comes back at the last level asked for.
      const level = actuation.on ? (actuation.dimPct ?? lastLevel) : 0;
      if (level > 0) lastLevel = level;
      manual = { on: level > 0, dimPct: level };
      return { on: manual.on, dim_pct: manual.dimPct };
    },
    nextReading(nowMs) {
      seq += 1;
      const hour = (((nowMs / HOUR_MS - switchOffsetHours) % 24) + 24) % 24;
      const on = manual?.on ?? (hour >= 18 || hour < 6);
      // Dimmed to half between midnight and 05:00 to save energy, as many cities do.
      const dimPct = manual?.dimPct ?? (on ? (hour < 5 ? 50 : 100) : 0);
      fault = fault ? random() >= 0.01 : random() < 0.0005;
      const powerW = on && !fault ? (ratedPowerW * dimPct) / 100 + noise(random) : 0;
      return {
        device_id: id,
        kind: 'street-lamp',
        seq,
        ts: isoTime(nowMs),
        on,
        dim_pct: dimPct,
        power_w: round(Math.max(0, powerW), 1),
        fault,
      };
    },
  };
}
