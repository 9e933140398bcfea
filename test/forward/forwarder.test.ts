// The forwarder's promises, against the real SQLite buffer and a scripted Sink (test/helpers/scripted-sink.ts,
// held to the Sink contract by scripted-sink.contract.test.ts):
// oldest first, the same batch retried until acknowledged, link state logged once per change,
// and a record Kafka refuses for good set aside without holding up the rest.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { createInlineBuffer } from '../../src/buffer/record-buffer.ts';
import { createSqliteStore } from '../../src/buffer/sqlite-store.ts';
import { GatewayError } from '../../src/errors.ts';
import { createForwarder } from '../../src/forward/forwarder.ts';
import { SinkError } from '../../src/forward/sink.ts';
import { createMetrics } from '../../src/core/metrics.ts';
import { record } from '../contracts/record-store.contract.ts';
import { captureLog } from '../helpers/capture-log.ts';
import { type Script, type ScriptedSinkOptions, scriptedSink } from '../helpers/scripted-sink.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait-for.ts';

function setup(t: TestContext, script: Script, batchMaxRecords = 3, sinkOptions: ScriptedSinkOptions = {}, failAcks = 0) {
  const store = createSqliteStore({ path: join(tempDir(t), 'buffer.db'), maxRecords: 1e6, maxBytes: 1e9, whenFull: 'reject' });
  const inline = createInlineBuffer(store);
  let acksToFail = failAcks;
  // A delete that fails (the disk filled up between the send and the ack), `failAcks` times.
  const buffer: typeof inline = {
    ...inline,
    ack: async (seqs) => {
      if (acksToFail-- > 0) throw new GatewayError('BUFFER_FULL', 'disk full: cannot ack (scripted)', { retriable: true });
      return inline.ack(seqs);
    },
  };
  const sink = scriptedSink(script, sinkOptions);
  const logs = captureLog();
  const metrics = createMetrics({ processMetrics: false });
  const fatal: unknown[] = [];
  const forwarder = createForwarder(
    { batchMaxRecords, batchMaxBytes: 1e6, retryInitialMs: 5, retryMaxMs: 20, stopTimeoutMs: 1000, idlePollMs: 10 },
    { buffer, sink, log: logs.log, metrics, random: () => 0.5, onFatal: (error) => fatal.push(error) },
  );
  t.after(async () => {
    await forwarder.stop();
    store.close();
  });
  return { buffer, sink, logs, metrics, forwarder, fatal };
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

test('drains the buffer oldest first and deletes only what the sink acknowledged', async (t) => {
  const { buffer, sink, forwarder } = setup(t, () => null);
  await buffer.append([range(1, 10).map((n) => record(`d${n % 3}`, n))]);
  await forwarder.start();
  await waitFor(() => buffer.stats().depthRecords === 0, 'the buffer to drain');
  assert.deepEqual(sink.delivered, range(1, 10).map(String));
  assert.deepEqual(sink.attempts, [['1', '2', '3'], ['4', '5', '6'], ['7', '8', '9'], ['10']]);
  assert.equal(forwarder.state(), 'up');
});

test('a retriable failure retries the same batch before anything newer; the outage is logged once each way', async (t) => {
  let failuresLeft = 4;
  const { buffer, sink, logs, forwarder, metrics } = setup(t, () => (failuresLeft-- > 0 ? new SinkError('CONNECTION', 'broker down', true) : null));
  await buffer.append([range(1, 6).map((n) => record('d', n))]);
  await forwarder.start();
  await waitFor(() => buffer.stats().depthRecords === 0, 'the buffer to drain');
  // The probe at start is not a send; every send attempt until success is the first batch.
  assert.deepEqual(sink.attempts.slice(0, 5), Array(5).fill(['1', '2', '3']));
  assert.deepEqual(sink.delivered, range(1, 6).map(String));
  const messages = logs.messages();
  assert.equal(messages.filter((m) => m.startsWith('Kafka unreachable')).length, 1);
  assert.equal(messages.filter((m) => m.startsWith('Kafka reachable again')).length, 1);
  assert.equal((await metrics.forwarderUp.get()).values[0]?.value, 1);
});

test('records appended during an outage keep their place behind the retried batch', async (t) => {
  let down = true;
  const { buffer, sink, forwarder } = setup(t, () => (down ? new SinkError('CONNECTION', 'broker down', true) : null));
  await buffer.append([range(1, 4).map((n) => record('d', n))]);
  await forwarder.start();
  await waitFor(() => sink.attempts.length >= 3, 'three failed attempts');
  await buffer.append([range(5, 8).map((n) => record('d', n))]);
  down = false;
  await waitFor(() => buffer.stats().depthRecords === 0, 'the buffer to drain');
  assert.deepEqual(sink.delivered, range(1, 8).map(String));
});

test('a record the sink refuses for good is isolated by halving the batch and set aside; the rest goes through in order', async (t) => {
  const { buffer, sink, forwarder, logs } = setup(
    t,
    (batch) => (batch.some((r) => r.meta.n === '5') ? new SinkError('MESSAGE_TOO_LARGE', 'too large', false) : null),
    8,
  );
  await buffer.append([range(1, 10).map((n) => record('d', n))]);
  await forwarder.start();
  await waitFor(() => buffer.stats().depthRecords === 0, 'the buffer to drain');
  assert.deepEqual(sink.delivered, ['1', '2', '3', '4', '6', '7', '8', '9', '10']);
  assert.equal(buffer.stats().deadLetters, 1);
  assert.ok(logs.messages().some((m) => m.startsWith('record set aside as undeliverable')));
});

test('stop during a long backoff returns promptly and leaves the records buffered', async (t) => {
  const { buffer, forwarder } = setup(t, () => new SinkError('CONNECTION', 'broker down', true));
  await buffer.append([range(1, 3).map((n) => record('d', n))]);
  await forwarder.start();
  await waitFor(() => forwarder.state() === 'buffering', 'the link to be down');
  await forwarder.stop();
  assert.equal(buffer.stats().depthRecords, 3);
});

test('a bug while sending (a TypeError, not a SinkError) is fatal at once: not retried, not called a Kafka outage, records kept', async (t) => {
  const bug = new TypeError("Cannot read properties of undefined (reading 'headers')");
  const { buffer, sink, logs, forwarder, fatal } = setup(t, () => bug);
  await buffer.append([range(1, 3).map((n) => record('d', n))]);
  await forwarder.start();
  await waitFor(() => fatal.length > 0, 'the bug to reach onFatal');
  await forwarder.stop(); // returns once the forwarding loop has ended: no attempt can follow
  assert.deepEqual(fatal, [bug]);
  assert.equal(sink.attempts.length, 1);
  assert.equal(buffer.stats().depthRecords, 3);
  assert.equal(buffer.stats().deadLetters, 0);
  assert.notEqual(forwarder.state(), 'buffering');
  const messages = logs.messages();
  assert.ok(!messages.some((m) => m.startsWith('Kafka unreachable')), messages.join('\n'));
  assert.ok(messages.some((m) => m.startsWith('forwarder stopped by a bug')));
});

test('Kafka down at start and back while nothing is buffered: the link is seen up again', async (t) => {
  let down = true;
  const { forwarder } = setup(t, () => null, 3, { connect: () => (down ? new SinkError('CONNECTION_ERROR', 'broker down', true) : null) });
  await forwarder.start();
  await waitFor(() => forwarder.state() === 'buffering', 'the failed probe at start');
  down = false;
  await waitFor(() => forwarder.state() === 'up', 'the link to be seen up again', 3_000);
});

test('an ack that fails after Kafka took the batch puts it back at the head of the line: sent again before anything newer', async (t) => {
  const { buffer, sink, forwarder } = setup(t, () => null, 3, {}, 1);
  await buffer.append([range(1, 6).map((n) => record('d', n))]);
  await forwarder.start();
  await waitFor(() => buffer.stats().depthRecords === 0, 'the buffer to drain');
  assert.deepEqual(sink.attempts, [
    ['1', '2', '3'],
    ['1', '2', '3'],
    ['4', '5', '6'],
  ]);
});
