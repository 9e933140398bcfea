// The Class-A sender against the regions' payload limits (RP002-1.0.3 M per data rate): a window whose data
// rate cannot carry the frame is skipped, RX2 takes what RX1 cannot, and a frame neither can carry is not sent,
// counted and logged with the sizes and what to do. The real sender, metrics, device sessions and rejections;
// the downlink path records what a gateway would have been asked to transmit.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RAW_CODEC } from '../../../src/codecs/payload-codec.ts';
import { createMetrics } from '../../../src/core/metrics.ts';
import { EU868, type Region, regionFor } from '../../../src/ingress/lorawan/region.ts';
import { type ClassADownlink, createClassASender, type DownlinkPath, defaultRxSettings } from '../../../src/ingress/lorawan-server/class-a-downlink.ts';
import { createDeviceSessions, type LorawanDevice } from '../../../src/ingress/lorawan-server/device-sessions.ts';
import type { Reception } from '../../../src/ingress/lorawan-server/reception.ts';
import { createRejections } from '../../../src/ingress/rejections.ts';
import { captureLog } from '../../helpers/capture-log.ts';

const DEV_EUI = '0004a30b001c0530';
const GATEWAY = 'aa555a0000000001';
const UPLINK_TMST = 4_000_000;

function harness(region: Region, refuse: (downlink: ClassADownlink) => string | null = () => null, nowMs: () => number = Date.now) {
  const metrics = createMetrics({ processMetrics: false });
  const captured = captureLog('warn');
  const sent: ClassADownlink[] = [];
  const path: DownlinkPath = {
    canReach: (gatewayEui) => gatewayEui === GATEWAY,
    send: async (downlink) => {
      const refusal = refuse(downlink);
      if (refusal !== null) return { ok: false, reason: refusal };
      sent.push(downlink);
      return { ok: true };
    },
  };
  const rejections = createRejections({ what: 'LoRaWAN frame', intervalMs: 60_000 }, { log: captured.log, metrics });
  const sender = createClassASender({
    region,
    downlink: path,
    log: captured.log,
    metrics,
    reject: (source, reason, device, message) => rejections.reject(reason, message, { source, logKey: `${device}|${reason}` }),
    nowMs,
  });
  const sessions = createDeviceSessions(
    [{ devEui: DEV_EUI, name: 'meter-1', codec: RAW_CODEC, activation: { mode: 'otaa', joinEui: '0101010101010101', appKey: Buffer.alloc(16, 1) } }],
    new Map(),
    { log: captured.log },
  );
  const device = sessions.byDevEui(DEV_EUI) as LorawanDevice;
  const counted = async (labels: Partial<Record<'kind' | 'window' | 'result', string>>): Promise<number> =>
    (await metrics.lorawanDownlinks.get()).values.find((value) =>
      (['kind', 'window', 'result'] as const).every((key) => labels[key] === undefined || value.labels[key] === labels[key]),
    )?.value ?? 0;
  const rejected = async (reason: string): Promise<number> =>
    (await metrics.ingressRejected.get()).values.find((value) => value.labels.reason === reason)?.value ?? 0;
  return { sender, device, sent, captured, counted, rejected, rx: defaultRxSettings(region) };
}

function reception(frequencyHz: number, datr: string): Reception {
  return {
    gatewayEui: GATEWAY,
    timestampUs: UPLINK_TMST,
    gatewayTime: null,
    frequencyHz,
    datr,
    codingRate: '4/5',
    rssi: -100,
    signalRssi: null,
    snr: -5,
    channel: 0,
    rfChain: 0,
    receivedAtMs: Date.now(),
  };
}

/** A PHYPayload whose MACPayload (without MHDR and MIC) is `macBytes` long. */
const frameWithMac = (macBytes: number): Buffer => Buffer.alloc(macBytes + 5, 0x60);

function as923(): Region {
  const region = regionFor('AS923-1');
  assert.ok(region !== null);
  return region;
}

test('an ACK fits RX1 and goes there, at the uplink frequency and data rate (EU868)', async () => {
  const h = harness(EU868);
  assert.equal(await h.sender.send('ack', h.device, [reception(868_300_000, 'SF7BW125')], frameWithMac(7), h.rx, 'semtech-udp'), true);
  assert.equal(h.sent.length, 1);
  assert.deepEqual(
    { tmst: h.sent[0]?.timestampUs, freq: h.sent[0]?.frequencyHz, datr: h.sent[0]?.datr },
    { tmst: UPLINK_TMST + 1_000_000, freq: 868_300_000, datr: 'SF7BW125' },
  );
  assert.equal(await h.counted({ kind: 'ack', window: 'rx1', result: 'sent' }), 1);
});

test('a gateway refusing RX1 still makes the sender try RX2', async () => {
  const h = harness(EU868, (downlink) => (downlink.timestampUs === UPLINK_TMST + 1_000_000 ? 'TOO_LATE' : null));
  assert.equal(await h.sender.send('ack', h.device, [reception(868_100_000, 'SF9BW125')], frameWithMac(7), h.rx, 'semtech-udp'), true);
  assert.deepEqual(
    h.sent.map((downlink) => [downlink.timestampUs, downlink.frequencyHz, downlink.datr]),
    [[UPLINK_TMST + 2_000_000, 869_525_000, 'SF12BW125']],
  );
  assert.equal(await h.counted({ window: 'rx1', result: 'failed' }), 1);
});

test('AS923: a frame too large for RX1 at DR0 (M 59) but not for RX2 at DR2 (M 123) goes in RX2', async () => {
  const h = harness(as923());
  assert.equal(await h.sender.send('command', h.device, [reception(923_200_000, 'SF12BW125')], frameWithMac(100), h.rx, 'semtech-udp'), true);
  assert.deepEqual(
    h.sent.map((downlink) => [downlink.timestampUs, downlink.frequencyHz, downlink.datr]),
    [[UPLINK_TMST + 2_000_000, 923_200_000, 'SF10BW125']],
    'only RX2 was asked for',
  );
  assert.equal(await h.counted({ kind: 'command', window: 'rx1', result: 'too-large' }), 1);
  assert.equal(await h.counted({ kind: 'command', window: 'rx2', result: 'sent' }), 1);
  assert.equal(await h.rejected('downlink-too-large'), 0);
});

test('a frame neither window can carry is not sent: counted and logged with the sizes and what to do', async () => {
  const h = harness(as923());
  assert.equal(await h.sender.send('command', h.device, [reception(923_200_000, 'SF12BW125')], frameWithMac(124), h.rx, 'semtech-udp'), false);
  assert.equal(h.sent.length, 0, 'nothing went to the gateway');
  assert.equal(await h.counted({ kind: 'command', window: 'rx1', result: 'too-large' }), 1);
  assert.equal(await h.counted({ kind: 'command', window: 'rx2', result: 'too-large' }), 1);
  assert.equal(await h.rejected('downlink-too-large'), 1);
  const line = h.captured.lines().find((entry) => entry.reason === 'downlink-too-large');
  assert.ok(line !== undefined, 'logged');
  const message = String(line.msg);
  assert.match(message, /command for 0004a30b001c0530 not sent: its MACPayload is 124 bytes/);
  assert.match(message, /RX1 at DR0 \(SF12BW125\) carries 59, RX2 at DR2 \(SF10BW125\) carries 123/);
  assert.match(message, /send a shorter command/);
});

test('the limit is the MACPayload: exactly M fits', async () => {
  const h = harness(EU868);
  assert.equal(await h.sender.send('command', h.device, [reception(868_100_000, 'SF12BW125')], frameWithMac(59), h.rx, 'semtech-udp'), true);
  assert.equal(h.sent[0]?.datr, 'SF12BW125', 'RX1 at DR0 carries 59');
  const over = harness(EU868);
  assert.equal(await over.sender.send('command', over.device, [reception(868_100_000, 'SF12BW125')], frameWithMac(60), over.rx, 'semtech-udp'), false);
});

test('US915: RX1 on downlink channel (uplink channel % 8) at the RX1 rate; an uplink off the channel grid gets RX2 only', async () => {
  const us = regionFor('US915');
  assert.ok(us !== null);
  const h = harness(us);
  assert.equal(await h.sender.send('ack', h.device, [reception(904_600_000, 'SF8BW500')], frameWithMac(7), h.rx, 'semtech-udp'), true);
  assert.deepEqual([h.sent[0]?.frequencyHz, h.sent[0]?.datr, h.sent[0]?.powerDbm], [923_900_000, 'SF7BW500', us.defaultTxPowerDbm]);
  const off = harness(us);
  assert.equal(await off.sender.send('ack', off.device, [reception(902_400_000, 'SF10BW125')], frameWithMac(7), off.rx, 'semtech-udp'), true);
  assert.deepEqual(
    off.sent.map((downlink) => [downlink.timestampUs, downlink.frequencyHz, downlink.datr]),
    [[UPLINK_TMST + 2_000_000, 923_300_000, 'SF12BW500']],
  );
});

test('Class C goes on RX2 at once, and not at all when RX2 cannot carry it', async () => {
  const h = harness(EU868);
  assert.equal(await h.sender.sendNow('command', h.device, [reception(868_100_000, 'SF7BW125')], frameWithMac(20), h.rx, 'semtech-udp'), true);
  assert.deepEqual([h.sent[0]?.timestampUs, h.sent[0]?.frequencyHz, h.sent[0]?.datr], [null, 869_525_000, 'SF12BW125']);
  assert.equal(await h.sender.sendNow('command', h.device, [reception(868_100_000, 'SF7BW125')], frameWithMac(60), h.rx, 'semtech-udp'), false);
  assert.equal(h.sent.length, 1);
  assert.equal(await h.counted({ window: 'class-c', result: 'too-large' }), 1);
  assert.equal(await h.rejected('downlink-too-large'), 1);
});

test('EU868 duty cycle: RX1 stops when its 1 % band is used up within the hour, RX2 (10 %) goes on, then nothing; the hour frees it', async () => {
  let clockMs = Date.UTC(2026, 11, 6, 12);
  const h = harness(
    EU868,
    () => null,
    () => clockMs,
  );
  // A 56-byte PHYPayload at SF12BW125 is 2,465.792 ms on air (downlink, no CRC): the 1 % band (868.1 MHz)
  // allows 36 s an hour, RX2's 10 % band (869.525 MHz) 360 s.
  const frame = frameWithMac(51);
  const via = [reception(868_100_000, 'SF12BW125')];
  const windows: string[] = [];
  for (let index = 0; index < 170; index += 1) {
    const sent = await h.sender.send('command', h.device, via, frame, h.rx, 'semtech-udp');
    windows.push(sent ? (h.sent.at(-1)?.frequencyHz === 868_100_000 ? 'rx1' : 'rx2') : 'none');
    clockMs += 1_000;
  }
  const rx1 = windows.filter((window) => window === 'rx1').length;
  const rx2 = windows.filter((window) => window === 'rx2').length;
  assert.equal(rx1, 14, 'floor(36,000 / 2,465.792) frames in RX1');
  assert.equal(windows.lastIndexOf('rx1'), 13, 'RX1 first, until its band is used up');
  assert.equal(rx2, 145, 'floor(360,000 / 2,465.792) frames in RX2 after that');
  assert.equal(
    windows.slice(159).every((window) => window === 'none'),
    true,
    'then neither window has airtime left',
  );
  assert.equal(await h.rejected('duty-cycle'), 11);
  assert.match(String(h.captured.lines().find((line) => /duty cycle is used up/.test(String(line.msg)))?.msg), /RX1: .*RX2: /);
  assert.equal(await h.counted({ window: 'rx1', result: 'duty-cycle' }), 156);
  // An hour after the first frame, RX1 has airtime again.
  clockMs += 3_600_000;
  assert.equal(await h.sender.send('command', h.device, via, frame, h.rx, 'semtech-udp'), true);
  assert.equal(h.sent.at(-1)?.frequencyHz, 868_100_000);
});
