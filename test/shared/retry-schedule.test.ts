// The one reconnect-with-backoff: one pending retry at a time, delays doubling to the cap, reset on success.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRetrySchedule } from '../../src/shared/retry-schedule.ts';

function manualClock() {
  const pending: { callback: () => void; delayMs: number; cancelled: boolean }[] = [];
  return {
    pending,
    schedule(callback: () => void, delayMs: number) {
      const entry = { callback, delayMs, cancelled: false };
      pending.push(entry);
      return () => {
        entry.cancelled = true;
      };
    },
    fire() {
      const entry = pending.shift();
      if (entry !== undefined && !entry.cancelled) entry.callback();
    },
  };
}

test('a failure schedules one retry; more failures while it is pending schedule nothing', () => {
  const clock = manualClock();
  let retries = 0;
  const schedule = createRetrySchedule({ initialMs: 100, maxMs: 1000 }, () => retries++, { schedule: clock.schedule, random: () => 1 });
  assert.deepEqual(schedule.failed(), { attempt: 1, delayMs: 100 });
  assert.equal(schedule.failed(), null);
  assert.equal(clock.pending.length, 1);
  clock.fire();
  assert.equal(retries, 1);
});

test('delays double up to the cap and start again after a success', () => {
  const clock = manualClock();
  const schedule = createRetrySchedule({ initialMs: 100, maxMs: 500 }, () => undefined, { schedule: clock.schedule, random: () => 1 });
  const delays: number[] = [];
  for (let i = 0; i < 5; i++) {
    delays.push(schedule.failed()?.delayMs ?? -1);
    clock.fire();
  }
  assert.deepEqual(delays, [100, 200, 400, 500, 500]);
  assert.equal(schedule.failures, 5);
  schedule.succeeded();
  assert.equal(schedule.failures, 0);
  assert.equal(schedule.failed()?.delayMs, 100);
});

test('cancel drops the pending retry, and a failure after it schedules again', () => {
  const clock = manualClock();
  let retries = 0;
  const schedule = createRetrySchedule({ initialMs: 100, maxMs: 500 }, () => retries++, { schedule: clock.schedule, random: () => 0 });
  schedule.failed();
  schedule.cancel();
  clock.fire();
  assert.equal(retries, 0);
  assert.notEqual(schedule.failed(), null);
});
