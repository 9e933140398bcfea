// `firmware-sim lorawan --region R --sub-band S` as a user runs it: the help names the regions, a sub-band for a
// region without sub-bands and a misspelt region are usage errors (exit 2), and a US915 run against the
// gateway's ingress in US915 joins its devices on the sub-band and reports the region.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lorawanDevicesConfig } from '../../../firmware-sim/lorawan-fleet.ts';
import { regionFor } from '../../../src/ingress/lorawan/region.ts';
import { startLorawanIngress } from '../../helpers/lorawan-ingress.ts';
import { runSimCli } from '../../helpers/sim-cli.ts';

test('--help names every region and the sub-band', async () => {
  const help = await runSimCli(['lorawan', '--help']);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /--region R/);
  assert.match(help.stdout, /EU868, US915, AU915, AS923-1, AS923-2, AS923-3, AS923-4, IN865, KR920/);
  assert.match(help.stdout, /--sub-band S/);
});

test('a sub-band outside US915/AU915, one outside 1..8, and an unknown region are usage errors', async () => {
  const eu = await runSimCli(['lorawan', '--region', 'EU868', '--sub-band', '3', '--devices', '1']);
  assert.equal(eu.code, 2);
  assert.match(eu.stderr, /--sub-band: EU868 has no sub-bands \(only US915 and AU915 do\)/);
  const nine = await runSimCli(['lorawan', '--region', 'US915', '--sub-band', '9']);
  assert.equal(nine.code, 2);
  assert.match(nine.stderr, /--sub-band/);
  const unknown = await runSimCli(['lorawan', '--region', 'US902']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /--region/);
});

test('--region US915 --sub-band 3: the devices join on sub-band 3 and send on its channels', async (t) => {
  const region = regionFor('US915', { subBand: 3 });
  assert.ok(region !== null);
  const shape = { devices: 2, otaaShare: 1, seed: 41 };
  const ingress = await startLorawanIngress(t, region, lorawanDevicesConfig(shape));
  const run = await runSimCli([
    'lorawan',
    ...['--server', `127.0.0.1:${ingress.port}`, '--region', 'US915', '--sub-band', '3', '--gateways', '1'],
    ...['--devices', '2', '--otaa-share', '1', '--seed', '41', '--messages', '2', '--rate', '50', '--json', '--quiet'],
  ]);
  assert.equal(run.code, 0, run.stderr);
  const report = JSON.parse(run.stdout) as {
    region: string;
    devices: { joins: { accepted: number }; frames: { frequencyHz: number }[] }[];
  };
  assert.equal(report.region, 'US915 sub-band 3');
  const subBand3 = new Set(region.uplinkChannelsHz);
  for (const device of report.devices) {
    assert.equal(device.joins.accepted, 1);
    for (const frame of device.frames) assert.ok(subBand3.has(frame.frequencyHz), `${frame.frequencyHz} Hz is on sub-band 3`);
  }
  assert.equal(ingress.records.length, 4, 'every uplink stored');
});
