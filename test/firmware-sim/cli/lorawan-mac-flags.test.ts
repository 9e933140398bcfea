// `firmware-sim lorawan` with the ADR and radio-link flags as a user runs them: the help explains them, contradictory
// or impossible values are usage errors (exit 2, one line naming the flag), and a run with --no-adr --path-loss
// --data-rate against the gateway's ingress keeps every device where it started and prints the new summary lines.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lorawanDevicesConfig } from '../../../firmware-sim/lorawan-fleet.ts';
import { EU868 } from '../../../src/ingress/lorawan/region.ts';
import { runSimCli } from '../../helpers/sim-cli.ts';
import { startMacGateway } from '../lorawan-mac-gateway.ts';

test('--help explains ADR, the path loss, the starting data rate and the MAC requests', async () => {
  const help = await runSimCli(['lorawan', '--help']);
  assert.equal(help.code, 0, help.stderr);
  for (const flag of ['--adr', '--no-adr', '--path-loss DB|A..B', '--link-jitter DB', '--data-rate DR', '--device-time', '--link-check N']) {
    assert.ok(help.stdout.includes(flag), `${flag} in the help`);
  }
  assert.match(help.stdout, /demodulation floor/);
  assert.match(help.stdout, /ADRACKReq/);
});

test('--adr with --no-adr, a path-loss range upside down, and a data rate the region lacks are usage errors', async () => {
  const both = await runSimCli(['lorawan', '--adr', '--no-adr', '--devices', '1']);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /--adr and --no-adr/);
  const range = await runSimCli(['lorawan', '--path-loss', '140..120']);
  assert.equal(range.code, 2);
  assert.match(range.stderr, /--path-loss must be a number of dB or a range A\.\.B/);
  const dataRate = await runSimCli(['lorawan', '--data-rate', '9']);
  assert.equal(dataRate.code, 2);
  assert.match(dataRate.stderr, /--data-rate: EU868 has no uplink data rate DR9/);
});

test('--no-adr --path-loss 118 --data-rate 2: the devices leave the ADR bit clear and stay at DR2 and full power', async (t) => {
  const shape = { devices: 2, otaaShare: 0, seed: 51 };
  const gateway = await startMacGateway(t, { region: EU868, devices: lorawanDevicesConfig(shape), mac: { devStatusIntervalMs: 0 } });
  const args = [
    '--server',
    `127.0.0.1:${gateway.port}`,
    '--gateways',
    '1',
    '--devices',
    '2',
    '--otaa-share',
    '0',
    '--seed',
    '51',
    '--messages',
    '2',
    '--rate',
    '0',
  ];
  const run = await runSimCli(['lorawan', ...args, '--no-adr', '--path-loss', '118', '--data-rate', '2', '--json', '--quiet']);
  assert.equal(run.code, 0, run.stderr);
  const report = JSON.parse(run.stdout) as {
    totals: { lost: number; dataRates: Record<string, number>; txPowers: Record<string, number> };
    devices: { radio: { adr: boolean; dataRate: number; pathLossDb: number }; frames: { adr: boolean; datr: string; snrDb: number }[] }[];
  };
  assert.deepEqual(report.totals.dataRates, { DR2: 2 });
  assert.deepEqual(report.totals.txPowers, { '16 dBm': 2 });
  assert.equal(report.totals.lost, 0);
  for (const device of report.devices) {
    assert.deepEqual(
      { adr: device.radio.adr, dataRate: device.radio.dataRate, pathLossDb: device.radio.pathLossDb },
      { adr: false, dataRate: 2, pathLossDb: 118 },
    );
    // 16 dBm - 118 dB + 117 dB of noise floor: +15 dB, +/-0.5.
    for (const frame of device.frames) assert.ok(!frame.adr && frame.datr === 'SF10BW125' && Math.abs(frame.snrDb - 15) <= 0.6, JSON.stringify(frame));
  }
  assert.equal(await gateway.counter('lorawanAdr', { result: 'requested' }), 0, 'no ADR bit, no LinkADRReq');

  const summary = await runSimCli(['lorawan', ...args, '--seed', '52', '--path-loss', '200', '--quiet']);
  assert.match(summary.stdout, /lost {12}4 frames below the demodulation floor/);
  assert.match(summary.stdout, /data rates {6}DR2 x2/);
  assert.equal(summary.code, 1, 'no PUSH_DATA acknowledged: nothing was heard');
});
