// The broker's bus that skips topic matching while nobody outside $SYS subscribes (relay-emitter.ts): the
// same deliveries as a plain mqemitter under any sequence of subscribes and unsubscribes, and in a real aedes
// with real clients a subscriber gets every publish while it subscribes, however often it comes and goes.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { Aedes } from 'aedes';
import mqemitter from 'mqemitter';
import mqtt from 'mqtt';
import { AEDES_MQ_CONCURRENCY, createRelayEmitter } from '../../src/ingress/mqtt-broker/relay-emitter.ts';
import { listenAedes } from '../helpers/aedes-listener.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { createRandom } from '../../firmware-sim/fleet.ts';

const settle = () => new Promise((resolve) => setImmediate(resolve));

test('the bus delivers exactly what a plain mqemitter delivers, through random subscribes and removals', async () => {
  const next = createRandom(5);
  const patterns = ['devices/#', 'devices/+/telemetry', 'devices/m-1/commands/#', '$SYS/+/heartbeat', '#', 'other/x'];
  const topics = ['devices/m-1/telemetry', 'devices/m-1/commands/dim', 'other/x', '$SYS/b/heartbeat', 'devices/m-2/telemetry'];
  const relay = createRelayEmitter();
  const plain = mqemitter({ concurrency: AEDES_MQ_CONCURRENCY, matchEmptyLevels: true });
  const got = { relay: [] as string[], plain: [] as string[] };
  // Two listeners per bus, so a removal of one that was never added is tried too.
  const listenersOf = (into: string[]) =>
    [0, 1].map((index) => (message: mqemitter.Message, done: () => void) => {
      into.push(`${index} ${message.topic}`);
      done();
    });
  const relayListeners = listenersOf(got.relay);
  const plainListeners = listenersOf(got.plain);
  for (let step = 0; step < 600; step++) {
    const pattern = patterns[Math.floor(next() * patterns.length)] as string;
    const which = Math.floor(next() * 2);
    if (next() < 0.5) {
      relay.on(pattern, relayListeners[which] as never);
      plain.on(pattern, plainListeners[which] as never);
    } else {
      relay.removeListener(pattern, relayListeners[which] as never);
      plain.removeListener(pattern, plainListeners[which] as never);
    }
    await settle();
    const topic = topics[Math.floor(next() * topics.length)] as string;
    got.relay.length = 0;
    got.plain.length = 0;
    let answered = { relay: false, plain: false };
    relay.emit({ topic }, () => {
      answered.relay = true;
    });
    plain.emit({ topic }, () => {
      answered.plain = true;
    });
    await settle();
    assert.deepEqual(got.relay.sort(), got.plain.sort(), `step ${step}: ${topic}`);
    assert.deepEqual(answered, { relay: true, plain: true });
    answered = { relay: false, plain: false };
  }
});

test("aedes' own $SYS listeners do not count; the concurrency is aedes' default", async () => {
  const relay = createRelayEmitter();
  const broker = await Aedes.createBroker({ mq: relay });
  const plain = await Aedes.createBroker();
  try {
    assert.equal(relay.relaying(), false);
    assert.equal((plain as unknown as { mq: { concurrency: number } }).mq.concurrency, AEDES_MQ_CONCURRENCY);
  } finally {
    await new Promise((resolve) => broker.close(() => resolve(undefined)));
    await new Promise((resolve) => plain.close(() => resolve(undefined)));
  }
});

test('in a real aedes, a subscriber that comes and goes receives every publish while it subscribes', async (t) => {
  const relay = createRelayEmitter();
  const broker = await Aedes.createBroker({ mq: relay });
  const server = await listenAedes(broker, new Set(), 0);
  const url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const device = await mqtt.connectAsync(url, { protocolVersion: 4, clientId: 'm-1', reconnectPeriod: 0 });
  t.after(async () => {
    await device.endAsync(true);
    await new Promise((resolve) => broker.close(() => resolve(undefined)));
    await new Promise((resolve) => server.close(() => resolve(undefined)));
  });
  const received: string[] = [];
  const publish = (n: number) => device.publishAsync('devices/m-1/telemetry', String(n), { qos: 1 });

  await publish(1); // nobody listens: answered at once, PUBACK as ever
  assert.equal(relay.relaying(), false);
  for (let round = 0; round < 3; round++) {
    const dashboard = await mqtt.connectAsync(url, { protocolVersion: 4, clientId: `dash-${round}`, reconnectPeriod: 0 });
    dashboard.on('message', (_topic, payload) => received.push(`${round}:${payload.toString()}`));
    await dashboard.subscribeAsync(round === 1 ? 'devices/+/telemetry' : 'devices/#', { qos: 1 });
    assert.equal(relay.relaying(), true);
    await publish(10 * round + 2);
    await publish(10 * round + 3);
    await waitFor(() => received.length === 2 * (round + 1), `round ${round}: both publishes relayed`);
    if (round === 0) await dashboard.unsubscribeAsync('devices/#');
    await dashboard.endAsync();
    await waitFor(() => !relay.relaying(), `round ${round}: the subscription gone from the bus`);
    await publish(10 * round + 4); // nobody again
  }
  assert.deepEqual(received, ['0:2', '0:3', '1:12', '1:13', '2:22', '2:23']);
});
