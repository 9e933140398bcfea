// JavaScript payload formatters (TTN `decodeUplink(input)` form) run in node:vm: realistic codecs decode; TTN's
// warnings and errors map onto the record; endless loops (and promise chains), throws and odd or oversized output become an error
// on the record instead of an exception; the context reaches nothing of the host; one file is compiled once;
// a broken file is refused at codecFor with its name; import() cannot be compiled, however it is spelled, while
// `import` in comments, strings and names is fine; a formatter that keeps timing out is rested; every failure is
// counted in iotgw_formatter_errors_total by kind.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../../src/errors.ts';
import { createFormatterCache, type FormatterCacheOptions } from '../../src/codecs/javascript-formatter.ts';
import type { DecodedPayload, PayloadCodec } from '../../src/codecs/payload-codec.ts';
import { createMetrics } from '../../src/core/metrics.ts';
import { captureLog } from '../helpers/capture-log.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const CLIMATE = fileURLToPath(new URL('../fixtures/formatters/climate-sensor.js', import.meta.url));
const WATER = fileURLToPath(new URL('../fixtures/formatters/water-meter.js', import.meta.url));
const RECEIVED = new Date('2025-03-04T05:06:07.000Z');
const LIMITS: FormatterCacheOptions = { timeoutMs: 50, maxOutputBytes: 16384 };

function decode(codec: PayloadCodec, bytes: readonly number[], fPort = 1): DecodedPayload {
  return codec.decode({ bytes: Buffer.from(bytes), fPort, recvTime: RECEIVED });
}

/** A formatter file in a temp dir, for the faulty ones that have no place among the fixtures. */
function formatterFile(dir: string, name: string, source: string): string {
  const path = join(dir, name);
  writeFileSync(path, source);
  return path;
}

function javascript(cache: ReturnType<typeof createFormatterCache>, file: string): PayloadCodec {
  return cache.codecFor({ codec: 'javascript', formatterFile: file });
}

function configErrorText(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error.message;
  }
  assert.fail('expected codecFor to refuse the formatter');
}

test('a TTN-style sensor codec decodes by FPort, with warnings and errors mapped', () => {
  const codec = javascript(createFormatterCache(LIMITS, { log: captureLog().log }), CLIMATE);
  assert.equal(codec.name, 'javascript:climate-sensor.js');
  // 21.5 °C, 45 %RH, 3.3 V
  assert.deepEqual(decode(codec, [0x08, 0x66, 90, 0x0c, 0xe4]), { data: { temperature: 21.5, humidity: 45, battery: 3.3 } });
  // -5.25 °C, 100 %RH, 2.4 V: a low-battery warning beside the data
  assert.deepEqual(decode(codec, [0xfd, 0xf3, 200, 0x09, 0x60]), {
    data: { temperature: -5.25, humidity: 100, battery: 2.4 },
    warnings: ['low battery: 2400 mV'],
  });
  assert.deepEqual(decode(codec, [1, 4, 15], 2), { data: { firmware: '1.4', interval_minutes: 15 } });
  assert.deepEqual(decode(codec, [1, 2, 3], 9), { error: 'decodeUplink errors: unknown FPort 9' });
  assert.deepEqual(decode(codec, [1, 2], 1), { error: 'decodeUplink errors: measurement needs 5 bytes, got 2' });
});

test('a codec with helper functions, var and an exports line decodes; input.bytes is an Array, recvTime a Date', () => {
  const codec = javascript(createFormatterCache(LIMITS, { log: captureLog().log }), WATER);
  assert.deepEqual(decode(codec, [0x10, 0x27, 0x00, 0x00, 0b0101], 3), {
    data: { volume_liters: 10000, alarms: ['leak', 'reverse_flow'], read_at: '2025-03-04T05:06:07.000Z', bytes_is_array: true },
    warnings: ['alarm: leak, reverse_flow'],
  });
  assert.deepEqual(decode(codec, [0xff, 0xff, 0xff, 0xff, 0], 3).data, {
    volume_liters: 4294967295,
    alarms: [],
    read_at: '2025-03-04T05:06:07.000Z',
    bytes_is_array: true,
  });
  assert.deepEqual(decode(codec, [1]), { error: 'decodeUplink errors: expected 5 bytes, got 1' });
});

test('an endless loop is stopped by the time limit; the next call works', (t) => {
  const dir = tempDir(t);
  const cache = createFormatterCache(LIMITS, { log: captureLog().log });
  const codec = javascript(
    cache,
    formatterFile(dir, 'stuck.js', 'function decodeUplink(input) { if (input.fPort === 66) while (true) {} return { data: { first: input.bytes[0] } }; }'),
  );
  assert.deepEqual(decode(codec, [1], 66), { error: 'decodeUplink did not finish within 50 ms' });
  assert.deepEqual(decode(codec, [2], 1), { data: { first: 2 } });
});

// In its own process, as in the gateway: node:test enables async hooks, and stopping a promise chain at the time
// limit unbalances their stack, which aborts a process that has them on (see javascript-formatter.ts).
test('an endless promise chain is stopped by the time limit too; the next call works', (t) => {
  const dir = tempDir(t);
  const formatter = formatterFile(
    dir,
    'promise-loop.js',
    `function decodeUplink(input) {
      if (input.fPort === 67) { var spin = function () { return Promise.resolve().then(spin); }; spin(); }
      return { data: { first: input.bytes[0] } };
    }`,
  );
  const script = formatterFile(
    dir,
    'run-formatter.ts',
    `import { createFormatterCache } from ${JSON.stringify(fileURLToPath(new URL('../../src/codecs/javascript-formatter.ts', import.meta.url)))};
    import { createLogger } from ${JSON.stringify(fileURLToPath(new URL('../../src/core/log.ts', import.meta.url)))};
    const cache = createFormatterCache({ timeoutMs: 50, maxOutputBytes: 1024 }, { log: createLogger({ level: 'silent', gatewayId: 'test' }) });
    const codec = cache.codecFor({ codec: 'javascript', formatterFile: process.argv[2] ?? '' });
    const call = (fPort: number, byte: number) => codec.decode({ bytes: Buffer.from([byte]), fPort, recvTime: new Date() });
    process.stdout.write(JSON.stringify([call(67, 1), call(1, 2), call(67, 3), call(1, 4)]));`,
  );
  const child = spawnSync(process.execPath, ['--import', 'tsx', script, formatter], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    encoding: 'utf8',
  });
  assert.equal(child.status, 0, child.stderr);
  assert.deepEqual(JSON.parse(child.stdout), [
    { error: 'decodeUplink did not finish within 50 ms' },
    { data: { first: 2 } },
    { error: 'decodeUplink did not finish within 50 ms' },
    { data: { first: 4 } },
  ]);
});

test('a throw, a non-object, bad data, a Promise, BigInt or output over max_output_bytes become an error, never an exception', (t) => {
  const dir = tempDir(t);
  const cache = createFormatterCache({ timeoutMs: 200, maxOutputBytes: 200 }, { log: captureLog().log });
  const codec = javascript(
    cache,
    formatterFile(
      dir,
      'faulty.js',
      `function decodeUplink(input) {
        switch (input.fPort) {
          case 1: return { data: { n: input.bytes[5].value } };
          case 2: throw 'plain string';
          case 3: return 42;
          case 4: return undefined;
          case 5: return { data: [1, 2] };
          case 6: return { data: { big: 1n } };
          case 7: return { data: { text: 'x'.repeat(500) } };
          case 8: return Promise.resolve({ data: {} });
          case 9: return { data: { kept: 1, fn: function () {}, get computed() { return 7; } } };
          default: return { warnings: ['no data'] };
        }
      }`,
    ),
  );
  assert.deepEqual(decode(codec, [0], 1), { error: "decodeUplink threw TypeError: Cannot read properties of undefined (reading 'value')" });
  assert.deepEqual(decode(codec, [0], 2), { error: 'decodeUplink threw plain string' });
  assert.deepEqual(decode(codec, [0], 3), { error: 'decodeUplink must return an object like { data: {...} }, got a number' });
  assert.deepEqual(decode(codec, [0], 4), { error: 'decodeUplink returned undefined, not an object like { data: {...} }' });
  assert.deepEqual(decode(codec, [0], 5), { error: "decodeUplink's data must be an object, got an array" });
  assert.match(decode(codec, [0], 6).error ?? '', /^decodeUplink returned something JSON cannot hold: TypeError: .*BigInt/);
  assert.match(decode(codec, [0], 7).error ?? '', /^decodeUplink output is \d+ bytes of JSON, over formatters\.max_output_bytes \(200\)$/);
  assert.match(decode(codec, [0], 8).error ?? '', /returned a Promise/);
  assert.deepEqual(decode(codec, [0], 9), { data: { kept: 1, computed: 7 } }, 'functions dropped, getters read inside the context');
  assert.deepEqual(decode(codec, [0], 10), { error: "decodeUplink's data must be an object, got nothing", warnings: ['no data'] });
});

test('the formatter reaches nothing of the host: no process, require, host globals or code from strings', (t) => {
  const dir = tempDir(t);
  const cache = createFormatterCache(LIMITS, { log: captureLog().log });
  const codec = javascript(
    cache,
    formatterFile(
      dir,
      'probe.js',
      `function attempt(run) { try { return String(run()); } catch (error) { return error.name + ': ' + error.message; } }
      function decodeUplink() {
        return { data: {
          process: typeof process,
          require: typeof require,
          globalProcess: typeof globalThis.process,
          timers: typeof setTimeout + ' ' + typeof setImmediate + ' ' + typeof queueMicrotask,
          buffer: typeof Buffer,
          escape: attempt(function () { return typeof this.constructor.constructor('return process')(); }.bind(globalThis)),
          functionCtor: attempt(function () { return Function('return 1')(); }),
          evaluate: attempt(function () { return eval('1 + 1'); }),
        } };
      }`,
    ),
  );
  const { data, error } = decode(codec, [1]);
  assert.equal(error, undefined);
  assert.equal(data?.process, 'undefined');
  assert.equal(data?.require, 'undefined');
  assert.equal(data?.globalProcess, 'undefined');
  assert.equal(data?.timers, 'undefined undefined undefined');
  assert.equal(data?.buffer, 'undefined');
  assert.match(String(data?.escape), /^EvalError: Code generation from strings disallowed/);
  assert.match(String(data?.functionCtor), /^EvalError: Code generation from strings disallowed/);
  assert.match(String(data?.evaluate), /^EvalError: Code generation from strings disallowed/);
});

test('the time limit cannot be escaped: not by an accessor on the input slot, nor by a FinalizationRegistry callback', (t) => {
  const dir = tempDir(t);
  const cache = createFormatterCache(LIMITS, { log: captureLog().log });
  // The host writes each input into the context; an accessor there would run formatter code outside the limit.
  const accessor = formatterFile(
    dir,
    'accessor.js',
    `try { Object.defineProperty(globalThis, '__iotgwInput', { set: function () { for (;;) {} } }); } catch (e) {}
     function decodeUplink(input) { return { data: { n: input.bytes.length } }; }`,
  );
  assert.deepEqual(decode(javascript(cache, accessor), [1, 2, 3]), { data: { n: 3 } });
  const readOnly = formatterFile(
    dir,
    'read-only.js',
    `Object.defineProperty(globalThis, '__iotgwInput', { writable: false });\nfunction decodeUplink() { return { data: {} }; }`,
  );
  const outcome = decode(javascript(cache, readOnly), [1]);
  assert.match(String(outcome.error), /decodeUplink failed: .*read only/, 'a read-only slot fails the call, it does not hang it');
  const registry = formatterFile(dir, 'registry.js', `function decodeUplink() { return { data: { registry: typeof FinalizationRegistry } }; }`);
  assert.deepEqual(decode(javascript(cache, registry), [1]), { data: { registry: 'undefined' } });
});

test('one file is compiled once: two spellings of its path give the same codec', () => {
  const captured = captureLog();
  const cache = createFormatterCache(LIMITS, { log: captured.log });
  const spelled = relative(process.cwd(), CLIMATE);
  const first = javascript(cache, spelled);
  const second = javascript(cache, `./${join(spelled, '..', '..', 'formatters', 'climate-sensor.js')}`);
  assert.equal(first, second);
  assert.equal(captured.messages().filter((message) => message === 'payload formatter compiled').length, 1);
});

test('a missing file, a syntax error or no decodeUplink is refused at codecFor, naming the file and what to do', (t) => {
  const dir = tempDir(t);
  const cache = createFormatterCache(LIMITS, { log: captureLog().log });
  const missing = join(dir, 'nope.js');
  assert.match(
    configErrorText(() => javascript(cache, missing)),
    new RegExp(`formatter_file ${missing}:\\n  - cannot read it .*ENOENT.*check formatter_file`),
  );

  const broken = formatterFile(dir, 'broken.js', 'function decodeUplink(input) {\n  return { data: { a: 1 };\n}\n');
  assert.match(
    configErrorText(() => javascript(cache, broken)),
    new RegExp(`formatter_file ${broken}:\\n  - JavaScript syntax error on line 2: .*node --check`),
  );

  const noDecoder = formatterFile(dir, 'encoder-only.js', 'function encodeDownlink(input) { return { bytes: [] }; }\n');
  assert.match(
    configErrorText(() => javascript(cache, noDecoder)),
    /encoder-only\.js:\n {2}- it defines no decodeUplink function/,
  );

  const needsRequire = formatterFile(dir, 'node-module.js', "var util = require('util');\nfunction decodeUplink() { return { data: {} }; }\n");
  assert.match(
    configErrorText(() => javascript(cache, needsRequire)),
    /node-module\.js:\n {2}- its top-level code failed: ReferenceError: require is not defined/,
  );

  const importer = formatterFile(dir, 'importer.js', "function decodeUplink() { import('node:fs'); return { data: {} }; }\n");
  assert.match(
    configErrorText(() => javascript(cache, importer)),
    /importer\.js:\n {2}- it calls import\(\) on line 1; payload formatters cannot load modules/,
  );

  assert.match(
    configErrorText(() => cache.codecFor({ codec: 'javascript' })),
    /codec javascript needs formatter_file/,
  );
  assert.equal(cache.codecFor({ codec: 'cayenne-lpp' }).name, 'cayenne-lpp');
  assert.equal(cache.codecFor({ codec: 'raw' }).name, 'raw');
});

test('after 5 timeouts in a row the formatter is rested for the cool-down, logged once, then tried again', (t) => {
  const dir = tempDir(t);
  const captured = captureLog();
  let nowMs = 1_000;
  const cache = createFormatterCache({ timeoutMs: 20, maxOutputBytes: 1024, cooldownMs: 60_000 }, { log: captured.log, nowMs: () => nowMs });
  const codec = javascript(
    cache,
    formatterFile(dir, 'sometimes-stuck.js', 'function decodeUplink(input) { if (input.fPort === 66) for (;;) {} return { data: { ok: true } }; }'),
  );
  const warnings = () => captured.lines().filter((line) => line.level === 'warn');

  for (let round = 0; round < 4; round++) assert.deepEqual(decode(codec, [0], 66), { error: 'decodeUplink did not finish within 20 ms' });
  assert.deepEqual(decode(codec, [0], 1), { data: { ok: true } }, 'a finished call resets the count');
  for (let round = 0; round < 5; round++) assert.deepEqual(decode(codec, [0], 66), { error: 'decodeUplink did not finish within 20 ms' });
  assert.equal(warnings().length, 1);
  assert.match(String(warnings()[0]?.msg), /sometimes-stuck\.js: decodeUplink timed out 5 times in a row: not calling it for 60 s/);

  // Resting: not even a good uplink runs it.
  assert.deepEqual(decode(codec, [0], 1), { error: 'decodeUplink not called: it timed out 5 times in a row; it is tried again 60 s from now' });
  nowMs += 59_999;
  assert.match(decode(codec, [0], 66).error ?? '', /^decodeUplink not called/);

  // After the cool-down it is called again; one more timeout rests it again at once, without another warning.
  nowMs += 2;
  assert.deepEqual(decode(codec, [0], 66), { error: 'decodeUplink did not finish within 20 ms' });
  assert.match(decode(codec, [0], 1).error ?? '', /^decodeUplink not called: it timed out 6 times/);
  assert.equal(warnings().length, 1, 'logged once');

  nowMs += 60_001;
  assert.deepEqual(decode(codec, [0], 1), { data: { ok: true } });
  assert.ok(captured.messages().some((message) => /sometimes-stuck\.js: decodeUplink finishes again/.test(message)));
  assert.deepEqual(decode(codec, [0], 66), { error: 'decodeUplink did not finish within 20 ms' }, 'the count starts over');
  assert.deepEqual(decode(codec, [0], 1), { data: { ok: true } });
});

// import() rejects with a host error (Node 20, 22 and 24 ignore importModuleDynamically without
// --experimental-vm-modules), whose constructor.constructor is the host's Function: every spelling must be refused.
test('import() is refused however it is spelled, so its host-realm rejection never reaches a formatter', (t) => {
  const dir = tempDir(t);
  const cache = createFormatterCache(LIMITS, { log: captureLog().log });
  const reachProcess = ".catch(function (e) { globalThis.__iotgwEscaped = e.constructor.constructor('return process')(); })";
  const variants: Record<string, string> = {
    'comment-between': `import/**/('x')${reachProcess};`,
    'arrow-in-review': "import/**/('x').catch(e => e.constructor.constructor('return process')());",
    'newline-between': `import\n('x')${reachProcess};`,
    'line-comment-between': `import // load\n('x')${reachProcess};`,
    'in-decoder': `function probe() { return import ( 'node:fs' )${reachProcess}; }`,
    'computed-specifier': `var name = 'node:' + 'fs'; import(name)${reachProcess};`,
    'in-template-expression': `var text = \`\${import('x')${reachProcess}}\`;`,
  };
  for (const [label, code] of Object.entries(variants)) {
    const file = formatterFile(dir, `${label}.js`, `function decodeUplink() { return { data: { escaped: typeof __iotgwEscaped } }; }\n${code}\n`);
    assert.match(
      configErrorText(() => javascript(cache, file)),
      /- it calls import\(\) on line \d+; payload formatters cannot load modules/,
      label,
    );
  }
  const escapedKeyword = formatterFile(dir, 'escaped-keyword.js', `function decodeUplink() { return { data: {} }; }\n\\u0069mport('x')${reachProcess};\n`);
  assert.match(
    configErrorText(() => javascript(cache, escapedKeyword)),
    /- JavaScript syntax error on line 2: Keyword must not contain escaped characters/,
  );
  assert.equal((globalThis as Record<string, unknown>).__iotgwEscaped, undefined);
});

test('`import` in comments, strings, regular expressions and names compiles and keeps its meaning', (t) => {
  const dir = tempDir(t);
  const codec = javascript(
    createFormatterCache(LIMITS, { log: captureLog().log }),
    formatterFile(
      dir,
      'mentions-import.js',
      `// Ported from a codec that used import('../ingress/lorawan/helpers.js'); everything is inline now.
      /* import( */
      var important = { import: 'import(', imported: true };
      function decodeUplink(input) {
        var reimported = important.import + "import" + \`import\${input.fPort}\`;
        return { data: {
          text: reimported,
          key: Object.keys(important)[0],
          matches: /import\\(/.test('import(') && /[import]/u.test('t'),
          flag: important.imported,
        } };
      }`,
    ),
  );
  assert.deepEqual(decode(codec, [1], 7), { data: { text: 'import(importimport7', key: 'import', matches: true, flag: true } });
});

test('every uplink a formatter does not decode is counted in iotgw_formatter_errors_total by kind', async (t) => {
  const dir = tempDir(t);
  const metrics = createMetrics({ processMetrics: false });
  let nowMs = 0;
  const cache = createFormatterCache(
    { timeoutMs: 20, maxOutputBytes: 100, maxConsecutiveTimeouts: 2, cooldownMs: 1000 },
    { log: captureLog().log, metrics, nowMs: () => nowMs },
  );
  const codec = javascript(
    cache,
    formatterFile(
      dir,
      'counted.js',
      `function decodeUplink(input) {
        switch (input.fPort) {
          case 1: return { data: { ok: true } };
          case 2: throw new RangeError('bad length');
          case 3: return { errors: ['unknown FPort'] };
          case 4: for (;;) {}
          case 5: return Promise.resolve({ data: {} });
          case 6: return { data: { text: 'x'.repeat(200) } };
          default: return { data: [1] };
        }
      }`,
    ),
  );
  for (const fPort of [1, 2, 2, 3, 5, 6, 7, 4, 4]) decode(codec, [0], fPort);
  assert.match(decode(codec, [0], 1).error ?? '', /^decodeUplink not called/, 'resting after 2 timeouts');
  nowMs += 1001;
  assert.deepEqual(decode(codec, [0], 1), { data: { ok: true } });

  const counted = Object.fromEntries(
    (await metrics.formatterErrors.get()).values.map(({ labels, value }) => [`${String(labels.codec)} ${String(labels.kind)}`, value]),
  );
  assert.deepEqual(counted, {
    'javascript:counted.js threw': 2,
    'javascript:counted.js errors': 1,
    'javascript:counted.js output': 3,
    'javascript:counted.js timeout': 2,
    'javascript:counted.js cooldown': 1,
  });
});
