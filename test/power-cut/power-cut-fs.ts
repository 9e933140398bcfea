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
  /** The power fails: from now on every operation on the mount fails with EIO. Kill its users, then unmount(). */
  cut(): void;
  /** Unmounts; the daemon writes the image (the durable state after a cut, else everything) and exits. */
  unmount(): Promise<void>;
}

export async function mountPowerCutFs(options: PowerCutFsOptions): Promise<PowerCutFs> {
  const binary = await buildPowerCutFs();
  const args = [...(options.ignoreFsync === true ? ['--ignore-fsync'] : []), options.imagePath, options.mountPoint];
  const daemon = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  daemon.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-4000);
  });
  const exited = new Promise<number | null>((resolve) => daemon.once('exit', (code) => resolve(code)));
  let exitCode: number | null | undefined;
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
  return {
    mountPoint: options.mountPoint,
    cut() {
      daemon.kill('SIGUSR1');
    },
    async unmount() {
      await unmountAndWait(options.mountPoint, daemon, exited, () => stderr);
    },
  };
}

function isMounted(mountPoint: string): boolean {
  // /proc/self/mountinfo field 5 is the mount point (octal escapes for spaces; test paths have none).
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[4] === mountPoint && line.includes('fuse.power-cut-fs'));
}

async function unmountAndWait(mountPoint: string, daemon: ChildProcess, exited: Promise<number | null>, stderr: () => string): Promise<void> {
  // The processes using the mount were just killed: the kernel may need a moment to close their files.
  let lastError = '';
  await waitFor(
    () => {
      if (!isMounted(mountPoint)) return true;
      const result = spawnSync('umount', [mountPoint], { encoding: 'utf8' });
      lastError = result.stderr;
      return result.status === 0;
    },
    `umount ${mountPoint} (${lastError.trim()})`,
    10_000,
    50,
  );
  const timer = setTimeout(() => daemon.kill('SIGKILL'), 10_000);
  const code = await exited;
  clearTimeout(timer);
  if (code !== 0) throw new Error(`power-cut-fs exited with ${code} at unmount: ${stderr()}`);
}
