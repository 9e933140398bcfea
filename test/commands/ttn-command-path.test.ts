// The TTN command path against the TTS stand-in (a real aedes broker on an ephemeral port) over real TTN
// ingress links (mqtt.js): a device becomes addressable by its first uplink (and stays so across a restart,
// from the committed state); a command is pushed to down/push with its correlation id and ends as TTS's events
// say: acked, sent (unconfirmed), failed with TTS's error, unanswered after a nack (the copy TTS re-queues is
// withdrawn and the next hand-over replaces), away when the link drops (ready again when it is back). Malformed
// and foreign events are counted or ignored without disturbing the wait. The path's timers are driven by the
// test through an injected scheduler, so timeouts are fired, never waited for.
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { startTtsStandIn, type TtsStandIn } from '../../firmware-sim/tts-stand-in.ts';
import { createTtsFleet, publishTtsTraffic, type TtsSimDevice } from '../../firmware-sim/tts-traffic.ts';
import type { StateWrite } from '../../src/buffer/record-buffer.ts';
import { RAW_CODEC } from '../../src/codecs/payload-codec.ts';
import type { Command } from '../../src/commands/command.ts';
import type { CommandPath, PathOutcome } from '../../src/commands/command-path.ts';
import { createTtnCommandPath, TTN_COMMAND_PATH_DEFAULTS, type TtnCommandPathOptions } from '../../src/commands/ttn-command-path.ts';
import { createMetrics, type Metrics } from '../../src/core/metrics.ts';
import type { Accept } from '../../src/ingress/ingress.ts';
import { createTtnIngress, type TtnIngress } from '../../src/ingress/ttn/ttn-ingress.ts';
import { captureLog } from '../helpers/capture-log.ts';
import { waitFor } from '../helpers/wait-for.ts';

interface Timer {
  readonly callback: () => void;
  readonly delayMs: number;
  cancelled: boolean;
}

interface Link {
  readonly standIn: TtsStandIn;
  readonly ingress: TtnIngress;
  readonly metrics: Metrics;
  /** The committed state rows (scope -> key -> value), as the buffer would hold them. */
  readonly state: Map<string, Map<string, string>>;
}

interface Harness {
  readonly links: Link[];
  readonly path: CommandPath;
  readonly timers: Timer[];
  /** Device ids the path said may be ready, in order. */
  readonly ready: string[];
}

async function startLink(t: TestContext, applicationId: string, state = new Map<string, Map<string, string>>(), standIn?: TtsStandIn): Promise<Link> {
  const server = standIn ?? (await startTtsStandIn({ applicationId, tenantId: 'ttn' }));
  if (standIn === undefined) t.after(() => server.stop());
  const metrics = createMetrics({ processMetrics: false });
  const accept: Accept = async (records, writes: readonly StateWrite[] = []) => {
    for (const write of writes) {
      const scope = state.get(write.scope) ?? new Map<string, string>();
      if (write.value === null) scope.delete(write.key);
      else scope.set(write.key, write.value);
      state.set(write.scope, scope);
    }
    return { ok: true, seqs: records.map((_, index) => index) };
  };
  const ingress = createTtnIngress(
    {
      url: server.url,
      username: server.username,
      password: server.apiKey,
      caFile: null,
      clientId: `iotgw-test-${applicationId}`,
      uplinkTopics: [`v3/${server.username}/devices/+/up`],
      stream: 'uplink',
      eventStreams: new Map(),
      codec: RAW_CODEC,
      reconnectInitialMs: 50,
      reconnectMaxMs: 200,
      maxMessageBytes: 256 * 1024,
      rejectLogIntervalMs: 60_000,
      downlinks: true,
    },
    { accept, loadState: async (scope) => state.get(scope) ?? new Map(), log: captureLog('error').log, metrics, random: () => 1 },
  );
  t.after(() => ingress.stop());
  await ingress.start();
  await waitFor(() => ingress.downlink.isUp(), `the ${applicationId} link up and subscribed to the down events`);
  return { standIn: server, ingress, metrics, state };
}

function startPath(links: readonly Link[], options: Partial<TtnCommandPathOptions> = {}): Harness {
  const timers: Timer[] = [];
  const ready: string[] = [];
  const path = createTtnCommandPath(
    { ...TTN_COMMAND_PATH_DEFAULTS, ...options },
    {
      links: links.map((link) => link.ingress.downlink),
      log: captureLog('error').log,
      schedule(callback, delayMs) {
        const timer: Timer = { callback, delayMs, cancelled: false };
        timers.push(timer);
        return () => {
          timer.cancelled = true;
        };
      },
    },
  );
  path.onReady((deviceId) => ready.push(deviceId));
  return { links: [...links], path, timers, ready };
}

/** Fires the pending timer of `delayMs` (the path's queued or outcome timeout). */
function fire(h: Harness, delayMs: number): void {
  const timer = h.timers.find((candidate) => !candidate.cancelled && candidate.delayMs === delayMs);
  assert.ok(timer !== undefined, `a pending ${delayMs} ms timer`);
  timer.cancelled = true;
  timer.callback();
}

/** Publishes one uplink per device, so the link learns their device ids. */
async function uplinks(link: Link, devices: number, seed: number): Promise<TtsSimDevice[]> {
  const fleet = createTtsFleet(link.standIn.username.split('@')[0] as string, { devices, seed, prefix: 'dev-' });
  await publishTtsTraffic(link.standIn, fleet, { messagesPerDevice: 1 });
  await waitFor(() => fleet.devices.every((device) => link.ingress.downlink.deviceIdOf(device.devEui) === device.deviceId), 'the devices learned');
  return [...fleet.devices];
}

let seq = 0;
function command(device: TtsSimDevice, overrides: Partial<Command> = {}): Command {
  seq += 1;
  return {
    id: `c-${seq}`,
    deviceId: device.devEui,
    name: 'dim',
    payload: Buffer.from([0x01, 0x28]),
    structured: false,
    fport: 10,
    confirmed: true,
    acceptedAtMs: Date.now(),
    expiresAtMs: Date.now() + 3_600_000,
    seq,
    state: 'sent',
    attempts: 1,
    ...overrides,
  };
}

async function send(h: Harness, cmd: Command): Promise<{ outcome: PathOutcome; progress: string[] }> {
  const progress: string[] = [];
  const outcome = await h.path.send(cmd, (status) => progress.push(status));
  return { outcome, progress };
}

function operations(link: Link, device: TtsSimDevice): { operation: string; body: unknown }[] {
  return link.standIn
    .downlinkOperations()
    .filter((op) => op.deviceId === device.deviceId)
    .map((op) => ({ operation: op.operation, body: JSON.parse(op.body) }));
}

test('a device is served once its uplink was heard; a confirmed command is pushed with its correlation id, sent, then acked', async (t) => {
  const link = await startLink(t, 'city-water');
  const h = startPath([link]);
  const unknownEui = '70B3D57ED00FFFFF';
  assert.equal(h.path.serves(unknownEui), false, 'never heard: another path serves it');
  const [valve] = await uplinks(link, 1, 21);
  assert.ok(valve !== undefined);
  assert.ok(h.path.serves(valve.devEui));
  assert.ok(h.path.serves(valve.devEui.toUpperCase()), 'a DevEUI key in upper case is the same device');
  const cmd = command(valve);
  assert.ok(h.path.ready(cmd));

  const { outcome, progress } = await send(h, cmd);
  assert.deepEqual(outcome, { kind: 'done', status: 'acked' });
  assert.deepEqual(progress, ['sent'], 'down/sent is the sent receipt (the hand-over is not)');
  assert.deepEqual(operations(link, valve), [
    {
      operation: 'push',
      body: { downlinks: [{ f_port: 10, frm_payload: 'ASg=', priority: 'NORMAL', confirmed: true, correlation_ids: [`iotgw:command:${cmd.id}`] }] },
    },
  ]);
  assert.equal(h.path.name, 'ttn');
  assert.equal(h.path.sentOnHandOver, false);
  assert.deepEqual(link.standIn.downlinkQueue(valve.deviceId), [], 'nothing left in TTS');

  // A device heard only later: whoever asked about it is told it may be ready now.
  const lateFleet = createTtsFleet('city-water', { devices: 1, seed: 99, prefix: 'late-' });
  const late = lateFleet.devices[0] as TtsSimDevice;
  assert.equal(h.path.serves(late.devEui.toUpperCase()), false);
  await publishTtsTraffic(link.standIn, lateFleet, { messagesPerDevice: 1 });
  await waitFor(() => h.ready.includes(late.devEui.toUpperCase()), 'the late device announced ready, by the id it was asked about');
  assert.ok(h.path.serves(late.devEui.toUpperCase()));
});

test('unconfirmed: down/sent is the outcome; no FPort: the default, or a failure with a reason; too large: failed before anything is pushed', async (t) => {
  const link = await startLink(t, 'city-water');
  const h = startPath([link]);
  const [lamp] = await uplinks(link, 1, 22);
  assert.ok(lamp !== undefined);

  const unconfirmed = await send(h, command(lamp, { confirmed: false, fport: null }));
  assert.deepEqual(unconfirmed.outcome, { kind: 'done', status: 'sent' });
  assert.deepEqual(unconfirmed.progress, [], 'the final `sent` is the only one');
  const [pushed] = operations(link, lamp);
  assert.ok(pushed !== undefined);
  const { downlinks } = pushed.body as { downlinks: { f_port: number; confirmed: boolean }[] };
  assert.deepEqual(
    downlinks.map(({ f_port, confirmed }) => ({ f_port, confirmed })),
    [{ f_port: 1, confirmed: false }],
  );

  const strict = startPath([link], { defaultFPort: null });
  const noPort = await send(strict, command(lamp, { fport: null }));
  assert.equal(noPort.outcome.kind, 'failed');
  assert.match(noPort.outcome.kind === 'failed' ? noPort.outcome.reason : '', /names no LoRaWAN FPort.*give `port` \(1\.\.223\)/);

  const large = await send(h, command(lamp, { payload: Buffer.alloc(243, 7) }));
  assert.deepEqual(large.outcome, {
    kind: 'failed',
    reason: 'a payload of 243 bytes does not fit a LoRaWAN downlink (at most 242 bytes, fewer at low data rates)',
  });
  assert.equal(operations(link, lamp).length, 1, 'the refused commands were never pushed');
});

test('down/failed fails the command with TTS error text; a nack is unanswered, TTS re-queued copy withdrawn, the next hand-over replaces', async (t) => {
  const link = await startLink(t, 'city-water');
  const h = startPath([link]);
  const [meter, pump] = await uplinks(link, 2, 23);
  assert.ok(meter !== undefined && pump !== undefined);

  link.standIn.setDownlinkFates(meter.deviceId, ['fail']);
  const failed = await send(h, command(meter));
  assert.deepEqual(failed.outcome, {
    kind: 'failed',
    reason: `TTS could not deliver the downlink: pkg/networkserver:no_downlink_path: no downlink path available for device \`city-water.${meter.deviceId}\` (code 9)`,
  });

  link.standIn.setDownlinkFates(pump.deviceId, ['nack', 'ack']);
  const cmd = command(pump);
  const nacked = await send(h, cmd);
  assert.equal(nacked.outcome.kind, 'unanswered');
  assert.match(nacked.outcome.kind === 'unanswered' ? nacked.outcome.detail : '', /nack/);
  assert.deepEqual(nacked.progress, ['sent']);
  // TTS keeps a nacked downlink for the next uplink; the path takes it out (replace with nothing).
  await waitFor(() => operations(link, pump).length === 2, 'the withdrawal');
  assert.deepEqual(operations(link, pump)[1], { operation: 'replace', body: { downlinks: [] } });
  assert.deepEqual(link.standIn.downlinkQueue(pump.deviceId), []);

  const again = await send(h, { ...cmd, attempts: 2 });
  assert.deepEqual(again.outcome, { kind: 'done', status: 'acked' });
  assert.deepEqual(
    operations(link, pump).map((op) => op.operation),
    ['push', 'replace', 'replace'],
    'a later hand-over replaces, so TTS never holds two copies',
  );
});

test('the link drops while TTS holds the downlink: away; when it is back the device is ready, and the next hand-over replaces the held copy', async (t) => {
  const link = await startLink(t, 'city-water');
  const h = startPath([link]);
  const [gate] = await uplinks(link, 1, 24);
  assert.ok(gate !== undefined);
  link.standIn.setDownlinkFates(gate.deviceId, ['hold', 'ack']);
  const cmd = command(gate);
  const pending = send(h, cmd);
  await waitFor(() => link.standIn.downlinkQueue(gate.deviceId).length === 1, 'TTS holding the downlink');
  link.standIn.dropConnections();
  assert.deepEqual((await pending).outcome, { kind: 'away' });
  assert.equal(h.path.ready(cmd), false, 'not ready while the link is down');
  await waitFor(() => link.ingress.downlink.isUp(), 'the link back', 20_000);
  await waitFor(() => h.ready.includes(gate.devEui), 'the device told ready');
  assert.ok(h.path.ready(cmd));

  const again = await send(h, { ...cmd, attempts: 2 });
  assert.deepEqual(again.outcome, { kind: 'done', status: 'acked' });
  assert.deepEqual(
    operations(link, gate).map((op) => op.operation),
    ['push', 'replace'],
  );
  assert.deepEqual(link.standIn.downlinkQueue(gate.deviceId), [], 'the held copy was replaced, not sent twice');
});

test('TTS silent after a push (no down/queued), or no outcome in time: unanswered, and the downlink is withdrawn', async (t) => {
  const link = await startLink(t, 'city-water');
  const h = startPath([link], { queuedTimeoutMs: 60_000, outcomeTimeoutMs: 7_200_000 });
  const [silent, sleepy] = await uplinks(link, 2, 25);
  assert.ok(silent !== undefined && sleepy !== undefined);

  link.standIn.setDownlinkFates(silent.deviceId, ['ignore']);
  const ignored = send(h, command(silent));
  await waitFor(() => operations(link, silent).length === 1, 'the push at the stand-in');
  fire(h, 60_000);
  const outcome = (await ignored).outcome;
  assert.equal(outcome.kind, 'unanswered');
  assert.match(outcome.kind === 'unanswered' ? outcome.detail : '', /TTS did not queue the downlink \(no down\/queued within 60 s\)/);
  await waitFor(() => operations(link, silent).length === 2, 'the withdrawal');

  // Held by TTS (the device does not uplink): the outcome timeout ends the hand-over, the command's expiry
  // bounds the wait when it comes first.
  link.standIn.setDownlinkFates(sleepy.deviceId, ['hold']);
  const soonExpiring = command(sleepy, { expiresAtMs: Date.now() + 60_000 });
  const held = send(h, soonExpiring);
  await waitFor(() => link.standIn.downlinkQueue(sleepy.deviceId).length === 1, 'TTS holding the downlink');
  const outcomeTimer = h.timers.find((timer) => !timer.cancelled && timer.delayMs !== 60_000);
  assert.ok(outcomeTimer !== undefined && outcomeTimer.delayMs <= 65_000, 'the wait ends with the command (plus a grace for its expiry receipt)');
  fire(h, outcomeTimer.delayMs);
  const heldOutcome = (await held).outcome;
  assert.equal(heldOutcome.kind, 'unanswered');
  assert.match(heldOutcome.kind === 'unanswered' ? heldOutcome.detail : '', /no down\/sent from TTS/);
  await waitFor(() => link.standIn.downlinkQueue(sleepy.deviceId).length === 0, 'the held downlink withdrawn');

  // Already expired when handed over (the queue's expiry check has not run yet): nothing goes to TTS, and the
  // hand-over ends after a grace in which the queue expires it (with an `expired` receipt).
  const pushes = link.standIn.downlinkOperations().length;
  const expired = send(h, command(sleepy, { expiresAtMs: Date.now() - 1 }));
  await waitFor(() => h.timers.some((timer) => !timer.cancelled && timer.delayMs === 5_000), 'the grace timer');
  fire(h, 5_000);
  assert.deepEqual((await expired).outcome, { kind: 'unanswered', detail: 'it expired before it could be queued at TTS' });
  assert.equal(link.standIn.downlinkOperations().length, pushes, 'nothing pushed');
});

test('malformed down events are counted and ignored, foreign ones ignored; the wait ends on the real events', async (t) => {
  const link = await startLink(t, 'city-water');
  const h = startPath([link]);
  const [valve] = await uplinks(link, 1, 26);
  assert.ok(valve !== undefined);
  link.standIn.setDownlinkFates(valve.deviceId, ['hold']);
  const cmd = command(valve);
  const pending = send(h, cmd);
  await waitFor(() => link.standIn.downlinkQueue(valve.deviceId).length === 1, 'TTS holding the downlink');
  const topic = (event: string): string => `v3/${link.standIn.username}/devices/${valve.deviceId}/${event}`;
  const ids = { device_id: valve.deviceId, application_ids: { application_id: 'city-water' }, dev_eui: valve.devEui.toUpperCase() };
  await link.standIn.publish(topic('down/ack'), '{"end_device_ids":');
  await link.standIn.publish(topic('down/ack'), JSON.stringify({ end_device_ids: ids, downlink_ack: { correlation_ids: `iotgw:command:${cmd.id}` } }));
  await link.standIn.publish(topic('down/ack'), JSON.stringify({ end_device_ids: ids, downlink_sent: { correlation_ids: [`iotgw:command:${cmd.id}`] } }));
  await link.standIn.publish(topic('down/ack'), JSON.stringify({ end_device_ids: ids, downlink_ack: { correlation_ids: ['iotgw:command:someone-else'] } }));
  await link.standIn.publish(
    topic('down/failed'),
    JSON.stringify({ end_device_ids: ids, downlink_failed: { downlink: { correlation_ids: ['app:other'] }, error: {} } }),
  );
  const rejected = async (reason: string): Promise<number> =>
    (await link.metrics.ingressRejected.get()).values.find((value) => value.labels.source === 'ttn' && value.labels.reason === reason)?.value ?? 0;
  await waitFor(
    async () => (await rejected('malformed-json')) === 1 && (await rejected('bad-field')) === 1 && (await rejected('not-a-downlink-event')) === 1,
    'the rejections counted',
  );
  assert.ok(await link.standIn.deviceUplink(valve.deviceId, 'ack'), 'the device uplinks: TTS sends the held downlink');
  assert.deepEqual((await pending).outcome, { kind: 'done', status: 'acked' });
  assert.ok(link.ingress.isConnected(), 'the link stayed up throughout');
});

test('several applications: each device goes over its own link; the mapping is committed with the uplink and known again after a restart', async (t) => {
  const water = await startLink(t, 'city-water');
  const air = await startLink(t, 'city-air');
  const h = startPath([water, air]);
  const [sensor] = await uplinks(air, 1, 27);
  assert.ok(sensor !== undefined);
  assert.equal(water.ingress.downlink.deviceIdOf(sensor.devEui), undefined);
  assert.deepEqual((await send(h, command(sensor))).outcome, { kind: 'done', status: 'acked' });
  assert.equal(operations(air, sensor).length, 1);
  assert.equal(water.standIn.downlinkOperations().length, 0);

  // Restart the air link on the same committed state: the device is addressable before it uplinks again.
  const row = JSON.parse(air.state.get('ttn.device')?.get(sensor.devEui) ?? '{}') as Record<string, unknown>;
  assert.equal(row.device_id, sensor.deviceId);
  assert.equal(row.application, air.standIn.username);
  await air.ingress.stop();
  const restarted = await startLink(t, 'city-air', air.state, air.standIn);
  const after = startPath([water, restarted]);
  assert.ok(after.path.serves(sensor.devEui));
  assert.deepEqual((await send(after, command(sensor))).outcome, { kind: 'done', status: 'acked' });
});
