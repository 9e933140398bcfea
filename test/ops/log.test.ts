import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createOnceLogger } from '../../src/ops/log.ts';
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
  const once = createOnceLogger(1000, () => now, 3);
  assert.equal(once.shouldLog('a'), true);
  assert.equal(once.shouldLog('a'), false);
  now = 1000;
  assert.equal(once.shouldLog('a'), true);
  for (const key of ['b', 'c', 'd', 'e']) once.shouldLog(key);
  assert.equal(once.shouldLog('e'), false);
});
