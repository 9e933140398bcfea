// An append's outcomes in compact form, as the SQLite store produces them and as they cross back from the
// buffer's thread: every record's seq in one Float64Array (transferred, not cloned) and the few refused
// groups by index. Most groups hold one record (one per MQTT publish), so the per-group objects this
// replaces cost thousands of allocations and structured clones per commit on the buffer's thread.
import type { BufferFullError } from '../errors.ts';
import type { AppendOutcome } from './record-store.ts';

export interface RefusedGroup<E> {
  /** The group's index in the append. */
  readonly group: number;
  readonly error: E;
}

export interface PackedOutcomes<E> {
  /** One seq per record of the append, in append order; 0 for the records of refused groups (seqs start at 1). */
  readonly seqs: Float64Array;
  /** The refused groups, in group order; every other group was committed. */
  readonly refused: readonly RefusedGroup<E>[];
}

/** The AppendOutcome[] callers get, one per group of `sizes` (the group sizes of the append, in order). */
export function unpackOutcomes<E>(sizes: readonly number[], packed: PackedOutcomes<E>, toError: (error: E) => BufferFullError): AppendOutcome[] {
  const outcomes = new Array<AppendOutcome>(sizes.length);
  let offset = 0;
  let nextRefused = 0;
  for (let group = 0; group < sizes.length; group++) {
    const size = sizes[group] as number;
    const refused = packed.refused[nextRefused];
    if (refused !== undefined && refused.group === group) {
      outcomes[group] = { ok: false, error: toError(refused.error) };
      nextRefused++;
    } else if (size === 1) {
      outcomes[group] = { ok: true, seqs: [packed.seqs[offset] as number] };
    } else {
      const seqs = new Array<number>(size);
      for (let index = 0; index < size; index++) seqs[index] = packed.seqs[offset + index] as number;
      outcomes[group] = { ok: true, seqs };
    }
    offset += size;
  }
  return outcomes;
}
