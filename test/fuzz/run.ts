// `npm run fuzz -- <target|all> [--seconds N] [--seed N]`: coverage-guided fuzzing of the decoders that read
// bytes from outside (targets.ts). New inputs that reach new code are merged into the committed corpus
// (test/fuzz/corpus/<target>/, kept minimal), which `npm test` replays; an input that breaks an invariant is
// written to test-artifacts/fuzz-crashes/<target>/ and the run exits 1.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { readCorpus, writeCorpus } from './corpus-store.ts';
import { fuzz, inputId, minimizeCorpus } from './fuzz-engine.ts';
import { FUZZ_TARGETS } from './targets.ts';

const CRASH_DIR = fileURLToPath(new URL('../../test-artifacts/fuzz-crashes/', import.meta.url));

const USAGE = `npm run fuzz -- <target|all> [--seconds N] [--seed N]

Coverage-guided fuzzing (V8 block coverage) of the decoders that read bytes from outside. New inputs that reach
new code are merged into test/fuzz/corpus/<target>/ (replayed by npm test; commit them); inputs that break an
invariant go to test-artifacts/fuzz-crashes/<target>/ and the run exits 1.

Targets:
${FUZZ_TARGETS.map((target) => `  ${target.name.padEnd(12)} ${target.description}`).join('\n')}

Options:
  --seconds N   how long to fuzz each target (default 60)
  --seed N      random seed (default: the time)
  -h, --help`;

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { seconds: { type: 'string' }, seed: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  const name = positionals[0];
  const targets = name === 'all' ? FUZZ_TARGETS : FUZZ_TARGETS.filter((target) => target.name === name);
  if (values.help === true || targets.length === 0) {
    process.stdout.write(`${USAGE}\n`);
    process.exitCode = values.help === true ? 0 : 2;
    return;
  }
  const seconds = values.seconds === undefined ? 60 : Number(values.seconds);
  const seed = values.seed === undefined ? Date.now() % 2 ** 31 : Number(values.seed);
  if (!(seconds > 0) || !Number.isInteger(seed)) throw new Error('--seconds takes a number above 0 and --seed an integer');
  let crashes = 0;
  for (const target of targets) {
    const before = readCorpus(target.name);
    const found: Buffer[] = [];
    process.stdout.write(`${target.name}: ${before.length} corpus inputs, fuzzing for ${seconds} s (seed ${seed})\n`);
    const stats = await fuzz(target, {
      seed,
      seconds,
      corpus: before,
      onNewInput: (input) => found.push(input),
      onCrash(input, error) {
        crashes += 1;
        const dir = join(CRASH_DIR, target.name);
        mkdirSync(dir, { recursive: true });
        const path = join(dir, inputId(input));
        writeFileSync(path, input);
        process.stdout.write(`  CRASH ${path}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      },
      onProgress: (progress) =>
        process.stdout.write(
          `  ${(progress.elapsedMs / 1000).toFixed(0)} s: ${progress.executions} runs, ${progress.features} features, corpus ${progress.corpusSize}\n`,
        ),
    });
    const merged = await minimizeCorpus(target, [...before, ...found]);
    writeCorpus(target.name, merged);
    process.stdout.write(
      `${target.name}: ${stats.executions} runs (${Math.round(stats.executions / (stats.elapsedMs / 1000))}/s), ${stats.features} features, ${stats.crashes} crashes; corpus ${before.length} -> ${merged.length}\n`,
    );
  }
  if (crashes > 0) process.exitCode = 1;
}

main().catch((error: unknown) => {
  process.stderr.write(`fuzz failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
