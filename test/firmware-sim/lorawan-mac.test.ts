// The device side of the MAC layer (firmware-sim/firmware/lorawan-mac.ts) with byte vectors: the MAC commands of a
// downlink in, the answers of the next uplink out, hex on both sides (LoRaWAN 1.0.4 §5, values per RP002-1.0.3 and
// LoRaMac-node's region checks). LinkADRReq applied, and refused for a data rate the region lacks, a channel mask
// that turns every channel off or names a channel the device does not have, a TX power out of range (nothing
// changes then); the other commands, answers repeated until a downlink, an unknown CID, the ADR_ACK backoff; and a
// downlink built by lora-packet read by the simulated device, whose answer lora-packet reads back.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import loraPacketModule from 'lora-packet';
import { ADR_ACK_DELAY, ADR_ACK_LIMIT, createDeviceMac, type DeviceMac, type DownlinkContext } from '../../firmware-sim/firmware/lorawan-mac.ts';
import { createSimLorawanDevice, deriveIdentity } from '../../firmware-sim/transports/lorawan-device.ts';
import { carriedMacCommands } from '../../src/ingress/lorawan/mac-command-rules.ts';
import { encodeUplinkMacCommands } from '../../src/ingress/lorawan/mac-commands.ts';
import { EU868, type Region, regionFor, type UplinkChannel } from '../../src/ingress/lorawan/region.ts';

const loraPacket = loraPacketModule as unknown as typeof loraPacketModule.default;

const US915 = regionFor('US915') as Region;
const AS923 = regionFor('AS923-1') as Region;
const QUIET: DownlinkContext = { snrDb: 0, battery: 255 };

/** A device of `region` on `channels` (default: the region's default channels, as an OTAA device before its CFList). */
function device(region: Region, options: { channels?: readonly UplinkChannel[]; dataRate?: number; adr?: boolean } = {}): DeviceMac {
  return createDeviceMac({
    region,
    channels: options.channels ?? region.defaultUplinkChannels,
    dataRate: options.dataRate ?? 0,
    rx: { rx1DelayS: 1, rx1DrOffset: 0, rx2DataRate: region.rx2DataRate, rx2FrequencyHz: region.rx2FrequencyHz },
    adr: options.adr ?? true,
  });
}

/** The downlink's MAC commands (hex) in; the next uplink's MAC commands (hex) out. */
function exchange(mac: DeviceMac, downlinkHex: string, context: DownlinkContext = QUIET): string {
  mac.receiveDownlink(Buffer.from(downlinkHex, 'hex'), context);
  return encodeUplinkMacCommands(mac.nextUplink().commands).toString('hex');
}

function adrOf(mac: DeviceMac): { dataRate: number; txPowerIndex: number; nbTrans: number; enabled: readonly number[] } {
  const { dataRate, txPowerIndex, nbTrans, enabled } = mac.settings();
  return { dataRate, txPowerIndex, nbTrans, enabled };
}

const STARTED = { dataRate: 0, txPowerIndex: 0, nbTrans: 1, enabled: [0, 1, 2] };

test('LinkADRReq (EU868): DR5, TXPower 2, channels 0-2, NbTrans 1 is applied and answered with every bit set', () => {
  const mac = device(EU868);
  // 03 | DataRate 5, TXPower 2 | ChMask 0x0007 | ChMaskCntl 0, NbTrans 1  ->  03 | PowerACK, DataRateACK, ChannelMaskACK
  assert.equal(exchange(mac, '0352070001'), '0307');
  assert.deepEqual(adrOf(mac), { dataRate: 5, txPowerIndex: 2, nbTrans: 1, enabled: [0, 1, 2] });
  assert.equal(mac.txPowerDbm(), 12, 'MaxEIRP 16 dBm - 2 x 2 dB');
  assert.equal(exchange(mac, ''), '', 'answered once');
});

test('LinkADRReq refusals (EU868): each clears its bit and changes nothing', () => {
  const cases = [
    // DR12 is RFU in EU868: DataRateACK clear.
    { why: 'a data rate the region lacks', request: '03c2070001', answer: '0305' },
    // TXPower 8: EU868 has 0..7.
    { why: 'a TX power out of range', request: '0358070001', answer: '0303' },
    // ChMask 0 with ChMaskCntl 0: no channel left, and none for the data rate either.
    { why: 'a channel mask that turns every channel off', request: '0352000001', answer: '0304' },
    // Channels 3..7 are not defined on a device with only the three default channels.
    { why: 'a channel mask naming channels the device does not have', request: '0352ff0001', answer: '0306' },
    // ChMaskCntl 3 is RFU in EU868.
    { why: 'an RFU ChMaskCntl', request: '0352070031', answer: '0306' },
  ];
  for (const { why, request, answer } of cases) {
    const mac = device(EU868);
    assert.equal(exchange(mac, request), answer, why);
    assert.deepEqual(adrOf(mac), STARTED, `${why}: all or nothing`);
  }
});

test('LinkADRReq: DataRate and TXPower 15 keep the current values; NbTrans 0 means 1; with ADR off only the mask applies', () => {
  const mac = device(EU868, { channels: EU868.uplinkChannels, dataRate: 3 });
  assert.equal(exchange(mac, '03ff070003'), '0307');
  assert.deepEqual(adrOf(mac), { dataRate: 3, txPowerIndex: 0, nbTrans: 3, enabled: [0, 1, 2] });
  assert.equal(exchange(mac, '0351ff0000'), '0307');
  assert.deepEqual(adrOf(mac), { dataRate: 5, txPowerIndex: 1, nbTrans: 1, enabled: [0, 1, 2, 3, 4, 5, 6, 7] });
  // ChMaskCntl 6: every defined channel on, ChMask ignored.
  assert.equal(exchange(mac, '0351010061'), '0307');
  assert.deepEqual(adrOf(mac).enabled, [0, 1, 2, 3, 4, 5, 6, 7]);

  const fixed = device(EU868, { adr: false, dataRate: 2 });
  assert.equal(exchange(fixed, '0353030003'), '0307');
  assert.deepEqual(adrOf(fixed), { dataRate: 2, txPowerIndex: 0, nbTrans: 1, enabled: [0, 1] });
  assert.equal(fixed.nextUplink().adr, false, 'and the ADR bit stays clear');
});

test('a LinkADRReq block is applied as one (EU868: the last mask; US915: the masks build on each other), one answer per request', () => {
  const eu = device(EU868);
  assert.equal(exchange(eu, '0352010001' + '0352060001'), '0307' + '0307');
  assert.deepEqual(adrOf(eu).enabled, [1, 2]);

  // US915 sub-band 2: all 125 kHz channels off with channel 65 on, then channels 8-15 on; DR3, TXPower 0.
  const us = device(US915, { channels: US915.defaultUplinkChannels });
  assert.deepEqual(adrOf(us).enabled, [8, 9, 10, 11, 12, 13, 14, 15, 65]);
  assert.equal(exchange(us, '0330020071' + '033000ff01'), '0307' + '0307');
  assert.deepEqual(adrOf(us), { dataRate: 3, txPowerIndex: 0, nbTrans: 1, enabled: [8, 9, 10, 11, 12, 13, 14, 15, 65] });
  // Sub-band 3 by ChMaskCntl 5 (8 LSBs = sub-bands): channels 16-23 and 66.
  assert.equal(exchange(us, '0330040051'), '0307');
  assert.deepEqual(adrOf(us).enabled, [16, 17, 18, 19, 20, 21, 22, 23, 66]);
});

test('LinkADRReq refusals (US915): every channel off; one 125 kHz channel below DR4 (FCC 15.247); TXPower 15 of 0..14 is "keep"', () => {
  const before = (mac: DeviceMac) => ({ ...adrOf(mac) });
  const off = device(US915);
  const start = before(off);
  assert.equal(exchange(off, '0330000071'), '0304', 'ChMaskCntl 7 with ChMask 0: nothing left');
  assert.deepEqual(adrOf(off), start);
  const single = device(US915);
  assert.equal(exchange(single, '0310000101'), '0306', 'channel 8 alone at DR1');
  assert.deepEqual(adrOf(single), start);
  assert.equal(exchange(single, '033e00ff01'), '0307', 'TXPower 14 (30 - 28 = 2 dBm) is in range');
  assert.equal(single.txPowerDbm(), 2);
});

test('DevStatusReq: battery as the device model says, margin = the SNR the request was heard at, clamped to -32..31', () => {
  const mac = device(EU868);
  assert.equal(exchange(mac, '06', { snrDb: 7.6, battery: 0 }), '060008');
  assert.equal(exchange(mac, '06', { snrDb: -40, battery: 200 }), '06c820');
  assert.equal(exchange(mac, '06', { snrDb: 45, battery: 254 }), '06fe1f');
});

test('RXParamSetupReq: applied all or nothing; its answer goes in every uplink until a downlink comes', () => {
  const mac = device(EU868);
  // RX1DROffset 2, RX2 DR3, 869.525 MHz.
  assert.equal(exchange(mac, '0523d2ad84'), '0507');
  assert.deepEqual(mac.settings().rx, { rx1DelayS: 1, rx1DrOffset: 2, rx2DataRate: 3, rx2FrequencyHz: 869_525_000 });
  assert.equal(encodeUplinkMacCommands(mac.nextUplink().commands).toString('hex'), '0507', 'repeated');
  assert.equal(exchange(mac, ''), '', 'a downlink ends the repeats');
  // 868.65 MHz lies between the ETSI sub-bands; RX2 DR7 is FSK (not a LoRa rate here); RX1DROffset 6 is past 5.
  assert.equal(exchange(mac, '0523a48b84'), '0506', 'channel refused');
  assert.equal(exchange(mac, ''), '');
  assert.equal(exchange(mac, '0527d2ad84'), '0505', 'RX2 DR7');
  assert.equal(exchange(mac, ''), '');
  assert.equal(exchange(mac, '0563d2ad84'), '0503', 'RX1DROffset 6');
  assert.deepEqual(mac.settings().rx, { rx1DelayS: 1, rx1DrOffset: 2, rx2DataRate: 3, rx2FrequencyHz: 869_525_000 }, 'unchanged');
});

test('RXTimingSetupReq, DutyCycleReq: applied and answered (RXTimingSetupAns repeated until a downlink)', () => {
  const mac = device(EU868);
  assert.equal(exchange(mac, '0802' + '0403'), '08' + '04');
  assert.equal(mac.settings().rx.rx1DelayS, 2);
  assert.equal(mac.settings().maxDutyCycle, 3);
  assert.equal(encodeUplinkMacCommands(mac.nextUplink().commands).toString('hex'), '08');
  assert.equal(exchange(mac, '0800'), '08');
  assert.equal(mac.settings().rx.rx1DelayS, 1, 'Del 0 means 1 s');
});

test('NewChannelReq and DlChannelReq (EU868) define a channel and its RX1 frequency; US915 devices ignore both', () => {
  const mac = device(EU868);
  // Channel 3, 867.1 MHz, DR0..5.
  assert.equal(exchange(mac, '0703184f8450'), '0703');
  assert.deepEqual(mac.settings().channels.at(-1), { index: 3, frequencyHz: 867_100_000, minDataRate: 0, maxDataRate: 5, rx1FrequencyHz: null });
  assert.deepEqual(adrOf(mac).enabled, [0, 1, 2, 3]);
  assert.equal(exchange(mac, '0701184f8450'), '0700', 'a default channel cannot be changed');
  assert.equal(exchange(mac, '0704405489' + '50'), '0702', '900 MHz is outside EU868');
  assert.equal(exchange(mac, '0704184f8456'), '0701', 'MinDR 6 above MaxDR 5');
  // DlChannelReq: RX1 of channel 3 on 868.1 MHz; channel 9 does not exist.
  assert.equal(exchange(mac, '0a03287684'), '0a03');
  assert.equal(mac.rx1FrequencyHz(867_100_000), 868_100_000);
  assert.equal(encodeUplinkMacCommands(mac.nextUplink().commands).toString('hex'), '0a03', 'DlChannelAns repeated until a downlink');
  assert.equal(exchange(mac, ''), '');
  assert.equal(exchange(mac, '0a09287684'), '0a01');
  assert.equal(exchange(mac, ''), '');
  // Removing it again (frequency 0).
  assert.equal(exchange(mac, '070300000000'), '0703');
  assert.deepEqual(adrOf(mac).enabled, [0, 1, 2]);

  const us = device(US915);
  const result = us.receiveDownlink(Buffer.from('0703184f8450' + '0a03287684', 'hex'), QUIET);
  assert.deepEqual(
    result.outcomes.map((outcome) => outcome.result),
    ['ignored', 'ignored'],
  );
  assert.equal(encodeUplinkMacCommands(us.nextUplink().commands).toString('hex'), '', 'no answer (LoRaMac-node returns -1)');
});

test('TxParamSetupReq: AS923 applies MaxEIRP and the uplink dwell time (DR0 carries nothing then: DR2); EU868 ignores it', () => {
  const as = device(AS923, { dataRate: 0 });
  // UplinkDwellTime 1, MaxEIRP index 5 = 16 dBm.
  assert.equal(exchange(as, '0915'), '09');
  assert.equal(as.settings().maxEirpDbm, 16);
  assert.equal(as.settings().uplinkDwellTime, true);
  assert.equal(as.settings().dataRate, 2);
  assert.equal(as.maxMacPayloadBytes(), 19, 'RP002 AS923 DR2 under the dwell time');
  const eu = device(EU868);
  assert.equal(exchange(eu, '0915'), '');
  assert.equal(eu.settings().maxEirpDbm, 16);
});

test('LinkCheckAns and DeviceTimeAns are read, not answered; an unknown CID stops the parse, and what came before it is handled', () => {
  const mac = device(EU868);
  const read = mac.receiveDownlink(Buffer.from('020a02' + '0db0ade84380', 'hex'), QUIET);
  assert.deepEqual(read.linkCheck, { command: 'LinkCheckAns', margin: 10, gwCnt: 2 });
  assert.deepEqual(read.deviceTime, { command: 'DeviceTimeAns', seconds: 1_139_322_288, fraction256: 128 });
  assert.equal(encodeUplinkMacCommands(mac.nextUplink().commands).toString('hex'), '');

  // DevStatusReq, then 0x80 (proprietary, length unknown), then a DevStatusReq that cannot be reached.
  const unknown = mac.receiveDownlink(Buffer.from('06' + '80' + '06', 'hex'), { snrDb: 3, battery: 0 });
  assert.equal(unknown.stop?.reason, 'unknown-cid');
  assert.equal(unknown.stop?.offset, 1);
  assert.deepEqual(
    unknown.outcomes.map((outcome) => outcome.command.command),
    ['DevStatusReq'],
  );
  assert.equal(encodeUplinkMacCommands(mac.nextUplink().commands).toString('hex'), '060003');
});

test('the device asks DeviceTimeReq once and LinkCheckReq every N uplinks', () => {
  const mac = createDeviceMac({
    region: EU868,
    channels: EU868.defaultUplinkChannels,
    dataRate: 5,
    rx: { rx1DelayS: 1, rx1DrOffset: 0, rx2DataRate: 0, rx2FrequencyHz: EU868.rx2FrequencyHz },
    adr: true,
    deviceTime: true,
    linkCheckEveryUplinks: 2,
  });
  const uplinks = Array.from({ length: 4 }, () => encodeUplinkMacCommands(mac.nextUplink().commands).toString('hex'));
  assert.deepEqual(uplinks, ['0d', '02', '', '02']);
});

test(`ADR backoff: ADRACKReq after ${ADR_ACK_LIMIT} uplinks without a downlink, then full power and one data rate lower every ${ADR_ACK_DELAY}`, () => {
  const mac = device(EU868, { channels: EU868.uplinkChannels, dataRate: 0 });
  // DR5, TXPower 3, channels 0-7.
  mac.receiveDownlink(Buffer.from('0353ff0001', 'hex'), QUIET);
  assert.deepEqual(adrOf(mac), { dataRate: 5, txPowerIndex: 3, nbTrans: 1, enabled: [0, 1, 2, 3, 4, 5, 6, 7] });
  // plans[n] is the uplink sent with ADR_ACK_CNT = n.
  const plans = Array.from({ length: ADR_ACK_LIMIT + 3 * ADR_ACK_DELAY + 1 }, () => mac.nextUplink());
  assert.ok(
    plans.slice(0, ADR_ACK_LIMIT).every((plan) => !plan.adrAckReq),
    'no ADRACKReq before the limit',
  );
  assert.ok(
    plans.slice(ADR_ACK_LIMIT).every((plan) => plan.adrAckReq),
    'ADRACKReq from the limit on',
  );
  const backoffs = plans.flatMap((plan, index) => (plan.backoff === null ? [] : [{ cnt: index, ...plan.backoff }]));
  assert.deepEqual(backoffs, [
    { cnt: ADR_ACK_LIMIT + ADR_ACK_DELAY, dataRate: 4, txPowerIndex: 0, nbTrans: 1 },
    { cnt: ADR_ACK_LIMIT + 2 * ADR_ACK_DELAY, dataRate: 3, txPowerIndex: 0, nbTrans: 1 },
    { cnt: ADR_ACK_LIMIT + 3 * ADR_ACK_DELAY, dataRate: 2, txPowerIndex: 0, nbTrans: 1 },
  ]);
  // Any downlink starts the count over.
  mac.receiveDownlink(Buffer.alloc(0), QUIET);
  assert.equal(mac.nextUplink().adrAckReq, false);
  assert.equal(mac.settings().adrAckCounter, 1);

  const noAdr = device(EU868, { adr: false });
  assert.ok(Array.from({ length: 200 }, () => noAdr.nextUplink()).every((plan) => !plan.adrAckReq && plan.backoff === null && !plan.adr));
});

test('the MAC state read back from what persist() wrote is the same', () => {
  const mac = device(EU868);
  exchange(mac, '0703184f8450' + '0352070003' + '0523d2ad84' + '0403');
  const restored = createDeviceMac(
    { region: EU868, channels: EU868.defaultUplinkChannels, dataRate: 0, rx: { rx1DelayS: 1, rx1DrOffset: 0, rx2DataRate: 0, rx2FrequencyHz: 0 }, adr: true },
    JSON.parse(JSON.stringify(mac.persist())),
  );
  assert.deepEqual(restored.settings(), mac.settings());
  assert.deepEqual(adrOf(restored), { dataRate: 5, txPowerIndex: 2, nbTrans: 3, enabled: [0, 1, 2] });
});

test('a downlink built by lora-packet (FOpts, and FPort 0 under the NwkSKey) is read by the simulated device; lora-packet reads its answer', () => {
  const identity = deriveIdentity(5, 0, 'sl-000001', 'street-lamp', false, 'raw');
  assert.ok(identity.activation.mode === 'abp');
  const { devAddr, nwkSKey, appSKey } = identity.activation;
  const sim = createSimLorawanDevice(identity);
  const mac = device(EU868, { channels: EU868.uplinkChannels });
  const common = { MType: 'Unconfirmed Data Down', DevAddr: Buffer.from(devAddr, 'hex'), FCtrl: { ADR: true } };
  const take = (phy: Buffer): void => {
    const received = sim.receiveDownlink(phy);
    assert.ok(received !== null, 'MIC and DevAddr check');
    mac.receiveDownlink(carriedMacCommands({ fopts: received.fopts ?? Buffer.alloc(0), fport: received.fport }, received.payload).bytes, {
      snrDb: 9.2,
      battery: 0,
    });
  };
  // LinkADRReq DR4 TXPower 1, all defined channels on | DevStatusReq, in FOpts.
  take(
    loraPacket
      .fromFields({ ...common, FCnt: 0, FOpts: Buffer.from('0341000061' + '06', 'hex'), FPort: 1, payload: Buffer.from('x') }, appSKey, nwkSKey)
      .getPHYPayload() as Buffer,
  );
  // RXTimingSetupReq 3 s on FPort 0.
  take(loraPacket.fromFields({ ...common, FCnt: 1, FPort: 0, payload: Buffer.from('0803', 'hex') }, appSKey, nwkSKey).getPHYPayload() as Buffer);
  assert.deepEqual(adrOf(mac), { dataRate: 4, txPowerIndex: 1, nbTrans: 1, enabled: [0, 1, 2, 3, 4, 5, 6, 7] });
  assert.equal(mac.settings().rx.rx1DelayS, 3);

  const plan = mac.nextUplink();
  const built = sim.uplink(Buffer.from('reading'), 4, false, false, { adr: plan.adr, fopts: encodeUplinkMacCommands(plan.commands) });
  const packet = loraPacket.fromWire(built.phy);
  assert.equal(loraPacket.verifyMIC(packet, nwkSKey), true, 'lora-packet verifies the MIC');
  assert.equal(packet.getFCtrlADR(), true, 'the ADR bit');
  // RXTimingSetupAns (repeated first), then LinkADRAns and DevStatusAns (external power, margin 9).
  assert.equal(Buffer.from(packet.FOpts ?? []).toString('hex'), '08' + '0307' + '060009');
  assert.equal(loraPacket.decrypt(packet, appSKey, nwkSKey).toString(), 'reading');
});
