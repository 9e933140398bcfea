// aedes writes every PUBACK through mqtt-packet's writeToStream, which corks the socket, schedules its own
// uncork, and writes the header byte, the length and the packet id as three buffered chunks that the uncork
// joins into a writev: per PUBLISH three write requests, a tick callback and the writev's array. Here a plain
// 3.1.1 PUBACK is 4 bytes noted for its socket, and at the end of the turn (one tick callback for all
// sockets) each socket gets its PUBACKs as one buffer in one write: a commit answers hundreds of devices at
// once, and a write request per PUBACK through the stream's buffering plus the writev were a tenth of the
// main thread (two thirds of it the kernel's writev, which stays). The bytes are the same, and PUBACKs leave
// in the order aedes wrote them: any other packet for a socket first sends the PUBACKs noted for it. An MQTT 5
// packet or an odd packet id goes to mqtt-packet. Unlike mqtt-packet, which always returns true for a PUBACK,
// this returns false while the socket's write buffer is past its high-water mark, and writes that PUBACK at
// 'drain' (after any other packet written meanwhile): aedes then reads none of that client's next packets
// until then (and closes it after its drainTimeout), so a device that never reads its PUBACKs cannot grow
// them without bound.
// Imported by broker.ts: aedes reads `writeToStream` from mqtt-packet's exports at each write.
import { createRequire } from 'node:module';
import type { Writable } from 'node:stream';

type WriteToStream = (packet: { cmd?: unknown; messageId?: unknown }, stream: Writable, options?: unknown) => boolean;

interface MqttPacketExports {
  writeToStream: WriteToStream & { generic?: WriteToStream };
}

const require = createRequire(import.meta.url);

/** mqtt-packet's exports, the object aedes imports as its default. */
export function mqttPacketExports(): MqttPacketExports {
  return require('mqtt-packet') as MqttPacketExports;
}

const PUBACK = 0x40;

/** The PUBACKs of one socket not yet written, in the order aedes wrote them. */
interface NotedAcks {
  readonly stream: Writable;
  /** Noted this turn: written at its end. */
  readonly ids: number[];
  /** Noted while the socket waited for 'drain': written when it drains. */
  readonly held: number[];
}

const notedBySocket = new WeakMap<Writable, NotedAcks>();
/** The sockets with PUBACKs noted this turn. */
let noted: NotedAcks[] = [];

/**
 * Writes the PUBACKs of `ids` as one buffer and empties the list (before the write: a stream whose write calls
 * back into writeToStream notes anew). A socket destroyed or ended meanwhile drops them: aedes ends no client
 * socket, it destroys them, and a destroyed corked socket dropped its PUBACKs too.
 */
function writeAcks(stream: Writable, ids: number[]): void {
  const count = ids.length;
  if (count === 0) return;
  const bytes = Buffer.allocUnsafe(count * 4);
  for (let n = 0, at = 0; n < count; n++, at += 4) {
    const id = ids[n] as number;
    bytes[at] = PUBACK;
    bytes[at + 1] = 2;
    bytes[at + 2] = id >> 8;
    bytes[at + 3] = id & 0xff;
  }
  ids.length = 0;
  if (!stream.destroyed && !stream.writableEnded) stream.write(bytes);
}

/** Writes, and closes the socket with the error if its write throws (aedes' write.js caught that; a tick callback would end the process). */
function writeAcksOrClose(stream: Writable, ids: number[]): void {
  try {
    writeAcks(stream, ids);
  } catch (error) {
    // The socket is closed, as for any socket error (its device resends what was not acknowledged).
    stream.destroy(error instanceof Error ? error : new Error(String(error)));
  }
}

function sendNoted(): void {
  const sockets = noted;
  noted = [];
  // One socket's failure must not leave the turn's other sockets unsent.
  for (const acks of sockets) writeAcksOrClose(acks.stream, acks.ids);
}

/** Installs the batched PUBACK (once); returns mqtt-packet's own writeToStream, for tests. */
export function installSingleWritePuback(mqttPacket: MqttPacketExports): WriteToStream {
  const installed = mqttPacket.writeToStream.generic;
  if (installed !== undefined) return installed;
  const generic = mqttPacket.writeToStream;
  const writeToStream: WriteToStream = (packet, stream, options) => {
    const id = packet.messageId;
    // aedes passes no options (3.1.1), where a PUBACK is these 4 bytes whatever else the packet holds.
    if (packet.cmd !== 'puback' || options !== undefined || typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 0xffff) {
      // PUBACKs noted for this socket were written first: they leave first.
      const acks = notedBySocket.get(stream);
      if (acks !== undefined) writeAcks(stream, acks.ids);
      return generic(packet, stream, options);
    }
    let acks = notedBySocket.get(stream);
    if (acks === undefined) {
      acks = { stream, ids: [], held: [] };
      notedBySocket.set(stream, acks);
    }
    // A stream past its high-water mark (a write returned false) waits for 'drain', and so does aedes on false:
    // it reads no more of that client until then, and closes it after its drainTimeout. aedes relays a QoS 1
    // publish only when its PUBACK's write calls back, and fails that callback if the socket closes first, so
    // such a PUBACK leaves at 'drain' too: a device never holds a PUBACK for a publish that was not relayed.
    if (stream.writableNeedDrain === true) {
      if (acks.held.length === 0) {
        const waiting = acks;
        stream.once('drain', () => {
          // A client aedes closed meanwhile (same-id takeover, a revoked device, the broker stopping) had those
          // callbacks failed, so no relay; aedes stops reading it at once (its 'readable' listener goes) but
          // destroys the socket later, and may emit 'drain' itself first. Its held PUBACKs are dropped.
          if (stream.listenerCount('readable') === 0) waiting.held.length = 0;
          else writeAcksOrClose(stream, waiting.held);
        });
      }
      acks.held.push(id);
      return false;
    }
    if (acks.ids.length === 0) {
      if (noted.length === 0) process.nextTick(sendNoted);
      noted.push(acks);
    }
    acks.ids.push(id);
    return true;
  };
  Object.defineProperty(writeToStream, 'generic', { value: generic });
  // Other properties of mqtt-packet's function (cacheNumbers) stay reachable on it.
  Object.setPrototypeOf(writeToStream, generic);
  mqttPacket.writeToStream = writeToStream as MqttPacketExports['writeToStream'];
  return generic;
}

installSingleWritePuback(mqttPacketExports());
