// The LoRaWAN ingress over real UDP sockets, driven by simulated packet forwarders with frames from the
// spec vectors (test/fixtures/lorawan): dedup across gateways, replays and forged MICs, OTAA join with the
// join-accept's timing, confirmed-uplink ACKs, and counters and sessions that survive a restart.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { createSimulatedForwarder, type SimulatedForwarder } from '../../../firmware-sim/transports/packet-forwarder.ts';
import type { StateWrite } from '../../../src/buffer/record-buffer.ts';
import type { Accept } from '../../../src/ingress/ingress.ts';
import { decodeJoinAccept, deriveSessionKeys, encodeDataFrame, encodeJoinRequest } from '../../../src/ingress/lorawan/frame-crypto.ts';
import { parsePhyPayload } from '../../../src/ingress/lorawan/phy-payload.ts';
import { EU868 } from '../../../src/ingress/lorawan/region.ts';
import type { LorawanDeviceProfile } from '../../../src/ingress/lorawan-server/device-sessions.ts';
import { createLorawanNetwork } from '../../../src/ingress/lorawan-server/lorawan-network.ts';
import { CAYENNE_LPP_CODEC, RAW_CODEC } from '../../../src/codecs/payload-codec.ts';
import type { Txpk } from '../../../src/ingress/semtech-udp/packets.ts';
import { createSemtechUdpIngress, type SemtechUdpIngress } from '../../../src/ingress/semtech-udp/semtech-udp-ingress.ts';
import { createMetrics, type Metrics } from '../../../src/core/metrics.ts';
import type { NewRecord } from '../../../src/record/record.ts';
import { captureLog } from '../../helpers/capture-log.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { VECTOR_ABP_DEVICE, vectorPhyPayload } from '../../helpers/lorawan-vectors.ts';

const phy = vectorPhyPayload;
const ABP = VECTOR_ABP_DEVICE;

// An ABP device without non-volatile counters: it starts at 0 again after a reboot.
const ABP_RESETS: LorawanDeviceProfile = {
  devEui: '0303030303030303',
  name: 'cheap-sensor-1',
  codec: RAW_CODEC,
  resetsFCnt: true,
  activation: {
    mode: 'abp',
    devAddr: '26011111',
    nwkSKey: Buffer.from('0a0b0c0d0e0f101112131415161718a1', 'hex'),
    appSKey: Buffer.from('1a1b1c1d1e1f202122232425262728a2', 'hex'),
  },
};
const APP_KEY = Buffer.from('0102030405060708090a0b0c0d0e0f10', 'hex');
const OTAA: LorawanDeviceProfile = {
  devEui: '0202020202020202',
  name: 'lamp-1',
  codec: CAYENNE_LPP_CODEC,
  activation: { mode: 'otaa', joinEui: '0101010101010101', appKey: APP_KEY },
};

interface Harness {
  readonly ingress: SemtechUdpIngress;
  readonly metrics: Metrics;
  readonly records: NewRecord[];
  readonly state: Map<string, string>;
  forwarder(eui: string): Promise<SimulatedForwarder>;
  rejected(reason: string): Promise<number>;
}

async function startHarness(t: TestContext, state = new Map<string, string>(), commitDelayMs = 0, maxFramesInFlight = 10_000): Promise<Harness> {
  const metrics = createMetrics({ processMetrics: false });
  const records: NewRecord[] = [];
  const accept: Accept = async (batch, writes: readonly StateWrite[] = []) => {
    // A slow disk: the commit resolves later, as an fsync on an SD card can.
    if (commitDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, commitDelayMs));
    records.push(...batch);
    for (const write of writes) {
      if (write.value === null) state.delete(write.key);
      else state.set(write.key, write.value);
    }
    return { ok: true, seqs: batch.map((_, index) => index) };
  };
  const log = captureLog('warn').log;
  const network = createLorawanNetwork(
    { region: EU868, netId: '000013', dedupWindowMs: 150, stream: 'uplink', rejectLogIntervalMs: 60_000, devices: [ABP, OTAA, ABP_RESETS], maxFramesInFlight },
    { accept, loadState: async () => new Map(state), log, metrics },
  );
  const ingress = createSemtechUdpIngress(
    { host: '127.0.0.1', port: 0, gatewayStatusStream: null, allowedGateways: null, maxGateways: 100, maxDatagramsPerSecondPerSource: 100_000 },
    { network, accept, log, metrics },
  );
  await network.start();
  await ingress.start();
  t.after(async () => {
    await ingress.stop();
    await network.stop();
  });
  return {
    ingress,
    metrics,
    records,
    state,
    async forwarder(eui) {
      const forwarder = createSimulatedForwarder({ gatewayEui: eui, server: { host: '127.0.0.1', port: ingress.address().port }, keepaliveMs: 1000 });
      await forwarder.start();
      t.after(() => forwarder.stop());
      // The downlink route exists once the ingress has seen the forwarder's PULL_DATA.
      await waitFor(() => ingress.gateways().some((gateway) => gateway.gatewayEui === eui && gateway.pullRoute !== null), `a downlink route to ${eui}`);
      return forwarder;
    },
    async rejected(reason) {
      const metric = await metrics.ingressRejected.get();
      return metric.values.find((value) => value.labels.reason === reason && value.labels.source === 'semtech-udp')?.value ?? 0;
    },
  };
}

interface UplinkValue {
  readonly end_device_ids: Record<string, unknown>;
  readonly uplink_message: Record<string, unknown>;
  readonly iotgw: Record<string, unknown>;
}

function uplinkOf(record: NewRecord | undefined): UplinkValue {
  assert.ok(record !== undefined, 'a record was stored');
  return JSON.parse(Buffer.from(record.payload).toString('utf8'));
}

test('one frame heard by two gateways becomes one record listing both receptions', async (t) => {
  const harness = await startHarness(t);
  const gatewayA = await harness.forwarder('aa555a0000000001');
  const gatewayB = await harness.forwarder('aa555a0000000002');
  assert.equal(await gatewayA.pushRxpk([{ phyPayload: phy('lp-test'), rssi: -80, lsnr: 7.5 }]), true, 'PUSH_ACK');
  assert.equal(await gatewayB.pushRxpk([{ phyPayload: phy('lp-test'), rssi: -101, lsnr: -3 }]), true, 'PUSH_ACK');
  await waitFor(() => harness.records.length === 1, 'one record');
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(harness.records.length, 1, 'the copies were deduplicated');
  const [record] = harness.records;
  assert.equal(record?.key, '0011223344556677');
  assert.equal(record?.source, 'semtech-udp');
  assert.equal(record?.stream, 'uplink');
  const value = uplinkOf(record);
  assert.deepEqual(value.end_device_ids, { device_id: 'meter-1', dev_eui: '0011223344556677', dev_addr: '49BE7DF1' });
  assert.equal(value.uplink_message.f_port, 1);
  assert.equal(value.uplink_message.f_cnt, 2);
  assert.equal(Buffer.from(String(value.uplink_message.frm_payload), 'base64').toString(), 'test');
  const receptions = value.uplink_message.rx_metadata as { gateway_ids: { eui: string }; rssi: number; snr: number }[];
  assert.deepEqual(
    receptions.map((reception) => [reception.gateway_ids.eui, reception.rssi, reception.snr]),
    [
      ['AA555A0000000001', -80, 7.5],
      ['AA555A0000000002', -101, -3],
    ],
    'best reception first',
  );
  const settings = value.uplink_message.settings as { frequency: string; data_rate: { lora: { spreading_factor: number; bandwidth: number } } };
  assert.match(settings.frequency, /^86\d{7}$/);
  assert.equal(settings.data_rate.lora.bandwidth, 125_000);
  assert.equal(record?.meta['lorawan-frame'], `0011223344556677:${JSON.parse(harness.state.get('0011223344556677') ?? '{}').session.id}:2`);
});

test('a replayed older frame and a forged MIC are rejected, counted, and store nothing', async (t) => {
  const harness = await startHarness(t);
  const gateway = await harness.forwarder('aa555a0000000001');
  await gateway.pushRxpk([{ phyPayload: phy('lp-large') }]); // FCnt 4
  await waitFor(() => harness.records.length === 1, 'one record');
  assert.equal(uplinkOf(harness.records[0]).iotgw.f_cnt_gap, 0, 'the first uplink of a session has no gap');

  await gateway.pushRxpk([{ phyPayload: phy('lp-test') }]); // FCnt 2: behind the session
  const forged = phy('lp-large');
  forged.writeUInt8(forged.readUInt8(forged.length - 1) ^ 0x01, forged.length - 1);
  await gateway.pushRxpk([{ phyPayload: forged }]);
  await gateway.pushRxpk([{ phyPayload: phy('lp-large') }]); // the same frame again, after the dedup window
  await gateway.pushRxpk([{ phyPayload: Buffer.from('40ffffffff00010001', 'hex') }]); // too short to be a data frame
  await waitFor(async () => (await harness.rejected('replay')) === 1 && (await harness.rejected('mic-mismatch')) === 1, 'the replay and the forgery counted');
  await waitFor(
    async () => (await harness.rejected('retransmission')) === 1 && (await harness.rejected('malformed-frame')) === 1,
    'the repeat and the malformed frame counted',
  );
  assert.equal(harness.records.length, 1, 'nothing else was stored');
});

test('a frame from an unknown DevAddr is rejected with its reason', async (t) => {
  const harness = await startHarness(t);
  const gateway = await harness.forwarder('aa555a0000000001');
  await gateway.pushRxpk([{ phyPayload: phy('br-frmpayload-hello') }]); // DevAddr 01020304, not configured
  await waitFor(async () => (await harness.rejected('unknown-devaddr')) === 1, 'the unknown DevAddr counted');
  assert.equal(harness.records.length, 0);
});

test('an OTAA device joins: the join-accept arrives for RX1 and decodes, and its uplinks then decrypt', async (t) => {
  const harness = await startHarness(t);
  const gateway = await harness.forwarder('aa555a0000000001');
  const downlinks: { txpk: Txpk; atTmst: number }[] = [];
  gateway.onDownlink((txpk, _mono, atTmst) => {
    downlinks.push({ txpk, atTmst });
    return 'NONE';
  });
  const uplinkTmst = gateway.tmst();
  const joinRequest = encodeJoinRequest({ appKey: APP_KEY, joinEui: '0101010101010101', devEui: '0202020202020202', devNonce: 771 });
  await gateway.pushRxpk([{ phyPayload: joinRequest, tmst: uplinkTmst, freqMhz: 868.3, datr: 'SF9BW125' }]);
  await waitFor(() => downlinks.length === 1, 'a downlink', 5000);
  const [{ txpk, atTmst }] = downlinks as [{ txpk: Txpk; atTmst: number }];
  assert.equal(txpk.tmst, (uplinkTmst + 5_000_000) >>> 0, 'RX1 of a join-accept opens JOIN_ACCEPT_DELAY1 = 5 s after the uplink');
  assert.ok(((txpk.tmst ?? 0) - atTmst) >>> 0 < 5_000_000, 'the downlink reached the forwarder before its transmit time');
  assert.equal(txpk.freq, 868.3, 'EU868 RX1 uses the uplink frequency');
  assert.equal(txpk.datr, 'SF9BW125', 'RX1DROffset 0: the uplink data rate');
  assert.equal(txpk.ipol, true);
  const accept = decodeJoinAccept(APP_KEY, Buffer.from(txpk.data, 'base64'));
  assert.ok(accept.ok, 'the join-accept decrypts and its MIC verifies with the AppKey');
  assert.equal(accept.netId, '000013');
  assert.equal(Number.parseInt(accept.devAddr, 16) >>> 25, 0x13, 'the DevAddr carries the NwkID');
  await waitFor(
    async () => (await harness.metrics.lorawanJoins.get()).values.find((value) => value.labels.result === 'accepted')?.value === 1,
    'the join counted as accepted once its TX_ACK came back',
  );

  // The device now holds the same session keys and sends a Cayenne LPP reading.
  const keys = deriveSessionKeys(APP_KEY, accept.joinNonce, accept.netId, 771);
  const lpp = Buffer.from('03670110056700ff', 'hex');
  const uplink = encodeDataFrame({ mtype: 'UnconfirmedDataUp', devAddr: accept.devAddr, fcnt32: 0, fport: 5, payload: lpp, ...keys });
  await gateway.pushRxpk([{ phyPayload: uplink }]);
  await waitFor(() => harness.records.length === 1, 'one record');
  const value = uplinkOf(harness.records[0]);
  assert.equal(harness.records[0]?.key, '0202020202020202');
  assert.equal(value.uplink_message.frm_payload, lpp.toString('base64'));
  assert.deepEqual(value.uplink_message.decoded_payload, { temperature_3: 27.2, temperature_5: 25.5 });

  // The same join-request again is a replay of a used DevNonce.
  await gateway.pushRxpk([{ phyPayload: joinRequest }]);
  await waitFor(async () => (await harness.rejected('devnonce-reused')) === 1, 'the reused DevNonce counted');
  assert.equal(downlinks.length, 1, 'no second join-accept');
});

test('a confirmed uplink is acknowledged in RX1 after its record is stored', async (t) => {
  const harness = await startHarness(t);
  const gateway = await harness.forwarder('aa555a0000000001');
  const downlinks: Txpk[] = [];
  gateway.onDownlink((txpk) => {
    downlinks.push(txpk);
    return 'NONE';
  });
  const { activation } = ABP;
  assert.equal(activation.mode, 'abp');
  const confirmed = encodeDataFrame({
    mtype: 'ConfirmedDataUp',
    devAddr: activation.devAddr,
    fcnt32: 7,
    fport: 2,
    payload: Buffer.from('hello'),
    nwkSKey: activation.nwkSKey,
    appSKey: activation.appSKey,
  });
  const tmst = gateway.tmst();
  await gateway.pushRxpk([{ phyPayload: confirmed, tmst }]);
  await waitFor(() => downlinks.length === 1, 'a downlink', 5000);
  assert.equal(harness.records.length, 1);
  const [ack] = downlinks as [Txpk];
  assert.equal(ack.tmst, (tmst + 1_000_000) >>> 0, 'RX1 opens RECEIVE_DELAY1 = 1 s after the uplink');
  const parsed = parsePhyPayload(Buffer.from(ack.data, 'base64'));
  assert.ok(parsed.ok && parsed.frame.kind === 'data');
  assert.equal(parsed.frame.mtype, 'UnconfirmedDataDown');
  assert.equal(parsed.frame.fctrl.ack, true);
  assert.equal(parsed.frame.devAddr, '49be7df1');

  // The device missed the ACK and sends the same frame again: ACKed again, not stored twice.
  await new Promise((resolve) => setTimeout(resolve, 250));
  await gateway.pushRxpk([{ phyPayload: confirmed, tmst: gateway.tmst() }]);
  await waitFor(() => downlinks.length === 2, 'a second ACK', 5000);
  assert.equal(harness.records.length, 1);
  assert.equal(uplinkOf(harness.records[0]).uplink_message.confirmed, true);
  // That second ACK's FCntDown was committed before it went: a restart never sends another frame with it.
  const second = parsePhyPayload(Buffer.from((downlinks[1] as Txpk).data, 'base64'));
  assert.ok(second.ok && second.frame.kind === 'data');
  const stored = JSON.parse([...harness.state.values()].find((value) => value.includes('"f_cnt_down"')) ?? '{}') as { session?: { f_cnt_down: number } };
  assert.ok((stored.session?.f_cnt_down ?? 0) > second.frame.fcnt16, `committed FCntDown ${stored.session?.f_cnt_down} is past ${second.frame.fcnt16}`);
});

test('a retransmission that arrives while the first copy is still being committed is not stored twice', async (t) => {
  const harness = await startHarness(t, new Map(), 1000);
  const gateway = await harness.forwarder('aa555a0000000001');
  await gateway.pushRxpk([{ phyPayload: phy('lp-test') }]);
  await new Promise((resolve) => setTimeout(resolve, 400)); // past the dedup window, inside the commit
  await gateway.pushRxpk([{ phyPayload: phy('lp-test') }]);
  await waitFor(async () => harness.records.length === 1 && (await harness.rejected('retransmission')) === 1, 'one record, one retransmission');
  await new Promise((resolve) => setTimeout(resolve, 1500));
  assert.equal(harness.records.length, 1);
});

test('past max frames in flight, new frames are refused as overloaded instead of queuing; room comes back after the commit', async (t) => {
  const harness = await startHarness(t, new Map(), 500, 2);
  const gateway = await harness.forwarder('aa555a0000000001');
  const { activation } = ABP;
  assert.ok(activation.mode === 'abp');
  const keys = { nwkSKey: activation.nwkSKey, appSKey: activation.appSKey };
  const uplink = (fcnt32: number): Buffer =>
    encodeDataFrame({ mtype: 'UnconfirmedDataUp', devAddr: '49be7df1', fcnt32, fport: 1, payload: Buffer.from(`reading ${fcnt32}`), ...keys });
  await gateway.pushRxpk([10, 11, 12, 13].map((fcnt) => ({ phyPayload: uplink(fcnt) })));
  await waitFor(async () => (await harness.rejected('overloaded')) === 2, 'two frames refused as overloaded');
  await waitFor(() => harness.records.length === 2, 'the two frames held are stored');
  await gateway.pushRxpk([{ phyPayload: uplink(14) }]);
  await waitFor(() => harness.records.length === 3, 'a frame after the commit is stored');
  assert.deepEqual(
    harness.records.map((record) => uplinkOf(record).uplink_message.f_cnt),
    [10, 11, 14],
  );
  assert.equal(await harness.rejected('overloaded'), 2);
});

test('a resets_f_cnt device that starts again at 0 is counted anew and marked; the same for any other device is a replay', async (t) => {
  const harness = await startHarness(t);
  const gateway = await harness.forwarder('aa555a0000000001');
  const uplink = (profile: LorawanDeviceProfile, fcnt32: number): Buffer => {
    assert.ok(profile.activation.mode === 'abp');
    const { devAddr, nwkSKey, appSKey } = profile.activation;
    return encodeDataFrame({ mtype: 'UnconfirmedDataUp', devAddr, fcnt32, fport: 1, payload: Buffer.from(`reading ${fcnt32}`), nwkSKey, appSKey });
  };
  for (const fcnt of [40, 41, 0, 1]) {
    await gateway.pushRxpk([{ phyPayload: uplink(ABP_RESETS, fcnt) }]);
    await waitFor(() => harness.records.length === [40, 41, 0, 1].indexOf(fcnt) + 1, `record for FCnt ${fcnt}`);
  }
  const values = harness.records.map(uplinkOf);
  assert.deepEqual(
    values.map((value) => [value.uplink_message.f_cnt, value.iotgw.f_cnt_gap, value.iotgw.f_cnt_reset ?? false]),
    [
      [40, 0, false],
      [41, 0, false],
      [0, 0, true],
      [1, 0, false],
    ],
  );
  assert.equal((await harness.metrics.lorawanFCntResets.get()).values[0]?.value, 1);

  await gateway.pushRxpk([{ phyPayload: uplink(ABP, 50) }]);
  await waitFor(() => harness.records.length === 5, 'the other ABP device at FCnt 50');
  await gateway.pushRxpk([{ phyPayload: uplink(ABP, 0) }]);
  await waitFor(async () => (await harness.rejected('replay')) === 1, 'FCnt 0 of a device without resets_f_cnt refused as a replay');
  assert.equal(harness.records.length, 5);
});

test('frame counters and OTAA sessions come back from the committed state after a restart', async (t) => {
  const state = new Map<string, string>();
  const first = await startHarness(t, state);
  const gateway = await first.forwarder('aa555a0000000001');
  const joinAccepts: Txpk[] = [];
  gateway.onDownlink((txpk) => {
    joinAccepts.push(txpk);
    return 'NONE';
  });
  await gateway.pushRxpk([{ phyPayload: phy('lp-large') }]); // FCnt 4
  await gateway.pushRxpk([{ phyPayload: encodeJoinRequest({ appKey: APP_KEY, joinEui: '0101010101010101', devEui: '0202020202020202', devNonce: 9 }) }]);
  await waitFor(() => first.records.length === 1 && joinAccepts.length === 1, 'one record and one join-accept');
  const accept = decodeJoinAccept(APP_KEY, Buffer.from((joinAccepts[0] as Txpk).data, 'base64'));
  assert.ok(accept.ok);
  await first.ingress.stop();

  const second = await startHarness(t, state);
  const again = await second.forwarder('aa555a0000000003');
  await again.pushRxpk([{ phyPayload: phy('lp-test') }]); // FCnt 2: a replay of the old session
  await waitFor(async () => (await second.rejected('replay')) === 1, 'the replay counted after the restart');
  // The joined device goes on with its session, without joining again.
  const keys = deriveSessionKeys(APP_KEY, accept.joinNonce, accept.netId, 9);
  const uplink = encodeDataFrame({ mtype: 'UnconfirmedDataUp', devAddr: accept.devAddr, fcnt32: 0, fport: 1, payload: Buffer.from('after restart'), ...keys });
  await again.pushRxpk([{ phyPayload: uplink }]);
  await waitFor(() => second.records.length === 1, 'the joined device stored after the restart');
  assert.equal(Buffer.from(String(uplinkOf(second.records[0]).uplink_message.frm_payload), 'base64').toString(), 'after restart');
});
