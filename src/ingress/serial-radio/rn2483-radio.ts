// The Microchip RN2483 (EU868) / RN2903 (US915) driver for raw LoRa reception, over a port stream that is
// already open (serialport, or its mock binding in tests). The module speaks ASCII lines ending in \r\n, one
// command at a time: send, wait for the answer, then the next. The grammar used here (RN2483 command
// reference, DS40001784):
//   sys get ver            -> "RN2483 1.0.5 Oct 31 2018 15:06:52"
//   mac pause              -> ms the LoRaWAN stack stays paused; required before any radio command
//   radio set <p> <value>  -> ok | invalid_param         (mod, freq, sf, bw, cr, sync, crc, iqi, wdt)
//   radio get pktrssi      -> signed dBm | invalid_param (older firmware: not supported)
//   radio rx 0             -> ok | busy | invalid_param, later ONE of:
//                               "radio_rx  <hex>" (two spaces) | "radio_err" (CRC error, watchdog)
//                             after which the radio is idle until armed again
//   radio get snr          -> signed dB of the last packet (-128..127)
// Lines that fit no expectation (noise, a reset banner, bad hex, an over-long line) are counted by kind,
// logged once per kind and never stop the loop. A command without an answer in time means the module is
// gone or wedged: the driver stops and reports it, and the ingress reopens the port.
import type { Duplex } from 'node:stream';
import type { Logger } from '../../ops/log.ts';
import { createLineSplitter } from './line-splitter.ts';

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
  /** Stops sending commands and reading lines; leaves the port to its owner. */
  stop(): void;
  /** True between a successful start and a stop or failure. */
  isReceiving(): boolean;
}

export type RadioErrorCode = 'COMMAND_TIMEOUT' | 'NOT_AN_RN2483' | 'SETTING_REFUSED' | 'RX_REFUSED' | 'STOPPED';

export class RadioError extends Error {
  override name = 'RadioError';
  readonly code: RadioErrorCode;
  constructor(code: RadioErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

interface PendingCommand {
  readonly text: string;
  /** Whether a line is this command's answer; other lines are counted and ignored. */
  readonly isAnswer: (line: string) => boolean;
  readonly resolve: (answer: string) => void;
  readonly reject: (error: RadioError) => void;
}

const DEFAULT_MAX_LINE_BYTES = 1024;
const RADIO_RX = /^radio_rx {1,2}(.*)$/;
const SIGNED = /^-?\d+$/;
const PRINTABLE = /^[\x20-\x7e]*$/;
const OK_OR_INVALID = (line: string): boolean => line === 'ok' || line === 'invalid_param';

export function createRn2483Radio(port: Duplex, options: Rn2483RadioOptions, deps: { readonly log: Logger; readonly events: Rn2483RadioEvents }): Rn2483Radio {
  const { log, events } = deps;
  const queue: PendingCommand[] = [];
  let current: PendingCommand | null = null;
  let currentTimer: NodeJS.Timeout | null = null;
  let running = false;
  let receiving = false;
  /** Failures before start() resolved are start()'s rejection, not an onFailure event. */
  let started = false;
  let pktRssiSupported = false;
  /** Work after a radio_rx / radio_err (ask SNR, re-arm), one at a time. */
  let rxWork: Promise<void> = Promise.resolve();
  const reportedProblems = new Set<RadioLineProblem>();

  const splitter = createLineSplitter(options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES, {
    onLine: handleLine,
    onOverlong: (head) => problem('line-too-long', head),
  });
  const onData = (chunk: Buffer): void => {
    if (running) splitter.push(chunk);
  };

  function problem(kind: RadioLineProblem, line: string): void {
    events.onLineProblem(kind, line);
    if (reportedProblems.has(kind)) return;
    reportedProblems.add(kind);
    log.warn({ kind, line: line.slice(0, 80) }, `serial radio: ignored a line (${kind}); further ones of this kind are only counted`);
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
    if (current?.isAnswer(line)) {
      const answered = current;
      finishCurrent();
      answered.resolve(line);
      return;
    }
    problem(PRINTABLE.test(line) ? 'unexpected-line' : 'garbage-line', line);
  }

  function finishCurrent(): void {
    if (currentTimer !== null) clearTimeout(currentTimer);
    currentTimer = null;
    current = null;
    sendNext();
  }

  function sendNext(): void {
    if (current !== null || !running) return;
    const next = queue.shift();
    if (next === undefined) return;
    current = next;
    currentTimer = setTimeout(() => {
      const timedOut = current;
      if (timedOut === null) return;
      currentTimer = null;
      // fail() rejects the command still waiting (and everything queued behind it).
      fail(
        new RadioError(
          'COMMAND_TIMEOUT',
          `the radio did not answer '${timedOut.text}' within ${options.commandTimeoutMs} ms: is it an RN2483/RN2903 at the configured baud rate, powered, and not held in reset?`,
        ),
      );
    }, options.commandTimeoutMs);
    log.debug({ command: next.text }, 'serial radio: command');
    port.write(`${next.text}\r\n`);
  }

  function command(text: string, isAnswer: (line: string) => boolean): Promise<string> {
    if (!running) return Promise.reject(new RadioError('STOPPED', `radio stopped before '${text}'`));
    return new Promise((resolve, reject) => {
      queue.push({ text, isAnswer, resolve, reject });
      sendNext();
    });
  }

  async function setting(name: string, value: string): Promise<void> {
    const answer = await command(`radio set ${name} ${value}`, OK_OR_INVALID);
    if (answer !== 'ok') {
      throw new RadioError('SETTING_REFUSED', `the radio refused 'radio set ${name} ${value}' (${answer}): check serial.* against what the module supports`);
    }
  }

  async function arm(): Promise<void> {
    const answer = await command('radio rx 0', (line) => line === 'ok' || line === 'busy' || line === 'invalid_param');
    if (answer === 'busy') {
      // Already receiving (armed before we took over the port): its radio_rx will come all the same.
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

  function onRadioRx(hex: string, receivedAtMs: number): void {
    if (!receiving) {
      problem('unexpected-line', `radio_rx ${hex.slice(0, 40)}`);
      return;
    }
    const payload = parseHex(hex.trim());
    rxWork = rxWork.then(async () => {
      try {
        if (payload !== null) {
          const snr = await command('radio get snr', (line) => SIGNED.test(line) || line === 'invalid_param');
          const rssi = pktRssiSupported ? await command('radio get pktrssi', (line) => SIGNED.test(line) || line === 'invalid_param') : null;
          events.onFrame({
            payload,
            snr: SIGNED.test(snr) ? Number(snr) : null,
            rssi: rssi !== null && SIGNED.test(rssi) ? Number(rssi) : null,
            receivedAtMs,
          });
        }
        await arm();
      } catch (error) {
        if (error instanceof RadioError && error.code !== 'STOPPED') fail(error);
      }
    });
  }

  function onRadioErr(): void {
    if (!receiving) {
      problem('unexpected-line', 'radio_err');
      return;
    }
    events.onRadioError();
    rxWork = rxWork.then(async () => {
      try {
        await arm();
      } catch (error) {
        if (error instanceof RadioError && error.code !== 'STOPPED') fail(error);
      }
    });
  }

  function halt(reason: RadioError): void {
    running = false;
    receiving = false;
    port.off('data', onData);
    if (currentTimer !== null) clearTimeout(currentTimer);
    currentTimer = null;
    const waiting = [...(current === null ? [] : [current]), ...queue.splice(0)];
    current = null;
    for (const pending of waiting) pending.reject(reason);
  }

  function fail(error: RadioError): void {
    if (!running) return;
    const report = started;
    halt(error);
    if (report) events.onFailure(error);
  }

  return {
    async start() {
      running = true;
      started = false;
      port.on('data', onData);
      try {
        const version = await command('sys get ver', (line) => /^RN\d{4}\b/.test(line));
        const model = /^(RN2483|RN2903)\b/.exec(version)?.[1];
        if (model !== 'RN2483' && model !== 'RN2903') {
          throw new RadioError('NOT_AN_RN2483', `the module on the port is '${version}', not an RN2483 or RN2903`);
        }
        await command('mac pause', (line) => /^\d+$/.test(line));
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
        started = true;
        return { version, model, pktRssiSupported };
      } catch (error) {
        const radioError = error instanceof RadioError ? error : new RadioError('STOPPED', String(error));
        halt(radioError);
        throw radioError;
      }
    },

    stop() {
      if (running) halt(new RadioError('STOPPED', 'radio stopped'));
    },

    isReceiving: () => running && receiving,
  };
}
