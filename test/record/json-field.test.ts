// The byte scanner behind readTimestampField must give what the JSON.parse-based implementation it replaced
// gave, for every input: a table of the rules (strict syntax, BOM, duplicate keys, escaped keys, arrays and
// prototype lookups, numbers, strings) and a seeded differential run over generated and mutated payloads.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRandom, type Random } from '../../firmware-sim/fleet.ts';
import { readJsonField } from '../../src/record/json-field.ts';
import { readTimestampField } from '../../src/record/routes.ts';
import { referenceReadTimestampField } from '../helpers/reference-event-time.ts';

const bytes = (text: string | Uint8Array) => (typeof text === 'string' ? Buffer.from(text) : text);
const hex = (payload: Uint8Array) => Buffer.from(payload).toString('hex');

function assertSameAsReference(payload: Uint8Array, field: string, label: string): number | null {
  const expected = referenceReadTimestampField(payload, field);
  const actual = readTimestampField(payload, field);
  if (!Object.is(actual, expected)) {
    assert.fail(
      `${label}: field ${JSON.stringify(field)} of ${JSON.stringify(Buffer.from(payload).toString('latin1'))} (${hex(payload)}): ${actual}, reference ${expected}`,
    );
  }
  return expected;
}

interface Case {
  readonly name: string;
  readonly payload: string | Uint8Array;
  readonly field: string;
  /** What the reference gives, where it says something about the rule (checked too). */
  readonly expected?: number | null;
}

const ISO = '2026-12-06T15:00:00.123Z';
const ISO_MS = Date.parse(ISO);
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
/** Date.parse takes trailing spaces after an RFC 1123 date (not after ISO-8601): a date of any length. */
const RFC = 'Sun, 06 Dec 2026 15:00:00 GMT';
const RFC_MS = Date.parse(RFC);
const padded = (length: number) => RFC.padEnd(length, ' ');
const deep = (levels: number, inner: string) => `${'{"a":'.repeat(levels)}${inner}${'}'.repeat(levels)}`;

const cases: readonly Case[] = [
  // What devices send.
  { name: 'ISO-8601', payload: `{"ts":"${ISO}","kwh":12345.67}`, field: 'ts', expected: ISO_MS },
  { name: 'epoch ms', payload: '{"v":1,"ts":1796569200123}', field: 'ts', expected: 1796569200123 },
  { name: 'epoch seconds', payload: '{"ts":1796569200}', field: 'ts', expected: 1796569200000 },
  { name: 'epoch seconds with a fraction', payload: '{"ts":1796569200.1234}', field: 'ts', expected: 1796569200123 },
  { name: 'a dotted path', payload: `{"meta":{"time":"${ISO}"}}`, field: 'meta.time', expected: ISO_MS },
  { name: 'missing', payload: '{"kwh":1}', field: 'ts', expected: null },
  { name: 'the key one level down is not the top-level key', payload: '{"a":{"ts":1}}', field: 'ts', expected: null },
  { name: 'not a timestamp string', payload: '{"ts":"yesterday-ish"}', field: 'ts', expected: null },
  // Syntax, anywhere in the document.
  { name: 'empty', payload: '', field: 'ts', expected: null },
  { name: 'whitespace only', payload: ' \n', field: 'ts', expected: null },
  { name: 'all four whitespace characters', payload: ' \t\r\n{ \t\r\n"ts" \t\r\n: \t\r\n1 \t\r\n} \t\r\n', field: 'ts', expected: 1000 },
  { name: 'form feed is no JSON whitespace', payload: '{"ts":1}\f', field: 'ts', expected: null },
  { name: 'vertical tab is no JSON whitespace', payload: '\v{"ts":1}', field: 'ts', expected: null },
  { name: 'no-break space is no JSON whitespace', payload: '{"ts":1}\u00a0', field: 'ts', expected: null },
  { name: 'truncated after the field', payload: '{"ts":1796569200,"kwh":', field: 'ts', expected: null },
  { name: 'unclosed', payload: '{"ts":1796569200', field: 'ts', expected: null },
  { name: 'garbage after the document', payload: '{"ts":1796569200}x', field: 'ts', expected: null },
  { name: 'two documents', payload: '{"ts":1796569200} {}', field: 'ts', expected: null },
  { name: 'trailing comma in an object', payload: '{"ts":1796569200,}', field: 'ts', expected: null },
  { name: 'trailing comma in an array', payload: '{"ts":1796569200,"a":[1,]}', field: 'ts', expected: null },
  { name: 'leading comma', payload: '{,"ts":1}', field: 'ts', expected: null },
  { name: 'an empty element', payload: '{"ts":1,"a":[1,,2]}', field: 'ts', expected: null },
  { name: 'missing colon', payload: '{"ts" 1}', field: 'ts', expected: null },
  { name: 'missing comma', payload: '{"ts":1 "b":2}', field: 'ts', expected: null },
  { name: 'single quotes', payload: "{'ts':1}", field: 'ts', expected: null },
  { name: 'unquoted key', payload: '{ts:1}', field: 'ts', expected: null },
  { name: 'a comment', payload: '{"ts":1}// now', field: 'ts', expected: null },
  { name: 'mismatched closers', payload: '{"ts":1,"a":[}]}', field: 'ts', expected: null },
  { name: 'an array closed as an object', payload: '{"ts":1,"a":[1}}', field: 'ts', expected: null },
  { name: 'a key that is not a string', payload: '{1:1}', field: '1', expected: null },
  { name: 'a key without a value', payload: '{"ts"}', field: 'ts', expected: null },
  { name: 'a byte >= 0x80 outside strings', payload: Buffer.from([...Buffer.from('{"ts":1}'), 0xc3, 0xa9]), field: 'ts', expected: null },
  { name: 'an invalid byte outside strings', payload: Buffer.from([0xff, ...Buffer.from('{"ts":1}')]), field: 'ts', expected: null },
  { name: 'a NUL after the document', payload: '{"ts":1}\0', field: 'ts', expected: null },
  // BOM.
  { name: 'a leading BOM', payload: Buffer.concat([BOM, Buffer.from('{"ts":1}')]), field: 'ts', expected: 1000 },
  { name: 'two leading BOMs', payload: Buffer.concat([BOM, BOM, Buffer.from('{"ts":1}')]), field: 'ts', expected: null },
  { name: 'a BOM after whitespace', payload: Buffer.concat([Buffer.from(' '), BOM, Buffer.from('{"ts":1}')]), field: 'ts', expected: null },
  { name: 'a BOM at the end', payload: Buffer.concat([Buffer.from('{"ts":1}'), BOM]), field: 'ts', expected: null },
  { name: 'a BOM alone', payload: BOM, field: 'ts', expected: null },
  { name: 'half a BOM', payload: Buffer.concat([BOM.subarray(0, 2), Buffer.from('{"ts":1}')]), field: 'ts', expected: null },
  { name: 'a BOM inside the string is kept', payload: Buffer.concat([Buffer.from('{"ts":"'), BOM, Buffer.from('2026-12-06"}')]), field: 'ts' },
  { name: 'a BOM then the string', payload: Buffer.concat([BOM, Buffer.from(`{"ts":"${ISO}"}`)]), field: 'ts', expected: ISO_MS },
  // Numbers.
  { name: 'zero', payload: '{"ts":0}', field: 'ts', expected: 0 },
  { name: 'minus zero', payload: '{"ts":-0}', field: 'ts', expected: -0 },
  { name: 'minus zero point zero', payload: '{"ts":-0.0e5}', field: 'ts', expected: -0 },
  { name: 'negative', payload: '{"ts":-1.5}', field: 'ts', expected: -1500 },
  { name: 'leading zero', payload: '{"ts":01}', field: 'ts', expected: null },
  { name: 'negative leading zero', payload: '{"ts":-01}', field: 'ts', expected: null },
  { name: 'plus sign', payload: '{"ts":+1}', field: 'ts', expected: null },
  { name: 'no integer part', payload: '{"ts":.5}', field: 'ts', expected: null },
  { name: 'no fraction digits', payload: '{"ts":1.}', field: 'ts', expected: null },
  { name: 'no exponent digits', payload: '{"ts":1e}', field: 'ts', expected: null },
  { name: 'a signed exponent without digits', payload: '{"ts":1e+}', field: 'ts', expected: null },
  { name: 'a minus alone', payload: '{"ts":-}', field: 'ts', expected: null },
  { name: 'hex', payload: '{"ts":0x10}', field: 'ts', expected: null },
  { name: 'NaN', payload: '{"ts":NaN}', field: 'ts', expected: null },
  { name: 'Infinity', payload: '{"ts":Infinity}', field: 'ts', expected: null },
  { name: 'exponents', payload: '{"ts":17965692E+2}', field: 'ts', expected: 1796569200000 },
  { name: 'a negative exponent', payload: '{"ts":1796569200123456e-3}', field: 'ts', expected: 1796569200123 },
  { name: 'a long exponent', payload: '{"ts":1.7965692e000000000000000000012}', field: 'ts', expected: 1796569200000 },
  { name: 'overflow to Infinity', payload: '{"ts":1e400}', field: 'ts', expected: null },
  { name: 'underflow', payload: '{"ts":5e-324}', field: 'ts', expected: 0 },
  { name: 'more than 15 digits', payload: '{"ts":1796569200123.456789}', field: 'ts', expected: 1796569200123 },
  { name: 'past 2^53', payload: '{"ts":9007199254740993}', field: 'ts', expected: 9007199254740992 },
  { name: 'many digits', payload: '{"ts":123456789012345678901234567890}', field: 'ts', expected: 1.2345678901234568e29 },
  { name: 'a decimal that rounds', payload: '{"ts":0.1}', field: 'ts', expected: 100 },
  { name: 'the seconds/ms boundary', payload: '{"ts":99999999999.9}', field: 'ts', expected: 99999999999900 },
  { name: 'the boundary itself', payload: '{"ts":1e11}', field: 'ts', expected: 1e11 },
  { name: 'half a millisecond', payload: '{"ts":1796569200.0005}', field: 'ts', expected: 1796569200001 },
  // Strings.
  { name: 'escapes in the value', payload: '{"ts":"\\u0032026-12-06T15:00:00\\u002e123Z"}', field: 'ts', expected: ISO_MS },
  { name: 'an escaped solidus', payload: '{"ts":"12\\/06\\/2026"}', field: 'ts' },
  { name: 'an invalid escape', payload: '{"ts":"\\x41"}', field: 'ts', expected: null },
  { name: 'an invalid escape after the field', payload: `{"ts":"${ISO}","b":"\\a"}`, field: 'ts', expected: null },
  { name: 'a short \\u escape', payload: '{"ts":"\\u12"}', field: 'ts', expected: null },
  { name: 'a non-hex \\u escape', payload: '{"ts":1,"b":"\\u12G4"}', field: 'ts', expected: null },
  { name: 'a raw tab in a string', payload: '{"ts":1,"b":"a\tb"}', field: 'ts', expected: null },
  { name: 'a raw newline in a string', payload: '{"ts":"2026-12-06\n"}', field: 'ts', expected: null },
  { name: 'DEL is fine in a string', payload: '{"ts":1,"b":"\u007f"}', field: 'ts', expected: 1000 },
  { name: 'an unterminated string', payload: '{"ts":"2026', field: 'ts', expected: null },
  { name: 'an escaped quote at the end', payload: '{"ts":"2026\\"}', field: 'ts', expected: null },
  { name: 'an escaped backslash at the end', payload: '{"ts":"2026\\\\"}', field: 'ts', expected: null },
  {
    name: 'invalid UTF-8 in a string',
    payload: Buffer.from([...Buffer.from('{"ts":1,"b":"'), 0xff, 0xc3, 0xe2, 0x82, ...Buffer.from('"}')]),
    field: 'ts',
    expected: 1000,
  },
  { name: 'invalid UTF-8 in the value', payload: Buffer.from([...Buffer.from('{"ts":"2026-12-06'), 0xe2, 0x82, ...Buffer.from('"}')]), field: 'ts' },
  { name: 'a truncated sequence before the quote', payload: Buffer.from([...Buffer.from('{"ts":"'), 0xf0, 0x9f, 0x98, ...Buffer.from('"}')]), field: 'ts' },
  { name: 'UTF-8 surrogates', payload: Buffer.from([...Buffer.from('{"ts":"'), 0xed, 0xa0, 0x80, ...Buffer.from('"}')]), field: 'ts' },
  { name: 'a lone surrogate escape', payload: '{"ts":"\\ud800"}', field: 'ts', expected: null },
  { name: 'non-ASCII in the value', payload: '{"ts":"2026-12-06T15:00:00Z\u00e9"}', field: 'ts', expected: null },
  { name: 'U+2028 raw in a string', payload: '{"ts":1,"b":"\u2028"}', field: 'ts', expected: 1000 },
  { name: '64 characters', payload: `{"ts":"${padded(64)}"}`, field: 'ts', expected: RFC_MS },
  { name: '65 characters', payload: `{"ts":"${padded(65)}"}`, field: 'ts', expected: null },
  { name: '64 characters, all escaped', payload: `{"ts":"${[...padded(64)].map(escapeUnicode).join('')}"}`, field: 'ts', expected: RFC_MS },
  { name: '65 characters, all escaped', payload: `{"ts":"${[...padded(65)].map(escapeUnicode).join('')}"}`, field: 'ts', expected: null },
  { name: '64 characters, astral', payload: `{"ts":"${'\u{1f600}'.repeat(32)}"}`, field: 'ts', expected: null },
  { name: 'a long string', payload: `{"ts":"${'9'.repeat(5000)}"}`, field: 'ts', expected: null },
  { name: 'a number in a string', payload: '{"ts":"1796569200"}', field: 'ts' },
  { name: 'an empty string', payload: '{"ts":""}', field: 'ts', expected: null },
  // Literals and containers as the value.
  { name: 'true', payload: '{"ts":true}', field: 'ts', expected: null },
  { name: 'false', payload: '{"ts":false}', field: 'ts', expected: null },
  { name: 'null', payload: '{"ts":null}', field: 'ts', expected: null },
  { name: 'a misspelt literal', payload: '{"ts":1,"b":tru}', field: 'ts', expected: null },
  { name: 'a literal with a tail', payload: '{"ts":1,"b":nullx}', field: 'ts', expected: null },
  { name: 'an uppercase literal', payload: '{"ts":1,"b":True}', field: 'ts', expected: null },
  { name: 'an object', payload: '{"ts":{"t":1}}', field: 'ts', expected: null },
  { name: 'an array', payload: '{"ts":[1796569200]}', field: 'ts', expected: null },
  // Duplicate keys: the last one counts, at every level.
  { name: 'duplicates', payload: '{"ts":1,"ts":2}', field: 'ts', expected: 2000 },
  { name: 'a duplicate that is not a timestamp', payload: '{"ts":1,"ts":"no"}', field: 'ts', expected: null },
  { name: 'three duplicates', payload: '{"ts":1,"b":{"ts":9},"ts":2,"ts":3}', field: 'ts', expected: 3000 },
  { name: 'a duplicate parent without the child', payload: '{"a":{"b":1},"a":{"c":2}}', field: 'a.b', expected: null },
  { name: 'a duplicate parent that is a scalar', payload: '{"a":{"b":1},"a":5}', field: 'a.b', expected: null },
  { name: 'a duplicate parent with the child', payload: '{"a":{"b":1},"x":0,"a":{"b":2}}', field: 'a.b', expected: 2000 },
  { name: 'a duplicate child in the first parent', payload: '{"a":{"b":1,"b":3},"a":{"b":2,"c":0}}', field: 'a.b', expected: 2000 },
  { name: 'a parent first a scalar, then an object', payload: '{"a":5,"a":{"b":2}}', field: 'a.b', expected: 2000 },
  { name: 'a duplicate parent after the child was an object', payload: '{"a":{"b":{}},"a":{"b":4}}', field: 'a.b', expected: 4000 },
  // Escaped keys.
  { name: 'an escaped key', payload: '{"t\\u0073":1}', field: 'ts', expected: 1000 },
  { name: 'a fully escaped key', payload: '{"\\u0074\\u0073":1}', field: 'ts', expected: 1000 },
  { name: 'an escaped key, then the plain one', payload: '{"t\\u0073":1,"ts":2}', field: 'ts', expected: 2000 },
  { name: 'the plain key, then an escaped one', payload: '{"ts":1,"t\\u0073":2}', field: 'ts', expected: 2000 },
  { name: 'an escaped dot in a key', payload: '{"a\\u002eb":1}', field: 'a.b', expected: null },
  { name: 'an escaped parent', payload: '{"\\u0061":{"b":1}}', field: 'a.b', expected: 1000 },
  { name: 'a key with an escaped quote', payload: '{"t\\"s":1}', field: 't"s', expected: 1000 },
  { name: 'a key with a backslash', payload: '{"t\\\\s":1}', field: 't\\s', expected: 1000 },
  { name: 'a longer key', payload: '{"tss":1}', field: 'ts', expected: null },
  { name: 'a key prefix', payload: '{"t":1}', field: 'ts', expected: null },
  { name: 'a non-ASCII key', payload: '{"zeit\u00e9":1}', field: 'zeit\u00e9', expected: 1000 },
  { name: 'a non-ASCII key, escaped', payload: '{"zeit\\u00e9":1}', field: 'zeit\u00e9', expected: 1000 },
  { name: 'an astral key', payload: '{"\u{1f600}":1}', field: '\u{1f600}', expected: 1000 },
  { name: 'an astral key as escaped surrogates', payload: '{"\\ud83d\\ude00":1}', field: '\u{1f600}', expected: 1000 },
  { name: 'an invalid UTF-8 key read as U+FFFD', payload: Buffer.from([...Buffer.from('{"'), 0xff, ...Buffer.from('":1}')]), field: '\ufffd', expected: 1000 },
  { name: 'a U+FFFD key and a lone surrogate field', payload: '{"\ufffd":1}', field: '\ud800', expected: null },
  { name: 'a lone surrogate key', payload: '{"\\ud800":1}', field: '\ud800', expected: 1000 },
  { name: 'an empty key', payload: '{"":1}', field: '', expected: 1000 },
  // The path: objects and arrays, as `value[part]`.
  { name: 'a scalar on the way', payload: '{"ts":1796569200}', field: 'ts.x', expected: null },
  { name: 'a string on the way', payload: '{"s":"abc"}', field: 's.length', expected: null },
  { name: 'an array index', payload: '{"a":[5,1796569200]}', field: 'a.1', expected: 1796569200000 },
  { name: 'a root array index', payload: '[1796569200]', field: '0', expected: 1796569200000 },
  { name: 'an index out of range', payload: '{"a":[5]}', field: 'a.1', expected: null },
  { name: 'a non-canonical index', payload: '{"a":[5,6]}', field: 'a.01', expected: null },
  { name: 'a negative index', payload: '{"a":[5]}', field: 'a.-1', expected: null },
  { name: 'a nested array index', payload: '{"a":[[1],[2,{"b":3}]]}', field: 'a.1.1.b', expected: 3000 },
  { name: 'elements before the indexed one', payload: '{"a":[{"b":1},[{"b":2}],{"b":3}]}', field: 'a.2.b', expected: 3000 },
  { name: 'an array length', payload: '{"a":[1,2,3]}', field: 'a.length', expected: 3000 },
  { name: 'an empty array length', payload: '{"a":[]}', field: 'a.length', expected: 0 },
  { name: 'a root array length', payload: '[[],{},3]', field: 'length', expected: 3000 },
  { name: 'an array length on the way', payload: '{"a":[1,2,3]}', field: 'a.length.x', expected: null },
  { name: 'a length key', payload: '{"length":7}', field: 'length', expected: 7000 },
  { name: 'a numeric key in an object', payload: '{"1":7}', field: '1', expected: 7000 },
  { name: 'an empty part', payload: '{"a":{"":{"b":1}}}', field: 'a..b', expected: 1000 },
  { name: 'a top-level scalar', payload: '1796569200', field: 'ts', expected: null },
  { name: 'a top-level string', payload: '"abc"', field: 'length', expected: null },
  { name: 'a top-level null', payload: 'null', field: 'ts', expected: null },
  // Keys that name something on Object.prototype or Array.prototype.
  { name: '__proto__ of an object', payload: '{}', field: '__proto__', expected: null },
  { name: 'an own __proto__', payload: '{"__proto__":1796569200}', field: '__proto__', expected: 1796569200000 },
  { name: 'a duplicate own __proto__', payload: '{"__proto__":1,"__proto__":2}', field: '__proto__', expected: 2000 },
  { name: 'an own __proto__ object', payload: '{"__proto__":{"ts":5}}', field: '__proto__.ts', expected: 5000 },
  { name: 'constructor', payload: '{}', field: 'constructor', expected: null },
  { name: 'an own constructor', payload: '{"constructor":5}', field: 'constructor', expected: 5000 },
  { name: 'toString', payload: '{"a":1}', field: 'toString', expected: null },
  { name: 'constructor.length', payload: '{"a":1}', field: 'constructor.length', expected: null },
  { name: 'constructor.name of an array', payload: '[]', field: 'constructor.name', expected: null },
  { name: '__proto__.length of an array is Array.prototype.length', payload: '[1,2]', field: '__proto__.length', expected: 0 },
  { name: 'a nested array __proto__.length', payload: '{"a":[1]}', field: 'a.__proto__.length', expected: 0 },
  { name: '__proto__.length of an object', payload: '{"a":{}}', field: 'a.__proto__.length', expected: null },
  { name: '__proto__.__proto__.length of an array', payload: '[1]', field: '__proto__.__proto__.length', expected: null },
  { name: '__proto__.length.x of an array', payload: '[1]', field: '__proto__.length.x', expected: null },
  { name: '__proto__.0 of an array', payload: '[1]', field: '__proto__.0', expected: null },
  { name: 'an own __proto__ array', payload: '{"__proto__":[1,2]}', field: '__proto__.length', expected: 2000 },
  { name: 'hasOwnProperty', payload: '{"hasOwnProperty":1}', field: 'hasOwnProperty', expected: 1000 },
  // Nesting: no recursion, any depth.
  { name: 'deep nesting around the field', payload: deep(100_000, '{"ts":1}'), field: 'a.a.a', expected: null },
  { name: 'deep nesting on the path', payload: deep(3, '{"ts":1}'), field: 'a.a.a.ts', expected: 1000 },
  { name: 'deep arrays after the field', payload: `{"ts":1,"x":${'['.repeat(200_000)}${']'.repeat(200_000)}}`, field: 'ts', expected: 1000 },
  { name: 'deep arrays left open', payload: `{"ts":1,"x":${'['.repeat(200_000)}}`, field: 'ts', expected: null },
  { name: 'deep arrays closed wrongly', payload: `{"ts":1,"x":${'['.repeat(5000)}${']'.repeat(4999)}}}`, field: 'ts', expected: null },
];

function escapeUnicode(char: string): string {
  return `\\u${(char.codePointAt(0) ?? 0).toString(16).padStart(4, '0')}`;
}

test('readTimestampField: every rule gives what the JSON.parse implementation gave', () => {
  for (const testCase of cases) {
    const payload = bytes(testCase.payload);
    const expected = assertSameAsReference(payload, testCase.field, testCase.name);
    // A plain Uint8Array too: strings from a Buffer take a faster way.
    assertSameAsReference(new Uint8Array(payload), testCase.field, `${testCase.name} (Uint8Array)`);
    if (testCase.expected !== undefined) assert.equal(expected, testCase.expected, `${testCase.name}: the reference itself`);
  }
});

test('readJsonField: numbers and strings as such, other values null, nothing or not JSON undefined', () => {
  const doc = Buffer.from('{"n":-1.5e2,"s":"a\\nb","o":{"t":true},"a":[1,"x"]}');
  assert.equal(readJsonField(doc, 'n'), -150);
  assert.equal(readJsonField(doc, 's'), 'a\nb');
  assert.equal(readJsonField(doc, 'o'), null);
  assert.equal(readJsonField(doc, 'o.t'), null);
  assert.equal(readJsonField(doc, 'a.1'), 'x');
  assert.equal(readJsonField(doc, 'a.length'), 2);
  assert.equal(readJsonField(doc, 'missing'), undefined);
  assert.equal(readJsonField(doc, 'n.x'), undefined);
  assert.equal(readJsonField(doc, 's', 2), null, 'longer than maxStringLength');
  assert.equal(readJsonField(doc, 's', 3), 'a\nb');
  assert.equal(readJsonField(Buffer.from('{"n":1,}'), 'n'), undefined);
});

// The differential run: generated JSON (nesting, duplicates, escapes, Unicode, numbers of every shape),
// some of it mutated into invalid JSON, each read for several fields by both implementations.
const FIELDS = ['ts', 'a.b', 'a.ts', 'a.0', 'a.length', 'length', '0', 'a.b.ts', 'ü', '__proto__', 'a.__proto__.length', 'constructor', '', 'b.1.a'];
const KEYS = [
  '"ts"',
  '"ts"',
  '"ts"',
  '"a"',
  '"a"',
  '"a"',
  '"b"',
  '"b"',
  '"t\\u0073"',
  '"\\u0074s"',
  '"\\u0061"',
  '"ü"',
  '"\\u00fc"',
  '"__proto__"',
  '"length"',
  '"0"',
  '"1"',
  '""',
  '"t"',
  '"tss"',
];
const SHORT_ESCAPES = ['\\"', '\\\\', '\\/', '\\b', '\\f', '\\n', '\\r', '\\t'];
const STRING_CHARS = ['a', 'Z', '0', '9', '-', ':', '.', ' ', 'T', 'é', '時', '\u{1f600}', '\u2028', '\u007f', '\ufeff'];
const GARBAGE = [0x22, 0x5c, 0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a, 0x80, 0xbf, 0xc3, 0xe2, 0xef, 0xff, 0x00, 0x20, 0x0c, 0x30, 0x2d, 0x2e, 0x65, 0x75];

function createGenerator(random: Random) {
  const below = (limit: number) => Math.floor(random() * limit);
  const pick = <T>(items: readonly T[]): T => items[below(items.length)] as T;
  const space = () => (random() < 0.8 ? '' : pick([' ', '\t', '\n', '\r', ' \r\n\t ']));
  const digits = (count: number) => Array.from({ length: count }, () => String(below(10))).join('');

  function number(): string {
    // Now and then a number JSON does not allow: the whole document is then no JSON.
    if (random() < 0.02) return pick(['01', '-01', '00', '1.', '.5', '+1', '-', '1e', '1e+', '0x1', '1.e3', '-.1', 'NaN', 'Infinity']);
    const shape = below(6);
    if (shape === 0) return String(1_700_000_000 + below(200_000_000));
    if (shape === 1) return String(1_700_000_000_000 + below(200_000_000_000));
    if (shape === 2) return pick(['-0', '0', '-0.0', '1e400', '-1e400', '5e-324', '9007199254740993', '1e11', '99999999999.5', '0.1', '1E+9', '17e-1']);
    const integer = random() < 0.2 ? '0' : `${1 + below(9)}${digits(below(20))}`;
    const fraction = random() < 0.5 ? `.${digits(1 + below(18))}` : '';
    const exponent = random() < 0.3 ? `${pick(['e', 'E'])}${pick(['', '+', '-'])}${digits(1 + below(3))}` : '';
    return `${random() < 0.2 ? '-' : ''}${integer}${fraction}${exponent}`;
  }

  function stringChar(): string {
    const char = pick(STRING_CHARS);
    const form = below(8);
    if (form === 0) return pick(SHORT_ESCAPES);
    if (form === 1) return escapeUnicode(char.length === 1 ? char : 'x');
    if (form === 2) return pick(['\\ud800', '\\udfff', '\\ud83d\\ude00']);
    return char;
  }

  function string(): string {
    if (random() < 0.7) {
      const iso = new Date(Date.UTC(2000, 0, 1) + below(30 * 365 * 86_400_000)).toISOString();
      const text = pick([iso, iso, iso.slice(0, 10), iso.replace('T', ' '), `${new Date(Date.parse(iso)).toUTCString()}${' '.repeat(below(50))}`]);
      // Now and then a character escaped: the decoded value must still parse the same.
      return `"${[...text].map((char) => (random() < 0.05 ? escapeUnicode(char) : char)).join('')}"`;
    }
    return `"${Array.from({ length: below(80) }, stringChar).join('')}"`;
  }

  function scalar(): string {
    const kind = below(10);
    if (kind < 4) return number();
    if (kind < 8) return string();
    return pick(['true', 'false', 'null']);
  }

  function container(depth: number): string {
    const isObject = depth === 0 || random() < 0.7;
    const members = Array.from({ length: depth === 0 ? 1 + below(4) : below(6) }, () => {
      const item = value(depth + 1);
      return isObject ? member(pick(KEYS), item) : `${space()}${item}${space()}`;
    });
    // Most documents carry what the fields look for, at a random place among the other members.
    if (depth === 0 && random() < 0.7) members.splice(below(members.length + 1), 0, member(pick(['"ts"', '"t\\u0073"']), timestamp()));
    if (depth === 0 && random() < 0.3) members.splice(below(members.length + 1), 0, member('"a"', `{"b":${timestamp()},"ts":${timestamp()}}`));
    return isObject ? `{${members.join(',')}${space()}}` : `[${members.join(',')}${space()}]`;
  }

  function member(key: string, item: string): string {
    return `${space()}${key}${space()}:${space()}${item}${space()}`;
  }

  function timestamp(): string {
    return random() < 0.5 ? number() : string();
  }

  function value(depth: number): string {
    return depth > 4 || random() < 0.5 ? scalar() : container(depth);
  }

  function document(): Buffer {
    const text = random() < 0.9 ? container(0) : value(1);
    const wrapped = random() < 0.05 ? `${'['.repeat(60)}${text}${']'.repeat(60)}` : text;
    return Buffer.from(`${space()}${wrapped}${space()}`);
  }

  return { document, random };
}

/** Truncations, bit flips, garbage bytes, cuts, a BOM, repeated pieces: mostly no JSON any more. */
function mutatePayload(input: Buffer, random: Random): Buffer {
  const below = (limit: number) => Math.floor(random() * limit);
  const pick = <T>(items: readonly T[]): T => items[below(items.length)] as T;
  let out = input;
  for (let round = 1 + below(3); round > 0; round--) {
    const at = below(out.length + 1);
    const last = Math.min(at, out.length - 1);
    const op = below(7);
    if (op === 0) out = out.subarray(0, at);
    else if (op === 1 && out.length > 0) out[last] = (out[last] ?? 0) ^ (1 << below(8));
    else if (op === 2 && out.length > 0) out[last] = pick(GARBAGE);
    else if (op === 3) out = Buffer.concat([out.subarray(0, at), Buffer.from(Array.from({ length: 1 + below(3) }, () => pick(GARBAGE))), out.subarray(at)]);
    else if (op === 4) out = Buffer.concat([out.subarray(0, at), out.subarray(Math.min(out.length, at + 1 + below(4)))]);
    else if (op === 5) out = Buffer.concat([BOM, out]);
    else out = Buffer.concat([out.subarray(0, at), out.subarray(below(out.length)), out.subarray(at)]);
  }
  return out;
}

const ROUNDS = 2500;

test('readTimestampField: seeded differential run against the JSON.parse implementation', () => {
  const generator = createGenerator(createRandom(20261206));
  let found = 0;
  let valid = 0;
  let checks = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const original = generator.document();
    const mutated = generator.random() < 0.35 ? mutatePayload(Buffer.from(original), generator.random) : original;
    const withBom = generator.random() < 0.05 ? Buffer.concat([BOM, mutated]) : mutated;
    const payload = round % 4 === 0 ? new Uint8Array(withBom) : withBom;
    let parses = true;
    try {
      JSON.parse(new TextDecoder().decode(payload));
    } catch {
      parses = false;
    }
    if (parses) valid += 1;
    for (const field of FIELDS) {
      if (assertSameAsReference(payload, field, `round ${round}`) !== null) found += 1;
      checks += 1;
    }
  }
  // Not a vacuous run: most documents are JSON, and many reads find a timestamp.
  assert.ok(valid > ROUNDS / 2, `${valid} of ${ROUNDS} payloads are JSON`);
  assert.ok(found > checks / 20, `${found} of ${checks} reads found a timestamp`);
});
