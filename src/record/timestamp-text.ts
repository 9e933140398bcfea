// A timestamp written as text, in ms since the epoch: Date.parse's result for every string. Devices and
// firmware-sim mostly write Date.prototype.toISOString's form ("2026-12-07T05:10:00.000Z", or without the
// milliseconds); that form is read here digit by digit, which took Date.parse's share of the forwarding thread
// (about 3 %, one timestamp per record) to almost nothing. Whatever else the text is (another offset, a
// lowercase "t", a day past the month's end, the hour 24) goes to Date.parse, so its quirks stay its own.

const ZERO = 0x30;
/** Days in each month of a common year; February is checked for the leap day separately. */
const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** ms since the epoch of `text` as Date.parse reads it; NaN where it reads none. */
export function parseTimestampText(text: string): number {
  const fast = text.length === 24 || text.length === 20 ? isoUtc(text) : Number.NaN;
  return Number.isNaN(fast) ? Date.parse(text) : fast;
}

/** `YYYY-MM-DDTHH:MM:SS.sssZ` or `YYYY-MM-DDTHH:MM:SSZ` (years 1970-9999, real dates only), else NaN. */
function isoUtc(text: string): number {
  const withMs = text.length === 24;
  if (
    text.charCodeAt(4) !== 0x2d || // -
    text.charCodeAt(7) !== 0x2d ||
    text.charCodeAt(10) !== 0x54 || // T
    text.charCodeAt(13) !== 0x3a || // :
    text.charCodeAt(16) !== 0x3a ||
    text.charCodeAt(text.length - 1) !== 0x5a || // Z
    (withMs && text.charCodeAt(19) !== 0x2e) // .
  ) {
    return Number.NaN;
  }
  const year = digits(text, 0, 4);
  const month = digits(text, 5, 2);
  const day = digits(text, 8, 2);
  const hour = digits(text, 11, 2);
  const minute = digits(text, 14, 2);
  const second = digits(text, 17, 2);
  const ms = withMs ? digits(text, 20, 3) : 0;
  // A non-digit made its field negative; Date.UTC reads years below 100 as 19xx, so those go to Date.parse.
  if (year < 1970 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59 || ms < 0) {
    return Number.NaN;
  }
  const leapDay = month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 1 : 0;
  if (day > (MONTH_DAYS[month - 1] as number) + leapDay) return Number.NaN;
  return Date.UTC(year, month - 1, day, hour, minute, second, ms);
}

/** The decimal number in `count` characters of `text` from `at`; -1 if any is not an ASCII digit. */
function digits(text: string, at: number, count: number): number {
  let value = 0;
  for (let index = at; index < at + count; index++) {
    const digit = text.charCodeAt(index) - ZERO;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value;
}
