// The watchdog feeds systemd only while healthy: event-loop lag under the bound, buffer thread answering,
// ingress listeners up. Kafka down is buffering, not a reason to be restarted. Each change is logged once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ReadinessReport } from '../../src/ops/health.ts';
import type { HealthReport } from '../../src/core/lifecycle.ts';
import { createWatchdog, statusSummary, watchdogVerdict } from '../../src/ops/watchdog.ts';
import { captureLog } from '../helpers/capture-log.ts';

const OK: Readonly<Record<string, HealthReport>> = {
  buffer: { status: 'ok' },
  'sink.kafka': { status: 'ok' },
  forwarder: { status: 'ok' },
  'ingress.commit': { status: 'ok' },
  'ingress.mqtt': { status: 'ok' },
};

function report(components: Readonly<Record<string, HealthReport>> = OK, kafka: ReadinessReport['kafka'] = 'up', depthRecords = 0): ReadinessReport {
  return { ready: true, kafka, components, buffer: { depthRecords, depthBytes: depthRecords * 100, oldestAgeSeconds: depthRecords > 0 ? 42 : 0 } };
}

function fakeNotifier(intervalMs: number | null) {
  const sent: string[] = [];
  return {
    sent,
    notifier: {
      watchdogIntervalMs: () => intervalMs,
      watchdogPing: (status?: string) => sent.push(status === undefined ? 'WATCHDOG=1' : `WATCHDOG=1 STATUS=${status}`),
      status: (text: string) => sent.push(`STATUS=${text}`),
    },
  };
}

test('verdict: healthy, and Kafka down (forwarder and sink degraded) is still healthy', () => {
  assert.equal(watchdogVerdict(10, 5000, OK), null);
  const buffering = { ...OK, forwarder: { status: 'degraded', detail: 'buffering' }, 'sink.kafka': { status: 'degraded' } } as const;
  assert.equal(watchdogVerdict(10, 5000, buffering), null);
});

test('verdict: event-loop lag over the bound, a dead buffer thread, a dead listener', () => {
  assert.match(watchdogVerdict(6000, 5000, OK) ?? '', /^event loop blocked for 6000 ms/);
  assert.equal(
    watchdogVerdict(10, 5000, { ...OK, buffer: { status: 'down', detail: 'buffer thread exited (code 1)' } }),
    'buffer thread down (buffer thread exited (code 1))',
  );
  assert.equal(watchdogVerdict(10, 5000, { ...OK, 'ingress.mqtt': { status: 'down', detail: 'not listening' } }), 'ingress.mqtt down (not listening)');
  // A degraded ingress (e.g. a serial radio unplugged) is not something a restart fixes.
  assert.equal(watchdogVerdict(10, 5000, { ...OK, 'ingress.serial': { status: 'degraded', detail: 'radio unplugged' } }), null);
});

test('pings only while healthy; logs once when it stops pinging and once when it resumes', () => {
  const { log, lines } = captureLog();
  const { notifier, sent } = fakeNotifier(15_000);
  let components: Readonly<Record<string, HealthReport>> = OK;
  let lag = 0;
  const watchdog = createWatchdog({ maxLagMs: 5000, statusIntervalMs: 30_000 }, { notifier, readiness: () => report(components), log, lagMs: () => lag });

  assert.equal(watchdog.tick(), null);
  assert.equal(watchdog.tick(), null);
  assert.deepEqual(sent, ['WATCHDOG=1 STATUS=ready: kafka up, 0 buffered', 'WATCHDOG=1'], 'status only sent when it changes');

  components = { ...OK, buffer: { status: 'down', detail: '3 requests unanswered for 25s' } };
  sent.length = 0;
  assert.equal(watchdog.tick(), 'buffer thread down (3 requests unanswered for 25s)');
  assert.equal(watchdog.tick(), 'buffer thread down (3 requests unanswered for 25s)');
  assert.deepEqual(sent, ['STATUS=unhealthy: buffer thread down (3 requests unanswered for 25s): kafka up, 0 buffered'], 'no WATCHDOG=1 while unhealthy');

  components = OK;
  lag = 7000;
  sent.length = 0;
  assert.match(watchdog.tick() ?? '', /^event loop blocked/);
  assert.equal(sent.filter((line) => line.startsWith('WATCHDOG')).length, 0);

  lag = 3;
  sent.length = 0;
  assert.equal(watchdog.tick(), null);
  assert.deepEqual(sent, ['WATCHDOG=1 STATUS=ready: kafka up, 0 buffered']);

  const watchdogLines = lines()
    .filter((line) => line.component === 'watchdog')
    .map((line) => `${line.level} ${line.msg}`);
  assert.deepEqual(watchdogLines, [
    'warn watchdog: not pinging, buffer thread down (3 requests unanswered for 25s)',
    'warn watchdog: not pinging, event loop blocked for 7000 ms (limit 5000 ms)',
    'info watchdog: healthy again, pinging',
  ]);
});

test('a readiness check that throws counts as unhealthy', () => {
  const { log } = captureLog();
  const { notifier, sent } = fakeNotifier(1000);
  const watchdog = createWatchdog(
    { maxLagMs: 5000, statusIntervalMs: 30_000 },
    {
      notifier,
      log,
      lagMs: () => 0,
      readiness: () => {
        throw new Error('boom');
      },
    },
  );
  assert.equal(watchdog.tick(), 'health check failed: boom');
  assert.equal(sent.filter((line) => line.startsWith('WATCHDOG')).length, 0);
});

test('without a systemd watchdog it only keeps STATUS= up to date', () => {
  const { log } = captureLog();
  const { notifier, sent } = fakeNotifier(null);
  let depth = 0;
  const watchdog = createWatchdog(
    { maxLagMs: 5000, statusIntervalMs: 30_000 },
    { notifier, readiness: () => report(OK, 'buffering', depth), log, lagMs: () => 0 },
  );
  watchdog.tick();
  watchdog.tick();
  depth = 1234;
  watchdog.tick();
  assert.deepEqual(sent, ['STATUS=ready: kafka buffering, 0 buffered', 'STATUS=ready: kafka buffering, 1234 buffered (oldest 42s)']);
});

test('status summary', () => {
  assert.equal(statusSummary(report(), null), 'ready: kafka up, 0 buffered');
  assert.equal(statusSummary(report(OK, 'buffering', 5), 'x down'), 'unhealthy: x down: kafka buffering, 5 buffered (oldest 42s)');
});

test('start/stop with the real event-loop monitor pings at once and stops cleanly', () => {
  const { log } = captureLog();
  const { notifier, sent } = fakeNotifier(60_000);
  const watchdog = createWatchdog({ maxLagMs: 5000, statusIntervalMs: 30_000 }, { notifier, readiness: () => report(), log });
  watchdog.start();
  watchdog.stop();
  assert.deepEqual(sent, ['WATCHDOG=1 STATUS=ready: kafka up, 0 buffered']);
});
