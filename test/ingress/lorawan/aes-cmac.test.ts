import assert from 'node:assert/strict';
import { createCipheriv } from 'node:crypto';
import { test } from 'node:test';
import { aesCmac, aesEncryptBlocks, createAesCmac } from '../../../src/ingress/lorawan/aes-cmac.ts';

const hex = (value: string): Buffer => Buffer.from(value, 'hex');

// RFC 4493 §4: one key, messages of 0, 16, 40 and 64 bytes (empty, one whole block, a padded last block, whole blocks).
const RFC_KEY = hex('2b7e151628aed2a6abf7158809cf4f3c');
const RFC_MESSAGE = hex('6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710');
const RFC_EXAMPLES = [
  { length: 0, tag: 'bb1d6929e95937287fa37d129b756746' },
  { length: 16, tag: '070a16b46b4d4144f79bdd9dd04a287c' },
  { length: 40, tag: 'dfa66747de9ae63030ca32611497c827' },
  { length: 64, tag: '51f0bebf7e3b9d92fc49741779363cfe' },
];

for (const { length, tag } of RFC_EXAMPLES) {
  test(`RFC 4493 example, ${length}-byte message`, () => {
    assert.equal(aesCmac(RFC_KEY, RFC_MESSAGE.subarray(0, length)).toString('hex'), tag);
    assert.equal(createAesCmac(RFC_KEY)(RFC_MESSAGE.subarray(0, length)).toString('hex'), tag);
  });
}

/** A plain CMAC with fresh ciphers on every call: slow, obviously stateless, the reference for the cached one. */
function referenceCmac(key: Uint8Array, message: Uint8Array): Buffer {
  const encrypt = (block: Buffer) => {
    const cipher = createCipheriv('aes-128-ecb', key, null);
    cipher.setAutoPadding(false);
    return cipher.update(block);
  };
  const double = (block: Buffer) => {
    const out = Buffer.alloc(16);
    for (let i = 0; i < 16; i++) out[i] = (((block[i] ?? 0) << 1) | ((block[i + 1] ?? 0) >>> 7)) & 0xff;
    if (((block[0] ?? 0) & 0x80) !== 0) out[15] = (out[15] ?? 0) ^ 0x87;
    return out;
  };
  const k1 = double(encrypt(Buffer.alloc(16)));
  const k2 = double(k1);
  const blocks = Math.max(1, Math.ceil(message.length / 16));
  const padded = Buffer.alloc(blocks * 16);
  padded.set(message);
  const complete = message.length > 0 && message.length % 16 === 0;
  if (!complete) padded[message.length] = 0x80;
  let state = Buffer.alloc(16);
  for (let block = 0; block < blocks; block++) {
    const input = Buffer.alloc(16);
    for (let i = 0; i < 16; i++) {
      const subkey = block === blocks - 1 ? (complete ? k1 : k2)[i] : 0;
      input[i] = (state[i] ?? 0) ^ (padded[block * 16 + i] ?? 0) ^ (subkey ?? 0);
    }
    state = encrypt(input);
  }
  return state;
}

test('cached ciphers keep no state between messages, keys or lengths', () => {
  // The CBC cipher behind a key is reused across calls; interleave keys and lengths so a leak of chaining
  // state from one message into the next would show.
  const keys = [RFC_KEY, hex('00112233445566778899aabbccddeeff'), Buffer.alloc(16)];
  const bound = keys.map((key) => createAesCmac(key));
  for (let round = 0; round < 3; round++) {
    for (let length = 0; length <= 70; length++) {
      const message = Buffer.alloc(length);
      for (let i = 0; i < length; i++) message[i] = (i * 31 + length + round) & 0xff;
      for (const [index, key] of keys.entries()) {
        const expected = referenceCmac(key, message).toString('hex');
        assert.equal(aesCmac(key, message).toString('hex'), expected, `key ${index}, ${length} bytes`);
        assert.equal(bound[index]?.(message).toString('hex'), expected, `bound key ${index}, ${length} bytes`);
      }
    }
  }
});

test('the returned tag is the caller’s to keep', () => {
  const first = aesCmac(RFC_KEY, Buffer.alloc(0));
  first.fill(0);
  assert.equal(aesCmac(RFC_KEY, Buffer.alloc(0)).toString('hex'), 'bb1d6929e95937287fa37d129b756746');
  assert.equal(aesCmac(RFC_KEY, RFC_MESSAGE.subarray(0, 16)).toString('hex'), '070a16b46b4d4144f79bdd9dd04a287c');
});

test('a key is read by value: the same bytes in another buffer give the same tag', () => {
  const inLargerBuffer = Buffer.concat([Buffer.from([9, 9, 9]), RFC_KEY]).subarray(3);
  assert.equal(aesCmac(new Uint8Array(inLargerBuffer), RFC_MESSAGE).toString('hex'), '51f0bebf7e3b9d92fc49741779363cfe');
});

test('aesEncryptBlocks is AES-128-ECB (NIST SP 800-38A F.1.1)', () => {
  const ciphertext = aesEncryptBlocks(RFC_KEY, RFC_MESSAGE);
  assert.equal(
    ciphertext.toString('hex'),
    '3ad77bb40d7a3660a89ecaf32466ef97f5d3d58503b9699de785895a96fdbaaf43b1cd7f598ece23881b00e3ed0306887b0c785e27e8ad3f8223207104725dd4',
  );
  assert.throws(() => aesEncryptBlocks(RFC_KEY, Buffer.alloc(15)), TypeError);
});

test('keys of the wrong length are refused with a TypeError', () => {
  assert.throws(() => aesCmac(Buffer.alloc(15), Buffer.alloc(0)), { name: 'TypeError', message: /16 bytes, got 15 bytes/ });
  assert.throws(() => createAesCmac(Buffer.alloc(32)), TypeError);
  assert.throws(() => aesCmac('key' as unknown as Uint8Array, Buffer.alloc(0)), TypeError);
});
