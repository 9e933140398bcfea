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
  const receivedAt = receivedAtText.of(record.receivedAtMs);
  const eventTime = eventTimeText.of(record.eventTimeMs);
  return {
    key: record.key,
    value,
    timestamp: String(record.eventTimeMs),
    headers: hasEntries(record.meta)
      ? {
          ...record.meta,
          [HEADER.recordId]: record.id,
          [HEADER.source]: record.source,
          [HEADER.gatewayId]: gatewayId,
          [HEADER.stream]: record.stream,
          [HEADER.receivedAt]: receivedAt,
          [HEADER.eventTime]: eventTime,
        }
      : // The usual record has no meta: a literal with fixed keys is far cheaper to build than a spread.
        {
          'record-id': record.id,
          source: record.source,
          'gateway-id': gatewayId,
          stream: record.stream,
          'received-at': receivedAt,
          'event-time': eventTime,
        },
  };
}

function hasEntries(meta: Readonly<Record<string, string>>): boolean {
  for (const _ in meta) return true;
  return false;
}

/**
 * ISO-8601 text of a time, remembering the last one: the records of a batch were mostly received in the same
 * millisecond, and formatting a date costs more than the rest of the envelope.
 */
function isoTextCache(): { of(ms: number): string } {
  let lastMs = Number.NaN;
  let lastText = '';
  return {
    of(ms) {
      if (ms !== lastMs) {
        lastText = new Date(ms).toISOString();
        lastMs = ms;
      }
      return lastText;
    },
  };
}

const receivedAtText = isoTextCache();
const eventTimeText = isoTextCache();
