// The network's MAC layer through the LoRaWAN server: uplinks built by the repo's device-side encoder carry MAC
// commands in FOpts or on FPort 0; the downlinks the server hands to its gateway path are read back by
// lora-packet (an independent implementation: MIC, FOpts, FPort-0 decryption) and parsed with the device side
// of the codec. The wall clock and the clock's trust are injected; nothing is timed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import loraPacketModule from 'lora-packet';
import { RAW_CODEC } from '../../../src/codecs/payload-codec.ts';
import { createMetrics } from '../../../src/core/metrics.ts';
import type { Accept } from '../../../src/ingress/ingress.ts';
import { encodeDataFrame } from '../../../src/ingress/lorawan/frame-crypto.ts';
import { gpsTimeFromUnixMs } from '../../../src/ingress/lorawan/gps-time.ts';
import {
  type DownlinkMacCommand,
  encodeUplinkMacCommands,
  parseDownlinkMacCommands,
  type UplinkMacCommand,
} from '../../../src/ingress/lorawan/mac-commands.ts';
import { EU868 } from '../../../src/ingress/lorawan/region.ts';
import type { ClassADownlink } from '../../../src/ingress/lorawan-server/class-a-downlink.ts';
import { createDeviceSessions, type LorawanDeviceProfile } from '../../../src/ingress/lorawan-server/device-sessions.ts';
import { createLorawanServer, DEFAULT_MAC, type MacOptions } from '../../../src/ingress/lorawan-server/lorawan-server.ts';
import type { Reception } from '../../../src/ingress/lorawan-server/reception.ts';
import type { NewRecord } from '../../../src/record/record.ts';
import { captureLog } from '../../helpers/capture-log.ts';
import { testReception } from '../../helpers/lorawan-reception.ts';

const loraPacket = loraPacketModule as unknown as typeof loraPacketModule.default;

const DEVICE: LorawanDeviceProfile = {
  devEui: '0000000000000abc',
  name: 'lamp-17',
  codec: RAW_CODEC,
  activation: { mode: 'abp', devAddr: '26000abc', nwkSKey: Buffer.alloc(16, 0x11), appSKey: Buffer.alloc(16, 0x22) },
};
const DAY_MS = 86_400_000;

function uplink(fcnt32: number, options: { fopts?: UplinkMacCommand[]; port0?: UplinkMacCommand[]; adr?: boolean; raw?: Buffer } = {}): Buffer {
  const { activation } = DEVICE;
  assert.ok(activation.mode === 'abp');
  const onPort0 = options.port0 !== undefined;
  return encodeDataFrame({
    mtype: 'UnconfirmedDataUp',
    devAddr: activation.devAddr,
    fcnt32,
    adr: options.adr === true,
    ...(options.raw !== undefined ? { fopts: options.raw } : options.fopts === undefined ? {} : { fopts: encodeUplinkMacCommands(options.fopts) }),
    fport: onPort0 ? 0 : 2,
    payload: onPort0 ? encodeUplinkMacCommands(options.port0 ?? []) : Buffer.from(`reading ${fcnt32}`),
    nwkSKey: activation.nwkSKey,
    appSKey: activation.appSKey,
  });
}

/** SF12 at +5 dB, at a fixed wall-clock time: the MAC layer's figures below follow from these. */
function reception(overrides: Partial<Reception> = {}): Reception {
  return testReception({ datr: 'SF12BW125', rssi: -100, snr: 5, receivedAtMs: Date.UTC(2026, 11, 6, 12), ...overrides });
}

function startServer(options: { mac?: MacOptions; clockTrusted?: boolean; state?: Map<string, string>; device?: LorawanDeviceProfile } = {}) {
  const metrics = createMetrics({ processMetrics: false });
  const logs = captureLog('info');
  const state = options.state ?? new Map<string, string>();
  const records: NewRecord[] = [];
  const downlinks: ClassADownlink[] = [];
  let commits = 0;
  const accept: Accept = async (batch, writes = []) => {
    commits += 1;
    records.push(...batch);
    for (const write of writes) if (write.value !== null) state.set(write.key, write.value);
    return { ok: true, seqs: batch.map((_, index) => index) };
  };
  let wallMs = Date.UTC(2026, 11, 6, 12);
  const server = createLorawanServer(
    { region: EU868, netId: '000013', stream: 'uplink', rejectLogIntervalMs: 60_000, mac: options.mac ?? DEFAULT_MAC },
    {
      accept,
      log: logs.log,
      metrics,
      sessions: createDeviceSessions([options.device ?? DEVICE], new Map(state), { log: logs.log }),
      downlink: {
        canReach: () => true,
        send: async (downlink) => {
          downlinks.push(downlink);
          return { ok: true };
        },
      },
      wallNowMs: () => wallMs,
      clockTrusted: () => options.clockTrusted === true,
    },
  );
  const count = async (name: 'lorawanMacCommands' | 'lorawanAdr', labels: Record<string, string>) =>
    (await metrics[name].get()).values.find((value) =>
      Object.entries(labels).every(([key, expected]) => (value.labels as Record<string, unknown>)[key] === expected),
    )?.value ?? 0;
  return {
    records,
    downlinks,
    state,
    logs,
    count,
    advanceWallMs(ms: number) {
      wallMs += ms;
    },
    radio: () => server.radioStatus(),
    commits: () => commits,
    send(phyPayload: Buffer, receptions: Reception[] = [reception()]): Promise<void> {
      return server.handleFrame({ phyPayload, receptions, source: 'semtech-udp', firstSeenMono: performance.now() });
    },
  };
}

/** A downlink as the device sees it: lora-packet checks the MIC; the MAC commands come from FOpts or the decrypted FPort 0. */
function readDownlink(downlink: ClassADownlink | undefined): { fcnt: number; carrier: 'fopts' | 'port0' | 'none'; commands: readonly DownlinkMacCommand[] } {
  assert.ok(downlink !== undefined, 'a downlink was sent');
  const { activation } = DEVICE;
  assert.ok(activation.mode === 'abp');
  const packet = loraPacket.fromWire(downlink.phyPayload);
  assert.equal(loraPacket.verifyMIC(packet, activation.nwkSKey), true, 'lora-packet verifies the MIC with the NwkSKey');
  const fopts = Buffer.from(packet.FOpts ?? []);
  const port = packet.getFPort();
  const bytes = port === 0 ? loraPacket.decrypt(packet, activation.appSKey, activation.nwkSKey) : fopts;
  const parsed = parseDownlinkMacCommands(bytes);
  assert.equal(parsed.stop, null, 'every command reads');
  return { fcnt: packet.getFCnt() ?? -1, carrier: port === 0 ? 'port0' : fopts.length > 0 ? 'fopts' : 'none', commands: parsed.commands };
}

const QUIET: MacOptions = { ...DEFAULT_MAC, adr: { ...DEFAULT_MAC.adr, enabled: false } };

test('LinkCheckReq in FOpts: answered in RX1 with the margin above SF12 and the gateway count; the uplink is stored', async () => {
  const lab = startServer({ mac: QUIET });
  await lab.send(uplink(1, { fopts: [{ command: 'LinkCheckReq' }] }), [reception({ snr: 5 }), reception({ gatewayEui: 'aa555a0000000002', snr: -3 })]);
  assert.equal(lab.records.length, 1);
  const value = JSON.parse(lab.records[0]?.payload.toString() ?? '{}') as { iotgw: { mac_commands?: string[] } };
  assert.deepEqual(value.iotgw.mac_commands, ['LinkCheckReq']);
  const down = readDownlink(lab.downlinks[0]);
  // SF12 needs -20 dB: the best reception at +5 dB is 25 dB above it.
  assert.deepEqual(down, { fcnt: 0, carrier: 'fopts', commands: [{ command: 'LinkCheckAns', margin: 25, gwCnt: 2 }] });
  assert.equal(lab.commits(), 1, 'an answer leaves nothing pending: no commit beside the uplink');
  assert.equal(lab.downlinks.length, 1);
  assert.equal(await lab.count('lorawanMacCommands', { direction: 'down', command: 'LinkCheckAns', result: 'sent' }), 1);
});

test('an unconfirmed uplink without MAC commands gets no downlink', async () => {
  const lab = startServer();
  await lab.send(uplink(1));
  await lab.send(uplink(2));
  assert.equal(lab.records.length, 2);
  assert.equal(lab.downlinks.length, 0);
});

test('DeviceTimeReq: GPS time from a GPS gateway, from this clock only while it is synchronized, else not answered', async () => {
  const untrusted = startServer({ mac: QUIET, clockTrusted: false });
  await untrusted.send(uplink(1, { fopts: [{ command: 'DeviceTimeReq' }] }));
  assert.equal(untrusted.downlinks.length, 0, 'a wrong time is worse than none');
  assert.equal(await untrusted.count('lorawanMacCommands', { command: 'DeviceTimeReq', result: 'not-answered' }), 1);
  assert.ok(untrusted.logs.lines().some((line) => /asked for the time \(DeviceTimeReq\): not answered/.test(String(line.msg))));
  const gpsTime = '2026-12-06T12:00:00.500Z';
  await untrusted.send(uplink(2, { fopts: [{ command: 'DeviceTimeReq' }] }), [reception({ gatewayTime: gpsTime })]);
  assert.deepEqual(readDownlink(untrusted.downlinks[0]).commands, [{ command: 'DeviceTimeAns', ...gpsTimeFromUnixMs(Date.parse(gpsTime)) }]);

  const trusted = startServer({ mac: QUIET, clockTrusted: true });
  const receivedAtMs = Date.UTC(2026, 11, 6, 13, 0, 0, 250);
  await trusted.send(uplink(1, { fopts: [{ command: 'DeviceTimeReq' }] }), [reception({ receivedAtMs })]);
  const answer = readDownlink(trusted.downlinks[0]).commands[0];
  assert.deepEqual(answer, { command: 'DeviceTimeAns', ...gpsTimeFromUnixMs(receivedAtMs) });
  // GPS time runs 18 leap seconds ahead of UTC since 2017.
  assert.equal(answer?.command === 'DeviceTimeAns' ? answer.seconds : 0, Math.floor((receivedAtMs - Date.UTC(1980, 0, 6)) / 1000) + 18);
});

test('DevStatusReq one interval into the session; the answer on FPort 0 goes into the next record as iotgw.dev_status', async () => {
  const lab = startServer({ mac: { ...QUIET, devStatusIntervalMs: DAY_MS } });
  await lab.send(uplink(1));
  assert.equal(lab.downlinks.length, 0, 'not at the first uplink');
  lab.advanceWallMs(DAY_MS);
  await lab.send(uplink(2));
  assert.deepEqual(readDownlink(lab.downlinks[0]).commands, [{ command: 'DevStatusReq' }]);
  await lab.send(uplink(3, { port0: [{ command: 'DevStatusAns', battery: 128, margin: 7 }] }));
  assert.equal(lab.records.length, 2, 'an FPort-0 frame makes no record');
  await lab.send(uplink(4));
  const value = JSON.parse(lab.records.at(-1)?.payload.toString() ?? '{}') as { iotgw: { dev_status?: Record<string, unknown> } };
  assert.deepEqual(value.iotgw.dev_status, {
    battery: 128,
    battery_percent: 50.2,
    external_power: false,
    margin_db: 7,
    received_at: '2026-12-07T12:00:00.000Z',
  });
  assert.equal(lab.downlinks.length, 1, 'asked once per interval');
});

test('ADR: a device at SF12 with a strong link is moved to DR5 and lower power; its LinkADRAns applies it, a refusal does not', async () => {
  const lab = startServer({ mac: { ...DEFAULT_MAC, devStatusIntervalMs: 0 } });
  // +5 dB at SF12: margin 5 - (-20) - 10 = 15 dB, 5 steps: DR0 -> DR5.
  await lab.send(uplink(1, { adr: true }));
  const request = readDownlink(lab.downlinks[0]);
  assert.deepEqual(request.commands, [{ command: 'LinkADRReq', dataRate: 5, txPower: 0, chMask: 0, chMaskCntl: 6, nbTrans: 1 }]);
  assert.equal(await lab.count('lorawanAdr', { result: 'requested' }), 1);
  // The device applies it and answers; from then on it sends at SF7.
  await lab.send(uplink(2, { adr: true, fopts: [{ command: 'LinkADRAns', powerAck: true, dataRateAck: true, channelMaskAck: true }] }), [
    reception({ datr: 'SF7BW125', snr: 9 }),
  ]);
  assert.equal(await lab.count('lorawanAdr', { result: 'applied' }), 1);
  // The status page's figures: the device at DR5 now, the change DR0 -> DR5 at full power.
  const radio = lab.radio();
  assert.deepEqual([radio.byDataRate, radio.byTxPowerIndex], [{ 5: 1 }, { 0: 1 }]);
  assert.deepEqual(
    radio.recentAdrChanges.map(({ devEui, from, to }) => ({ devEui, from, to })),
    [{ devEui: DEVICE.devEui, from: { dataRate: 0, txPowerIndex: 0, nbTrans: 1 }, to: { dataRate: 5, txPowerIndex: 0, nbTrans: 1 } }],
  );
  // At DR5 with +9 dB: 9 - (-7.5) - 10 = 6.5 dB, 2 steps of power: TXPower index 2.
  const lower = readDownlink(lab.downlinks[1]);
  assert.deepEqual(lower.commands, [{ command: 'LinkADRReq', dataRate: 5, txPower: 2, chMask: 0, chMaskCntl: 6, nbTrans: 1 }]);
  await lab.send(uplink(3, { adr: true, fopts: [{ command: 'LinkADRAns', powerAck: false, dataRateAck: true, channelMaskAck: true }] }), [
    reception({ datr: 'SF7BW125', snr: 9 }),
  ]);
  assert.equal(await lab.count('lorawanAdr', { result: 'refused' }), 1);
  assert.ok(lab.logs.lines().some((line) => /refused a LinkADRReq \(TX power\)/.test(String(line.msg))));
  // The committed state keeps what the device confirmed: TX power index 0 (the refusal changed nothing).
  const saved = JSON.parse(lab.state.get(DEVICE.devEui) ?? '{}') as { session: { mac: { tx: number; nb: number } } };
  assert.equal(saved.session.mac.tx, 0);
  const uplinksByDr = await lab.count('lorawanMacCommands', { direction: 'up', command: 'LinkADRAns', result: 'handled' });
  assert.equal(uplinksByDr, 2);
});

test('ADR state survives a restart: the confirmed TX power comes back from the committed state', async () => {
  const state = new Map<string, string>();
  const mac = { ...DEFAULT_MAC, devStatusIntervalMs: 0 };
  const before = startServer({ mac, state });
  // +8.5 dB at SF7: margin 8.5 - (-7.5) - 10 = 6 dB, 2 steps of power (2 dB each in EU868): TXPower index 2.
  await before.send(uplink(1, { adr: true }), [reception({ datr: 'SF7BW125', snr: 8.5 })]);
  assert.deepEqual(readDownlink(before.downlinks[0]).commands, [{ command: 'LinkADRReq', dataRate: 5, txPower: 2, chMask: 0, chMaskCntl: 6, nbTrans: 1 }]);
  // 4 dB less power, 4 dB less SNR: a 2 dB margin is less than a step, so the link is where it should be.
  const weaker = [reception({ datr: 'SF7BW125', snr: 4.5 })];
  await before.send(uplink(2, { adr: true, fopts: [{ command: 'LinkADRAns', powerAck: true, dataRateAck: true, channelMaskAck: true }] }), weaker);
  assert.equal(before.downlinks.length, 1);
  const after = startServer({ mac, state });
  await after.send(uplink(3, { adr: true }), weaker);
  assert.equal(after.downlinks.length, 0, 'restarted at TX power index 2: nothing to ask');
  // Uplink 3's commit wrote the restarted server's state: a server that had started over at index 0 would have written 0.
  const saved = JSON.parse(state.get(DEVICE.devEui) ?? '{}') as { session: { mac: { tx: number } } };
  assert.equal(saved.session.mac.tx, 2);
});

test('an unknown MAC command is counted and logged once; the commands before it are handled and the uplink is kept', async () => {
  const lab = startServer({ mac: QUIET });
  // LinkCheckReq, then 0x80 (proprietary: its length is unknown, so nothing after it can be read).
  await lab.send(uplink(1, { raw: Buffer.from([0x02, 0x80, 0x01, 0x02]) }));
  await lab.send(uplink(2, { raw: Buffer.from([0x80]) }));
  assert.equal(lab.records.length, 2, 'both uplinks are stored');
  assert.equal(await lab.count('lorawanMacCommands', { direction: 'up', command: 'unknown', result: 'refused' }), 2);
  const warnings = lab.logs.lines().filter((line) => /MAC commands not understood from byte/.test(String(line.msg)));
  assert.equal(warnings.length, 1, 'logged once per device and interval');
  assert.match(String(warnings[0]?.msg), /from byte 1 on .*the uplink is kept/);
  assert.deepEqual(readDownlink(lab.downlinks[0]).commands, [{ command: 'LinkCheckAns', margin: 25, gwCnt: 1 }]);
});

test('more than FOpts holds goes on FPort 0, encrypted with the NwkSKey', async () => {
  const lab = startServer({ mac: { ...QUIET, devStatusIntervalMs: 1, announceChannels: true } });
  lab.advanceWallMs(1); // past the first DevStatus interval... after the session's first uplink
  await lab.send(uplink(1));
  lab.advanceWallMs(10);
  await lab.send(uplink(2, { fopts: [{ command: 'LinkCheckReq' }, { command: 'DeviceTimeReq' }] }), [reception({ gatewayTime: '2026-12-06T12:00:00Z' })]);
  const down = readDownlink(lab.downlinks.at(-1));
  assert.equal(down.carrier, 'port0');
  assert.deepEqual(
    down.commands.map((command) => command.command),
    ['LinkCheckAns', 'DeviceTimeAns', 'NewChannelReq', 'NewChannelReq', 'NewChannelReq', 'NewChannelReq', 'NewChannelReq', 'DevStatusReq'],
  );
  assert.deepEqual(down.commands[2], { command: 'NewChannelReq', chIndex: 3, frequencyHz: 867_100_000, minDr: 0, maxDr: 5 });
});

test('receive windows: asked with RXParamSetupReq/RXTimingSetupReq, used once the device confirms; a refusal is not asked again', async () => {
  const mac: MacOptions = { ...QUIET, rx: { rx1DelayS: 2, rx2DataRate: 3 }, maxDutyCycle: 7 };
  const lab = startServer({ mac });
  await lab.send(uplink(1), [reception({ timestampUs: 10_000_000 })]);
  const asked = lab.downlinks[0];
  assert.equal(asked?.timestampUs, 11_000_000, 'the request goes in the windows the device has: RX1 one second after');
  assert.deepEqual(readDownlink(asked).commands, [
    { command: 'RXParamSetupReq', rx1DrOffset: 0, rx2DataRate: 3, frequencyHz: 869_525_000 },
    { command: 'RXTimingSetupReq', delay: 2 },
    { command: 'DutyCycleReq', maxDutyCycle: 7 },
  ]);
  // The device takes them and says so; RXParamSetupAns and RXTimingSetupAns are repeated until a downlink comes, so one comes.
  await lab.send(
    uplink(2, {
      fopts: [
        { command: 'RXParamSetupAns', rx1DrOffsetAck: true, rx2DataRateAck: true, channelAck: true },
        { command: 'RXTimingSetupAns' },
        { command: 'DutyCycleAns' },
      ],
    }),
    [reception({ timestampUs: 20_000_000 })],
  );
  const confirmed = lab.downlinks[1];
  assert.equal(confirmed?.timestampUs, 22_000_000, 'RX1 two seconds after the uplink now');
  assert.deepEqual(readDownlink(confirmed).commands, [], 'an empty downlink ends the repeats');
  await lab.send(uplink(3), [reception({ timestampUs: 30_000_000 })]);
  assert.equal(lab.downlinks.length, 2, 'nothing more to ask');
  const saved = JSON.parse(lab.state.get(DEVICE.devEui) ?? '{}') as { session: { mac: { rx: number[]; dc: number } } };
  assert.deepEqual(saved.session.mac.rx, [2, 0, 3, 869_525_000]);
  assert.equal(saved.session.mac.dc, 7);

  const refusing = startServer({ mac: { ...QUIET, rx: { rx2DataRate: 3 } } });
  await refusing.send(uplink(1));
  assert.deepEqual(
    readDownlink(refusing.downlinks[0]).commands.map((command) => command.command),
    ['RXParamSetupReq'],
  );
  await refusing.send(uplink(2, { fopts: [{ command: 'RXParamSetupAns', rx1DrOffsetAck: true, rx2DataRateAck: false, channelAck: true }] }));
  await refusing.send(uplink(3));
  assert.equal(
    refusing.downlinks.filter((downlink) => readDownlink(downlink).commands.some((command) => command.command === 'RXParamSetupReq')).length,
    1,
    'not asked again',
  );
  assert.ok(refusing.logs.lines().some((line) => /refused the receive windows \(RXParamSetupReq: RX2 data rate\)/.test(String(line.msg))));
});

test('a request sent before a restart is still answered after it: the pending LinkADRReq is committed with the downlink', async () => {
  const state = new Map<string, string>();
  const mac = { ...DEFAULT_MAC, devStatusIntervalMs: 0 };
  const before = startServer({ mac, state });
  await before.send(uplink(1, { adr: true }), [reception({ datr: 'SF7BW125', snr: 8.5 })]);
  assert.deepEqual(readDownlink(before.downlinks[0]).commands, [{ command: 'LinkADRReq', dataRate: 5, txPower: 2, chMask: 0, chMaskCntl: 6, nbTrans: 1 }]);
  assert.equal(before.commits(), 2, 'the uplink, then the pending request');
  // The gateway restarts here; the device's answer comes to the new process.
  const after = startServer({ mac, state });
  await after.send(uplink(2, { adr: true, fopts: [{ command: 'LinkADRAns', powerAck: true, dataRateAck: true, channelMaskAck: true }] }), [
    reception({ datr: 'SF7BW125', snr: 4.5 }),
  ]);
  assert.equal(await after.count('lorawanAdr', { result: 'applied' }), 1, 'the answer settles the request made before the restart');
  const saved = JSON.parse(state.get(DEVICE.devEui) ?? '{}') as { session: { mac: { tx: number; p?: unknown } } };
  assert.equal(saved.session.mac.tx, 2);
  assert.equal(saved.session.mac.p, undefined, 'nothing pending any more');
});

test('an ABP device moved with its old windows (rx_windows in its entry) is answered in them, then moved to lorawan.rx_windows', async () => {
  const moved: LorawanDeviceProfile = { ...DEVICE, rxWindows: { rx1DelayS: 5, rx2DataRate: 3 } };
  const lab = startServer({ mac: QUIET, device: moved });
  await lab.send(uplink(1), [reception({ timestampUs: 10_000_000 })]);
  const first = lab.downlinks[0];
  assert.equal(first?.timestampUs, 15_000_000, 'RX1 five seconds after the uplink: where the device listens');
  assert.deepEqual(readDownlink(first).commands, [
    { command: 'RXParamSetupReq', rx1DrOffset: 0, rx2DataRate: 0, frequencyHz: 869_525_000 },
    { command: 'RXTimingSetupReq', delay: 1 },
  ]);
  await lab.send(
    uplink(2, { fopts: [{ command: 'RXParamSetupAns', rx1DrOffsetAck: true, rx2DataRateAck: true, channelAck: true }, { command: 'RXTimingSetupAns' }] }),
    [reception({ timestampUs: 20_000_000 })],
  );
  assert.equal(lab.downlinks[1]?.timestampUs, 21_000_000, "from now on the gateway's own windows");
});
