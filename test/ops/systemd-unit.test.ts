// The unit file: systemd accepts it (systemd-analyze verify) and it carries the lifecycle settings and the
// hardening the gateway is designed for, consistent with the code's own deadlines.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { STOP_TIMEOUT_MS } from '../../src/main.ts';
import { SHUTDOWN_DEADLINE_MS } from '../../src/ops/shutdown.ts';

const UNIT = fileURLToPath(new URL('../../systemd/iotgw.service', import.meta.url));

/** [Section] -> key -> every value (keys like DeviceAllow= repeat). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header?.[1] !== undefined) {
      current = new Map();
      sections.set(header[1], current);
      continue;
    }
    const at = line.indexOf('=');
    assert.ok(current !== undefined && at > 0, `unparsable line: ${line}`);
    const key = line.slice(0, at).trim();
    current.set(key, [...(current.get(key) ?? []), line.slice(at + 1).trim()]);
  }
  return sections;
}

const service = parseUnit(readFileSync(UNIT, 'utf8')).get('Service') ?? new Map<string, string[]>();
const value = (key: string): string | undefined => service.get(key)?.at(-1);

function seconds(text: string | undefined): number {
  const match = /^(\d+)(s|min)?$/.exec(text ?? '');
  assert.ok(match?.[1] !== undefined, `not a duration: ${text}`);
  return Number(match[1]) * (match[2] === 'min' ? 60 : 1);
}

test('systemd-analyze verify accepts the unit', () => {
  const which = spawnSync('sh', ['-c', 'command -v systemd-analyze']);
  assert.equal(which.status, 0, 'systemd-analyze is missing: apt-get install systemd (.ci/run installs it)');
  // ExecStart is /usr/bin/env (present everywhere), so verify does not need the package installed.
  const result = spawnSync('systemd-analyze', ['verify', UNIT], { encoding: 'utf8' });
  assert.equal(result.status, 0, `systemd-analyze verify failed:\n${result.stderr}${result.stdout}`);
  assert.equal(result.stderr.trim(), '', `systemd-analyze verify warned:\n${result.stderr}`);
});

test('lifecycle: Type=notify with a watchdog, user iotgw, state and config directories, restart policy', () => {
  assert.equal(value('Type'), 'notify');
  assert.equal(value('NotifyAccess'), 'all', 'messages come from the systemd-notify child process');
  assert.ok(seconds(value('WatchdogSec')) >= 10, 'WatchdogSec set (and not so short that a GC pause trips it)');
  assert.equal(value('User'), 'iotgw');
  assert.equal(value('Group'), 'iotgw');
  assert.equal(value('SupplementaryGroups'), 'dialout');
  assert.equal(value('StateDirectory'), 'iotgw');
  assert.equal(value('ConfigurationDirectory'), 'iotgw');
  assert.match(value('ExecStart') ?? '', /cli\.js run --config \$\{CONFIGURATION_DIRECTORY\}\/iotgw\.yaml$/);
  assert.equal(value('Restart'), 'on-failure');
  assert.equal(value('RestartPreventExitStatus'), '78', 'a bad config waits for a person');
  assert.equal(value('KillMode'), 'mixed');
});

test('TimeoutStopSec leaves room for the gateway to stop (and force its own exit) before systemd kills it', () => {
  const stopS = seconds(value('TimeoutStopSec'));
  assert.ok(STOP_TIMEOUT_MS < SHUTDOWN_DEADLINE_MS, 'the forwarder batch deadline fits in the overall deadline');
  assert.ok(SHUTDOWN_DEADLINE_MS / 1000 + 5 <= stopS, `gateway deadline ${SHUTDOWN_DEADLINE_MS} ms + 5 s margin <= TimeoutStopSec ${stopS} s`);
});

test('NODE_OPTIONS bounds the V8 heap, and node accepts those flags there', () => {
  const prefix = '"NODE_OPTIONS=';
  const entry = service.get('Environment')?.find((setting) => setting.startsWith(prefix));
  assert.ok(entry !== undefined, 'Environment="NODE_OPTIONS=..." sets the heap bounds (README, "Memory")');
  const options = entry.slice(prefix.length, -1);
  const oldSpaceMb = Number(/--max-old-space-size=(\d+)/.exec(options)?.[1]);
  assert.match(options, /--max-semi-space-size=\d+/);
  assert.ok(oldSpaceMb > 0, `--max-old-space-size in ${options}`);
  // node exits 9 on a flag it does not allow in NODE_OPTIONS, so a typo would stop the service from starting.
  const probe = 'process.stdout.write(String(require("node:v8").getHeapStatistics().heap_size_limit))';
  const result = spawnSync(process.execPath, ['-e', probe], { env: { ...process.env, NODE_OPTIONS: options }, encoding: 'utf8' });
  assert.equal(result.status, 0, `node refused NODE_OPTIONS=${options}: ${result.stderr}`);
  const limitMb = Number(result.stdout) / (1024 * 1024);
  assert.ok(limitMb >= oldSpaceMb && limitMb <= oldSpaceMb + 64, `heap limit ${limitMb} MB follows --max-old-space-size=${oldSpaceMb}`);
});

test('hardening directives are present', () => {
  const expected: Record<string, string> = {
    NoNewPrivileges: 'yes',
    ProtectSystem: 'strict',
    ProtectHome: 'yes',
    PrivateTmp: 'yes',
    ProtectKernelTunables: 'yes',
    ProtectKernelModules: 'yes',
    ProtectKernelLogs: 'yes',
    ProtectControlGroups: 'yes',
    ProtectClock: 'yes',
    ProtectHostname: 'yes',
    RestrictNamespaces: 'yes',
    LockPersonality: 'yes',
    RestrictRealtime: 'yes',
    RestrictSUIDSGID: 'yes',
    SystemCallArchitectures: 'native',
    CapabilityBoundingSet: '',
    AmbientCapabilities: '',
    RestrictAddressFamilies: 'AF_INET AF_INET6 AF_UNIX AF_NETLINK',
    UMask: '0027',
    DevicePolicy: 'closed',
  };
  for (const [key, want] of Object.entries(expected)) assert.equal(value(key), want, `${key}=${want}`);
  assert.deepEqual(service.get('DeviceAllow'), ['char-ttyUSB rw', 'char-ttyACM rw', 'char-ttyAMA rw', 'char-ttyS rw'], 'serial radios reachable');
});

test('directives that would break the gateway are off, and the file says why', () => {
  const text = readFileSync(UNIT, 'utf8');
  assert.equal(value('MemoryDenyWriteExecute'), undefined, "V8's JIT writes and then executes code");
  assert.equal(value('PrivateDevices'), undefined, 'serial radios live in /dev');
  assert.equal(value('PrivateUsers'), undefined);
  for (const key of ['MemoryDenyWriteExecute', 'PrivateDevices', 'PrivateUsers', 'ProcSubset']) {
    assert.match(text, new RegExp(`^#\\s+${key}=`, 'm'), `a comment explains leaving ${key} off`);
  }
});
