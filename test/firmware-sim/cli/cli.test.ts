// firmware-sim as a process: every command answers --help, takes the one duration syntax and refuses a bad
// duration with exit code 2 and one line naming the flag, before it opens any socket or pty.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runSimCli } from '../../helpers/sim-cli.ts';

test('every command answers --help with its flags and the duration syntax', async () => {
  const results = await Promise.all(['mqtt', 'lorawan', 'serial', 'ttn'].map((name) => runSimCli([name, '--help'])));
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
  const results = await Promise.all(cases.map(([args]) => runSimCli(args)));
  for (const [index, [args, flag]] of cases.entries()) {
    const result = results[index];
    assert.equal(result?.code, 2, `${args.join(' ')}: ${result?.stderr}`);
    assert.equal(result?.stdout, '');
    const lines = result?.stderr.trim().split('\n') ?? [];
    assert.equal(lines.length, 1, result?.stderr);
    assert.ok(lines[0]?.startsWith(`firmware-sim: ${flag} must be`), `${args.join(' ')}: ${result?.stderr}`);
  }
});
