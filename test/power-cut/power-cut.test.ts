// Power cuts: the gateway's buffer on power-cut-fs, which keeps only what was fsynced when the power fails.
// First the file system itself is held to its model (so a pass below means something), then the gateway under
// QoS 1 load survives random cuts with every acknowledged reading in Kafka, and the same harness on a disk that
// ignores fsync loses acknowledged readings (so the test can fail). `npm run soak -- power-cut --cuts 200`
// runs the long version.
import assert from 'node:assert/strict';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../helpers/temp-dir.ts';
import { mountPowerCutFs } from './power-cut-fs.ts';
import { runPowerCutScenario } from './power-cut-scenario.ts';

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

test('power-cut-fs keeps what was fsynced and drops the rest: data, new names, renames, directories', async (t) => {
  const dir = tempDir(t, 'iotgw-power-cut-fs-');
  const mountPoint = join(dir, 'mnt');
  mkdirSync(mountPoint);
  const imagePath = join(dir, 'disk.img');
  let disk = await mountPowerCutFs({ imagePath, mountPoint });
  try {
    await checkModel();
  } finally {
    await disk.unmount().catch(() => undefined); // before tempDir's cleanup runs
  }

  async function checkModel(): Promise<void> {
    const at = (name: string) => join(mountPoint, name);

    mkdirSync(at('kept'));
    mkdirSync(at('unsynced-dir'));
    fsyncPath(mountPoint); // both names are durable now...
    writeFileSync(at('kept/synced'), 'first');
    fsyncPath(at('kept/synced'));
    const fd = openSync(at('kept/synced'), 'a');
    writeSync(fd, ' + not synced');
    closeSync(fd);
    writeFileSync(at('kept/never-synced-data'), 'lost'); // its name becomes durable below, its data never
    writeFileSync(at('kept/to-rename'), 'renamed');
    fsyncPath(at('kept/to-rename'));
    fsyncPath(at('kept'));
    writeFileSync(at('kept/name-not-synced'), 'x');
    fsyncPath(at('kept/name-not-synced')); // data synced, but the directory entry is not
    renameSync(at('kept/to-rename'), at('kept/renamed')); // not synced: the old name comes back
    mkdirSync(at('unsynced-dir/child')); // ...but not this one's
    assert.equal(readFileSync(at('kept/synced'), 'utf8'), 'first + not synced', 'before the cut, processes see every write');

    await disk.cut();
    assert.throws(() => readFileSync(at('kept/synced')), /EIO/, 'after the cut the disk is gone');
    await disk.unmount();
    disk = await mountPowerCutFs({ imagePath, mountPoint });

    assert.equal(readFileSync(at('kept/synced'), 'utf8'), 'first');
    assert.equal(readFileSync(at('kept/never-synced-data'), 'utf8'), '', 'a durable name with unsynced data is empty');
    assert.ok(!existsSync(at('kept/name-not-synced')), 'a file whose directory was not synced is gone');
    assert.equal(readFileSync(at('kept/to-rename'), 'utf8'), 'renamed');
    assert.ok(!existsSync(at('kept/renamed')));
    assert.ok(existsSync(at('unsynced-dir')) && !existsSync(at('unsynced-dir/child')));

    // A clean unmount keeps everything, as a clean shutdown syncs the disk.
    writeFileSync(at('kept/clean'), 'all of it');
    await disk.unmount();
    disk = await mountPowerCutFs({ imagePath, mountPoint });
    assert.equal(readFileSync(at('kept/clean'), 'utf8'), 'all of it');
  }
});

const SCENARIO = { seed: 20261206, devices: 40, ratePerSecond: 600, minLoadMs: 300, maxLoadMs: 1500 };

test('power cuts at random moments under QoS 1 load: every acknowledged reading reaches Kafka, in order per device', async (t) => {
  const report = await runPowerCutScenario(tempDir(t, 'iotgw-power-cut-'), {
    ...SCENARIO,
    cuts: 8,
    onProgress: (line) => t.diagnostic(line),
  });
  t.diagnostic(
    `cuts ${report.cuts}, acknowledged ${report.acked}, lost ${report.lost.length}, duplicates ${report.gatewayDuplicates} (same record id) + ${report.deviceDuplicates} (device re-sends)`,
  );
  assert.ok(report.acked >= 1000, `the fleet was acknowledged readings between the cuts (${report.acked})`);
  assert.deepEqual(report.lost.slice(0, 20), [], `${report.lost.length} acknowledged readings lost in power cuts`);
  assert.deepEqual(report.outOfOrder, [], 'per-device order');
});

test('control: the same harness on a disk that acknowledges fsync without flushing loses acknowledged readings', async (t) => {
  const report = await runPowerCutScenario(tempDir(t, 'iotgw-power-cut-control-'), {
    ...SCENARIO,
    cuts: 2,
    ignoreFsync: true,
    onProgress: (line) => t.diagnostic(line),
  });
  t.diagnostic(`control: cuts ${report.cuts}, acknowledged ${report.acked}, lost ${report.lost.length}`);
  assert.ok(report.lost.length > 0, `the harness must see a loss when fsync does nothing (acknowledged ${report.acked}, lost 0)`);
});
