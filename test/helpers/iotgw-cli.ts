// The iotgw CLI as a user runs it (the built dist/src/cli.js, in its own process), and a copy of the shipped
// example config to run it against.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tempDir } from './temp-dir.ts';

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));
const EXAMPLE = fileURLToPath(new URL('../../config/iotgw.example.yaml', import.meta.url));

export function iotgw(args: readonly string[], options: { input?: string } = {}): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    input: options.input ?? '',
    env: { ...process.env, IOTGW_CONFIG: undefined },
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** A fresh copy of config/iotgw.example.yaml in the test's temp dir. */
export function exampleCopy(t: TestContext): string {
  const path = join(tempDir(t), 'iotgw.yaml');
  writeFileSync(path, readFileSync(EXAMPLE, 'utf8'));
  return path;
}
