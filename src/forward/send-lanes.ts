// Lanes let the forwarder keep more than one batch on the wire without giving up per-device order: every
// device's records go to one lane (by a hash of its key), each lane sends one batch at a time and retries it
// before anything newer of that lane, and lanes never wait for each other. On a link with a 300 ms round trip
// this is what keeps a backlog draining at several batches per round trip instead of one.
//
// The lanes share one window of records leased from the buffer (oldest first) and held here in memory until
// acknowledged; a failed batch goes back to the head of its lane, not to the buffer, so the buffer's lease
// cursor never rewinds under other lanes' batches in flight. At stop, what is still held is released to the
// buffer, so the next start leases it again.
import type { RecordBuffer } from '../buffer/record-buffer.ts';
import type { StoredRecord } from '../record/record.ts';

export interface SendLane {
  /** The head of this lane's line, at most `maxRecords` and `maxBytes` (at least one record); after release() the same again. */
  lease(maxRecords: number, maxBytes: number): Promise<readonly StoredRecord[]>;
  /** The leased head goes back: it is sent again before anything newer of this lane. */
  release(): void;
  /** The leased head was delivered: deleted from the buffer. Rejects (and keeps it leased) if the buffer refuses. */
  ack(): Promise<void>;
  /** The leased head is set aside as a dead letter. */
  deadLetter(reason: string): Promise<void>;
}

export interface SendLanesOptions {
  readonly count: number;
  /** Records and payload bytes held in memory for all lanes together. */
  readonly windowRecords: number;
  readonly windowBytes: number;
  /** A lease from the buffer brought records for these lanes (a lane waiting idle should look again). */
  readonly onRecords?: (lanes: ReadonlySet<number>) => void;
}

export interface SendLanes {
  readonly lanes: readonly SendLane[];
  /** Gives every record held here back to the buffer's line (at stop). */
  releaseAll(): Promise<void>;
}

export function createSendLanes(buffer: RecordBuffer, options: SendLanesOptions): SendLanes {
  const queues: StoredRecord[][] = Array.from({ length: options.count }, () => []);
  /** Per lane: how many records at the head of its queue are leased (one batch at most). */
  const leased: number[] = queues.map(() => 0);
  let heldRecords = 0;
  let heldBytes = 0;
  let refilling: Promise<void> | null = null;

  async function fill(): Promise<void> {
    const room = options.windowRecords - heldRecords;
    if (room <= 0) return;
    const records = await buffer.lease(room, Math.max(1, options.windowBytes - heldBytes));
    const fed = new Set<number>();
    for (const record of records) {
      const lane = laneOf(record.key, options.count);
      (queues[lane] as StoredRecord[]).push(record);
      fed.add(lane);
      heldRecords += 1;
      heldBytes += record.payload.byteLength;
    }
    if (fed.size > 0) options.onRecords?.(fed);
  }

  /** One lease from the buffer at a time, whichever lane asked. */
  function refill(): Promise<void> {
    refilling ??= fill().finally(() => {
      refilling = null;
    });
    return refilling;
  }

  function take(lane: number, count: number): StoredRecord[] {
    const queue = queues[lane] as StoredRecord[];
    const taken = queue.splice(0, count);
    leased[lane] = 0;
    heldRecords -= taken.length;
    for (const record of taken) heldBytes -= record.payload.byteLength;
    return taken;
  }

  const lanes = queues.map(
    (queue, lane): SendLane => ({
      async lease(maxRecords, maxBytes) {
        if (queue.length < maxRecords) await refill();
        let bytes = 0;
        let count = 0;
        for (const record of queue) {
          if (count >= maxRecords || (count > 0 && bytes + record.payload.byteLength > maxBytes)) break;
          bytes += record.payload.byteLength;
          count += 1;
        }
        leased[lane] = count;
        return queue.slice(0, count);
      },
      release() {
        leased[lane] = 0;
      },
      async ack() {
        const seqs = queue.slice(0, leased[lane]).map((record) => record.seq);
        await buffer.ack(seqs);
        take(lane, seqs.length);
      },
      async deadLetter(reason) {
        const seqs = queue.slice(0, leased[lane]).map((record) => record.seq);
        await buffer.deadLetter(seqs, reason);
        take(lane, seqs.length);
      },
    }),
  );

  return {
    lanes,
    async releaseAll() {
      await refilling;
      const seqs = queues.flatMap((queue) => queue.map((record) => record.seq));
      for (let lane = 0; lane < queues.length; lane++) take(lane, (queues[lane] as StoredRecord[]).length);
      if (seqs.length > 0) await buffer.release(seqs);
    },
  };
}

/** FNV-1a of the key: the same device, the same lane. */
function laneOf(key: string, count: number): number {
  if (count === 1) return 0;
  let hash = 0x811c9dc5;
  for (let index = 0; index < key.length; index++) {
    hash ^= key.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % count;
}
