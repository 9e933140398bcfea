// install.sh / uninstall.sh into a temporary root (--root): the tree, idempotence (the config is never
// overwritten), a runnable installed CLI, and uninstall keeping the buffer and config unless --purge.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../helpers/temp-dir.ts';

const SYSTEMD_DIR = fileURLToPath(new URL('../../systemd/', import.meta.url));
const CHECKOUT_CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));

function run(script: string, args: readonly string[]): string {
  const result = spawnSync('bash', [join(SYSTEMD_DIR, script), ...args], { encoding: 'utf8', timeout: 240_000 });
  assert.equal(result.status, 0, `${script} ${args.join(' ')} failed:\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

test('--help on both scripts', () => {
  assert.match(run('install.sh', ['--help']), /--root DIR/);
  assert.match(run('uninstall.sh', ['--help']), /--purge/);
});

test('install into a temp root twice, then uninstall (keeps state and config) and purge', { timeout: 600_000 }, (t) => {
  if (!existsSync(CHECKOUT_CLI)) throw new Error(`${CHECKOUT_CLI} is missing: run 'npm run build' first`);
  const root = tempDir(t, 'iotgw-root-');
  const first = run('install.sh', ['--root', root, '--no-start', '--no-build']);
  assert.match(first, /skipped creating user iotgw \(--root given\)/);
  assert.match(first, /skipped systemctl \(--root given\)/);
  assert.match(first, /installed the commented example config/);

  const unit = join(root, 'etc/systemd/system/iotgw.service');
  assert.equal(readFileSync(unit, 'utf8'), readFileSync(join(SYSTEMD_DIR, 'iotgw.service'), 'utf8'));
  assert.equal(readlinkSync(join(root, 'usr/local/bin/iotgw')), '/opt/iotgw/dist/src/cli.js');
  assert.ok(statSync(join(root, 'opt/iotgw/dist/src/cli.js')).mode & 0o100, 'the CLI is executable');
  assert.ok(existsSync(join(root, 'opt/iotgw/dist/src/main.js')));
  assert.ok(existsSync(join(root, 'opt/iotgw/node_modules/better-sqlite3')), 'runtime dependencies');
  assert.ok(!existsSync(join(root, 'opt/iotgw/node_modules/typescript')), 'dev dependencies pruned');
  assert.ok(!existsSync(join(root, 'opt/iotgw.new')), 'no staging directory left behind');
  const config = join(root, 'etc/iotgw/iotgw.yaml');
  // The example as shipped, with the buffer named where the service keeps it (operator commands run outside the unit).
  const example = readFileSync(fileURLToPath(new URL('../../config/iotgw.example.yaml', import.meta.url)), 'utf8');
  assert.equal(readFileSync(config, 'utf8'), example.replace('\n  # path: /var/lib/iotgw/buffer.db\n', '\n  path: /var/lib/iotgw/buffer.db\n'));
  assert.notEqual(readFileSync(config, 'utf8'), example);
  assert.ok(!existsSync(`${config}.new`));
  const pkg = statSync(join(root, 'opt/iotgw/dist/src/main.js'));
  assert.equal(pkg.uid, 0, 'the installed code belongs to root, whoever owns the checkout');
  assert.equal(pkg.mode & 0o022, 0, 'and nobody else may write it');

  // The installed copy runs on its own (its own node_modules, its own package.json).
  const check = spawnSync(process.execPath, [join(root, 'opt/iotgw/dist/src/cli.js'), 'config', 'check', '--config', config], { encoding: 'utf8' });
  assert.equal(check.status, 0, check.stderr);
  assert.match(check.stdout, /^configuration OK/);

  // Second run = upgrade: the operator's config survives.
  writeFileSync(config, 'gateway_id: site-7\n');
  const second = run('install.sh', ['--root', root, '--no-start', '--no-build']);
  assert.match(second, /kept the existing .*iotgw\.yaml \(never overwritten\)/);
  assert.equal(readFileSync(config, 'utf8'), 'gateway_id: site-7\n');
  assert.ok(existsSync(join(root, 'opt/iotgw/dist/src/cli.js')));

  const state = join(root, 'var/lib/iotgw');
  writeFileSync(join(state, 'buffer.db'), 'records not yet in Kafka');
  const removed = run('uninstall.sh', ['--root', root]);
  assert.match(removed, /kept .*var\/lib\/iotgw/);
  assert.match(removed, /kept .*etc\/iotgw/);
  assert.ok(!existsSync(join(root, 'opt/iotgw')));
  assert.ok(!existsSync(unit));
  assert.ok(!existsSync(join(root, 'usr/local/bin/iotgw')));
  assert.equal(readFileSync(join(state, 'buffer.db'), 'utf8'), 'records not yet in Kafka');
  assert.equal(readFileSync(config, 'utf8'), 'gateway_id: site-7\n');

  const purged = run('uninstall.sh', ['--root', root, '--purge']);
  assert.match(purged, /purged .*var\/lib\/iotgw/);
  assert.ok(!existsSync(state));
  assert.ok(!existsSync(join(root, 'etc/iotgw')));
});
