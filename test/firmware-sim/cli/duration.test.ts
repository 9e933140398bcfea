// The one duration syntax of firmware-sim's flags: units ms, s, m, h, decimals, and a bare number meaning
// seconds (so `--duration 30` from before units still works); anything else is refused with a reason.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_DURATION_MS, parseDurationMs } from '../../../firmware-sim/cli/duration.ts';

test('durations with a unit, with decimals, and bare seconds', () => {
  for (const [text, ms] of [
    ['500ms', 500],
    ['60s', 60_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1.5m', 90_000],
    ['0.25s', 250],
    ['30', 30_000],
    ['2.5', 2_500],
    ['0', 0],
    ['0s', 0],
    [' 10s ', 10_000],
    ['596h', 596 * 3_600_000],
  ] as const) {
    assert.deepEqual(parseDurationMs(text), { ok: true, ms }, text);
  }
});

test('a fraction of a millisecond rounds to whole milliseconds', () => {
  assert.deepEqual(parseDurationMs('1.4ms'), { ok: true, ms: 1 });
  assert.deepEqual(parseDurationMs('0.0004s'), { ok: true, ms: 0 });
});

test('anything else is refused with the syntax it should have', () => {
  for (const text of ['', ' ', 'abc', '-5s', '-1', '5 s', '5sec', '5S', '1d', '1m30s', '.5s', '5.', '1e3', '0x10', 'Infinity', 'NaN', 's', '10 m']) {
    const result = parseDurationMs(text);
    assert.ok(!result.ok, `'${text}' must be refused`);
    assert.match(result.reason, /must be a duration such as 60s, 5m, 1h, 500ms or a number of seconds/, text);
  }
});

test('longer than a Node.js timer can wait is refused, not silently cut to "now"', () => {
  assert.deepEqual(parseDurationMs(`${MAX_DURATION_MS}ms`), { ok: true, ms: MAX_DURATION_MS });
  for (const text of [`${MAX_DURATION_MS + 1}ms`, '597h', '99999999999999999999']) {
    const result = parseDurationMs(text);
    assert.ok(!result.ok, text);
    assert.match(result.reason, /at most 596h/, text);
  }
});
