// Compiles the librdkafka mock-cluster launcher (kafka-mock.c) into test/kafka-mock/build/kafka-mock when
// it is missing or stale. Used by test/helpers/kafka-mock.ts before each spawn, and runnable on its own:
// `node --import tsx test/kafka-mock/build.ts`.
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildCProgram } from '../helpers/build-c.ts';

/** Returns the launcher's path, compiling it first when it is missing or older than its source. */
export function buildKafkaMock(): Promise<string> {
  return buildCProgram({
    sourcePath: fileURLToPath(new URL('./kafka-mock.c', import.meta.url)),
    pkgConfig: 'rdkafka',
    fallbackFlags: ['-lrdkafka'],
    extraFlags: ['-pthread'],
    missingLibrary: /rdkafka(_mock)?\.h|-lrdkafka|cannot find -lrdkafka/,
    installHint:
      'install the librdkafka development package (Debian/Ubuntu: `apt-get install -y librdkafka-dev`, which provides librdkafka/rdkafka_mock.h and librdkafka.so)',
  });
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
