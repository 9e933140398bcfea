import assert from 'node:assert/strict';
import { test } from 'node:test';
import { classifyFrameCounter, fullFrameCounter, MAX_FCNT_GAP } from '../../../src/ingress/lorawan/frame-counter.ts';

const LAST_FCNT32 = 0xffff_ffff;

test('the first uplink of a session is new whatever its counter', () => {
  for (const full of [0, 1, 12_345, 65_536, LAST_FCNT32]) assert.deepEqual(classifyFrameCounter(null, full), { verdict: 'new', gap: 0 });
});

test('the expected counter is new with no gap; later ones report the frames skipped', () => {
  assert.deepEqual(classifyFrameCounter(5, 5), { verdict: 'new', gap: 0 });
  assert.deepEqual(classifyFrameCounter(5, 6), { verdict: 'new', gap: 1 });
  assert.deepEqual(classifyFrameCounter(0, 0), { verdict: 'new', gap: 0 });
  assert.deepEqual(classifyFrameCounter(65_530, 65_540), { verdict: 'new', gap: 10 });
});

test('the previous counter again is a retransmission', () => {
  assert.deepEqual(classifyFrameCounter(5, 4), { verdict: 'retransmission' });
  assert.deepEqual(classifyFrameCounter(65_536, 65_535), { verdict: 'retransmission' });
});

test('older counters are replays', () => {
  assert.deepEqual(classifyFrameCounter(5, 3), { verdict: 'replay' });
  assert.deepEqual(classifyFrameCounter(5, 0), { verdict: 'replay' });
  assert.deepEqual(classifyFrameCounter(100_000, 5), { verdict: 'replay' });
});

test('a jump of more than MAX_FCNT_GAP past the last accepted counter is a replay (reset device or attack)', () => {
  // Last accepted 4, so next 5: 4 + 16384 is the furthest accepted counter, 16383 frames skipped.
  assert.deepEqual(classifyFrameCounter(5, 4 + MAX_FCNT_GAP), { verdict: 'new', gap: MAX_FCNT_GAP - 1 });
  assert.deepEqual(classifyFrameCounter(5, 5 + MAX_FCNT_GAP), { verdict: 'replay' });
  assert.deepEqual(classifyFrameCounter(5, 65_535), { verdict: 'replay' });
});

test('next == 0 has no previous frame: 0xFFFFFFFF is not a retransmission there', () => {
  assert.deepEqual(classifyFrameCounter(0, LAST_FCNT32), { verdict: 'replay' });
});

test('counters compare modulo 2^32 across the 32-bit wrap', () => {
  assert.deepEqual(classifyFrameCounter(LAST_FCNT32, LAST_FCNT32), { verdict: 'new', gap: 0 });
  assert.deepEqual(classifyFrameCounter(LAST_FCNT32 - 15, 5), { verdict: 'new', gap: 21 });
  // After accepting 0xFFFFFFFF the caller stores next = 2^32, which reads as 0 with 0xFFFFFFFF just before it.
  assert.deepEqual(classifyFrameCounter(2 ** 32, 0), { verdict: 'new', gap: 0 });
  assert.deepEqual(classifyFrameCounter(2 ** 32, LAST_FCNT32), { verdict: 'retransmission' });
  assert.equal(fullFrameCounter(2 ** 32, 0), 0);
});

test('reconstruct then classify: what a gateway does with each uplink', () => {
  const verdictFor = (nextExpected: number, onAir16: number) => classifyFrameCounter(nextExpected, fullFrameCounter(nextExpected, onAir16));
  assert.deepEqual(verdictFor(10, 10), { verdict: 'new', gap: 0 });
  assert.deepEqual(verdictFor(10, 9), { verdict: 'retransmission' });
  assert.deepEqual(verdictFor(65_537, 0), { verdict: 'retransmission' });
  assert.deepEqual(verdictFor(65_530, 3), { verdict: 'new', gap: 9 }); // 16-bit rollover: full 65539
  // An old frame's 16 bits read as a counter almost 2^16 ahead, which the gap limit turns away.
  assert.equal(fullFrameCounter(10, 5), 65_541);
  assert.deepEqual(verdictFor(10, 5), { verdict: 'replay' });
  // The next == 0 underflow guard: 0xFFFF is the counter 65535, not "next - 1".
  assert.equal(fullFrameCounter(0, 0xffff), 0xffff);
  assert.deepEqual(verdictFor(0, 0xffff), { verdict: 'replay' });
});

test('out-of-range counters are programmer errors', () => {
  assert.throws(() => fullFrameCounter(0, 65_536), RangeError);
  assert.throws(() => fullFrameCounter(-1, 0), RangeError);
  assert.throws(() => fullFrameCounter(1.5, 0), RangeError);
  assert.throws(() => classifyFrameCounter(0, 2 ** 32), RangeError);
  assert.throws(() => classifyFrameCounter(2 ** 32 + 1, 0), RangeError);
});
