// Splits a JSON export into its top-level values, each with the line it starts on, so a bad device is named by
// line and the others are still read. Accepts the two shapes The Things Stack produces: one JSON array
// (`ttn-lw-cli end-devices list`), or a stream of objects one after another, pretty-printed or one per line
// (concatenated `end-devices get` output, what the Console and `end-devices create` read as "JSON stream").
//
// Grammar (whitespace allowed between tokens):
//   file   = array | stream
//   array  = "[" [ value *( "," value ) ] "]"
//   stream = *value
// A value is found by matching brackets outside strings; JSON.parse then checks each one on its own.
import { CommandError } from './command-error.ts';

export interface JsonValueText {
  readonly line: number;
  readonly text: string;
}

/** The top-level values of `text` (the elements when it is one array); CommandError (exit 2) naming the line when it cannot be split. */
export function splitJsonValues(text: string, file: string): JsonValueText[] {
  const scanner = createScanner(text);
  scanner.skipSpace();
  if (text[scanner.position] !== '[') {
    const values: JsonValueText[] = [];
    for (scanner.skipSpace(); scanner.position < text.length; scanner.skipSpace()) values.push(scanner.value(file));
    return values;
  }
  scanner.advance(); // the array's "["
  const values: JsonValueText[] = [];
  scanner.skipSpace();
  if (text[scanner.position] === ']') scanner.advance();
  else {
    for (;;) {
      values.push(scanner.value(file));
      scanner.skipSpace();
      const next = text[scanner.position];
      scanner.advance();
      if (next === ']') break;
      if (next !== ',') throw new CommandError(`${file}:${scanner.line}: malformed JSON: expected , or ] after a device, got ${describe(next)}`, 2);
      scanner.skipSpace();
      if (text[scanner.position] === ']') throw new CommandError(`${file}:${scanner.line}: malformed JSON: a comma before the closing ] (remove it)`, 2);
    }
  }
  scanner.skipSpace();
  if (scanner.position < text.length) throw new CommandError(`${file}:${scanner.line}: malformed JSON: text after the closing ] of the device list`, 2);
  return values;
}

function describe(char: string | undefined): string {
  return char === undefined ? 'the end of the file' : `'${char}'`;
}

interface Scanner {
  readonly position: number;
  readonly line: number;
  skipSpace(): void;
  advance(): void;
  /** One value from here: an object or array up to its matching bracket, a string, or a bare word (a number, a typo). */
  value(file: string): JsonValueText;
}

function createScanner(text: string): Scanner {
  let position = 0;
  let line = 1;
  const step = (): void => {
    if (text.charCodeAt(position) === 10) line += 1;
    position += 1;
  };
  return {
    get position() {
      return position;
    },
    get line() {
      return line;
    },
    skipSpace() {
      while (position < text.length && /\s/.test(text[position] as string)) step();
    },
    advance: step,
    value(file) {
      const start = position;
      const startLine = line;
      const first = text[position];
      if (first === '{' || first === '[') {
        let depth = 0;
        let inString = false;
        for (; position < text.length; step()) {
          const char = text[position];
          if (inString) {
            if (char === '\\') step();
            else if (char === '"') inString = false;
          } else if (char === '"') inString = true;
          else if (char === '{' || char === '[') depth += 1;
          else if (char === '}' || char === ']') {
            depth -= 1;
            if (depth === 0) break;
          }
        }
        if (position >= text.length)
          throw new CommandError(`${file}:${startLine}: malformed JSON: the ${first === '{' ? 'object' : 'array'} that starts here is never closed`, 2);
        step();
      } else if (first === '"') {
        for (step(); position < text.length && text[position] !== '"'; step()) if (text[position] === '\\') step();
        step();
      } else {
        // A stray word: taken up to the next separator, so JSON.parse can say what it is.
        while (position < text.length && !/[\s,\]]/.test(text[position] as string)) step();
        if (position === start) step();
      }
      return { line: startLine, text: text.slice(start, position) };
    },
  };
}
