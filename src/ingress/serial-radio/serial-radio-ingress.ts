// LoRa frames from a Microchip RN2483/RN2903 on a serial port: opens the port (serialport), runs the radio
// driver (rn2483-radio.ts) and routes each frame by serial.frames: LoRaWAN uplinks to the shared LoRaWAN
// network (MIC, counters, decryption, dedup there; receive-only, no downlinks from here), point-to-point
// frames of other sensors to records keyed by a byte rule (raw-frame.ts).
// A USB adapter gets unplugged, a module hangs: every loss (port closed or disconnected, an open that fails,
// a command without an answer) closes the port and reopens it with backoff (1 s doubling to
// reopen_max_delay_ms), forever; the state is logged once per change, exported as metrics and as health.
// A missing adapter at boot does not stop the gateway: start() reports down and keeps retrying.
// The read path does not see every loss: a pty whose other end closed can read 0 bytes forever inside
// serialport's bindings (seen under load, about 1 unplug in 12), so while a port is open its device node is
// looked at every presence_check interval, and one that is gone or replaced is a loss like any other.
import { stat } from 'node:fs/promises';
import type { Duplex } from 'node:stream';
import { createRetrySchedule } from '../../shared/retry-schedule.ts';
import type { Component, HealthReport } from '../../core/lifecycle.ts';
import { createOnceLogger } from '../../core/log.ts';
import type { RecordSource } from '../../record/record.ts';
import { createInFlight } from '../in-flight.ts';
import type { IngressDeps } from '../ingress.ts';
import type { LorawanNetwork } from '../lorawan-server/lorawan-network.ts';
import type { PayloadCodec } from '../../codecs/payload-codec.ts';
import type { Reception } from '../lorawan-server/reception.ts';
import { createRejections } from '../rejections.ts';
import { buildRawRecord, type RawFrameRule } from './raw-frame.ts';
import { createRn2483Radio, type RadioError, type RadioFrame, type RadioSettings, type Rn2483Radio } from './rn2483-radio.ts';

/** What a port stream must offer: serialport's SerialPort, or SerialPortMock in tests. */
export type SerialPortStream = Duplex & {
  open(callback: (error: Error | null) => void): void;
  close(callback?: (error: Error | null) => void): void;
  readonly isOpen: boolean;
};

export type SerialFrames = 'lorawan' | 'raw' | 'mixed';

export interface SerialRadioIngressOptions {
  readonly path: string;
  readonly baudRate: number;
  /** 16 lower-case hex digits: the gatewayEui of LoRaWAN receptions. */
  readonly radioId: string;
  readonly radio: RadioSettings;
  readonly frames: SerialFrames;
  readonly raw: RawFrameRule & { readonly stream: string };
  readonly commandTimeoutMs: number;
  readonly reopenInitialMs: number;
  readonly reopenMaxMs: number;
  readonly rejectLogIntervalMs: number;
  /** How often an open port's device node is checked for (see the header). */
  readonly presenceCheckMs: number;
}

export interface SerialRadioIngressDeps extends IngressDeps {
  /** Null when lorawan.enabled is false (then frames must be 'raw'). */
  readonly lorawanNetwork: Pick<LorawanNetwork, 'receive' | 'claims'> | null;
  readonly rawCodec: PayloadCodec;
  /** Creates the (unopened) port; default serialport's SerialPort with the system bindings. */
  readonly createPort?: (path: string, baudRate: number) => SerialPortStream | Promise<SerialPortStream>;
  /** The identity of the device node at `path` (changes when it is replaced), null when it is gone. */
  readonly deviceIdentity?: (path: string) => Promise<string | null>;
}

export type SerialPortState = 'stopped' | 'opening' | 'open' | 'reopening';

export interface SerialRadioIngress extends Component {
  state(): SerialPortState;
}

const SOURCE: RecordSource = 'serial-radio';
/**
 * RSSI of a LoRaWAN reception when the firmware has no `radio get pktrssi` (RN2483 before 1.0.5): the
 * Reception needs a number, and 0 dBm is no real LoRa reception level, so consumers can tell it apart.
 */
export const RSSI_NOT_MEASURED = 0;
/** What to check, by how the port failed (errno of the open). */
const HINTS: Readonly<Record<string, string>> = {
  ENOENT: 'is the adapter plugged in (ls -l /dev/serial/by-id/), and is serial.path right?',
  EACCES: 'is the iotgw user in the dialout group (sudo usermod -aG dialout iotgw)?',
  EBUSY: 'is another program (a serial console, ModemManager, screen) holding the port?',
};
const DEFAULT_HINT = 'is the adapter plugged in? is the user in the dialout group? is serial.baud_rate 57600?';

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code;
  const message = error instanceof Error ? error.message : String(error);
  return /\b(ENOENT|EACCES|EBUSY|ENXIO|EIO)\b/.exec(message)?.[1] ?? (/No such file|does not exist/i.test(message) ? 'ENOENT' : undefined);
}

function hintFor(error: unknown): string {
  const code = errorCode(error);
  return (code === undefined ? undefined : HINTS[code]) ?? DEFAULT_HINT;
}

/** dev:ino:rdev of the node (a re-plugged adapter or a new pty gets a new one), null when it is gone. */
export async function deviceNodeIdentity(path: string): Promise<string | null> {
  try {
    const node = await stat(path);
    return `${node.dev}:${node.ino}:${node.rdev}`;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    // Only absence is a loss: an unreadable node (EACCES on a parent) says nothing about the adapter.
    return code === 'ENOENT' || code === 'ENOTDIR' ? null : 'unknown';
  }
}

function datr(settings: RadioSettings): string {
  return `SF${settings.spreadingFactor}BW${settings.bandwidthKhz}`;
}

/**
 * serialport with the system bindings, loaded at the first open: a gateway without a serial radio does not
 * carry its native bindings and streams in memory (about 14 MB).
 */
async function systemPort(path: string, baudRate: number): Promise<SerialPortStream> {
  const { SerialPort } = await import('serialport');
  return new SerialPort({ path, baudRate, autoOpen: false });
}

export function createSerialRadioIngress(options: SerialRadioIngressOptions, deps: SerialRadioIngressDeps): SerialRadioIngress {
  const log = deps.log.child({ component: 'ingress.serial-radio', path: options.path });
  const { metrics } = deps;
  const createPort = deps.createPort ?? systemPort;
  const deviceIdentity = deps.deviceIdentity ?? deviceNodeIdentity;
  if (options.frames !== 'raw' && deps.lorawanNetwork === null) {
    throw new Error(`serial.frames is ${options.frames}, but the LoRaWAN server is off: set lorawan.enabled: true, or serial.frames: raw`);
  }

  let state: SerialPortState = 'stopped';
  let stopping = true;
  /** Each open attempt is a session; events of an older one are ignored. */
  let session = 0;
  let port: SerialPortStream | null = null;
  let radio: Rn2483Radio | null = null;
  let presenceTimer: NodeJS.Timeout | null = null;
  const retries = createRetrySchedule({ initialMs: options.reopenInitialMs, maxMs: options.reopenMaxMs }, () => void attempt());
  let everOpen = false;
  let lastProblem = 'not opened yet';
  /** One for the ingress's lifetime, shared with every driver, so a reopen does not log each reason again. */
  const logOnce = createOnceLogger(options.rejectLogIntervalMs, undefined, deps.logBudget === undefined ? {} : { budget: deps.logBudget });
  const rejections = createRejections({ source: SOURCE, what: 'serial radio frame', intervalMs: options.rejectLogIntervalMs }, { ...deps, log });
  /** Commits stop() waits for. */
  const inFlight = createInFlight((error) => internalError(error, 'storing a frame'));

  function setState(next: SerialPortState, message: string, fields: Record<string, unknown> = {}, level: 'info' | 'warn' = 'info'): void {
    metrics.serialPortOpen.set({ path: options.path }, next === 'open' ? 1 : 0);
    if (next === state) return;
    state = next;
    log[level]({ state: next, ...fields }, message);
  }

  /** A frame that failed in a way nobody handled (a bug): logged and counted, never an unhandled rejection. */
  function internalError(error: unknown, what: string): void {
    rejections.reject('internal-error', `${what} failed unexpectedly (a bug); the frame was not stored`, {
      logKey: `internal:${what}`,
      level: 'error',
      fields: { err: error },
    });
  }

  function toLorawan(frame: RadioFrame): void {
    const reception: Reception = {
      gatewayEui: options.radioId,
      timestampUs: null,
      gatewayTime: null,
      frequencyHz: options.radio.frequencyHz,
      datr: datr(options.radio),
      codingRate: options.radio.codingRate,
      rssi: frame.rssi ?? RSSI_NOT_MEASURED,
      signalRssi: null,
      snr: frame.snr,
      channel: null,
      rfChain: null,
      receivedAtMs: frame.receivedAtMs,
    };
    metrics.serialRadioFrames.inc({ kind: 'lorawan' });
    deps.lorawanNetwork?.receive(frame.payload, reception, SOURCE);
  }

  function toRaw(frame: RadioFrame): void {
    const built = buildRawRecord(frame, options.raw, {
      source: SOURCE,
      stream: options.raw.stream,
      radioId: options.radioId,
      radio: options.radio,
      codec: deps.rawCodec,
    });
    if (!built.ok) {
      rejections.reject(built.reason, built.message);
      return;
    }
    metrics.serialRadioFrames.inc({ kind: 'raw' });
    // Nothing to acknowledge over the air: a refused commit is counted, and the frame is gone.
    inFlight.track(
      deps.accept([built.record]).then((result) => {
        if (!result.ok) rejections.reject(result.reason, `frame of ${built.record.key} not stored: ${result.message}`);
      }),
    );
  }

  function onFrame(frame: RadioFrame): void {
    if (stopping) {
      rejections.reject('shutting-down', 'frame heard while stopping', { level: 'none' });
      return;
    }
    try {
      const network = deps.lorawanNetwork;
      if (options.frames === 'lorawan' || (options.frames === 'mixed' && network !== null && network.claims(frame.payload))) toLorawan(frame);
      else toRaw(frame);
    } catch (error) {
      internalError(error, 'handling a frame');
    }
  }

  function scheduleRetry(): void {
    if (stopping) return;
    const next = retries.failed();
    if (next !== null) log.debug(next, 'serial radio: next open attempt scheduled');
  }

  /** Ends the session `id` (if still current): radio stopped, port closed, retry scheduled. */
  function lose(id: number, problem: string, hint: string, error?: unknown): void {
    if (id !== session || stopping) return;
    session += 1;
    stopPresenceCheck();
    radio?.detach();
    radio = null;
    const lost = port;
    port = null;
    if (lost?.isOpen) lost.close(() => undefined);
    lost?.removeAllListeners('data');
    lastProblem = problem;
    setState('reopening', `serial radio ${options.path}: ${problem}; reopening with backoff (${hint})`, error === undefined ? {} : { err: error }, 'warn');
    scheduleRetry();
  }

  function stopPresenceCheck(): void {
    if (presenceTimer !== null) clearInterval(presenceTimer);
    presenceTimer = null;
  }

  /** Watches the node opened by session `id`: gone or replaced ends the session. */
  function startPresenceCheck(id: number, opened: string | null): void {
    stopPresenceCheck();
    let checking = false;
    presenceTimer = setInterval(() => {
      if (checking) return;
      checking = true;
      void deviceIdentity(options.path)
        .then((now) => {
          if (now === opened) return;
          lose(
            id,
            now === null ? `${options.path} disappeared` : `${options.path} was replaced by another device`,
            'is the adapter plugged in? check dmesg for USB resets',
          );
        })
        .catch((error: unknown) => internalError(error, 'checking the port'))
        .finally(() => {
          checking = false;
        });
    }, options.presenceCheckMs);
    presenceTimer.unref();
  }

  async function attempt(): Promise<void> {
    if (stopping) return;
    session += 1;
    const id = session;
    let opened: SerialPortStream;
    let identity: string | null;
    try {
      opened = await createPort(options.path, options.baudRate);
      await new Promise<void>((resolve, reject) => opened.open((error) => (error === null ? resolve() : reject(error))));
      identity = await deviceIdentity(options.path);
    } catch (error) {
      if (id !== session || stopping) return;
      const message = error instanceof Error ? error.message : String(error);
      lose(id, `cannot open the port (${message})`, hintFor(error));
      return;
    }
    if (id !== session || stopping) {
      opened.close(() => undefined);
      return;
    }
    port = opened;
    if (identity === null) {
      lose(id, `${options.path} disappeared right after opening`, 'is the adapter plugged in? check dmesg for USB resets');
      return;
    }
    startPresenceCheck(id, identity);
    opened.on('close', (error: (Error & { disconnected?: boolean }) | null) => {
      const how = error?.disconnected === true ? 'the adapter was disconnected' : 'the port closed';
      lose(id, how, 'is the adapter plugged in? check dmesg for USB resets');
    });
    opened.on('error', (error: Error) => lose(id, `port error (${error.message})`, hintFor(error), error));
    const driver = createRn2483Radio(
      opened,
      { settings: options.radio, commandTimeoutMs: options.commandTimeoutMs },
      {
        log,
        logOnce,
        events: {
          onFrame,
          onRadioError: () => metrics.serialRadioFrames.inc({ kind: 'radio-error' }),
          // The driver logs the line itself (once per kind, with what to check).
          onLineProblem: (kind) => rejections.reject(kind, `a ${kind} line from the module`, { level: 'none' }),
          onFailure: (error: RadioError) => lose(id, error.message, 'power-cycle the module or re-plug the adapter if this repeats', error),
        },
      },
    );
    radio = driver;
    try {
      const info = await driver.start();
      if (id !== session) return;
      if (everOpen || retries.failures > 0) metrics.serialPortReopens.inc({ path: options.path });
      everOpen = true;
      retries.succeeded();
      lastProblem = '';
      setState('open', `serial radio ${options.path}: ${info.model} receiving on ${options.radio.frequencyHz} Hz ${datr(options.radio)}`, {
        version: info.version,
        pktRssi: info.pktRssiSupported,
        frames: options.frames,
      });
    } catch (error) {
      const radioError = error as RadioError;
      lose(id, `radio init failed: ${radioError.message}`, 'check serial.path and serial.baud_rate, and that the module is an RN2483/RN2903');
    }
  }

  return {
    name: 'ingress.serial-radio',

    async start() {
      stopping = false;
      retries.succeeded();
      setState('opening', `serial radio ${options.path}: opening at ${options.baudRate} baud`);
      // The first attempt is awaited so the log shows its outcome at boot, but it never throws: a missing
      // adapter leaves the ingress down and retrying, not the gateway unable to start.
      await attempt();
    },

    async stop() {
      stopping = true;
      session += 1;
      retries.cancel();
      stopPresenceCheck();
      // rxstop before the port closes: the module keeps power, and should not go on receiving for nobody.
      const receiver = radio;
      radio = null;
      await receiver?.stop();
      const open = port;
      port = null;
      if (open?.isOpen) await new Promise<void>((resolve) => open.close(() => resolve()));
      await inFlight.settled();
      metrics.serialPortOpen.set({ path: options.path }, 0);
      if (state !== 'stopped') {
        state = 'stopped';
        log.info({ state }, `serial radio ${options.path}: closed`);
      }
    },

    health(): HealthReport {
      if (state === 'open' && radio?.isReceiving() === true) return { status: 'ok' };
      if (state === 'opening') return { status: 'degraded', detail: `opening ${options.path}` };
      return { status: 'down', detail: `${options.path}: ${lastProblem || state}` };
    },

    state: () => state,
  };
}
