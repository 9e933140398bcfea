// Device connections whose link the test drives, handed to a real aedes as in-memory duplexes: a write
// reaches the device when made and is taken off the wire (its callback) at once, or, once slow, only when the
// test says so; once stalled, never. A connection that never reads is one slow from its first write, so
// everything after it stays in the write buffer (a socket whose peer stopped reading, without first filling
// the kernel's megabytes of socket buffers).
import { Duplex } from 'node:stream';
import type { Aedes } from 'aedes';
import { connectPacket, publishPacket } from './mqtt-wire.ts';
import { waitFor } from './wait-for.ts';

export interface DrivenConnection {
  readonly connection: Duplex;
  /** From now on a write waits for take(). */
  slow(): void;
  /** The write waiting, if any, is taken off the wire. */
  take(): void;
  /** From now on no write is ever taken. */
  stall(): void;
  /** The packet ids of the PUBACKs the device received, in order. */
  ackedIds(): number[];
}

export function drivenConnection(writableHighWaterMark = 16): DrivenConnection {
  const received: Buffer[] = [];
  let mode: 'fast' | 'slow' | 'stalled' = 'fast';
  let waiting: (() => void) | null = null;
  const connection = new Duplex({
    writableHighWaterMark,
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      received.push(chunk);
      if (mode === 'fast') callback();
      else if (mode === 'slow') waiting = callback;
    },
  });
  connection.on('error', () => undefined); // aedes destroys it with its reason; the tests read that from aedes
  return {
    connection,
    slow: () => {
      mode = 'slow';
    },
    take: () => {
      const callback = waiting;
      waiting = null;
      callback?.();
    },
    stall: () => {
      mode = 'stalled';
    },
    ackedIds: () => {
      const ids: number[] = [];
      for (const chunk of received) for (let at = 0; at + 4 <= chunk.length && chunk[at] === 0x40; at += 4) ids.push(chunk.readUInt16BE(at + 2));
      return ids;
    },
  };
}

export interface UnreadConnection {
  readonly connection: Duplex;
  /** Publishes `chunks` chunks of `perChunk` QoS 1 publishes to `topic`, a few turns of the event loop apart. */
  publish(topic: string, chunks: number, perChunk: number): Promise<void>;
}

/** A device that connects and never reads: its first write (the CONNACK's first byte) is never taken. */
export async function connectUnread(broker: Aedes, clientId: string, writableHighWaterMark = 64): Promise<UnreadConnection> {
  const device = drivenConnection(writableHighWaterMark);
  device.slow();
  const { connection } = device;
  broker.handle(connection);
  connection.push(connectPacket({ clientId }));
  await waitFor(() => connection.writableLength > 0, 'the CONNACK');
  let id = 0;
  return {
    connection,
    async publish(topic, chunks, perChunk) {
      for (let chunk = 0; chunk < chunks; chunk++) {
        connection.push(Buffer.concat(Array.from({ length: perChunk }, () => publishPacket(topic, Buffer.from('1'), 1, (id++ % 0xffff) + 1))));
        for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setImmediate(resolve));
      }
    },
  };
}
