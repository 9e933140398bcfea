// Tests of firmware-sim's fleet models and MQTT transport against a real aedes broker on an
// ephemeral loopback port: the ledger of acknowledged readings must match what the broker delivered,
// refused devices must fail without retrying hot, and dropped connections must lead to re-sends of
// the same seq. Also runs the CLI as a child process. No assertion depends on speed.

import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { Aedes } from 'aedes';
import type { AedesOptions, AuthenticateError } from 'aedes';
import { connect } from 'mqtt';
import { ackedSeqs } from '../../firmware-sim/device-ledger.ts';
import type { DeviceLedger } from '../../firmware-sim/device-ledger.ts';
import { createFleet } from '../../firmware-sim/fleet.ts';
import type { Reading } from '../../firmware-sim/fleet.ts';
import { runMqttFleet } from '../../firmware-sim/mqtt-fleet.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { runSimCli } from '../helpers/sim-cli.ts';
import { listenAedes } from '../helpers/aedes-listener.ts';

interface TestBroker {
  readonly broker: Aedes;
  readonly port: number;
  readonly url: string;
  /** Device publishes the broker accepted, in arrival order. */
  readonly received: { deviceId: string; seq: number; topic: string }[];
  /** Drops every connection and stops listening; `reopen` listens on the same port again. */
  dropAll(): Promise<void>;
  reopen(): Promise<void>;
}

async function startBroker(t: TestContext, options: AedesOptions = {}): Promise<TestBroker> {
  const broker = await Aedes.createBroker(options);
  const sockets = new Set<net.Socket>();
  const received: TestBroker['received'] = [];
  broker.on('publish', (packet, client) => {
    if (client === null || !packet.topic.startsWith('devices/')) return;
    const reading = JSON.parse(packet.payload.toString()) as Reading;
    received.push({ deviceId: reading.device_id, seq: reading.seq, topic: packet.topic });
  });
  const listen = (port: number): Promise<net.Server> => listenAedes(broker, sockets, port);
  let server = await listen(0);
  const port = (server.address() as net.AddressInfo).port;
  const closeServer = async (): Promise<void> => {
    for (const socket of sockets) socket.destroy();
    if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  t.after(async () => {
    await closeServer();
    await new Promise<void>((resolve) => broker.close(() => resolve()));
  });
  return {
    broker,
    port,
    url: `mqtt://127.0.0.1:${port}`,
    received,
    dropAll: closeServer,
    reopen: async () => {
      server = await listen(port);
    },
  };
}

/** Everything a subscriber on devices/# receives, as "deviceId/seq" keys. */
async function subscribeAll(t: TestContext, url: string): Promise<Set<string>> {
  const seen = new Set<string>();
  const subscriber = connect(url, { clientId: 'test-subscriber', protocolVersion: 4, reconnectPeriod: 0 });
  t.after(() => subscriber.endAsync(true));
  subscriber.on('message', (topic, payload) => {
    const reading = JSON.parse(payload.toString()) as Reading;
    assert.equal(topic, `devices/${reading.device_id}/telemetry`);
    seen.add(`${reading.device_id}/${reading.seq}`);
  });
  await new Promise<void>((resolve, reject) => {
    subscriber.once('connect', () => resolve());
    subscriber.once('error', reject);
  });
  await subscriber.subscribeAsync('devices/#', { qos: 1 });
  return seen;
}

/** A port that was free a moment ago: nothing listens there. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}

/** Per device: acked seqs are exactly 1..published, in order, and counts add up. */
function assertCompleteLedger(entry: DeviceLedger): void {
  assert.deepEqual(ackedSeqs(entry), range(1, entry.published), `${entry.deviceId} acked seqs`);
  assert.equal(entry.acked, entry.published, `${entry.deviceId} acked`);
  assert.equal(entry.unacked, 0, `${entry.deviceId} unacked`);
}

test('fleet: the same seed gives the same devices and readings', () => {
  const times = range(0, 99).map((i) => Date.UTC(2025, 0, 1) + i * 60_000);
  const readAll = (seed: number): Reading[][] => createFleet({ devices: 40, seed }).map((device) => times.map((time) => device.nextReading(time)));

  assert.deepEqual(readAll(7), readAll(7));
  assert.notDeepEqual(readAll(7), readAll(8));

  // Device 5 does not depend on the fleet size.
  const small = createFleet({ devices: 5, seed: 3 })[4];
  const large = createFleet({ devices: 500, seed: 3 })[4];
  assert.deepEqual(small?.nextReading(times[0] ?? 0), large?.nextReading(times[0] ?? 0));
});

test('fleet: ids, kinds in smart-city proportions, prefix', () => {
  const ids = createFleet({ devices: 4, seed: 1 }).map((device) => device.id);
  assert.deepEqual(ids, ['em-000001', 'sl-000002', 'wm-000003', 'ps-000004']);
  assert.equal(createFleet({ devices: 1, seed: 1, prefix: 'site2-' })[0]?.id, 'site2-em-000001');

  const counts = new Map<string, number>();
  for (const device of createFleet({ devices: 2_000, seed: 1 })) {
    counts.set(device.kind, (counts.get(device.kind) ?? 0) + 1);
    assert.match(device.id, /^(em|sl|wm|ps)-\d{6}$/);
  }
  const count = (kind: string): number => counts.get(kind) ?? 0;
  assert.ok(count('electricity-meter') > count('street-lamp'));
  assert.ok(count('street-lamp') > count('water-meter'));
  assert.ok(count('water-meter') > count('parking-sensor'));
  assert.ok(count('parking-sensor') > 0);
});

test('fleet: seq counts from 1, registers never decrease, readings stay small', () => {
  const start = Date.UTC(2025, 5, 1);
  for (const device of createFleet({ devices: 8, seed: 42 })) {
    let previousRegister = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < 500; i++) {
      // Every 50th reading the clock steps back an hour: registers must still not decrease.
      const time = start + i * 90_000 - (i % 50 === 49 ? 3_600_000 : 0);
      const reading = device.nextReading(time);
      assert.equal(reading.seq, i + 1);
      assert.equal(reading.device_id, device.id);
      assert.equal(reading.kind, device.kind);
      assert.equal(reading.ts, new Date(time).toISOString());
      const size = JSON.stringify(reading).length;
      assert.ok(size >= 100 && size <= 300, `reading of ${size} bytes: ${JSON.stringify(reading)}`);
      const register = reading.kind === 'electricity-meter' ? reading.energy_kwh : reading.kind === 'water-meter' ? reading.volume_m3 : undefined;
      if (register !== undefined) {
        assert.ok(register >= previousRegister, `${device.id} register went from ${previousRegister} to ${register}`);
        previousRegister = register;
      }
    }
  }
});

test('mqtt: every acknowledged reading reached a subscriber and the ledger is exact', async (t) => {
  const { url, received } = await startBroker(t);
  const seen = await subscribeAll(t, url);

  const report = await runMqttFleet({ url, devices: 20, ratePerSecond: 0, durationMs: 0, messages: 1_000, qos: 1, seed: 5 });

  assert.equal(report.stoppedBy, 'messages');
  assert.equal(report.connected, 20);
  assert.equal(report.published, 1_000);
  assert.equal(report.acked, 1_000);
  assert.equal(report.unacked, 0);
  assert.equal(report.failed, 0);
  assert.equal(report.ledger.size, 20);
  assert.ok(report.ackLatencyMs.p50 > 0 && report.ackLatencyMs.p50 <= report.ackLatencyMs.max);

  let total = 0;
  for (const entry of report.ledger.values()) {
    assertCompleteLedger(entry);
    total += entry.acked;
  }
  assert.equal(total, 1_000);

  // The broker saw each reading once (no reconnects, so no re-sends), on the device's own topic.
  assert.equal(received.length, 1_000);
  for (const { deviceId, topic } of received) assert.equal(topic, `devices/${deviceId}/telemetry`);

  await waitFor(() => seen.size === 1_000, 'the subscriber to receive every reading');
  for (const entry of report.ledger.values()) {
    for (const seq of ackedSeqs(entry)) assert.ok(seen.has(`${entry.deviceId}/${seq}`), `${entry.deviceId}/${seq} not delivered`);
  }
});

test('mqtt: a device whose publishes are not authorized fails; the others succeed', async (t) => {
  const rejected = 'wm-000003';
  let rejections = 0;
  const { url } = await startBroker(t, {
    authorizePublish: (client, _packet, callback) => {
      if (client?.id === rejected) {
        rejections += 1;
        callback(new Error('not authorized'));
        return;
      }
      callback(null);
    },
  });
  const report = await runMqttFleet({
    url,
    devices: 5,
    ratePerSecond: 0,
    durationMs: 0,
    messages: 200,
    qos: 1,
    seed: 1,
    reconnectPeriodMs: 50,
  });

  assert.equal(report.failed, 1);
  const failedEntry = report.ledger.get(rejected);
  assert.ok(failedEntry?.failure !== undefined && /PUBACK/.test(failedEntry.failure), failedEntry?.failure);
  assert.deepEqual(ackedSeqs(failedEntry), []);
  assert.equal(failedEntry.acked, 0);
  assert.equal(failedEntry.unacked, 1, 'its one reading was never acknowledged');
  assert.equal(failedEntry.published, 1, 'it kept re-sending seq 1, never skipped ahead');
  // Not a hot loop: it gave up after a few closed connections (default 3).
  assert.equal(rejections, 3);

  for (const [deviceId, entry] of report.ledger) {
    if (deviceId === rejected) continue;
    assert.equal(entry.failure, undefined);
    assert.ok(entry.acked > 0);
    assertCompleteLedger(entry);
  }
  assert.equal(report.published, 200);
  assert.equal(report.acked, 199);
  assert.deepEqual(Object.values(report.failures), [1]);
});

test('mqtt: a device refused at CONNECT fails with the reason and is not retried', async (t) => {
  const refused = 'sl-000002';
  let attempts = 0;
  const { url } = await startBroker(t, {
    authenticate: (client, username, password, done) => {
      if (client.id === refused) attempts += 1;
      if (client.id !== refused && username === client.id && password?.toString() === 'secret') {
        done(null, true);
        return;
      }
      const error = Object.assign(new Error('bad credentials'), { returnCode: 4 }) as AuthenticateError;
      done(error, false);
    },
  });

  const report = await runMqttFleet({
    url,
    devices: 4,
    ratePerSecond: 0,
    durationMs: 0,
    messages: 100,
    qos: 1,
    seed: 1,
    password: 'secret',
    reconnectPeriodMs: 50,
  });

  assert.equal(report.connected, 3);
  assert.equal(report.failed, 1);
  assert.equal(report.ledger.get(refused)?.failure, 'Connection refused: Bad username or password');
  assert.equal(report.ledger.get(refused)?.published, 0);
  assert.equal(attempts, 1);
  assert.equal(report.acked, 100);
});

test('mqtt: after the broker drops every connection, devices reconnect and re-send the same seq', async (t) => {
  const testBroker = await startBroker(t);
  let outage: Promise<void> | undefined;
  testBroker.broker.on('publish', (_packet, client) => {
    if (client === null || outage !== undefined || testBroker.received.length < 300) return;
    outage = (async () => {
      await testBroker.dropAll();
      await new Promise((resolve) => setTimeout(resolve, 300));
      await testBroker.reopen();
    })();
  });

  const report = await runMqttFleet({
    url: testBroker.url,
    devices: 10,
    ratePerSecond: 0,
    durationMs: 0,
    messages: 1_500,
    qos: 1,
    seed: 9,
    reconnectPeriodMs: 100,
  });
  await outage;

  assert.ok(outage !== undefined, 'the outage happened');
  assert.equal(report.stoppedBy, 'messages');
  assert.equal(report.failed, 0);
  assert.ok(report.reconnects >= 10, `every device reconnected (${report.reconnects} reconnects)`);
  assert.ok(report.resent > 0, 'unacknowledged readings were re-sent');
  assert.equal(report.published, 1_500);
  assert.equal(report.acked, 1_500);
  for (const entry of report.ledger.values()) assertCompleteLedger(entry);

  // A re-send carries the seq it had: per device the broker saw 1..n, each at least once, never a
  // seq ahead of the device's ledger.
  const byDevice = new Map<string, number[]>();
  for (const { deviceId, seq } of testBroker.received) byDevice.set(deviceId, [...(byDevice.get(deviceId) ?? []), seq]);
  for (const [deviceId, seqs] of byDevice) {
    const published = report.ledger.get(deviceId)?.published ?? 0;
    assert.deepEqual(
      [...new Set(seqs)].sort((a, b) => a - b),
      range(1, published),
      `${deviceId} seqs at the broker`,
    );
  }
  assert.equal(testBroker.received.length >= 1_500, true);
});

test('mqtt: QoS 0 publishes without acks and re-sends nothing', async (t) => {
  const { url, received } = await startBroker(t);
  const report = await runMqttFleet({ url, devices: 5, ratePerSecond: 0, durationMs: 0, messages: 200, qos: 0, seed: 2 });
  assert.equal(report.published, 200);
  assert.equal(report.acked, 0);
  assert.equal(report.unacked, 200);
  assert.equal(report.resent, 0);
  assert.deepEqual(report.ackLatencyMs, { p50: 0, p99: 0, max: 0 });
  await waitFor(() => received.length === 200, 'the broker to receive every QoS 0 reading');
});

test('mqtt: abort stops the run at once and still reports a consistent ledger', async (t) => {
  const testBroker = await startBroker(t);
  const controller = new AbortController();
  testBroker.broker.on('publish', () => {
    if (testBroker.received.length >= 200) controller.abort();
  });
  const report = await runMqttFleet({
    url: testBroker.url,
    devices: 10,
    ratePerSecond: 0,
    durationMs: 0,
    qos: 1,
    seed: 3,
    signal: controller.signal,
  });
  assert.equal(report.stoppedBy, 'aborted');
  assert.ok(report.published >= 200);
  for (const entry of report.ledger.values()) {
    assert.equal(entry.acked + entry.unacked, entry.published);
    assert.deepEqual(ackedSeqs(entry), range(1, entry.acked));
  }
});

test('mqtt: with a rate, publishes are paced by the scheduler and the ledger is exact', async (t) => {
  const { url } = await startBroker(t);
  const report = await runMqttFleet({ url, devices: 10, ratePerSecond: 400, durationMs: 0, messages: 100, qos: 1, seed: 4 });
  assert.equal(report.acked, 100);
  // Round-robin over ready devices: every device got a share.
  for (const entry of report.ledger.values()) {
    assert.ok(entry.published > 0, `${entry.deviceId} published nothing`);
    assertCompleteLedger(entry);
  }
});

test('cli: mqtt --json prints one JSON summary', async (t) => {
  const { url } = await startBroker(t);
  const result = await runSimCli(['mqtt', '--url', url, '--devices', '5', '--messages', '50', '--rate', '0', '--json', '--quiet']);
  assert.equal(result.code, 0, result.stderr);
  const summary = JSON.parse(result.stdout) as Record<string, unknown>;
  assert.equal(summary.transport, 'mqtt');
  assert.equal(summary.connected, 5);
  assert.equal(summary.published, 50);
  assert.equal(summary.acked, 50);
  assert.equal(summary.failed, 0);
  assert.equal(summary.stoppedBy, 'messages');
  assert.equal(typeof (summary.ackLatencyMs as { p99?: unknown }).p99, 'number');
  assert.equal(result.stderr, '');
});

test('cli: --duration takes a bare number of seconds, as before units, and a unit alike', async (t) => {
  const { url } = await startBroker(t);
  // Two simulators on one broker need their own device ids: a second CONNECT with a client id takes over the first.
  const run = (prefix: string, duration: string) =>
    runSimCli(['mqtt', '--url', url, '--devices', '2', '--rate', '20', '--quiet', '--prefix', prefix, '--duration', duration]);
  const [seconds, units] = await Promise.all([run('a-', '1'), run('b-', '500ms')]);
  assert.equal(seconds.code, 0, seconds.stderr);
  assert.match(seconds.stdout, /stopped\s+--duration 1 s elapsed/);
  assert.equal(units.code, 0, units.stderr);
  assert.match(units.stdout, /stopped\s+--duration 0\.5 s elapsed/);
});

test('mqtt: with no broker, the run ends at the connect deadline and reports why', async () => {
  const port = await freePort();
  const report = await runMqttFleet({
    url: `mqtt://127.0.0.1:${port}`,
    devices: 3,
    ratePerSecond: 0,
    durationMs: 0,
    messages: 10,
    qos: 1,
    seed: 1,
    connectDeadlineMs: 5_000,
    reconnectPeriodMs: 100,
  });
  assert.equal(report.stoppedBy, 'no-connection');
  assert.equal(report.connected, 0);
  assert.equal(report.published, 0);
  assert.ok((report.connectionErrors.ECONNREFUSED ?? 0) >= 3, JSON.stringify(report.connectionErrors));
});

test('cli: exits 1 when no device can connect', async () => {
  const port = await freePort();
  const result = await runSimCli(['mqtt', '--url', `mqtt://127.0.0.1:${port}`, '--devices', '2', '--connect-deadline', '1', '--quiet']);
  assert.equal(result.code, 1);
  assert.match(result.stdout, /connected\s+0 of 2/);
  assert.match(result.stdout, /no device could connect/);
});

test('cli: --help answers, bad flags exit 2 naming the flag', async () => {
  const help = await runSimCli(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /mqtt/);
  assert.match(help.stdout, /ttn\s+a local stand-in for The Things Stack/);

  const mqttHelp = await runSimCli(['mqtt', '--help']);
  assert.equal(mqttHelp.code, 0);
  for (const flag of ['--url', '--devices', '--rate', '--duration', '--messages', '--qos', '--seed', '--password', '--inflight', '--json']) {
    assert.ok(mqttHelp.stdout.includes(flag), `help mentions ${flag}`);
  }

  for (const [args, flag] of [
    [['mqtt', '--bogus'], '--bogus'],
    [['mqtt', '--devices', 'many'], '--devices'],
    [['mqtt', '--qos', '2'], '--qos'],
    [['mqtt', '--rate'], '--rate'],
  ] as const) {
    const result = await runSimCli(args);
    assert.equal(result.code, 2, `${args.join(' ')} exit code`);
    assert.equal(result.stdout, '');
    assert.equal(result.stderr.trim().split('\n').length, 1, `one line: ${result.stderr}`);
    assert.ok(result.stderr.includes(flag), `${args.join(' ')}: ${result.stderr}`);
  }
});
