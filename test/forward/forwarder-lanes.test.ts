// The forwarder with more than one batch on the wire (lanes, send-lanes.ts), against the real SQLite buffer
// and a sink of our own that takes its time: batches of different lanes overlap, a device's records stay in
// order, a lane that fails holds up only its own devices, and what is held in memory goes back at stop.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { createInlineBuffer } from '../../src/buffer/record-buffer.ts';
import { createSqliteStore } from '../../src/buffer/sqlite-store.ts';
import { createMetrics } from '../../src/core/metrics.ts';
import { createForwarder } from '../../src/forward/forwarder.ts';
import { type Sink, SinkError } from '../../src/forward/sink.ts';
import type { StoredRecord } from '../../src/record/record.ts';
import { record } from '../contracts/record-store.contract.ts';
import { captureLog } from '../helpers/capture-log.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait-for.ts';

interface SlowSink extends Sink {
  /** [key, n] of every record acknowledged, in acknowledgement order. */
  readonly delivered: [string, number][];
  readonly maxInFlight: () => number;
}

/** Each send takes `delayMs`; `fails` decides per batch whether it fails (retriably). */
function slowSink(delayMs: number, fails: (batch: readonly StoredRecord[]) => boolean = () => false): SlowSink {
  const delivered: [string, number][] = [];
  let inFlight = 0;
  let most = 0;
  return {
    name: 'sink.slow',
    delivered,
    maxInFlight: () => most,
    async start() {},
    async stop() {},
    async connect() {},
    health: () => ({ status: 'ok' }),
    async send(batch) {
      inFlight += 1;
      most = Math.max(most, inFlight);
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      inFlight -= 1;
      if (fails(batch)) throw new SinkError('REQUEST_TIMED_OUT', 'broker slow (scripted)', true);
      for (const r of batch) delivered.push([r.key, Number(r.meta.n)]);
    },
  };
}

function setup(t: TestContext, sink: Sink, lanes: number, path = join(tempDir(t), 'buffer.db')) {
  const store = createSqliteStore({ path, maxRecords: 1e6, maxBytes: 1e9, whenFull: 'reject' });
  const buffer = createInlineBuffer(store);
  const forwarder = createForwarder(
    { batchMaxRecords: 4, batchMaxBytes: 1e6, retryInitialMs: 5, retryMaxMs: 20, stopTimeoutMs: 2000, idlePollMs: 10, lanes },
    {
      buffer,
      sink,
      log: captureLog().log,
      metrics: createMetrics({ processMetrics: false }),
      random: () => 0.5,
      onFatal: (error) => assert.fail(String(error)),
    },
  );
  t.after(async () => {
    await forwarder.stop();
    store.close();
  });
  return { buffer, store, forwarder };
}

/** n of each device's delivered records, in delivery order. */
function perDevice(delivered: readonly [string, number][]): Map<string, number[]> {
  const byDevice = new Map<string, number[]>();
  for (const [key, n] of delivered) byDevice.set(key, [...(byDevice.get(key) ?? []), n]);
  return byDevice;
}

const DEVICES = ['meter-a', 'meter-b', 'meter-c', 'meter-d', 'meter-e', 'meter-f', 'meter-g', 'meter-h'];

test('with 4 lanes, batches overlap on the wire and every device still gets its records in order', async (t) => {
  const sink = slowSink(20);
  const { buffer, forwarder } = setup(t, sink, 4);
  const records = Array.from({ length: 96 }, (_, i) => record(DEVICES[i % DEVICES.length] as string, i + 1));
  await buffer.append([records]);
  await forwarder.start();
  await waitFor(() => buffer.stats().depthRecords === 0, 'the buffer to drain');
  assert.ok(sink.maxInFlight() > 1, `batches overlapped (at most ${sink.maxInFlight()} at once)`);
  assert.equal(sink.delivered.length, 96);
  for (const [device, ns] of perDevice(sink.delivered)) {
    assert.deepEqual(
      ns,
      records.filter((r) => r.key === device).map((r) => Number(r.meta.n)),
      `${device} in order`,
    );
  }
});

test('a lane whose batches fail holds up only its own devices, which keep their order once it recovers', async (t) => {
  let failing = true;
  // Every batch with meter-a fails while `failing`: meter-a's lane retries; the other lanes go on.
  const sink = slowSink(5, (batch) => failing && batch.some((r) => r.key === 'meter-a'));
  const { buffer, forwarder } = setup(t, sink, 4);
  const records = Array.from({ length: 96 }, (_, i) => record(DEVICES[i % DEVICES.length] as string, i + 1));
  await buffer.append([records]);
  await forwarder.start();
  const others = (): number => sink.delivered.filter(([key]) => key !== 'meter-a').length;
  // Devices that share meter-a's lane wait with it; the others (at least one other lane) are delivered meanwhile.
  await waitFor(() => others() > 0 && forwarder.state() === 'buffering', 'other lanes to deliver while one is failing');
  assert.equal(sink.delivered.filter(([key]) => key === 'meter-a').length, 0);
  failing = false;
  await waitFor(() => buffer.stats().depthRecords === 0, 'the buffer to drain');
  await waitFor(() => forwarder.state() === 'up', 'the link to be up again');
  for (const [device, ns] of perDevice(sink.delivered)) {
    assert.deepEqual(
      ns,
      records.filter((r) => r.key === device).map((r) => Number(r.meta.n)),
      `${device} in order`,
    );
  }
});

test('at stop, records held for the lanes go back to the buffer: a new forwarder on it delivers every one, in order', async (t) => {
  const path = join(tempDir(t), 'buffer.db');
  const first = slowSink(5, () => true);
  const store = createSqliteStore({ path, maxRecords: 1e6, maxBytes: 1e9, whenFull: 'reject' });
  const buffer = createInlineBuffer(store);
  const log = captureLog().log;
  const options = { batchMaxRecords: 4, batchMaxBytes: 1e6, retryInitialMs: 5, retryMaxMs: 20, stopTimeoutMs: 2000, idlePollMs: 10, lanes: 3 };
  const deps = { buffer, log, metrics: createMetrics({ processMetrics: false }), random: () => 0.5, onFatal: (error: unknown) => assert.fail(String(error)) };
  const records = Array.from({ length: 40 }, (_, i) => record(DEVICES[i % DEVICES.length] as string, i + 1));
  await buffer.append([records]);
  const down = createForwarder(options, { ...deps, sink: first });
  await down.start();
  await waitFor(() => down.state() === 'buffering', 'the link to be down');
  await down.stop();
  const second = slowSink(1);
  const up = createForwarder(options, { ...deps, sink: second });
  t.after(async () => {
    await up.stop();
    store.close();
  });
  await up.start();
  await waitFor(() => buffer.stats().depthRecords === 0, 'the buffer to drain');
  assert.equal(second.delivered.length, 40);
  for (const [device, ns] of perDevice(second.delivered)) {
    assert.deepEqual(
      ns,
      records.filter((r) => r.key === device).map((r) => Number(r.meta.n)),
      `${device} in order`,
    );
  }
});
