// Routes: which topic a stream goes to, and when a device's own timestamp is trusted as event time.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRouter, EVENT_TIME_MAX_FUTURE_MS, EVENT_TIME_MAX_PAST_MS, eventTimeOf, type Router } from '../../src/record/routes.ts';

const receivedAtMs = Date.parse('2026-11-23T12:00:00.000Z');
const json = (value: unknown) => Buffer.from(JSON.stringify(value));

/** The event time an MQTT reading of `stream` is stored with: the field its route names, read as the store reads it. */
function storedEventTime(router: Router, stream: string, payload: Buffer, at: number): number {
  return eventTimeOf({ key: 'm', stream, source: 'mqtt', receivedAtMs: at, eventTimeMs: at, payload, meta: {}, eventTimeField: router.eventTimeField(stream) });
}

test('the first matching route names the topic; other streams go to the default topic', () => {
  const router = createRouter('records', [
    { stream: 'alarms', topic: 'city.alarms' },
    { stream: '*', topic: 'city.all' },
  ]);
  assert.equal(router.topicFor('alarms'), 'city.alarms');
  assert.equal(router.topicFor('telemetry'), 'city.all');
  assert.equal(createRouter('records', []).topicFor('telemetry'), 'records');
});

test('event time comes from the named field as ISO-8601, epoch seconds, epoch ms or a dotted path', () => {
  const router = createRouter('records', [
    { stream: 'telemetry', eventTimeField: 'ts' },
    { stream: 'nested', eventTimeField: 'meta.at' },
  ]);
  const taken = Date.parse('2026-11-23T11:59:30.250Z');
  assert.equal(storedEventTime(router, 'telemetry', json({ ts: '2026-11-23T11:59:30.250Z' }), receivedAtMs), taken);
  assert.equal(storedEventTime(router, 'telemetry', json({ ts: taken }), receivedAtMs), taken);
  assert.equal(storedEventTime(router, 'telemetry', json({ ts: Math.floor(taken / 1000) }), receivedAtMs), Math.floor(taken / 1000) * 1000);
  assert.equal(storedEventTime(router, 'nested', json({ meta: { at: taken } }), receivedAtMs), taken);
});

test('an implausible, missing or unreadable timestamp falls back to the receive time', () => {
  const router = createRouter('records', [{ stream: 'telemetry', eventTimeField: 'ts' }]);
  const cases = [
    json({ ts: receivedAtMs - EVENT_TIME_MAX_PAST_MS - 1 }), // a device clock reset to long ago
    json({ ts: receivedAtMs + EVENT_TIME_MAX_FUTURE_MS + 1 }), // too far ahead
    json({ ts: 'yesterday-ish' }),
    json({ other: 1 }),
    json({ ts: { nested: true } }),
    Buffer.from('not json {'),
    Buffer.from([0xff, 0xfe, 0x00]),
  ];
  for (const payload of cases) assert.equal(storedEventTime(router, 'telemetry', payload, receivedAtMs), receivedAtMs, payload.toString());
  assert.equal(storedEventTime(router, 'unrouted', json({ ts: receivedAtMs - 5000 }), receivedAtMs), receivedAtMs, 'no route, no event-time field');
});

test('eventTimeOf: a record naming a field gets its payload time, else its own eventTimeMs; the router names the field per stream', () => {
  const router = createRouter('t', [{ stream: 'telemetry', eventTimeField: 'ts' }]);
  assert.equal(router.eventTimeField('telemetry'), 'ts');
  assert.equal(router.eventTimeField('status'), undefined);
  const receivedAtMs = Date.parse('2026-12-06T12:00:00Z');
  const base = { key: 'm', stream: 'telemetry', source: 'mqtt', receivedAtMs, eventTimeMs: receivedAtMs, meta: {} } as const;
  const payload = Buffer.from('{"ts":"2026-12-06T11:59:00Z"}');
  assert.equal(eventTimeOf({ ...base, payload, eventTimeField: 'ts' }), receivedAtMs - 60_000);
  assert.equal(eventTimeOf({ ...base, payload }), receivedAtMs, 'no field named: eventTimeMs as given');
  assert.equal(eventTimeOf({ ...base, payload: Buffer.from('{"ts":"2020-01-01T00:00:00Z"}'), eventTimeField: 'ts' }), receivedAtMs, 'implausible: eventTimeMs');
});
