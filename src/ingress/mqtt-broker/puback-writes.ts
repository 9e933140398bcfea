// aedes writes every PUBACK through mqtt-packet's writeToStream, which corks the socket, schedules its own
// uncork, and writes the header byte, the length and the packet id as three buffered chunks that the uncork
// joins into a writev: per PUBLISH three write requests, a tick callback and the writev's array. Here a plain
// 3.1.1 PUBACK is 4 bytes noted for its socket, and at the end of the turn (one tick callback for all
// sockets) each socket gets its PUBACKs as one buffer in one write: a commit answers hundreds of devices at
// once, and a write request per PUBACK through the stream's buffering plus the writev were a tenth of the
// main thread (two thirds of it the kernel's writev, which stays). The bytes and their order are the same:
// any other packet for a socket first sends the PUBACKs noted for it. An MQTT 5 packet or an odd packet id
// goes to mqtt-packet. Unlike mqtt-packet, which always returns true for a PUBACK, this returns false while
// the socket's write buffer is past its high-water mark: aedes then waits for 'drain' before it reads that
// client's next packets (and closes it after its drainTimeout), so a device that never reads its PUBACKs
// cannot grow them without bound.
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

/** The packet ids of the PUBACKs noted for one socket this turn, in the order aedes wrote them. */
interface NotedAcks {
  readonly stream: Writable;
  readonly ids: number[];
}

const notedBySocket = new WeakMap<Writable, NotedAcks>();
/** The sockets with PUBACKs noted this turn. */
let noted: NotedAcks[] = [];

/**
 * Writes a socket's noted PUBACKs as one buffer. A socket destroyed or ended meanwhile drops them: aedes ends
 * no client socket, it destroys them, and a destroyed corked socket dropped its PUBACKs too.
 */
function send(acks: NotedAcks): void {
  const { stream, ids } = acks;
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
  // Emptied before the write: a stream whose write calls back into writeToStream notes or sends anew.
  ids.length = 0;
  if (!stream.destroyed && !stream.writableEnded) stream.write(bytes);
}

function sendNoted(): void {
  const sockets = noted;
  noted = [];
  for (const acks of sockets) {
    try {
      send(acks);
    } catch (error) {
      // aedes' write.js caught a throwing write; here it would end the process and skip the other sockets.
      // The socket is closed instead, as for any socket error (its device resends what was not acknowledged).
      acks.stream.destroy(error instanceof Error ? error : new Error(String(error)));
    }
  }
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
      if (acks !== undefined) send(acks);
      return generic(packet, stream, options);
    }
    let acks = notedBySocket.get(stream);
    if (acks === undefined) {
      acks = { stream, ids: [] };
      notedBySocket.set(stream, acks);
    }
    if (acks.ids.length === 0) {
      if (noted.length === 0) process.nextTick(sendNoted);
      noted.push(acks);
    }
    acks.ids.push(id);
    // Only a stream that said so waits for 'drain' (writableNeedDrain is set by a write that returned false).
    return stream.writableNeedDrain !== true;
  };
  Object.defineProperty(writeToStream, 'generic', { value: generic });
  // Other properties of mqtt-packet's function (cacheNumbers) stay reachable on it.
  Object.setPrototypeOf(writeToStream, generic);
  mqttPacket.writeToStream = writeToStream as MqttPacketExports['writeToStream'];
  return generic;
}

installSingleWritePuback(mqttPacketExports());
