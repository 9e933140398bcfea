// Inserts an append's records CHUNK_ROWS at a time with one multi-row INSERT, across groups (most groups are
// one MQTT publish): a statement step per record was a fifth of the buffer thread under load, and one step
// for 32 rows costs about half as much per row. Rows wait here until a chunk is full; the store flushes the
// rest with the single-row INSERT at the end of the append and before anything else touches the table.
import type Database from 'better-sqlite3';
import type { NewRecord, StoredRecord } from '../record/record.ts';
import { eventTimeOf } from '../record/routes.ts';
import { recordId } from './record-id.ts';

const CHUNK_ROWS = 32;
const COLUMNS = 8;
const INSERT = 'INSERT INTO records (key, stream, source, received_at_ms, event_time_ms, payload, meta, bytes) VALUES ';
const ROW = '(?, ?, ?, ?, ?, ?, ?, ?)';
/** The stored text of an empty meta (most records): the store skips the parse for it. */
export const EMPTY_META = '{}';
const NO_SEQS = new Float64Array(0);
const NOTHING: Inserted = { records: [], sizes: [] };

/** What the append inserted, in seq order, with each record's size: for the lease tail once it has committed. */
export interface Inserted {
  readonly records: StoredRecord[];
  readonly sizes: number[];
}

export interface ChunkedInsert {
  /**
   * Starts an append: each record's seq is written into `seqs` at the index add() gives it. The lease tail's
   * records are built only when `tailing` (a forwarder that is behind reads the file anyway).
   */
  begin(seqs: Float64Array, tailing: boolean): void;
  /** Queues a record for insertion (`index`: its position in the append); inserts the chunk once full. */
  add(record: NewRecord, bytes: number, index: number): void;
  /** Inserts the queued rows now. Until then they are not in the table, though the depth counters hold them. */
  flush(): void;
  /** Ends the append (committed or not) and hands over what it inserted. */
  end(): Inserted;
}

function metaText(meta: Readonly<Record<string, string>>): string {
  for (const _ in meta) return JSON.stringify(meta);
  return EMPTY_META;
}

export function createChunkedInsert(db: Database.Database, instanceId: string): ChunkedInsert {
  const insertOne = db.prepare(INSERT + ROW);
  const insertChunk = db.prepare(INSERT + new Array(CHUNK_ROWS).fill(ROW).join(', '));
  // One argument array for every chunk: better-sqlite3 copies each value into SQLite as it binds (strings and
  // blobs as SQLITE_TRANSIENT) and keeps no reference to the array, so refilling it in place is safe.
  const args: unknown[] = new Array(CHUNK_ROWS * COLUMNS).fill(null);
  const rows: (NewRecord | null)[] = new Array(CHUNK_ROWS).fill(null);
  const rowBytes: number[] = new Array(CHUNK_ROWS).fill(0);
  const rowIndexes: number[] = new Array(CHUNK_ROWS).fill(0);
  let queued = 0;
  let seqs: Float64Array = NO_SEQS;
  let tailing = false;
  let inserted = NOTHING;

  /** Row `row` of the queue got `seq`. */
  function settle(row: number, seq: number): void {
    seqs[rowIndexes[row] as number] = seq;
    if (!tailing) return;
    const record = rows[row] as NewRecord;
    // Every field listed, in toStored's order (sqlite-store.ts): records from the tail and from the file
    // then share one object shape, so the forwarder's code reading them stays monomorphic.
    inserted.records.push({
      seq,
      id: recordId(instanceId, seq),
      key: record.key,
      stream: record.stream,
      source: record.source,
      receivedAtMs: record.receivedAtMs,
      eventTimeMs: args[row * COLUMNS + 4] as number, // as stored: read from the payload if the record named a field
      payload: record.payload,
      meta: record.meta,
      attempts: 0,
    });
    inserted.sizes.push(rowBytes[row] as number);
  }

  function flush(): void {
    for (let row = 0; row < queued; row++) {
      const at = row * COLUMNS;
      const result = insertOne.run(args[at], args[at + 1], args[at + 2], args[at + 3], args[at + 4], args[at + 5], args[at + 6], args[at + 7]);
      settle(row, Number(result.lastInsertRowid));
    }
    queued = 0;
  }

  return {
    begin(target, tail) {
      seqs = target;
      tailing = tail;
      queued = 0;
      inserted = tail ? { records: [], sizes: [] } : NOTHING;
    },

    add(record, bytes, index) {
      const at = queued * COLUMNS;
      args[at] = record.key;
      args[at + 1] = record.stream;
      args[at + 2] = record.source;
      args[at + 3] = record.receivedAtMs;
      args[at + 4] = eventTimeOf(record);
      args[at + 5] = record.payload;
      args[at + 6] = metaText(record.meta);
      args[at + 7] = bytes;
      rows[queued] = record;
      rowBytes[queued] = bytes;
      rowIndexes[queued] = index;
      queued++;
      if (queued < CHUNK_ROWS) return;
      // The rows of one INSERT get consecutive rowids: seq is AUTOINCREMENT and this transaction holds the
      // write lock, so nothing else can take a rowid between them. lastInsertRowid is the chunk's last row.
      const first = Number(insertChunk.run(args).lastInsertRowid) - CHUNK_ROWS + 1;
      for (let row = 0; row < CHUNK_ROWS; row++) settle(row, first + row);
      queued = 0;
    },

    flush,

    end() {
      const done = inserted;
      inserted = NOTHING;
      seqs = NO_SEQS;
      queued = 0;
      // Payloads are views into the whole commit's packed bytes: holding one would keep them all alive.
      args.fill(null);
      rows.fill(null);
      return done;
    },
  };
}
