// Every decoder that reads bytes from outside, fed the committed fuzz corpus (test/fuzz/corpus/, grown by
// `npm run fuzz`) and then a short, seeded fuzzing run: no input may make it throw or break an invariant.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readCorpus } from './corpus-store.ts';
import { fuzz, inputId } from './fuzz-engine.ts';
import { FUZZ_TARGETS } from './targets.ts';

/** Runs in the suite: enough to catch a regression near the corpus, short enough for CI. */
const SUITE_ITERATIONS: Readonly<Record<string, number>> = { mqtt: 400, rn2483: 40, config: 600 };

for (const target of FUZZ_TARGETS) {
  test(`fuzz ${target.name}: the corpus and ${SUITE_ITERATIONS[target.name] ?? 1500} mutations break nothing`, async (t) => {
    const corpus = readCorpus(target.name);
    const crashes: string[] = [];
    const stats = await fuzz(target, {
      seed: 1,
      iterations: corpus.length + target.seeds().length + (SUITE_ITERATIONS[target.name] ?? 1500),
      corpus,
      onCrash: (input, error) => crashes.push(`${inputId(input)} (${input.length} bytes): ${error instanceof Error ? error.message : String(error)}`),
    });
    t.diagnostic(`${corpus.length} corpus inputs, ${stats.executions} runs, ${stats.features} features`);
    assert.ok(corpus.length > 0, `the committed corpus for ${target.name} is empty: run npm run fuzz -- ${target.name}`);
    assert.deepEqual(crashes, [], 'inputs that broke the decoder');
  });
}
