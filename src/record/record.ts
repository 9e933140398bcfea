// The normalized record: the one type every stage agrees on. Ingress adapters build NewRecords, the
// buffer turns them into StoredRecords (seq + stable id), the forwarder turns those into Kafka messages.

export type RecordSource = 'mqtt' | 'semtech-udp' | 'ttn' | 'serial-radio' | 'commands';

/** What an ingress adapter hands over. The buffer assigns seq and id. */
export interface NewRecord {
  /** Kafka key: the device id (MQTT device id, DevEUI hex, serial node id). */
  readonly key: string;
  /** Logical stream (e.g. `telemetry`); routes map it to a Kafka topic. */
  readonly stream: string;
  readonly source: RecordSource;
  /** Gateway wall clock when the record was accepted, ms since the epoch. */
  readonly receivedAtMs: number;
  /** When the reading was taken, ms since the epoch: the device's timestamp if plausible, else receivedAtMs. */
  readonly eventTimeMs: number;
  /**
   * A route's event_time_field, for the buffer to read the event time from the payload as it stores the record
   * (eventTimeOf in routes.ts; eventTimeMs is the fallback). The MQTT path sets it so that the scan of every
   * payload runs on the buffer's thread, not on the thread that parses MQTT; a stored record never has it.
   */
  readonly eventTimeField?: string | undefined;
  /** Application bytes, forwarded to Kafka unchanged. */
  readonly payload: Uint8Array;
  /** Small string facts about the reception (e.g. mqtt topic, qos); forwarded as Kafka headers. */
  readonly meta: Readonly<Record<string, string>>;
}

/** A committed record: seq orders it, id is stable across restarts (the dedupe key in a Kafka header). */
export interface StoredRecord extends NewRecord {
  readonly seq: number;
  readonly id: string;
  /** How many times a send of this record to Kafka has failed. */
  readonly attempts: number;
}

/** Bytes a record occupies for the buffer's byte bound: payload plus its metadata, roughly as stored. */
export function recordBytes(record: NewRecord): number {
  let bytes = record.payload.byteLength + record.key.length + record.stream.length;
  for (const name in record.meta) bytes += name.length + (record.meta[name]?.length ?? 0);
  return bytes;
}
