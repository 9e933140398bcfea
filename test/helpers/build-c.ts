// Compiles one of the suite's C helpers (the Kafka mock-cluster launcher, the power-cut file system) with
// gcc into a build/ folder beside its source, only when the binary is missing or older than the source.
// A missing compiler or library fails with the Debian package that provides it.
import { execFile } from 'node:child_process';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface CProgram {
  /** Absolute path of the .c file; the binary goes to build/<name> beside it. */
  readonly sourcePath: string;
  /** pkg-config package whose --cflags --libs are added, e.g. 'rdkafka', 'fuse3'. */
  readonly pkgConfig: string;
  /** Flags to use when pkg-config or its .pc file is missing (the Debian layout). */
  readonly fallbackFlags: readonly string[];
  /** Matched against gcc's stderr: the library's headers or .so are missing. */
  readonly missingLibrary: RegExp;
  /** What to install when the library is missing, e.g. "apt-get install -y libfuse3-dev". */
  readonly installHint: string;
  readonly extraFlags?: readonly string[];
}

/** Returns the binary's path, compiling it first when it is missing or stale. */
export async function buildCProgram(program: CProgram): Promise<string> {
  const buildDir = join(dirname(program.sourcePath), 'build');
  const binaryPath = join(buildDir, basename(program.sourcePath, '.c'));
  const sourceMtimeMs = (await stat(program.sourcePath)).mtimeMs;
  const binaryMtimeMs = await mtimeMsOrUndefined(binaryPath);
  if (binaryMtimeMs !== undefined && binaryMtimeMs >= sourceMtimeMs) return binaryPath;

  await mkdir(buildDir, { recursive: true });
  // node --test runs test files in parallel processes that may all build at once: each compiles to its
  // own file and renames it into place atomically.
  const tempPath = `${binaryPath}.${process.pid}.tmp`;
  try {
    await compile(program, tempPath, await libraryFlags(program));
    await rename(tempPath, binaryPath);
  } finally {
    await rm(tempPath, { force: true });
  }
  return binaryPath;
}

async function compile(program: CProgram, outputPath: string, flags: readonly string[]): Promise<void> {
  const name = basename(program.sourcePath, '.c');
  const args = ['-std=c11', '-O2', '-Wall', '-Wextra', ...(program.extraFlags ?? []), '-o', outputPath, program.sourcePath, ...flags];
  try {
    await execFileAsync('gcc', args);
  } catch (error) {
    if (isErrnoException(error) && error.code === 'ENOENT') {
      throw new Error(`${name}: gcc not found; install a C compiler (apt-get install -y gcc) and ${program.installHint}`, { cause: error });
    }
    const stderr = errorStderr(error);
    const hint = program.missingLibrary.test(stderr) ? `a library is missing: ${program.installHint}` : 'gcc failed';
    throw new Error(`${name}: ${hint}\n$ gcc ${args.join(' ')}\n${stderr}`, { cause: error });
  }
}

// pkg-config knows non-default install prefixes; without it (or without the .pc file) the Debian layout
// needs only the fallback flags.
async function libraryFlags(program: CProgram): Promise<readonly string[]> {
  try {
    const { stdout } = await execFileAsync('pkg-config', ['--cflags', '--libs', program.pkgConfig]);
    const flags = stdout
      .trim()
      .split(/\s+/)
      .filter((flag) => flag !== '');
    return flags.length > 0 ? flags : program.fallbackFlags;
  } catch {
    return program.fallbackFlags;
  }
}

async function mtimeMsOrUndefined(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).mtimeMs;
  } catch (error) {
    if (isErrnoException(error) && error.code === 'ENOENT') return undefined;
    throw error;
  }
}

function isErrnoException(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && 'code' in error;
}

function errorStderr(error: unknown): string {
  if (typeof error === 'object' && error !== null && 'stderr' in error) {
    return String((error as { stderr: unknown }).stderr).trim();
  }
  return String(error);
}
