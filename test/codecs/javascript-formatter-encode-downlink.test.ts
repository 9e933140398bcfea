// TTN's `encodeDownlink(input)` in JavaScript payload formatters: a device-repository codec encodes { data, fPort }
// into bytes and an FPort; only a file that defines encodeDownlink gives its codec the method; the data reaches
// the formatter as objects of its own context; throws, endless loops, errors lists, bytes that are not an
// FRMPayload, FPorts outside 1..223, Promises and non-objects come back as an error a person can act on; an
// endless encodeDownlink is rested on its own count, leaving decodeUplink alone.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createFormatterCache, type FormatterCacheOptions } from '../../src/codecs/javascript-formatter.ts';
import { type EncodedDownlink, encodeDownlinkPayload, type PayloadCodec } from '../../src/codecs/payload-codec.ts';
import { createMetrics } from '../../src/core/metrics.ts';
import { captureLog } from '../helpers/capture-log.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const LAMP = fileURLToPath(new URL('../fixtures/formatters/street-lamp.js', import.meta.url));
const WATER = fileURLToPath(new URL('../fixtures/formatters/water-meter.js', import.meta.url));
const LIMITS: FormatterCacheOptions = { timeoutMs: 50, maxOutputBytes: 16384 };

function javascript(file: string, options: FormatterCacheOptions = LIMITS, nowMs?: () => number): { codec: PayloadCodec; log: ReturnType<typeof captureLog> } {
  const log = captureLog();
  const cache = createFormatterCache(options, nowMs === undefined ? { log: log.log } : { log: log.log, nowMs });
  return { codec: cache.codecFor({ codec: 'javascript', formatterFile: file }), log };
}

/** A formatter file in a temp dir, for the faulty ones that have no place among the fixtures. */
function formatterFile(dir: string, name: string, source: string): string {
  const path = join(dir, name);
  writeFileSync(path, source);
  return path;
}

/** A formatter whose decodeUplink is trivial and whose encodeDownlink is `body`, run per input.data.case. */
function encoderFile(dir: string, name: string, body: string): string {
  return formatterFile(
    dir,
    name,
    `function decodeUplink(input) { return { data: { first: input.bytes[0] } }; }\nfunction encodeDownlink(input) {\n${body}\n}\n`,
  );
}

function encode(codec: PayloadCodec, data: unknown, fport: number | null = null): EncodedDownlink {
  assert.ok(codec.encodeDownlink, `${codec.name} should have encodeDownlink`);
  return codec.encodeDownlink(data, fport);
}

function ok(bytes: readonly number[], fport: number | null, warnings: readonly string[] = []): EncodedDownlink {
  return { ok: true, bytes: Buffer.from(bytes), fport, warnings };
}

function failed(error: string): EncodedDownlink {
  return { ok: false, error };
}

test('a TTN device-repository lamp codec encodes its commands: data in, bytes and FPort out', () => {
  const { codec } = javascript(LAMP);
  assert.equal(codec.name, 'javascript:street-lamp.js');
  // As in the repository's codec.yaml examples: input { data }, output { bytes, fPort }.
  const examples: readonly { readonly data: Record<string, unknown>; readonly expected: EncodedDownlink }[] = [
    { data: { level: 40 }, expected: ok([0x01, 40], 10) },
    { data: { level: 0 }, expected: ok([0x01, 0], 10) },
    { data: { level: 5 }, expected: ok([0x01, 5], 10, ['levels below 10 % may not light every driver']) },
    { data: { on: true }, expected: ok([0x02, 1], 10) },
    { data: { interval_minutes: 15 }, expected: ok([0x10, 15], 11) },
    { data: { level: 140 }, expected: failed('encodeDownlink errors: level must be 0..100, got 140') },
    { data: { colour: 'red' }, expected: failed('encodeDownlink errors: unknown command: give level, on or interval_minutes') },
  ];
  for (const { data, expected } of examples) assert.deepEqual(encode(codec, data), expected, JSON.stringify(data));

  // The formatter's fPort wins over the one asked for, as in TTS; the same codec still decodes uplinks.
  assert.deepEqual(encode(codec, { level: 40 }, 20), ok([0x01, 40], 10));
  assert.deepEqual(codec.decode({ bytes: Buffer.from([1, 40]), fPort: 2, recvTime: new Date(0) }), { data: { on: true, level: 40 } });
  assert.deepEqual(encodeDownlinkPayload(codec, { on: false }, null), ok([0x02, 0], 10));
});

test('a formatter without encodeDownlink keeps decoding; its codec has no encodeDownlink, and says so when asked', () => {
  const { codec } = javascript(WATER);
  assert.equal(codec.encodeDownlink, undefined);
  assert.equal('encodeDownlink' in codec, false);
  assert.equal(codec.decode({ bytes: Buffer.from([1, 0, 0, 0, 0]), fPort: 3, recvTime: new Date(0) }).data?.volume_liters, 1);
  assert.deepEqual(
    encodeDownlinkPayload(codec, { level: 40 }, 10),
    failed(
      'codec javascript:water-meter.js cannot encode downlinks: send the bytes themselves, or use a javascript formatter that defines encodeDownlink(input)',
    ),
  );
  const raw = createFormatterCache(LIMITS, { log: captureLog().log }).codecFor({ codec: 'raw' });
  assert.equal(raw.encodeDownlink, undefined);
  assert.deepEqual(
    encodeDownlinkPayload(raw, {}, 1),
    failed('codec raw cannot encode downlinks: send the bytes themselves, or use a javascript formatter that defines encodeDownlink(input)'),
  );
});

test('encodeDownlink is found as TTN codecs define it: a function, a top-level const, or module.exports', (t) => {
  const dir = tempDir(t);
  const asConst = formatterFile(
    dir,
    'const.js',
    'const decodeUplink = (input) => ({ data: {} });\nconst encodeDownlink = (input) => ({ bytes: [input.data.n], fPort: 3 });\n',
  );
  assert.deepEqual(encode(javascript(asConst).codec, { n: 7 }), ok([7], 3));
  const asExports = formatterFile(
    dir,
    'exports.js',
    'module.exports = { decodeUplink: function () { return { data: {} }; }, encodeDownlink: function (input) { return { bytes: [input.data.n] }; } };\n',
  );
  assert.deepEqual(encode(javascript(asExports).codec, { n: 8 }, 4), ok([8], 4));
});

test('the input is { data, fPort } made of the context own objects: the formatter cannot reach or change the host object', (t) => {
  const dir = tempDir(t);
  const { codec } = javascript(
    encoderFile(
      dir,
      'probe.js',
      `function attempt(run) { try { return String(run()); } catch (error) { return error.name + ': ' + error.message; } }
      var data = input.data;
      var seen = [
        'keys ' + Object.keys(input).join(','),
        'fPort ' + typeof input.fPort + ' ' + input.fPort,
        'plain ' + (Object.getPrototypeOf(data) === Object.prototype && Object.getPrototypeOf(data.nested) === Object.prototype),
        'escape ' + attempt(function () { return typeof data.constructor.constructor('return process')(); }),
        'nested ' + JSON.stringify(data.nested),
      ];
      data.nested.level = 99;
      data.added = true;
      return { bytes: [], warnings: seen };`,
    ),
  );
  const host = { nested: { level: 40, tags: ['a', 'b'] } };
  const withPort = encode(codec, host, 10);
  assert.equal(withPort.ok, true);
  assert.deepEqual(withPort.ok && withPort.warnings, [
    'keys data,fPort',
    'fPort number 10',
    'plain true',
    'escape EvalError: Code generation from strings disallowed for this context',
    'nested {"level":40,"tags":["a","b"]}',
  ]);
  assert.deepEqual(host, { nested: { level: 40, tags: ['a', 'b'] } }, 'the host object is untouched');
  const withoutPort = encode(codec, host, null);
  assert.equal(withoutPort.ok && withoutPort.warnings[1], 'fPort undefined undefined');
  assert.equal(withoutPort.ok && withoutPort.fport, null, 'neither the caller nor the formatter named an FPort');
});

test('a throw, a Promise, a non-object or something JSON cannot hold is a failure that says what to return', (t) => {
  const dir = tempDir(t);
  const { codec } = javascript(
    encoderFile(
      dir,
      'faulty.js',
      `switch (input.data.case) {
        case 'range': throw new RangeError('no scene ' + input.data.scene);
        case 'string': throw 'plain string';
        case 'property': return { bytes: [input.data.missing.value] };
        case 'promise': return Promise.resolve({ bytes: [1] });
        case 'number': return 42;
        case 'undefined': return undefined;
        case 'array': return [1, 2];
        case 'big': return { bytes: [1n] };
        default: return { bytes: [1], fPort: 1 };
      }`,
    ),
  );
  assert.deepEqual(encode(codec, { case: 'range', scene: 7 }), failed('encodeDownlink threw RangeError: no scene 7'));
  assert.deepEqual(encode(codec, { case: 'string' }), failed('encodeDownlink threw plain string'));
  assert.deepEqual(encode(codec, { case: 'property' }), failed("encodeDownlink threw TypeError: Cannot read properties of undefined (reading 'value')"));
  assert.deepEqual(
    encode(codec, { case: 'promise' }),
    failed('encodeDownlink returned a Promise; it must return { bytes, fPort, warnings, errors } without async'),
  );
  assert.deepEqual(encode(codec, { case: 'number' }), failed('encodeDownlink must return an object like { bytes: [...], fPort: 1 }, got a number'));
  assert.deepEqual(encode(codec, { case: 'undefined' }), failed('encodeDownlink returned undefined, not an object like { bytes: [...], fPort: 1 }'));
  assert.deepEqual(encode(codec, { case: 'array' }), failed('encodeDownlink must return an object like { bytes: [...], fPort: 1 }, got an array'));
  const big = encode(codec, { case: 'big' });
  assert.match(big.ok ? '' : big.error, /^encodeDownlink returned something JSON cannot hold: TypeError: .*BigInt/);
  assert.deepEqual(encode(codec, { case: 'fine' }), ok([1], 1), 'the codec keeps working after failures');

  const asyncFile = formatterFile(
    dir,
    'async.js',
    'function decodeUplink() { return { data: {} }; }\nasync function encodeDownlink() { return { bytes: [1] }; }\n',
  );
  assert.deepEqual(
    encode(javascript(asyncFile).codec, {}),
    failed('encodeDownlink returned a Promise; it must return { bytes, fPort, warnings, errors } without async'),
  );
});

test('bytes must be an FRMPayload: at most 242 integers 0..255', (t) => {
  const dir = tempDir(t);
  const { codec } = javascript(
    encoderFile(
      dir,
      'bytes.js',
      `var filled = function (n) { var out = []; for (var i = 0; i < n; i++) out.push(i & 0xff); return out; };
      switch (input.data.case) {
        case 'over': return { bytes: [1, 300], fPort: 1 };
        case 'negative': return { bytes: [-1], fPort: 1 };
        case 'text': return { bytes: [1, 2, 'a'], fPort: 1 };
        case 'fraction': return { bytes: [1.5], fPort: 1 };
        case 'nan': return { bytes: [NaN], fPort: 1 };
        case 'base64': return { bytes: 'AQID', fPort: 1 };
        case 'none': return { fPort: 1 };
        case 'too-many': return { bytes: filled(243), fPort: 1 };
        case 'largest': return { bytes: filled(242), fPort: 1 };
        default: return { bytes: [], fPort: 1 };
      }`,
    ),
  );
  assert.deepEqual(encode(codec, { case: 'over' }), failed("encodeDownlink's bytes[1] is 300, not an integer 0..255"));
  assert.deepEqual(encode(codec, { case: 'negative' }), failed("encodeDownlink's bytes[0] is -1, not an integer 0..255"));
  assert.deepEqual(encode(codec, { case: 'text' }), failed('encodeDownlink\'s bytes[2] is "a", not an integer 0..255'));
  assert.deepEqual(encode(codec, { case: 'fraction' }), failed("encodeDownlink's bytes[0] is 1.5, not an integer 0..255"));
  assert.deepEqual(
    encode(codec, { case: 'nan' }),
    failed("encodeDownlink's bytes[0] is null (NaN, Infinity and undefined arrive as null), not an integer 0..255"),
  );
  assert.deepEqual(encode(codec, { case: 'base64' }), failed("encodeDownlink's bytes must be an array of integers 0..255, got a string"));
  assert.deepEqual(encode(codec, { case: 'none' }), failed("encodeDownlink's bytes must be an array of integers 0..255, got nothing"));
  assert.deepEqual(encode(codec, { case: 'too-many' }), failed('encodeDownlink returned 243 bytes, over 242, the largest LoRaWAN FRMPayload'));
  const largest = encode(codec, { case: 'largest' });
  assert.equal(largest.ok && largest.bytes.length, 242);
  assert.deepEqual(encode(codec, { case: 'empty' }), ok([], 1), 'an empty FRMPayload on an FPort is a valid downlink');
});

test('a non-empty errors list is a failure naming every error; warnings ride along with the bytes', (t) => {
  const dir = tempDir(t);
  const { codec } = javascript(
    encoderFile(
      dir,
      'errors.js',
      `switch (input.data.case) {
        case 'two': return { bytes: [1], fPort: 1, errors: ['level missing', 'scene 9 unknown'] };
        case 'empty': return { bytes: [1], fPort: 1, errors: [], warnings: ['firmware 1.2 ignores scenes', 7] };
        default: return { errors: ['x'.repeat(600)] };
      }`,
    ),
  );
  assert.deepEqual(encode(codec, { case: 'two' }), failed('encodeDownlink errors: level missing; scene 9 unknown'));
  assert.deepEqual(encode(codec, { case: 'empty' }), ok([1], 1, ['firmware 1.2 ignores scenes', '7']));
  const long = encode(codec, { case: 'long' });
  assert.equal(long.ok ? 0 : long.error.length, 503, 'cut at 500 characters and an ellipsis');
});

test('an FPort outside 1..223 is refused, from the formatter or from the caller', (t) => {
  const dir = tempDir(t);
  const { codec } = javascript(encoderFile(dir, 'fport.js', 'return { bytes: [1], fPort: input.data.fPort };'));
  const note = '(FPort 0 carries MAC commands, 224 the LoRaWAN test protocol, 225..255 are reserved)';
  assert.deepEqual(encode(codec, { fPort: 0 }), failed(`encodeDownlink's fPort is 0, not an integer 1..223 ${note}`));
  assert.deepEqual(encode(codec, { fPort: 224 }), failed(`encodeDownlink's fPort is 224, not an integer 1..223 ${note}`));
  assert.deepEqual(encode(codec, { fPort: 2.5 }), failed(`encodeDownlink's fPort is 2.5, not an integer 1..223 ${note}`));
  assert.deepEqual(encode(codec, { fPort: '10' }), failed(`encodeDownlink's fPort is "10", not an integer 1..223 ${note}`));
  assert.deepEqual(encode(codec, { fPort: 223 }), ok([1], 223));
  assert.deepEqual(encode(codec, { fPort: null }, 15), ok([1], 15), 'fPort null leaves the caller FPort, as TTS does');
  assert.deepEqual(encode(codec, {}, 15), ok([1], 15), 'no fPort leaves the caller FPort');

  assert.deepEqual(encode(codec, { fPort: 5 }, 0), failed(`encodeDownlink not called: the downlink's FPort 0 is not an integer 1..223 ${note}`));
  assert.deepEqual(encode(codec, { fPort: 5 }, 300), failed(`encodeDownlink not called: the downlink's FPort 300 is not an integer 1..223 ${note}`));
});

test('data that is not a JSON object is refused before the formatter runs', (t) => {
  const dir = tempDir(t);
  const { codec } = javascript(encoderFile(dir, 'echo.js', 'return { bytes: [Object.keys(input.data).length], fPort: 1 };'));
  const objectLike = 'encodeDownlink not called: the downlink\'s data must be a JSON object like { "level": 40 }';
  assert.deepEqual(encode(codec, [1, 2]), failed(`${objectLike}, got an array`));
  assert.deepEqual(encode(codec, null), failed(`${objectLike}, got null`));
  assert.deepEqual(encode(codec, 'level=40'), failed(`${objectLike}, got a string`));
  assert.deepEqual(encode(codec, undefined), failed(`${objectLike}, got nothing`));
  const circular: Record<string, unknown> = { level: 1 };
  circular.self = circular;
  const refused = encode(codec, circular);
  assert.match(refused.ok ? '' : refused.error, /^encodeDownlink not called: the downlink's data cannot be written as JSON: .*circular/i);
  const big = encode(codec, { level: 1n });
  assert.match(big.ok ? '' : big.error, /^encodeDownlink not called: the downlink's data cannot be written as JSON: .*BigInt/);
  assert.deepEqual(encode(codec, { a: 1, b: 2 }), ok([2], 1));
});

test('output over max_output_bytes is refused', (t) => {
  const dir = tempDir(t);
  const { codec } = javascript(encoderFile(dir, 'chatty.js', "return { bytes: [1], fPort: 1, warnings: ['x'.repeat(300)] };"), {
    timeoutMs: 50,
    maxOutputBytes: 200,
  });
  const result = encode(codec, {});
  assert.match(result.ok ? '' : result.error, /^encodeDownlink output is \d+ bytes of JSON, over formatters\.max_output_bytes \(200\)$/);
});

test('an endless encodeDownlink is stopped by the time limit; the next call and decodeUplink work', (t) => {
  const dir = tempDir(t);
  const { codec } = javascript(encoderFile(dir, 'stuck.js', 'if (input.data.stuck) while (true) {}\nreturn { bytes: [2], fPort: 1 };'));
  assert.deepEqual(encode(codec, { stuck: true }), failed('encodeDownlink did not finish within 50 ms'));
  assert.deepEqual(encode(codec, { stuck: false }), ok([2], 1));
  assert.deepEqual(codec.decode({ bytes: Buffer.from([9]), fPort: 1, recvTime: new Date(0) }), { data: { first: 9 } });
});

test('encodeDownlink is rested after timeouts in a row on a count of its own: uplinks keep decoding, and do not reset it', (t) => {
  const dir = tempDir(t);
  let nowMs = 1_000;
  const { codec, log } = javascript(
    encoderFile(dir, 'sometimes-stuck.js', 'if (input.data.stuck) for (;;) {}\nreturn { bytes: [1], fPort: 1 };'),
    { timeoutMs: 20, maxOutputBytes: 1024, maxConsecutiveTimeouts: 3, cooldownMs: 60_000 },
    () => nowMs,
  );
  const uplink = () => codec.decode({ bytes: Buffer.from([5]), fPort: 1, recvTime: new Date(0) });
  const warnings = () => log.lines().filter((line) => line.level === 'warn');

  for (let round = 0; round < 3; round++) {
    assert.deepEqual(encode(codec, { stuck: true }), failed('encodeDownlink did not finish within 20 ms'));
    assert.deepEqual(uplink(), { data: { first: 5 } }, 'a decoded uplink between timeouts does not reset the encoder count');
  }
  assert.equal(warnings().length, 1);
  assert.match(
    String(warnings()[0]?.msg),
    /sometimes-stuck\.js: encodeDownlink timed out 3 times in a row: not calling it for 60 s.*downlinks it would encode are refused/,
  );
  assert.equal(warnings()[0]?.function, 'encodeDownlink');

  assert.deepEqual(encode(codec, { stuck: false }), failed('encodeDownlink not called: it timed out 3 times in a row; it is tried again 60 s from now'));
  assert.deepEqual(uplink(), { data: { first: 5 } }, 'decodeUplink is not rested');

  nowMs += 60_001;
  assert.deepEqual(encode(codec, { stuck: false }), ok([1], 1));
  assert.ok(log.messages().some((message) => /sometimes-stuck\.js: encodeDownlink finishes again/.test(message)));
});

test('refused downlinks are not counted as undecoded uplinks in iotgw_formatter_errors_total', async (t) => {
  const dir = tempDir(t);
  const metrics = createMetrics({ processMetrics: false });
  const cache = createFormatterCache(LIMITS, { log: captureLog().log, metrics });
  const codec = cache.codecFor({ codec: 'javascript', formatterFile: encoderFile(dir, 'refuses.js', "throw new Error('no');") });
  assert.equal(encode(codec, {}).ok, false);
  assert.deepEqual((await metrics.formatterErrors.get()).values, []);
});
