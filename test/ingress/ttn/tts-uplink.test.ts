// The TTS v3 uplink parser and the f_cnt gap tracker: a good uplink from the simulator parses into what
// the gateway keys and orders by; each malformed class is refused with its reason and a message naming the
// field; the tracker reports gaps, drops duplicates, starts over on a new session, and continues from the
// state it persisted.
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

test('gap tracker: next frame, gaps, duplicates, a new session key, and a counter reset after a re-join', () => {
  const tracker = createFrameGapTracker();
  const eui = '70b3d57ed0050001';
  assert.deepEqual(tracker.observe(eui, 'S1', 10), { kind: 'first', gap: 0 });
  assert.deepEqual(tracker.observe(eui, 'S1', 11), { kind: 'next', gap: 0 });
  assert.deepEqual(tracker.observe(eui, 'S1', 15), { kind: 'gap', gap: 3 });
  assert.deepEqual(tracker.observe(eui, 'S1', 15), { kind: 'duplicate', lastFCnt: 15 });
  assert.deepEqual(tracker.observe(eui, 'S1', 12), { kind: 'duplicate', lastFCnt: 15 }, 'an older frame of the same session');
  assert.deepEqual(tracker.observe(eui, 'S1', 16), { kind: 'next', gap: 0 }, 'a duplicate does not move the counter');
  assert.deepEqual(tracker.observe(eui, 'S2', 0), { kind: 'new-session', gap: 0 }, 'a join: new session_key_id');
  assert.deepEqual(tracker.observe(eui, 'S2', 2), { kind: 'gap', gap: 1 });
  // Without a session key id: a counter back near 0 from far ahead is a device that started over.
  assert.deepEqual(judgeFrame({ sessionKeyId: null, lastFCnt: 500 }, null, 1), { kind: 'new-session', gap: 0 });
  assert.deepEqual(judgeFrame({ sessionKeyId: null, lastFCnt: 10 }, null, 3), { kind: 'duplicate', lastFCnt: 10 });
  // Other devices are independent.
  assert.deepEqual(tracker.observe('70b3d57ed0050002', 'S9', 7), { kind: 'first', gap: 0 });
});

test('gap tracker: a restart continues from the persisted state', () => {
  const eui = '70b3d57ed0050003';
  const before = createFrameGapTracker();
  before.observe(eui, 'S1', 20);
  const persisted = new Map([
    [eui, before.stateValue(eui) ?? ''],
    ['70b3d57ed0050004', 'not json'],
  ]);
  const after = createFrameGapTracker(persisted);
  assert.equal(after.size, 1, 'an unreadable entry is skipped');
  assert.deepEqual(after.observe(eui, 'S1', 20), { kind: 'duplicate', lastFCnt: 20 }, 'stored before the restart: not stored again');
  assert.deepEqual(after.observe(eui, 'S1', 23), { kind: 'gap', gap: 2 });
  assert.equal(after.stateValue(eui), JSON.stringify({ session_key_id: 'S1', last_f_cnt: 23 }));
  assert.equal(after.stateValue('0000000000000000'), null);
});
