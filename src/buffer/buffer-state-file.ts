// The device state table of a buffer file, for operator commands that run beside the gateway or instead of it:
// read-only (a second connection, safe while the gateway runs: WAL readers never block the writer), or for
// writing while holding the file exclusively, so nothing else has it open.
//
// How "the gateway runs on this file" is told: every SQLite connection to a WAL database holds a shared lock on
// the database file for as long as it is open (SQLite's own test for "last connection", which checkpoints and
// removes the WAL on close). A connection in locking_mode=EXCLUSIVE takes an exclusive lock at its first read,
// so it fails with SQLITE_BUSY while any other process has the file open, the gateway included, and once it
// has it, a gateway started meanwhile cannot open the file until it is released.
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { errorMessage, GatewayError } from '../errors.ts';
import { openBufferReadOnly } from './buffer-inspect.ts';
import { openBufferFile } from './buffer-file.ts';
import { migrate, SCHEMA_VERSION } from './migrations.ts';
import type { StateWrite } from './record-store.ts';

function hasStateTable(db: Database.Database): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'device_state'").get() !== undefined;
}

function selectState(db: Database.Database, scope: string): ReadonlyMap<string, string> {
  if (!hasStateTable(db)) return new Map();
  const rows = db.prepare('SELECT key, value FROM device_state WHERE scope = ? ORDER BY key').raw(true).all(scope) as [string, string][];
  return new Map(rows);
}

function missing(path: string): GatewayError {
  return new GatewayError('BUFFER_MISSING', `no buffer file at ${path}: check buffer.path (has the gateway run with this config yet?)`, { retriable: false });
}

/** Every committed state entry of a scope, read through a read-only connection. */
export function readStateReadOnly(path: string, scope: string): ReadonlyMap<string, string> {
  const db = openBufferReadOnly(path);
  try {
    assertKnownSchema(db, path);
    return selectState(db, scope);
  } catch (error) {
    if (error instanceof GatewayError) throw error;
    throw new GatewayError('BUFFER_OPEN', `cannot read the device state in ${path}: ${errorMessage(error)}`, { retriable: false, cause: error });
  } finally {
    db.close();
  }
}

export interface ExclusiveBuffer {
  readState(scope: string): ReadonlyMap<string, string>;
  /** Every write in one durable transaction (value null deletes); brings an older schema up to date first. */
  writeState(writes: readonly StateWrite[]): void;
  close(): void;
}

/**
 * Opens the buffer file as the only process that has it open. Fails with BUFFER_IN_USE when another process
 * (the gateway, an `iotgw buffer` command) has it open; with `create`, a missing file is made first, exactly as
 * the gateway makes it (directories, WAL, schema).
 */
export function openBufferExclusively(path: string, options: { readonly create: boolean }): ExclusiveBuffer {
  if (!existsSync(path)) {
    if (!options.create) throw missing(path);
    openBufferFile(path).close();
  }
  let db: Database.Database;
  try {
    // timeout 0: a busy file is an answer, not something to wait for.
    db = new Database(path, { fileMustExist: true, timeout: 0 });
  } catch (error) {
    throw new GatewayError('BUFFER_OPEN', `cannot open buffer ${path}: ${errorMessage(error)}`, { retriable: false, cause: error });
  }
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    db.prepare('SELECT count(*) FROM sqlite_master').get();
  } catch (error) {
    db.close();
    if ((error as { code?: unknown }).code === 'SQLITE_BUSY') {
      throw new GatewayError(
        'BUFFER_IN_USE',
        `${path} is open in another process: the gateway runs on it (or an iotgw buffer command reads it). Stop the gateway first (sudo systemctl stop iotgw), then run this again`,
        { retriable: false, cause: error },
      );
    }
    throw new GatewayError('BUFFER_OPEN', `cannot open buffer ${path}: ${errorMessage(error)}`, { retriable: false, cause: error });
  }
  try {
    assertKnownSchema(db, path);
    db.pragma('synchronous = FULL');
  } catch (error) {
    db.close();
    throw error;
  }
  return {
    readState: (scope) => selectState(db, scope),
    writeState(writes) {
      migrate(db, path);
      const upsert = db.prepare('INSERT INTO device_state (scope, key, value) VALUES (?, ?, ?) ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value');
      const remove = db.prepare('DELETE FROM device_state WHERE scope = ? AND key = ?');
      db.transaction(() => {
        for (const write of writes) {
          if (write.value === null) remove.run(write.scope, write.key);
          else upsert.run(write.scope, write.key, write.value);
        }
      })();
    },
    close: () => db.close(),
  };
}

function assertKnownSchema(db: Database.Database, path: string): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    throw new GatewayError(
      'BUFFER_NEWER',
      `buffer ${path} has schema version ${version}, newer than this iotgw understands (${SCHEMA_VERSION}): use the iotgw that wrote it`,
      {
        retriable: false,
      },
    );
  }
}
