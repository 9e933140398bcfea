// Opening the buffer file: a location the service can write (named in the error when it cannot), directories
// created durably, WAL + synchronous=FULL confirmed by reading them back, the schema migrated; and the
// errors that need an operator (BUFFER_PATH, BUFFER_CORRUPT) told apart from those a restart may fix.
import { accessSync, closeSync, constants, existsSync, fsyncSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { GatewayError, errorMessage } from '../errors.ts';
import { migrate } from './migrations.ts';

/** Checks the location, creates its directories durably and opens the database ready for use. */
export function openBufferFile(path: string): Database.Database {
  assertWritableLocation(path);
  makeDurableDirectory(dirname(path));
  return openDatabase(path);
}

function openDatabase(path: string): Database.Database {
  let db: Database.Database;
  try {
    db = new Database(path);
  } catch (error) {
    throw openError(error, path, 'open');
  }
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    // Keep the WAL from staying large after a burst, and the page cache small for 1 GB boards.
    db.pragma('journal_size_limit = 67108864');
    db.pragma('cache_size = -8000');
    const synchronous = db.pragma('synchronous', { simple: true });
    const journalMode = db.pragma('journal_mode', { simple: true });
    if (synchronous !== 2 || journalMode !== 'wal') {
      throw new Error(`SQLite refused WAL + synchronous=FULL (got journal_mode=${String(journalMode)}, synchronous=${String(synchronous)})`);
    }
    migrate(db, path);
  } catch (error) {
    db.close();
    throw openError(error, path, 'prepare');
  }
  return db;
}

/** SQLite result codes that mean the file is not a database iotgw can use as it is: never retried, never touched. */
const CORRUPT_CODES = new Set(['SQLITE_CORRUPT', 'SQLITE_NOTADB']);
const UNWRITABLE_CODES = new Set(['SQLITE_CANTOPEN', 'SQLITE_READONLY', 'SQLITE_PERM', 'SQLITE_AUTH']);

function openError(error: unknown, path: string, operation: 'open' | 'prepare'): GatewayError {
  if (error instanceof GatewayError) return error;
  const code = String((error as { code?: unknown }).code ?? '');
  if (CORRUPT_CODES.has(code) || code.startsWith('SQLITE_CORRUPT')) {
    return new GatewayError(
      'BUFFER_CORRUPT',
      `buffer.path ${path} is not a usable SQLite database (${code}: ${errorMessage(error)}). iotgw left it untouched: it may hold records that are not in Kafka yet. ` +
        `Stop the service, copy ${path}* somewhere safe, try to recover the records (sqlite3 ${path} ".recover" | sqlite3 recovered.db), ` +
        `then move ${path}* aside; iotgw starts a new, empty buffer there`,
      { retriable: false, cause: error },
    );
  }
  if (UNWRITABLE_CODES.has(code) || code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_CANTOPEN')) {
    return new GatewayError(
      'BUFFER_PATH',
      `buffer.path ${path}: cannot ${operation} the buffer for writing (${code}: ${errorMessage(error)}); ${WRITABLE_HINT}`,
      {
        retriable: false,
        cause: error,
      },
    );
  }
  return new GatewayError('BUFFER_OPEN', `cannot ${operation} buffer ${path}: ${errorMessage(error)}`, { retriable: false, cause: error });
}

const WRITABLE_HINT =
  'the gateway must be able to create and write the file and its -wal and -shm files in that directory. Under the systemd unit only ' +
  '$STATE_DIRECTORY (/var/lib/iotgw) is writable: remove buffer.path from the config to use /var/lib/iotgw/buffer.db, or give a path there';

/**
 * Fails with BUFFER_PATH, naming the path, when the buffer cannot be created or written there: the nearest
 * existing directory on its path must be writable (a read-only or missing parent otherwise surfaces as a
 * confusing ENOENT from a recursive mkdir), and an existing file must be writable.
 */
function assertWritableLocation(path: string): void {
  const absolute = resolve(path);
  let existing = dirname(absolute);
  while (!existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing);
  const checks: [string, number][] = [[existing, constants.W_OK | constants.X_OK]];
  if (existsSync(absolute)) checks.push([absolute, constants.R_OK | constants.W_OK]);
  for (const [target, mode] of checks) {
    try {
      accessSync(target, mode);
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code === 'EROFS' ? 'read-only file system' : 'permission denied';
      const resolved = absolute === path ? '' : ` (${absolute})`;
      throw new GatewayError('BUFFER_PATH', `buffer.path ${path}${resolved}: ${target} is not writable (${reason}); ${WRITABLE_HINT}`, {
        retriable: false,
        cause: error,
      });
    }
  }
}

/**
 * mkdir -p, then fsync the directory holding each new directory: a new directory's name is durable only once
 * its parent is synced, and until then a power cut takes the whole buffer with it, acknowledged records and
 * all (SQLite syncs the directory of the files it creates, not the directories above).
 */
function makeDurableDirectory(directory: string): void {
  const path = resolve(directory);
  const firstCreated = mkdirSync(path, { recursive: true });
  if (firstCreated === undefined) return;
  for (let created = path; ; created = dirname(created)) {
    fsyncDirectory(dirname(created));
    if (created === firstCreated || dirname(created) === created) break;
  }
}

function fsyncDirectory(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
