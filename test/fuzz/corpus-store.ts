// The committed fuzz corpus: test/fuzz/corpus/<target>/<sha1 prefix>, one input per file. The suite replays it;
// `npm run fuzz` grows it and keeps it minimal.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inputId } from './fuzz-engine.ts';

export const CORPUS_DIR = fileURLToPath(new URL('./corpus/', import.meta.url));

export function readCorpus(target: string): Buffer[] {
  const dir = join(CORPUS_DIR, target);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .map((name) => readFileSync(join(dir, name)));
}

/** Replaces the target's corpus with `inputs`. */
export function writeCorpus(target: string, inputs: readonly Buffer[]): void {
  const dir = join(CORPUS_DIR, target);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const input of inputs) writeFileSync(join(dir, inputId(input)), input);
}
