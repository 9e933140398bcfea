// Read-only look into a buffer file for `iotgw buffer stats|export`: a second SQLite connection opened with
// readonly + fileMustExist, safe beside the running gateway (WAL lets readers and the writer work at once).
// Records are read in seq pages, so an export of millions of rows never holds more than one page.
import { existsSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { errorMessage, GatewayError } from '../errors.ts';
import { SCHEMA_VERSION } from './migrations.ts';
import { readInstanceId, recordId } from './record-id.ts';

export interface BufferGroupCount {
  readonly source: string;
  readonly stream: string;
  readonly records: number;
  readonly bytes: number;
}

export interface BufferReport {
  readonly path: string;
  /** The database file, and its write-ahead log (committed records not yet checkpointed into the file). */
  readonly fileBytes: number;
  readonly walBytes: number;
  readonly schemaVersion: number;
  readonly instanceId: string | null;
  readonly depthRecords: number;
  readonly depthBytes: number;
  readonly oldestReceivedAtMs: number | null;
  readonly newestReceivedAtMs: number | null;
  /** Records that failed at least one send and are waiting for a retry. */
  readonly retriedRecords: number;
  readonly deadLetters: number;
  readonly deadLetterBytes: number;
  readonly deadLetterReasons: readonly { readonly reason: string; readonly records: number }[];
  /** Per source and stream, most records first. */
  readonly groups: readonly BufferGroupCount[];
}

/** One record as `buffer export` writes it (a JSON line). */
export interface ExportedRecord {
  readonly seq: number;
  /** The record-id Kafka header the gateway sends: consumers dedupe on it after a manual replay. */
  readonly id: string;
  readonly key: string;
  readonly stream: string;
  readonly source: string;
  readonly received_at: string;
  readonly event_time: string;
  readonly attempts: number;
  readonly meta: Readonly<Record<string, string>>;
  readonly payload_base64: string;
  /** The payload as text when it is valid UTF-8. */
  readonly payload_utf8?: string;
  readonly dead_letter_reason?: string;
  readonly dead_at?: string;
}

export interface BufferInspector {
  report(): BufferReport;
  count(table: 'records' | 'dead_letters'): number;
  /** Records in seq order, read `pageSize` rows at a time. */
  records(table: 'records' | 'dead_letters', pageSize?: number): Generator<ExportedRecord>;
  close(): void;
}

interface Row {
  seq: number;
  key: string;
  stream: string;
  source: string;
  received_at_ms: number;
  event_time_ms: number;
  payload: Buffer;
  meta: string;
  attempts: number;
  reason?: string;
  dead_at_ms?: number;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** A read-only, query-only connection to an existing buffer file (safe beside a running gateway: WAL). */
export function openBufferReadOnly(path: string): Database.Database {
  if (!existsSync(path)) {
    throw new GatewayError('BUFFER_MISSING', `no buffer file at ${path}: check buffer.path (has the gateway run with this config yet?)`, { retriable: false });
  }
  try {
    const db = new Database(path, { readonly: true, fileMustExist: true });
    db.pragma('query_only = ON');
    return db;
  } catch (error) {
    throw new GatewayError('BUFFER_OPEN', `cannot open buffer ${path} read-only: ${errorMessage(error)}`, { retriable: false, cause: error });
  }
}

export function openBufferInspector(path: string): BufferInspector {
  const db = openBufferReadOnly(path);
  const schemaVersion = db.pragma('user_version', { simple: true }) as number;
  const tables = new Set(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[]);
  if (!tables.has('records') || !tables.has('dead_letters')) {
    db.close();
    throw new GatewayError('BUFFER_OPEN', `${path} is not an iotgw buffer (no records table)`, { retriable: false });
  }
  if (schemaVersion > SCHEMA_VERSION) {
    db.close();
    throw new GatewayError('BUFFER_OPEN', `${path} has schema version ${schemaVersion}, newer than this iotgw understands (${SCHEMA_VERSION})`, {
      retriable: false,
    });
  }
  const instanceId = tables.has('buffer_info') ? readInstanceId(db) : null;

  function toExported(row: Row): ExportedRecord {
    let text: string | undefined;
    try {
      text = strictUtf8.decode(row.payload);
    } catch {
      text = undefined;
    }
    return {
      seq: row.seq,
      id: recordId(instanceId ?? 'unknown', row.seq),
      key: row.key,
      stream: row.stream,
      source: row.source,
      received_at: new Date(row.received_at_ms).toISOString(),
      event_time: new Date(row.event_time_ms).toISOString(),
      attempts: row.attempts,
      meta: JSON.parse(row.meta) as Record<string, string>,
      payload_base64: row.payload.toString('base64'),
      ...(text === undefined ? {} : { payload_utf8: text }),
      ...(row.reason === undefined ? {} : { dead_letter_reason: row.reason }),
      ...(row.dead_at_ms === undefined ? {} : { dead_at: new Date(row.dead_at_ms).toISOString() }),
    };
  }

  return {
    report() {
      const totals = db.prepare('SELECT count(*) AS records, coalesce(sum(bytes), 0) AS bytes FROM records').get() as { records: number; bytes: number };
      const dead = db.prepare('SELECT count(*) AS records, coalesce(sum(bytes), 0) AS bytes FROM dead_letters').get() as {
        records: number;
        bytes: number;
      };
      const fileSize = (file: string): number => (existsSync(file) ? statSync(file).size : 0);
      return {
        path,
        fileBytes: fileSize(path),
        walBytes: fileSize(`${path}-wal`),
        schemaVersion,
        instanceId,
        depthRecords: totals.records,
        depthBytes: totals.bytes,
        oldestReceivedAtMs: (db.prepare('SELECT received_at_ms FROM records ORDER BY seq LIMIT 1').pluck().get() as number | undefined) ?? null,
        newestReceivedAtMs: (db.prepare('SELECT received_at_ms FROM records ORDER BY seq DESC LIMIT 1').pluck().get() as number | undefined) ?? null,
        retriedRecords: db.prepare('SELECT count(*) FROM records WHERE attempts > 0').pluck().get() as number,
        deadLetters: dead.records,
        deadLetterBytes: dead.bytes,
        deadLetterReasons: db
          .prepare('SELECT reason, count(*) AS records FROM dead_letters GROUP BY reason ORDER BY records DESC')
          .all() as BufferReport['deadLetterReasons'],
        groups: db
          .prepare('SELECT source, stream, count(*) AS records, sum(bytes) AS bytes FROM records GROUP BY source, stream ORDER BY records DESC')
          .all() as BufferGroupCount[],
      };
    },

    count: (table) =>
      db
        .prepare(`SELECT count(*) FROM ${table === 'records' ? 'records' : 'dead_letters'}`)
        .pluck()
        .get() as number,

    *records(table, pageSize = 1000) {
      const page = db.prepare(`SELECT * FROM ${table === 'records' ? 'records' : 'dead_letters'} WHERE seq > ? ORDER BY seq LIMIT ?`);
      let after = 0;
      for (;;) {
        const rows = page.all(after, pageSize) as Row[];
        for (const row of rows) yield toExported(row);
        const last = rows.at(-1);
        if (last === undefined || rows.length < pageSize) return;
        after = last.seq;
      }
    },

    close: () => db.close(),
  };
}
