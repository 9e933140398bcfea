// Messages between the main thread (worker-buffer.ts) and the buffer's thread (buffer-worker.ts).
// Only plain data crosses: errors travel as {code, message, retriable} and are rebuilt on arrival.
import type { MessagePort } from 'node:worker_threads';
import type { NewRecord, RecordSource, StoredRecord } from '../record/record.ts';
import type { PackedOutcomes } from './append-result.ts';
import type { BufferStats, StateWrite } from './record-store.ts';

export type WorkerRequest =
  | {
      readonly id: number;
      readonly op: 'append';
      /** Group sizes, then the records of all groups in order, packed. */
      readonly sizes: readonly number[];
      readonly records: PackedRecords;
      readonly state: readonly StateWrite[];
    }
  | { readonly id: number; readonly op: 'readState'; readonly scope: string }
  | { readonly id: number; readonly op: 'lease'; readonly maxRecords: number; readonly maxBytes: number }
  | { readonly id: number; readonly op: 'ack' | 'release'; readonly seqs: readonly number[] }
  | { readonly id: number; readonly op: 'deadLetter'; readonly seqs: readonly number[]; readonly reason: string }
  | { readonly id: number; readonly op: 'close' };

/** The answer to an append: the seqs in one transferred Float64Array, the refused groups with their errors. */
export type AppendReply = PackedOutcomes<SerializedError>;

/** The answer to a lease: the records without payloads, and the payloads packed. */
export interface LeaseReply {
  readonly records: readonly WithoutPayload<StoredRecord>[];
  readonly payloads: PackedPayloads;
}

export interface SerializedError {
  readonly code: string;
  readonly message: string;
  readonly retriable: boolean;
}

/** id 0 answers the worker's start: the store opened (value = its durability settings) or failed. */
export type WorkerReply =
  | {
      readonly id: number;
      readonly ok: true;
      readonly value: unknown;
      /** Stats after the operation (null only for close). */
      readonly stats: BufferStats | null;
      /** Records drop_oldest deleted during the operation. */
      readonly dropped: number;
    }
  | { readonly id: number; readonly ok: false; readonly error: SerializedError }
  /** Unasked: the companion changed the store (acked, dead-lettered) and these are the figures now. */
  | { readonly id: typeof STATS_UPDATE; readonly ok: true; readonly value: null; readonly stats: BufferStats; readonly dropped: 0 };

/** The id of a reply nobody asked for: a stats update after the companion's own work on the store. */
export const STATS_UPDATE = -1;

/**
 * Code that runs beside the store on its thread (the forwarder, so Kafka sends do not compete with MQTT
 * parsing and leases need no copies across threads). The module is imported by URL, so the buffer does not
 * depend on what runs beside it; it talks to its own side on the main thread over `port`.
 */
export interface CompanionSpec {
  /** URL of a module exporting startCompanion(context: CompanionContext): Companion. */
  readonly moduleUrl: string;
  /** Plain data for the companion (its options). */
  readonly data: unknown;
  readonly port: MessagePort;
}

/** What startCompanion() gets: the store itself (synchronous; one operation at a time on this thread). */
export interface CompanionContext {
  readonly store: import('./record-store.ts').RecordStore;
  readonly data: unknown;
  readonly port: MessagePort;
}

export interface Companion {
  /** Records were committed (the forwarder wakes). */
  afterAppend(): void;
}

export interface BufferWorkerData {
  readonly store: import('./sqlite-store.ts').SqliteStoreOptions;
  readonly companion: CompanionSpec | null;
}

/**
 * Payloads cross the thread boundary packed into one transferred ArrayBuffer. Structured clone copies a
 * Buffer's whole backing ArrayBuffer, and an MQTT payload is a slice of a socket chunk many times its
 * size: cloning them one by one copied megabytes per commit.
 */
export interface PackedPayloads {
  readonly bytes: ArrayBuffer;
  /** [offset, length] per record, in order. */
  readonly spans: readonly number[];
}

export function packPayloads(payloads: readonly Uint8Array[]): PackedPayloads {
  let total = 0;
  for (const payload of payloads) total += payload.byteLength;
  const bytes = new Uint8Array(total);
  const spans: number[] = [];
  let offset = 0;
  for (const payload of payloads) {
    bytes.set(payload, offset);
    spans.push(offset, payload.byteLength);
    offset += payload.byteLength;
  }
  return { bytes: bytes.buffer, spans };
}

/** Views into the packed bytes (no copy). */
export function unpackPayloads(packed: PackedPayloads): Buffer[] {
  const payloads: Buffer[] = [];
  for (let index = 0; index < packed.spans.length; index += 2) {
    payloads.push(Buffer.from(packed.bytes, packed.spans[index] as number, packed.spans[index + 1] as number));
  }
  return payloads;
}

/** A record as it crosses: everything but the payload, which travels in PackedPayloads. */
export type WithoutPayload<T extends { payload: Uint8Array }> = Omit<T, 'payload'>;

/**
 * New records cross to the buffer's thread as columns: keys in an array, streams and sources as indexes into
 * their few distinct values (a commit of thousands of records has a handful of each), both times of every
 * record in one transferred Float64Array, metas only where there is one, payloads packed. Structured clone
 * of one object per record (and the rest-spread that made it) cost more on the main thread than the SQLite
 * insert does on the other, and a string per record and column was most of what was left.
 */
export interface PackedRecords {
  readonly keys: readonly string[];
  /** The distinct streams, and per record the index of its own there. */
  readonly streamNames: readonly string[];
  readonly streamIndexes: Int32Array;
  /** The distinct sources, and per record the index of its own there. */
  readonly sourceNames: readonly RecordSource[];
  readonly sourceIndexes: Int32Array;
  /** receivedAtMs, eventTimeMs per record, in order. */
  readonly times: Float64Array;
  /** The distinct eventTimeFields of these records, and per record the index of its own there (-1: none). */
  readonly eventTimeFields: readonly string[];
  readonly eventTimeFieldIndexes: Int32Array;
  /** The records with a non-empty meta (the usual meta is empty): their indexes, and their metas. */
  readonly metaIndexes: readonly number[];
  readonly metas: readonly Readonly<Record<string, string>>[];
  readonly payloads: PackedPayloads;
}

/** Indexes of values into their distinct list, which grows as new ones come. */
function dictionary<T extends string>(): { readonly names: T[]; indexOf(value: T): number } {
  const names: T[] = [];
  const indexes = new Map<T, number>();
  return {
    names,
    indexOf(value) {
      let index = indexes.get(value);
      if (index === undefined) {
        index = names.push(value) - 1;
        indexes.set(value, index);
      }
      return index;
    },
  };
}

export function packRecords(records: readonly NewRecord[]): { readonly packed: PackedRecords; readonly transfer: ArrayBuffer[] } {
  const count = records.length;
  const keys = new Array<string>(count);
  const streams = dictionary<string>();
  const streamIndexes = new Int32Array(count);
  const sources = dictionary<RecordSource>();
  const sourceIndexes = new Int32Array(count);
  const metaIndexes: number[] = [];
  const metas: Readonly<Record<string, string>>[] = [];
  const times = new Float64Array(count * 2);
  const eventTimeFields = dictionary<string>();
  const eventTimeFieldIndexes = new Int32Array(count);
  const payloads = new Array<Uint8Array>(count);
  for (let index = 0; index < count; index++) {
    const record = records[index] as NewRecord;
    keys[index] = record.key;
    streamIndexes[index] = streams.indexOf(record.stream);
    sourceIndexes[index] = sources.indexOf(record.source);
    if (hasEntries(record.meta)) {
      metaIndexes.push(index);
      metas.push(record.meta);
    }
    times[index * 2] = record.receivedAtMs;
    times[index * 2 + 1] = record.eventTimeMs;
    const field = record.eventTimeField;
    eventTimeFieldIndexes[index] = field === undefined ? -1 : eventTimeFields.indexOf(field);
    payloads[index] = record.payload;
  }
  const packedPayloads = packPayloads(payloads);
  const columns = [packedPayloads.bytes, times.buffer, eventTimeFieldIndexes.buffer, streamIndexes.buffer, sourceIndexes.buffer] as ArrayBuffer[];
  return {
    packed: {
      keys,
      streamNames: streams.names,
      streamIndexes,
      sourceNames: sources.names,
      sourceIndexes,
      times,
      eventTimeFields: eventTimeFields.names,
      eventTimeFieldIndexes,
      metaIndexes,
      metas,
      payloads: packedPayloads,
    },
    transfer: columns,
  };
}

/** Shared by every record without meta (records are never mutated). */
const NO_META: Readonly<Record<string, string>> = Object.freeze({});

export function unpackRecords(packed: PackedRecords): NewRecord[] {
  const payloads = unpackPayloads(packed.payloads);
  const metaOf = new Map<number, Readonly<Record<string, string>>>();
  for (let at = 0; at < packed.metaIndexes.length; at++) metaOf.set(packed.metaIndexes[at] as number, packed.metas[at] as Readonly<Record<string, string>>);
  const records = new Array<NewRecord>(packed.keys.length);
  for (let index = 0; index < records.length; index++) {
    records[index] = {
      key: packed.keys[index] as string,
      stream: packed.streamNames[packed.streamIndexes[index] as number] as string,
      source: packed.sourceNames[packed.sourceIndexes[index] as number] as RecordSource,
      receivedAtMs: packed.times[index * 2] as number,
      eventTimeMs: packed.times[index * 2 + 1] as number,
      eventTimeField: packed.eventTimeFields[packed.eventTimeFieldIndexes[index] as number],
      payload: payloads[index] as Buffer,
      meta: metaOf.size === 0 ? NO_META : (metaOf.get(index) ?? NO_META),
    };
  }
  return records;
}

function hasEntries(meta: Readonly<Record<string, string>>): boolean {
  for (const _ in meta) return true;
  return false;
}
