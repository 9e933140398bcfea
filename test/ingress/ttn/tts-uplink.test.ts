// The TTS v3 uplink parser and the f_cnt gap tracker: a good uplink from the simulator parses into what
// the gateway keys and orders by; each malformed class is refused with its reason and a message naming the
// field; the tracker reports gaps, drops exact copies only, stores a counter that went back (ABP reset),
// starts over on a new session, rolls back a device whose commit failed, and continues from the state it
// persisted.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createTtsFleet } from '../../../firmware-sim/tts-traffic.ts';
import { createFrameGapTracker, judgeFrame } from '../../../src/ingress/ttn/frame-gap-tracker.ts';
import { parseTtsEvent, parseTtsUplink } from '../../../src/ingress/ttn/tts-uplink.ts';

const MAX = 256 * 1024;

function sampleUplink(): Record<string, unknown> {
  const fleet = createTtsFleet('city-meters', { devices: 1, seed: 7, decodedShare: 1 });
  const device = fleet.devices[0];
  assert.ok(device !== undefined);
  device.fCnt = 42;
  return fleet.nextUplink(device, Date.parse('2025-03-01T12:00:00Z'));
}

const bytes = (value: unknown): Buffer => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));

function withUplink(message: Record<string, unknown>, change: (uplink: Record<string, unknown>) => void): Record<string, unknown> {
  const copy = structuredClone(message);
  change(copy.uplink_message as Record<string, unknown>);
  return copy;
}

test('a simulator uplink parses: DevEUI lower-case, counters, payload bytes, decoded payload, NS receive time', () => {
  const message = sampleUplink();
  const result = parseTtsUplink(bytes(message), MAX);
  assert.ok(result.ok, JSON.stringify(result));
  const uplink = result.value;
  const ids = message.end_device_ids as { device_id: string; dev_eui: string };
  const up = message.uplink_message as { session_key_id: string; f_port: number; frm_payload: string; decoded_payload: unknown; received_at: string };
  assert.equal(uplink.deviceId, ids.device_id);
  assert.equal(uplink.devEui, ids.dev_eui.toLowerCase());
  assert.match(uplink.devEui, /^[0-9a-f]{16}$/);
  assert.equal(uplink.applicationId, 'city-meters');
  assert.equal(uplink.sessionKeyId, up.session_key_id);
  assert.equal(uplink.fCnt, 42);
  assert.equal(uplink.fPort, up.f_port);
  assert.deepEqual(uplink.frmPayload, Buffer.from(up.frm_payload, 'base64'));
  assert.deepEqual(uplink.decodedPayload, up.decoded_payload);
  assert.equal(uplink.receivedAtMs, Date.parse(up.received_at));
  assert.deepEqual(uplink.message, message);
});

test('fields the TTS JSON mapping leaves out at their default (f_cnt 0, no frm_payload) read as 0 and empty', () => {
  const message = withUplink(sampleUplink(), (uplink) => {
    delete uplink.f_cnt;
    delete uplink.frm_payload;
    delete uplink.decoded_payload;
  });
  const result = parseTtsUplink(bytes(message), MAX);
  assert.ok(result.ok);
  assert.equal(result.value.fCnt, 0);
  assert.equal(result.value.frmPayload.length, 0);
  assert.equal(result.value.decodedPayload, undefined);
});

test('each malformed class is refused with its reason and a message naming the field', () => {
  const good = sampleUplink();
  const ids = good.end_device_ids as Record<string, unknown>;
  const cases: [string, Buffer, string, RegExp][] = [
    ['truncated JSON', bytes(JSON.stringify(good).slice(0, 50)), 'malformed-json', /not JSON/],
    ['a JSON array', bytes([1, 2]), 'malformed-json', /expected a JSON object/],
    ['too large', bytes(good), 'too-large', /exceeds ttn.max_message_bytes/],
    ['no end_device_ids', bytes({ ...good, end_device_ids: undefined }), 'missing-device-id', /end_device_ids is missing/],
    ['empty device_id', bytes({ ...good, end_device_ids: { ...ids, device_id: '' } }), 'missing-device-id', /device_id/],
    ['no dev_eui (ABP)', bytes({ ...good, end_device_ids: { ...ids, dev_eui: undefined } }), 'missing-dev-eui', /end_device_ids.dev_eui is missing/],
    ['dev_eui not hex', bytes({ ...good, end_device_ids: { ...ids, dev_eui: 'ZZ00000000000000' } }), 'bad-field', /dev_eui must be 16 hex digits/],
    ['a join event', bytes({ end_device_ids: ids, join_accept: {} }), 'not-an-uplink', /no uplink_message/],
    ['no application id', bytes({ ...good, end_device_ids: { ...ids, application_ids: {} } }), 'bad-field', /application_id/],
    ['f_cnt negative', bytes(withUplink(good, (u) => Object.assign(u, { f_cnt: -1 }))), 'bad-field', /uplink_message.f_cnt/],
    ['f_cnt a string', bytes(withUplink(good, (u) => Object.assign(u, { f_cnt: '7' }))), 'bad-field', /uplink_message.f_cnt/],
    ['f_port 256', bytes(withUplink(good, (u) => Object.assign(u, { f_port: 256 }))), 'bad-field', /uplink_message.f_port/],
    ['frm_payload not base64', bytes(withUplink(good, (u) => Object.assign(u, { frm_payload: 'not base64!' }))), 'bad-field', /frm_payload must be base64/],
    ['empty session_key_id', bytes(withUplink(good, (u) => Object.assign(u, { session_key_id: '' }))), 'bad-field', /session_key_id/],
    ['decoded_payload a number', bytes(withUplink(good, (u) => Object.assign(u, { decoded_payload: 3 }))), 'bad-field', /decoded_payload must be an object/],
  ];
  for (const [name, input, reason, message] of cases) {
    const result = parseTtsUplink(input, name === 'too large' ? 100 : MAX);
    assert.equal(result.ok, false, name);
    if (result.ok) continue;
    assert.equal(result.reason, reason, name);
    assert.match(result.message, message, name);
  }
});

test('events are keyed by DevEUI, or by device id when the message has none', () => {
  const ids = sampleUplink().end_device_ids as Record<string, unknown>;
  const join = parseTtsEvent(bytes({ end_device_ids: ids, join_accept: { session_key_id: 'AQI=' } }), MAX);
  assert.ok(join.ok);
  assert.equal(join.value.devEui, String(ids.dev_eui).toLowerCase());
  const abp = parseTtsEvent(bytes({ end_device_ids: { ...ids, dev_eui: undefined }, downlink_ack: {} }), MAX);
  assert.ok(abp.ok);
  assert.equal(abp.value.devEui, null);
  assert.equal(abp.value.deviceId, ids.device_id);
  const bad = parseTtsEvent(bytes({ downlink_ack: {} }), MAX);
  assert.equal(bad.ok, false);
});

test('gap tracker: next frame, gaps, exact copies, a new session key, and a counter that went back (ABP reset)', () => {
  const tracker = createFrameGapTracker();
  const eui = '70b3d57ed0050001';
  assert.deepEqual(tracker.observe(eui, 'S1', 10, 't10'), { kind: 'first', gap: 0 });
  assert.deepEqual(tracker.observe(eui, 'S1', 11, 't11'), { kind: 'next', gap: 0 });
  assert.deepEqual(tracker.observe(eui, 'S1', 15, 't15'), { kind: 'gap', gap: 3 });
  assert.deepEqual(tracker.observe(eui, 'S1', 15, 't15'), { kind: 'duplicate', lastFCnt: 15 }, 'the same message again');
  assert.deepEqual(tracker.observe(eui, 'S1', 16, 't16'), { kind: 'next', gap: 0 }, 'a duplicate does not move the counter');
  // TTS accepted it, so a counter that went back in the same session is a device that started over: stored, no gap.
  assert.deepEqual(tracker.observe(eui, 'S1', 3, 't3'), { kind: 'reset', gap: 0 }, 'ABP reset: last 16, now 3');
  assert.deepEqual(tracker.observe(eui, 'S1', 4, 't4'), { kind: 'next', gap: 0 }, 'counting goes on from the reset counter');
  assert.deepEqual(tracker.observe(eui, 'S1', 4, 't4-again'), { kind: 'reset', gap: 0 }, 'the same counter in another message is not a copy');
  assert.deepEqual(tracker.observe(eui, 'S2', 0, 'u0'), { kind: 'new-session', gap: 0 }, 'a join: new session_key_id');
  assert.deepEqual(tracker.observe(eui, 'S2', 2, 'u2'), { kind: 'gap', gap: 1 });
  // Without a session key id the same rules hold.
  assert.deepEqual(judgeFrame({ sessionKeyId: null, lastFCnt: 500, lastUplinkId: 'a' }, null, 1, 'b'), { kind: 'reset', gap: 0 });
  assert.deepEqual(judgeFrame({ sessionKeyId: null, lastFCnt: 10, lastUplinkId: 'a' }, null, 10, 'a'), { kind: 'duplicate', lastFCnt: 10 });
  // Other devices are independent.
  assert.deepEqual(tracker.observe('70b3d57ed0050002', 'S9', 7, 'v7'), { kind: 'first', gap: 0 });
});

test('uplink identity: received_at, else the correlation ids, else a hash of the bytes; copies match, other messages do not', () => {
  const message = sampleUplink();
  const parse = (value: unknown): string => {
    const result = parseTtsUplink(bytes(value), MAX);
    assert.ok(result.ok, JSON.stringify(result));
    return result.value.uplinkId;
  };
  assert.equal(parse(message), (message.uplink_message as { received_at: string }).received_at);
  const withoutTime = withUplink(message, (uplink) => {
    delete uplink.received_at;
  });
  assert.equal(parse(withoutTime), (message.correlation_ids as string[]).join(' '));
  const bare = { ...withoutTime, correlation_ids: undefined };
  assert.match(parse(bare), /^sha256:[0-9a-f]{32}$/);
  assert.equal(parse(bare), parse(structuredClone(bare)), 'an exact copy has the same identity');
  assert.notEqual(parse(bare), parse({ ...bare, received_at: '2025-03-01T12:00:09Z' }));
});

test('gap tracker: a failed commit rolls the device back, so the next uplink counts the lost one', () => {
  const eui = '70b3d57ed0050005';
  const tracker = createFrameGapTracker();
  tracker.observe(eui, 'S1', 1, 'a');
  tracker.committed(eui, tracker.latest(eui) ?? assert.fail('observed'));
  tracker.observe(eui, 'S1', 2, 'b');
  tracker.failed(eui, tracker.latest(eui) ?? assert.fail('observed'));
  assert.equal(tracker.stateValue(eui), JSON.stringify({ session_key_id: 'S1', last_f_cnt: 1, last_uplink_id: 'a' }), 'back to the committed one');
  assert.deepEqual(tracker.observe(eui, 'S1', 3, 'c'), { kind: 'gap', gap: 1 }, 'f_cnt 2 was lost');
  // A later uplink already observed: the failed one cannot move the device back under it.
  const pending = tracker.latest(eui) ?? assert.fail('observed');
  tracker.observe(eui, 'S1', 4, 'd');
  tracker.failed(eui, pending);
  assert.deepEqual(tracker.observe(eui, 'S1', 5, 'e'), { kind: 'next', gap: 0 });
  // A device whose only uplink was lost is unknown again.
  tracker.observe('70b3d57ed0050006', null, 9, 'x');
  tracker.failed('70b3d57ed0050006', tracker.latest('70b3d57ed0050006') ?? assert.fail('observed'));
  assert.equal(tracker.stateValue('70b3d57ed0050006'), null);
});

test('gap tracker: a restart continues from the persisted state', () => {
  const eui = '70b3d57ed0050003';
  const before = createFrameGapTracker();
  before.observe(eui, 'S1', 20, 'm20');
  const persisted = new Map([
    [eui, before.stateValue(eui) ?? ''],
    ['70b3d57ed0050004', 'not json'],
  ]);
  const after = createFrameGapTracker(persisted);
  assert.equal(after.size, 1, 'an unreadable entry is skipped');
  assert.deepEqual(after.observe(eui, 'S1', 20, 'm20'), { kind: 'duplicate', lastFCnt: 20 }, 'stored before the restart: not stored again');
  assert.deepEqual(after.observe(eui, 'S1', 23, 'm23'), { kind: 'gap', gap: 2 });
  assert.equal(after.stateValue(eui), JSON.stringify({ session_key_id: 'S1', last_f_cnt: 23, last_uplink_id: 'm23' }));
  assert.equal(after.stateValue('0000000000000000'), null);
  // State written before the identity was kept: a repeated counter is stored (as a reset), never dropped.
  const old = createFrameGapTracker(new Map([[eui, JSON.stringify({ session_key_id: 'S1', last_f_cnt: 30 })]]));
  assert.deepEqual(old.observe(eui, 'S1', 30, 'm30'), { kind: 'reset', gap: 0 });
});

test('a message nested deeper than 64 levels is refused before it is parsed (whatever walks it later cannot overflow the stack)', () => {
  const deep = '['.repeat(100_000) + ']'.repeat(100_000);
  const message = Buffer.from(
    `{"end_device_ids":{"device_id":"d","dev_eui":"0011223344556677","application_ids":{"application_id":"a"}},"uplink_message":{"f_cnt":1,"frm_payload":"AQ==","decoded_payload":{"x":${deep}}}}`,
  );
  const parsed = parseTtsUplink(message, 10_000_000);
  assert.equal(parsed.ok, false);
  assert.equal(!parsed.ok && parsed.reason, 'too-deep');
  // Brackets inside strings are text, not nesting.
  const quoted = Buffer.from(
    `{"end_device_ids":{"device_id":"d","dev_eui":"0011223344556677","application_ids":{"application_id":"a"}},"uplink_message":{"f_cnt":1,"frm_payload":"AQ==","decoded_payload":{"x":"${'['.repeat(1000)}"}}}`,
  );
  assert.equal(parseTtsUplink(quoted, 10_000_000).ok, true);
});

test('gap tracker: at most maxDevices are tracked; the least recently heard is forgotten and its state row can go', () => {
  const tracker = createFrameGapTracker(new Map(), 3);
  for (const devEui of ['a', 'b', 'c']) tracker.observe(devEui, null, 1, `${devEui}1`);
  tracker.observe('a', null, 2, 'a2'); // a is heard again: b is now the oldest
  tracker.observe('d', null, 1, 'd1');
  assert.equal(tracker.size, 3);
  assert.deepEqual(tracker.takeForgotten(), ['b']);
  assert.deepEqual(tracker.takeForgotten(), []);
  assert.equal(tracker.observe('b', null, 5, 'b5').kind, 'first', 'a forgotten device starts over');
  assert.equal(tracker.observe('a', null, 3, 'a3').kind, 'next');
});
