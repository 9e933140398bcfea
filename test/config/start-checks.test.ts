// `iotgw config check` refuses what `iotgw run` would refuse at start (exit 78), beyond the schema: LoRaWAN
// settings the region cannot take, and a session-backup key file that is missing or readable by others. The
// CLI is run as a user runs it.
import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import { startTimeIssues } from '../../src/config/start-checks.ts';
import { captureLog } from '../helpers/capture-log.ts';
import { iotgw } from '../helpers/iotgw-cli.ts';
import { tempDir } from '../helpers/temp-dir.ts';

function issuesOf(yaml: string, dir: string): string[] {
  const path = join(dir, `iotgw-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(path, yaml);
  return startTimeIssues(loadConfig({ path, env: {} }), captureLog('info').log, {});
}

test('the start-time checks: LoRaWAN values the region cannot take, ADR bounds, the DevStatus interval, the backup key file', (t) => {
  const dir = tempDir(t);
  const lorawan = (body: string) => `lorawan:\n  enabled: true\n${body}`;
  assert.deepEqual(issuesOf(lorawan('  region: US915\n  rx_windows: { rx2_data_rate: 5, rx1_dr_offset: 4 }\n'), dir), [
    'lorawan.rx_windows: rx1_dr_offset 4: US915 has offsets 0..3',
    "lorawan.rx_windows: rx2_data_rate 5: US915's downlink data rates are 8, 9, 10, 11, 12, 13",
  ]);
  assert.deepEqual(issuesOf(lorawan('  rx_windows: { rx1_dr_offset: 6, rx2_frequency_hz: 923300000 }\n'), dir), [
    'lorawan.rx_windows: rx1_dr_offset 6: EU868 has offsets 0..5',
    "lorawan.rx_windows: rx2_frequency_hz 923300000: outside EU868's 863-870 MHz; a gateway must not transmit there",
  ]);
  assert.deepEqual(issuesOf(lorawan('  region: US915\n  adr: { min_data_rate: 5 }\n  dev_status_interval_s: 10\n'), dir), [
    "lorawan: adr.min_data_rate 5: US915's uplink data rates end at DR4",
    'lorawan: dev_status_interval_s 10: each DevStatusReq is a downlink that costs airtime; ask at most every 600 s (a day, 86400, is usual), or 0 for never',
  ]);
  assert.deepEqual(issuesOf(lorawan('  adr: { min_data_rate: 4, max_data_rate: 2 }\n'), dir), ['lorawan: adr.min_data_rate 4 is above adr.max_data_rate 2']);
  assert.deepEqual(issuesOf(lorawan(''), dir), [], 'the defaults pass');
  // LoRaWAN off: its values are not checked against a region nobody uses.
  assert.deepEqual(issuesOf('lorawan:\n  region: US915\n  rx_windows: { rx2_data_rate: 5 }\n', dir), []);

  const key = join(dir, 'backup.key');
  writeFileSync(key, `${'ab'.repeat(32)}\n`);
  chmodSync(key, 0o644);
  const backup = issuesOf(`lorawan:\n  enabled: true\n  session_backup: { path: ${join(dir, 'sessions.enc')}, key_file: ${key} }\n`, dir);
  assert.equal(backup.length, 1);
  assert.match(backup[0] ?? '', /^lorawan\.session_backup: key_file: .*backup\.key has mode 0644.*chmod 600/);
});

test('iotgw config check exits 78 with the same problems iotgw run would stop on', (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'iotgw.yaml');
  writeFileSync(path, 'lorawan:\n  enabled: true\n  region: US915\n  rx_windows: { rx2_data_rate: 2 }\n');
  const checked = iotgw(['config', 'check', '--config', path]);
  assert.equal(checked.status, 78, checked.stdout);
  assert.match(checked.stderr, /lorawan\.rx_windows: rx2_data_rate 2: US915's downlink data rates are 8, 9, 10, 11, 12, 13/);
});
