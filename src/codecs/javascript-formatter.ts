// JavaScript payload formatters in the TTN/ChirpStack form: a file that defines `decodeUplink(input)` and
// returns `{ data, warnings, errors }`, so codecs from the TTN device repository (lorawan-devices,
// vendor/*/*.js) work unchanged. Each file is compiled once per real path into its own node:vm context, so
// 1,000 devices sharing a formatter share one script; each decode runs a small precompiled call script in that
// context under a time limit, and the result crosses back to the host only as a JSON string.
//
// node:vm isolates against mistakes (a stray global, an endless loop, a huge or odd result); it is NOT a
// security boundary against hostile code. Formatters are files the operator installs, trusted like the config.
// Still, nothing of the host should leak by accident. import() would: without --experimental-vm-modules, Node
// 20, 22 and 24 ignore Script's importModuleDynamically and reject import() with a host TypeError, whose
// constructor.constructor is the host's Function (it compiles strings: `return process`). An in-context
// rejection needs that flag, so instead the formatter is compiled with every `import` in its text written
// `impor\u0074`: the same identifiers, property names, strings and regular expressions, but V8 refuses an
// escaped keyword, so the import() call (however spaced or commented) cannot compile. Only String.raw,
// Function.prototype.toString and columns in stack traces see the difference.
// A known Node limit: stopping an endless promise chain at the time limit leaves async_hooks' stack unbalanced,
// which aborts the process when async hooks are enabled (AsyncLocalStorage, APM agents). iotgw enables none.
import { readFileSync, realpathSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { type Context, createContext, Script } from 'node:vm';
import { ConfigError, errorMessage } from '../errors.ts';
import type { Logger } from '../core/log.ts';
import type { Metrics } from '../core/metrics.ts';
import { builtinCodec, type CodecChoice, type DecodedPayload, type PayloadCodec, type UplinkInput } from './payload-codec.ts';

export interface FormatterCacheOptions {
  /** Wall time one decodeUplink call may take, the microtasks it queues included. */
  readonly timeoutMs: number;
  /** Largest JSON text of one decodeUplink result. */
  readonly maxOutputBytes: number;
  /** Timeouts in a row after which a formatter is not called for `cooldownMs`. Default 5. */
  readonly maxConsecutiveTimeouts?: number;
  /** Default 60,000. */
  readonly cooldownMs?: number;
}

export interface FormatterCacheDeps {
  readonly log: Logger;
  /** Counts uplinks a formatter did not decode; the gateway passes its metrics, `config check` none. */
  readonly metrics?: Pick<Metrics, 'formatterErrors'>;
  /** Monotonic milliseconds for the cool-down; default performance.now. */
  readonly nowMs?: () => number;
}

export interface FormatterCache {
  /**
   * raw and cayenne-lpp are built in; javascript compiles formatter_file on first use (one codec per real path).
   * Throws a ConfigError naming the file when it cannot be read, does not compile or defines no decodeUplink.
   */
  codecFor(choice: CodecChoice): PayloadCodec;
}

/** The `kind` label of iotgw_formatter_errors_total. */
export type FormatterFailure =
  /** decodeUplink threw (or the call failed in the context). */
  | 'threw'
  /** decodeUplink returned a non-empty errors list. */
  | 'errors'
  /** decodeUplink ran past formatters.timeout_ms and was stopped. */
  | 'timeout'
  /** The result was not { data: {...} }: a Promise, a non-object, something JSON cannot hold, over max_output_bytes. */
  | 'output'
  /** Not called: the formatter is resting after timeouts in a row. */
  | 'cooldown';

const DEFAULT_MAX_CONSECUTIVE_TIMEOUTS = 5;
const DEFAULT_COOLDOWN_MS = 60_000;
/** Error texts from a formatter (thrown messages, errors[]) are cut here: they end up in every record. */
const MAX_ERROR_CHARS = 500;

// Runs first in every context. It keeps the intrinsics the call needs before the formatter can replace them,
// offers `module.exports` / `exports` for codecs written to be require()d in tests, and defines `__iotgw`
// (read-only) and `__iotgwInput`, the slot the host writes each input into: a plain data property that cannot be
// redefined, so a formatter cannot turn the host's write into a call of its own code, outside the time limit.
// FinalizationRegistry goes: its callbacks would run later as tasks of their own, outside any time limit. `call` returns one string: a tag character and its text, so no object of the context ever
// reaches the host: o = JSON of the result, t = what was thrown, s = JSON.stringify failed,
// u = typeof a result JSON cannot express, p = a Promise was returned.
const SETUP_SCRIPT = new Script(
  `(function (global) {
  'use strict';
  var parse = JSON.parse, stringify = JSON.stringify, NativeDate = Date, NativeError = Error, NativeString = String;
  var defineProperty = Object.defineProperty, freeze = Object.freeze;
  var moduleObject = { exports: {} };
  defineProperty(global, '__iotgwInput', { value: '', writable: true, enumerable: false, configurable: false });
  delete global.FinalizationRegistry;
  global.module = moduleObject;
  global.exports = moduleObject.exports;
  function findDecoder() {
    if (typeof decodeUplink === 'function') return decodeUplink;
    var exported = moduleObject.exports;
    if (exported !== null && typeof exported === 'object' && typeof exported.decodeUplink === 'function') return exported.decodeUplink;
    return null;
  }
  function describe(error) {
    try {
      return error instanceof NativeError ? error.name + ': ' + error.message : NativeString(error);
    } catch (ignored) {
      return 'a value that cannot be shown';
    }
  }
  defineProperty(global, '__iotgw', {
    value: freeze({
      hasDecoder: function () { return findDecoder() !== null; },
      call: function (inputJson) {
        var input = parse(inputJson);
        var result, json;
        try {
          result = findDecoder()({ bytes: input.bytes, fPort: input.fPort, recvTime: new NativeDate(input.recvTimeMs) });
        } catch (error) {
          return 't' + describe(error);
        }
        if (result !== null && typeof result === 'object' && typeof result.then === 'function') return 'p';
        try {
          json = stringify(result);
        } catch (error) {
          return 's' + describe(error);
        }
        return json === undefined ? 'u' + typeof result : 'o' + json;
      },
    }),
  });
})(globalThis);`,
  { filename: 'iotgw-formatter-setup.js' },
);
const HAS_DECODER_SCRIPT = new Script('__iotgw.hasDecoder()', { filename: 'iotgw-formatter-check.js' });
const CALL_SCRIPT = new Script('__iotgw.call(__iotgwInput)', { filename: 'iotgw-formatter-call.js' });

export function createFormatterCache(options: FormatterCacheOptions, deps: FormatterCacheDeps): FormatterCache {
  const log = deps.log.child({ component: 'payload-formatter' });
  const nowMs = deps.nowMs ?? (() => performance.now());
  const byRealPath = new Map<string, PayloadCodec>();

  function codecFor(choice: CodecChoice): PayloadCodec {
    if (choice.codec !== 'javascript') return builtinCodec(choice.codec);
    if (choice.formatterFile === undefined || choice.formatterFile === '') {
      throw new ConfigError('formatter_file', ['codec javascript needs formatter_file: the .js file that defines decodeUplink(input)']);
    }
    // The config loader expanded ${VAR} and made the path absolute; relative paths from tests resolve here.
    const path = resolve(choice.formatterFile);
    let realPath: string;
    try {
      realPath = realpathSync(path);
    } catch (error) {
      throw formatterError(
        path,
        `cannot read it (${errorMessage(error)}); check formatter_file (a relative path is resolved from the working directory, ${process.cwd()})`,
      );
    }
    const cached = byRealPath.get(realPath);
    if (cached !== undefined) return cached;
    const codec = compileFormatter(realPath, { ...options, nowMs, log, metrics: deps.metrics });
    byRealPath.set(realPath, codec);
    log.info({ file: realPath, codec: codec.name }, 'payload formatter compiled');
    return codec;
  }

  return { codecFor };
}

function formatterError(path: string, issue: string): ConfigError {
  return new ConfigError(`formatter_file ${path}`, [issue]);
}

interface CompileSettings extends FormatterCacheOptions {
  readonly nowMs: () => number;
  readonly log: Logger;
  readonly metrics: Pick<Metrics, 'formatterErrors'> | undefined;
}

/** A decode result and, when it holds no data, why: the counter's kind. */
interface Outcome {
  readonly payload: DecodedPayload;
  readonly failure?: FormatterFailure;
}

/** The formatter file -> a codec whose every decode runs in the file's own context (see the header). */
function compileFormatter(path: string, settings: CompileSettings): PayloadCodec {
  const name = `javascript:${basename(path)}`;
  const script = compileSource(path);
  const { sandbox, context } = loadInContext(path, name, script, settings.timeoutMs);
  return { name, decode: createDecoder(path, name, sandbox, context, settings) };
}

/** Reads and compiles the file, with `import` escaped; a ConfigError names what is wrong and where. */
function compileSource(path: string): Script {
  let source: string;
  try {
    source = readFileSync(path, 'utf8');
  } catch (error) {
    throw formatterError(path, `cannot read it: ${errorMessage(error)}`);
  }
  let script: Script;
  try {
    script = new Script(source, { filename: path });
  } catch (error) {
    const line = syntaxErrorLine(error);
    throw formatterError(
      path,
      `JavaScript syntax error${line === undefined ? '' : ` on line ${line}`}: ${errorMessage(error)}; fix the file (node --check ${path} shows where)`,
    );
  }
  // The file compiles as written; compiled again with `import` escaped (see the header), it fails only where
  // import is the keyword: import() or import.meta. Line numbers stay, so the error can name the line.
  if (source.includes('import')) {
    try {
      script = new Script(source.replaceAll('import', 'impor\\u0074'), { filename: path });
    } catch (error) {
      const line = syntaxErrorLine(error);
      throw formatterError(
        path,
        `it calls import()${line === undefined ? '' : ` on line ${line}`}; payload formatters cannot load modules: put everything decodeUplink needs in the one file`,
      );
    }
  }
  return script;
}

/** A new context with SETUP_SCRIPT, then the formatter's top-level code run in it; it must define decodeUplink. */
function loadInContext(path: string, name: string, script: Script, timeoutMs: number): { sandbox: Record<string, unknown>; context: Context } {
  // A null-prototype sandbox: the context's global then inherits nothing from the host, so
  // `this.constructor.constructor` is the context's Function, which may not compile strings.
  const sandbox: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  const context: Context = createContext(sandbox, {
    name,
    codeGeneration: { strings: false, wasm: false },
    microtaskMode: 'afterEvaluate',
  });
  SETUP_SCRIPT.runInContext(context);
  try {
    script.runInContext(context, { timeout: timeoutMs });
  } catch (error) {
    const problem = isTimeout(error)
      ? `its top-level code did not finish within ${timeoutMs} ms (formatters.timeout_ms)`
      : `its top-level code failed: ${describeThrown(error)} (formatters have no require, process, import or timers)`;
    throw formatterError(path, problem);
  }
  if (HAS_DECODER_SCRIPT.runInContext(context, { timeout: timeoutMs }) !== true) {
    throw formatterError(
      path,
      'it defines no decodeUplink function; a payload formatter must define function decodeUplink(input) { return { data: {...}, warnings: [], errors: [] }; } as in the TTN device repository',
    );
  }
  return { sandbox, context };
}

/** decodeUplink called through CALL_SCRIPT under the time limit; rested for cooldownMs after timeouts in a row. */
function createDecoder(
  path: string,
  name: string,
  sandbox: Record<string, unknown>,
  context: Context,
  settings: CompileSettings,
): (input: UplinkInput) => DecodedPayload {
  const { timeoutMs, maxOutputBytes, nowMs, log, metrics } = settings;
  const maxConsecutiveTimeouts = settings.maxConsecutiveTimeouts ?? DEFAULT_MAX_CONSECUTIVE_TIMEOUTS;
  const cooldownMs = settings.cooldownMs ?? DEFAULT_COOLDOWN_MS;
  let consecutiveTimeouts = 0;
  let coolUntilMs = 0;
  let coolingLogged = false;

  function callDecoder(input: UplinkInput): Outcome {
    if (consecutiveTimeouts >= maxConsecutiveTimeouts && nowMs() < coolUntilMs) {
      const error = `decodeUplink not called: it timed out ${consecutiveTimeouts} times in a row; it is tried again ${Math.ceil((coolUntilMs - nowMs()) / 1000)} s from now`;
      return { payload: { error }, failure: 'cooldown' };
    }
    let output: unknown;
    try {
      sandbox.__iotgwInput = JSON.stringify({ bytes: Array.from(input.bytes), fPort: input.fPort, recvTimeMs: input.recvTime.getTime() });
      output = CALL_SCRIPT.runInContext(context, { timeout: timeoutMs });
    } catch (error) {
      if (!isTimeout(error)) return { payload: { error: clip(`decodeUplink failed: ${describeThrown(error)}`) }, failure: 'threw' };
      consecutiveTimeouts += 1;
      if (consecutiveTimeouts >= maxConsecutiveTimeouts) {
        // An endless formatter would take timeoutMs of every uplink from the event loop: stop calling it for a while.
        coolUntilMs = nowMs() + cooldownMs;
        if (!coolingLogged) {
          coolingLogged = true;
          log.warn(
            { file: path, timeouts: consecutiveTimeouts, timeoutMs, cooldownMs },
            `payload formatter ${path} timed out ${consecutiveTimeouts} times in a row: not calling it for ${cooldownMs / 1000} s at a time until it finishes again; uplinks keep their bytes with iotgw.codec_error. Fix its decodeUplink (or raise formatters.timeout_ms)`,
          );
        }
      }
      return { payload: { error: `decodeUplink did not finish within ${timeoutMs} ms` }, failure: 'timeout' };
    }
    if (coolingLogged) log.info({ file: path }, `payload formatter ${path} finishes again`);
    consecutiveTimeouts = 0;
    coolingLogged = false;
    return fromOutput(output, maxOutputBytes);
  }

  function decode(input: UplinkInput): DecodedPayload {
    const { payload, failure } = callDecoder(input);
    if (failure !== undefined) metrics?.formatterErrors.inc({ codec: name, kind: failure });
    return payload;
  }

  return decode;
}

/** The tagged string from SETUP_SCRIPT's `call` -> DecodedPayload. */
function fromOutput(output: unknown, maxOutputBytes: number): Outcome {
  const bad = (error: string): Outcome => ({ payload: { error }, failure: 'output' });
  if (typeof output !== 'string' || output === '') return bad('decodeUplink: no result from the formatter context');
  const text = output.slice(1);
  switch (output[0]) {
    case 't':
      return { payload: { error: clip(`decodeUplink threw ${text}`) }, failure: 'threw' };
    case 'p':
      return bad('decodeUplink returned a Promise; it must return { data, warnings, errors } without async');
    case 's':
      return bad(clip(`decodeUplink returned something JSON cannot hold: ${text}`));
    case 'u':
      return bad(`decodeUplink returned ${text}, not an object like { data: {...} }`);
    default: {
      const bytes = Buffer.byteLength(text);
      if (bytes > maxOutputBytes) return bad(`decodeUplink output is ${bytes} bytes of JSON, over formatters.max_output_bytes (${maxOutputBytes})`);
      return fromResult(JSON.parse(text) as unknown);
    }
  }
}

/** TTN's result contract: `data` an object; `warnings` and `errors` lists of strings; errors mean no data. */
function fromResult(result: unknown): Outcome {
  if (!isPlainObject(result)) {
    return { payload: { error: `decodeUplink must return an object like { data: {...} }, got ${kindOf(result)}` }, failure: 'output' };
  }
  const warnings = asStrings(result.warnings);
  const withWarnings = warnings.length === 0 ? {} : { warnings };
  const errors = asStrings(result.errors);
  if (errors.length > 0) return { payload: { error: clip(`decodeUplink errors: ${errors.join('; ')}`), ...withWarnings }, failure: 'errors' };
  if (!isPlainObject(result.data)) {
    return { payload: { error: `decodeUplink's data must be an object, got ${kindOf(result.data)}`, ...withWarnings }, failure: 'output' };
  }
  return { payload: { data: result.data, ...withWarnings } };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return value === undefined ? 'nothing' : `a ${typeof value}`;
}

function asStrings(value: unknown): string[] {
  if (!Array.isArray(value)) return [];
  return value.map((item) => (typeof item === 'string' ? item : JSON.stringify(item)));
}

function clip(text: string): string {
  return text.length <= MAX_ERROR_CHARS ? text : `${text.slice(0, MAX_ERROR_CHARS)}...`;
}

/** The line V8 names in a SyntaxError's first stack line ("<file>:<line>"), if any. */
function syntaxErrorLine(error: unknown): string | undefined {
  return /:(\d+)\s*$/.exec(String((error as Error).stack).split('\n')[0] ?? '')?.[1];
}

function isTimeout(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 'ERR_SCRIPT_EXECUTION_TIMEOUT';
}

/** Errors from the context are not host `Error`s; read them defensively. */
function describeThrown(error: unknown): string {
  try {
    const { name, message } = error as { name?: unknown; message?: unknown };
    return typeof message === 'string' ? `${typeof name === 'string' ? name : 'Error'}: ${message}` : String(error);
  } catch {
    return 'a value that cannot be shown';
  }
}
