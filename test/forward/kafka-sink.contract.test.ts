// The Sink contract (test/contracts/sink.contract.ts) against the real Kafka sink and a real Kafka-protocol
// cluster: librdkafka's mock, 3 brokers, the topic on 3 partitions replicated 3 times. An outage is every
// broker down (connections refused); silence is every response held back for a minute (connections and
// requests taken, nothing answered). The mock never checks message.max.bytes (a 20 MB record goes in), so
// the refusal injects the broker's answer to an oversized batch, MESSAGE_TOO_LARGE, into the next Produce.
// Timeouts are small (1 s request, 300 ms connection) so a failing call settles within seconds.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createKafkaSink } from '../../src/forward/kafka-sink.ts';
import { SinkError } from '../../src/forward/sink.ts';
import { createMetrics } from '../../src/core/metrics.ts';
import { createRouter } from '../../src/record/routes.ts';
import { contractRecord, type OpenSink, sinkContract } from '../contracts/sink.contract.ts';
import { captureLog } from '../helpers/capture-log.ts';
import { KAFKA_API, KAFKA_ERROR, readTopic, startKafkaMock, topicOffsets } from '../helpers/kafka-mock.ts';

const SILENCE_MS = 60_000;

const openKafkaSink: OpenSink = async (t, setup) => {
  const kafka = await startKafkaMock({ brokers: 3, topics: [{ name: setup.topic, partitions: 3 }] });
  const sink = createKafkaSink(
    {
      brokers: kafka.brokers,
      clientId: 'iotgw-contract',
      gatewayId: setup.gatewayId,
      compression: 'none',
      requestTimeoutMs: 1_000,
      connectionTimeoutMs: 300,
      tls: null,
      sasl: null,
    },
    { router: createRouter(setup.topic, []), log: captureLog('warn').log, metrics: createMetrics({ processMetrics: false }) },
  );
  t.after(async () => {
    await sink.stop();
    await kafka.stop();
  });
  return {
    sink,
    read: (count, timeoutMs) => readTopic(kafka.brokers, setup.topic, { until: (messages) => messages.length >= count, timeoutMs }),
    heldNow: async () => (await topicOffsets(kafka.brokers, setup.topic)).produced,
    outage: { down: () => kafka.down('all'), up: () => kafka.up('all') },
    silence: { begin: () => kafka.setRttMs('all', SILENCE_MS), end: () => kafka.setRttMs('all', 0) },
    refusal: { arm: () => kafka.injectError(KAFKA_API.produce, KAFKA_ERROR.messageTooLarge) },
  };
};

sinkContract('kafka sink', openKafkaSink, {
  capabilities: ['outage', 'silence', 'refusal'],
  callBudgetMs: 20_000,
  recoveryBudgetMs: 10_000,
});

// Beyond the contract: the code a failure is logged and counted under (iotgw_kafka_send_errors_total{code}).
test('kafka sink: brokers going down after a send fail retriable under a code that does not say the opposite', async (t) => {
  const { sink, outage } = await openKafkaSink(t, { gatewayId: 'gw-contract', topic: 'contract.records' });
  await sink.send([contractRecord(1, 'meter-1')]);
  await outage?.down();
  const failure = await sink.send([contractRecord(2, 'meter-1')]).then(
    () => null,
    (error: unknown) => error,
  );
  assert.ok(failure instanceof SinkError && failure.retriable, String(failure));
  assert.doesNotMatch(failure.code, /NON_RETRIABLE/);
});
