// The records committed since the forwarder last caught up with the buffer, kept in memory in seq order, so
// that leasing them does not read back from SQLite what was written a moment ago (a SELECT, a row object and
// a payload copy per record, a third of the buffer thread's work when Kafka keeps up). The tail is either
// exact, holding every record above the lease cursor, or invalid, and then leases read SQLite until one
// reaches the end again. Anything that changes the records above the cursor other than an append (a release
// moving the cursor back, drop_oldest deleting unleased records) invalidates it.
import type { StoredRecord } from '../record/record.ts';

export interface LeaseTail {
  /** Records just committed, in seq order, each with its size as the buffer counts it. */
  appended(records: readonly StoredRecord[], bytes: readonly number[]): void;
  /** The next records (as SQLite would return them), or null when the tail is not exact: read SQLite. */
  take(maxRecords: number, maxBytes: number): StoredRecord[] | null;
  /** Whether the tail holds every record above the lease cursor (so appends are worth handing to it). */
  exact(): boolean;
  /** A lease from SQLite returned everything above the cursor: from now on, appends are the whole tail. */
  caughtUp(): void;
  invalidate(): void;
}

export interface LeaseTailLimits {
  readonly maxRecords: number;
  readonly maxBytes: number;
}

export function createLeaseTail(limits: LeaseTailLimits): LeaseTail {
  let exact = false;
  let records: StoredRecord[] = [];
  let sizes: number[] = [];
  let head = 0;
  let heldBytes = 0;

  function invalidate(): void {
    exact = false;
    records = [];
    sizes = [];
    head = 0;
    heldBytes = 0;
  }

  return {
    appended(added, bytes) {
      if (!exact) return;
      let addedBytes = 0;
      for (const size of bytes) addedBytes += size;
      // Past the bound the forwarder is behind anyway: it reads SQLite until it catches up.
      if (records.length - head + added.length > limits.maxRecords || heldBytes + addedBytes > limits.maxBytes) {
        invalidate();
        return;
      }
      for (let index = 0; index < added.length; index++) {
        records.push(added[index] as StoredRecord);
        sizes.push(bytes[index] as number);
      }
      heldBytes += addedBytes;
    },

    take(maxRecords, maxBytes) {
      if (!exact) return null;
      const taken: StoredRecord[] = [];
      let bytes = 0;
      while (head < records.length && taken.length < maxRecords) {
        const size = sizes[head] as number;
        if (taken.length > 0 && bytes + size > maxBytes) break;
        bytes += size;
        taken.push(records[head] as StoredRecord);
        head++;
      }
      heldBytes -= bytes;
      if (head === records.length) {
        records = [];
        sizes = [];
        head = 0;
      } else if (head > 4096 && head * 2 > records.length) {
        records = records.slice(head);
        sizes = sizes.slice(head);
        head = 0;
      }
      return taken;
    },

    exact: () => exact,

    caughtUp() {
      if (exact) return;
      invalidate();
      exact = true;
    },

    invalidate,
  };
}
