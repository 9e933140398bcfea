// Encodes one MQTT 3.1.1 PUBLISH packet into a single buffer. The simulator writes it straight to the
// connection mqtt.js manages: one buffer and one write per reading instead of mqtt.js's clone, store
// and six small writes, which roughly halved the simulator's CPU per message (see mqtt-device.ts).
//
// PUBLISH [MQTT-3.3]:
//   byte 1     0x30 | dup << 3 | qos << 1 | retain        (retain and dup are always 0 here)
//   1-4 bytes  remaining length: 7 bits per byte, least significant group first, 0x80 = more follow
//   2 bytes    topic length, big-endian; then the topic, UTF-8
//   2 bytes    packet identifier, big-endian (QoS 1 and 2 only; 1..65535) [MQTT-2.3.1-1]
//   rest       payload (here: the JSON reading, UTF-8)

const PUBLISH = 0x30;
const MAX_REMAINING_LENGTH = 268_435_455;

/** The topic, encoded once per device: length prefix and UTF-8 bytes. */
export function encodeTopic(topic: string): Buffer {
  const bytes = Buffer.from(topic, 'utf8');
  if (bytes.length > 0xffff) throw new RangeError(`topic is longer than 65535 bytes: ${topic.slice(0, 40)}...`);
  const encoded = Buffer.allocUnsafe(2 + bytes.length);
  encoded.writeUInt16BE(bytes.length, 0);
  bytes.copy(encoded, 2);
  return encoded;
}

/** One PUBLISH packet. `packetId` is ignored at QoS 0. */
export function encodePublish(encodedTopic: Buffer, payload: string, qos: 0 | 1, packetId: number): Buffer {
  const payloadLength = Buffer.byteLength(payload, 'utf8');
  const remaining = encodedTopic.length + (qos > 0 ? 2 : 0) + payloadLength;
  if (remaining > MAX_REMAINING_LENGTH) throw new RangeError(`PUBLISH too large: ${remaining} bytes`);
  const lengthBytes = remaining < 0x80 ? 1 : remaining < 0x4000 ? 2 : remaining < 0x200000 ? 3 : 4;
  const packet = Buffer.allocUnsafe(1 + lengthBytes + remaining);
  packet[0] = PUBLISH | (qos << 1);
  let offset = 1;
  let length = remaining;
  do {
    let byte = length % 0x80;
    length = Math.floor(length / 0x80);
    if (length > 0) byte |= 0x80;
    packet[offset++] = byte;
  } while (length > 0);
  offset += encodedTopic.copy(packet, offset);
  if (qos > 0) {
    packet.writeUInt16BE(packetId, offset);
    offset += 2;
  }
  packet.write(payload, offset, 'utf8');
  return packet;
}
