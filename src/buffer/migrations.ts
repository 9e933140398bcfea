// Numbered schema migrations for the buffer database, applied in order and recorded in PRAGMA user_version,
// so an upgraded gateway opens an older buffer without losing what it holds.
import { GatewayError } from '../errors.ts';
import type { Database } from 'better-sqlite3';

const MIGRATIONS: readonly string[] = [
  // 1: the record queue (seq is the order of acceptance), dead letters, and facts about this buffer.
  `CREATE TABLE records (
     seq            INTEGER PRIMARY KEY AUTOINCREMENT,
     key            TEXT    NOT NULL,
     stream         TEXT    NOT NULL,
     source         TEXT    NOT NULL,
     received_at_ms INTEGER NOT NULL,
     event_time_ms  INTEGER NOT NULL,
     payload        BLOB    NOT NULL,
     meta           TEXT    NOT NULL,
     bytes          INTEGER NOT NULL,
     attempts       INTEGER NOT NULL DEFAULT 0
   );
   CREATE TABLE dead_letters (
     seq            INTEGER PRIMARY KEY,
     key            TEXT    NOT NULL,
     stream         TEXT    NOT NULL,
     source         TEXT    NOT NULL,
     received_at_ms INTEGER NOT NULL,
     event_time_ms  INTEGER NOT NULL,
     payload        BLOB    NOT NULL,
     meta           TEXT    NOT NULL,
     bytes          INTEGER NOT NULL,
     attempts       INTEGER NOT NULL,
     reason         TEXT    NOT NULL,
     dead_at_ms     INTEGER NOT NULL
   );
   CREATE TABLE buffer_info (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;`,
  // 2: device state committed together with records (LoRaWAN sessions and frame counters).
  `CREATE TABLE device_state (
     scope TEXT NOT NULL,
     key   TEXT NOT NULL,
     value TEXT NOT NULL,
     PRIMARY KEY (scope, key)
   ) WITHOUT ROWID;`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Brings the database to SCHEMA_VERSION; refuses a database written by a newer iotgw. */
export function migrate(db: Database, path: string): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > SCHEMA_VERSION) {
    throw new GatewayError(
      'BUFFER_NEWER',
      `buffer ${path} has schema version ${current}, newer than this iotgw understands (${SCHEMA_VERSION}): it was written by a newer iotgw; install that version again (the file is untouched)`,
      { retriable: false },
    );
  }
  for (let version = current; version < SCHEMA_VERSION; version++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[version] as string);
      db.pragma(`user_version = ${version + 1}`);
    })();
  }
}
