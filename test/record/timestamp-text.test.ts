// parseTimestampText is Date.parse for every string: toISOString's forms across the years it reads itself,
// every field at and past its bounds (leap days, day 31 of short months, hour 24, second 60, years before 1970
// and below 100), and each of those strings with one character replaced by a digit, a separator, a lowercase
// letter or a non-ASCII digit.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRandom } from '../../firmware-sim/fleet.ts';
import { parseTimestampText } from '../../src/record/timestamp-text.ts';

const pad = (value: number, width: number) => String(value).padStart(width, '0');

function assertSameAsDateParse(text: string): void {
  assert.ok(Object.is(parseTimestampText(text), Date.parse(text)), `${JSON.stringify(text)}: ${parseTimestampText(text)}, Date.parse ${Date.parse(text)}`);
}

/** Strings that look like toISOString's forms with every field at and around its bounds. */
function boundaryTexts(): string[] {
  const texts: string[] = [];
  const years = [0, 1, 99, 100, 1900, 1969, 1970, 2000, 2024, 2025, 2026, 2100, 2400, 9999];
  for (const year of years) {
    for (let month = 0; month <= 13; month++) {
      for (const day of [0, 1, 28, 29, 30, 31, 32]) {
        const date = `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}`;
        texts.push(`${date}T12:34:56.789Z`, `${date}T12:34:56Z`);
      }
    }
  }
  for (const time of ['00:00:00', '23:59:59', '24:00:00', '24:00:01', '25:00:00', '23:60:00', '23:59:60', '99:99:99']) {
    texts.push(`2026-12-07T${time}.000Z`, `2026-12-07T${time}Z`, `2026-12-07T${time}.999Z`);
  }
  return texts;
}

const REPLACEMENTS = ['0', '9', '-', ':', '.', 'T', 't', 'Z', 'z', ' ', '+', 'x', '\u0663', '\u0000'];

test('toISOString forms of random times from 1970 to 9999 and before read as Date.parse reads them', () => {
  const random = createRandom(20261207);
  for (let n = 0; n < 20_000; n++) {
    const ms = Math.floor((random() * 2 - 0.25) * 253402300799999);
    const iso = new Date(ms).toISOString();
    assertSameAsDateParse(iso);
    assertSameAsDateParse(`${iso.slice(0, 19)}Z`);
  }
});

test('every field at and past its bounds reads as Date.parse reads it, and so does each string with one character replaced', () => {
  const random = createRandom(7);
  for (const text of boundaryTexts()) {
    assertSameAsDateParse(text);
    for (let n = 0; n < 6; n++) {
      const at = Math.floor(random() * text.length);
      const replacement = REPLACEMENTS[Math.floor(random() * REPLACEMENTS.length)] as string;
      assertSameAsDateParse(text.slice(0, at) + replacement + text.slice(at + 1));
    }
  }
});

test('other forms and lengths go to Date.parse', () => {
  for (const text of [
    '',
    'Z',
    '2026-12-07',
    '2026-12-07T05:10:00',
    '2026-12-07T05:10:00.5Z',
    '2026-12-07T05:10:00.0000Z',
    '2026-12-07T05:10:00+01:00',
    '+002026-12-07T05:10:00.000Z',
    'Mon, 07 Dec 2026 05:10:00 GMT',
    '2026-12-07 05:10:00Z',
  ]) {
    assertSameAsDateParse(text);
  }
  assert.equal(parseTimestampText('2026-12-07T05:10:00.123Z'), Date.UTC(2026, 11, 7, 5, 10, 0, 123));
});
