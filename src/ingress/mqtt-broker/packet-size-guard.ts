// Caps what MQTT connections can make the gateway hold before aedes sees a whole packet: mqtt-packet
// accumulates whatever remaining length a client declares (up to 256 MB), so the size of one packet is capped
// at the socket, and the bytes of unfinished packets summed over all connections share one budget, so that
// thousands of connections each trickling a large packet cannot add up to gigabytes.
// Grammar of the fixed header [MQTT-2.2]: byte 1 = type and flags; then the remaining length as a
// variable-length integer of 1-4 bytes, 7 bits each, least significant first, high bit = "more follows".
import type { Socket } from 'node:net';

export interface PacketSizeGuard {
  /** Feeds bytes as they arrive; returns the declared size of a packet that is too large, or null. */
  feed(chunk: Buffer): number | null;
  /** Bytes of the packet still arriving (0 between packets): what the parser holds for this connection. */
  heldBytes(): number;
}

export function createPacketSizeGuard(maxPacketBytes: number): PacketSizeGuard {
  // State between chunks: bytes of the current packet still to skip, or a partial header being read.
  let skip = 0;
  let inHeader = false;
  let length = 0;
  let multiplier = 1;
  let lengthBytes = 0;
  let held = 0;

  return {
    feed(chunk) {
      let offset = 0;
      while (offset < chunk.length) {
        if (skip > 0) {
          const take = Math.min(skip, chunk.length - offset);
          skip -= take;
          offset += take;
          held = skip === 0 ? 0 : held + take;
          continue;
        }
        if (!inHeader) {
          inHeader = true; // the type byte
          length = 0;
          multiplier = 1;
          lengthBytes = 0;
          held = 1;
          offset += 1;
          continue;
        }
        const byte = chunk[offset] as number;
        offset += 1;
        held += 1;
        length += (byte & 0x7f) * multiplier;
        multiplier *= 128;
        lengthBytes += 1;
        if (length > maxPacketBytes) return length;
        if ((byte & 0x80) === 0 || lengthBytes === 4) {
          inHeader = false;
          skip = length;
          if (skip === 0) held = 0;
        }
      }
      return null;
    },
    heldBytes: () => held,
  };
}

/** Bytes of unfinished packets across every connection, against one bound. */
export interface HeldBytesBudget {
  /** Moves `delta` bytes into (or, negative, out of) the budget; false (and nothing moved) when it would overflow. */
  adjust(delta: number): boolean;
  readonly heldBytes: number;
}

export function createHeldBytesBudget(maxBytes: number): HeldBytesBudget {
  let held = 0;
  return {
    adjust(delta) {
      if (delta > 0 && held + delta > maxBytes) return false;
      held = Math.max(0, held + delta);
      return true;
    },
    get heldBytes() {
      return held;
    },
  };
}

export type GuardRefusal = { readonly reason: 'oversize'; readonly declaredBytes: number } | { readonly reason: 'memory-budget'; readonly heldBytes: number };

/**
 * Watches a socket's incoming bytes: a packet over `maxPacketBytes`, or unfinished bytes the shared budget
 * cannot take, closes the connection (after `onRefuse`). The socket's share goes back to the budget when it closes.
 */
export function guardSocket(socket: Socket, maxPacketBytes: number, budget: HeldBytesBudget, onRefuse: (refusal: GuardRefusal) => void): void {
  const guard = createPacketSizeGuard(maxPacketBytes);
  let accounted = 0;
  const refuse = (refusal: GuardRefusal): void => {
    if (socket.destroyed) return;
    onRefuse(refusal);
    socket.destroy();
  };
  // aedes reads with 'readable' + read(); a 'data' listener then sees the same chunks without changing the flow.
  socket.on('data', (chunk: Buffer) => {
    const oversize = guard.feed(chunk);
    if (oversize !== null) {
      refuse({ reason: 'oversize', declaredBytes: oversize });
      return;
    }
    const held = guard.heldBytes();
    if (!budget.adjust(held - accounted)) {
      refuse({ reason: 'memory-budget', heldBytes: budget.heldBytes });
      return;
    }
    accounted = held;
  });
  socket.once('close', () => {
    budget.adjust(-accounted);
    accounted = 0;
  });
}
