// The broker's packet parser (mqtt-packet, inside aedes) reads every header byte, length byte, topic length,
// packet id and topic through bl's BufferList, whose readUInt8/readUInt16BE/readUInt32BE/toString each make a
// Buffer view plus an [index, offset] array just to read a byte or two: five or six of each per PUBLISH, a
// fifth of all the main thread allocates under load, and so of its young-generation collections. Here those
// four methods read the bytes in place. Anything but a plain in-range read (a negative, fractional or missing
// offset, a read past the end, another encoding) goes to bl's own method, so results and errors are bl's.
// Imported by broker.ts: the class patched is the one mqtt-packet's parser makes its list from.
import { createRequire } from 'node:module';

interface BufferList {
  readonly _bufs: readonly Buffer[];
  readonly length: number;
  readUInt8(offset?: number): number;
  readUInt16BE(offset?: number): number;
  readUInt32BE(offset?: number): number;
  toString(encoding?: BufferEncoding, start?: number, end?: number): string;
}

type BufferListClass = { prototype: BufferList };
type Reads = Pick<BufferList, 'readUInt8' | 'readUInt16BE' | 'readUInt32BE' | 'toString'>;

/** bl's own methods, per patched class. */
const originals = new WeakMap<BufferListClass, Reads>();

const require = createRequire(import.meta.url);

/**
 * The class of mqtt-packet's parser lists: bl's export as mqtt-packet resolves it (npm may nest another bl
 * elsewhere), BufferListStream, which copied BufferList's methods onto its own prototype when bl loaded.
 */
export function mqttPacketBufferList(): BufferListClass {
  const fromMqttPacket = createRequire(require.resolve('mqtt-packet'));
  return fromMqttPacket('bl') as BufferListClass;
}

/** Whether `offset .. offset + bytes` is a whole-number range inside the list. */
function inRange(list: BufferList, offset: unknown, bytes: number): offset is number {
  return typeof offset === 'number' && Number.isInteger(offset) && offset >= 0 && offset + bytes <= list.length;
}

/** The byte at `offset`, which inRange checked. */
function byteAt(list: BufferList, offset: number): number {
  const bufs = list._bufs;
  let rest = offset;
  for (let index = 0; index < bufs.length; index++) {
    const buf = bufs[index] as Buffer;
    if (rest < buf.length) return buf[rest] as number;
    rest -= buf.length;
  }
  throw new RangeError(`offset ${offset} is past the buffer list's ${list.length} bytes`);
}

/** Replaces the four reads on `BufferList.prototype` (once); returns bl's originals, for tests. */
export function installInPlaceReads(BufferList: BufferListClass): Reads {
  const installed = originals.get(BufferList);
  if (installed !== undefined) return installed;
  const proto = BufferList.prototype;
  const { readUInt8, readUInt16BE, readUInt32BE, toString: decode } = proto;
  const own: Reads = { readUInt8, readUInt16BE, readUInt32BE, toString: decode };
  originals.set(BufferList, own);

  proto.readUInt8 = function (this: BufferList, offset?: number): number {
    return inRange(this, offset, 1) ? byteAt(this, offset) : readUInt8.call(this, offset);
  };
  proto.readUInt16BE = function (this: BufferList, offset?: number): number {
    if (!inRange(this, offset, 2)) return readUInt16BE.call(this, offset);
    return (byteAt(this, offset) << 8) | byteAt(this, offset + 1);
  };
  proto.readUInt32BE = function (this: BufferList, offset?: number): number {
    if (!inRange(this, offset, 4)) return readUInt32BE.call(this, offset);
    return ((byteAt(this, offset) << 24) | (byteAt(this, offset + 1) << 16) | (byteAt(this, offset + 2) << 8) | byteAt(this, offset + 3)) >>> 0;
  };
  // mqtt-packet decodes every topic, client id and user name as toString('utf8', start, end).
  proto.toString = function (this: BufferList, encoding?: BufferEncoding, start?: number, end?: number): string {
    if (encoding === 'utf8' && inRange(this, start, 0) && inRange(this, end, 0) && start < end) {
      const bufs = this._bufs;
      let base = 0;
      for (let index = 0; index < bufs.length; index++) {
        const buf = bufs[index] as Buffer;
        if (start < base + buf.length) {
          // Across two buffers bl joins them first: left to bl.
          if (end <= base + buf.length) return buf.toString('utf8', start - base, end - base);
          break;
        }
        base += buf.length;
      }
    }
    return decode.call(this, encoding, start, end);
  };
  return own;
}

installInPlaceReads(mqttPacketBufferList());
