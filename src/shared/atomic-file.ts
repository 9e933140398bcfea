// Writing a whole file so that a crash or power cut leaves the old file or the new one, never a mix: a temp
// file beside it, written and fsynced, then renamed (or linked, to never replace an existing file) into place,
// and the directory fsynced so the new name itself survives.
import { randomBytes } from 'node:crypto';
import { link, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export interface AtomicWriteOptions {
  /** Permission bits of the new file (0o600 for anything holding keys). */
  readonly mode: number;
  /** true: replace an existing file; false: fail with EEXIST if there is one. */
  readonly replace: boolean;
}

/** Rejects with the fs error (code ENOSPC, ENOENT, EACCES, EEXIST, ...); no temp file is left behind. */
export async function writeFileAtomically(path: string, data: Uint8Array, options: AtomicWriteOptions): Promise<void> {
  const directory = dirname(path);
  const temp = join(directory, `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  const file = await open(temp, 'wx', options.mode);
  let placed = false;
  try {
    try {
      await file.writeFile(data);
      await file.sync();
    } finally {
      await file.close();
    }
    if (options.replace) await rename(temp, path);
    else await link(temp, path);
    placed = options.replace;
  } finally {
    if (!placed) await unlink(temp).catch(() => undefined);
  }
  await syncDirectory(directory);
}

async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
