// The in-place reads that replace bl's on mqtt-packet's BufferList (buffer-list-reads.ts) against bl's own
// methods: the same value or the same error for every offset, in range or not, over lists cut at random
// points; and mqtt-packet, parsing through them, gets back every packet it wrote whatever the cuts.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { installInPlaceReads, mqttPacketBufferList } from '../../src/ingress/mqtt-broker/buffer-list-reads.ts';
import { createRandom } from '../../firmware-sim/fleet.ts';

type List = {
  append(buf: Buffer): List;
  readonly length: number;
  readUInt8(offset?: unknown): number;
  readUInt16BE(offset?: unknown): number;
  readUInt32BE(offset?: unknown): number;
  toString(encoding?: unknown, start?: unknown, end?: unknown): string;
};

const BufferList = mqttPacketBufferList() as unknown as (new () => List) & { prototype: List };

const original = installInPlaceReads(BufferList as never) as unknown as Record<
  'readUInt8' | 'readUInt16BE' | 'readUInt32BE' | 'toString',
  (...args: unknown[]) => unknown
>;

/** The bytes cut into 1 to 4 pieces at random points, appended to a list. */
function listOf(bytes: Buffer, next: () => number): List {
  const list = new BufferList();
  let at = 0;
  const pieces = 1 + Math.floor(next() * 4);
  for (let piece = 1; piece < pieces && at < bytes.length; piece++) {
    const end = at + Math.floor(next() * (bytes.length - at));
    list.append(bytes.subarray(at, end));
    at = end;
  }
  list.append(bytes.subarray(at));
  return list;
}

function outcome(run: () => unknown): unknown {
  try {
    return { value: run() };
  } catch (error) {
    return { error: (error as Error).constructor.name, code: (error as { code?: unknown }).code, message: (error as Error).message };
  }
}

test("the in-place reads give bl's value or bl's error for every offset", () => {
  const next = createRandom(7);
  // No fractional offsets: bl's own read of those can return uninitialised bytes (its copy leaves a gap), so
  // it is not comparable with itself; the fallback sends them to bl all the same.
  const odd: unknown[] = [undefined, -1, -3, Number.NaN, Number.POSITIVE_INFINITY, '1', null];
  for (let round = 0; round < 400; round++) {
    const bytes = Buffer.from(Array.from({ length: Math.floor(next() * 12) }, () => Math.floor(next() * 256)));
    const list = listOf(bytes, next);
    const offsets = [...odd, ...Array.from({ length: bytes.length + 5 }, (_, index) => index)];
    for (const method of ['readUInt8', 'readUInt16BE', 'readUInt32BE'] as const) {
      for (const offset of offsets) {
        const args = offset === undefined ? [] : [offset];
        assert.deepEqual(
          outcome(() => list[method](...args)),
          outcome(() => original[method].apply(list, args)),
          `${method}(${String(offset)}) of ${bytes.toString('hex')} in pieces`,
        );
      }
    }
  }
});

test("toString gives bl's text for every range and encoding, across piece boundaries and multi-byte characters", () => {
  const next = createRandom(11);
  const texts = ['devices/m-1/telemetry', 'zähler/é/€/𝄞', '', 'a'];
  for (let round = 0; round < 300; round++) {
    const bytes = Buffer.from(texts[round % texts.length] as string, 'utf8');
    const list = listOf(bytes, next);
    const bounds: unknown[] = [undefined, -2, ...Array.from({ length: bytes.length + 3 }, (_, index) => index)];
    for (const encoding of ['utf8', 'hex', 'latin1', undefined]) {
      for (const start of bounds) {
        for (const end of bounds) {
          assert.deepEqual(
            outcome(() => list.toString(encoding, start, end)),
            outcome(() => original.toString.call(list, encoding, start, end)),
            `toString(${String(encoding)}, ${String(start)}, ${String(end)}) of ${bytes.toString('hex')}`,
          );
        }
      }
    }
  }
});

test('mqtt-packet parses through the in-place reads every packet it wrote, however the stream is cut', () => {
  const mqttPacket = createRequire(import.meta.url)('mqtt-packet') as {
    generate(packet: object): Buffer;
    parser(options: object): { on(event: string, listener: (value: never) => void): void; parse(buf: Buffer): number };
  };
  const next = createRandom(3);
  const sent = Array.from({ length: 300 }, (_, index) => ({
    cmd: 'publish' as const,
    topic: `devices/meter-${index}/télémetrie`,
    payload: Buffer.alloc(Math.floor(next() * 300), index & 0xff),
    qos: (index % 2) as 0 | 1,
    messageId: index % 2 === 1 ? 1 + index : undefined,
    retain: false,
    dup: false,
  }));
  const stream = Buffer.concat(sent.map((packet) => mqttPacket.generate(packet)));
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const received: { topic: string; payload: Buffer; qos: number; messageId?: number }[] = [];
  parser.on('packet', (packet: never) => received.push(packet));
  parser.on('error', (error: never) => assert.fail(error));
  for (let at = 0; at < stream.length; ) {
    const end = Math.min(stream.length, at + 1 + Math.floor(next() * 40));
    parser.parse(stream.subarray(at, end));
    at = end;
  }
  assert.equal(received.length, sent.length);
  for (const [index, packet] of received.entries()) {
    const expected = sent[index] as (typeof sent)[number];
    assert.equal(packet.topic, expected.topic);
    assert.deepEqual(Buffer.from(packet.payload), expected.payload);
    assert.equal(packet.qos, expected.qos);
    if (expected.qos === 1) assert.equal(packet.messageId, expected.messageId);
  }
});

test("the broker installs the in-place reads on the list of mqtt-packet's parser", async () => {
  await import('../../src/ingress/mqtt-broker/broker.ts');
  const mqttPacket = createRequire(import.meta.url)('mqtt-packet') as { parser(options: object): { _list: List } };
  const list = mqttPacket.parser({ protocolVersion: 4 })._list;
  for (const method of ['readUInt8', 'readUInt16BE', 'readUInt32BE', 'toString'] as const) {
    assert.equal(list[method], BufferList.prototype[method], `${method} is the patched one`);
    assert.notEqual(list[method], original[method], `${method} is not bl's own`);
  }
  assert.equal(installInPlaceReads(BufferList as never).readUInt8, original.readUInt8, 'a second install keeps the originals');
});
