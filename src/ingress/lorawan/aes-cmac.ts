// AES-CMAC (RFC 4493) and raw AES-128 block encryption on node:crypto, which has AES but no CMAC. Every
// LoRaWAN 1.0.x MIC is a truncated CMAC (LoRaWAN 1.0.2 §4.4, §6.2.4, §6.2.5), so this sits on the uplink hot
// path. node:crypto calls cost far more than the AES rounds, so each key keeps its cipher objects and
// subkeys, and one CMAC is a single native update() however long the message.
import { type Cipher, createCipheriv } from 'node:crypto';

const BLOCK_BYTES = 16;
/** RFC 4493 §2.3 const_Rb: the reduction constant for doubling in GF(2^128). */
const RB = 0x87;
/** Keys held in the module-wide cache; past this the oldest are dropped (a gateway sees a bounded fleet). */
const MAX_CACHED_KEYS = 4096;

/** A CMAC bound to one key: the subkeys are derived once. */
export type AesCmac = (message: Uint8Array) => Buffer;

interface KeyContext {
  readonly cmac: AesCmac;
  readonly ecb: Cipher;
}

const contexts = new Map<string, KeyContext>();

/** AES-CMAC of `message` under the 16-byte `key` (the full 16-byte tag; LoRaWAN keeps the first 4). */
export function aesCmac(key: Uint8Array, message: Uint8Array): Buffer {
  return contextFor(key).cmac(message);
}

/**
 * AES-128 encryption of each 16-byte block of `blocks` on its own (ECB), for the LoRaWAN keystream and key
 * derivation (§4.3.3, §6.2.5), which need the bare block cipher. `blocks.length` must be a multiple of 16.
 */
export function aesEncryptBlocks(key: Uint8Array, blocks: Uint8Array): Buffer {
  if (blocks.length % BLOCK_BYTES !== 0) throw new TypeError(`AES-ECB input must be whole 16-byte blocks, got ${blocks.length} bytes`);
  return contextFor(key).ecb.update(blocks);
}

/** A CMAC function bound to `key`, for callers that hold a key for long (a device session) and skip the cache lookup. */
export function createAesCmac(key: Uint8Array): AesCmac {
  assertAesKey(key);
  return cmacWith(newEcb(key), key);
}

function contextFor(key: Uint8Array): KeyContext {
  assertAesKey(key);
  // latin1 maps each byte to one char: the cheapest exact string key for a Map.
  const id = Buffer.from(key.buffer, key.byteOffset, BLOCK_BYTES).toString('latin1');
  let context = contexts.get(id);
  if (context === undefined) {
    if (contexts.size >= MAX_CACHED_KEYS) {
      const oldest = contexts.keys().next();
      if (oldest.done !== true) contexts.delete(oldest.value);
    }
    const ecb = newEcb(key);
    context = { cmac: cmacWith(ecb, key), ecb };
    contexts.set(id, context);
  }
  return context;
}

function assertAesKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== BLOCK_BYTES) {
    const got = key instanceof Uint8Array ? `${key.length} bytes` : typeof key;
    throw new TypeError(`AES-128 key must be 16 bytes, got ${got}`);
  }
}

// ECB without padding encrypts every whole block an update() receives and keeps nothing between calls, so
// one cipher object serves any number of independent encryptions. final() is never called.
function newEcb(key: Uint8Array): Cipher {
  const ecb = createCipheriv('aes-128-ecb', key, null);
  ecb.setAutoPadding(false);
  return ecb;
}

function cmacWith(ecb: Cipher, key: Uint8Array): AesCmac {
  // RFC 4493 §2.3: L = AES(K, 0^128); K1 = L·x; K2 = K1·x in GF(2^128).
  const k1 = doubleBlock(ecb.update(Buffer.alloc(BLOCK_BYTES)));
  const k2 = doubleBlock(k1);

  // The CBC-MAC runs on a CBC cipher that lives as long as the key. A CBC cipher chains each message onto the
  // last ciphertext block of the previous one; XORing that block into the new first block cancels it
  // (E(M1 ^ C ^ C) = E(M1)), so every message starts from the zero IV that RFC 4493 requires.
  const cbc = createCipheriv('aes-128-cbc', key, Buffer.alloc(BLOCK_BYTES));
  cbc.setAutoPadding(false);
  const chain = Buffer.alloc(BLOCK_BYTES);

  return (message) => {
    const blockCount = message.length === 0 ? 1 : Math.ceil(message.length / BLOCK_BYTES);
    const isComplete = message.length > 0 && message.length % BLOCK_BYTES === 0;
    const input = Buffer.alloc(blockCount * BLOCK_BYTES);
    input.set(message);
    // RFC 4493 §2.4 steps 3-4: a complete last block is XORed with K1; a short one is padded 10* and XORed with K2.
    if (!isComplete) input[message.length] = 0x80;
    const subkey = isComplete ? k1 : k2;
    const lastOffset = (blockCount - 1) * BLOCK_BYTES;
    for (let i = 0; i < BLOCK_BYTES; i++) {
      input[lastOffset + i] = (input[lastOffset + i] ?? 0) ^ (subkey[i] ?? 0);
      input[i] = (input[i] ?? 0) ^ (chain[i] ?? 0);
    }
    const output = cbc.update(input);
    output.copy(chain, 0, lastOffset);
    return Buffer.from(chain);
  };
}

/** Multiplication by x in GF(2^128): shift left one bit, reduce with Rb when the top bit falls off. */
function doubleBlock(block: Buffer): Buffer {
  const doubled = Buffer.alloc(BLOCK_BYTES);
  for (let i = 0; i < BLOCK_BYTES; i++) {
    const next = i + 1 < BLOCK_BYTES ? (block[i + 1] ?? 0) : 0;
    doubled[i] = (((block[i] ?? 0) << 1) | (next >>> 7)) & 0xff;
  }
  if (((block[0] ?? 0) & 0x80) !== 0) doubled[BLOCK_BYTES - 1] = (doubled[BLOCK_BYTES - 1] ?? 0) ^ RB;
  return doubled;
}
