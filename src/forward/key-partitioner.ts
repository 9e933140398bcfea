// The partition of a keyed record, as the Java client and kafkajs' DefaultPartitioner choose it: murmur2 of the
// key's UTF-8 bytes, positive, modulo the topic's partition count. Same key, same partition, whoever produces.
// kafkajs computes murmur2 in 64-bit Long (BigInt) objects and filters the partition list once per message,
// 4 % of the forwarding thread; this is 32-bit integer arithmetic, the same numbers (a contract test compares
// them). A message without a key goes to kafkajs' own partitioner (round robin over available partitions).

import type { ICustomPartitioner, PartitionerArgs } from 'kafkajs';

const SEED = 0x9747b28c;
const M = 0x5bd1e995;

/** Java's Utils.murmur2 over the bytes of `key` (a string is taken as UTF-8), as a signed 32-bit number. */
export function murmur2(key: string | Uint8Array): number {
  const data = typeof key === 'string' ? bytesOf(key) : key;
  const length = typeof key === 'string' ? scratchLength : key.length;
  let h = (SEED ^ length) | 0;
  const whole = length & ~3;
  for (let at = 0; at < whole; at += 4) {
    let k = (data[at] as number) | ((data[at + 1] as number) << 8) | ((data[at + 2] as number) << 16) | ((data[at + 3] as number) << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
  }
  // The last one to three bytes (Java's switch falls through from case 3 to case 1).
  const tail = length & 3;
  if (tail === 3) h ^= (data[whole + 2] as number) << 16;
  if (tail >= 2) h ^= (data[whole + 1] as number) << 8;
  if (tail >= 1) {
    h ^= data[whole] as number;
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/** Reused for string keys: their UTF-8 bytes are hashed from here, so a key costs no allocation. */
let scratch = new Uint8Array(256);
let scratchLength = 0;

/** The key's UTF-8 bytes, in `scratch` (its first `scratchLength` bytes). */
function bytesOf(key: string): Uint8Array {
  if (key.length * 3 > scratch.length) scratch = new Uint8Array(key.length * 3);
  let ascii = true;
  for (let index = 0; index < key.length; index++) {
    const code = key.charCodeAt(index);
    if (code > 0x7f) {
      ascii = false;
      break;
    }
    scratch[index] = code;
  }
  scratchLength = ascii ? key.length : Buffer.from(scratch.buffer, scratch.byteOffset, scratch.length).write(key, 'utf8');
  return scratch;
}

/**
 * kafkajs' createPartitioner: keyed messages by murmur2 (as its DefaultPartitioner), everything else
 * (an explicit partition, no key) by `fallback`, an instance of kafkajs' DefaultPartitioner.
 */
export function createKeyPartitioner(fallback: ICustomPartitioner): ICustomPartitioner {
  return () => {
    const other = fallback();
    return (args: PartitionerArgs): number => {
      const { message, partitionMetadata } = args;
      const key = message.key;
      if (message.partition !== null && message.partition !== undefined) return other(args);
      if (typeof key === 'string' || Buffer.isBuffer(key)) return (murmur2(key) & 0x7fffffff) % partitionMetadata.length;
      return other(args);
    };
  };
}
