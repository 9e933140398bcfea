// The SIGHUP reload driver: what it applies, what it refuses (and that the running config then stays the base
// of the next comparison), which changed keys it names as needing a restart, systemd's RELOADING=1 / READY=1
// around every reload, and that SIGHUPs during a reload fold into one more.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { createMetrics } from '../../src/core/metrics.ts';
import { ConfigError } from '../../src/errors.ts';
import { changedKeys, createConfigReload, type DeviceReload } from '../../src/ops/config-reload.ts';
import { captureLog } from '../helpers/capture-log.ts';

const NO_CHANGES: DeviceReload = { mqtt: { added: [], removed: [], changed: [], disconnected: [] }, lorawan: null };

function configWith(overrides: Record<string, string>): Config {
  return loadConfig({ path: undefined, env: Object.fromEntries(Object.entries(overrides).map(([key, value]) => [`IOTGW__${key}`, value])) });
}

function driver(initial: Config, next: () => Config, reloadDevices: (config: Config) => Promise<DeviceReload> = async () => NO_CHANGES) {
  const logs = captureLog('info');
  const metrics = createMetrics({ processMetrics: false });
  const notified: string[] = [];
  const applied: Config[] = [];
  const reload = createConfigReload(initial, {
    log: logs.log,
    metrics,
    notifier: { reloading: () => notified.push('RELOADING=1'), ready: () => notified.push('READY=1') },
    readConfig: next,
    reloadDevices: async (config) => {
      applied.push(config);
      return reloadDevices(config);
    },
    statusLine: () => 'ok',
  });
  const count = async (result: string) => (await metrics.configReloads.get()).values.find((value) => value.labels.result === result)?.value ?? 0;
  return { reload, logs, notified, applied, count };
}

test('changedKeys: dotted paths of what differs; arrays as a whole', () => {
  assert.deepEqual(changedKeys({ a: 1, b: { c: [1, 2], d: 'x' } }, { a: 1, b: { c: [1, 2], d: 'y' }, e: true }), ['b.d', 'e']);
  assert.deepEqual(changedKeys({ list: [{ id: 'a' }] }, { list: [{ id: 'b' }] }), ['list']);
  assert.deepEqual(changedKeys({ same: [1] }, { same: [1] }), []);
});

test('a reload applies the device lists and names the changed keys that need a restart', async () => {
  const before = configWith({});
  const after = configWith({ KAFKA__TOPIC: 'other.topic', MQTT__ALLOW_ANONYMOUS: 'true' });
  const lab = driver(
    before,
    () => after,
    async () => ({ ...NO_CHANGES, mqtt: { ...NO_CHANGES.mqtt, added: ['em-1'] } }),
  );
  await lab.reload.reload();
  assert.deepEqual(lab.applied, [after]);
  assert.deepEqual(lab.notified, ['RELOADING=1', 'READY=1']);
  assert.equal(await lab.count('applied'), 1);
  const lines = lab.logs.lines();
  assert.ok(lines.some((line) => line.msg === 'reload applied: MQTT devices and accounts 1 added, 0 removed, 0 changed'));
  const restart = lines.find((line) => String(line.msg).includes('apply only at a restart'));
  assert.deepEqual(restart?.keys, ['mqtt.allow_anonymous', 'kafka.topic']);
});

test('a config that does not load, or a formatter that does not compile, is refused; the running config stays', async () => {
  const before = configWith({});
  let attempt = 0;
  const lab = driver(
    before,
    () => {
      attempt += 1;
      if (attempt === 1) throw new ConfigError('mqtt.port', ['expected a number']);
      return configWith({ KAFKA__TOPIC: 'other.topic' });
    },
    async () => {
      if (attempt === 2) throw new ConfigError('lorawan.devices.0.formatter_file', ['does not compile']);
      return NO_CHANGES;
    },
  );
  await lab.reload.reload();
  await lab.reload.reload();
  assert.equal(await lab.count('refused'), 2);
  assert.equal(await lab.count('applied'), 0);
  const refusals = lab.logs.lines().filter((line) => String(line.msg).startsWith('reload refused, the running config stays'));
  assert.equal(refusals.length, 2);
  assert.match(String(refusals[0]?.msg), /mqtt\.port/);
  assert.match(String(refusals[1]?.msg), /formatter_file/);
  assert.deepEqual(lab.notified, ['RELOADING=1', 'READY=1', 'RELOADING=1', 'READY=1'], 'READY=1 also after a refusal: systemd must not hang in reloading');
  // The third reload compares against the config the process started with, not a refused one.
  await lab.reload.reload();
  const restart = lab.logs.lines().find((line) => String(line.msg).includes('apply only at a restart'));
  assert.deepEqual(restart?.keys, ['kafka.topic']);
});

test('a key that needs a restart is named at every reload until the file matches what runs again', async () => {
  const started = configWith({});
  let next = configWith({ KAFKA__TOPIC: 'other.topic' });
  const lab = driver(started, () => next);
  const restartLines = () => lab.logs.lines().filter((line) => String(line.msg).includes('apply only at a restart'));
  await lab.reload.reload();
  await lab.reload.reload();
  assert.equal(restartLines().length, 2, 'still not applied: said again');
  next = configWith({});
  await lab.reload.reload();
  assert.equal(restartLines().length, 2, 'the file is back to what runs: nothing to say');
});

test('SIGHUPs during a reload fold into one more reload after it', async () => {
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  let calls = 0;
  const lab = driver(
    configWith({}),
    () => configWith({}),
    async () => {
      calls += 1;
      if (calls === 1) await gate;
      return NO_CHANGES;
    },
  );
  const first = lab.reload.reload();
  const second = lab.reload.reload();
  const third = lab.reload.reload();
  release();
  await Promise.all([first, second, third]);
  assert.equal(calls, 2);
  assert.equal(await lab.count('applied'), 2);
});
