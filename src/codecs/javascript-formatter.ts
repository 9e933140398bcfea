// JavaScript payload formatters in the TTN/ChirpStack form: a file that defines `decodeUplink(input)` and
// returns `{ data, warnings, errors }`, so codecs from the TTN device repository (lorawan-devices,
// vendor/*/*.js) work unchanged; a file that also defines `encodeDownlink(input)` encodes downlinks, input
// `{ data, fPort }` -> `{ bytes, fPort, warnings, errors }`. Each file is compiled once per real path into its own
// node:vm context, so 1,000 devices sharing a formatter share one script; each call runs a small precompiled
// call script in that context under a time limit, and both the input and the result cross only as JSON strings.
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
import { builtinCodec, type CodecChoice, type DecodedPayload, type EncodedDownlink, type PayloadCodec, type UplinkInput } from './payload-codec.ts';

export interface FormatterCacheOptions {
  /** Wall time one decodeUplink or encodeDownlink call may take, the microtasks it queues included. */
  readonly timeoutMs: number;
  /** Largest JSON text of one decodeUplink or encodeDownlink result. */
  readonly maxOutputBytes: number;
  /**
   * Timeouts in a row after which a formatter function is not called for `cooldownMs`. Default 5. decodeUplink
   * and encodeDownlink keep separate counts: one stuck function does not rest the other.
   */
  readonly maxConsecutiveTimeouts?: number;
  /** Default 60,000. */
  readonly cooldownMs?: number;
}

export interface FormatterCacheDeps {
  readonly log: Logger;
  /**
   * Counts uplinks a formatter did not decode; the gateway passes its metrics, `config check` none. Downlinks
   * encodeDownlink refuses are not counted here: the command path that asked counts and reports them.
   */
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

/** The `kind` label of iotgw_formatter_errors_total (for encodeDownlink, the same kinds name its failures). */
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
/**
 * The largest LoRaWAN FRMPayload of any region and data rate (N = 242 at EU868 DR5..7 and US915 DR4, RP002-1.0.4):
 * what encodeDownlink may return. The smaller bound of the region and data rate in use is the sender's to check.
 */
const MAX_FRM_PAYLOAD_BYTES = 242;
/** Why an FPort outside 1..223 is refused (LoRaWAN 1.0.4 section 4.3.2). */
const FPORT_NOTE = '(FPort 0 carries MAC commands, 224 the LoRaWAN test protocol, 225..255 are reserved)';

// Runs first in every context. It keeps the intrinsics the calls need before the formatter can replace them,
// offers `module.exports` / `exports` for codecs written to be require()d in tests, and defines `__iotgw`
// (read-only) and `__iotgwInput`, the slot the host writes each input into as JSON text: a plain data property
// that cannot be redefined, so a formatter cannot turn the host's write into a call of its own code, outside the
// time limit. The input is parsed inside the call, so the formatter gets objects of its own context, never the
// host's. FinalizationRegistry goes: its callbacks would run later as tasks of their own, outside any time limit.
// `decode` and `encode` return one string: a tag character and its text, so no object of the context ever
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
  function exported(name) {
    var value = moduleObject.exports;
    return value !== null && typeof value === 'object' && typeof value[name] === 'function' ? value[name] : null;
  }
  // Names, not global[name]: a top-level const or let in the formatter is no property of the global object.
  function findDecoder() {
    return typeof decodeUplink === 'function' ? decodeUplink : exported('decodeUplink');
  }
  function findEncoder() {
    return typeof encodeDownlink === 'function' ? encodeDownlink : exported('encodeDownlink');
  }
  function describe(error) {
    try {
      return error instanceof NativeError ? error.name + ': ' + error.message : NativeString(error);
    } catch (ignored) {
      return 'a value that cannot be shown';
    }
  }
  function tagged(run) {
    var result, json;
    try {
      result = run();
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
  }
  defineProperty(global, '__iotgw', {
    value: freeze({
      hasDecoder: function () { return findDecoder() !== null; },
      hasEncoder: function () { return findEncoder() !== null; },
      decode: function (inputJson) {
        var input = parse(inputJson);
        return tagged(function () {
          return findDecoder()({ bytes: input.bytes, fPort: input.fPort, recvTime: new NativeDate(input.recvTimeMs) });
        });
      },
      encode: function (inputJson) {
        var input = parse(inputJson);
        return tagged(function () {
          return findEncoder()({ data: input.data, fPort: input.fPort });
        });
      },
    }),
  });
})(globalThis);`,
  { filename: 'iotgw-formatter-setup.js' },
);
const HAS_DECODER_SCRIPT = new Script('__iotgw.hasDecoder()', { filename: 'iotgw-formatter-check.js' });
const HAS_ENCODER_SCRIPT = new Script('__iotgw.hasEncoder()', { filename: 'iotgw-formatter-check.js' });

/** A formatter function the host calls: its call script, and the words its messages use. */
interface EntryPoint {
  readonly name: 'decodeUplink' | 'encodeDownlink';
  readonly script: Script;
  /** The result it must return, as messages show it. */
  readonly returns: string;
  readonly example: string;
  /** What becomes of the messages it would handle while it rests after timeouts, for the warn log. */
  readonly whileResting: string;
}

const DECODE_UPLINK: EntryPoint = {
  name: 'decodeUplink',
  script: new Script('__iotgw.decode(__iotgwInput)', { filename: 'iotgw-formatter-call.js' }),
  returns: '{ data, warnings, errors }',
  example: '{ data: {...} }',
  whileResting: 'uplinks keep their bytes with iotgw.codec_error',
};

const ENCODE_DOWNLINK: EntryPoint = {
  name: 'encodeDownlink',
  script: new Script('__iotgw.encode(__iotgwInput)', { filename: 'iotgw-formatter-call.js' }),
  returns: '{ bytes, fPort, warnings, errors }',
  example: '{ bytes: [...], fPort: 1 }',
  whileResting: 'downlinks it would encode are refused',
};

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
    log.info({ file: realPath, codec: codec.name, encodeDownlink: codec.encodeDownlink !== undefined }, 'payload formatter compiled');
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

/** What one guarded call gave: the formatter's result (parsed from its JSON), or why there is none. */
type CallResult = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: string; readonly failure: FormatterFailure };

/** The context where a formatter's top-level code ran, and the slot each input is written into. */
interface LoadedFormatter {
  readonly path: string;
  readonly sandbox: Record<string, unknown>;
  readonly context: Context;
  readonly hasEncoder: boolean;
}

/** The formatter file -> a codec whose every call runs in the file's own context (see the header). */
function compileFormatter(path: string, settings: CompileSettings): PayloadCodec {
  const name = `javascript:${basename(path)}`;
  const script = compileSource(path);
  const loaded = loadInContext(path, name, script, settings.timeoutMs);
  const decode = createDecoder(loaded, name, settings);
  if (!loaded.hasEncoder) return { name, decode };
  return { name, decode, encodeDownlink: createEncoder(loaded, settings) };
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

/**
 * A new context with SETUP_SCRIPT, then the formatter's top-level code run in it; it must define decodeUplink
 * and may define encodeDownlink (looked for once, here: a codec has encodeDownlink only if the file defines it).
 */
function loadInContext(path: string, name: string, script: Script, timeoutMs: number): LoadedFormatter {
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
  const hasEncoder = HAS_ENCODER_SCRIPT.runInContext(context, { timeout: timeoutMs }) === true;
  return { path, sandbox, context, hasEncoder };
}

/**
 * One formatter function called through its call script under the time limit, and rested for cooldownMs after
 * maxConsecutiveTimeouts timeouts in a row. Each function has its own guard, so its own count: an endless
 * encodeDownlink must not cost the uplinks their decoding, and decoded uplinks must not keep resetting the
 * count of an encodeDownlink that never finishes.
 */
function createGuardedCall(entry: EntryPoint, loaded: LoadedFormatter, settings: CompileSettings): (inputJson: string) => CallResult {
  const { path, sandbox, context } = loaded;
  const { timeoutMs, maxOutputBytes, nowMs, log } = settings;
  const maxConsecutiveTimeouts = settings.maxConsecutiveTimeouts ?? DEFAULT_MAX_CONSECUTIVE_TIMEOUTS;
  const cooldownMs = settings.cooldownMs ?? DEFAULT_COOLDOWN_MS;
  let consecutiveTimeouts = 0;
  let coolUntilMs = 0;
  let coolingLogged = false;

  return function call(inputJson: string): CallResult {
    if (consecutiveTimeouts >= maxConsecutiveTimeouts && nowMs() < coolUntilMs) {
      const error = `${entry.name} not called: it timed out ${consecutiveTimeouts} times in a row; it is tried again ${Math.ceil((coolUntilMs - nowMs()) / 1000)} s from now`;
      return { ok: false, error, failure: 'cooldown' };
    }
    let output: unknown;
    try {
      sandbox.__iotgwInput = inputJson;
      output = entry.script.runInContext(context, { timeout: timeoutMs });
    } catch (error) {
      if (!isTimeout(error)) return { ok: false, error: clip(`${entry.name} failed: ${describeThrown(error)}`), failure: 'threw' };
      consecutiveTimeouts += 1;
      if (consecutiveTimeouts >= maxConsecutiveTimeouts) {
        // An endless function would take timeoutMs of every call from the event loop: stop calling it for a while.
        coolUntilMs = nowMs() + cooldownMs;
        if (!coolingLogged) {
          coolingLogged = true;
          log.warn(
            { file: path, function: entry.name, timeouts: consecutiveTimeouts, timeoutMs, cooldownMs },
            `payload formatter ${path}: ${entry.name} timed out ${consecutiveTimeouts} times in a row: not calling it for ${cooldownMs / 1000} s at a time until it finishes again; ${entry.whileResting}. Fix its ${entry.name} (or raise formatters.timeout_ms)`,
          );
        }
      }
      return { ok: false, error: `${entry.name} did not finish within ${timeoutMs} ms`, failure: 'timeout' };
    }
    if (coolingLogged) log.info({ file: path, function: entry.name }, `payload formatter ${path}: ${entry.name} finishes again`);
    consecutiveTimeouts = 0;
    coolingLogged = false;
    return fromTagged(entry, output, maxOutputBytes);
  };
}

/** decodeUplink through its guard; every uplink it does not decode is counted by kind. */
function createDecoder(loaded: LoadedFormatter, name: string, settings: CompileSettings): (input: UplinkInput) => DecodedPayload {
  const call = createGuardedCall(DECODE_UPLINK, loaded, settings);
  return function decode(input: UplinkInput): DecodedPayload {
    const called = call(JSON.stringify({ bytes: Array.from(input.bytes), fPort: input.fPort, recvTimeMs: input.recvTime.getTime() }));
    const { payload, failure }: Outcome = called.ok ? fromResult(called.value) : { payload: { error: called.error }, failure: called.failure };
    if (failure !== undefined) settings.metrics?.formatterErrors.inc({ codec: name, kind: failure });
    return payload;
  };
}

/** encodeDownlink through its own guard: TTS's input `{ data, fPort }`, checked before the formatter sees it. */
function createEncoder(loaded: LoadedFormatter, settings: CompileSettings): NonNullable<PayloadCodec['encodeDownlink']> {
  const call = createGuardedCall(ENCODE_DOWNLINK, loaded, settings);
  return function encodeDownlink(data: unknown, fport: number | null): EncodedDownlink {
    if (fport !== null && !isFPort(fport)) {
      return { ok: false, error: `encodeDownlink not called: the downlink's FPort ${show(fport)} is not an integer 1..223 ${FPORT_NOTE}` };
    }
    if (!isPlainObject(data)) {
      return { ok: false, error: `encodeDownlink not called: the downlink's data must be a JSON object like { "level": 40 }, got ${kindOf(data)}` };
    }
    // The data crosses as JSON text, parsed in the context (see SETUP_SCRIPT): the formatter gets plain objects
    // of its own realm, never the caller's object, its prototype or a getter of the host.
    let inputJson: string;
    try {
      inputJson = JSON.stringify({ data, fPort: fport ?? undefined });
    } catch (error) {
      return { ok: false, error: clip(`encodeDownlink not called: the downlink's data cannot be written as JSON: ${errorMessage(error)}`) };
    }
    const called = call(inputJson);
    return called.ok ? fromEncodeResult(called.value, fport) : { ok: false, error: called.error };
  };
}

/** The tagged string from SETUP_SCRIPT's `decode` or `encode` -> the parsed result, or why there is none. */
function fromTagged(entry: EntryPoint, output: unknown, maxOutputBytes: number): CallResult {
  const bad = (error: string): CallResult => ({ ok: false, error, failure: 'output' });
  if (typeof output !== 'string' || output === '') return bad(`${entry.name}: no result from the formatter context`);
  const text = output.slice(1);
  switch (output[0]) {
    case 't':
      return { ok: false, error: clip(`${entry.name} threw ${text}`), failure: 'threw' };
    case 'p':
      return bad(`${entry.name} returned a Promise; it must return ${entry.returns} without async`);
    case 's':
      return bad(clip(`${entry.name} returned something JSON cannot hold: ${text}`));
    case 'u':
      return bad(`${entry.name} returned ${text}, not an object like ${entry.example}`);
    default: {
      const bytes = Buffer.byteLength(text);
      if (bytes > maxOutputBytes) return bad(`${entry.name} output is ${bytes} bytes of JSON, over formatters.max_output_bytes (${maxOutputBytes})`);
      return { ok: true, value: JSON.parse(text) as unknown };
    }
  }
}

/** TTN's decodeUplink result: `data` an object; `warnings` and `errors` lists of strings; errors mean no data. */
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

/**
 * TTN's encodeDownlink result: `bytes` the FRMPayload, at most 242 integers 0..255; `fPort` 1..223 if given
 * (else the caller's stays); `warnings` informative; a non-empty `errors` list means the encoding failed.
 */
function fromEncodeResult(result: unknown, fport: number | null): EncodedDownlink {
  const failed = (error: string): EncodedDownlink => ({ ok: false, error: clip(error) });
  if (!isPlainObject(result)) return failed(`encodeDownlink must return an object like ${ENCODE_DOWNLINK.example}, got ${kindOf(result)}`);
  const errors = asStrings(result.errors);
  if (errors.length > 0) return failed(`encodeDownlink errors: ${errors.join('; ')}`);
  const { bytes } = result;
  if (!Array.isArray(bytes)) return failed(`encodeDownlink's bytes must be an array of integers 0..255, got ${kindOf(bytes)}`);
  if (bytes.length > MAX_FRM_PAYLOAD_BYTES) {
    return failed(`encodeDownlink returned ${bytes.length} bytes, over ${MAX_FRM_PAYLOAD_BYTES}, the largest LoRaWAN FRMPayload`);
  }
  const badIndex = bytes.findIndex((byte) => !isByte(byte));
  if (badIndex !== -1) {
    const value: unknown = bytes[badIndex];
    // JSON, the way results cross, writes NaN, Infinity and undefined in an array as null.
    const hint = value === null ? ' (NaN, Infinity and undefined arrive as null)' : '';
    return failed(`encodeDownlink's bytes[${badIndex}] is ${show(value)}${hint}, not an integer 0..255`);
  }
  const returned = result.fPort;
  // Absent or null: the formatter leaves the FPort to the caller, as TTS does.
  if (returned !== undefined && returned !== null && !isFPort(returned)) {
    return failed(`encodeDownlink's fPort is ${show(returned)}, not an integer 1..223 ${FPORT_NOTE}`);
  }
  const warnings = asStrings(result.warnings);
  return { ok: true, bytes: Buffer.from(bytes as number[]), fport: typeof returned === 'number' ? returned : fport, warnings };
}

function isFPort(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 223;
}

function isByte(value: unknown): boolean {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 255;
}

/** A value from a formatter or caller, shown in a message: JSON where it can be, short either way. */
function show(value: unknown): string {
  try {
    return clip(typeof value === 'number' ? String(value) : (JSON.stringify(value) ?? String(value)));
  } catch {
    return typeof value;
  }
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
