// Device and client passwords are stored as scrypt hashes in PHC form ($scrypt$ln=14,r=8,p=1$salt$hash),
// never as plaintext. Verification runs on libuv's thread pool (async scrypt), off the event loop.
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

export interface ScryptCost {
  /** log2 of N; each +1 doubles CPU and memory (ln=14: 16 MiB, tens of ms on a Pi 4). */
  readonly ln: number;
  readonly r: number;
  readonly p: number;
}

export const DEFAULT_SCRYPT_COST: ScryptCost = { ln: 14, r: 8, p: 1 };
const KEY_BYTES = 32;
const PHC = /^\$scrypt\$ln=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/;

function derive(password: string, salt: Buffer, cost: ScryptCost, keyBytes: number): Promise<Buffer> {
  const N = 2 ** cost.ln;
  return new Promise((resolve, reject) => {
    scrypt(password, salt, keyBytes, { N, r: cost.r, p: cost.p, maxmem: 256 * N * cost.r + 1024 * 1024 }, (error, key) =>
      error ? reject(error) : resolve(key),
    );
  });
}

export async function hashPassword(password: string, cost: ScryptCost = DEFAULT_SCRYPT_COST): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, cost, KEY_BYTES);
  return `$scrypt$ln=${cost.ln},r=${cost.r},p=${cost.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** True when `password` matches `hash`; false for a mismatch or a hash that is not ours. */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const match = PHC.exec(hash);
  if (match === null) return false;
  const cost = { ln: Number(match[1]), r: Number(match[2]), p: Number(match[3]) };
  if (cost.ln < 1 || cost.ln > 22 || cost.r < 1 || cost.p < 1) return false;
  const expected = Buffer.from(match[5] as string, 'base64');
  const actual = await derive(password, Buffer.from(match[4] as string, 'base64'), cost, expected.length);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}
