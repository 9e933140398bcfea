// StoredRecord -> Kafka message. Key = device id (so one device stays on one partition), value = the
// device's bytes unchanged, timestamp = event time, headers = where the record came from and its stable
// id, so consumers can drop the duplicates an at-least-once gateway may produce after a crash.
import type { StoredRecord } from './record.ts';

export interface KafkaMessage {
  readonly key: string;
  readonly value: Buffer;
  /** ms since the epoch as a decimal string (kafkajs' form). */
  readonly timestamp: string;
  readonly headers: Record<string, string>;
}

export const HEADER = {
  recordId: 'record-id',
  source: 'source',
  gatewayId: 'gateway-id',
  stream: 'stream',
  receivedAt: 'received-at',
  eventTime: 'event-time',
} as const;

export function toKafkaMessage(record: StoredRecord, gatewayId: string): KafkaMessage {
  const payload = record.payload;
  const value = Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  return {
    key: record.key,
    value,
    timestamp: String(record.eventTimeMs),
    headers: {
      ...record.meta,
      [HEADER.recordId]: record.id,
      [HEADER.source]: record.source,
      [HEADER.gatewayId]: gatewayId,
      [HEADER.stream]: record.stream,
      [HEADER.receivedAt]: new Date(record.receivedAtMs).toISOString(),
      [HEADER.eventTime]: new Date(record.eventTimeMs).toISOString(),
    },
  };
}
