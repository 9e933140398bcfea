// Compiles the librdkafka mock-cluster launcher (kafka-mock.c) with gcc into
// test/kafka-mock/build/kafka-mock, only when the binary is missing or older
// than its source. Used by test/helpers/kafka-mock.ts before each spawn, and
// runnable on its own: `node --import tsx test/kafka-mock/build.ts`.
import { execFile } from 'node:child_process';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

const SOURCE_PATH = fileURLToPath(new URL('./kafka-mock.c', import.meta.url));
const BUILD_DIR = fileURLToPath(new URL('./build/', import.meta.url));
const BINARY_PATH = fileURLToPath(new URL('./build/kafka-mock', import.meta.url));

const INSTALL_HINT =
  'install the librdkafka development package (Debian/Ubuntu: `apt-get install -y librdkafka-dev`, ' +
  'which provides librdkafka/rdkafka_mock.h and librdkafka.so)';

/** Returns the launcher's path, compiling it first when it is missing or stale. */
export async function buildKafkaMock(): Promise<string> {
  const sourceMtimeMs = (await stat(SOURCE_PATH)).mtimeMs;
  const binaryMtimeMs = await mtimeMsOrUndefined(BINARY_PATH);
  if (binaryMtimeMs !== undefined && binaryMtimeMs >= sourceMtimeMs) return BINARY_PATH;

  await mkdir(BUILD_DIR, { recursive: true });
  // node --test runs test files in parallel processes that may all build at
  // once: each compiles to its own file and renames it into place atomically.
  const tempPath = `${BINARY_PATH}.${process.pid}.tmp`;
  try {
    await compile(tempPath, await rdkafkaFlags());
    await rename(tempPath, BINARY_PATH);
  } finally {
    await rm(tempPath, { force: true });
  }
  return BINARY_PATH;
}

async function compile(outputPath: string, flags: readonly string[]): Promise<void> {
  const args = ['-std=c11', '-O2', '-Wall', '-Wextra', '-pthread', '-o', outputPath, SOURCE_PATH, ...flags];
  try {
    await execFileAsync('gcc', args);
  } catch (error) {
    if (isErrnoException(error) && error.code === 'ENOENT') {
      throw new Error(`kafka-mock: gcc not found; install a C compiler (apt-get install -y gcc) and ${INSTALL_HINT}`, {
        cause: error,
      });
    }
    const stderr = errorStderr(error);
    const missingRdkafka = /rdkafka(_mock)?\.h|-lrdkafka|cannot find -lrdkafka/.test(stderr);
    const hint = missingRdkafka ? `librdkafka is missing: ${INSTALL_HINT}` : 'gcc failed';
    throw new Error(`kafka-mock: ${hint}\n$ gcc ${args.join(' ')}\n${stderr}`, { cause: error });
  }
}

// pkg-config knows non-default install prefixes; without it (or without the
// .pc file) the Debian layout needs nothing beyond -lrdkafka.
async function rdkafkaFlags(): Promise<string[]> {
  try {
    const { stdout } = await execFileAsync('pkg-config', ['--cflags', '--libs', 'rdkafka']);
    const flags = stdout
      .trim()
      .split(/\s+/)
      .filter((flag) => flag !== '');
    return flags.length > 0 ? flags : ['-lrdkafka'];
  } catch {
    return ['-lrdkafka'];
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

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  buildKafkaMock().then(
    (path) => {
      process.stdout.write(`${path}\n`);
    },
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
