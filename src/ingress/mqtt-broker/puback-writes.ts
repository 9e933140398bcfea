// aedes writes every PUBACK through mqtt-packet's writeToStream, which corks the socket, schedules its own
// uncork, and writes the header byte, the length and the packet id as three buffered chunks that the uncork
// joins into a writev: per PUBLISH three write requests, a tick callback and the writev's array. Here a plain
// 3.1.1 PUBACK is one 4-byte chunk, and the socket is corked once per turn of the event loop, so PUBACKs to
// one device in the same turn still leave in one write. The bytes and the return value (true, as
// mqtt-packet's) are the same; any other packet, an MQTT 5 one or an odd packet id goes to mqtt-packet.
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
const uncork = (stream: Writable) => stream.uncork();

/** Installs the single-write PUBACK (once); returns mqtt-packet's own writeToStream, for tests. */
export function installSingleWritePuback(mqttPacket: MqttPacketExports): WriteToStream {
  const installed = mqttPacket.writeToStream.generic;
  if (installed !== undefined) return installed;
  const generic = mqttPacket.writeToStream;
  const writeToStream: WriteToStream = (packet, stream, options) => {
    const id = packet.messageId;
    // aedes passes no options (3.1.1), where a PUBACK is these 4 bytes whatever else the packet holds.
    if (packet.cmd !== 'puback' || options !== undefined || typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 0xffff) {
      return generic(packet, stream, options);
    }
    if (typeof stream.cork === 'function' && stream.writableCorked === 0) {
      stream.cork();
      process.nextTick(uncork, stream);
    }
    const ack = Buffer.allocUnsafe(4);
    ack[0] = PUBACK;
    ack[1] = 2;
    ack[2] = id >> 8;
    ack[3] = id & 0xff;
    stream.write(ack);
    return true;
  };
  Object.defineProperty(writeToStream, 'generic', { value: generic });
  // Other properties of mqtt-packet's function (cacheNumbers) stay reachable on it.
  Object.setPrototypeOf(writeToStream, generic);
  mqttPacket.writeToStream = writeToStream as MqttPacketExports['writeToStream'];
  return generic;
}

installSingleWritePuback(mqttPacketExports());
