// The RN2483 driver over serialport's mock binding, with the firmware-sim emulator as the module: the init
// sequence in order, frames with their SNR, re-arming after every frame and radio_err, junk on the line
// counted without stopping the loop, and a module that stops answering reported as a failure. The module
// keeps power across a port close: a receive left armed is ended with rxstop, on init and on stop().
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import type { SerialPortMock } from 'serialport';
import {
  createRn2483Radio,
  type RadioError,
  type RadioFrame,
  type RadioLineProblem,
  type Rn2483Radio,
  type Rn2483RadioEvents,
} from '../../../src/ingress/serial-radio/rn2483-radio.ts';
import { captureLog } from '../../helpers/capture-log.ts';
import { type MockRadio, mockRadio } from '../../helpers/serial-radio-mock.ts';
import { waitFor } from '../../helpers/wait-for.ts';

const SETTINGS = { frequencyHz: 868_100_000, spreadingFactor: 7, bandwidthKhz: 125, codingRate: '4/5', syncWord: '34' } as const;

interface Harness {
  readonly radio: Rn2483Radio;
  readonly mock: MockRadio;
  readonly stream: SerialPortMock;
  readonly frames: RadioFrame[];
  readonly problems: RadioLineProblem[];
  readonly failures: RadioError[];
  /** radio_err lines seen. */
  readonly radioErrors: { count: number };
  readonly logs: ReturnType<typeof captureLog>;
}

interface HarnessOptions {
  readonly commandTimeoutMs?: number;
  readonly pktRssi?: boolean;
  readonly rxStop?: boolean;
  readonly onFrame?: (frame: RadioFrame) => void;
}

async function harness(t: TestContext, options: HarnessOptions = {}): Promise<Harness> {
  const mock = mockRadio({
    ...(options.pktRssi === undefined ? {} : { pktRssi: options.pktRssi }),
    ...(options.rxStop === undefined ? {} : { rxStop: options.rxStop }),
  });
  const stream = await mock.openStream();
  const logs = captureLog();
  const frames: RadioFrame[] = [];
  const problems: RadioLineProblem[] = [];
  const failures: RadioError[] = [];
  const radioErrors = { count: 0 };
  const radio = createRn2483Radio(
    stream,
    { settings: SETTINGS, commandTimeoutMs: options.commandTimeoutMs ?? 5_000, maxLineBytes: 600 },
    {
      log: logs.log,
      events: {
        onFrame: (frame) => {
          options.onFrame?.(frame);
          frames.push(frame);
        },
        onRadioError: () => {
          radioErrors.count += 1;
        },
        onLineProblem: (kind) => problems.push(kind),
        onFailure: (error) => failures.push(error),
      },
    },
  );
  t.after(async () => {
    await radio.stop();
    if (stream.isOpen) stream.close();
  });
  return { radio, mock, stream, frames, problems, failures, radioErrors, logs };
}

test('init: version check, mac pause, radio settings, then the receiver is armed', async (t) => {
  const { radio, mock, stream } = await harness(t);
  const info = await radio.start();
  assert.equal(info.model, 'RN2483');
  assert.match(info.version, /^RN2483 1\.0\.5/);
  assert.equal(info.pktRssiSupported, true);
  assert.deepEqual(mock.emulator().commands(), [
    'sys get ver',
    'mac pause',
    'radio rxstop',
    'radio set mod lora',
    'radio set freq 868100000',
    'radio set sf sf7',
    'radio set bw 125',
    'radio set cr 4/5',
    'radio set sync 34',
    'radio set crc on',
    'radio set iqi off',
    'radio set wdt 0',
    'radio get pktrssi',
    'radio rx 0',
  ]);
  // What went over the wire: one command per line, \r\n terminated.
  const recording = (stream.port as unknown as { recording: Buffer }).recording.toString('latin1');
  assert.ok(recording.startsWith('sys get ver\r\nmac pause\r\nradio rxstop\r\nradio set mod lora\r\n'));
  assert.equal(mock.emulator().isArmed(), true);
  assert.equal(radio.isReceiving(), true);
});

test('a refused setting fails the start with the command named', async (t) => {
  const h = await harness(t);
  const radio = createRn2483Radio(
    h.stream,
    { settings: { ...SETTINGS, frequencyHz: 915_000_000 }, commandTimeoutMs: 5_000 },
    { log: h.logs.log, events: { onFrame: () => undefined, onRadioError: () => undefined, onLineProblem: () => undefined, onFailure: () => undefined } },
  );
  await assert.rejects(radio.start(), (error: RadioError) => error.code === 'SETTING_REFUSED' && error.message.includes('radio set freq 915000000'));
  assert.equal(radio.isReceiving(), false);
});

test('radio_rx -> frame with SNR and RSSI, re-armed after each frame and after radio_err', async (t) => {
  const h = await harness(t);
  await h.radio.start();
  const emulator = h.mock.emulator();
  assert.equal(emulator.transmit(Buffer.from('40aabbccdd', 'hex'), { snr: -7, rssi: -101 }), true);
  await waitFor(() => h.frames.length === 1 && emulator.isArmed(), 'the first frame and re-arming');
  assert.deepEqual(h.frames[0]?.payload, Buffer.from('40aabbccdd', 'hex'));
  assert.equal(h.frames[0]?.snr, -7);
  assert.equal(h.frames[0]?.rssi, -101);
  assert.ok(Number.isFinite(h.frames[0]?.receivedAtMs));

  assert.equal(emulator.failReception(), true);
  await waitFor(() => h.radioErrors.count === 1 && emulator.isArmed(), 'radio_err counted and the receiver re-armed');

  assert.equal(emulator.transmit(Buffer.from([1, 2, 3]), { snr: 5, rssi: -60 }), true);
  await waitFor(() => h.frames.length === 2 && emulator.isArmed(), 'the second frame and re-arming');
  assert.deepEqual(h.frames[1]?.payload, Buffer.from([1, 2, 3]));
  assert.equal(h.frames[1]?.snr, 5);
  assert.deepEqual(emulator.commands().slice(-7), [
    'radio get snr',
    'radio get pktrssi',
    'radio rx 0',
    'radio rx 0',
    'radio get snr',
    'radio get pktrssi',
    'radio rx 0',
  ]);
  assert.deepEqual(h.failures, []);
});

test('firmware without pktrssi: frames carry rssi null', async (t) => {
  const h = await harness(t, { pktRssi: false });
  const info = await h.radio.start();
  assert.equal(info.pktRssiSupported, false);
  h.mock.emulator().transmit(Buffer.from([9, 9]), { snr: 3, rssi: -80 });
  await waitFor(() => h.frames.length === 1 && h.mock.emulator().isArmed(), 'a frame');
  assert.equal(h.frames[0]?.rssi, null);
  assert.equal(h.frames[0]?.snr, 3);
  assert.ok(!h.mock.emulator().commands().slice(-3).includes('radio get pktrssi'));
});

test('garbage, unexpected lines, bad and odd-length hex, over-long lines: counted, logged once per kind, loop goes on', async (t) => {
  const h = await harness(t);
  await h.radio.start();
  const emulator = h.mock.emulator();
  emulator.inject('\x00\xff\xfe noise\r\n');
  emulator.inject('hello from nowhere\r\n');
  emulator.inject('hello again\r\n');
  emulator.inject('radio_rx  4G00\r\n'); // bad hex: the radio is idle now, the driver re-arms
  await waitFor(() => h.problems.includes('bad-hex'), 'bad hex counted');
  await waitFor(() => emulator.isArmed(), 're-armed after bad hex');
  emulator.inject('radio_rx  ABC\r\n');
  await waitFor(() => h.problems.includes('odd-length-hex'), 'odd-length hex counted');
  await waitFor(() => emulator.isArmed(), 're-armed after odd-length hex');
  emulator.inject(`${'A'.repeat(5_000)}`); // no \n: must be dropped, not kept
  emulator.inject(`${'B'.repeat(5_000)}\r\n`);
  await waitFor(() => h.problems.includes('line-too-long'), 'over-long line counted');

  assert.equal(emulator.transmit(Buffer.from('cafe', 'hex'), { snr: 1, rssi: -90 }), true);
  await waitFor(() => h.frames.length === 1 && emulator.isArmed(), 'a good frame after all the junk');
  assert.deepEqual(h.frames[0]?.payload, Buffer.from('cafe', 'hex'));
  assert.deepEqual([...h.problems].sort(), ['bad-hex', 'garbage-line', 'line-too-long', 'odd-length-hex', 'unexpected-line', 'unexpected-line'].sort());
  const warnings = h.logs.lines().filter((line) => String(line.msg).includes('ignored a line'));
  assert.equal(warnings.filter((line) => line.kind === 'unexpected-line').length, 1, 'logged once per kind');
  assert.equal(h.radio.isReceiving(), true);
  assert.deepEqual(h.failures, []);
});

test('a module that stops answering is reported as a command timeout', async (t) => {
  const h = await harness(t, { commandTimeoutMs: 300 });
  await h.radio.start();
  // Silence the module: it still hears the frame, but answers nothing more.
  const emulator = h.mock.emulator();
  const binding = h.stream.port as unknown as { write: (buffer: Buffer) => Promise<void> };
  binding.write = async () => undefined;
  emulator.transmit(Buffer.from([1]));
  await waitFor(() => h.failures.length === 1, 'the timeout to be reported');
  assert.equal(h.failures[0]?.code, 'COMMAND_TIMEOUT');
  assert.match(h.failures[0]?.message ?? '', /radio get snr/);
  assert.equal(h.radio.isReceiving(), false);
  assert.equal(h.frames.length, 0);
});

test('no answer at all during init: start rejects with a timeout, no failure event', async (t) => {
  const h = await harness(t, { commandTimeoutMs: 300 });
  const binding = h.stream.port as unknown as { write: (buffer: Buffer) => Promise<void> };
  binding.write = async () => undefined;
  await assert.rejects(h.radio.start(), (error: RadioError) => error.code === 'COMMAND_TIMEOUT' && error.message.includes("'sys get ver'"));
  assert.deepEqual(h.failures, []);
});

const NO_EVENTS: Rn2483RadioEvents = { onFrame: () => undefined, onRadioError: () => undefined, onLineProblem: () => undefined, onFailure: () => undefined };

/** Closes the port as the gateway does on a loss, and opens it again: the module kept power. */
async function reopen(h: Harness): Promise<SerialPortMock> {
  h.radio.detach();
  await new Promise<void>((resolve) => h.stream.close(() => resolve()));
  return h.mock.openStream();
}

/** A second driver on `stream`; stopped (rxstop answered) before the stream closes. */
function secondRadio(t: TestContext, stream: SerialPortMock, log: Harness['logs']['log'], events: Partial<Rn2483RadioEvents> = {}): Rn2483Radio {
  const radio = createRn2483Radio(stream, { settings: SETTINGS, commandTimeoutMs: 5_000 }, { log, events: { ...NO_EVENTS, ...events } });
  t.after(async () => {
    await radio.stop();
    if (stream.isOpen) stream.close();
  });
  return radio;
}

test('a port reopened while the module is still receiving: rxstop ends that receive, and init works on the same module', async (t) => {
  const h = await harness(t);
  await h.radio.start();
  const module = h.mock.emulator();
  assert.equal(module.isArmed(), true);
  const stream = await reopen(h);
  assert.equal(h.mock.emulator(), module, 'the same module: a port close is no power cycle');
  assert.equal(module.isArmed(), true, 'still in radio rx 0 from the first session');

  const frames: RadioFrame[] = [];
  const problems: RadioLineProblem[] = [];
  const again = secondRadio(t, stream, h.logs.log, { onFrame: (frame) => frames.push(frame), onLineProblem: (kind) => problems.push(kind) });
  await again.start();
  const second = module.commands().slice(module.commands().lastIndexOf('sys get ver'));
  assert.deepEqual(second.slice(0, 4), ['sys get ver', 'mac pause', 'radio rxstop', 'radio set mod lora']);
  assert.equal(second.at(-1), 'radio rx 0');
  assert.equal(module.isArmed(), true);
  assert.equal(module.transmit(Buffer.from('beef', 'hex')), true);
  await waitFor(() => frames.length === 1 && module.isArmed(), 'a frame on the reopened port');
  assert.deepEqual(frames[0]?.payload, Buffer.from('beef', 'hex'));
  assert.deepEqual(problems, []);
});

test('stop() ends the receive with rxstop, and the module is idle for the next session', async (t) => {
  const h = await harness(t);
  await h.radio.start();
  const module = h.mock.emulator();
  await h.radio.stop();
  assert.equal(module.commands().at(-1), 'radio rxstop');
  assert.equal(module.isArmed(), false);
  assert.equal(h.radio.isReceiving(), false);
  assert.equal(module.transmit(Buffer.from([1])), false, 'nobody listening after stop');
  assert.deepEqual(h.failures, []);
  await h.radio.stop(); // twice is harmless
});

test('firmware without rxstop, left receiving: the first setting answers busy and the start fails at once, naming it', async (t) => {
  const h = await harness(t, { rxStop: false });
  await h.radio.start();
  const again = secondRadio(t, await reopen(h), h.logs.log);
  await assert.rejects(
    again.start(),
    (error: RadioError) => error.code === 'SETTING_REFUSED' && /busy to 'radio set mod lora'/.test(error.message) && /re-plug the adapter/.test(error.message),
  );
  assert.equal(again.isReceiving(), false);
});

test("'mac pause' answering 0 (the LoRaWAN stack is busy) fails the start; the next attempt works", async (t) => {
  const h = await harness(t);
  const module = h.mock.emulator();
  module.setMacBusy(true);
  await assert.rejects(h.radio.start(), (error: RadioError) => error.code === 'MAC_PAUSE_REFUSED' && error.message.includes("'mac pause' answered 0"));
  assert.equal(module.commands().includes('radio set mod lora'), false, 'no radio command after a refused pause');
  module.setMacBusy(false);
  const again = secondRadio(t, await reopen(h), h.logs.log);
  await again.start();
  assert.equal(again.isReceiving(), true);
});

test('a frame handler that throws: logged, and the receiver is re-armed for the next frame', async (t) => {
  let calls = 0;
  const h = await harness(t, {
    onFrame: () => {
      calls += 1;
      if (calls === 1) throw new TypeError('handler bug');
    },
  });
  await h.radio.start();
  const module = h.mock.emulator();
  assert.equal(module.transmit(Buffer.from([1])), true);
  await waitFor(() => calls === 1 && module.isArmed(), 'the throwing handler, then re-arming');
  assert.equal(module.transmit(Buffer.from([2])), true);
  await waitFor(() => h.frames.length === 1, 'the next frame');
  assert.deepEqual(h.frames[0]?.payload, Buffer.from([2]));
  assert.equal(h.radio.isReceiving(), true);
  assert.deepEqual(h.failures, []);
  assert.ok(h.logs.lines().some((line) => line.level === 'error' && String(line.msg).includes('the onFrame handler threw')));
});
