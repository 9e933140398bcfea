// One value out of a JSON document without JSON.parse: a single pass over the bytes checks the whole
// document's syntax (as strictly as JSON.parse) and notes where the value at a dotted path sits, so a call
// allocates only the value it returns. Records are read for one timestamp field each on the hot path, and
// decoding plus parsing the whole payload for that was a measurable share of the main thread.
//
// The lookup is the one `path.split('.')` and `value[part]` make on JSON.parse's result, quirks included:
// the last of duplicate keys wins at every level, arrays are walked by index ("0", never "00") and have a
// `length`, and a part that is no own property reaches the prototype: for `[...]` that makes `__proto__.length`
// Array.prototype.length (0); everything else Object.prototype and Array.prototype hold is a function or an
// object with nothing useful below it. (A process that adds plain values to those prototypes is not matched.)
//
// No recursion: the open containers live on an explicit stack, so nesting is limited by memory only. V8's
// JSON.parse is iterative too (Node 20 parses 10^7 levels without a RangeError), so results match at any
// depth; an engine that threw a RangeError for deep nesting (where the old code gave null) would be matched
// only up to the depth it handles, which the tests check to 200,000 levels (10,000 is all that is promised).

import {
  at,
  COLON,
  COMMA,
  decodeString,
  isDigit,
  keyEquals,
  LBRACE,
  LBRACKET,
  MINUS,
  QUOTE,
  RBRACE,
  RBRACKET,
  scanLiteral,
  scanNumber,
  scanString,
  skipWhitespace,
  toNumber,
} from './json-lexer.ts';

/** A part of the path, with what the scan compares it with. */
interface PathPart {
  readonly key: string;
  /** The array index the part names (a canonical index like "0" or "12"), else -1. */
  readonly index: number;
}

const OBJECT = 0;
const ARRAY = 1;

// What the scan expects next.
const VALUE = 0;
const FIRST_VALUE = 1; // just after '[': a value or ']'
const KEY = 2;
const FIRST_KEY = 3; // just after '{': a key or '}'
const AFTER = 4; // after a value: ',' or the closer, or the end at depth 0

// What the next value is to the path.
const OFF_PATH = 0;
const ENTER = 1; // a container there is the next step of the path
const TARGET = 2; // it is the value looked for

// What the path led to so far.
const NONE = 0; // nothing (also: a scalar in the way)
const OTHER = 1; // an object, array, true, false or null
const NUMBER = 2;
const STRING = 3;
const COUNT = 4; // an array's length

const INITIAL_STACK = 256;
/** A stack grown by one very deep document is dropped after it, not kept for the process's life. */
const MAX_KEPT_STACK = 4096;

/** Paths come from config, but callers may pass anything: bounded, cleared when full. */
const MAX_CACHED_PATHS = 64;
const compiledPaths = new Map<string, readonly PathPart[]>();

function compilePath(path: string): readonly PathPart[] {
  let parts = compiledPaths.get(path);
  if (parts === undefined) {
    if (compiledPaths.size >= MAX_CACHED_PATHS) compiledPaths.clear();
    parts = path.split('.').map(toPathPart);
    compiledPaths.set(path, parts);
  }
  return parts;
}

function toPathPart(key: string): PathPart {
  const index = Number(key) >>> 0;
  // 2^32 - 1 is no array index; nor is any spelling other than the canonical one ("01", "1e0", " 1").
  const isIndex = String(index) === key && index !== 0xffffffff;
  return { key, index: isIndex ? index : -1 };
}

/**
 * Where the path is during a scan, and what it led to. The scan calls it only where the path is: for the
 * members of the innermost container on the path, and for the value after a key or index that matched.
 * Reused, so a call allocates nothing (the scan is synchronous and calls out to nothing).
 */
class PathState {
  parts: readonly PathPart[] = [];
  /** OBJECT or ARRAY for each open container, outermost first. */
  types: Uint8Array = new Uint8Array(INITIAL_STACK);
  /** The outermost `onPath` open containers are the path's steps so far (the root is its start). */
  onPath = 0;
  /** What the next value is to the path. */
  next = ENTER;
  /** The index of the current element of the innermost on-path container, when it is an array. */
  element = 0;
  found = NONE;
  foundStart = 0;
  foundEnd = 0;
  foundCount = 0;

  start(parts: readonly PathPart[]): void {
    this.parts = parts;
    this.onPath = 0;
    this.next = ENTER;
    this.element = 0;
    this.found = NONE;
  }

  finish(): void {
    if (this.types.length > MAX_KEPT_STACK) this.types = new Uint8Array(INITIAL_STACK);
  }

  grow(): Uint8Array {
    const grown = new Uint8Array(this.types.length * 2);
    grown.set(this.types);
    this.types = grown;
    return grown;
  }

  /** A key in bytes [start, end) of the innermost on-path object, at `depth`. */
  key(bytes: Uint8Array, start: number, end: number, depth: number): void {
    if (keyEquals(bytes, start, end, (this.parts[depth - 1] as PathPart).key)) this.matched(depth);
  }

  /** Element `index` of the innermost on-path array, at `depth`, begins. */
  elementAt(index: number, depth: number): void {
    this.element = index;
    if (index === (this.parts[depth - 1] as PathPart).index) this.matched(depth);
  }

  /** The next value is the path's step at `depth`: it replaces whatever an earlier duplicate key led to. */
  private matched(depth: number): void {
    this.found = NONE;
    this.next = depth === this.parts.length ? TARGET : ENTER;
  }

  /** A container opened at `depth` as the next value, `next` not OFF_PATH. */
  opened(type: number, depth: number): void {
    const parts = this.parts;
    if (this.next === TARGET) this.found = OTHER;
    else this.onPath = depth;
    this.next = OFF_PATH;
    // No own `__proto__` on an array: `[...].__proto__.length` is Array.prototype.length.
    if (this.onPath === depth && type === ARRAY && depth + 1 === parts.length && parts[depth - 1]?.key === '__proto__' && parts[depth]?.key === 'length') {
      this.found = COUNT;
      this.foundCount = 0;
    }
  }

  /** A scalar in bytes [start, end) as the next value, `next` not OFF_PATH; a scalar in the way leaves NONE. */
  scalar(first: number, start: number, end: number): void {
    if (this.next === TARGET) {
      this.found = first === QUOTE ? STRING : first === MINUS || isDigit(first) ? NUMBER : OTHER;
      this.foundStart = start;
      this.foundEnd = end;
    }
    this.next = OFF_PATH;
  }

  /** The innermost on-path container, at `depth`, closes; it held `count` elements if it is an array. */
  closed(type: number, depth: number, count: number): void {
    if (type === ARRAY && depth === this.parts.length && this.parts[depth - 1]?.key === 'length') {
      this.found = COUNT;
      this.foundCount = count;
    }
    this.onPath = depth - 1;
    // The path entered this container as an element of the one now innermost: its index is that step's.
    if (depth > 1) this.element = (this.parts[depth - 2] as PathPart).index;
  }

  result(bytes: Uint8Array, maxStringLength: number): number | string | null | undefined {
    switch (this.found) {
      case NONE:
        return undefined;
      case NUMBER:
        return toNumber(bytes, this.foundStart, this.foundEnd);
      case COUNT:
        return this.foundCount;
      case STRING: {
        const start = this.foundStart + 1;
        const end = this.foundEnd - 1;
        // Each UTF-16 unit takes 1 to 6 bytes (\uXXXX): past 6 bytes a unit, too long without decoding it.
        if (end - start > 6 * maxStringLength) return null;
        const text = decodeString(bytes, start, end);
        return text.length > maxStringLength ? null : text;
      }
      default:
        return null;
    }
  }
}

/** True when `bytes` are one JSON document (JSON.parse's grammar), telling `path` what it passes. */
function scanDocument(bytes: Uint8Array, path: PathState): boolean {
  let types: Uint8Array = path.types;
  let depth = 0;
  let mode = VALUE;
  // TextDecoder strips one leading BOM before JSON.parse sees the text.
  const length = bytes.length;
  let i = at(bytes, 0) === 0xef && at(bytes, 1) === 0xbb && at(bytes, 2) === 0xbf ? 3 : 0;
  for (;;) {
    let c = at(bytes, i);
    while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = at(bytes, ++i);
    if (mode === AFTER) {
      if (depth === 0) return i === length;
      const type = types[depth - 1] as number;
      if (c === COMMA) {
        i += 1;
        mode = type === OBJECT ? KEY : VALUE;
        if (type === ARRAY && depth === path.onPath) path.elementAt(path.element + 1, depth);
        continue;
      }
      if (c !== (type === OBJECT ? RBRACE : RBRACKET)) return false;
      // `element` counts only on the path, the one place the count (an array's length) is used.
      if (depth === path.onPath) path.closed(type, depth, path.element + 1);
      depth -= 1;
      i += 1;
      continue;
    }
    if (mode === FIRST_VALUE || mode === FIRST_KEY) {
      const type = mode === FIRST_KEY ? OBJECT : ARRAY;
      if (c === (type === OBJECT ? RBRACE : RBRACKET)) {
        if (depth === path.onPath) path.closed(type, depth, 0);
        depth -= 1;
        i += 1;
        mode = AFTER;
        continue;
      }
      if (type === ARRAY && depth === path.onPath) path.elementAt(0, depth);
      mode = type === OBJECT ? KEY : VALUE;
    }
    if (mode === KEY) {
      if (c !== QUOTE) return false;
      const end = scanString(bytes, i + 1);
      if (end < 0) return false;
      if (depth === path.onPath) path.key(bytes, i + 1, end - 1, depth);
      i = skipWhitespace(bytes, end);
      if (at(bytes, i) !== COLON) return false;
      i += 1;
      mode = VALUE;
      continue;
    }
    if (c === LBRACE || c === LBRACKET) {
      if (depth === types.length) types = path.grow();
      const type = c === LBRACE ? OBJECT : ARRAY;
      types[depth] = type;
      depth += 1;
      if (path.next !== OFF_PATH) path.opened(type, depth);
      i += 1;
      mode = type === OBJECT ? FIRST_KEY : FIRST_VALUE;
      continue;
    }
    const end = c === QUOTE ? scanString(bytes, i + 1) : c === MINUS || isDigit(c) ? scanNumber(bytes, i) : scanLiteral(bytes, i);
    if (end < 0) return false;
    if (path.next !== OFF_PATH) path.scalar(c, i, end);
    i = end;
    mode = AFTER;
  }
}

const state = new PathState();

/**
 * The value at `path` (keys joined by '.') in the JSON document `bytes` (UTF-8, one leading BOM allowed), as
 * `path.split('.')` and `value[part]` find it in `JSON.parse(new TextDecoder().decode(bytes))`: a number or a
 * string as such; any other value there (object, array, true, false, null) as null; undefined when `bytes` are
 * not JSON, the path leads nowhere, or it goes through something other than an object or an array. A string
 * longer than `maxStringLength` UTF-16 units comes back as null, and is not decoded.
 */
export function readJsonField(bytes: Uint8Array, path: string, maxStringLength = Number.POSITIVE_INFINITY): number | string | null | undefined {
  state.start(compilePath(path));
  try {
    return scanDocument(bytes, state) ? state.result(bytes, maxStringLength) : undefined;
  } finally {
    state.finish();
  }
}
