// Keeps each device's records in order when an append refuses some of its groups. Groups in one append are
// decided one by one, so without this a full buffer could refuse a device's large record and then commit its
// smaller, later one from the same commit; the device would resend the first, and Kafka would get them out of
// order. Once a group is refused, every later group in the same append holding a record of the same device is
// refused too. Used by every RecordStore implementation (the contract tests check it).
import { BufferFullError } from '../errors.ts';
import type { NewRecord } from '../record/record.ts';

export interface OrderGuard {
  /** The refusal for a group behind a refused record of one of its devices, or null. */
  refusedBefore(group: readonly NewRecord[]): BufferFullError | null;
  /** Notes a refused group; returns `error` for the outcome. */
  refused(group: readonly NewRecord[], error: BufferFullError): BufferFullError;
}

export function createOrderGuard(): OrderGuard {
  const refusedKeys = new Set<string>();
  return {
    refusedBefore(group) {
      if (refusedKeys.size === 0) return null;
      const blocked = group.find((record) => refusedKeys.has(record.key));
      if (blocked === undefined) return null;
      for (const record of group) refusedKeys.add(record.key);
      return new BufferFullError(
        `an earlier record of device ${blocked.key} in this commit was refused, so this one is too: storing it would put the device's records out of order`,
      );
    },
    refused(group, error) {
      for (const record of group) refusedKeys.add(record.key);
      return error;
    },
  };
}
