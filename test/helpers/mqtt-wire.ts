// MQTT 3.1.1 packets written by hand, for tests that must say what a well-behaved client would not (a keepalive
// of 0, a 60 KiB username, half a PUBLISH) or feed bytes straight into a socket or a parser.

/** The remaining-length field [MQTT-2.2.3]: 7 bits a byte, least significant first, high bit = more follows. */
export function remainingLength(value: number): number[] {
  const bytes: number[] = [];
  let rest = value;
  do {
    let byte = rest % 128;
    rest = Math.floor(rest / 128);
    if (rest > 0) byte |= 0x80;
    bytes.push(byte);
  } while (rest > 0);
  return bytes;
}

/** A packet: the type-and-flags byte, the remaining length, the body. */
export function mqttPacket(type: number, ...body: readonly Buffer[]): Buffer {
  const joined = Buffer.concat(body);
  return Buffer.concat([Buffer.from([type, ...remainingLength(joined.length)]), joined]);
}

/** A UTF-8 string field: 2-byte length, then the bytes. */
export function mqttString(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  return Buffer.concat([Buffer.from([bytes.length >> 8, bytes.length & 0xff]), bytes]);
}

export interface ConnectFields {
  readonly clientId: string;
  /** Default true. */
  readonly clean?: boolean;
  /** Default 60. */
  readonly keepaliveS?: number;
  readonly username?: string;
  readonly password?: string;
}

export function connectPacket(fields: ConnectFields): Buffer {
  let flags = fields.clean === false ? 0x00 : 0x02;
  if (fields.username !== undefined) flags |= 0x80;
  if (fields.password !== undefined) flags |= 0x40;
  const keepalive = fields.keepaliveS ?? 60;
  return mqttPacket(
    0x10,
    mqttString('MQTT'),
    Buffer.from([4, flags, keepalive >> 8, keepalive & 0xff]),
    mqttString(fields.clientId),
    ...(fields.username === undefined ? [] : [mqttString(fields.username)]),
    ...(fields.password === undefined ? [] : [mqttString(fields.password)]),
  );
}

export function publishPacket(topic: string, payload: Buffer, qos: 0 | 1, packetId = 1): Buffer {
  return mqttPacket(qos === 1 ? 0x32 : 0x30, mqttString(topic), ...(qos === 1 ? [Buffer.from([packetId >> 8, packetId & 0xff])] : []), payload);
}
