// The RN2483 driver over serialport's mock binding, with the firmware-sim emulator as the module: the init
// sequence in order, frames with their SNR, re-arming after every frame and radio_err, junk on the line
// counted without stopping the loop, and a module that stops answering reported as a failure.
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import type { SerialPortMock } from 'serialport';
import {
  createRn2483Radio,
  type RadioError,
  type RadioFrame,
  type RadioLineProblem,
  type Rn2483Radio,
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

async function harness(t: TestContext, options: { commandTimeoutMs?: number; pktRssi?: boolean } = {}): Promise<Harness> {
  const mock = mockRadio(options.pktRssi === undefined ? {} : { pktRssi: options.pktRssi });
  const stream = await mock.openStream();
  t.after(() => {
    if (stream.isOpen) stream.close();
  });
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
        onFrame: (frame) => frames.push(frame),
        onRadioError: () => {
          radioErrors.count += 1;
        },
        onLineProblem: (kind) => problems.push(kind),
        onFailure: (error) => failures.push(error),
      },
    },
  );
  t.after(() => radio.stop());
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
  assert.ok(recording.startsWith('sys get ver\r\nmac pause\r\nradio set mod lora\r\n'));
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
