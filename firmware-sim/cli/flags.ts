// Typed flag tables for firmware-sim commands. Each flag says how its text becomes a value (integer, number,
// duration, choice, text, file, switch), its default and its help; parseFlags turns argv into those values
// or a one-line UsageError naming the flag, and formatFlagHelp renders the "Flags:" section from the same
// table, so the help cannot drift from the parser.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseDurationMs } from './duration.ts';

/** A usage error: printed as one line naming the flag, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** One flag: `parse` turns its text into a T (or throws a UsageError); absent, it is `fallback`. */
export interface Flag<T, F extends T | undefined = T | undefined> {
  /** node:util parseArgs types: a 'boolean' flag takes no value. */
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  /** Value placeholder in the help ('N', 'URL'); '' for switches. */
  readonly placeholder: string;
  /** Help text; each '\n' starts a continuation line. */
  readonly help: string;
  readonly fallback: F;
  parse(text: string, flag: string): T;
}

export type FlagTable = Readonly<Record<string, Flag<unknown>>>;

/** What parseFlags returns for a table: each flag's value, `| undefined` where it has no default. */
export type FlagValues<T extends FlagTable> = { readonly [K in keyof T]: T[K] extends Flag<infer V, infer F> ? V | F : never };

interface FlagText {
  readonly help: string;
  readonly placeholder?: string;
}

interface Bounds {
  readonly min?: number;
  readonly max?: number;
}

/** A flag whose value `parse` accepts, else "--flag must be <expected>, got '<text>'". */
export function valueFlag<T, F extends T | undefined = undefined>(
  options: FlagText & { readonly expected: string; readonly default?: F; parse(text: string): T | undefined },
): Flag<T, F> {
  return {
    type: 'string',
    placeholder: options.placeholder ?? 'VALUE',
    help: options.help,
    fallback: options.default as F,
    parse(text, flag) {
      const value = options.parse(text);
      if (value === undefined) throw new UsageError(`${flag} must be ${options.expected}, got '${text}'`);
      return value;
    },
  };
}

/** Free text, or text matching `pattern` (described by `expected`). */
export function textFlag<F extends string | undefined = undefined>(
  options: FlagText & { readonly default?: F; readonly pattern?: RegExp; readonly expected?: string },
): Flag<string, F> {
  const { pattern } = options;
  return valueFlag({ ...options, expected: options.expected ?? 'text', parse: (text) => (pattern === undefined || pattern.test(text) ? text : undefined) });
}

export function integerFlag<F extends number | undefined = undefined>(options: FlagText & Bounds & { readonly default?: F }): Flag<number, F> {
  return valueFlag({
    ...options,
    placeholder: options.placeholder ?? 'N',
    expected: `an integer${range(options)}`,
    parse: (text) => {
      const value = Number(text);
      return /^-?\d+$/.test(text.trim()) && Number.isSafeInteger(value) && inBounds(value, options) ? value : undefined;
    },
  });
}

export function numberFlag<F extends number | undefined = undefined>(options: FlagText & Bounds & { readonly default?: F }): Flag<number, F> {
  return valueFlag({
    ...options,
    expected: `a number${range(options)}`,
    parse: (text) => {
      const value = Number(text);
      return text.trim() !== '' && Number.isFinite(value) && inBounds(value, options) ? value : undefined;
    },
  });
}

/** A share 0..1 (of devices, of uplinks). */
export function shareFlag<F extends number | undefined = undefined>(options: FlagText & { readonly default?: F }): Flag<number, F> {
  return numberFlag({ placeholder: 'S', ...options, min: 0, max: 1 });
}

/** A duration in ms, written in the syntax of duration.ts (60s, 5m, 1h, 500ms, bare seconds). */
export function durationFlag<F extends number | undefined = undefined>(
  options: FlagText & { readonly default?: F; readonly minMs?: number; readonly minText?: string },
): Flag<number, F> {
  return {
    type: 'string',
    placeholder: options.placeholder ?? 'D',
    help: options.help,
    fallback: options.default as F,
    parse(text, flag) {
      const result = parseDurationMs(text);
      if (!result.ok) throw new UsageError(`${flag} ${result.reason}, got '${text}'`);
      if (result.ms < (options.minMs ?? 0)) throw new UsageError(`${flag} must be at least ${options.minText ?? `${options.minMs}ms`}, got '${text}'`);
      return result.ms;
    },
  };
}

export function choiceFlag<const C extends string, F extends C | undefined = undefined>(
  options: FlagText & { readonly choices: readonly C[]; readonly default?: F },
): Flag<C, F> {
  const { choices } = options;
  return valueFlag({
    placeholder: choices.join('|'),
    ...options,
    expected: `${choices.slice(0, -1).join(', ')} or ${choices.at(-1)}`,
    parse: (text) => choices.find((choice) => choice === text),
  });
}

/** The contents of a file named by the flag (PEM certificates and keys). */
export function fileFlag(options: FlagText): Flag<Buffer, undefined> {
  return {
    type: 'string',
    placeholder: options.placeholder ?? 'FILE',
    help: options.help,
    fallback: undefined,
    parse(path, flag) {
      try {
        return readFileSync(path);
      } catch (err) {
        throw new UsageError(`${flag}: cannot read '${path}': ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
    },
  };
}

/** A flag without a value: true when given. */
export function switchFlag(options: { readonly help: string; readonly short?: string }): Flag<boolean, false> {
  return { type: 'boolean', placeholder: '', fallback: false, parse: () => true, ...options };
}

/** argv -> the table's values; every failure is a UsageError whose one line names the flag. */
export function parseFlags<T extends FlagTable>(table: T, argv: readonly string[]): FlagValues<T> {
  const given = parseArgv(table, argv);
  const values: Record<string, unknown> = {};
  for (const [name, flag] of Object.entries(table)) {
    const text = given[name];
    values[name] = text === undefined ? flag.fallback : flag.parse(String(text), `--${name}`);
  }
  return values as FlagValues<T>;
}

/** node:util parseArgs, with its multi-line errors turned into one line that names the flag. */
function parseArgv(table: FlagTable, argv: readonly string[]): Record<string, string | boolean | undefined> {
  const options = Object.fromEntries(
    Object.entries(table).map(([name, flag]) => [name, flag.short === undefined ? { type: flag.type } : { type: flag.type, short: flag.short }]),
  );
  try {
    const { values, positionals } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: true });
    const [positional] = positionals;
    if (positional !== undefined) throw new UsageError(`unexpected argument '${positional}' (flags only; see --help)`);
    return values as Record<string, string | boolean | undefined>;
  } catch (err) {
    throw err instanceof UsageError ? err : usageErrorOf(err);
  }
}

function usageErrorOf(err: unknown): UsageError {
  const code = (err as { code?: string }).code;
  const message = err instanceof Error ? err.message : String(err);
  const flag = /'(-{1,2}[^' ]+)/.exec(message)?.[1] ?? '';
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return new UsageError(`unknown option ${flag} (see --help)`);
  if (code !== 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') return new UsageError(message.split('\n')[0] ?? message);
  if (message.includes('argument missing')) return new UsageError(`option ${flag} needs a value (see --help)`);
  if (message.includes('ambiguous')) return new UsageError(`option ${flag}: a value starting with '-' must be written ${flag}=VALUE`);
  return new UsageError(`option ${flag} takes no value (see --help)`);
}

const HELP_COLUMN = 25;

/** The "Flags:" lines of a table: `  --name VALUE` then the help from column 25 (a line of its own if the name is long). */
export function formatFlagHelp(table: FlagTable): string {
  const indent = ' '.repeat(HELP_COLUMN);
  return Object.entries(table)
    .map(([name, flag]) => {
      const label = `  ${flag.short === undefined ? '' : `-${flag.short}, `}--${name}${flag.placeholder === '' ? '' : ` ${flag.placeholder}`}`;
      const [first, ...rest] = flag.help.split('\n');
      const head = label.length <= HELP_COLUMN - 2 ? `${label.padEnd(HELP_COLUMN)}${first}` : `${label}\n${indent}${first}`;
      return [head, ...rest.map((line) => `${indent}${line}`)].join('\n');
    })
    .join('\n');
}

function inBounds(value: number, bounds: Bounds): boolean {
  return value >= (bounds.min ?? Number.MIN_SAFE_INTEGER) && value <= (bounds.max ?? Number.MAX_SAFE_INTEGER);
}

function range(bounds: Bounds): string {
  if (bounds.min !== undefined && bounds.max !== undefined) return ` from ${bounds.min} to ${bounds.max}`;
  if (bounds.min !== undefined) return ` >= ${bounds.min}`;
  return bounds.max === undefined ? '' : ` <= ${bounds.max}`;
}
