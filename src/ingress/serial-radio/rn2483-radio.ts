// The Microchip RN2483 (EU868) / RN2903 (US915) driver for raw LoRa reception, over a port stream that is
// already open (serialport, or its mock binding in tests). The module speaks ASCII lines ending in \r\n, one
// command at a time: send, wait for the answer, then the next. The grammar used here (RN2483 command
// reference, DS40001784):
//   sys get ver            -> "RN2483 1.0.5 Oct 31 2018 15:06:52"
//   mac pause              -> ms the LoRaWAN stack stays paused (0: it cannot pause now, e.g. mid-transmission);
//                             required before any radio command
//   radio rxstop           -> ok | invalid_param (firmware without it): ends a receive left armed
//   radio set <p> <value>  -> ok | invalid_param | busy  (mod, freq, sf, bw, cr, sync, crc, iqi, wdt;
//                                                         busy: still receiving)
//   radio get pktrssi      -> signed dBm | invalid_param (older firmware: not supported)
//   radio rx 0             -> ok | busy | invalid_param, later ONE of:
//                               "radio_rx  <hex>" (two spaces) | "radio_err" (CRC error, watchdog)
//                             after which the radio is idle until armed again
//   radio get snr          -> signed dB of the last packet (-128..127)
// The module stays powered when the port closes (only unplugging the adapter power-cycles it), so it may
// still be in `radio rx 0` from an earlier session, where it answers every `radio set` with busy: init
// ends that receive with `radio rxstop` first, and stop() ends ours.
// Lines that fit no expectation (noise, a reset banner, bad hex, an over-long line) are counted by kind,
// logged at most once per kind per interval and never stop the loop. A command without an answer in time
// means the module is gone or wedged: the driver stops and reports it, and the ingress reopens the port.
// The one-at-a-time exchange is radio-command-queue.ts; this module is the init sequence and the receive loop.
import type { Duplex } from 'node:stream';
import { createOnceLogger, type Logger, type OnceLogger } from '../../core/log.ts';
import { createLineSplitter } from './line-splitter.ts';
import { createRadioCommandQueue } from './radio-command-queue.ts';
import { RadioError } from './radio-error.ts';

// Part of the driver's interface (onFailure, start's rejection); its own module because the command queue raises it too.
export { RadioError, type RadioErrorCode } from './radio-error.ts';

export interface RadioSettings {
  readonly frequencyHz: number;
  /** 7..12 */
  readonly spreadingFactor: number;
  readonly bandwidthKhz: 125 | 250 | 500;
  /** '4/5' .. '4/8' */
  readonly codingRate: string;
  /** Hex, e.g. '34' (LoRaWAN public networks) or '12' (private). */
  readonly syncWord: string;
}

/** One packet the radio received with a good CRC. */
export interface RadioFrame {
  readonly payload: Buffer;
  /** dB, from `radio get snr`; null when the module did not answer it with a number. */
  readonly snr: number | null;
  /** dBm, from `radio get pktrssi`; null on firmware without it. */
  readonly rssi: number | null;
  /** Gateway wall clock when the radio_rx line arrived. */
  readonly receivedAtMs: number;
}

export type RadioLineProblem = 'garbage-line' | 'unexpected-line' | 'bad-hex' | 'odd-length-hex' | 'line-too-long';

export interface RadioInfo {
  /** The module's `sys get ver` answer. */
  readonly version: string;
  readonly model: 'RN2483' | 'RN2903';
  readonly pktRssiSupported: boolean;
}

export interface Rn2483RadioOptions {
  readonly settings: RadioSettings;
  /** How long one command may wait for its answer. */
  readonly commandTimeoutMs: number;
  /** Longest accepted line; "radio_rx  " + 2 x 255 payload bytes fits well inside 1024. */
  readonly maxLineBytes?: number;
}

export interface Rn2483RadioEvents {
  onFrame(frame: RadioFrame): void;
  /** radio_err: a reception ended without a packet (CRC error or radio watchdog). The radio is re-armed. */
  onRadioError(): void;
  /** A line the driver could not use; counted by the caller. */
  onLineProblem(kind: RadioLineProblem, line: string): void;
  /** The module stopped answering or refused the receive loop: the driver has stopped; reopen the port. */
  onFailure(error: RadioError): void;
}

export interface Rn2483Radio {
  /** Runs the init sequence and arms the receiver. Rejects with RadioError (not an RN2483, a refused setting, a timeout). */
  start(): Promise<RadioInfo>;
  /**
   * Ends reception with `radio rxstop` (best effort, at most one command timeout), then stops sending
   * commands and reading lines. The port stays open: its owner closes it after.
   */
  stop(): Promise<void>;
  /** Stops at once without a word to the module: the port is gone or the module does not answer. */
  detach(): void;
  /** True between a successful start and a stop or failure. */
  isReceiving(): boolean;
}

const DEFAULT_MAX_LINE_BYTES = 1024;
const RADIO_RX = /^radio_rx {1,2}(.*)$/;
const SIGNED = /^-?\d+$/;
const PRINTABLE = /^[\x20-\x7e]*$/;
const SETTING_ANSWER = (line: string): boolean => line === 'ok' || line === 'invalid_param' || line === 'busy';
const RXSTOP_ANSWER = SETTING_ANSWER;
const DEFAULT_LINE_LOG_INTERVAL_MS = 600_000;

export interface Rn2483RadioDeps {
  readonly log: Logger;
  readonly events: Rn2483RadioEvents;
  /**
   * Which ignored lines get a log line (keys `line:<kind>`). Share one across the drivers of a port, so a
   * reopen does not log every kind again. Default: once per kind per 10 minutes for this driver.
   */
  readonly logOnce?: OnceLogger;
}

export function createRn2483Radio(port: Duplex, options: Rn2483RadioOptions, deps: Rn2483RadioDeps): Rn2483Radio {
  const { log, events } = deps;
  const logOnce = deps.logOnce ?? createOnceLogger(DEFAULT_LINE_LOG_INTERVAL_MS);
  const commands = createRadioCommandQueue(port, options.commandTimeoutMs, { log, onTimeout: (error) => fail(error) });
  const command = commands.send;
  let running = false;
  /** Our receive is armed or being re-armed; radio_rx / radio_err outside it are an earlier session's. */
  let receiving = false;
  /** Failures before start() resolved are start()'s rejection, and those during stop() are expected: no onFailure event then. */
  let reportFailures = false;
  let pktRssiSupported = false;
  /** Work after a radio_rx / radio_err (ask SNR, re-arm), one at a time. */
  let rxWork: Promise<void> = Promise.resolve();

  const splitter = createLineSplitter(options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES, {
    onLine: handleLine,
    onOverlong: (head) => problem('line-too-long', head),
  });
  const onData = (chunk: Buffer): void => {
    if (running) splitter.push(chunk);
  };

  /** Calls an event handler; one that throws is logged, never allowed to stop the receive loop. */
  function notify(handler: keyof Rn2483RadioEvents, call: () => void): void {
    try {
      call();
    } catch (error) {
      if (logOnce.shouldLog(`handler:${handler}`)) log.error({ err: error, handler }, `serial radio: the ${handler} handler threw; receiving goes on`);
    }
  }

  function problem(kind: RadioLineProblem, line: string): void {
    notify('onLineProblem', () => events.onLineProblem(kind, line));
    if (!logOnce.shouldLog(`line:${kind}`)) return;
    log.warn({ kind, line: line.slice(0, 80) }, `serial radio: ignored a line (${kind}); more of this kind are counted, and logged at most once per interval`);
  }

  /** The tail of a receive this session did not arm (left by an earlier one, or just stopped): not a protocol fault. */
  function leftover(line: string): void {
    log.debug({ line: line.slice(0, 80) }, 'serial radio: ignored the end of a receive armed before this session (or just stopped)');
  }

  function handleLine(line: string): void {
    const received = RADIO_RX.exec(line);
    if (received !== null) {
      onRadioRx(received[1] ?? '', Date.now());
      return;
    }
    if (line === 'radio_err') {
      onRadioErr();
      return;
    }
    if (line === '') return; // a bare \r\n: harmless
    if (commands.answer(line)) return;
    problem(PRINTABLE.test(line) ? 'unexpected-line' : 'garbage-line', line);
  }

  async function setting(name: string, value: string): Promise<void> {
    const answer = await command(`radio set ${name} ${value}`, SETTING_ANSWER);
    if (answer === 'busy') {
      throw new RadioError(
        'SETTING_REFUSED',
        `the radio answered busy to 'radio set ${name} ${value}': it is still receiving and its firmware has no 'radio rxstop'; re-plug the adapter (power-cycle the module)`,
      );
    }
    if (answer !== 'ok') {
      throw new RadioError('SETTING_REFUSED', `the radio refused 'radio set ${name} ${value}' (${answer}): check serial.* against what the module supports`);
    }
  }

  async function arm(): Promise<void> {
    if (!receiving) throw new RadioError('STOPPED', 'radio stopped before re-arming');
    const answer = await command('radio rx 0', (line) => line === 'ok' || line === 'busy' || line === 'invalid_param');
    if (answer === 'busy') {
      // Already receiving (init's rxstop makes this rare): its radio_rx will come all the same.
      log.info('serial radio: receiver was already armed (busy)');
      return;
    }
    if (answer !== 'ok') throw new RadioError('RX_REFUSED', `the radio refused 'radio rx 0' (${answer})`);
  }

  function parseHex(hex: string): Buffer | null {
    if (!/^[0-9A-Fa-f]*$/.test(hex)) {
      problem('bad-hex', hex);
      return null;
    }
    if (hex.length % 2 !== 0) {
      problem('odd-length-hex', hex);
      return null;
    }
    return Buffer.from(hex, 'hex');
  }

  /**
   * Runs receive work (ask SNR/RSSI, re-arm) after the work before it. A radio that stays idle while
   * isReceiving() says true would lose every frame unnoticed: anything but a stop ends in fail(), and the
   * ingress reopens the port.
   */
  function afterReception(work: () => Promise<void>): void {
    rxWork = rxWork.then(async () => {
      try {
        await work();
      } catch (error) {
        if (error instanceof RadioError) {
          if (error.code !== 'STOPPED') fail(error);
          return;
        }
        fail(new RadioError('INTERNAL', `receive work failed unexpectedly (${error instanceof Error ? error.message : String(error)})`));
      }
    });
  }

  function onRadioRx(hex: string, receivedAtMs: number): void {
    if (!receiving) {
      leftover(`radio_rx ${hex.slice(0, 40)}`);
      return;
    }
    const payload = parseHex(hex.trim());
    afterReception(async () => {
      if (payload !== null) {
        const snr = await command('radio get snr', (line) => SIGNED.test(line) || line === 'invalid_param');
        const rssi = pktRssiSupported ? await command('radio get pktrssi', (line) => SIGNED.test(line) || line === 'invalid_param') : null;
        const frame: RadioFrame = {
          payload,
          snr: SIGNED.test(snr) ? Number(snr) : null,
          rssi: rssi !== null && SIGNED.test(rssi) ? Number(rssi) : null,
          receivedAtMs,
        };
        notify('onFrame', () => events.onFrame(frame));
      }
      await arm();
    });
  }

  function onRadioErr(): void {
    if (!receiving) {
      leftover('radio_err');
      return;
    }
    notify('onRadioError', () => events.onRadioError());
    afterReception(arm);
  }

  function halt(reason: RadioError): void {
    running = false;
    receiving = false;
    port.off('data', onData);
    commands.close(reason);
  }

  function fail(error: RadioError): void {
    if (!running) return;
    const report = reportFailures;
    halt(error);
    if (report) notify('onFailure', () => events.onFailure(error));
  }

  return {
    async start() {
      running = true;
      commands.open();
      reportFailures = false;
      port.on('data', onData);
      try {
        const version = await command('sys get ver', (line) => /^RN\d{4}\b/.test(line));
        const model = /^(RN2483|RN2903)\b/.exec(version)?.[1];
        if (model !== 'RN2483' && model !== 'RN2903') {
          throw new RadioError('NOT_AN_RN2483', `the module on the port is '${version}', not an RN2483 or RN2903`);
        }
        const pausedMs = await command('mac pause', (line) => /^\d+$/.test(line));
        if (pausedMs === '0') {
          throw new RadioError(
            'MAC_PAUSE_REFUSED',
            "the module's LoRaWAN stack could not be paused ('mac pause' answered 0: it is busy, e.g. transmitting); init is retried",
          );
        }
        // A receive left armed by an earlier session (the module kept power across the port close) would
        // answer every setting below with busy. Older firmware without rxstop answers invalid_param.
        const stopped = await command('radio rxstop', RXSTOP_ANSWER);
        log.debug({ answer: stopped }, 'serial radio: radio rxstop');
        const { settings } = options;
        await setting('mod', 'lora');
        await setting('freq', String(settings.frequencyHz));
        await setting('sf', `sf${settings.spreadingFactor}`);
        await setting('bw', String(settings.bandwidthKhz));
        await setting('cr', settings.codingRate);
        await setting('sync', settings.syncWord);
        await setting('crc', 'on');
        await setting('iqi', 'off');
        // Without this the radio watchdog ends `radio rx 0` with radio_err every 15 s.
        await setting('wdt', '0');
        pktRssiSupported = SIGNED.test(await command('radio get pktrssi', (line) => SIGNED.test(line) || line === 'invalid_param'));
        receiving = true;
        await arm();
        reportFailures = true;
        return { version, model, pktRssiSupported };
      } catch (error) {
        const radioError = error instanceof RadioError ? error : new RadioError('STOPPED', String(error));
        halt(radioError);
        throw radioError;
      }
    },

    async stop() {
      if (!running) return;
      reportFailures = false;
      const armed = receiving;
      // From here no re-arming (arm() refuses), and the end of our receive is no protocol fault.
      receiving = false;
      if (armed) {
        try {
          await command('radio rxstop', RXSTOP_ANSWER);
        } catch {
          // Best effort: the module may be gone; the next init sends rxstop again.
        }
      }
      if (running) halt(new RadioError('STOPPED', 'radio stopped'));
    },

    detach() {
      if (running) halt(new RadioError('STOPPED', 'radio detached'));
    },

    isReceiving: () => running && receiving,
  };
}
