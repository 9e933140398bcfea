// The RecordStore contract held in memory, with no durability: for tests of other stages and for
// benchmarks that separate the cost of SQLite from the rest. Never used by the gateway itself.
import { BufferFullError } from '../errors.ts';
import { type NewRecord, type StoredRecord, recordBytes } from '../record/record.ts';
import { eventTimeOf } from '../record/routes.ts';
import type { AppendOutcome, RecordStore, RecordStoreLimits } from './record-store.ts';
import { createOrderGuard } from './order-guard.ts';

interface Slot {
  record: StoredRecord;
  bytes: number;
}

export function createMemoryStore(limits: RecordStoreLimits, deps: { readonly nowMs?: () => number } = {}): RecordStore {
  const nowMs = deps.nowMs ?? Date.now;
  const queue = new Map<number, Slot>(); // insertion order = seq order
  const deadLetters = new Map<number, { record: StoredRecord; reason: string; atMs: number }>();
  const state = new Map<string, Map<string, string>>();
  let nextSeq = 1;
  let depthBytes = 0;
  let droppedRecords = 0;
  let leaseCursor = 0;

  function fits(records: number, bytes: number): boolean {
    return queue.size + records <= limits.maxRecords && depthBytes + bytes <= limits.maxBytes;
  }

  function remove(seq: number): Slot | undefined {
    const slot = queue.get(seq);
    if (slot === undefined) return undefined;
    queue.delete(seq);
    depthBytes -= slot.bytes;
    return slot;
  }

  return {
    append(groups, writes = []) {
      for (const write of writes) {
        const scope = state.get(write.scope) ?? new Map<string, string>();
        state.set(write.scope, scope);
        if (write.value === null) scope.delete(write.key);
        else scope.set(write.key, write.value);
      }
      const outcomes: AppendOutcome[] = [];
      const order = createOrderGuard();
      for (const group of groups) {
        const sizes = group.map(recordBytes);
        const groupBytes = sizes.reduce((sum, size) => sum + size, 0);
        const behindRefused = order.refusedBefore(group);
        if (behindRefused !== null) {
          outcomes.push({ ok: false, error: behindRefused });
          continue;
        }
        if (group.length > limits.maxRecords || groupBytes > limits.maxBytes) {
          outcomes.push({ ok: false, error: order.refused(group, new BufferFullError(`${group.length} records exceed the buffer's bounds`)) });
          continue;
        }
        if (!fits(group.length, groupBytes)) {
          if (limits.whenFull === 'reject') {
            outcomes.push({ ok: false, error: order.refused(group, new BufferFullError('buffer full')) });
            continue;
          }
          for (const seq of queue.keys()) {
            if (fits(group.length, groupBytes)) break;
            remove(seq);
            droppedRecords += 1;
          }
        }
        const seqs = group.map((record: NewRecord, index) => {
          const seq = nextSeq++;
          const { eventTimeField: _field, ...stored } = record;
          queue.set(seq, { record: { ...stored, eventTimeMs: eventTimeOf(record), seq, id: `memory-${seq}`, attempts: 0 }, bytes: sizes[index] ?? 0 });
          return seq;
        });
        depthBytes += groupBytes;
        outcomes.push({ ok: true, seqs });
      }
      return outcomes;
    },

    readState(scope) {
      return new Map(state.get(scope));
    },

    lease(maxRecords, maxBytes) {
      const leased: StoredRecord[] = [];
      let bytes = 0;
      for (const [seq, slot] of queue) {
        if (seq <= leaseCursor) continue;
        if (leased.length >= maxRecords || (leased.length > 0 && bytes + slot.bytes > maxBytes)) break;
        bytes += slot.bytes;
        leased.push(slot.record);
      }
      const last = leased.at(-1);
      if (last !== undefined) leaseCursor = last.seq;
      return leased;
    },

    ack(seqs) {
      for (const seq of seqs) remove(seq);
    },

    release(seqs) {
      if (seqs.length === 0) return;
      leaseCursor = Math.min(leaseCursor, Math.min(...seqs) - 1);
      for (const seq of seqs) {
        const slot = queue.get(seq);
        if (slot !== undefined) slot.record = { ...slot.record, attempts: slot.record.attempts + 1 };
      }
    },

    deadLetter(seqs, reason) {
      for (const seq of seqs) {
        const slot = remove(seq);
        if (slot !== undefined) deadLetters.set(seq, { record: slot.record, reason, atMs: nowMs() });
      }
    },

    stats() {
      const oldest = queue.values().next();
      return {
        depthRecords: queue.size,
        depthBytes,
        oldestReceivedAtMs: oldest.done === true ? null : oldest.value.record.receivedAtMs,
        deadLetters: deadLetters.size,
        droppedRecords,
      };
    },

    close() {
      queue.clear();
    },
  };
}
