// An OTAA join in every region, through the gateway's real Semtech UDP ingress and LoRaWAN server on a loopback
// port. First by hand, with firmware-sim's device and one simulated packet forwarder: the join-accept's RX1
// timestamp (tmst + JOIN_ACCEPT_DELAY1), frequency and datr, its CFList bytes and receive settings, all against
// values worked out from RP002-1.0.3 here (not from the region tables under test); then the device sends on
// every channel the join gave it and each uplink is stored with its frequency. Then a firmware-sim fleet in
// the region: its devices only take a join-accept that comes on the frequency and data rate they listen on,
// and their uplinks, on the announced channels, are all stored.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lorawanDevicesConfig, runLorawanFleet } from '../../../firmware-sim/lorawan-fleet.ts';
import { fleetIdentities } from '../../../firmware-sim/state/lorawan-fleet-state.ts';
import { createSimLorawanDevice, deviceUplinkChannels } from '../../../firmware-sim/transports/lorawan-device.ts';
import { decodeJoinAccept } from '../../../src/ingress/lorawan/frame-crypto.ts';
import { type RegionOptions, regionFor } from '../../../src/ingress/lorawan/region.ts';
import type { Txpk } from '../../../src/ingress/semtech-udp/packets.ts';
import type { NewRecord } from '../../../src/record/record.ts';
import { startLorawanIngress } from '../../helpers/lorawan-ingress.ts';
import { waitFor } from '../../helpers/wait-for.ts';

interface RegionCase {
  readonly label: string;
  readonly region: string;
  readonly options?: RegionOptions;
  /** The join-request goes on this frequency at this datr... */
  readonly joinHz: number;
  readonly joinDatr: string;
  /** ...and RX1 answers here (RP002: same frequency, or US/AU downlink channel `uplink channel % 8`). */
  readonly rx1Hz: number;
  readonly rx1Datr: string;
  /** DLSettings' RX2 data rate: the region's default. */
  readonly rx2DataRate: number;
  /** The CFList as computed by hand from the spec layout; null: the join-accept has none. */
  readonly cfListHex: string | null;
  /** The channels the device uses after the join-accept. */
  readonly channelsHz: readonly number[];
}

const MHZ = 1_000_000;
const steps = (firstHz: number, stepHz: number, count: number): number[] => Array.from({ length: count }, (_, i) => firstHz + i * stepHz);

const CASES: readonly RegionCase[] = [
  {
    label: 'EU868',
    region: 'EU868',
    joinHz: 868.3 * MHZ,
    joinDatr: 'SF9BW125',
    rx1Hz: 868.3 * MHZ,
    rx1Datr: 'SF9BW125',
    rx2DataRate: 0,
    // 867.1 MHz = 8,671,000 x 100 Hz = 0x844F18, little-endian 18 4f 84; ... ; CFListType 0.
    cfListHex: '184f84e85684b85e84886684586e8400',
    channelsHz: [868.1 * MHZ, 868.3 * MHZ, 868.5 * MHZ, ...steps(867.1 * MHZ, 200_000, 5)],
  },
  {
    label: 'US915 sub-band 2',
    region: 'US915',
    joinHz: 904.3 * MHZ, // channel 10
    joinDatr: 'SF10BW125', // DR0
    rx1Hz: 924.5 * MHZ, // downlink channel 10 % 8 = 2: 923.3 + 2 x 0.6 MHz
    rx1Datr: 'SF10BW500', // DR10
    rx2DataRate: 8,
    // ChMask0 = 0xff00 (channels 8-15), ChMask4 = 0x0002 (channel 65), RFU, CFListType 1.
    cfListHex: '00ff0000000000000200000000000001',
    channelsHz: [...steps(903.9 * MHZ, 200_000, 8), 904.6 * MHZ],
  },
  {
    label: 'AU915 sub-band 1',
    region: 'AU915',
    options: { subBand: 1 },
    joinHz: 915.6 * MHZ, // channel 2
    joinDatr: 'SF12BW125', // DR0
    rx1Hz: 924.5 * MHZ, // downlink channel 2
    rx1Datr: 'SF12BW500', // DR8
    rx2DataRate: 8,
    cfListHex: 'ff000000000000000100000000000001',
    channelsHz: [...steps(915.2 * MHZ, 200_000, 8), 915.9 * MHZ],
  },
  {
    label: 'AS923-1',
    region: 'AS923-1',
    joinHz: 923.4 * MHZ,
    joinDatr: 'SF10BW125',
    rx1Hz: 923.4 * MHZ,
    rx1Datr: 'SF10BW125',
    rx2DataRate: 2,
    cfListHex: '20ee8cf0f58cc0fd8c90058d600d8d00',
    channelsHz: [...steps(923.2 * MHZ, 200_000, 7)],
  },
  {
    label: 'AS923-2',
    region: 'AS923-2',
    joinHz: 921.6 * MHZ,
    joinDatr: 'SF9BW125',
    rx1Hz: 921.6 * MHZ,
    rx1Datr: 'SF9BW125',
    rx2DataRate: 2,
    cfListHex: 'd0a78ca0af8c70b78c40bf8c10c78c00',
    channelsHz: [...steps(921.4 * MHZ, 200_000, 7)],
  },
  {
    label: 'AS923-3',
    region: 'AS923-3',
    joinHz: 916.6 * MHZ,
    joinDatr: 'SF7BW125',
    rx1Hz: 916.6 * MHZ,
    rx1Datr: 'SF7BW125',
    rx2DataRate: 2,
    cfListHex: '50ec8b20f48bf0fb8bc0038c900b8c00',
    channelsHz: [...steps(916.6 * MHZ, 200_000, 7)],
  },
  {
    label: 'AS923-4',
    region: 'AS923-4',
    joinHz: 917.5 * MHZ,
    joinDatr: 'SF8BW125',
    rx1Hz: 917.5 * MHZ,
    rx1Datr: 'SF8BW125',
    rx2DataRate: 2,
    cfListHex: 'a8078c780f8c48178c181f8ce8268c00',
    channelsHz: [...steps(917.3 * MHZ, 200_000, 7)],
  },
  {
    label: 'IN865',
    region: 'IN865',
    joinHz: 865_402_500,
    joinDatr: 'SF12BW125',
    rx1Hz: 865_402_500,
    rx1Datr: 'SF12BW125',
    rx2DataRate: 2,
    cfListHex: null,
    channelsHz: [865_062_500, 865_402_500, 865_985_000],
  },
  {
    label: 'KR920',
    region: 'KR920',
    joinHz: 922.5 * MHZ,
    joinDatr: 'SF11BW125',
    rx1Hz: 922.5 * MHZ,
    rx1Datr: 'SF11BW125',
    rx2DataRate: 0,
    // Four frequencies and an unused fifth slot.
    cfListHex: 'f8ca8cc8d28c98da8c68e28c00000000',
    channelsHz: [...steps(922.1 * MHZ, 200_000, 7)],
  },
];

interface UplinkValue {
  readonly end_device_ids: { readonly dev_eui: string };
  readonly uplink_message: {
    readonly f_cnt?: number;
    readonly frm_payload: string;
    readonly settings: { readonly frequency: string; readonly data_rate: { readonly lora: { readonly spreading_factor: number; readonly bandwidth: number } } };
  };
}

function uplinkValueOf(record: NewRecord): UplinkValue {
  return JSON.parse(Buffer.from(record.payload).toString('utf8')) as UplinkValue;
}

/** The join-accepts among the downlinks (MHDR 0x20): a server may also send MAC commands after an uplink. */
function joinAccepts(downlinks: readonly { readonly txpk: Txpk }[]): { readonly txpk: Txpk; readonly phy: Buffer }[] {
  return downlinks.map(({ txpk }) => ({ txpk, phy: Buffer.from(txpk.data, 'base64') })).filter(({ phy }) => phy[0] === 0x20);
}

for (const [caseIndex, plan] of CASES.entries()) {
  test(`${plan.label}: an OTAA device joins on the region's channel, RX1 and CFList as RP002 says, and its uplinks on the announced channels are stored`, async (t) => {
    const region = regionFor(plan.region, plan.options ?? {});
    assert.ok(region !== null);
    const byHand = { devices: 1, otaaShare: 1, seed: 100 + caseIndex };
    const fleet = { devices: 3, otaaShare: 1, seed: 200 + caseIndex };
    const gateway = await startLorawanIngress(t, region, [...lorawanDevicesConfig(byHand), ...lorawanDevicesConfig(fleet)]);

    // By hand: one join-request from firmware-sim's device through one forwarder.
    const [member] = fleetIdentities(byHand);
    assert.ok(member !== undefined);
    const device = createSimLorawanDevice(member.identity);
    const forwarder = await gateway.forwarder('aa555a00000000f1');
    const downlinks: { txpk: Txpk; atTmst: number }[] = [];
    forwarder.onDownlink((txpk, _mono, atTmst) => {
      downlinks.push({ txpk, atTmst });
      return 'NONE';
    });
    const tmst = forwarder.tmst();
    await forwarder.pushRxpk([{ phyPayload: device.joinRequest().phy, tmst, freqMhz: plan.joinHz / MHZ, datr: plan.joinDatr }]);
    await waitFor(() => joinAccepts(downlinks).length === 1, 'the join-accept');
    const [joinAccept] = joinAccepts(downlinks);
    assert.ok(joinAccept !== undefined);
    const { txpk, phy } = joinAccept;
    assert.equal(txpk.tmst, (tmst + 5_000_000) >>> 0, 'RX1 of a join-accept: tmst + JOIN_ACCEPT_DELAY1 (5 s)');
    assert.equal(Math.round(txpk.freq * MHZ), plan.rx1Hz, 'RX1 frequency');
    assert.equal(txpk.datr, plan.rx1Datr, 'RX1 data rate (RX1DROffset 0)');
    assert.equal(txpk.ipol, true);
    assert.equal(phy.length, plan.cfListHex === null ? 17 : 33);
    const activation = member.identity.activation;
    assert.equal(activation.mode, 'otaa');
    const decoded = decodeJoinAccept(activation.appKey, phy);
    assert.ok(decoded.ok, decoded.ok ? '' : decoded.message);
    assert.equal(decoded.cfList?.toString('hex') ?? null, plan.cfListHex, 'the CFList');
    assert.equal(decoded.rx2DataRate, plan.rx2DataRate, 'DLSettings: the region RX2 data rate');
    assert.equal(decoded.rx1DrOffset, 0);
    assert.equal(decoded.rxDelay, 1, 'RxDelay: RECEIVE_DELAY1 = 1 s');

    // The device takes it, and with it the channels; it then sends once on each of them.
    assert.ok(device.acceptJoin(phy), 'the device takes its join-accept');
    const channels = deviceUplinkChannels(region, 'otaa', device.joinSettings());
    assert.deepEqual(
      channels.map((channel) => channel.frequencyHz),
      plan.channelsHz,
      'the channels after the join-accept',
    );
    const sent: { fcnt: number; frequencyHz: number; datr: string }[] = [];
    for (const channel of channels) {
      const datr = region.datrFromDataRate(channel.maxDataRate);
      const { phy: uplink, fcnt } = device.uplink(Buffer.from(`on ${channel.frequencyHz}`), member.identity.fport, false);
      assert.equal(await forwarder.pushRxpk([{ phyPayload: uplink, freqMhz: channel.frequencyHz / MHZ, datr }]), true, 'PUSH_ACK');
      sent.push({ fcnt, frequencyHz: channel.frequencyHz, datr });
    }
    await waitFor(() => gateway.records.length === sent.length, `${sent.length} records`);
    for (const [index, expected] of sent.entries()) {
      const value = uplinkValueOf(gateway.records[index] as NewRecord);
      assert.equal(value.end_device_ids.dev_eui.toLowerCase(), member.identity.devEui);
      assert.equal(value.uplink_message.f_cnt ?? 0, expected.fcnt);
      assert.equal(Buffer.from(value.uplink_message.frm_payload, 'base64').toString(), `on ${expected.frequencyHz}`);
      assert.equal(value.uplink_message.settings.frequency, String(expected.frequencyHz), 'stored with the channel it came on');
      const lora = value.uplink_message.settings.data_rate.lora;
      assert.equal(`SF${lora.spreading_factor}BW${lora.bandwidth / 1000}`, expected.datr);
    }

    // A fleet in the region: every device joins at the first attempt (the join-accept came on the frequency and
    // data rate it listened on), then sends on its channels; every uplink is one record.
    const report = await runLorawanFleet({
      server: { host: '127.0.0.1', port: gateway.port },
      region,
      gateways: 1,
      ratePerSecond: 50,
      messagesPerDevice: 4,
      ...fleet,
    });
    assert.equal(report.region, region.subBand === null ? region.name : `${region.name} sub-band ${region.subBand}`);
    for (const reported of report.devices) {
      assert.deepEqual(reported.joins, { attempts: 1, accepted: 1 }, `${reported.name} joined at the first attempt`);
      for (const frame of reported.frames) {
        assert.ok(
          plan.channelsHz.includes(frame.frequencyHz),
          `${reported.name} FCnt ${frame.fcnt} on ${frame.frequencyHz} Hz, one of the channels the join gave it`,
        );
        assert.equal(region.dataRateFromDatr(frame.datr) !== null, true, `${frame.datr} is an uplink data rate of ${region.name}`);
      }
    }
    const fleetFrames = report.devices.flatMap((reported) => reported.frames.map((frame) => ({ devEui: reported.devEui, frame })));
    assert.equal(fleetFrames.length, 12);
    await waitFor(() => gateway.records.length === sent.length + fleetFrames.length, 'the fleet records');
    const stored = new Set(gateway.records.slice(sent.length).map((record) => `${record.key}:${uplinkValueOf(record).uplink_message.f_cnt ?? 0}`));
    for (const { devEui, frame } of fleetFrames) assert.ok(stored.has(`${devEui}:${frame.fcnt}`), `${devEui} FCnt ${frame.fcnt} stored`);
    if (region.extraUplinkChannels.length > 0) {
      const extras = new Set(region.extraUplinkChannels.map((channel) => channel.frequencyHz));
      assert.ok(
        fleetFrames.some(({ frame }) => extras.has(frame.frequencyHz)),
        'the fleet used channels it only knows from the CFList',
      );
    }
  });
}

test('US915: a join-request on the 500 kHz channel at SF8BW500 is uplink DR4, answered at DR13 on downlink channel 65 % 8', async (t) => {
  const region = regionFor('US915');
  assert.ok(region !== null);
  const shape = { devices: 1, otaaShare: 1, seed: 300 };
  const gateway = await startLorawanIngress(t, region, lorawanDevicesConfig(shape));
  const [member] = fleetIdentities(shape);
  assert.ok(member !== undefined);
  const device = createSimLorawanDevice(member.identity);
  const forwarder = await gateway.forwarder('aa555a00000000f2');
  const downlinks: { txpk: Txpk }[] = [];
  forwarder.onDownlink((txpk) => {
    downlinks.push({ txpk });
    return 'NONE';
  });
  const tmst = forwarder.tmst();
  await forwarder.pushRxpk([{ phyPayload: device.joinRequest().phy, tmst, freqMhz: 904.6, datr: 'SF8BW500' }]);
  await waitFor(() => joinAccepts(downlinks).length === 1, 'the join-accept');
  const [{ txpk } = { txpk: undefined }] = joinAccepts(downlinks);
  assert.ok(txpk !== undefined);
  // Read as downlink DR12 the RX1 rate would be wrong; as uplink DR4 it is DR13 (RP002-1.0.3 §2.5.7).
  assert.equal(txpk.datr, 'SF7BW500');
  assert.equal(Math.round(txpk.freq * MHZ), 923.9 * MHZ);
  assert.equal(txpk.tmst, (tmst + 5_000_000) >>> 0);
});

test('AS923 under the 400 ms dwell time: the join-accept leaves the CFList out (RX2 at DR2 carries 19 bytes) and goes in RX1 at DR2 or above', async (t) => {
  const region = regionFor('AS923-1', { dwellTime400ms: true });
  assert.ok(region !== null);
  const shape = { devices: 1, otaaShare: 1, seed: 301 };
  const gateway = await startLorawanIngress(t, region, lorawanDevicesConfig(shape));
  const [member] = fleetIdentities(shape);
  assert.ok(member !== undefined && member.identity.activation.mode === 'otaa');
  const device = createSimLorawanDevice(member.identity);
  const forwarder = await gateway.forwarder('aa555a00000000f3');
  const downlinks: { txpk: Txpk }[] = [];
  forwarder.onDownlink((txpk) => {
    downlinks.push({ txpk });
    return 'NONE';
  });
  const tmst = forwarder.tmst();
  await forwarder.pushRxpk([{ phyPayload: device.joinRequest().phy, tmst, freqMhz: 923.2, datr: 'SF10BW125' }]);
  await waitFor(() => joinAccepts(downlinks).length === 1, 'the join-accept');
  const [{ txpk, phy } = { txpk: undefined, phy: Buffer.alloc(0) }] = joinAccepts(downlinks);
  assert.ok(txpk !== undefined);
  assert.equal(phy.length, 17, 'no CFList');
  assert.equal(txpk.datr, 'SF10BW125', 'RX1 DR2: MinDR under the downlink dwell time');
  assert.equal(txpk.tmst, (tmst + 5_000_000) >>> 0);
  assert.ok(device.acceptJoin(phy));
  assert.deepEqual(
    deviceUplinkChannels(region, 'otaa', device.joinSettings()).map((channel) => channel.frequencyHz),
    [923_200_000, 923_400_000],
    'the device keeps its two default channels',
  );
});
