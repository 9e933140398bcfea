// A record's stable id, `<instance>-<seq>`: the buffer file's random instance id (so ids stay unique if the
// file is replaced) and the record's seq in it. Kafka consumers find it in the `record-id` header; a record
// sent twice after a crash has the same id both times. The store and the inspector both read it from here.
import { randomBytes } from 'node:crypto';
import type Database from 'better-sqlite3';

export function recordId(instanceId: string, seq: number): string {
  return `${instanceId}-${seq}`;
}

/** The file's instance id, or null in a file that has none yet (the inspector opens files read-only). */
export function readInstanceId(db: Database.Database): string | null {
  return (db.prepare("SELECT value FROM buffer_info WHERE name = 'instance_id'").pluck().get() as string | undefined) ?? null;
}

/** The file's instance id, created on first open. */
export function ensureInstanceId(db: Database.Database): string {
  const existing = readInstanceId(db);
  if (existing !== null) return existing;
  const created = randomBytes(6).toString('hex');
  db.prepare("INSERT INTO buffer_info (name, value) VALUES ('instance_id', ?)").run(created);
  return created;
}
