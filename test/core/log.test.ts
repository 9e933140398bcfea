import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogBudget, createOnceLogger } from '../../src/core/log.ts';
import { captureLog } from '../helpers/capture-log.ts';

test('secrets are redacted wherever they sit in a log line', () => {
  const { log, lines } = captureLog();
  log.info({ password: 'p1', mqtt: { password_hash: 'h1' }, kafka: { sasl: { password: 'p2', username: 'gw' } }, device: { app_s_key: 'k1' } }, 'config');
  const text = JSON.stringify(lines());
  for (const secret of ['p1', 'h1', 'p2', 'k1']) assert.ok(!text.includes(`"${secret}"`), secret);
  assert.ok(text.includes('"gw"'), 'non-secret fields stay');
});

test('the once-logger lets a key through once per interval and stays bounded', () => {
  let now = 0;
  const once = createOnceLogger(1000, () => now, { maxKeys: 3 });
  assert.equal(once.shouldLog('a'), true);
  assert.equal(once.shouldLog('a'), false);
  now = 1001;
  assert.equal(once.shouldLog('a'), true);
  for (const key of ['b', 'c', 'd', 'e']) once.shouldLog(key);
  assert.equal(once.shouldLog('e'), false);
  assert.equal(once.shouldLog('a'), true, 'the oldest keys were forgotten to stay within 3');
});

test('once-logger keys from input cost a bounded amount: 10,000 distinct 60 KiB keys keep at most 1,000 short ones', () => {
  const once = createOnceLogger(60_000, () => 0);
  const before = process.memoryUsage().heapUsed;
  const key = (index: number) => `connect:${String(index).padStart(6, '0')}${'x'.repeat(60 * 1024)}:bad-credentials`;
  let logged = 0;
  for (let index = 0; index < 10_000; index++) if (once.shouldLog(key(index))) logged += 1;
  assert.equal(logged, 10_000);
  assert.equal(once.shouldLog(key(9_999)), false, 'a recent key is remembered (by its first 160 characters)');
  assert.equal(once.shouldLog(key(0)), true, 'the oldest were forgotten: at most 1,000 keys');
  assert.ok(process.memoryUsage().heapUsed - before < 64 * 1024 * 1024, 'no 60 KiB key is kept');
});

test('the log budget limits input-driven lines across loggers and says how many it left out', () => {
  let now = 0;
  const { log, lines } = captureLog();
  let suppressed = 0;
  const budget = createLogBudget({ linesPerMinute: 60, burst: 5 }, { log, nowMs: () => now, onSuppressed: () => suppressed++ });
  const a = createOnceLogger(60_000, () => now, { budget });
  const b = createOnceLogger(60_000, () => now, { budget });
  let written = 0;
  for (let index = 0; index < 1000; index++) if ((index % 2 === 0 ? a : b).shouldLog(`key-${index}`)) written += 1;
  assert.equal(written, 5, 'the burst, then nothing');
  assert.equal(suppressed, 995);
  now = 10_000; // 10 s at 60 a minute: 10 more lines
  assert.equal(a.shouldLog('later'), true);
  const summary = lines().find((line) => typeof line.msg === 'string' && line.msg.startsWith('995 warnings about refused input were not logged'));
  assert.ok(summary !== undefined, JSON.stringify(lines()));
});
