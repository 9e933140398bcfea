// The TTN ingress against the TTS stand-in (a real aedes broker on an ephemeral port) with a real mqtt.js
// client: health stays degraded while TTS refuses the subscription; refused connections back off from 1 s,
// doubling up to reconnectMaxMs; stop() during a pending reconnect cancels it and nothing reconnects; and
// uplinks are stored with iotgw.codec, exact copies dropped, a counter reset stored and marked, and an
// uplink whose commit failed counted in the next record's f_cnt_gap. Reconnects are scheduled through an
// injected scheduler, so the test drives them instead of waiting for them.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { startTtsStandIn, type TtsStandIn } from '../../../firmware-sim/tts-stand-in.ts';
import { createTtsFleet } from '../../../firmware-sim/tts-traffic.ts';
import type { StateWrite } from '../../../src/buffer/record-buffer.ts';
import type { Accept, AcceptRefusal } from '../../../src/ingress/ingress.ts';
import { RAW_CODEC } from '../../../src/codecs/payload-codec.ts';
import { createTtnIngress, type TtnIngress, type TtnIngressOptions } from '../../../src/ingress/ttn/ttn-ingress.ts';
import { createMetrics, type Metrics } from '../../../src/core/metrics.ts';
import type { NewRecord } from '../../../src/record/record.ts';
import { captureLog } from '../../helpers/capture-log.ts';
import { waitFor } from '../../helpers/wait-for.ts';

interface Scheduled {
  readonly callback: () => void;
  readonly delayMs: number;
  cancelled: boolean;
}

interface Harness {
  readonly ingress: TtnIngress;
  readonly metrics: Metrics;
  readonly records: NewRecord[];
  readonly scheduled: Scheduled[];
  /** The next commits are refused with this reason while set. */
  refuseCommits: AcceptRefusal | null;
}

async function startStandIn(t: TestContext): Promise<TtsStandIn> {
  const standIn = await startTtsStandIn({ applicationId: 'city-sensors', tenantId: 'ttn' });
  t.after(() => standIn.stop());
  return standIn;
}

async function startIngress(t: TestContext, standIn: TtsStandIn, overrides: Partial<TtnIngressOptions> = {}): Promise<Harness> {
  const metrics = createMetrics({ processMetrics: false });
  const records: NewRecord[] = [];
  const scheduled: Scheduled[] = [];
  const harness: Harness = { ingress: undefined as unknown as TtnIngress, metrics, records, scheduled, refuseCommits: null };
  const accept: Accept = async (batch, _state: readonly StateWrite[] = []) => {
    if (harness.refuseCommits !== null) return { ok: false, reason: harness.refuseCommits, message: 'the buffer is full (test)' };
    records.push(...batch);
    return { ok: true, seqs: batch.map((_, index) => index) };
  };
  const ingress = createTtnIngress(
    {
      url: standIn.url,
      username: standIn.username,
      password: standIn.apiKey,
      caFile: null,
      clientId: 'iotgw-test',
      uplinkTopics: [`v3/${standIn.username}/devices/+/up`],
      stream: 'uplink',
      eventStreams: new Map(),
      codec: RAW_CODEC,
      reconnectInitialMs: 1_000,
      reconnectMaxMs: 4_000,
      maxMessageBytes: 256 * 1024,
      rejectLogIntervalMs: 60_000,
      ...overrides,
    },
    {
      accept,
      loadState: async () => new Map(),
      log: captureLog('error').log,
      metrics,
      random: () => 1,
      schedule(callback, delayMs) {
        const entry: Scheduled = { callback, delayMs, cancelled: false };
        scheduled.push(entry);
        return () => {
          entry.cancelled = true;
        };
      },
    },
  );
  Object.assign(harness, { ingress });
  t.after(() => ingress.stop());
  await ingress.start();
  return harness;
}

async function counter(
  metric: { get(): Promise<{ values: { value: number; labels: Record<string, unknown> }[] }> },
  labels: Record<string, string>,
): Promise<number> {
  const { values } = await metric.get();
  return values.find((value) => Object.entries(labels).every(([name, wanted]) => value.labels[name] === wanted))?.value ?? 0;
}

test('a refused subscription keeps health degraded although the connection is up; a granted one makes it ok', async (t) => {
  const standIn = await startStandIn(t);
  const refused = await startIngress(t, standIn, { uplinkTopics: [`v3/${standIn.username}/devices/+/up`, 'v3/another-app@ttn/devices/+/up'] });
  await waitFor(() => refused.ingress.health().detail?.includes('subscription refused') === true, 'the refusal to be seen');
  assert.ok(refused.ingress.isConnected(), 'TTS keeps the connection up after refusing a topic');
  assert.deepEqual(refused.ingress.health(), {
    status: 'degraded',
    detail: `TTN ${standIn.username}: subscription refused: v3/another-app@ttn/devices/+/up`,
  });
  await refused.ingress.stop();

  const granted = await startIngress(t, standIn);
  await waitFor(() => granted.ingress.health().status === 'ok', 'the subscription to be granted');
  assert.ok(granted.ingress.isConnected());
});

test('refused connections back off from 1 s, doubling up to reconnectMaxMs; stop() during a pending reconnect cancels it', async (t) => {
  const standIn = await startStandIn(t);
  standIn.setConnectPolicy('not-authorized');
  const harness = await startIngress(t, standIn);
  const application = { application: standIn.username };
  await waitFor(() => harness.scheduled.length === 1, 'the refusal to schedule a reconnect');
  for (const expectedDelayMs of [1_000, 2_000, 4_000, 4_000]) {
    const pending = harness.scheduled.at(-1) as Scheduled;
    assert.equal(pending.delayMs, expectedDelayMs);
    assert.equal(harness.ingress.health().status, 'degraded');
    const before = harness.scheduled.length;
    pending.callback();
    await waitFor(() => harness.scheduled.length > before, 'the next refusal to schedule another reconnect');
  }
  assert.equal(await counter(harness.metrics.ttnReconnects, application), 4);
  assert.ok(standIn.stats().refused >= 5);

  // A reconnect is pending now: stop() cancels it, and the timer firing anyway (a race) reconnects nothing.
  const pending = harness.scheduled.at(-1) as Scheduled;
  assert.equal(pending.cancelled, false);
  const refusedBefore = standIn.stats().refused;
  await harness.ingress.stop();
  assert.equal(pending.cancelled, true, 'stop() cancelled the pending reconnect');
  pending.callback();
  assert.equal(await counter(harness.metrics.ttnReconnects, application), 4, 'no reconnect after stop()');
  assert.equal(harness.scheduled.length, 5, 'nothing scheduled after stop()');
  assert.deepEqual(harness.ingress.health(), { status: 'down', detail: 'not started' });
  assert.equal(standIn.stats().refused, refusedBefore);
  assert.equal(standIn.stats().accepted, 0);
});

test('uplinks: iotgw.codec says which codec ran, exact copies are dropped, a counter reset is stored and marked, a lost commit shows as a gap', async (t) => {
  const standIn = await startStandIn(t);
  const harness = await startIngress(t, standIn);
  await standIn.waitForSubscriber();
  const fleet = createTtsFleet('city-sensors', { devices: 1, seed: 3, decodedShare: 0 });
  const device = fleet.devices[0];
  assert.ok(device !== undefined);
  const topic = `v3/${standIn.username}/devices/${device.deviceId}/up`;
  const application = { application: standIn.username };
  const values = (): Record<string, unknown>[] =>
    harness.records.map((record) => JSON.parse(Buffer.from(record.payload).toString('utf8')) as Record<string, unknown>);
  const publish = async (message: Record<string, unknown>): Promise<void> => {
    assert.equal(await standIn.publish(topic, JSON.stringify(message)), 1);
  };

  device.fCnt = 10;
  const first = fleet.nextUplink(device, Date.now());
  await publish(first);
  await publish(first); // the same message delivered twice: dropped
  await waitFor(async () => (await counter(harness.metrics.ingressRejected, { source: 'ttn', reason: 'duplicate' })) === 1, 'the copy to be dropped');
  const decodedByTts = fleet.nextUplink(device, Date.now());
  (decodedByTts.uplink_message as Record<string, unknown>).decoded_payload = { temperature: 21 };
  await publish(decodedByTts);
  device.fCnt = 3; // an ABP device that reset: its counter went back within the same session
  await publish(fleet.nextUplink(device, Date.now()));
  await waitFor(() => harness.records.length === 3, 'three records');
  assert.deepEqual(
    values().map((value) => value.iotgw),
    [
      { f_cnt_gap: 0, application: standIn.username, codec: 'raw' },
      { f_cnt_gap: 0, application: standIn.username, codec: 'tts' },
      { f_cnt_gap: 0, f_cnt_reset: true, application: standIn.username, codec: 'raw' },
    ],
  );
  assert.equal(await counter(harness.metrics.ttnFCntResets, application), 1);

  // f_cnt 4 was never heard and f_cnt 5 cannot be committed (buffer full): TTS never sends it again, so f_cnt 6's
  // record counts both, and the metric counts each missed frame once.
  harness.refuseCommits = 'buffer-full';
  device.fCnt = 5;
  await publish(fleet.nextUplink(device, Date.now()));
  await waitFor(async () => (await counter(harness.metrics.ingressRejected, { source: 'ttn', reason: 'buffer-full' })) === 1, 'the refused commit');
  harness.refuseCommits = null;
  await publish(fleet.nextUplink(device, Date.now()));
  await waitFor(() => harness.records.length === 4, 'the record after the lost one');
  const last = values()[3] as { uplink_message: { f_cnt: number }; iotgw: { f_cnt_gap: number } };
  assert.equal(last.uplink_message.f_cnt, 6);
  assert.equal(last.iotgw.f_cnt_gap, 2, 'the uplink lost at commit shows in the gap');
  assert.equal(await counter(harness.metrics.ttnMissedFrames, application), 2);
});
