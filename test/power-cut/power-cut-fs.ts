// Mounts power-cut-fs (power-cut-fs.c: an in-memory FUSE file system that keeps only what was fsynced when
// the power is cut) and drives it: cut() is the power failing, unmount() then writes what the disk kept to
// the image, and the next mount starts from it, as a machine boots from its disk.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildCProgram } from '../helpers/build-c.ts';
import { waitFor } from '../helpers/wait-for.ts';

export function buildPowerCutFs(): Promise<string> {
  return buildCProgram({
    sourcePath: fileURLToPath(new URL('./power-cut-fs.c', import.meta.url)),
    pkgConfig: 'fuse3',
    fallbackFlags: ['-I/usr/include/fuse3', '-lfuse3', '-lpthread'],
    extraFlags: ['-pthread'],
    missingLibrary: /fuse\.h|-lfuse3/,
    installHint: 'install libfuse 3 (Debian/Ubuntu: `apt-get install -y libfuse3-dev fuse3`)',
  });
}

export interface PowerCutFsOptions {
  /** Where the disk's content lives between mounts (created at the first unmount). */
  readonly imagePath: string;
  readonly mountPoint: string;
  /** A disk that acknowledges fsync without flushing: the control run that must lose data. */
  readonly ignoreFsync?: boolean;
}

export interface PowerCutFs {
  readonly mountPoint: string;
  /**
   * The power fails: from now on every operation on the mount fails with EIO, and what the disk kept is in the
   * image when this resolves. Kill the mount's users, then unmount().
   */
  cut(): Promise<void>;
  /** Unmounts; without a cut first, everything is written to the image first (a clean shutdown syncs). */
  unmount(): Promise<void>;
}

export async function mountPowerCutFs(options: PowerCutFsOptions): Promise<PowerCutFs> {
  const binary = await buildPowerCutFs();
  const args = [...(options.ignoreFsync === true ? ['--ignore-fsync'] : []), options.imagePath, options.mountPoint];
  const daemon = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  let imagesWritten = 0;
  daemon.stderr?.on('data', (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    imagesWritten += text.split('image written').length - 1;
    stderr = (stderr + text).slice(-4000);
  });
  const exited = new Promise<string>((resolve) => daemon.once('exit', (code, signal) => resolve(signal === null ? `code ${code}` : `signal ${signal}`)));
  let exitCode: string | undefined;
  void exited.then((code) => {
    exitCode = code;
  });
  try {
    await waitFor(
      () => {
        if (exitCode !== undefined) throw new Error(`power-cut-fs exited with ${exitCode} before mounting: ${stderr}`);
        return isMounted(options.mountPoint);
      },
      `power-cut-fs to mount ${options.mountPoint}`,
      10_000,
      20,
    );
  } catch (error) {
    daemon.kill('SIGKILL');
    throw error;
  }
  let cut = false;
  /** Signals the daemon and waits until it has written the image. */
  async function writeImage(signal: 'SIGUSR1' | 'SIGUSR2'): Promise<void> {
    const before = imagesWritten;
    daemon.kill(signal);
    await waitFor(
      () => {
        if (exitCode !== undefined) throw new Error(`power-cut-fs exited (${exitCode}) before writing its image: ${stderr}`);
        return imagesWritten > before;
      },
      'power-cut-fs to write its image',
      10_000,
      5,
    );
  }
  return {
    mountPoint: options.mountPoint,
    async cut() {
      cut = true;
      await writeImage('SIGUSR1');
    },
    async unmount() {
      if (exitCode !== undefined) return;
      if (!cut) await writeImage('SIGUSR2');
      await unmountAndStop(options.mountPoint, daemon, exited);
    },
  };
}

function isMounted(mountPoint: string): boolean {
  // /proc/self/mountinfo field 5 is the mount point (octal escapes for spaces; test paths have none).
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[4] === mountPoint && line.includes('fuse.power-cut-fs'));
}

/**
 * The image is written: detach the mount and end the daemon. A mount namespace created while it was mounted
 * (systemd-nspawn in a test running beside this one) keeps a copy of the mount, and with it the daemon's
 * connection, alive after the unmount here; the daemon is then killed, its image being complete already.
 */
async function unmountAndStop(mountPoint: string, daemon: ChildProcess, exited: Promise<string>): Promise<void> {
  let lastError = '';
  await waitFor(
    () => {
      if (!isMounted(mountPoint)) return true;
      // Not lazy at first: the processes using the mount were just killed, and their files close in a moment.
      const result = spawnSync('umount', [mountPoint], { encoding: 'utf8' });
      lastError = result.stderr;
      return result.status === 0;
    },
    `umount ${mountPoint} (${lastError.trim()})`,
    10_000,
    50,
  );
  const timer = setTimeout(() => daemon.kill('SIGKILL'), 2_000);
  await exited;
  clearTimeout(timer);
}
