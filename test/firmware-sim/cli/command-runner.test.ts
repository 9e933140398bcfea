// The one command runner of firmware-sim: a command's flag table parsed into typed values (defaults,
// units), every bad flag a one-line UsageError naming it before the command runs, --help rendered from the
// table, and --write-devices handled by the runner for commands that have a devices file.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { parse } from 'yaml';
import { type CommandOutput, defineCommand } from '../../../firmware-sim/cli/command-runner.ts';
import {
  choiceFlag,
  durationFlag,
  fileFlag,
  type FlagValues,
  integerFlag,
  numberFlag,
  shareFlag,
  switchFlag,
  textFlag,
  UsageError,
} from '../../../firmware-sim/cli/flags.ts';

const FLAGS = {
  count: integerFlag({ min: 1, default: 3, help: 'how many. Default: 3' }),
  seed: integerFlag({ default: 1, help: 'seed' }),
  rate: numberFlag({ placeholder: 'R', min: 0, help: 'per second' }),
  share: shareFlag({ default: 0.5, help: 'a share' }),
  wait: durationFlag({ default: 60_000, minMs: 1_000, minText: '1s', help: 'how long\nto wait. Default: 60s' }),
  mode: choiceFlag({ choices: ['fast', 'slow'], default: 'fast', help: 'fast or slow' }),
  name: textFlag({ placeholder: 'NAME', pattern: /^[a-z]+$/, expected: 'lower-case letters', help: 'a name' }),
  ca: fileFlag({ help: 'a file' }),
  json: switchFlag({ help: 'JSON' }),
};

type Values = FlagValues<typeof FLAGS>;

function fakeCommand(withDevices = false) {
  const runs: { values: Values; signal: AbortSignal }[] = [];
  const command = defineCommand({
    name: 'fake',
    summary: 'a command for tests',
    about: 'firmware-sim fake: does nothing.',
    flags: FLAGS,
    more: 'Examples:\n  firmware-sim fake --count 2\n',
    ...(withDevices ? { devicesFile: (values: Values) => ({ flags: `--count ${values.count}`, devices: [{ dev_eui: '01', name: 'a' }] }) } : {}),
    run: async (values, signal) => {
      runs.push({ values, signal });
      return 7;
    },
  });
  return { command, runs };
}

function capture(): CommandOutput & { readonly text: { out: string; err: string } } {
  const text = { out: '', err: '' };
  return {
    text,
    out: (chunk) => {
      text.out += chunk;
    },
    err: (chunk) => {
      text.err += chunk;
    },
  };
}

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'firmware-sim-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('flags become typed values: defaults, units, a bare number of seconds', async () => {
  const { command, runs } = fakeCommand();
  assert.equal(await command.run([]), 7);
  assert.deepEqual(runs[0]?.values, {
    count: 3,
    seed: 1,
    rate: undefined,
    share: 0.5,
    wait: 60_000,
    mode: 'fast',
    name: undefined,
    ca: undefined,
    json: false,
  });
  assert.ok(runs[0]?.signal instanceof AbortSignal);
  assert.equal(runs[0]?.signal.aborted, false);

  await command.run(['--count', '12', '--seed=-4', '--rate', '2.5', '--share', '1', '--wait', '90', '--mode', 'slow', '--name', 'abc', '--json']);
  assert.deepEqual(runs[1]?.values, { count: 12, seed: -4, rate: 2.5, share: 1, wait: 90_000, mode: 'slow', name: 'abc', ca: undefined, json: true });
  await command.run(['--wait', '1.5m']);
  assert.equal(runs[2]?.values.wait, 90_000);
});

test('every bad flag is a one-line usage error naming the flag, and the command does not run', async () => {
  const { command, runs } = fakeCommand();
  const cases: [readonly string[], RegExp][] = [
    [['--bogus'], /^unknown option --bogus \(see --help\)$/],
    [['--count'], /^option --count needs a value/],
    [['--json=yes'], /^option --json takes no value/],
    [['--count', '-5'], /^option --count: a value starting with '-' must be written --count=VALUE$/],
    [['extra'], /^unexpected argument 'extra'/],
    [['--count', 'many'], /^--count must be an integer >= 1, got 'many'$/],
    [['--count', '0'], /^--count must be an integer >= 1, got '0'$/],
    [['--count', '1.5'], /^--count must be an integer >= 1, got '1.5'$/],
    [['--seed', ''], /^--seed must be an integer, got ''$/],
    [['--rate', '-1'], /^option --rate: a value starting with '-'/],
    [['--rate=-1'], /^--rate must be a number >= 0, got '-1'$/],
    [['--rate', 'fast'], /^--rate must be a number >= 0, got 'fast'$/],
    [['--share', '2'], /^--share must be a number from 0 to 1, got '2'$/],
    [['--wait', '5 minutes'], /^--wait must be a duration such as 60s, 5m, 1h, 500ms or a number of seconds, got '5 minutes'$/],
    [['--wait', '1d'], /^--wait must be a duration such as 60s/],
    [['--wait', '500ms'], /^--wait must be at least 1s, got '500ms'$/],
    [['--wait', '600h'], /^--wait must be at most 596h/],
    [['--mode', 'medium'], /^--mode must be fast or slow, got 'medium'$/],
    [['--name', 'ABC'], /^--name must be lower-case letters, got 'ABC'$/],
    [['--ca', '/nonexistent/ca.pem'], /^--ca: cannot read '\/nonexistent\/ca\.pem': ENOENT$/],
    [['--write-devices', 'x.yaml'], /^unknown option --write-devices/],
  ];
  for (const [argv, message] of cases) {
    await assert.rejects(
      command.run(argv),
      (err: unknown) => err instanceof UsageError && message.test(err.message) && !err.message.includes('\n'),
      `${argv.join(' ')} should fail with ${message}`,
    );
  }
  assert.equal(runs.length, 0);
});

test('--help is rendered from the flag table and does not run the command', async () => {
  const { command, runs } = fakeCommand(true);
  const output = capture();
  assert.equal(await command.run(['--help'], output), 0);
  assert.equal(await command.run(['-h', '--count', '2'], output), 0);
  assert.equal(runs.length, 0);
  const help = output.text.out.split('firmware-sim fake: does nothing.')[1] ?? '';
  assert.match(help, /Usage:\n {2}firmware-sim fake \[flags\]/);
  assert.match(help, /\n {2}--count N {14}how many\. Default: 3\n/);
  assert.match(help, /\n {2}--wait D {15}how long\n {25}to wait\. Default: 60s\n/);
  assert.match(help, /\n {2}--mode fast\|slow {7}fast or slow\n/);
  assert.match(help, /\n {2}--write-devices FILE {3}write the devices/);
  assert.match(help, /\n {2}-h, --help {13}this help\n/);
  assert.ok(help.endsWith('Examples:\n  firmware-sim fake --count 2\n'));
  assert.equal(command.help(), `firmware-sim fake: does nothing.${help}`);
});

test('--write-devices writes the devices file (owner-only) with the flags that made it, and does not run the command', async (t) => {
  const { command, runs } = fakeCommand(true);
  const dir = tempDir(t);
  const path = join(dir, 'devices.yaml');
  const output = capture();
  assert.equal(await command.run(['--count', '5', '--write-devices', path], output), 0);
  assert.equal(runs.length, 0);
  const text = readFileSync(path, 'utf8');
  assert.match(text, /^# firmware-sim fake devices: --count 5\n# For iotgw's lorawan\.devices_file\./);
  assert.deepEqual(parse(text), [{ dev_eui: '01', name: 'a' }]);
  assert.equal(statSync(path).mode & 0o777, 0o600);
  assert.equal(output.text.err, `firmware-sim: wrote 1 devices to ${path}\n`);

  await assert.rejects(
    command.run(['--write-devices', join(dir, 'missing', 'devices.yaml')], output),
    /^UsageError: --write-devices: cannot write '.*': ENOENT$/,
  );
});
