// The Sink contract (test/contracts/sink.contract.ts) against the scripted sink the forwarder tests use in
// place of Kafka, so what they prove of the forwarder holds with the real sink. Its destination is its own
// memory: what a consumer would read is each acknowledged record as the Kafka envelope renders it. An outage
// is a script failing connect() and send() with a retriable SinkError, as the Kafka sink does; a record over
// Kafka's default message.max.bytes is refused for good. A silent destination cannot be scripted (the fake
// has no timeouts to run into): those checks are not part of this suite.
import { SinkError } from '../../src/forward/sink.ts';
import { toKafkaMessage } from '../../src/record/kafka-envelope.ts';
import { type OpenSink, sinkContract } from '../contracts/sink.contract.ts';
import { scriptedSink } from '../helpers/scripted-sink.ts';

/** Kafka's default message.max.bytes. */
const MAX_MESSAGE_BYTES = 1_048_588;

const openScriptedSink: OpenSink = async (_t, setup) => {
  let down = false;
  const unreachable = (): SinkError | null => (down ? new SinkError('CONNECTION_ERROR', 'Connection error: connect ECONNREFUSED (scripted)', true) : null);
  const sink = scriptedSink(
    (batch) =>
      unreachable() ??
      (batch.some((record) => record.payload.byteLength > MAX_MESSAGE_BYTES)
        ? new SinkError('MESSAGE_TOO_LARGE', 'Kafka refused the batch: MESSAGE_TOO_LARGE (scripted)', false)
        : null),
    { connect: unreachable },
  );
  return {
    sink,
    read: async () =>
      sink.records.map((record) => {
        const message = toKafkaMessage(record, setup.gatewayId);
        return { key: message.key, value: message.value, timestampMs: Number(message.timestamp), headers: message.headers };
      }),
    heldNow: async () => sink.records.length,
    outage: {
      down: async () => {
        down = true;
      },
      up: async () => {
        down = false;
      },
    },
    refusal: { arm: async () => undefined },
  };
};

sinkContract('scripted sink', openScriptedSink, { capabilities: ['outage', 'refusal'], callBudgetMs: 1_000, recoveryBudgetMs: 1_000 });
