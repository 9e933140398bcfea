// Frame-counter recovery for ABP devices the gateway has no counter for: the LoRaWAN server driven directly,
// with frames built by the repo's own device-side encoder (encodeDataFrame) and one checked by lora-packet,
// an independent implementation. The rate limit's clock and the MIC checks are observed through the
// injected clock and the metrics, never timed.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import loraPacketModule from 'lora-packet';
import { RAW_CODEC } from '../../../src/codecs/payload-codec.ts';
import { loadConfig } from '../../../src/config/load.ts';
import { createMetrics } from '../../../src/core/metrics.ts';
import type { Accept } from '../../../src/ingress/ingress.ts';
import { encodeDataFrame } from '../../../src/ingress/lorawan/frame-crypto.ts';
import { EU868 } from '../../../src/ingress/lorawan/region.ts';
import { DEFAULT_FCNT_RECOVERY, type FCntRecoveryOptions, searchRange } from '../../../src/ingress/lorawan-server/counter-recovery.ts';
import { createDeviceSessions, type LorawanDeviceProfile } from '../../../src/ingress/lorawan-server/device-sessions.ts';
import { lorawanNetworkOptionsFromConfig } from '../../../src/ingress/lorawan-server/lorawan-config.ts';
import { createLorawanServer } from '../../../src/ingress/lorawan-server/lorawan-server.ts';
import type { NewRecord } from '../../../src/record/record.ts';
import { captureLog } from '../../helpers/capture-log.ts';
import { tempDir } from '../../helpers/temp-dir.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { testReception } from '../../helpers/lorawan-reception.ts';

// lora-packet is CommonJS with module.exports = its functions; its types describe them as `default`.
const loraPacket = loraPacketModule as unknown as typeof loraPacketModule.default;

function abpDevice(devEui: string, devAddr: string, fCntUpHint?: number): LorawanDeviceProfile {
  return {
    devEui,
    name: `meter-${devEui.slice(-2)}`,
    codec: RAW_CODEC,
    ...(fCntUpHint === undefined ? {} : { fCntUpHint }),
    activation: {
      mode: 'abp',
      devAddr,
      nwkSKey: Buffer.from(`2b7e151628aed2a6abf7158809cf${devEui.slice(-4)}`, 'hex'),
      appSKey: Buffer.from(`000102030405060708090a0b0c0d${devEui.slice(-4)}`, 'hex'),
    },
  };
}

/** An uplink as the device puts it on air: FCnt's low 16 bits on air, all 32 in the MIC and keystream. */
function uplink(device: LorawanDeviceProfile, fcnt32: number, text = `reading ${fcnt32}`): Buffer {
  const { activation } = device;
  assert.ok(activation.mode === 'abp');
  return encodeDataFrame({
    mtype: 'UnconfirmedDataUp',
    devAddr: activation.devAddr,
    fcnt32,
    fport: 2,
    payload: Buffer.from(text),
    nwkSKey: activation.nwkSKey,
    appSKey: activation.appSKey,
  });
}

function startServer(profiles: readonly LorawanDeviceProfile[], state = new Map<string, string>(), fCntRecovery: FCntRecoveryOptions = DEFAULT_FCNT_RECOVERY) {
  const metrics = createMetrics({ processMetrics: false });
  const captured = captureLog('info');
  const records: NewRecord[] = [];
  const rejections: { reason: string; detail: string }[] = [];
  const accept: Accept = async (batch, writes = []) => {
    records.push(...batch);
    for (const write of writes) if (write.value !== null) state.set(write.key, write.value);
    return { ok: true, seqs: batch.map((_, index) => index) };
  };
  let clockMs = 1_000_000;
  const server = createLorawanServer(
    { region: EU868, netId: '000013', stream: 'uplink', rejectLogIntervalMs: 60_000, fCntRecovery },
    {
      accept,
      log: captured.log,
      metrics,
      sessions: createDeviceSessions(profiles, new Map(state), { log: captured.log }),
      downlink: null,
      onReject: (_source, reason, detail) => rejections.push({ reason, detail }),
      nowMs: () => clockMs,
    },
  );
  const counter = async (name: 'lorawanFCntRecoveries' | 'lorawanFCntRecoveryMicChecks', result?: string) =>
    (await metrics[name].get()).values.find((value) => result === undefined || value.labels.result === result)?.value ?? 0;
  return {
    records,
    rejections,
    state,
    logs: captured,
    advanceMs(ms: number) {
      clockMs += ms;
    },
    send(phyPayload: Buffer): Promise<void> {
      const reception = testReception({ timestampUs: 1000 });
      return server.handleFrame({ phyPayload, receptions: [reception], source: 'semtech-udp', firstSeenMono: performance.now() });
    },
    micChecks: () => counter('lorawanFCntRecoveryMicChecks'),
    recoveries: (result: string) => counter('lorawanFCntRecoveries', result),
    storedFCnt(devEui: string): number | null {
      return (JSON.parse(state.get(devEui) ?? 'null') as { session: { f_cnt_up_next: number | null } } | null)?.session.f_cnt_up_next ?? null;
    },
  };
}

function uplinkOf(record: NewRecord | undefined): { uplink_message: { f_cnt: number; frm_payload: string } } {
  assert.ok(record !== undefined, 'a record was stored');
  return JSON.parse(Buffer.from(record.payload).toString('utf8'));
}

test('the search tries the upper 16 bits lowest first: from 1, or from the hint, bounded, never 0 and never past 0xFFFF', () => {
  assert.deepEqual(searchRange(undefined, 64), { first: 1, last: 64 });
  assert.deepEqual(searchRange(3_000_000, 64), { first: 45, last: 108 }, 'the hint 3,000,000 has upper bits 45');
  assert.deepEqual(searchRange(1000, 4), { first: 1, last: 4 }, 'a hint in the first 65,536: epoch 0 is the normal try');
  assert.deepEqual(searchRange(0xffff_fff0, 64), { first: 0xffff, last: 0xffff });
  assert.equal(searchRange(undefined, 0), null, '0 turns the search off');
});

test('an ABP device at counter 70,000 with no stored counter: recovered, stored and logged; its next frame passes, a replay of the first does not', async () => {
  const device = abpDevice('0004a30b00000001', '26011001');
  const h = startServer([device]);
  await h.send(uplink(device, 70_000, 'first'));
  assert.equal(h.records.length, 1, 'the first frame is stored');
  const first = uplinkOf(h.records[0]).uplink_message;
  assert.equal(first.f_cnt, 70_000, 'with its full counter');
  assert.equal(Buffer.from(first.frm_payload, 'base64').toString(), 'first', 'decrypted with the full counter');
  assert.equal(h.storedFCnt(device.devEui), 70_001, 'the counter is committed with the record');
  assert.equal(await h.micChecks(), 1, 'upper bits 1 verified at the first try');
  assert.equal(await h.recoveries('recovered'), 1);
  await waitFor(
    () => h.logs.messages().some((line) => line.includes('no stored frame counter; recovered its counter 70,000 (upper 16 bits 1)')),
    'the log line',
  );
  const logged = h.logs.lines().filter((line) => String(line.msg).includes('recovered its counter'));
  assert.equal(logged.length, 1, 'one line');
  assert.match(String(logged[0]?.msg), /after 1 try; frames below it are now refused as replays/);

  await h.send(uplink(device, 70_001, 'second'));
  assert.equal(h.records.length, 2, 'the next frame is stored');
  assert.equal(uplinkOf(h.records[1]).uplink_message.f_cnt, 70_001);
  await h.send(uplink(device, 70_000, 'first'));
  assert.equal(h.records.length, 2, 'the replay stored nothing');
  assert.deepEqual(
    h.rejections.map((rejection) => rejection.reason),
    ['replay'],
  );
  assert.equal(await h.micChecks(), 1, 'a device with a counter is not searched again');
  assert.equal(await h.recoveries('recovered'), 1);
});

test('a device at 3,000,000 with f_cnt_up_hint is recovered from the hint, and a first frame at or below the hint is a replay', async () => {
  const device = abpDevice('0004a30b00000002', '26011002', 2_999_990);
  const h = startServer([device]);
  await h.send(uplink(device, 2_999_000, 'recorded long ago'));
  assert.equal(h.records.length, 0, 'an old frame below the hint is not stored');
  assert.equal(h.rejections[0]?.reason, 'replay');
  assert.match(h.rejections[0]?.detail ?? '', /sent 2,999,000, at or below its f_cnt_up_hint 2,999,990.*lower or remove f_cnt_up_hint/);
  assert.equal(h.storedFCnt(device.devEui), null, 'nothing was committed');

  h.advanceMs(DEFAULT_FCNT_RECOVERY.intervalMs);
  await h.send(uplink(device, 3_000_000));
  assert.equal(h.records.length, 1);
  assert.equal(uplinkOf(h.records[0]).uplink_message.f_cnt, 3_000_000);
  assert.equal(await h.micChecks(), 2, 'one try for each frame: upper bits 45 both times');
  await h.send(uplink(device, 3_000_001));
  await h.send(uplink(device, 3_000_000));
  assert.deepEqual(
    h.records.map((record) => uplinkOf(record).uplink_message.f_cnt),
    [3_000_000, 3_000_001],
  );
  assert.deepEqual(
    h.rejections.map((rejection) => rejection.reason),
    ['replay', 'replay'],
  );
});

test('beyond the searched range: a mic-mismatch that says what was searched and which key to set; the hint then recovers it', async () => {
  const plain = abpDevice('0004a30b00000003', '26011003');
  const h = startServer([plain]);
  await h.send(uplink(plain, 10_000_000));
  assert.equal(h.records.length, 0);
  assert.equal(h.rejections[0]?.reason, 'mic-mismatch');
  assert.match(
    h.rejections[0]?.detail ?? '',
    /wrong NwkSKey in the config, or a forged frame; device 0004a30b00000003 has no stored frame counter, and its counter may be above the range searched \(upper 16 bits 1\.\.64, counters 65,536\.\.4,259,839\): set f_cnt_up_hint in its lorawan\.devices entry/,
  );
  assert.equal(await h.micChecks(), DEFAULT_FCNT_RECOVERY.maxTries, 'the search stopped at its bound');
  assert.equal(await h.recoveries('not-found'), 1);

  // The operator sets the hint and restarts: the device is searched from its upper bits (152).
  const hinted = { ...plain, fCntUpHint: 9_990_000 };
  const restarted = startServer([hinted], h.state);
  await restarted.send(uplink(hinted, 10_000_001));
  assert.equal(uplinkOf(restarted.records[0]).uplink_message.f_cnt, 10_000_001);
  assert.equal(await restarted.micChecks(), 1);
});

test('garbage for a known DevAddr: one search per device per interval, one MIC check per frame otherwise', async () => {
  const device = abpDevice('0004a30b00000004', '26011004');
  const h = startServer([device]);
  const forged = (fcnt16: number) => {
    const frame = uplink(device, fcnt16);
    frame.writeUInt32LE((0xdeadbeef ^ fcnt16) >>> 0, frame.length - 4);
    return frame;
  };
  for (let fcnt16 = 0; fcnt16 < 200; fcnt16++) await h.send(forged(fcnt16));
  assert.equal(await h.micChecks(), DEFAULT_FCNT_RECOVERY.maxTries, 'one search for 200 forged frames');
  assert.equal(await h.recoveries('not-found'), 1);
  assert.equal(await h.recoveries('skipped'), 199);
  assert.equal(h.rejections.length, 200);
  assert.ok(
    h.rejections.every((rejection) => rejection.reason === 'mic-mismatch'),
    'all refused as mic-mismatch',
  );
  assert.match(
    h.rejections[1]?.detail ?? '',
    /searched for within lorawan\.f_cnt_recovery_interval_s \(300 s\), so this frame was not: a frame in 300 s will be/,
  );

  h.advanceMs(DEFAULT_FCNT_RECOVERY.intervalMs - 1);
  await h.send(forged(500));
  assert.equal(await h.micChecks(), DEFAULT_FCNT_RECOVERY.maxTries, 'still within the interval');
  h.advanceMs(1);
  await h.send(forged(501));
  assert.equal(await h.micChecks(), 2 * DEFAULT_FCNT_RECOVERY.maxTries, 'the next interval allows one more search');

  h.advanceMs(DEFAULT_FCNT_RECOVERY.intervalMs);
  await h.send(uplink(device, 200_000));
  assert.equal(uplinkOf(h.records[0]).uplink_message.f_cnt, 200_000, 'the real device is recovered in a later interval');
});

test('a hinted device is recovered even while forged frames use up its search: its own upper bits are tried on every frame', async () => {
  const device = abpDevice('0004a30b00000006', '26011006', 3_000_000);
  const h = startServer([device]);
  const forged = (fcnt16: number) => {
    const frame = uplink(device, 3_000_000 + fcnt16);
    frame.writeUInt32LE((0xfeedface ^ fcnt16) >>> 0, frame.length - 4);
    return frame;
  };
  for (let fcnt16 = 0; fcnt16 < 50; fcnt16++) await h.send(forged(fcnt16));
  assert.equal(await h.recoveries('skipped'), 49, 'the search itself ran once');
  // Same interval, search used up by the forger: the real frame is still recovered from the hint's upper bits.
  await h.send(uplink(device, 3_000_100, 'real'));
  assert.equal(h.records.length, 1);
  assert.equal(uplinkOf(h.records[0]).uplink_message.f_cnt, 3_000_100);
});

test('a session with a stored counter, or an OTAA session, is never searched', async () => {
  const abp = abpDevice('0004a30b00000005', '26011005');
  const first = startServer([abp]);
  await first.send(uplink(abp, 4));
  assert.equal(first.storedFCnt(abp.devEui), 5);

  const otaa: LorawanDeviceProfile = {
    devEui: '70b3d57ed0000006',
    name: 'lamp-6',
    codec: RAW_CODEC,
    activation: { mode: 'otaa', joinEui: '70b3d57ed0000000', appKey: Buffer.alloc(16, 6) },
  };
  const keys = { nwkSKey: Buffer.alloc(16, 0x16), appSKey: Buffer.alloc(16, 0x26) };
  // An OTAA session restored from state before its first uplink (no counter yet).
  const otaaState = {
    v: 1,
    session: {
      dev_addr: '26011006',
      nwk_s_key: keys.nwkSKey.toString('hex'),
      app_s_key: keys.appSKey.toString('hex'),
      id: 'otaa-1-1',
      f_cnt_up_next: null,
      f_cnt_down: 0,
    },
    dev_nonces: [1],
    join_nonce: 1,
  };
  const state = new Map([...first.state, [otaa.devEui, JSON.stringify(otaaState)]]);
  const h = startServer([abp, otaa], state);
  await h.send(uplink(abp, 70_005));
  await h.send(encodeDataFrame({ mtype: 'UnconfirmedDataUp', devAddr: '26011006', fcnt32: 70_000, fport: 2, payload: Buffer.from('x'), ...keys }));
  assert.deepEqual(
    h.rejections.map((rejection) => rejection.reason),
    ['mic-mismatch', 'mic-mismatch'],
  );
  assert.ok(
    h.rejections.every((rejection) => !rejection.detail.includes('no stored frame counter')),
    'no search note',
  );
  assert.equal(await h.micChecks(), 0, 'no search ran');
  assert.equal(h.storedFCnt(abp.devEui), 5, 'the stored counter did not move');
  assert.equal(h.records.length, 0);
});

test('lora-packet, an independent implementation, agrees on the MIC of a frame at 3,000,000 and on the counter the server recovers', async () => {
  const device = abpDevice('0004a30b00000007', '26011007');
  assert.ok(device.activation.mode === 'abp');
  const { nwkSKey, appSKey } = device.activation;
  const frame = uplink(device, 3_000_000, 'cross-checked');
  const packet = loraPacket.fromWire(frame);
  assert.equal(packet.getFCnt(), 3_000_000 & 0xffff, 'only the low 16 bits are on air');
  const upperBits = (fcnt: number) => {
    const bytes = Buffer.alloc(2);
    bytes.writeUInt16LE(fcnt >>> 16); // lora-packet takes them in wire (little-endian) order
    return bytes;
  };
  assert.equal(loraPacket.verifyMIC(packet, nwkSKey, undefined, upperBits(3_000_000)), true, 'the MIC covers the full counter');
  assert.equal(loraPacket.verifyMIC(packet, nwkSKey), false, 'and fails with upper bits 0, as the server first reads it');
  assert.equal(loraPacket.decrypt(packet, appSKey, nwkSKey, upperBits(3_000_000)).toString(), 'cross-checked');

  const h = startServer([device]);
  await h.send(frame);
  assert.equal(uplinkOf(h.records[0]).uplink_message.f_cnt, 3_000_000, 'the server recovered the counter lora-packet verified');
});

test('the search bounds and f_cnt_up_hint come from the config; a hint on an OTAA device is refused', (t) => {
  const path = join(tempDir(t), 'iotgw.yaml');
  const abp =
    '    - { dev_eui: 0004a30b00000008, dev_addr: "26011008", nwk_s_key: 2b7e151628aed2a6abf7158809cf4f3c, app_s_key: 000102030405060708090a0b0c0d0e0f';
  writeFileSync(path, `lorawan:\n  f_cnt_recovery_max_tries: 16\n  f_cnt_recovery_interval_s: 30\n  devices:\n${abp}, f_cnt_up_hint: 3000000 }\n`);
  const options = lorawanNetworkOptionsFromConfig(loadConfig({ path, env: {} }), () => RAW_CODEC);
  assert.deepEqual(options.fCntRecovery, { maxTries: 16, intervalMs: 30_000 });
  assert.equal(options.devices[0]?.fCntUpHint, 3_000_000);
  const defaults = lorawanNetworkOptionsFromConfig(loadConfig({ env: {} }), () => RAW_CODEC);
  assert.deepEqual(defaults.fCntRecovery, DEFAULT_FCNT_RECOVERY, 'the config defaults are the module defaults');

  writeFileSync(
    path,
    'lorawan:\n  devices:\n    - { dev_eui: 70b3d57ed0000009, join_eui: 70b3d57ed0000000, app_key: 98929b92c49edba9676d646d3b612456, f_cnt_up_hint: 5 }\n',
  );
  assert.throws(() => loadConfig({ path, env: {} }), /lorawan\.devices\.0\.f_cnt_up_hint: f_cnt_up_hint is for ABP devices/);
});
