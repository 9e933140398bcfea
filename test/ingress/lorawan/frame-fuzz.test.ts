// The decoders face bytes from an unauthenticated UDP port and radios: on any input they must return a typed
// result and never throw. Seeded, so a failure reproduces; a few thousand inputs, well under a second.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { decodeCayenneLpp } from '../../../src/codecs/cayenne-lpp.ts';
import { cryptFrmPayload, decodeJoinAccept, verifyDataFrameMic, verifyJoinRequestMic } from '../../../src/ingress/lorawan/frame-crypto.ts';
import { fullFrameCounter } from '../../../src/ingress/lorawan/frame-counter.ts';
import { MTYPES, type PhyRejectReason, parsePhyPayload } from '../../../src/ingress/lorawan/phy-payload.ts';
import { createRandom as prng } from '../../../firmware-sim/fleet.ts';

const SEED = 0x10ba_4a11;
const KEY = Buffer.from('2b7e151628aed2a6abf7158809cf4f3c', 'hex');
const REASONS: ReadonlySet<PhyRejectReason> = new Set([
  'too-short',
  'too-long',
  'major-unsupported',
  'mtype-unsupported',
  'fopts-overflow',
  'fport0-with-fopts',
  'length-mismatch',
]);

interface Vectors {
  readonly id: string;
  readonly phy_payload_hex?: string;
  readonly payload_hex?: string;
}
const vectors = JSON.parse(readFileSync(new URL('../../fixtures/lorawan/lorawan-vectors.json', import.meta.url), 'utf8')) as readonly Vectors[];
const phySeeds = vectors.flatMap((vector) => (vector.phy_payload_hex === undefined ? [] : [Buffer.from(vector.phy_payload_hex, 'hex')]));
const lppSeeds = vectors.flatMap((vector) => (vector.payload_hex === undefined ? [] : [Buffer.from(vector.payload_hex, 'hex')]));

/** Inputs derived from valid frames: every truncation, every single-bit flip, and random multi-byte mutations. */
function* mutationsOf(seeds: readonly Buffer[], random: () => number, randomMutations: number): Generator<Buffer> {
  for (const seed of seeds) {
    for (let length = 0; length <= seed.length; length++) yield seed.subarray(0, length);
    for (let bit = 0; bit < seed.length * 8; bit++) {
      const flipped = Buffer.from(seed);
      flipped[bit >>> 3] = (flipped[bit >>> 3] ?? 0) ^ (1 << (bit & 7));
      yield flipped;
    }
  }
  for (let i = 0; i < randomMutations; i++) {
    const seed = seeds[Math.floor(random() * seeds.length)] ?? Buffer.alloc(0);
    const mutated = Buffer.from(seed);
    const edits = 1 + Math.floor(random() * 4);
    for (let edit = 0; edit < edits && mutated.length > 0; edit++) mutated[Math.floor(random() * mutated.length)] = Math.floor(random() * 256);
    // Sometimes grow or shrink the frame as well, so lengths near every boundary come up.
    const resized = random() < 0.3 ? Buffer.concat([mutated, Buffer.alloc(Math.floor(random() * 20), Math.floor(random() * 256))]) : mutated;
    yield random() < 0.3 ? resized.subarray(0, Math.floor(random() * resized.length)) : resized;
  }
}

/** Random bytes of every length 0..64; half start with a data-frame MHDR so the parser gets past the first byte. */
function* randomBuffers(random: () => number, perLength: number, firstBytes: readonly number[]): Generator<Buffer> {
  for (let length = 0; length <= 64; length++) {
    for (let i = 0; i < perLength; i++) {
      const bytes = Buffer.alloc(length);
      for (let j = 0; j < length; j++) bytes[j] = Math.floor(random() * 256);
      if (length > 0 && i % 2 === 0) bytes[0] = firstBytes[i % firstBytes.length] ?? 0;
      yield bytes;
    }
  }
}

/** Parses, checks the result is well formed, and runs what a gateway does next on every accepted frame. */
function checkPhy(bytes: Buffer): 'ok' | 'rejected' {
  const label = bytes.toString('hex');
  const result = parsePhyPayload(bytes);
  if (!result.ok) {
    assert.ok(REASONS.has(result.reason), `${label}: unknown reason ${result.reason}`);
    assert.ok(typeof result.message === 'string' && result.message.length > 0, label);
    return 'rejected';
  }
  const { frame } = result;
  switch (frame.kind) {
    case 'data': {
      assert.ok(MTYPES.indexOf(frame.mtype) >= 2 && MTYPES.indexOf(frame.mtype) <= 5, label);
      assert.match(frame.devAddr, /^[0-9a-f]{8}$/, label);
      assert.equal(frame.micInput.length + 4, bytes.length, label);
      assert.equal(frame.mic.length, 4, label);
      assert.equal(frame.fopts.length, frame.fctrl.foptsLen, label);
      assert.ok(frame.fport === null ? frame.frmPayload.length === 0 : frame.fport >= 0 && frame.fport <= 255, label);
      const fcnt32 = fullFrameCounter(65_530, frame.fcnt16);
      assert.equal(typeof verifyDataFrameMic(KEY, frame.direction, frame.devAddr, fcnt32, frame.micInput, frame.mic), 'boolean', label);
      assert.equal(cryptFrmPayload(KEY, frame.direction, frame.devAddr, fcnt32, frame.frmPayload).length, frame.frmPayload.length, label);
      break;
    }
    case 'join-request':
      assert.equal(bytes.length, 23, label);
      assert.match(frame.devEui, /^[0-9a-f]{16}$/, label);
      assert.equal(typeof verifyJoinRequestMic(KEY, frame.micInput, frame.mic), 'boolean', label);
      break;
    case 'join-accept':
      assert.equal(frame.encrypted.length + 1, bytes.length, label);
      break;
  }
  return 'ok';
}

function checkLpp(bytes: Buffer): void {
  const result = decodeCayenneLpp(bytes);
  assert.equal(typeof result.data, 'object', bytes.toString('hex'));
  if (!result.ok) assert.ok(result.error.length > 0, bytes.toString('hex'));
}

test('parsePhyPayload never throws on random bytes of every length 0..64', () => {
  const random = prng(SEED);
  const outcomes = { ok: 0, rejected: 0 };
  for (const bytes of randomBuffers(random, 24, [0x40, 0x80, 0x60, 0xa0, 0x00, 0x20])) {
    outcomes[checkPhy(bytes)]++;
    assert.equal(typeof decodeJoinAccept(KEY, bytes).ok, 'boolean');
  }
  // Half the inputs carry a data MHDR, so many must get through the whole parser.
  assert.ok(outcomes.ok > 300 && outcomes.rejected > 300, JSON.stringify(outcomes));
});

test('parsePhyPayload never throws on truncations, bit flips and mutations of every vector', () => {
  const random = prng(SEED + 1);
  let count = 0;
  for (const bytes of mutationsOf(phySeeds, random, 1000)) {
    checkPhy(bytes);
    assert.equal(typeof decodeJoinAccept(KEY, bytes).ok, 'boolean');
    count++;
  }
  assert.ok(count > 4000, `${count} inputs`);
});

test('parsePhyPayload rejects over-long input and non-bytes without throwing', () => {
  assert.equal(checkPhy(Buffer.alloc(256, 0x40)), 'rejected');
  for (const input of [null, undefined, 'QPF9vkkAAgABlUN4disR/w0=', 42, {}, [0x40]]) {
    const result = parsePhyPayload(input as unknown as Uint8Array);
    assert.equal(result.ok, false);
  }
});

test('decodeCayenneLpp never throws on random bytes, truncations, flips and mutations', () => {
  const random = prng(SEED + 2);
  let count = 0;
  for (const bytes of randomBuffers(random, 16, [0x01, 0x03])) {
    checkLpp(bytes);
    count++;
  }
  for (const bytes of mutationsOf(lppSeeds, random, 1000)) {
    checkLpp(bytes);
    count++;
  }
  assert.ok(count > 2000, `${count} inputs`);
});
