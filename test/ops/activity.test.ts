// The status page's device list: bounded, least recently seen evicted first (to within a second), newest first.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createDeviceLru } from '../../src/ops/activity.ts';

test('devices are listed newest first with their counts, and counted since a time', () => {
  const lru = createDeviceLru(10);
  lru.seen('a', 'mqtt', 1_000);
  lru.seen('b', 'semtech-udp', 2_000);
  lru.seen('a', 'mqtt', 2_500); // within a second of its last move: updated in place
  lru.seen('c', 'ttn', 2_400);
  assert.deepEqual(
    lru.recent(10).map(({ id, source, lastSeenMs, count }) => [id, source, lastSeenMs, count]),
    [
      ['a', 'mqtt', 2_500, 2],
      ['c', 'ttn', 2_400, 1],
      ['b', 'semtech-udp', 2_000, 1],
    ],
  );
  assert.deepEqual(
    lru.recent(2).map((device) => device.id),
    ['a', 'c'],
  );
  assert.equal(lru.countSince(2_400), 2);
  assert.equal(lru.countSince(0), 3);
  assert.equal(lru.size, 3);
});

test('past its capacity the least recently seen device goes first', () => {
  const lru = createDeviceLru(3);
  lru.seen('a', 'mqtt', 0);
  lru.seen('b', 'mqtt', 1_000);
  lru.seen('c', 'mqtt', 2_000);
  lru.seen('a', 'mqtt', 3_000); // a second later: a moves to the recent end
  lru.seen('d', 'mqtt', 4_000);
  assert.deepEqual(
    lru
      .recent(10)
      .map((device) => device.id)
      .sort(),
    ['a', 'c', 'd'],
    'b, least recently seen, was evicted',
  );
  lru.seen('e', 'mqtt', 5_000);
  assert.deepEqual(
    lru
      .recent(10)
      .map((device) => device.id)
      .sort(),
    ['a', 'd', 'e'],
    'then c',
  );
  assert.equal(lru.size, 3);
});

test('a device seen again within a second keeps its place in the eviction order, not its figures', () => {
  const lru = createDeviceLru(2);
  lru.seen('a', 'mqtt', 10_000);
  lru.seen('b', 'mqtt', 10_100);
  lru.seen('a', 'mqtt', 10_500);
  lru.seen('c', 'mqtt', 10_600);
  assert.deepEqual(
    lru
      .recent(10)
      .map((device) => device.id)
      .sort(),
    ['b', 'c'],
    'a was evicted: its move was under a second old',
  );
  // A clock stepped back (NTP at boot) moves the device at once.
  lru.seen('b', 'mqtt', 5_000);
  lru.seen('d', 'mqtt', 5_001);
  assert.deepEqual(
    lru
      .recent(10)
      .map((device) => device.id)
      .sort(),
    ['b', 'd'],
  );
});
