// Scenario 8: bytes on the wire per record for each kafka.compression, on realistic meter readings (the
// firmware-sim fleet's JSON, as MQTT devices send it, with the headers the gateway adds), and the CPU each
// codec costs per record. A batch is what the forwarder sends to one partition: its record batch is encoded
// by kafkajs' own produce encoder, so the figure is the record batch as it goes on the wire.
import { createRequire } from 'node:module';
import { createFleet } from '../../firmware-sim/fleet.ts';
import { type Compression, useCompression } from '../../src/forward/compression.ts';
import { toKafkaMessage } from '../../src/record/kafka-envelope.ts';
import type { StoredRecord } from '../../src/record/record.ts';
import { say } from './bench-tools.ts';

const require = createRequire(import.meta.url);
// kafkajs' produce v3 record encoding (not part of its public API: the bench only measures with it).
const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0') as {
  RecordBatch(options: { compression: number; records: unknown[]; lastOffsetDelta: number }): Promise<{ size(): number }>;
};
const Record = require('kafkajs/src/protocol/recordBatch/record/v0') as (options: Record<string, unknown>) => unknown;

const CODECS: readonly Compression[] = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];

/** Records per batch: about what one partition gets per send from a 1,000-device fleet at 2,500 msg/s. */
const BATCH_RECORDS = 400;
const BATCHES = 25;

export async function benchCompression(): Promise<void> {
  const batches = realisticBatches();
  say('');
  say(`8. compression (kafka.compression): record batches of ${BATCH_RECORDS} meter readings with the gateway's headers, ${BATCHES} batches`);
  say(`   ${'codec'.padEnd(8)} ${'bytes/record'.padStart(12)} ${'vs none'.padStart(8)} ${'µs/record'.padStart(10)}`);
  let plain = 0;
  // One pass first, so the timed one runs on warm (optimized) code for every codec alike.
  for (const compression of CODECS) await encodeAll(batches, await useCompression(compression));
  for (const compression of CODECS) {
    const startedAt = process.cpuUsage();
    const bytes = await encodeAll(batches, await useCompression(compression));
    const cpu = process.cpuUsage(startedAt);
    const perRecord = bytes / (BATCHES * BATCH_RECORDS);
    if (compression === 'none') plain = perRecord;
    const usPerRecord = (cpu.user + cpu.system) / (BATCHES * BATCH_RECORDS);
    say(
      `   ${compression.padEnd(8)} ${perRecord.toFixed(1).padStart(12)} ${`${((100 * perRecord) / plain).toFixed(0)}%`.padStart(8)} ${usPerRecord.toFixed(1).padStart(10)}`,
    );
  }
  say('   (µs/record: encoding the batch, compression included; "none" is the encoding alone)');
}

/** Encodes every batch as the producer would; returns the bytes. */
async function encodeAll(batches: readonly ReturnType<typeof toKafkaMessage>[][], type: number): Promise<number> {
  let bytes = 0;
  for (const records of batches) {
    const batch = await RecordBatch({ compression: type, records: records.map(recordOf), lastOffsetDelta: records.length - 1 });
    bytes += batch.size();
  }
  return bytes;
}

function recordOf(message: ReturnType<typeof toKafkaMessage>, index: number): unknown {
  return Record({ key: message.key, value: message.value, headers: message.headers, offsetDelta: index, timestampDelta: 0 });
}

/** Readings of a mixed city fleet (meters, parking, lamps), interleaved as they arrive, as the gateway stores them. */
function realisticBatches(): ReturnType<typeof toKafkaMessage>[][] {
  const fleet = createFleet({ devices: 1000, seed: 7 });
  const start = Date.parse('2026-12-06T10:00:00Z');
  const batches: ReturnType<typeof toKafkaMessage>[][] = [];
  let seq = 0;
  for (let batch = 0; batch < BATCHES; batch++) {
    const messages: ReturnType<typeof toKafkaMessage>[] = [];
    for (let index = 0; index < BATCH_RECORDS; index++) {
      const device = fleet[(batch * BATCH_RECORDS + index) % fleet.length] as (typeof fleet)[number];
      const atMs = start + seq * 400;
      const record: StoredRecord = {
        seq: ++seq,
        id: `5f3a9c21d0e4-${seq}`,
        key: device.id,
        stream: 'telemetry',
        source: 'mqtt',
        receivedAtMs: atMs + 12,
        eventTimeMs: atMs,
        payload: Buffer.from(JSON.stringify(device.nextReading(atMs))),
        meta: {},
        attempts: 0,
      };
      messages.push(toKafkaMessage(record, 'gw-meter-room-1'));
    }
    batches.push(messages);
  }
  return batches;
}
