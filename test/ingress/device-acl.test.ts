import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canSubscribe, decidePublish, filterCovers, parseDeviceTopic, topicMatches } from '../../src/ingress/mqtt-broker/device-acl.ts';

const device = { kind: 'device', deviceId: 'em-1' } as const;
const dashboard = { kind: 'client', username: 'dash', publish: ['cmd/#'], subscribe: ['devices/#'] } as const;

test('parseDeviceTopic splits devices/{id}/{stream...} and rejects other shapes', () => {
  assert.deepEqual(parseDeviceTopic('devices/em-1/telemetry'), { deviceId: 'em-1', stream: 'telemetry' });
  assert.deepEqual(parseDeviceTopic('devices/em-1/telemetry/power'), { deviceId: 'em-1', stream: 'telemetry/power' });
  for (const topic of ['devices/em-1', 'devices/em-1/', 'devices//x', 'other/em-1/x', 'devices']) assert.equal(parseDeviceTopic(topic), null, topic);
});

test('a device publishes only under its own prefix', () => {
  assert.deepEqual(decidePublish(device, 'devices/em-1/telemetry'), { allowed: true, record: { deviceId: 'em-1', stream: 'telemetry' } });
  const other = decidePublish(device, 'devices/em-2/telemetry');
  assert.equal(other.allowed, false);
  assert.equal(!other.allowed && other.reason, 'not-authorized');
  assert.equal(decidePublish(device, 'elsewhere/x').allowed, false);
  assert.equal(decidePublish(device, '$SYS/x').allowed, false);
  const malformed = decidePublish(device, 'devices/em-1');
  assert.equal(!malformed.allowed && malformed.reason, 'bad-topic');
});

test('an account publishes where its filters allow, and only devices/ topics become records', () => {
  assert.deepEqual(decidePublish(dashboard, 'cmd/em-1/reboot'), { allowed: true, record: null });
  assert.equal(decidePublish(dashboard, 'devices/em-1/telemetry').allowed, false);
});

test('subscriptions cannot widen their grant', () => {
  assert.equal(canSubscribe(device, 'devices/em-1/#'), true);
  assert.equal(canSubscribe(device, 'devices/em-1/cmd'), true);
  assert.equal(canSubscribe(device, 'devices/#'), false);
  assert.equal(canSubscribe(device, 'devices/+/cmd'), false);
  assert.equal(canSubscribe(dashboard, 'devices/+/telemetry'), true);
  assert.equal(canSubscribe(dashboard, '#'), false);
  // An anonymous client is a device named by its client id: its own prefix only (no '#' to copy every device's data).
  assert.equal(canSubscribe({ kind: 'anonymous', deviceId: 'x' }, 'devices/x/#'), true);
  assert.equal(canSubscribe({ kind: 'anonymous', deviceId: 'x' }, '#'), false);
  assert.equal(canSubscribe({ kind: 'anonymous', deviceId: 'x' }, '$SYS/#'), false);
  assert.equal(
    canSubscribe({ kind: 'client', username: 'dash', publish: [], subscribe: ['#'] }, `devices/${'x'.repeat(300)}`),
    false,
    'a filter over 256 bytes',
  );
});

test('topics and streams are bounded: 256 bytes a topic, 64 characters a stream', () => {
  assert.equal(decidePublish(device, `devices/em-1/${'s'.repeat(64)}`).allowed, true);
  const longStream = decidePublish(device, `devices/em-1/${'s'.repeat(65)}`);
  assert.equal(!longStream.allowed && longStream.reason, 'bad-topic');
  const longTopic = decidePublish(dashboard, `cmd/${'x'.repeat(60_000)}`);
  assert.equal(!longTopic.allowed && longTopic.reason, 'bad-topic');
  assert.match(!longTopic.allowed ? longTopic.detail : '', /60004 bytes is longer than the 256/);
});

test('topicMatches and filterCovers follow MQTT wildcard rules', () => {
  assert.equal(topicMatches('a/+/c', 'a/b/c'), true);
  assert.equal(topicMatches('a/#', 'a'), true);
  assert.equal(topicMatches('a/+', 'a/b/c'), false);
  assert.equal(topicMatches('#', '$SYS/x'), false);
  assert.equal(filterCovers('a/#', 'a/+/c'), true);
  assert.equal(filterCovers('a/+/c', 'a/#'), false);
  assert.equal(filterCovers('a/+', 'a/b'), true);
  assert.equal(filterCovers('a/b', 'a/+'), false);
});
