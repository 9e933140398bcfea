import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createPacketSizeGuard } from '../../src/ingress/mqtt-broker/packet-size-guard.ts';
import { mqttPacket } from '../helpers/mqtt-wire.ts';

/** A PUBLISH-type packet with `length` bytes of body. */
function packet(length: number): Buffer {
  return mqttPacket(0x30, Buffer.alloc(length, 1));
}

test('packets within the limit pass, across any chunking', () => {
  const stream = Buffer.concat([packet(10), packet(200), packet(127), packet(128), packet(16_383), packet(0)]);
  for (const chunkSize of [1, 2, 3, 7, 64, 1000, stream.length]) {
    const guard = createPacketSizeGuard(16_383);
    for (let offset = 0; offset < stream.length; offset += chunkSize) {
      assert.equal(guard.feed(stream.subarray(offset, offset + chunkSize)), null, `chunk size ${chunkSize}`);
    }
  }
});

test('a packet declaring more than the limit is caught from its header alone', () => {
  const guard = createPacketSizeGuard(1000);
  assert.equal(guard.feed(packet(10)), null);
  // Only the header of a 268,435,455-byte packet: caught as soon as the length read so far passes the limit.
  const declared = guard.feed(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]));
  assert.ok(declared !== null && declared > 1000, `caught (${declared})`);
});

test('a header split between chunks is still read correctly', () => {
  const guard = createPacketSizeGuard(1000);
  assert.equal(guard.feed(Buffer.from([0x30, 0xe9])), null);
  assert.equal(guard.feed(Buffer.from([0x07])), 1001); // 0x69 + 7 * 128 = 1001
});
