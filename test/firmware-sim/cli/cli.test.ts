// firmware-sim as a process: every command answers --help, takes the one duration syntax and refuses a bad
// duration with exit code 2 and one line naming the flag, before it opens any socket or pty.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function runCli(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'firmware-sim/cli.ts', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('every command answers --help with its flags and the duration syntax', async () => {
  const results = await Promise.all(['mqtt', 'lorawan', 'serial', 'ttn'].map((name) => runCli([name, '--help'])));
  for (const [index, flag] of ['--duration D', '--duration D', '--interval D', '--wait D'].entries()) {
    const result = results[index];
    assert.equal(result?.code, 0, result?.stderr);
    assert.ok(result?.stdout.includes(flag), `${flag} in ${result?.stdout}`);
    assert.match(result?.stdout ?? '', /-h, --help {13}this help/);
  }
});

test('a bad duration exits 2 with one line naming the flag, in every command', async () => {
  const cases = [
    [['mqtt', '--duration', '30 seconds'], '--duration'],
    [['lorawan', '--ack-timeout', 'soon'], '--ack-timeout'],
    [['serial', '--interval=-1s'], '--interval'],
    [['ttn', '--drop-every', '10ms'], '--drop-every'],
  ] as const;
  const results = await Promise.all(cases.map(([args]) => runCli(args)));
  for (const [index, [args, flag]] of cases.entries()) {
    const result = results[index];
    assert.equal(result?.code, 2, `${args.join(' ')}: ${result?.stderr}`);
    assert.equal(result?.stdout, '');
    const lines = result?.stderr.trim().split('\n') ?? [];
    assert.equal(lines.length, 1, result?.stderr);
    assert.ok(lines[0]?.startsWith(`firmware-sim: ${flag} must be`), `${args.join(' ')}: ${result?.stderr}`);
  }
});
