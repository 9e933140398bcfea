// A software Microchip RN2483/RN2903 in raw radio mode, for tests and `firmware-sim serial`: it answers the
// ASCII commands the gateway's driver (src/ingress/serial-radio/rn2483-radio.ts) sends, one line each,
// ending in \r\n, like the module does: `invalid_param` for unknown commands and bad values, `busy` for
// radio commands before `mac pause` or while the receiver is armed, and `radio_rx  <hex>` only while a
// `radio rx` is armed (after which it is idle again). Like the module, it keeps its state (paused, armed,
// settings) for as long as it has power: closing and reopening the port changes nothing, only reset()
// (a power cycle: the adapter unplugged) does. No I/O here: bytes in via receive(), lines out via the
// write function, so it runs over a pty (serial-radio-sim.ts) or serialport's mock binding alike.
import { createLineSplitter } from '../../src/ingress/serial-radio/line-splitter.ts';

export interface Rn2483EmulatorOptions {
  readonly model?: 'RN2483' | 'RN2903';
  /** Whether `radio get pktrssi` is answered (firmware 1.0.5 and later); default true. */
  readonly pktRssi?: boolean;
  /** Whether `radio rxstop` is known; default true (false: older firmware, it answers invalid_param). */
  readonly rxStop?: boolean;
}

/** How a transmitted packet was heard. */
export interface AirSignal {
  readonly snr: number;
  readonly rssi: number;
}

export interface Rn2483Emulator {
  /** Bytes the gateway wrote to the module. */
  receive(chunk: Buffer): void;
  /** A packet on the air: `radio_rx  <hex>` if the receiver is armed (then it is idle); false when nobody listened. */
  transmit(payload: Uint8Array, signal?: AirSignal): boolean;
  /** A reception that failed (CRC error): `radio_err` if armed; false when not armed. */
  failReception(): boolean;
  /** Writes raw text onto the line as if the module (or line noise) had sent it. */
  inject(text: string): void;
  isArmed(): boolean;
  /** Every command received, in order (for tests and the simulator's report). */
  commands(): readonly string[];
  /** The `radio set` values in effect, e.g. { freq: '868100000', sf: 'sf7' }. */
  settings(): Readonly<Record<string, string>>;
  /** Power cycle: LoRaWAN stack running again, receiver idle, settings back to defaults, reset banner sent. */
  reset(): void;
  /** While true, the LoRaWAN stack is busy (mid-transmission) and `mac pause` answers 0. */
  setMacBusy(busy: boolean): void;
}

const FIRMWARE = '1.0.5 Oct 31 2018 15:06:52';
const PAUSE_MS = '4294967245';
const DEFAULT_SETTINGS: Readonly<Record<string, string>> = {
  mod: 'lora',
  freq: '868100000',
  sf: 'sf12',
  bw: '125',
  cr: '4/5',
  sync: '34',
  crc: 'on',
  iqi: 'off',
  wdt: '15000',
  pwr: '1',
};

type Check = (value: string) => boolean;
const oneOf =
  (...values: string[]): Check =>
  (value) =>
    values.includes(value);
const integerIn =
  (min: number, max: number): Check =>
  (value) =>
    /^\d+$/.test(value) && Number(value) >= min && Number(value) <= max;

function settingChecks(model: 'RN2483' | 'RN2903'): Readonly<Record<string, Check>> {
  const freq: Check =
    model === 'RN2483'
      ? (value) => integerIn(433_050_000, 434_790_000)(value) || integerIn(863_000_000, 870_000_000)(value)
      : integerIn(902_000_000, 928_000_000);
  return {
    mod: oneOf('lora', 'fsk'),
    freq,
    sf: oneOf('sf7', 'sf8', 'sf9', 'sf10', 'sf11', 'sf12'),
    bw: oneOf('125', '250', '500'),
    cr: oneOf('4/5', '4/6', '4/7', '4/8'),
    sync: (value) => /^[0-9A-Fa-f]{1,2}$/.test(value),
    crc: oneOf('on', 'off'),
    iqi: oneOf('on', 'off'),
    wdt: integerIn(0, 4_294_967_295),
    pwr: (value) => /^-?\d+$/.test(value) && Number(value) >= -3 && Number(value) <= 20,
  };
}

/** What the module keeps while it has power. */
interface ModuleState {
  readonly options: Rn2483EmulatorOptions;
  readonly version: string;
  readonly checks: Readonly<Record<string, Check>>;
  paused: boolean;
  armed: boolean;
  macBusy: boolean;
  settings: Record<string, string>;
  lastSignal: AirSignal | null;
}

export function createRn2483Emulator(options: Rn2483EmulatorOptions, write: (text: string) => void): Rn2483Emulator {
  const model = options.model ?? 'RN2483';
  const state: ModuleState = {
    options,
    version: `${model} ${FIRMWARE}`,
    checks: settingChecks(model),
    paused: false,
    armed: false,
    macBusy: false,
    settings: { ...DEFAULT_SETTINGS },
    lastSignal: null,
  };
  const received: string[] = [];
  const send = (line: string): void => write(`${line}\r\n`);
  const splitter = createLineSplitter(1024, {
    onLine(line) {
      if (line === '') return;
      received.push(line);
      send(answer(state, line));
    },
    onOverlong() {
      send('invalid_param');
    },
  });

  return {
    receive: (chunk) => splitter.push(chunk),
    transmit(payload, signal = { snr: 9, rssi: -57 }) {
      if (!state.armed) return false;
      state.armed = false;
      state.lastSignal = signal;
      send(`radio_rx  ${Buffer.from(payload).toString('hex').toUpperCase()}`);
      return true;
    },
    failReception() {
      if (!state.armed) return false;
      state.armed = false;
      send('radio_err');
      return true;
    },
    inject: (text) => write(text),
    isArmed: () => state.armed,
    commands: () => received,
    settings: () => state.settings,
    reset() {
      Object.assign(state, { paused: false, armed: false, settings: { ...DEFAULT_SETTINGS }, lastSignal: null });
      send(state.version);
    },
    setMacBusy(busy) {
      state.macBusy = busy;
    },
  };
}

/** The module's one-line answer to a command, with its effect on the state. */
function answer(state: ModuleState, line: string): string {
  if (line === 'sys get ver') return state.version;
  if (line === 'sys reset') {
    Object.assign(state, { paused: false, armed: false, settings: { ...DEFAULT_SETTINGS } });
    return state.version;
  }
  if (line === 'mac pause') {
    if (state.macBusy) return '0';
    state.paused = true;
    return PAUSE_MS;
  }
  if (line === 'mac resume') {
    state.paused = false;
    return 'ok';
  }
  const [group, verb, name, value, extra] = line.trim().split(/\s+/);
  return group === 'radio' ? answerRadio(state, verb, name, value, extra) : 'invalid_param';
}

function answerRadio(state: ModuleState, verb?: string, name?: string, value?: string, extra?: string): string {
  if (verb === 'rxstop' && name === undefined) {
    if (state.options.rxStop === false) return 'invalid_param';
    state.armed = false;
    return 'ok';
  }
  if (verb === 'rx' && name !== undefined && value === undefined) {
    if (!/^\d+$/.test(name)) return 'invalid_param';
    if (!state.paused || state.armed) return 'busy';
    state.armed = true;
    return 'ok';
  }
  if (verb === 'get' && name !== undefined && value === undefined) {
    if (name === 'snr') return String(state.lastSignal?.snr ?? -128);
    if (name === 'pktrssi') return state.options.pktRssi === false ? 'invalid_param' : String(state.lastSignal?.rssi ?? -128);
    return state.settings[name] ?? 'invalid_param';
  }
  if (verb === 'set' && name !== undefined && value !== undefined && extra === undefined) {
    const check = state.checks[name];
    if (check === undefined || !check(value)) return 'invalid_param';
    if (!state.paused || state.armed) return 'busy';
    state.settings[name] = value;
    return 'ok';
  }
  return 'invalid_param';
}
