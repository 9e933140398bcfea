// Tests of firmware-sim's commands: what each device model makes of a command (pure), how the models' later
// readings show it, the raw SUBSCRIBE, and the MQTT fleet against a real aedes broker on an ephemeral
// loopback port: devices subscribe to devices/{id}/commands/# at every connect, act, report their state on
// devices/{id}/state, and a fleet without `commands` sends no SUBSCRIBE at all. No assertion depends on speed.
import assert from 'node:assert/strict';
import type net from 'node:net';
import { type TestContext, test } from 'node:test';
import { Aedes } from 'aedes';
import { parseDeviceCommand, stateReport } from '../../firmware-sim/device-commands.ts';
import { createFleet, type SimDevice, type StreetLampReading, type WaterMeterReading } from '../../firmware-sim/fleet.ts';
import { type MqttCommandEvent, type MqttFleetOptions, runMqttFleet } from '../../firmware-sim/mqtt-fleet.ts';
import { encodeSubscribe } from '../../firmware-sim/transports/mqtt-subscribe-packet.ts';
import { mqttPacket, mqttString } from '../helpers/mqtt-wire.ts';
import { runSimCli } from '../helpers/sim-cli.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { listenAedes } from '../helpers/aedes-listener.ts';

const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));

test('device commands: each model takes its own commands and refuses the rest', () => {
  const cases: [Parameters<typeof parseDeviceCommand>, ReturnType<typeof parseDeviceCommand>][] = [
    [['street-lamp', 'dim', json({ level: 40 })], { action: 'actuate', actuation: { kind: 'lamp', on: true, dimPct: 40 } }],
    [['street-lamp', 'dim', json({ level: 0 })], { action: 'actuate', actuation: { kind: 'lamp', on: false, dimPct: 0 } }],
    [['street-lamp', 'dim', json({ level: 33.6 })], { action: 'actuate', actuation: { kind: 'lamp', on: true, dimPct: 34 } }],
    [['street-lamp', 'on', Buffer.from('on')], { action: 'actuate', actuation: { kind: 'lamp', on: true } }],
    [['street-lamp', 'off', Buffer.alloc(0)], { action: 'actuate', actuation: { kind: 'lamp', on: false } }],
    [['water-meter', 'valve', json({ open: false })], { action: 'actuate', actuation: { kind: 'valve', open: false } }],
    [['water-meter', 'close', Buffer.from([1, 0])], { action: 'actuate', actuation: { kind: 'valve', open: false } }],
    [['water-meter', 'open', json({})], { action: 'actuate', actuation: { kind: 'valve', open: true } }],
    [['electricity-meter', 'config', json({ interval_s: 900 })], { action: 'config', intervalS: 900 }],
    [['parking-sensor', 'config', json({ interval_s: 60 })], { action: 'config', intervalS: 60 }],
    [['electricity-meter', 'dim', json({ level: 40 })], { action: 'refuse', error: 'unknown command' }],
    [['water-meter', 'dim', json({ level: 40 })], { action: 'refuse', error: 'unknown command' }],
    [['street-lamp', 'valve', json({ open: true })], { action: 'refuse', error: 'unknown command' }],
    [['parking-sensor', 'reboot', json({})], { action: 'refuse', error: 'unknown command' }],
    [['street-lamp', 'dim', json({ level: 140 })], { action: 'refuse', error: 'bad payload: dim needs {"level": 0..100}' }],
    [['street-lamp', 'dim', Buffer.from('{"level": ')], { action: 'refuse', error: 'bad payload: dim needs {"level": 0..100}' }],
    [['street-lamp', 'dim', json([40])], { action: 'refuse', error: 'bad payload: dim needs {"level": 0..100}' }],
    [['water-meter', 'valve', json({ open: 'no' })], { action: 'refuse', error: 'bad payload: valve needs {"open": true|false}' }],
    [['electricity-meter', 'config', json({ interval_s: 0 })], { action: 'refuse', error: 'bad payload: config needs {"interval_s": 1..86400}' }],
    [['electricity-meter', 'config', json({ interval_s: 1.5 })], { action: 'refuse', error: 'bad payload: config needs {"interval_s": 1..86400}' }],
  ];
  for (const [args, expected] of cases) assert.deepEqual(parseDeviceCommand(...args), expected, `${args[0]} ${args[1]} ${args[2].toString()}`);
});

test('device commands: the state report names the device, the command, its id when known, and the new state', () => {
  const nowMs = Date.UTC(2025, 0, 1, 12);
  assert.deepEqual(
    JSON.parse(stateReport({ deviceId: 'sl-000002', kind: 'street-lamp', command: 'dim', commandId: undefined, result: { on: true, dim_pct: 40 }, nowMs })),
    { device_id: 'sl-000002', kind: 'street-lamp', command: 'dim', on: true, dim_pct: 40, ts: '2025-01-01T12:00:00.000Z' },
  );
  assert.deepEqual(
    JSON.parse(
      stateReport({ deviceId: 'em-000001', kind: 'electricity-meter', command: 'reboot', commandId: 'c-7', result: { error: 'unknown command' }, nowMs }),
    ),
    { device_id: 'em-000001', kind: 'electricity-meter', command: 'reboot', command_id: 'c-7', error: 'unknown command', ts: '2025-01-01T12:00:00.000Z' },
  );
});

test('fleet models: a commanded lamp reads as commanded, a closed valve stops the flow, meters have no actuator', () => {
  const [meter, lamp, valve, parking] = createFleet({ devices: 4, seed: 3 }) as [SimDevice, SimDevice, SimDevice, SimDevice];
  // Noon: on its own dusk-to-dawn schedule the lamp is off.
  const noon = Date.UTC(2025, 5, 1, 12);
  const lampAt = (minute: number) => lamp.nextReading(noon + minute * 60_000) as StreetLampReading;
  assert.equal(lampAt(0).on, false);
  assert.deepEqual(lamp.actuate({ kind: 'lamp', on: true, dimPct: 40 }), { on: true, dim_pct: 40 });
  const dimmed = lampAt(1);
  assert.deepEqual([dimmed.on, dimmed.dim_pct], [true, 40]);
  assert.ok(dimmed.power_w > 0);
  assert.deepEqual(lamp.actuate({ kind: 'lamp', on: false }), { on: false, dim_pct: 0 });
  const off = lampAt(2);
  assert.deepEqual([off.on, off.dim_pct, off.power_w], [false, 0, 0]);
  // On again comes back at the last level asked for; level 0 is off.
  assert.deepEqual(lamp.actuate({ kind: 'lamp', on: true }), { on: true, dim_pct: 40 });
  assert.deepEqual(lamp.actuate({ kind: 'lamp', on: true, dimPct: 0 }), { on: false, dim_pct: 0 });
  assert.equal(lamp.actuate({ kind: 'valve', open: false }), null);

  // The same water meter, commanded and not: closed, no flow and a register that stands still; reopened,
  // the flow is the seed's again.
  const twin = createFleet({ devices: 4, seed: 3 })[2] as SimDevice;
  const read = (device: SimDevice, minute: number) => device.nextReading(noon + minute * 60_000) as WaterMeterReading;
  read(valve, 0);
  read(twin, 0);
  assert.deepEqual(valve.actuate({ kind: 'valve', open: false }), { valve: 'closed' });
  const closed = Array.from({ length: 50 }, (_, minute) => read(valve, minute + 1));
  for (let minute = 1; minute <= 50; minute++) read(twin, minute);
  assert.ok(
    closed.every((reading) => reading.flow_lpm === 0 && !reading.leak),
    'no flow behind a closed valve',
  );
  assert.equal(new Set(closed.slice(1).map((reading) => reading.volume_m3)).size, 1, 'the register stands still');
  assert.deepEqual(valve.actuate({ kind: 'valve', open: true }), { valve: 'open' });
  for (let minute = 51; minute <= 60; minute++) assert.equal(read(valve, minute).flow_lpm, read(twin, minute).flow_lpm);

  assert.equal(meter.actuate({ kind: 'lamp', on: true }), null);
  assert.equal(parking.actuate({ kind: 'valve', open: true }), null);
});

test('encodeSubscribe: the SUBSCRIBE a hand-written packet has, short and long', () => {
  for (const filter of ['devices/sl-000002/commands/#', `devices/${'x'.repeat(128)}/commands/#`]) {
    const expected = mqttPacket(0x82, Buffer.from([0x12, 0x34]), mqttString(filter), Buffer.from([1]));
    assert.deepEqual(encodeSubscribe(filter, 1, 0x1234), expected, filter);
  }
  assert.throws(() => encodeSubscribe('', 1, 1), RangeError);
});

interface CommandBroker {
  readonly url: string;
  /** SUBSCRIBEs seen, in order. */
  readonly subscriptions: { clientId: string; topic: string; qos: number }[];
  /** Publishes from clients, in arrival order. */
  readonly published: { clientId: string; topic: string; payload: string }[];
  /** Publishes a command to a device at QoS 1, as the gateway does. */
  command(topic: string, payload: Buffer): void;
  /** State reports of a device, parsed, without their `ts`. */
  states(deviceId: string): Record<string, unknown>[];
  dropAll(): Promise<void>;
  reopen(): Promise<void>;
}

async function startCommandBroker(t: TestContext): Promise<CommandBroker> {
  const broker = await Aedes.createBroker();
  const sockets = new Set<net.Socket>();
  const subscriptions: CommandBroker['subscriptions'] = [];
  const published: CommandBroker['published'] = [];
  broker.on('subscribe', (subs, client) => {
    for (const { topic, qos } of subs) subscriptions.push({ clientId: client.id, topic, qos });
  });
  broker.on('publish', (packet, client) => {
    if (client !== null) published.push({ clientId: client.id, topic: packet.topic, payload: packet.payload.toString() });
  });
  const listen = (port: number): Promise<net.Server> => listenAedes(broker, sockets, port);
  let server = await listen(0);
  const { port } = server.address() as net.AddressInfo;
  const dropAll = async (): Promise<void> => {
    for (const socket of sockets) socket.destroy();
    if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  t.after(async () => {
    await dropAll();
    await new Promise<void>((resolve) => broker.close(() => resolve()));
  });
  return {
    url: `mqtt://127.0.0.1:${port}`,
    subscriptions,
    published,
    command(topic, payload) {
      broker.publish({ cmd: 'publish', topic, payload, qos: 1, retain: false, dup: false }, () => {});
    },
    states: (deviceId) =>
      published
        .filter((entry) => entry.topic === `devices/${deviceId}/state`)
        .map((entry) => {
          const { ts, ...state } = JSON.parse(entry.payload) as Record<string, unknown>;
          assert.match(String(ts), /^\d{4}-\d\d-\d\dT/);
          return state;
        }),
    dropAll,
    reopen: async () => {
      server = await listen(port);
    },
  };
}

/** Runs a fleet with no stop condition until `stop`; `report` resolves after it. */
function runFleetInBackground(options: Omit<MqttFleetOptions, 'signal'>, events: MqttCommandEvent[] = []) {
  const controller = new AbortController();
  // Devices whose state report the broker acknowledged: an abort does not wait for reports in flight.
  const reported: string[] = [];
  const report = runMqttFleet(
    { ...options, signal: controller.signal },
    { onCommand: (event) => events.push(event), onStateReported: (deviceId) => reported.push(deviceId) },
  );
  return { report, reported, stop: () => controller.abort() };
}

const BASE = { devices: 4, ratePerSecond: 40, durationMs: 0, qos: 1, seed: 1, commands: true } as const;

test('mqtt commands: devices subscribe at connect, act on their commands and report their state; the report counts them', async (t) => {
  const broker = await startCommandBroker(t);
  const events: MqttCommandEvent[] = [];
  const fleet = runFleetInBackground({ ...BASE, url: broker.url }, events);
  await waitFor(() => broker.subscriptions.length === 4, 'every device subscribed');
  assert.deepEqual(broker.subscriptions.map(({ clientId, topic, qos }) => `${clientId} ${topic} ${qos}`).sort(), [
    'em-000001 devices/em-000001/commands/# 1',
    'ps-000004 devices/ps-000004/commands/# 1',
    'sl-000002 devices/sl-000002/commands/# 1',
    'wm-000003 devices/wm-000003/commands/# 1',
  ]);

  broker.command('devices/sl-000002/commands/dim', json({ level: 40 }));
  broker.command('devices/wm-000003/commands/close', Buffer.from([1, 0]));
  // With {command_id} in the gateway's topic template the id is the level after the name, percent-encoded
  // (src/commands/mqtt-command-path.ts); the report names it.
  broker.command(`devices/em-000001/commands/reboot/${encodeURIComponent('c/42+#')}`, json({}));
  broker.command('devices/ps-000004/commands/config', json({ interval_s: 'soon' }));
  await waitFor(() => broker.published.filter((entry) => entry.topic.endsWith('/state')).length === 4, 'four state reports');

  assert.deepEqual(broker.states('sl-000002'), [{ device_id: 'sl-000002', kind: 'street-lamp', command: 'dim', on: true, dim_pct: 40 }]);
  assert.deepEqual(broker.states('wm-000003'), [{ device_id: 'wm-000003', kind: 'water-meter', command: 'close', valve: 'closed' }]);
  assert.deepEqual(broker.states('em-000001'), [
    { device_id: 'em-000001', kind: 'electricity-meter', command: 'reboot', command_id: 'c/42+#', error: 'unknown command' },
  ]);
  assert.deepEqual(broker.states('ps-000004'), [
    { device_id: 'ps-000004', kind: 'parking-sensor', command: 'config', error: 'bad payload: config needs {"interval_s": 1..86400}' },
  ]);

  // The lamp's readings from then on show what it was told.
  const lampReadings = () => broker.published.filter((entry) => entry.topic === 'devices/sl-000002/telemetry');
  const before = lampReadings().length;
  await waitFor(() => lampReadings().length > before, 'a lamp reading after the command');
  const reading = JSON.parse(lampReadings().at(-1)?.payload ?? '{}') as StreetLampReading;
  assert.deepEqual([reading.on, reading.dim_pct], [true, 40]);

  await waitFor(() => fleet.reported.length === 4, 'the PUBACKs of the four state reports');
  fleet.stop();
  const report = await fleet.report;
  assert.deepEqual(report.commands, { subscribed: 4, subscribeRefused: 0, received: 4, applied: 2, refused: 2, reported: 4, unreported: 0 });
  assert.deepEqual(events.map((event) => [event.deviceId, event.name, event.commandId, event.applied]).sort(), [
    ['em-000001', 'reboot', 'c/42+#', false],
    ['ps-000004', 'config', undefined, false],
    ['sl-000002', 'dim', undefined, true],
    ['wm-000003', 'close', undefined, true],
  ]);
  assert.deepEqual(events.find((event) => event.name === 'close')?.payload, Buffer.from([1, 0]));
  // Commands and state reports stay out of the readings' ledger.
  for (const entry of report.ledger.values()) assert.equal(entry.acked + entry.unacked, entry.published);
});

test('mqtt commands: a config command spaces the meter readings by its interval', async (t) => {
  const broker = await startCommandBroker(t);
  const fleet = runFleetInBackground({ ...BASE, url: broker.url });
  const meterTopic = 'devices/em-000001/telemetry';
  await waitFor(() => broker.published.some((entry) => entry.topic === meterTopic), 'a first meter reading');
  broker.command('devices/em-000001/commands/config', json({ interval_s: 3600 }));
  await waitFor(() => broker.states('em-000001').length === 1, 'the state report');
  assert.deepEqual(broker.states('em-000001'), [{ device_id: 'em-000001', kind: 'electricity-meter', command: 'config', interval_s: 3600 }]);
  const reportAt = broker.published.findIndex((entry) => entry.topic === 'devices/em-000001/state');
  // The others go on publishing; the meter, whose last reading is seconds old, waits an hour for its next.
  const lampCount = () => broker.published.filter((entry) => entry.topic === 'devices/sl-000002/telemetry').length;
  const lampBefore = lampCount();
  await waitFor(() => lampCount() >= lampBefore + 10, 'ten more lamp readings');
  fleet.stop();
  await fleet.report;
  assert.deepEqual(
    broker.published.slice(reportAt).filter((entry) => entry.topic === meterTopic),
    [],
    'no meter reading after the config',
  );
});

test('mqtt commands: off by default, a fleet sends no SUBSCRIBE and reports no commands', async (t) => {
  const broker = await startCommandBroker(t);
  const { commands: _commands, ...withoutCommands } = BASE;
  const report = await runMqttFleet({ ...withoutCommands, url: broker.url, ratePerSecond: 0, messages: 100 });
  assert.equal(report.acked, 100);
  assert.deepEqual(broker.subscriptions, []);
  assert.equal(report.commands, null);
});

test('mqtt commands: after the broker drops every connection, devices subscribe again and take commands', async (t) => {
  const broker = await startCommandBroker(t);
  const fleet = runFleetInBackground({ ...BASE, url: broker.url, reconnectPeriodMs: 100 });
  await waitFor(() => broker.subscriptions.length === 4, 'every device subscribed');
  await broker.dropAll();
  await broker.reopen();
  // A clean session forgets its subscriptions: each device subscribes again on its new connection.
  await waitFor(() => new Set(broker.subscriptions.slice(4).map(({ clientId }) => clientId)).size === 4, 'every device subscribed again', 20_000);
  broker.command('devices/sl-000002/commands/off', Buffer.from('off'));
  await waitFor(() => broker.states('sl-000002').length === 1, 'the state report after the reconnect');
  assert.deepEqual(broker.states('sl-000002'), [{ device_id: 'sl-000002', kind: 'street-lamp', command: 'off', on: false, dim_pct: 0 }]);
  // The broker has the report before the device has its PUBACK; stopping now could abandon it in flight.
  await waitFor(() => fleet.reported.includes('sl-000002'), 'the PUBACK of the state report');
  fleet.stop();
  const report = await fleet.report;
  assert.ok(report.reconnects >= 4, `every device reconnected (${report.reconnects})`);
  assert.equal(report.commands?.subscribed, 4, 'devices, not subscriptions');
  assert.equal(report.commands?.reported, 1);
});

test('cli: mqtt --commands subscribes every device and puts the commands in the summary', async (t) => {
  const broker = await startCommandBroker(t);
  const result = await runSimCli(['mqtt', '--url', broker.url, '--devices', '3', '--messages', '30', '--rate', '0', '--commands', '--json', '--quiet']);
  assert.equal(result.code, 0, result.stderr);
  const summary = JSON.parse(result.stdout) as { acked: number; commands: { received: number } };
  assert.equal(summary.acked, 30);
  assert.equal(summary.commands.received, 0);
  assert.equal(broker.subscriptions.length, 3);

  const help = await runSimCli(['mqtt', '--help']);
  assert.match(help.stdout, /--commands/);
});
