// Clock trust (no RTC on a Pi: the time is wrong until NTP syncs) and what a clock step must never do to the
// buffer: records stay in acceptance (seq) order and nothing expires, even when received-at goes backwards.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { createSqliteStore } from '../../src/buffer/sqlite-store.ts';
import { createClockTrust, TIMESYNC_FLAG_PATH } from '../../src/ops/clock.ts';
import type { NewRecord } from '../../src/record/record.ts';
import { captureLog } from '../helpers/capture-log.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const BUILD_MS = Date.parse('2026-01-01T00:00:00Z');

function trust(over: { env?: NodeJS.ProcessEnv; files?: string[]; ntp?: boolean | null; nowMs?: () => number } = {}) {
  const captured = captureLog();
  let ntpCalls = 0;
  const clock = createClockTrust(
    { recheckMs: 60_000 },
    {
      log: captured.log,
      env: over.env ?? {},
      fileExists: (path) => (over.files ?? []).includes(path),
      ntpSynchronized: async () => {
        ntpCalls += 1;
        return over.ntp === undefined ? null : over.ntp;
      },
      nowMs: over.nowMs ?? (() => BUILD_MS + 1000),
      buildTimeMs: BUILD_MS,
    },
  );
  return { clock, captured, ntpCalls: () => ntpCalls };
}

test('trusted when systemd-timesyncd has synchronized (its flag file), without asking timedatectl', async () => {
  const { clock, ntpCalls } = trust({ files: [TIMESYNC_FLAG_PATH], ntp: false });
  assert.equal(await clock.check(), true);
  assert.equal(ntpCalls(), 0);
});

test('trusted when timedatectl says NTPSynchronized=yes (chrony, ntpd)', async () => {
  assert.equal(await trust({ ntp: true }).clock.check(), true);
});

test('not trusted when timedatectl says no, even if the clock is after the build time (fake-hwclock)', async () => {
  assert.equal(await trust({ ntp: false }).clock.check(), false);
});

test('without timedatectl: trusted only once the wall clock is later than the build', async () => {
  assert.equal(await trust({ ntp: null, nowMs: () => BUILD_MS - 86_400_000 }).clock.check(), false);
  assert.equal(await trust({ ntp: null, nowMs: () => BUILD_MS + 1 }).clock.check(), true);
});

test('IOTGW_CLOCK_TRUSTED=1 overrides', async () => {
  assert.equal(await trust({ env: { IOTGW_CLOCK_TRUSTED: '1' }, ntp: false }).clock.check(), true);
});

test('logs once at start when untrusted, once when it becomes trusted, then stops checking', async () => {
  let synced = false;
  const captured = captureLog();
  let calls = 0;
  const clock = createClockTrust(
    { recheckMs: 60_000 },
    {
      log: captured.log,
      env: {},
      fileExists: () => false,
      ntpSynchronized: async () => {
        calls += 1;
        return synced;
      },
      buildTimeMs: BUILD_MS,
    },
  );
  await clock.start();
  assert.equal(clock.isTrusted(), false);
  await clock.check();
  synced = true;
  await clock.check();
  assert.equal(clock.isTrusted(), true);
  await clock.check();
  clock.stop();
  assert.equal(calls, 3, 'no more timedatectl once trusted');
  const clockLines = captured.lines().filter((line) => line.component === 'clock');
  assert.deepEqual(
    clockLines.map((line) => line.level),
    ['warn', 'info'],
  );
  assert.match(String(clockLines[0]?.msg), /clock not synchronized yet/);
  assert.match(String(clockLines[1]?.msg), /clock synchronized \(ntp\)/);
});

function reading(n: number, receivedAtMs: number): NewRecord {
  return {
    key: `dev-${n % 3}`,
    stream: 'telemetry',
    source: 'mqtt',
    receivedAtMs,
    eventTimeMs: receivedAtMs,
    payload: Buffer.from(`{"n":${n}}`),
    meta: {},
  };
}

test('a clock step backwards (NTP sync after a boot with a later fake-hwclock time) neither reorders nor expires records', (t) => {
  const path = join(tempDir(t), 'buffer.db');
  let wallMs = Date.parse('2031-06-01T00:00:00Z');
  const store = createSqliteStore({ path, maxRecords: 1000, maxBytes: 1_000_000, whenFull: 'reject' }, { nowMs: () => wallMs });
  t.after(() => store.close());
  // Received-at goes backwards by a year halfway, then a little forwards, then back again.
  const times = [wallMs, wallMs + 1000, wallMs - 365 * 86_400_000, wallMs - 365 * 86_400_000 + 5, 0, 1_000];
  const outcomes = store.append(times.map((time, n) => [reading(n, time)]));
  assert.ok(outcomes.every((outcome) => outcome.ok));
  wallMs = Date.parse('2025-01-01T00:00:00Z');
  const first = store.lease(3, 1_000_000);
  assert.deepEqual(
    first.map((record) => record.payload.toString()),
    ['{"n":0}', '{"n":1}', '{"n":2}'],
  );
  store.release(first.map((record) => record.seq));
  // Much later (by any clock), all six are still there, in acceptance order.
  wallMs = Date.parse('2040-01-01T00:00:00Z');
  const all = store.lease(100, 1_000_000);
  assert.deepEqual(
    all.map((record) => record.payload.toString()),
    times.map((_, n) => `{"n":${n}}`),
  );
  assert.deepEqual(
    all.map((record) => record.receivedAtMs),
    times,
    'received-at kept as recorded, even when it goes backwards',
  );
  assert.ok(
    all.every((record, i) => i === 0 || record.seq > (all[i - 1]?.seq ?? 0)),
    'seq strictly increasing',
  );
  assert.equal(store.stats().depthRecords, 6);
  assert.equal(store.stats().droppedRecords, 0);
});
