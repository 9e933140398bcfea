// Each MAC command the gateway's network server sends or answers, once against the real thing (Semtech UDP
// ingress + LoRaWAN server on a loopback port, firmware-sim's packet forwarders over UDP), checked on the device
// side: DevStatusReq answered with the device's battery and the SNR it heard the request at, which the gateway
// stores as iotgw.dev_status; LinkCheckAns with the margin of the uplink the forwarders reported and the number of
// forwarders; DeviceTimeAns with the time the uplink arrived. And the MAC state (data rate, TX power) carried to
// the next run in the state file.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { lorawanDevicesConfig, runLorawanFleet } from '../../firmware-sim/lorawan-fleet.ts';
import { noiseFloorDbm } from '../../firmware-sim/transports/radio-link.ts';
import { EU868 } from '../../src/ingress/lorawan/region.ts';
import { requiredSnrDb } from '../../src/ingress/lorawan-server/adr.ts';
import { DEFAULT_MAC } from '../../src/ingress/lorawan-server/lorawan-server.ts';
import type { NewRecord } from '../../src/record/record.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { startMacGateway } from './lorawan-mac-gateway.ts';

const NO_ADR = { ...DEFAULT_MAC.adr, enabled: false };
const PATH_LOSS_DB = 120;

interface StoredUplink {
  readonly end_device_ids: { readonly device_id: string };
  readonly uplink_message: { readonly f_cnt?: number };
  readonly iotgw: { readonly dev_status?: { readonly battery: number; readonly margin_db: number; readonly external_power: boolean } };
}

function stored(record: NewRecord): StoredUplink {
  return JSON.parse(Buffer.from(record.payload).toString('utf8')) as StoredUplink;
}

test('DevStatusReq: each device answers with its battery (0 on mains power) and the SNR it heard the request at; the gateway stores it as iotgw.dev_status', async (t) => {
  // The fleet's first three devices: an electricity meter and a street lamp (mains), a water meter (battery).
  const shape = { devices: 3, otaaShare: 0, seed: 71 };
  const devices = lorawanDevicesConfig(shape);
  const gateway = await startMacGateway(t, { region: EU868, devices, mac: { adr: NO_ADR, devStatusIntervalMs: 1 } });
  const report = await runLorawanFleet({
    server: { host: '127.0.0.1', port: gateway.port },
    gateways: 1,
    ratePerSecond: 0,
    messagesPerDevice: 4,
    pathLossDb: PATH_LOSS_DB,
    linkJitterDb: 0,
    ...shape,
  });
  await waitFor(() => gateway.records.length === report.totals.uplinks, 'every uplink stored');
  // The gateway sends at 14 dBm: the device hears it 14 - 120 + 117 = 11 dB above the noise.
  const margin = Math.round(EU868.defaultTxPowerDbm - PATH_LOSS_DB - noiseFloorDbm(125));
  for (const device of report.devices) {
    const answers = device.mac.devStatus;
    assert.ok(answers.length >= 1, `${device.name} answered a DevStatusReq`);
    // The request in the last uplink's window finds no uplink after it in this run.
    const asked = device.mac.received.DevStatusReq ?? 0;
    assert.ok(asked - answers.length <= 1, `${device.name}: ${asked} asked, ${answers.length} answered`);
    const mains = device.name.startsWith('em-') || device.name.startsWith('sl-');
    for (const answer of answers) {
      assert.equal(answer.margin, margin, `${device.name}: margin = the downlink's SNR`);
      if (mains) assert.equal(answer.battery, 0, `${device.name} is on mains power`);
      else assert.ok(answer.battery >= 1 && answer.battery <= 254, `${device.name}: a battery level, got ${answer.battery}`);
      // It rode in that uplink's FOpts and became its record's iotgw.dev_status.
      const frame = device.frames.find((candidate) => candidate.kind === 'uplink' && candidate.fcnt === answer.fcnt);
      assert.ok(frame?.macCommands.includes('DevStatusAns'), `${device.name} FCnt ${answer.fcnt} carried it`);
      const record = gateway.records
        .map(stored)
        .find((value) => value.end_device_ids.device_id === device.name && (value.uplink_message.f_cnt ?? 0) === answer.fcnt);
      assert.deepEqual(
        { battery: record?.iotgw.dev_status?.battery, margin: record?.iotgw.dev_status?.margin_db, external: record?.iotgw.dev_status?.external_power },
        { battery: answer.battery, margin: answer.margin, external: mains },
        `${device.name} FCnt ${answer.fcnt}`,
      );
    }
  }
  assert.equal(
    await gateway.counter('lorawanMacCommands', { direction: 'up', command: 'DevStatusAns', result: 'handled' }),
    report.totals.macCommandsAnswered.DevStatusAns,
  );
});

test('LinkCheckReq and DeviceTimeReq: the device reads the margin and gateway count of its uplink, and the time it arrived', async (t) => {
  const shape = { devices: 1, otaaShare: 0, seed: 72 };
  const gateway = await startMacGateway(t, { region: EU868, devices: lorawanDevicesConfig(shape), mac: { adr: NO_ADR, devStatusIntervalMs: 0 } });
  const report = await runLorawanFleet({
    server: { host: '127.0.0.1', port: gateway.port },
    gateways: 2,
    twoGatewayShare: 1,
    ratePerSecond: 0,
    messagesPerDevice: 4,
    pathLossDb: PATH_LOSS_DB,
    deviceTime: true,
    linkCheckEveryUplinks: 2,
    ...shape,
  });
  const [device] = report.devices;
  assert.ok(device !== undefined);
  const uplinks = device.frames.filter((frame) => frame.kind === 'uplink');
  assert.deepEqual(
    uplinks.map((frame) => frame.macCommands),
    [['DeviceTimeReq'], ['LinkCheckReq'], [], ['LinkCheckReq']],
    'the time once, in the first uplink; a link check every second uplink',
  );
  assert.deepEqual(device.mac.requested, { DeviceTimeReq: 1, LinkCheckReq: 2 });

  // LinkCheckAns: the margin of the best reception above the uplink's demodulation floor, both forwarders counted.
  assert.equal(device.mac.linkChecks.length, 2);
  for (const check of device.mac.linkChecks) {
    const frame = uplinks.find((candidate) => candidate.fcnt === check.afterFcnt);
    assert.ok(
      frame !== undefined && frame.snrDb !== null && frame.macCommands.includes('LinkCheckReq'),
      `the answer follows the uplink that asked (FCnt ${check.afterFcnt})`,
    );
    const floor = requiredSnrDb(EU868.dataRates.get(frame.dataRate)?.spreadingFactor ?? 0) ?? 0;
    assert.equal(check.margin, Math.round(frame.snrDb - floor), `FCnt ${frame.fcnt}: ${frame.snrDb} dB at ${frame.datr}`);
    assert.equal(check.gwCnt, 2, 'both forwarders heard it');
    assert.equal(frame.gateways.length, 2);
  }

  // DeviceTimeAns: GPS time of the uplink's arrival, so between the push and the answer (the GPS fraction is 1/256 s).
  const time = device.mac.deviceTime;
  assert.ok(time !== null, 'the device got the time');
  assert.ok(
    time.unixMs >= time.requestedAtMs - 4 && time.unixMs <= time.answeredAtMs,
    `GPS time ${time.unixMs} between ${time.requestedAtMs} and ${time.answeredAtMs}`,
  );
  assert.equal(time.offsetMs, time.unixMs - time.requestedAtMs);
  assert.deepEqual(device.mac.received, { DeviceTimeAns: 1, LinkCheckAns: 2 });
  assert.equal(await gateway.counter('lorawanMacCommands', { direction: 'down', command: 'DeviceTimeAns', result: 'sent' }), 1);
  assert.equal(await gateway.counter('lorawanMacCommands', { direction: 'down', command: 'LinkCheckAns', result: 'sent' }), 2);
});

test("NewChannelReq (announce_channels): the region's five extra channels reach an ABP device on FPort 0, and it answers each", async (t) => {
  const shape = { devices: 1, otaaShare: 0, seed: 74 };
  const gateway = await startMacGateway(t, {
    region: EU868,
    devices: lorawanDevicesConfig(shape),
    mac: { adr: NO_ADR, devStatusIntervalMs: 0, announceChannels: true },
  });
  const report = await runLorawanFleet({
    server: { host: '127.0.0.1', port: gateway.port },
    gateways: 1,
    ratePerSecond: 0,
    messagesPerDevice: 3,
    pathLossDb: PATH_LOSS_DB,
    ...shape,
  });
  const [device] = report.devices;
  assert.ok(device !== undefined);
  // Five NewChannelReq are 30 bytes: more than FOpts holds, so they came on FPort 0, encrypted with the NwkSKey.
  assert.deepEqual(device.mac.carriers, { fopts: 0, port0: 1 });
  assert.deepEqual(device.mac.applied, { NewChannelReq: 5 });
  assert.deepEqual(device.mac.answered, { NewChannelAns: 5 });
  assert.deepEqual(
    device.frames.map((frame) => frame.macCommands.length),
    [0, 5, 0],
    'the answers rode in the next uplink (10 bytes of FOpts)',
  );
  assert.deepEqual(device.radio.enabledChannels, [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.equal(await gateway.counter('lorawanMacCommands', { direction: 'up', command: 'NewChannelAns', result: 'handled' }), 5);
  assert.equal(await gateway.counter('lorawanMacCommands', { direction: 'down', command: 'NewChannelReq', result: 'sent' }), 5, 'and it was not asked again');
});

test('the state file keeps each device MAC state: a second run starts at the data rate and TX power ADR left it at', async (t) => {
  const stateFile = join(tempDir(t), 'sim-state.json');
  const shape = { devices: 2, otaaShare: 0.5, seed: 73 };
  const gateway = await startMacGateway(t, { region: EU868, devices: lorawanDevicesConfig(shape), mac: { devStatusIntervalMs: 0 } });
  const fleet = {
    server: { host: '127.0.0.1', port: gateway.port },
    gateways: 1,
    ratePerSecond: 0,
    initialDataRate: 0,
    pathLossDb: PATH_LOSS_DB,
    stateFile,
    ...shape,
  };
  const first = await runLorawanFleet({ ...fleet, messagesPerDevice: 3 });
  const second = await runLorawanFleet({ ...fleet, messagesPerDevice: 1 });
  for (const device of first.devices) {
    assert.ok(device.mac.adrChanges.length > 0, `${device.name}: ADR moved it off DR0`);
    const next = second.devices.find((candidate) => candidate.devEui === device.devEui)?.frames[0];
    assert.deepEqual(
      { dataRate: next?.dataRate, txPowerIndex: next?.txPowerIndex },
      { dataRate: device.radio.dataRate, txPowerIndex: device.radio.txPowerIndex },
      `${device.name} goes on where it was`,
    );
  }
  assert.equal(second.totals.joinAttempts, 0);
});

test('RXParamSetupReq, RXTimingSetupReq, DutyCycleReq: the device takes the windows, and the gateway answers in them from then on', async (t) => {
  const shape = { devices: 1, otaaShare: 0, seed: 75 };
  const gateway = await startMacGateway(t, {
    region: EU868,
    devices: lorawanDevicesConfig(shape),
    mac: { adr: NO_ADR, devStatusIntervalMs: 0, rx: { rx1DelayS: 2, rx2DataRate: 3 }, maxDutyCycle: 4 },
  });
  const report = await runLorawanFleet({
    server: { host: '127.0.0.1', port: gateway.port },
    gateways: 1,
    ratePerSecond: 0,
    messagesPerDevice: 5,
    pathLossDb: PATH_LOSS_DB,
    ...shape,
  });
  const [device] = report.devices;
  assert.ok(device !== undefined);
  assert.deepEqual(device.mac.applied, { RXParamSetupReq: 1, RXTimingSetupReq: 1, DutyCycleReq: 1 });
  assert.deepEqual(device.mac.answered, { RXParamSetupAns: 1, RXTimingSetupAns: 1, DutyCycleAns: 1 });
  // The answers rode in the second uplink; the downlink after it reached the device in its new RX1 (two seconds
  // after the uplink, where a device listens only then), which ended the repeats: the later uplinks carry none.
  assert.deepEqual(
    device.frames.map((frame) => frame.macCommands),
    [[], ['RXParamSetupAns', 'RXTimingSetupAns', 'DutyCycleAns'], [], [], []],
  );
  for (const name of ['RXParamSetupReq', 'RXTimingSetupReq', 'DutyCycleReq']) {
    assert.equal(await gateway.counter('lorawanMacCommands', { direction: 'down', command: name, result: 'sent' }), 1, `${name} sent once`);
  }
});
