// firmware-sim serial: an RN2483 radio on a pseudo-terminal, for trying the gateway's serial ingress without
// hardware. socat makes a pty pair with stable links (gateway side, simulator side); the emulator
// (transports/rn2483-emulator.ts) answers the gateway's commands on the simulator side, and "the air" puts
// frames on it: LoRaWAN uplinks of ABP devices (real crypto, transports/lorawan-device.ts; their keys in
// lorawanDevicesConfig form for lorawan.devices) and point-to-point frames of raw nodes, plus optional
// garbage lines. A frame goes on air only while the gateway's receiver is armed, as a real radio hears
// only then; `unplug()` kills socat (the gateway's port disappears) and `replug()` brings the same links
// back with a power-cycled module.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { SerialPort } from 'serialport';
import { createFleet, type SimDevice } from './fleet.ts';
import { type LorawanDeviceConfigEntry, lorawanDevicesConfig } from './lorawan-fleet.ts';
import { type AirSignal, createRn2483Emulator, type Rn2483Emulator } from './transports/rn2483-emulator.ts';
import { encodeReading } from './reading-payload.ts';
import { createSimLorawanDevice, deriveIdentity, type FleetCodec, type LorawanIdentity, type SimLorawanDevice } from './transports/lorawan-device.ts';

export interface SerialRadioSimOptions {
  /** The pty link the gateway opens (serial.path). */
  readonly gatewayLink: string;
  /** The pty link the emulator uses. */
  readonly simLink: string;
  /** LoRaWAN ABP devices (0 = none). */
  readonly devices: number;
  /** Point-to-point nodes sending raw frames (0 = none). */
  readonly rawNodes: number;
  readonly codec?: FleetCodec;
  readonly seed: number;
  /** How long a frame waits for the gateway's receiver to be armed before it counts as missed. Default 10 s. */
  readonly armedTimeoutMs?: number;
  readonly socatPath?: string;
}

/** One frame put on air. */
export interface SerialSentFrame {
  readonly kind: 'lorawan' | 'raw';
  /** Kafka key the gateway should give it: DevEUI or the raw node's key (node-xxxx). */
  readonly key: string;
  readonly payloadHex: string;
  /** LoRaWAN: FCntUp, the plaintext and (Cayenne LPP devices) the decoded payload. Raw: the frame's sequence number. */
  readonly fcnt?: number;
  readonly plaintextHex?: string;
  readonly decoded?: Record<string, unknown>;
  readonly seq?: number;
}

export interface SerialRadioSimReport {
  readonly sent: readonly SerialSentFrame[];
  /** Frames not sent: the receiver was not armed in time (gateway not connected or not configured). */
  readonly missed: number;
  readonly garbageLines: number;
  /** Times the module was (re)initialised by the gateway (`mac pause` seen). */
  readonly inits: number;
}

export interface SerialRadioSim {
  /** Starts socat and the emulator; resolves when both links exist. */
  start(): Promise<void>;
  /** One round: every LoRaWAN device and raw node sends one frame; garbage lines in between when asked. */
  round(options?: { readonly garbage?: number }): Promise<void>;
  /** Kills socat: the gateway's side of the pty disappears, like a pulled USB adapter. */
  unplug(): Promise<void>;
  /** socat again with the same links, and a power-cycled module. */
  replug(): Promise<void>;
  /** Whether the gateway has armed the receiver (it opened the port and ran its init sequence). */
  isArmed(): boolean;
  emulator(): Rn2483Emulator | null;
  report(): SerialRadioSimReport;
  /** The devices for the gateway's lorawan.devices (ABP). */
  devicesConfig(): readonly LorawanDeviceConfigEntry[];
  stop(): Promise<void>;
}

/** Raw node ids: 0x0a01, 0x0a02, ... (first byte 0x0a, never a LoRaWAN data MHDR). */
export function rawNodeKey(index: number, prefix = 'node-'): string {
  return `${prefix}${(0x0a00 + index + 1).toString(16).padStart(4, '0')}`;
}

/**
 * A raw node's frame: node id u16 | seq u16 | temperature °C/10 s16 | battery % u8 (big-endian). With the
 * gateway's default rule (key_offset 0, key_length 2) the key is node-0a01.
 */
export function encodeRawFrame(index: number, seq: number, temperatureDeciC: number, batteryPercent: number): Buffer {
  const frame = Buffer.alloc(7);
  frame.writeUInt16BE(0x0a00 + index + 1, 0);
  frame.writeUInt16BE(seq & 0xffff, 2);
  frame.writeInt16BE(temperatureDeciC, 4);
  frame.writeUInt8(batteryPercent, 6);
  return frame;
}

const GARBAGE: readonly string[] = ['\u0000\u00ff\u00fe\u0013 line noise\r\n', 'RN2483 ???\r\n', 'radio_tx_ok\r\n', `${'#'.repeat(3000)}\r\n`];

/** What one simulated radio holds while it runs; the functions below move it. */
interface RadioState {
  readonly options: SerialRadioSimOptions;
  readonly sent: SerialSentFrame[];
  missed: number;
  garbageLines: number;
  /** Inits seen by modules already detached (unplugged). */
  inits: number;
  socat: ChildProcess | null;
  port: SerialPort | null;
  emulator: Rn2483Emulator | null;
  stopped: boolean;
  signalStep: number;
}

interface RadioDevice {
  readonly model: SimDevice;
  readonly identity: LorawanIdentity;
  readonly device: SimLorawanDevice;
}

export function createSerialRadioSim(options: SerialRadioSimOptions): SerialRadioSim {
  const codec = options.codec ?? 'mixed';
  const models = createFleet({ devices: Math.max(1, options.devices), seed: options.seed }).slice(0, options.devices);
  const devices: RadioDevice[] = models.map((model, index) => {
    const identity = deriveIdentity(options.seed, index, model.id, model.kind, false, codec);
    return { model, identity, device: createSimLorawanDevice(identity) };
  });
  const config = options.devices === 0 ? [] : lorawanDevicesConfig({ devices: options.devices, otaaShare: 0, codec, seed: options.seed });
  const rawSeq = new Array<number>(options.rawNodes).fill(0);
  const state: RadioState = { options, sent: [], missed: 0, garbageLines: 0, inits: 0, socat: null, port: null, emulator: null, stopped: false, signalStep: 0 };
  const plug = async (): Promise<void> => {
    state.socat = await startSocat(options);
    Object.assign(state, await attachModule(options.simLink));
  };

  return {
    start: plug,
    async round(roundOptions = {}) {
      for (const device of devices) await sendUplink(state, device);
      for (let index = 0; index < options.rawNodes; index += 1) {
        const seq = (rawSeq[index] ?? 0) + 1;
        rawSeq[index] = seq;
        const frame = encodeRawFrame(index, seq, 180 + ((index * 7 + seq) % 60), 100 - (seq % 50));
        if (await transmit(state, frame)) state.sent.push({ kind: 'raw', key: rawNodeKey(index), payloadHex: frame.toString('hex'), seq });
      }
      for (let line = 0; line < (roundOptions.garbage ?? 0); line += 1) {
        state.emulator?.inject(GARBAGE[line % GARBAGE.length] as string);
        state.garbageLines += 1;
      }
    },
    unplug: async () => {
      await stopSocat(state);
      await detach(state);
    },
    replug: plug,
    isArmed: () => state.emulator?.isArmed() ?? false,
    emulator: () => state.emulator,
    report: () => ({ sent: [...state.sent], missed: state.missed, garbageLines: state.garbageLines, inits: state.inits + initsOf(state.emulator) }),
    devicesConfig: () => config,
    async stop() {
      state.stopped = true;
      await detach(state);
      await stopSocat(state);
    },
  };
}

/** socat with a pty pair at the two links; resolves once both exist. */
async function startSocat(options: SerialRadioSimOptions): Promise<ChildProcess> {
  const child = spawn(options.socatPath ?? 'socat', [`pty,raw,echo=0,link=${options.gatewayLink}`, `pty,raw,echo=0,link=${options.simLink}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('error', (error) => {
    stderr += String(error);
  });
  const deadline = Date.now() + 5_000;
  while (!(existsSync(options.gatewayLink) && existsSync(options.simLink))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      await exited;
      throw new Error(`socat did not create ${options.gatewayLink} and ${options.simLink}: ${stderr.trim() || 'no output'} (is socat installed?)`);
    }
    await sleep(20);
  }
  return child;
}

async function stopSocat(state: RadioState): Promise<void> {
  const child = state.socat;
  state.socat = null;
  if (child === null || child.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await exited;
}

/** Opens the simulator's side of the pty and puts a freshly powered module behind it. */
async function attachModule(simLink: string): Promise<{ port: SerialPort; emulator: Rn2483Emulator }> {
  const port = new SerialPort({ path: simLink, baudRate: 57_600, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((error) => (error === null ? resolve() : reject(error))));
  // The pty closes under us on unplug: that is expected, not an error to throw.
  port.on('error', () => undefined);
  const emulator = createRn2483Emulator({}, (text) => {
    if (port.isOpen) port.write(text);
  });
  port.on('data', (chunk: Buffer) => emulator.receive(chunk));
  return { port, emulator };
}

async function detach(state: RadioState): Promise<void> {
  const open = state.port;
  state.port = null;
  state.inits += initsOf(state.emulator);
  state.emulator = null;
  if (open?.isOpen === true) await new Promise<void>((resolve) => open.close(() => resolve()));
}

function initsOf(module: Rn2483Emulator | null): number {
  return module?.commands().filter((command) => command === 'mac pause').length ?? 0;
}

async function sendUplink(state: RadioState, { model, identity, device }: RadioDevice): Promise<void> {
  const encoded = encodeReading(model.nextReading(Date.now()), identity.codec);
  const built = device.uplink(encoded.payload, identity.fport, false);
  if (!(await transmit(state, built.phy))) return;
  state.sent.push({
    kind: 'lorawan',
    key: identity.devEui,
    payloadHex: built.phy.toString('hex'),
    fcnt: built.fcnt,
    plaintextHex: encoded.payload.toString('hex'),
    ...(encoded.decoded === undefined ? {} : { decoded: encoded.decoded }),
  });
}

/** Waits until the gateway's receiver is armed, then puts the frame on air; false if it never was. */
async function transmit(state: RadioState, payload: Buffer): Promise<boolean> {
  const deadline = Date.now() + (state.options.armedTimeoutMs ?? 10_000);
  while (!state.stopped) {
    // Signal quality varies a little from frame to frame, deterministically.
    state.signalStep += 1;
    const signal: AirSignal = { snr: 9 - (state.signalStep % 12), rssi: -60 - (state.signalStep % 40) };
    if (state.emulator?.transmit(payload, signal) === true) return true;
    if (Date.now() > deadline) break;
    await sleep(5);
  }
  state.missed += 1;
  return false;
}
