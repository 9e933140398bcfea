// The running gateway loads its config in a worker thread (load-isolated.ts) so that it never holds the schema:
// the answer must be loadConfig's, to the byte and frozen, and an invalid file must give the same ConfigError.
// And the modules `iotgw run` imports up front (src/cli.ts and everything it imports statically) must not
// reach zod, or the isolation saves nothing.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config/load.ts';
import { loadConfigIsolated } from '../../src/config/load-isolated.ts';
import { ConfigError } from '../../src/errors.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const EXAMPLE = fileURLToPath(new URL('../../config/iotgw.example.yaml', import.meta.url));
const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

function isDeeplyFrozen(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return true;
  return Object.isFrozen(value) && Object.values(value).every(isDeeplyFrozen);
}

test('a valid file: the same Config as loadConfig, deeply frozen, the environment overlay applied', async (t) => {
  const path = join(tempDir(t), 'iotgw.yaml');
  writeFileSync(path, readFileSync(EXAMPLE, 'utf8'));
  process.env.IOTGW__KAFKA__TOPIC = 'isolated.records';
  t.after(() => delete process.env.IOTGW__KAFKA__TOPIC);
  const isolated = await loadConfigIsolated({ path });
  const direct = loadConfig({ path });
  assert.deepStrictEqual(isolated, direct);
  assert.equal(isolated.kafka.topic, 'isolated.records');
  assert.ok(isDeeplyFrozen(isolated), 'every object of the answer is frozen, as loadConfig leaves it');
  assert.deepStrictEqual(await loadConfigIsolated({}), loadConfig({}), 'built-in defaults');
});

test('an invalid file: the same ConfigError, source and issues', async (t) => {
  const path = join(tempDir(t), 'iotgw.yaml');
  writeFileSync(path, 'mqtt:\n  port: "not a port"\n  colour: blue\nkafka:\n  brokers: []\n');
  let direct: ConfigError | undefined;
  try {
    loadConfig({ path });
  } catch (error) {
    direct = error as ConfigError;
  }
  assert.ok(direct instanceof ConfigError);
  await assert.rejects(loadConfigIsolated({ path }), (error: unknown) => {
    assert.ok(error instanceof ConfigError);
    assert.equal(error.message, direct?.message);
    assert.equal(error.source, path);
    assert.deepEqual(error.issues, direct?.issues);
    return true;
  });
  await assert.rejects(loadConfigIsolated({ path: join(tempDir(t), 'missing.yaml') }), /cannot read the file/);
});

test("what `iotgw run` imports up front does not reach zod: only the loader's worker loads the schema", () => {
  const seen = new Set<string>();
  const reached: string[] = [];
  const visit = (file: string, chain: readonly string[]): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    // Static imports and re-exports only (`import type` is erased); dynamic import() runs when its command does.
    for (const [, specifier] of text.matchAll(/^(?:import|export)\s+(?:(?!type\b)[^;]*?from\s+)?'([^']+)'/gms)) {
      if (specifier === undefined) continue;
      if (specifier === 'zod' || specifier.startsWith('zod/')) reached.push([...chain, file].map((entry) => entry.slice(SRC.length)).join(' -> '));
      if (specifier.startsWith('.')) visit(resolve(dirname(file), specifier), [...chain, file]);
    }
  };
  visit(join(SRC, 'cli.ts'), []);
  assert.ok(seen.has(join(SRC, 'main.ts')) && seen.size > 100, `walked the import graph (${seen.size} modules)`);
  assert.deepEqual(reached, []);
});
