#!/usr/bin/env node
// `npm test`: compile (type errors fail the run, and process-level tests start dist/ like a user would),
// build the librdkafka mock-cluster launcher, then run every test/**/*.test.ts with node:test.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

function step(title, command, args) {
  process.stdout.write(`\n== ${title}\n`);
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) {
    process.stderr.write(`\n${title} failed (exit ${result.status ?? result.signal})\n`);
    process.exit(result.status ?? 1);
  }
}

function findTests(dir) {
  const found = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) found.push(...findTests(path));
    else if (name.endsWith('.test.ts')) found.push(relative(root, path));
  }
  return found.sort();
}

// Optional filter: `npm test -- buffer` runs the test files whose path contains "buffer".
const filters = process.argv.slice(2);
const files = findTests(join(root, 'test')).filter((file) => filters.length === 0 || filters.some((filter) => file.includes(filter)));
if (files.length === 0) {
  process.stderr.write(`no test files match ${filters.join(' ')}\n`);
  process.exit(1);
}

step('compile (tsc)', process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json']);
step('build the Kafka mock-cluster launcher', process.execPath, ['--import', 'tsx', 'test/kafka-mock/build.ts']);
// Two files at a time: most tests wait on sockets, timers and fsyncs, not on the CPU, so two overlap well
// on the 2-core CI machine (about half the wall time). Tests assert no timings; their waits allow for it.
const runner = ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=300000', '--test-reporter=spec'];
step(`run ${files.length} test files`, process.execPath, [...runner, ...files]);
