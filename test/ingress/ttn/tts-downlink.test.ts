// The TTS downlink codec: the push body byte for byte, the down events as TTS sends them (shaped after the
// data-formats docs and TTS api/messages.proto) parsed into kind, device, correlation ids, f_cnt and error text,
// malformed events refused with a reason (never thrown), and the frame-gap tracker keeping each device's TTS
// device id (and its application) in the persisted state.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { COMMAND_CORRELATION_PREFIX, commandCorrelationId } from '../../../src/commands/ttn-command-path.ts';
import { createFrameGapTracker } from '../../../src/ingress/ttn/frame-gap-tracker.ts';
import {
  downlinkTopic,
  encodeDownlinks,
  isTtsId,
  parseTtsDownlinkEvent,
  parseTtsDownlinks,
  renderTtsError,
  TTS_DOWNLINK_EVENTS,
  type TtsDownlinkEventName,
} from '../../../src/ingress/ttn/tts-downlink.ts';

const MAX = 256 * 1024;
const IDS = {
  device_id: 'valve-7',
  application_ids: { application_id: 'city-water' },
  dev_eui: '70B3D57ED0051234',
  join_eui: '0000000000000000',
  dev_addr: '260B1234',
};
const OURS = 'iotgw:command:c-42';

function downlink(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { f_port: 10, frm_payload: 'AQI=', confirmed: true, priority: 'NORMAL', correlation_ids: [OURS, 'as:downlink:01HZX3M2Q8F9'], ...extra };
}

function event(name: TtsDownlinkEventName, body: unknown, extra: Record<string, unknown> = {}): Buffer {
  const field = `downlink_${name.slice('down/'.length)}`;
  return Buffer.from(
    JSON.stringify({
      end_device_ids: IDS,
      correlation_ids: ['as:downlink:01HZX3M2Q8F9', 'as:up:01HZX3M2Q8FA'],
      received_at: '2025-03-01T12:00:00.123456789Z',
      [field]: body,
      ...extra,
    }),
  );
}

test('the push body and topic are what TTS reads (ApplicationDownlinks), and read back the same', () => {
  const body = encodeDownlinks([{ fPort: 10, frmPayload: Buffer.from([1, 2]), confirmed: true, correlationIds: [OURS] }]);
  assert.equal(body, '{"downlinks":[{"f_port":10,"frm_payload":"AQI=","priority":"NORMAL","confirmed":true,"correlation_ids":["iotgw:command:c-42"]}]}');
  assert.equal(downlinkTopic('city-water@ttn', 'valve-7', 'push'), 'v3/city-water@ttn/devices/valve-7/down/push');
  assert.equal(downlinkTopic('city-water@ttn', 'valve-7', 'replace'), 'v3/city-water@ttn/devices/valve-7/down/replace');
  const back = parseTtsDownlinks(Buffer.from(body), MAX);
  assert.ok(back.ok);
  assert.deepEqual(back.value, [{ fPort: 10, frmPayload: Buffer.from([1, 2]), confirmed: true, correlationIds: [OURS] }]);
  const cleared = parseTtsDownlinks(Buffer.from(encodeDownlinks([])), MAX);
  assert.deepEqual(cleared, { ok: true, value: [] }, 'replace with an empty list clears the queue');
});

test('a push TTS would refuse is read as a refusal that names the field', () => {
  const refusal = (value: unknown): string => {
    const result = parseTtsDownlinks(Buffer.from(JSON.stringify(value)), MAX);
    assert.equal(result.ok, false);
    return result.ok ? '' : result.message;
  };
  assert.match(refusal({ downlinks: [{ frm_payload: 'AQ==' }] }), /downlinks\[0\]\.f_port must be an integer 1\.\.223/);
  assert.match(refusal({ downlinks: [{ f_port: 224, frm_payload: 'AQ==' }] }), /f_port/);
  assert.match(refusal({ downlinks: [{ f_port: 1, frm_payload: 'not base64!' }] }), /frm_payload must be base64/);
  assert.match(refusal({ downlinks: [{ f_port: 1, priority: 'URGENT' }] }), /priority must be one of/);
  assert.match(refusal({ downlinks: [{ f_port: 1, correlation_ids: ['x'.repeat(101)] }] }), /at most 100 characters/);
  assert.match(refusal({ downlink: [] }), /downlinks must be a list/);
});

test('each down event parses into its kind, the device, every correlation id (ours among them) and f_cnt', () => {
  const kinds = TTS_DOWNLINK_EVENTS.filter((name) => name !== 'down/failed');
  for (const name of kinds) {
    const parsed = parseTtsDownlinkEvent(
      name,
      event(name, downlink(name === 'down/queued' ? {} : { f_cnt: 7, session_key_id: 'AXBSH1Pk6Z0G166RlH16CQ==' })),
      MAX,
    );
    assert.ok(parsed.ok, `${name}: ${JSON.stringify(parsed)}`);
    assert.deepEqual(parsed.value, {
      kind: name.slice('down/'.length),
      deviceId: 'valve-7',
      devEui: '70b3d57ed0051234',
      correlationIds: [OURS, 'as:downlink:01HZX3M2Q8F9', 'as:downlink:01HZX3M2Q8F9', 'as:up:01HZX3M2Q8FA'],
      fCnt: name === 'down/queued' ? null : 7,
      error: null,
    });
  }
  // TTS leaves out what is at its default: an unconfirmed downlink of f_cnt 0 without ids still parses.
  const bare = parseTtsDownlinkEvent('down/sent', Buffer.from(JSON.stringify({ end_device_ids: { device_id: 'valve-7' }, downlink_sent: {} })), MAX);
  assert.deepEqual(bare, { ok: true, value: { kind: 'sent', deviceId: 'valve-7', devEui: null, correlationIds: [], fCnt: null, error: null } });
});

test('down/failed carries the downlink under `downlink` and TTS error details, rendered for a person', () => {
  const failed = parseTtsDownlinkEvent(
    'down/failed',
    event('down/failed', {
      downlink: downlink(),
      error: {
        namespace: 'pkg/networkserver',
        name: 'no_downlink_path',
        message_format: 'no downlink path available for device `{device_uid}`',
        attributes: { device_uid: 'city-water.valve-7' },
        correlation_id: '2b0b9c0a7e6b4d7a9d7b1c3c4e5f6a7b',
        code: 9,
      },
    }),
    MAX,
  );
  assert.ok(failed.ok, JSON.stringify(failed));
  assert.equal(failed.value.kind, 'failed');
  assert.ok(failed.value.correlationIds.includes(OURS));
  assert.equal(failed.value.error, 'pkg/networkserver:no_downlink_path: no downlink path available for device `city-water.valve-7` (code 9)');
  // Without error details it still names what happened.
  const bare = parseTtsDownlinkEvent('down/failed', event('down/failed', { downlink: downlink() }), MAX);
  assert.ok(bare.ok);
  assert.equal(bare.value.error, 'TTS gave no error');
});

test('error text: placeholders filled from plain attributes only, unknown ones left, control characters escaped, bounded', () => {
  assert.equal(
    renderTtsError({
      namespace: 'pkg/ns',
      name: 'too_long',
      message_format: 'payload of {length} bytes, at most {max} at {dr}',
      attributes: { length: 60, max: 51 },
    }),
    'pkg/ns:too_long: payload of 60 bytes, at most 51 at {dr}',
  );
  assert.equal(renderTtsError({ message_format: 'bad {x}', attributes: { x: { nested: true } } }), 'bad {x}');
  assert.equal(renderTtsError({ name: 'n', message_format: 'line\nbreak\u001b[31m' }), 'n: line\\u000abreak\\u001b[31m');
  assert.equal(renderTtsError({}), 'TTS gave an error without a message');
  assert.ok(renderTtsError({ namespace: 'n'.repeat(10_000), name: 'x', message_format: 'y'.repeat(10_000) }).length < 500);
});

test('malformed down events are refused with a reason that names the field, never thrown', () => {
  const reason = (name: TtsDownlinkEventName, bytes: Buffer, max = MAX): string => {
    const parsed = parseTtsDownlinkEvent(name, bytes, max);
    assert.equal(parsed.ok, false, bytes.toString('utf8').slice(0, 80));
    return parsed.ok ? '' : parsed.reason;
  };
  assert.equal(reason('down/sent', Buffer.from('{"end_device_ids":')), 'malformed-json');
  assert.equal(reason('down/sent', Buffer.from('[1,2]')), 'malformed-json');
  assert.equal(reason('down/sent', event('down/sent', downlink()), 100), 'too-large');
  assert.equal(reason('down/sent', Buffer.from(`{"end_device_ids":{"device_id":"d"},"downlink_sent":${'['.repeat(100)}${']'.repeat(100)}}`)), 'too-deep');
  assert.equal(reason('down/sent', Buffer.from(JSON.stringify({ downlink_sent: downlink() }))), 'missing-device-id');
  assert.equal(reason('down/ack', event('down/sent', downlink())), 'not-a-downlink-event', 'an event of another kind on this topic');
  assert.equal(reason('down/ack', event('down/ack', 'acked')), 'not-a-downlink-event');
  assert.equal(reason('down/failed', event('down/failed', { error: {} })), 'bad-field', 'down/failed without its downlink');
  assert.equal(reason('down/failed', event('down/failed', { downlink: downlink(), error: 'boom' })), 'bad-field');
  assert.equal(reason('down/sent', event('down/sent', downlink({ correlation_ids: OURS }))), 'bad-field');
  assert.equal(reason('down/sent', event('down/sent', downlink({ correlation_ids: [OURS, 7] }))), 'bad-field');
  assert.equal(reason('down/sent', event('down/sent', downlink({ correlation_ids: ['x'.repeat(201)] }))), 'bad-field');
  assert.equal(reason('down/sent', event('down/sent', downlink({ correlation_ids: Array.from({ length: 65 }, (_, index) => `id-${index}`) }))), 'bad-field');
  assert.equal(reason('down/sent', event('down/sent', downlink(), { correlation_ids: 'as:up:1' })), 'bad-field');
  assert.equal(reason('down/sent', event('down/sent', downlink({ f_cnt: -1 }))), 'bad-field');
  assert.equal(reason('down/sent', Buffer.from(JSON.stringify({ end_device_ids: { ...IDS, dev_eui: 'xyz' }, downlink_sent: downlink() }))), 'bad-field');
  // Cut anywhere, a valid event never makes the parser throw.
  const whole = event('down/failed', { downlink: downlink(), error: { name: 'x', message_format: 'y' } });
  for (let end = 0; end < whole.length; end += 1) {
    for (const name of TTS_DOWNLINK_EVENTS) assert.doesNotThrow(() => parseTtsDownlinkEvent(name, whole.subarray(0, end), MAX));
  }
});

test('correlation ids: iotgw:command:{id}, or a hash for an id too long for TTS (at most 100 characters)', () => {
  assert.equal(commandCorrelationId('c-42'), 'iotgw:command:c-42');
  const long = 'x'.repeat(128);
  const hashed = commandCorrelationId(long);
  assert.ok(hashed.startsWith(`${COMMAND_CORRELATION_PREFIX}sha256:`));
  assert.ok(hashed.length <= 100);
  assert.equal(commandCorrelationId(long), hashed, 'the same command gets the same id (also after a restart)');
  assert.notEqual(commandCorrelationId(`${long}y`), hashed);
  assert.equal(commandCorrelationId('y'.repeat(86)).length, 100, 'the longest id that still goes as it is');
});

test('TTS ids: what may become a topic level', () => {
  for (const id of ['valve-7', 'eui-70b3d57ed0051234', 'abc']) assert.ok(isTtsId(id), id);
  for (const id of ['ab', 'Valve', 'a/b', 'a+b', 'a#', '-ab', 'ab-', 'a--b', 'a'.repeat(37), '']) assert.ok(!isTtsId(id), id);
});

test('the gap tracker keeps the device id with the counters, in the state row, and reads back only its application', () => {
  const eui = '70b3d57ed0051234';
  const tracker = createFrameGapTracker(new Map(), 100, 'city-water@ttn');
  tracker.observe(eui, 'S1', 1, 'a', 'valve-7');
  assert.equal(tracker.deviceIdOf(eui), 'valve-7');
  tracker.observe(eui, 'S1', 2, 'b');
  assert.equal(tracker.deviceIdOf(eui), 'valve-7', 'an uplink without an id keeps the one known');
  const row = tracker.stateValue(eui) ?? assert.fail('tracked');
  assert.deepEqual(JSON.parse(row), { session_key_id: 'S1', last_f_cnt: 2, last_uplink_id: 'b', device_id: 'valve-7', application: 'city-water@ttn' });

  const persisted = new Map([
    [eui, row],
    ['70b3d57ed0050002', JSON.stringify({ session_key_id: null, last_f_cnt: 4, last_uplink_id: 'x', device_id: 'other', application: 'city-air@ttn' })],
    ['70b3d57ed0050003', JSON.stringify({ session_key_id: null, last_f_cnt: 9, last_uplink_id: 'y' })],
  ]);
  const restarted = createFrameGapTracker(persisted, 100, 'city-water@ttn');
  assert.equal(restarted.deviceIdOf(eui), 'valve-7', 'known again after a restart');
  assert.equal(restarted.deviceIdOf('70b3d57ed0050002'), undefined, "another application's device is not this link's");
  assert.equal(restarted.size, 2, "older rows (no application) are read by every link, another application's are not");
  assert.deepEqual(restarted.observe(eui, 'S1', 3, 'c'), { kind: 'next', gap: 0 });
});
