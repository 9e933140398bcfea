// Encodes one MQTT 3.1.1 SUBSCRIBE of a single topic filter. The simulator writes it straight to the
// connection like its PUBLISH packets (mqtt-publish-packet.ts), with a packet id from the device's own
// counter: through client.subscribe() mqtt.js would take an id from its own counter, which can equal one of
// the raw readings in flight [MQTT-2.3.1-2], and mqtt.js then takes that reading's PUBACK for a protocol error.
//
// SUBSCRIBE [MQTT-3.8]:
//   byte 1     0x82                                       (reserved flags 0010 [MQTT-3.8.1-1])
//   1-2 bytes  remaining length: 7 bits per byte, least significant group first, 0x80 = more follow
//   2 bytes    packet identifier, big-endian (1..65535)
//   2 bytes    topic filter length, big-endian; then the filter, UTF-8
//   1 byte     requested QoS (0..2)
// The SUBACK [MQTT-3.9] answers with the same packet id and one return code per filter: the granted QoS,
// or 0x80 for a refusal.

const SUBSCRIBE = 0x82;
/** The gateway's longest topic filter (src/ingress/mqtt-broker/device-acl.ts MAX_TOPIC_BYTES). */
const MAX_FILTER_BYTES = 256;

export function encodeSubscribe(filter: string, qos: 0 | 1, packetId: number): Buffer {
  const bytes = Buffer.from(filter, 'utf8');
  if (bytes.length === 0 || bytes.length > MAX_FILTER_BYTES) throw new RangeError(`topic filter must be 1..${MAX_FILTER_BYTES} bytes: ${filter.slice(0, 40)}`);
  const remaining = 2 + 2 + bytes.length + 1;
  const lengthBytes = remaining < 0x80 ? 1 : 2;
  const packet = Buffer.allocUnsafe(1 + lengthBytes + remaining);
  packet[0] = SUBSCRIBE;
  let offset = 1;
  if (lengthBytes === 1) {
    packet[offset++] = remaining;
  } else {
    packet[offset++] = (remaining % 0x80) | 0x80;
    packet[offset++] = Math.floor(remaining / 0x80);
  }
  offset = packet.writeUInt16BE(packetId, offset);
  offset = packet.writeUInt16BE(bytes.length, offset);
  offset += bytes.copy(packet, offset);
  packet[offset] = qos;
  return packet;
}
