// Caps the size of MQTT packets at the socket, before aedes buffers them: mqtt-packet accumulates whatever
// remaining length a client declares (up to 256 MB), so without this one connection can exhaust memory.
// Grammar of the fixed header [MQTT-2.2]: byte 1 = type and flags; then the remaining length as a
// variable-length integer of 1-4 bytes, 7 bits each, least significant first, high bit = "more follows".
import type { Socket } from 'node:net';

export interface PacketSizeGuard {
  /** Feeds bytes as they arrive; returns the declared size of a packet that is too large, or null. */
  feed(chunk: Buffer): number | null;
}

export function createPacketSizeGuard(maxPacketBytes: number): PacketSizeGuard {
  // State between chunks: bytes of the current packet still to skip, or a partial header being read.
  let skip = 0;
  let inHeader = false;
  let length = 0;
  let multiplier = 1;
  let lengthBytes = 0;

  return {
    feed(chunk) {
      let offset = 0;
      while (offset < chunk.length) {
        if (skip > 0) {
          const take = Math.min(skip, chunk.length - offset);
          skip -= take;
          offset += take;
          continue;
        }
        if (!inHeader) {
          inHeader = true; // the type byte
          length = 0;
          multiplier = 1;
          lengthBytes = 0;
          offset += 1;
          continue;
        }
        const byte = chunk[offset] as number;
        offset += 1;
        length += (byte & 0x7f) * multiplier;
        multiplier *= 128;
        lengthBytes += 1;
        if (length > maxPacketBytes) return length;
        if ((byte & 0x80) === 0 || lengthBytes === 4) {
          inHeader = false;
          skip = length;
        }
      }
      return null;
    },
  };
}

/** Watches a socket's incoming bytes; calls `onOversize` once and destroys the socket on a too-large packet. */
export function guardSocket(socket: Socket, maxPacketBytes: number, onOversize: (declaredBytes: number) => void): void {
  const guard = createPacketSizeGuard(maxPacketBytes);
  // aedes reads with 'readable' + read(); a 'data' listener then sees the same chunks without changing the flow.
  socket.on('data', (chunk: Buffer) => {
    const oversize = guard.feed(chunk);
    if (oversize !== null && !socket.destroyed) {
      onOversize(oversize);
      socket.destroy();
    }
  });
}
