// The durable store: a SQLite file in WAL mode with synchronous=FULL, so a commit survives power loss
// (better-sqlite3 builds WAL databases to default to NORMAL, which may roll back a commit on power loss).
// Records are kept in acceptance order (seq) until Kafka acknowledges them.
import { BufferFullError, GatewayError, errorMessage } from '../errors.ts';
import { type NewRecord, type RecordSource, type StoredRecord, recordBytes } from '../record/record.ts';
import { type PackedOutcomes, type RefusedGroup, unpackOutcomes } from './append-result.ts';
import { openBufferFile } from './buffer-file.ts';
import { createChunkedInsert, EMPTY_META } from './chunked-insert.ts';
import { createLeaseTail, type LeaseTailLimits } from './lease-tail.ts';
import { createOrderGuard } from './order-guard.ts';
import { ensureInstanceId, recordId } from './record-id.ts';
import type { BufferStats, RecordStore, RecordStoreLimits, StateWrite } from './record-store.ts';

export interface SqliteStoreOptions extends RecordStoreLimits {
  readonly path: string;
  /** Bounds of the in-memory lease tail (lease-tail.ts); 0 records makes every lease read the file. */
  readonly leaseTail?: LeaseTailLimits;
}

export interface SqliteStoreDeps {
  /** Told once per episode when drop_oldest deletes records (the caller logs and counts). */
  readonly onDrop?: (records: number) => void;
  readonly nowMs?: () => number;
}

/** A leased row as better-sqlite3's raw mode returns it (arrays: half the cost of an object per row), in RECORD_COLUMNS order. */
type RecordRow = [
  seq: number,
  key: string,
  stream: string,
  source: RecordSource,
  receivedAtMs: number,
  eventTimeMs: number,
  payload: Buffer,
  meta: string,
  attempts: number,
  bytes: number,
];
const RECORD_COLUMNS = 'seq, key, stream, source, received_at_ms, event_time_ms, payload, meta, attempts, bytes';
const BYTES = 9;

export interface SqliteStore extends RecordStore {
  /** append() with its outcomes packed (append-result.ts): what the buffer's thread sends back. */
  appendPacked(groups: readonly (readonly NewRecord[])[], state?: readonly StateWrite[]): PackedOutcomes<BufferFullError>;
  /** The settings the guarantee rests on, read back from SQLite (not assumed). */
  durability(): { readonly journalMode: string; readonly synchronous: 'OFF' | 'NORMAL' | 'FULL' | 'EXTRA' };
}

const SYNCHRONOUS_NAMES = ['OFF', 'NORMAL', 'FULL', 'EXTRA'] as const;
/** Most records carry no meta: one shared, frozen object for them all (nothing mutates a record's meta). */
const NO_META: Readonly<Record<string, string>> = Object.freeze({});
/** What the lease tail may hold before the forwarder counts as behind (and reads SQLite): a few seconds of a busy gateway. */
const LEASE_TAIL_LIMITS = { maxRecords: 20_000, maxBytes: 4 * 1024 * 1024 };

export function createSqliteStore(options: SqliteStoreOptions, deps: SqliteStoreDeps = {}): SqliteStore {
  const nowMs = deps.nowMs ?? Date.now;
  const db = openBufferFile(options.path);
  const instanceId = ensureInstanceId(db);

  const inserts = createChunkedInsert(db, instanceId);
  const selectFrom = db.prepare(`SELECT ${RECORD_COLUMNS} FROM records WHERE seq > ? ORDER BY seq LIMIT ?`).raw(true);
  const deleteOne = db.prepare('DELETE FROM records WHERE seq = ? RETURNING bytes');
  // An acknowledged batch is deleted by runs of consecutive seqs, one statement per run: a lease takes the oldest
  // records in seq order, so a batch is mostly one run (a JSON list of every seq through json_each cost 5 % of
  // the buffer thread).
  const deleteRun = db.prepare('DELETE FROM records WHERE seq BETWEEN ? AND ? RETURNING bytes').pluck();
  const deleteMany = db.prepare('DELETE FROM records WHERE seq IN (SELECT value FROM json_each(?)) RETURNING bytes').pluck();
  const deleteOldest = db.prepare('DELETE FROM records WHERE seq IN (SELECT seq FROM records ORDER BY seq LIMIT ?) RETURNING bytes');
  const bumpAttempts = db.prepare('UPDATE records SET attempts = attempts + 1 WHERE seq = ?');
  const moveToDeadLetters = db.prepare(
    `INSERT OR REPLACE INTO dead_letters
       SELECT seq, key, stream, source, received_at_ms, event_time_ms, payload, meta, bytes, attempts, ?, ?
       FROM records WHERE seq = ?`,
  );
  const upsertState = db.prepare('INSERT INTO device_state (scope, key, value) VALUES (?, ?, ?) ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value');
  const deleteState = db.prepare('DELETE FROM device_state WHERE scope = ? AND key = ?');
  const selectState = db.prepare('SELECT key, value FROM device_state WHERE scope = ?');
  const selectOldest = db.prepare('SELECT received_at_ms FROM records ORDER BY seq LIMIT 1').pluck();
  const countDeadLetters = db.prepare('SELECT count(*) FROM dead_letters').pluck();
  const totals = db.prepare('SELECT count(*) AS records, coalesce(sum(bytes), 0) AS bytes FROM records').get() as {
    records: number;
    bytes: number;
  };

  let depthRecords = totals.records;
  let depthBytes = totals.bytes;
  let droppedRecords = 0;
  let lastDropped = 0;
  let deadLetters = countDeadLetters.get() as number;
  /** Highest seq handed out by lease(); records at or below it are in flight. Not persisted: after a restart, all is re-sent. */
  let leaseCursor = 0;
  let closed = false;
  const tail = createLeaseTail(options.leaseTail ?? LEASE_TAIL_LIMITS);
  /** The sizes of the records of the group being appended (reused: most appends hold thousands of groups). */
  const sizes: number[] = [];

  const appendTransaction = db.transaction((groups: readonly (readonly NewRecord[])[], state: readonly StateWrite[]): PackedOutcomes<BufferFullError> => {
    for (const write of state) {
      if (write.value === null) deleteState.run(write.scope, write.key);
      else upsertState.run(write.scope, write.key, write.value);
    }
    let total = 0;
    for (const group of groups) total += group.length;
    const seqs = new Float64Array(total);
    const refused: RefusedGroup<BufferFullError>[] = [];
    const order = createOrderGuard();
    let droppedNow = 0;
    // A forwarder that is behind reads the file anyway: build the tail's records only when it will take them.
    inserts.begin(seqs, tail.exact());
    let next = 0;
    for (let index = 0; index < groups.length; index++) {
      const group = groups[index] as readonly NewRecord[];
      const first = next;
      next += group.length;
      let groupBytes = 0;
      for (let row = 0; row < group.length; row++) {
        const size = recordBytes(group[row] as NewRecord);
        sizes[row] = size;
        groupBytes += size;
      }
      const behindRefused = order.refusedBefore(group);
      if (behindRefused !== null) {
        refused.push({ group: index, error: behindRefused });
        continue;
      }
      if (group.length > options.maxRecords || groupBytes > options.maxBytes) {
        const error = new BufferFullError(`${group.length} records (${groupBytes} bytes) exceed the buffer's bounds`);
        refused.push({ group: index, error: order.refused(group, error) });
        continue;
      }
      if (!fits(group.length, groupBytes)) {
        if (options.whenFull === 'reject') {
          refused.push({ group: index, error: order.refused(group, fullError()) });
          continue;
        }
        // The depth counters include the queued rows: the DELETE must find them in the table, as it did when
        // every group was inserted at once (with nothing older left, it reaches this append's earlier groups).
        inserts.flush();
        droppedNow += dropOldestUntilFits(group.length, groupBytes);
      }
      for (let row = 0; row < group.length; row++) inserts.add(group[row] as NewRecord, sizes[row] as number, first + row);
      depthRecords += group.length;
      depthBytes += groupBytes;
    }
    inserts.flush();
    droppedRecords += droppedNow;
    lastDropped = droppedNow;
    return { seqs, refused };
  });

  /**
   * Runs a commit that may be lost in a power cut without breaking a promise: deleting acknowledged records
   * (a lost delete sends them again: a duplicate with the same record id) and counting attempts. In WAL mode
   * with synchronous=NORMAL the commit skips its fsync (one per Kafka batch, 0.3 ms on an SSD, 5-20 ms on an
   * SD card, during which this thread forwards nothing); the next append's fsync makes it durable with it.
   */
  function withoutFsync<T>(run: () => T): T {
    db.pragma('synchronous = NORMAL');
    try {
      return run();
    } finally {
      db.pragma('synchronous = FULL');
    }
  }

  /** Runs a transaction; if SQLite rolls it back, the in-memory counters go back with it. */
  function transact<T>(run: () => T): T {
    const saved = { depthRecords, depthBytes, droppedRecords, deadLetters };
    try {
      return run();
    } catch (error) {
      ({ depthRecords, depthBytes, droppedRecords, deadLetters } = saved);
      throw error;
    }
  }

  function fits(records: number, bytes: number): boolean {
    return depthRecords + records <= options.maxRecords && depthBytes + bytes <= options.maxBytes;
  }

  function fullError(): BufferFullError {
    return new BufferFullError(
      `buffer full (${depthRecords} of ${options.maxRecords} records, ${depthBytes} of ${options.maxBytes} bytes): Kafka has not taken records fast enough; new records are refused until it does`,
    );
  }

  function dropOldestUntilFits(records: number, bytes: number): number {
    let dropped = 0;
    while (!fits(records, bytes) && depthRecords > 0) {
      const deleted = deleteOldest.all(Math.max(1, Math.min(1000, depthRecords + records - options.maxRecords))) as { bytes: number }[];
      for (const row of deleted) depthBytes -= row.bytes;
      depthRecords -= deleted.length;
      dropped += deleted.length;
    }
    return dropped;
  }

  const ackTransaction = db.transaction((seqs: readonly number[]) => {
    // Seqs dropped by drop_oldest while in flight are simply not there any more.
    const runs = consecutiveRuns(seqs);
    // Scattered seqs (lanes split the buffer by device) are deleted in one statement rather than a run each.
    if (runs.length > 16) {
      forget(deleteMany.all(JSON.stringify(seqs)) as number[]);
      return;
    }
    for (let index = 0; index < runs.length; index += 2) forget(deleteRun.all(runs[index], runs[index + 1]) as number[]);
  });

  function forget(sizes: readonly number[]): void {
    for (const size of sizes) depthBytes -= size;
    depthRecords -= sizes.length;
  }

  const releaseTransaction = db.transaction((seqs: readonly number[]) => {
    for (const seq of seqs) bumpAttempts.run(seq);
  });

  const deadLetterTransaction = db.transaction((seqs: readonly number[], reason: string) => {
    const at = nowMs();
    for (const seq of seqs) {
      if (moveToDeadLetters.run(reason, at, seq).changes === 0) continue;
      const row = deleteOne.get(seq) as { bytes: number } | undefined;
      if (row === undefined) continue;
      depthRecords -= 1;
      depthBytes -= row.bytes;
      deadLetters += 1;
    }
  });

  function toStored([seq, key, stream, source, receivedAtMs, eventTimeMs, payload, meta, attempts]: RecordRow): StoredRecord {
    return {
      seq,
      id: recordId(instanceId, seq),
      key,
      stream,
      source,
      receivedAtMs,
      eventTimeMs,
      payload,
      // Most records carry no meta: skip the parse for the common '{}' and share one frozen object.
      meta: meta === EMPTY_META ? NO_META : (JSON.parse(meta) as Record<string, string>),
      attempts,
    };
  }

  /** The records above the lease cursor, from the file; once a read reaches the end, the tail takes over. */
  function leaseFromFile(maxRecords: number, maxBytes: number): StoredRecord[] {
    const leased: StoredRecord[] = [];
    try {
      const rows = selectFrom.all(leaseCursor, maxRecords) as RecordRow[];
      let bytes = 0;
      for (const row of rows) {
        if (leased.length > 0 && bytes + row[BYTES] > maxBytes) break;
        bytes += row[BYTES];
        leased.push(toStored(row));
      }
      if (rows.length < maxRecords && leased.length === rows.length) tail.caughtUp();
    } catch (error) {
      // A failed read (an I/O error on a flaky SD card) is a storage error to retry, never a crash.
      throw storageError(error, options.path, 'lease');
    }
    return leased;
  }

  function appendPacked(groups: readonly (readonly NewRecord[])[], state: readonly StateWrite[] = []): PackedOutcomes<BufferFullError> {
    assertOpen();
    let packed: PackedOutcomes<BufferFullError>;
    try {
      packed = transact(() => appendTransaction(groups, state));
    } catch (error) {
      inserts.end();
      throw storageError(error, options.path, 'append');
    }
    const inserted = inserts.end();
    // drop_oldest may have deleted records the tail holds.
    if (lastDropped > 0) tail.invalidate();
    tail.appended(inserted.records, inserted.sizes);
    if (lastDropped > 0) deps.onDrop?.(lastDropped);
    return packed;
  }

  let lastOldestMs: number | null = null;
  /** For metrics and health: a failed read keeps the last figure rather than failing whoever asked. */
  function oldestReceivedAtMs(): number | null {
    if (depthRecords === 0) return null;
    try {
      lastOldestMs = (selectOldest.get() as number | undefined) ?? null;
    } catch {
      // An I/O error here is reported by the operations that need the data.
    }
    return lastOldestMs;
  }

  function assertOpen(): void {
    if (closed) throw new GatewayError('BUFFER_CLOSED', `buffer ${options.path} is closed`, { retriable: false });
  }

  return {
    append(groups, state = []) {
      const packed = appendPacked(groups, state);
      return unpackOutcomes(
        groups.map((group) => group.length),
        packed,
        (error) => error,
      );
    },

    appendPacked,

    readState(scope) {
      assertOpen();
      const rows = selectState.all(scope) as { key: string; value: string }[];
      return new Map(rows.map((row) => [row.key, row.value]));
    },

    lease(maxRecords, maxBytes) {
      assertOpen();
      let leased = tail.take(maxRecords, maxBytes);
      if (leased === null) leased = leaseFromFile(maxRecords, maxBytes);
      const last = leased.at(-1);
      if (last !== undefined) leaseCursor = last.seq;
      return leased;
    },

    ack(seqs) {
      assertOpen();
      try {
        transact(() => withoutFsync(() => ackTransaction(seqs)));
      } catch (error) {
        throw storageError(error, options.path, 'ack');
      }
    },

    release(seqs) {
      assertOpen();
      if (seqs.length === 0) return;
      leaseCursor = Math.min(leaseCursor, Math.min(...seqs) - 1);
      tail.invalidate();
      try {
        withoutFsync(() => releaseTransaction(seqs));
      } catch (error) {
        // The attempt count is bookkeeping only; the records are back in line either way.
        throw storageError(error, options.path, 'release');
      }
    },

    deadLetter(seqs, reason) {
      assertOpen();
      tail.invalidate();
      try {
        transact(() => deadLetterTransaction(seqs, reason));
      } catch (error) {
        throw storageError(error, options.path, 'dead-letter');
      }
    },

    stats(): BufferStats {
      assertOpen();
      return { depthRecords, depthBytes, oldestReceivedAtMs: oldestReceivedAtMs(), deadLetters, droppedRecords };
    },

    durability() {
      assertOpen();
      const synchronous = db.pragma('synchronous', { simple: true }) as number;
      return { journalMode: String(db.pragma('journal_mode', { simple: true })), synchronous: SYNCHRONOUS_NAMES[synchronous] ?? 'OFF' };
    },

    close() {
      if (closed) return;
      closed = true;
      db.close();
    },
  };
}

/** SQLITE_FULL means the disk (or file system quota) is full: the same treatment as a full buffer. */
function storageError(error: unknown, path: string, operation: string): GatewayError {
  if (error instanceof GatewayError) return error;
  const code = (error as { code?: unknown }).code;
  if (code === 'SQLITE_FULL') {
    return new BufferFullError(`disk full: cannot ${operation} in buffer ${path}; free space on its file system (see README, "Full disk")`, error);
  }
  return new GatewayError('BUFFER_IO', `buffer ${path}: ${operation} failed: ${errorMessage(error)}`, {
    retriable: true,
    cause: error,
  });
}

/** [first, last, first, last, ...] of the runs of consecutive integers in `seqs`, in their order. */
export function consecutiveRuns(seqs: readonly number[]): number[] {
  const runs: number[] = [];
  for (let index = 0; index < seqs.length; index++) {
    const seq = seqs[index] as number;
    if (runs.length > 0 && runs[runs.length - 1] === seq - 1) runs[runs.length - 1] = seq;
    else runs.push(seq, seq);
  }
  return runs;
}
