// A coverage-guided fuzzer for the decoders that read bytes from outside, in the libFuzzer manner but in
// TypeScript, with V8's own block coverage as the guide (node:inspector, Profiler.takePreciseCoverage):
// inputs are mutated from a corpus; an input that reaches a block (or a block count bucket) no input reached
// before joins the corpus; an input that makes the target throw, or break an invariant it checks, is a crash.
// Runs are reproducible: the same seed, corpus and iteration count give the same inputs.
import { createHash } from 'node:crypto';
import { Session } from 'node:inspector/promises';
import { createRandom, type Random } from '../../firmware-sim/fleet.ts';

export interface FuzzTarget {
  readonly name: string;
  /** One line on what is fed where (npm run fuzz -- --help lists it). */
  readonly description: string;
  /** Fragments of the script URLs whose coverage guides the search, e.g. 'src/ingress/semtech-udp/packets.ts'. */
  readonly coverage: readonly string[];
  readonly maxLength: number;
  /** Tokens worth inserting whole (JSON keys, keywords, magic bytes). */
  readonly dictionary?: readonly (string | Buffer)[];
  /** Inputs to start from besides the committed corpus (valid messages of every kind). */
  seeds(): readonly Buffer[];
  setup?(): Promise<void>;
  teardown?(): Promise<void>;
  /** Feeds one input. Must not throw for any input; may check invariants and throw when one breaks. */
  run(input: Buffer): void | Promise<void>;
}

export interface FuzzOptions {
  readonly seed: number;
  /** Stop after this many executions, or at the deadline, whichever comes first. */
  readonly iterations?: number;
  readonly seconds?: number;
  readonly corpus: readonly Buffer[];
  /** An input that found new coverage (to keep in the corpus). */
  readonly onNewInput?: (input: Buffer) => void;
  readonly onCrash?: (input: Buffer, error: unknown) => void;
  readonly onProgress?: (stats: FuzzStats) => void;
  /** Run the target's own seeds before the corpus (default true). */
  readonly seedsFirst?: boolean;
  /** Each seed or corpus input as it is replayed, and whether it reached new coverage. */
  readonly onSeedResult?: (input: Buffer, fresh: boolean) => void;
}

export interface FuzzStats {
  readonly executions: number;
  readonly corpusSize: number;
  /** Distinct (block, count bucket) pairs reached. */
  readonly features: number;
  readonly crashes: number;
  readonly elapsedMs: number;
}

interface ScriptCoverage {
  readonly url: string;
  readonly functions: readonly { readonly ranges: readonly { readonly startOffset: number; readonly endOffset: number; readonly count: number }[] }[];
}

/** AFL's count buckets: a loop that runs 5 times instead of 2 is a new behaviour, 105 instead of 104 is not. */
function bucket(count: number): number {
  if (count <= 3) return count;
  if (count <= 7) return 4;
  if (count <= 15) return 5;
  if (count <= 31) return 6;
  if (count <= 127) return 7;
  return 8;
}

const INTERESTING_BYTES = [0x00, 0x01, 0x02, 0x7f, 0x80, 0xff, 0x22, 0x7b, 0x7d, 0x5b, 0x5d, 0x3a, 0x2c, 0x0a, 0x0d, 0x20];

export function inputId(input: Buffer): string {
  return createHash('sha1').update(input).digest('hex').slice(0, 16);
}

/** One to four stacked mutations of `input`, some taking a token or a piece of another corpus entry. */
export function mutate(input: Buffer, corpus: readonly Buffer[], target: FuzzTarget, random: Random): Buffer {
  let bytes = Buffer.from(input);
  const pick = (limit: number) => Math.floor(random() * limit);
  const rounds = 1 + pick(4);
  for (let round = 0; round < rounds; round++) {
    const at = bytes.length === 0 ? 0 : pick(bytes.length);
    switch (pick(10)) {
      case 0:
        if (bytes.length > 0) bytes[at] = (bytes[at] as number) ^ (1 << pick(8));
        break;
      case 1:
        if (bytes.length > 0) bytes[at] = INTERESTING_BYTES[pick(INTERESTING_BYTES.length)] as number;
        break;
      case 2:
        if (bytes.length > 0) bytes[at] = ((bytes[at] as number) + (random() < 0.5 ? 1 : 255)) & 0xff;
        break;
      case 3: {
        const inserted = Buffer.alloc(1 + pick(8));
        for (let index = 0; index < inserted.length; index++) inserted[index] = pick(256);
        bytes = Buffer.concat([bytes.subarray(0, at), inserted, bytes.subarray(at)]);
        break;
      }
      case 4:
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(Math.min(bytes.length, at + 1 + pick(16)))]);
        break;
      case 5: {
        const length = 1 + pick(Math.max(1, Math.min(64, bytes.length - at)));
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at, at + length), bytes.subarray(at)]);
        break;
      }
      case 6: {
        const other = corpus[pick(corpus.length)];
        if (other !== undefined && other.length > 0) bytes = Buffer.concat([bytes.subarray(0, at), other.subarray(pick(other.length))]);
        break;
      }
      case 7: {
        const dictionary = target.dictionary ?? [];
        const token = dictionary[pick(dictionary.length)];
        if (token !== undefined) bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from(token), bytes.subarray(at)]);
        break;
      }
      case 8:
        bytes = bytes.subarray(0, at);
        break;
      default: {
        // A big or small 16-bit value where a length or id might sit.
        if (bytes.length >= 2) bytes.writeUInt16BE([0, 1, 0x7fff, 0xffff, bytes.length][pick(5)] as number & 0xffff, Math.min(at, bytes.length - 2));
      }
    }
  }
  return bytes.length > target.maxLength ? bytes.subarray(0, target.maxLength) : bytes;
}

/** Runs the target under coverage; see FuzzOptions. */
export async function fuzz(target: FuzzTarget, options: FuzzOptions): Promise<FuzzStats> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
  const random = createRandom(options.seed);
  const features = new Set<string>();
  const corpus: Buffer[] = [];
  const startedAt = performance.now();
  let executions = 0;
  let crashes = 0;
  let lastProgress = startedAt;
  // A target that feeds a server can throw later, outside run(): blame the input that is running.
  let uncaught: unknown = null;
  const onUncaught = (error: unknown) => {
    uncaught ??= error;
  };
  process.on('uncaughtException', onUncaught);

  async function execute(input: Buffer): Promise<boolean> {
    executions += 1;
    uncaught = null;
    let failure: unknown = null;
    try {
      await target.run(input);
    } catch (error) {
      failure = error;
    }
    failure ??= uncaught;
    const { result } = (await session.post('Profiler.takePreciseCoverage')) as unknown as { result: ScriptCoverage[] };
    if (failure !== null) {
      crashes += 1;
      options.onCrash?.(input, failure);
      return false;
    }
    let fresh = false;
    for (const script of result) {
      if (!target.coverage.some((fragment) => script.url.includes(fragment))) continue;
      for (const fn of script.functions) {
        for (const range of fn.ranges) {
          if (range.count === 0) continue;
          const feature = `${script.url}:${range.startOffset}:${range.endOffset}:${bucket(range.count)}`;
          if (!features.has(feature)) {
            features.add(feature);
            fresh = true;
          }
        }
      }
    }
    return fresh;
  }

  const stats = (): FuzzStats => ({ executions, corpusSize: corpus.length, features: features.size, crashes, elapsedMs: performance.now() - startedAt });
  try {
    await target.setup?.();
    // Clear what setup ran, so the first inputs are judged on their own.
    await session.post('Profiler.takePreciseCoverage');
    for (const input of [...(options.seedsFirst === false ? [] : target.seeds()), ...options.corpus]) {
      const fresh = await execute(input);
      options.onSeedResult?.(input, fresh);
      if (fresh) corpus.push(input);
    }
    if (corpus.length === 0) corpus.push(Buffer.alloc(0));
    const deadline = options.seconds === undefined ? Number.POSITIVE_INFINITY : startedAt + options.seconds * 1000;
    const limit = options.iterations ?? Number.POSITIVE_INFINITY;
    while (executions < limit && performance.now() < deadline) {
      const parent = corpus[Math.floor(random() * corpus.length)] as Buffer;
      const child = mutate(parent, corpus, target, random);
      if (await execute(child)) {
        corpus.push(child);
        options.onNewInput?.(child);
      }
      if (options.onProgress !== undefined && performance.now() - lastProgress > 2_000) {
        lastProgress = performance.now();
        options.onProgress(stats());
      }
    }
    return stats();
  } finally {
    process.off('uncaughtException', onUncaught);
    await target.teardown?.();
    await session.post('Profiler.stopPreciseCoverage');
    session.disconnect();
  }
}

/**
 * The smallest subset of `inputs` (smallest inputs first) that reaches every feature all of them reach, as
 * libFuzzer's -merge does: what is worth committing as the corpus.
 */
export async function minimizeCorpus(target: FuzzTarget, inputs: readonly Buffer[]): Promise<Buffer[]> {
  const kept: Buffer[] = [];
  const seen = new Set<string>();
  await fuzz(target, {
    seed: 0,
    iterations: 0,
    corpus: [...inputs].sort((a, b) => a.length - b.length || Buffer.compare(a, b)),
    seedsFirst: false,
    onSeedResult: (input, fresh) => {
      const id = inputId(input);
      if (fresh && !seen.has(id)) {
        seen.add(id);
        kept.push(input);
      }
    },
  });
  return kept;
}
