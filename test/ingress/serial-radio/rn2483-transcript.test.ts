// Golden test against the published RN2483 P2P receive transcript (test/fixtures/lorawan, kind
// serial_line_protocol): a module behind serialport's mock binding answers each host command the transcript
// shows with the transcript's own lines, byte for byte, CR LF. The driver must send the transcript's
// commands in its order and turn its radio_rx line into the frame it lists. Where the driver deliberately
// does more than the transcript, the module answers as the command reference says, and the test names each
// such command: `radio rxstop` first (a receive left armed by an earlier session), every radio setting
// spelled out (the transcript relies on module defaults), `radio get pktrssi` probed (answered
// invalid_param, as firmware without it does: the transcript never asks for it), the receiver re-armed after
// the closing radio_err (the transcript's note), and `radio rxstop` on stop().
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { SerialPortMock } from 'serialport';
import { createRn2483Radio, type RadioError, type RadioFrame, type RadioLineProblem } from '../../../src/ingress/serial-radio/rn2483-radio.ts';
import { captureLog } from '../../helpers/capture-log.ts';
import { waitFor } from '../../helpers/wait-for.ts';

interface TranscriptLine {
  readonly dir: '>' | '<';
  readonly line: string;
}

interface TranscriptVector {
  readonly id: string;
  readonly kind: string;
  readonly transcript: readonly TranscriptLine[];
  readonly expected: { readonly frames: readonly { readonly payload_hex: string; readonly payload_ascii: string; readonly snr_db: number }[] };
}

const vectors = JSON.parse(readFileSync(new URL('../../fixtures/lorawan/lorawan-vectors.json', import.meta.url), 'utf8')) as TranscriptVector[];
const vector = vectors.find((candidate) => candidate.id === 'rn2483-p2p-rx-transcript');
assert.ok(vector !== undefined && vector.kind === 'serial_line_protocol', 'the rn2483-p2p-rx-transcript vector');

/** The transcript as exchanges: a host command and the module lines after it, up to the next command. */
interface Exchange {
  readonly command: string;
  readonly answer: readonly string[];
}

function exchangesOf(transcript: readonly TranscriptLine[]): Exchange[] {
  const exchanges: { command: string; answer: string[] }[] = [];
  for (const entry of transcript) {
    if (entry.dir === '>') exchanges.push({ command: entry.line, answer: [] });
    else {
      const last = exchanges.at(-1);
      assert.ok(last !== undefined, `module line before any command: ${entry.line}`);
      last.answer.push(entry.line);
    }
  }
  return exchanges;
}

/** What the module answers to commands the transcript does not show (RN2483 command reference, DS40001784). */
function offScriptAnswer(command: string, transcriptDone: boolean): string | null {
  if (command === 'radio rxstop' || command.startsWith('radio set ')) return 'ok';
  if (command === 'radio get pktrssi') return 'invalid_param';
  if (command === 'radio rx 0' && transcriptDone) return 'ok';
  return null;
}

interface SentCommand {
  readonly command: string;
  /** Answered with the transcript's lines (it was the transcript's next command), not off it. */
  readonly fromTranscript: boolean;
}

interface Replay {
  readonly stream: SerialPortMock;
  /** Every command the host sent, in order. */
  readonly commands: SentCommand[];
  /** Commands neither in the transcript's order nor answerable off it. */
  readonly unexpected: string[];
  /** Exchanges of the transcript not yet replayed. */
  remaining(): number;
  /** What the host wrote, byte for byte. */
  written(): string;
}

let nextPort = 0;

/** Opens a mock port whose far end replays the transcript: each module line goes out on its own, ending in CR LF. The caller closes it. */
async function replayModule(transcript: readonly TranscriptLine[]): Promise<Replay> {
  nextPort += 1;
  const path = `/dev/ttyTRANSCRIPT${nextPort}`;
  SerialPortMock.binding.createPort(path, { echo: false, record: true });
  const stream = new SerialPortMock({ path, baudRate: 57_600, autoOpen: false });
  await new Promise<void>((resolve, reject) => stream.open((error) => (error === null ? resolve() : reject(error))));
  const binding = stream.port as NonNullable<SerialPortMock['port']>;
  const exchanges = exchangesOf(transcript);
  const commands: SentCommand[] = [];
  const unexpected: string[] = [];
  let pending = '';

  function emit(lines: readonly string[]): void {
    // One line per chunk, after the host's write returned: a module answers later, never inside the write.
    let delay = Promise.resolve();
    for (const line of lines) {
      delay = delay.then(
        () =>
          new Promise<void>((resolve) =>
            setImmediate(() => {
              if (binding.isOpen) binding.emitData(`${line}\r\n`);
              resolve();
            }),
          ),
      );
    }
  }

  function answer(command: string): void {
    const next = exchanges[0];
    const fromTranscript = next !== undefined && next.command === command;
    commands.push({ command, fromTranscript });
    if (fromTranscript) {
      exchanges.shift();
      emit(next.answer);
      return;
    }
    const reply = offScriptAnswer(command, next === undefined);
    if (reply === null) unexpected.push(command);
    emit([reply ?? 'invalid_param']);
  }

  const write = binding.write.bind(binding);
  binding.write = async (buffer: Buffer) => {
    await write(buffer);
    pending += buffer.toString('latin1');
    let end = pending.indexOf('\r\n');
    while (end !== -1) {
      answer(pending.slice(0, end));
      pending = pending.slice(end + 2);
      end = pending.indexOf('\r\n');
    }
  };
  return {
    stream,
    commands,
    unexpected,
    remaining: () => exchanges.length,
    written: () => (binding as unknown as { recording: Buffer }).recording.toString('latin1'),
  };
}

test('the transcript has the shape this replay assumes: host commands, then the module lines that follow each', () => {
  assert.deepEqual(
    exchangesOf(vector.transcript).map((exchange) => exchange.command),
    ['sys get ver', 'mac pause', 'radio set wdt 0', 'radio rx 0', 'radio get snr', 'radio rx 0'],
  );
  assert.deepEqual(vector.expected.frames, [{ payload_hex: '48656c6c6f', payload_ascii: 'Hello', snr_db: -7 }]);
});

test('replayed against the driver: the transcript commands in order, plus the named extras; radio_rx becomes the listed frame', async (t) => {
  const module = await replayModule(vector.transcript);
  const frames: RadioFrame[] = [];
  const problems: RadioLineProblem[] = [];
  const failures: RadioError[] = [];
  let radioErrors = 0;
  const radio = createRn2483Radio(
    module.stream,
    { settings: { frequencyHz: 868_100_000, spreadingFactor: 7, bandwidthKhz: 125, codingRate: '4/5', syncWord: '34' }, commandTimeoutMs: 5_000 },
    {
      log: captureLog().log,
      events: {
        onFrame: (frame) => frames.push(frame),
        onRadioError: () => {
          radioErrors += 1;
        },
        onLineProblem: (kind) => problems.push(kind),
        onFailure: (error) => failures.push(error),
      },
    },
  );
  t.after(async () => {
    await radio.stop();
    if (module.stream.isOpen) module.stream.close();
  });

  const before = Date.now();
  const info = await radio.start();
  assert.deepEqual(info, { version: 'RN2483 1.0.5 Oct 31 2018 15:06:52', model: 'RN2483', pktRssiSupported: false });
  // The transcript's radio_rx and radio_err follow its `radio rx 0` lines; after radio_err the driver arms once more.
  await waitFor(() => module.remaining() === 0 && module.commands.length === 17, 'the whole transcript and the re-arm after radio_err');
  await radio.stop();

  assert.deepEqual(
    module.commands.filter((sent) => sent.fromTranscript).map((sent) => sent.command),
    vector.transcript.filter((entry) => entry.dir === '>').map((entry) => entry.line),
    'every host line of the transcript, in its order',
  );
  const extra = (line: string): string => `${line}  (not in the transcript)`;
  assert.deepEqual(
    module.commands.map((sent) => (sent.fromTranscript ? sent.command : extra(sent.command))),
    [
      'sys get ver',
      'mac pause',
      extra('radio rxstop'),
      extra('radio set mod lora'),
      extra('radio set freq 868100000'),
      extra('radio set sf sf7'),
      extra('radio set bw 125'),
      extra('radio set cr 4/5'),
      extra('radio set sync 34'),
      extra('radio set crc on'),
      extra('radio set iqi off'),
      'radio set wdt 0',
      extra('radio get pktrssi'),
      'radio rx 0',
      'radio get snr',
      'radio rx 0',
      extra('radio rx 0'),
      extra('radio rxstop'),
    ],
  );
  assert.deepEqual(module.unexpected, []);
  assert.equal(module.written(), module.commands.map((sent) => `${sent.command}\r\n`).join(''), 'one command per line, CR LF, nothing else');

  const [expected] = vector.expected.frames;
  assert.ok(expected !== undefined);
  assert.equal(frames.length, 1);
  const [frame] = frames as [RadioFrame];
  assert.equal(frame.payload.toString('hex'), expected.payload_hex);
  assert.equal(frame.payload.toString('ascii'), expected.payload_ascii);
  assert.equal(frame.snr, expected.snr_db);
  assert.equal(frame.rssi, null);
  assert.ok(frame.receivedAtMs >= before && frame.receivedAtMs <= Date.now());
  assert.equal(radioErrors, 1, 'the closing radio_err is reported');
  assert.deepEqual(problems, [], 'every transcript line is understood');
  assert.deepEqual(failures, []);
});
