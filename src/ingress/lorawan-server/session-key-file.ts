// The key file that seals LoRaWAN session archives (session-archive.ts): 32 random bytes written as 64 hex
// digits, e.g. `openssl rand -hex 32 > key`. Read by the gateway for its periodic backup (which refuses a file
// that group or others may read) and by `iotgw lorawan sessions export|import --key-file`.
import { readFileSync, statSync } from 'node:fs';
import { errorMessage } from '../../errors.ts';
import { ARCHIVE_KEY_BYTES } from './session-archive.ts';

export type ArchiveKeyFile =
  | {
      readonly ok: true;
      readonly key: Buffer;
      /** The permission bits (mode & 0o777). */
      readonly mode: number;
      /** Group or others may read or replace it: whoever can read it can read every backup. */
      readonly exposed: boolean;
    }
  | { readonly ok: false; readonly problem: string };

const KEY_TEXT = new RegExp(`^[0-9A-Fa-f]{${ARCHIVE_KEY_BYTES * 2}}$`);
/** A key file is 65 bytes; anything much larger is not one (and is not read whole). */
const MAX_KEY_FILE_BYTES = 1024;
const MAKE_KEY = 'make one with: (umask 077; openssl rand -hex 32 > FILE), and keep a copy off this machine';

export function readArchiveKeyFile(path: string): ArchiveKeyFile {
  let mode: number;
  let text: string;
  try {
    const stat = statSync(path);
    if (!stat.isFile()) return { ok: false, problem: `${path} is not a regular file` };
    if (stat.size > MAX_KEY_FILE_BYTES)
      return { ok: false, problem: `${path} is ${stat.size} bytes, not a key file (${ARCHIVE_KEY_BYTES * 2} hex digits): ${MAKE_KEY}` };
    mode = stat.mode & 0o777;
    text = readFileSync(path, 'utf8').trim();
  } catch (error) {
    return { ok: false, problem: `cannot read ${path}: ${errorMessage(error)}` };
  }
  if (!KEY_TEXT.test(text)) {
    return { ok: false, problem: `${path} must hold a ${ARCHIVE_KEY_BYTES}-byte key as ${ARCHIVE_KEY_BYTES * 2} hex digits (and nothing else): ${MAKE_KEY}` };
  }
  return { ok: true, key: Buffer.from(text, 'hex'), mode, exposed: (mode & 0o066) !== 0 };
}
