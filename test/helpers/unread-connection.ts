// A device connection that never reads what the broker sends, handed to a real aedes as an in-memory duplex:
// its first write never completes, so everything after it stays in the write buffer (a socket whose peer
// stopped reading, without first filling the kernel's megabytes of socket buffers). It connects, then
// publishes QoS 1 in chunks, a few turns of the event loop apart, as a device's reads arrive.
import { Duplex } from 'node:stream';
import type { Aedes } from 'aedes';
import { connectPacket, publishPacket } from './mqtt-wire.ts';
import { waitFor } from './wait-for.ts';

export interface UnreadConnection {
  readonly connection: Duplex;
  /** Publishes `chunks` chunks of `perChunk` QoS 1 publishes to `topic`. */
  publish(topic: string, chunks: number, perChunk: number): Promise<void>;
}

export async function connectUnread(broker: Aedes, clientId: string, writableHighWaterMark = 64): Promise<UnreadConnection> {
  let written = 0;
  const connection = new Duplex({
    writableHighWaterMark,
    read() {},
    write(chunk: Buffer) {
      written += chunk.length;
    },
  });
  connection.on('error', () => undefined); // aedes destroys it with its reason; the tests read that from aedes
  broker.handle(connection);
  connection.push(connectPacket({ clientId }));
  await waitFor(() => written > 0, 'the CONNACK');
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
