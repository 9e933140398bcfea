// The MAC command codec against byte vectors worked out by hand from LoRaWAN 1.0.4 §5 (the layout is written next
// to each), against malformed and random bytes, and against lora-packet, an independent LoRaWAN implementation:
// frames with MAC commands in FOpts and on FPort 0 built here and read there, and built there and read here.
// lora-packet 0.9.3 does not parse MAC commands itself (its README lists them under TODO), so it checks the
// frames around them: MIC, FOpts bytes, and the FPort-0 payload decrypted with the NwkSKey.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import loraPacketModule from 'lora-packet';
import { createRandom } from '../../../firmware-sim/fleet.ts';
import { cryptFrmPayload, encodeDataFrame, frmPayloadKey, verifyDataFrameMic } from '../../../src/ingress/lorawan/frame-crypto.ts';
import { carriedMacCommands, linkAdrReqBlocks, placeMacCommands } from '../../../src/ingress/lorawan/mac-command-rules.ts';
import {
  type DownlinkMacCommand,
  encodeDownlinkMacCommands,
  encodeUplinkMacCommands,
  type MacCommandParseResult,
  type MacCommand,
  parseDownlinkMacCommands,
  parseUplinkMacCommands,
  type UplinkMacCommand,
} from '../../../src/ingress/lorawan/mac-commands.ts';
import { type DataFrame, parsePhyPayload } from '../../../src/ingress/lorawan/phy-payload.ts';

// lora-packet is CommonJS with module.exports = its functions; its types describe them as `default`.
const loraPacket = loraPacketModule as unknown as typeof loraPacketModule.default;

const NWK_S_KEY = Buffer.from('0102030405060708090a0b0c0d0e0f10', 'hex');
const APP_S_KEY = Buffer.from('100f0e0d0c0b0a090807060504030201', 'hex');
const KEYS = { nwkSKey: NWK_S_KEY, appSKey: APP_S_KEY };
const DEV_ADDR = '26011bda';

interface Vector<C> {
  readonly hex: string;
  /** The byte layout, field by field. */
  readonly layout: string;
  readonly command: C;
}

const UPLINK_VECTORS: readonly Vector<UplinkMacCommand>[] = [
  { hex: '02', layout: 'CID 0x02, no payload', command: { command: 'LinkCheckReq' } },
  { hex: '0307', layout: 'CID 0x03 | Status 0b00000111: PowerACK(2) DataRateACK(1) ChannelMaskACK(0)', command: linkAdrAns(true, true, true) },
  { hex: '0305', layout: 'CID 0x03 | Status 0b00000101: PowerACK, ChannelMaskACK; no DataRateACK', command: linkAdrAns(true, false, true) },
  { hex: '04', layout: 'CID 0x04, no payload', command: { command: 'DutyCycleAns' } },
  {
    hex: '0506',
    layout: 'CID 0x05 | Status 0b00000110: RX1DRoffsetACK(2) RX2DataRateACK(1), no ChannelACK(0)',
    command: { command: 'RXParamSetupAns', rx1DrOffsetAck: true, rx2DataRateAck: true, channelAck: false },
  },
  { hex: '06fe3f', layout: 'CID 0x06 | Battery 254 | Margin 0x3f = -1 in 6-bit two’s complement', command: devStatusAns(254, -1) },
  { hex: '06001f', layout: 'CID 0x06 | Battery 0 (external power) | Margin 0x1f = 31', command: devStatusAns(0, 31) },
  { hex: '06ff20', layout: 'CID 0x06 | Battery 255 (not measured) | Margin 0x20 = -32', command: devStatusAns(255, -32) },
  {
    hex: '0702',
    layout: 'CID 0x07 | Status 0b00000010: DataRateRangeOk(1), no ChannelFrequencyOk(0)',
    command: { command: 'NewChannelAns', dataRateRangeOk: true, channelFrequencyOk: false },
  },
  { hex: '08', layout: 'CID 0x08, no payload', command: { command: 'RXTimingSetupAns' } },
  { hex: '09', layout: 'CID 0x09, no payload', command: { command: 'TxParamSetupAns' } },
  {
    hex: '0a01',
    layout: 'CID 0x0A | Status 0b00000001: ChannelFrequencyOk(0), no UplinkFrequencyExists(1)',
    command: { command: 'DlChannelAns', uplinkFrequencyExists: false, channelFrequencyOk: true },
  },
  { hex: '0d', layout: 'CID 0x0D, no payload', command: { command: 'DeviceTimeReq' } },
];

const DOWNLINK_VECTORS: readonly Vector<DownlinkMacCommand>[] = [
  { hex: '021403', layout: 'CID 0x02 | Margin 20 dB | GwCnt 3', command: { command: 'LinkCheckAns', margin: 20, gwCnt: 3 } },
  {
    hex: '0351070001',
    layout: 'CID 0x03 | DataRate 5 << 4 | TXPower 1 = 0x51 | ChMask 0x0007 LE = 07 00 | ChMaskCntl 0 << 4 | NbTrans 1 = 0x01',
    command: linkAdrReq({ dataRate: 5, txPower: 1, chMask: 0x0007, chMaskCntl: 0, nbTrans: 1 }),
  },
  {
    hex: '0312040045',
    layout: 'CID 0x03 | DR 1, TXPower 2 = 0x12 | ChMask 0x0004 LE = 04 00 | ChMaskCntl 4, NbTrans 5 = 0x45 (also ChirpStack lrwn test)',
    command: linkAdrReq({ dataRate: 1, txPower: 2, chMask: 0x0004, chMaskCntl: 4, nbTrans: 5 }),
  },
  {
    hex: '03ffffff6f',
    layout: 'CID 0x03 | DataRate 15, TXPower 15 (keep the current ones) = 0xff | ChMask 0xffff | ChMaskCntl 6, NbTrans 15 = 0x6f',
    command: linkAdrReq({ dataRate: 15, txPower: 15, chMask: 0xffff, chMaskCntl: 6, nbTrans: 15 }),
  },
  { hex: '040d', layout: 'CID 0x04 | MaxDutyCycle 13 (1/8192)', command: { command: 'DutyCycleReq', maxDutyCycle: 13 } },
  {
    hex: '0503d2ad84',
    layout: 'CID 0x05 | DLSettings: RX1DRoffset 0 << 4 | RX2DataRate 3 = 0x03 | 869525000 Hz / 100 = 8695250 = 0x84add2 LE = d2 ad 84',
    command: { command: 'RXParamSetupReq', rx1DrOffset: 0, rx2DataRate: 3, frequencyHz: 869_525_000 },
  },
  {
    hex: '053b010204',
    layout: 'CID 0x05 | RX1DRoffset 3, RX2DataRate 11 = 0x3b | 26265700 Hz / 100 = 0x040201 LE = 01 02 04 (ChirpStack lrwn test)',
    command: { command: 'RXParamSetupReq', rx1DrOffset: 3, rx2DataRate: 11, frequencyHz: 26_265_700 },
  },
  { hex: '06', layout: 'CID 0x06, no payload', command: { command: 'DevStatusReq' } },
  {
    hex: '0703184f8450',
    layout: 'CID 0x07 | ChIndex 3 | 867100000 Hz / 100 = 0x844f18 LE = 18 4f 84 | MaxDR 5 << 4 | MinDR 0 = 0x50',
    command: { command: 'NewChannelReq', chIndex: 3, frequencyHz: 867_100_000, minDr: 0, maxDr: 5 },
  },
  {
    hex: '070f00000000',
    layout: 'CID 0x07 | ChIndex 15 | frequency 0 (disables the channel) | DrRange 0x00',
    command: { command: 'NewChannelReq', chIndex: 15, frequencyHz: 0, minDr: 0, maxDr: 0 },
  },
  { hex: '0801', layout: 'CID 0x08 | Del 1 (RX1 1 s after the uplink)', command: { command: 'RXTimingSetupReq', delay: 1 } },
  {
    hex: '0915',
    layout: 'CID 0x09 | DownlinkDwellTime 0 (bit 5) | UplinkDwellTime 1 (bit 4) | MaxEIRP 5 (16 dBm) = 0b00010101',
    command: { command: 'TxParamSetupReq', downlinkDwellTimeLimited: false, uplinkDwellTimeLimited: true, maxEirp: 5 },
  },
  {
    hex: '0a00287684',
    layout: 'CID 0x0A | ChIndex 0 | 868100000 Hz / 100 = 0x847628 LE = 28 76 84',
    command: { command: 'DlChannelReq', chIndex: 0, frequencyHz: 868_100_000 },
  },
  {
    hex: '0db0ade84380',
    layout: 'CID 0x0D | 1139322288 s = 0x43e8adb0 LE = b0 ad e8 43 (1.0.3 §5.9 example, 2016-02-12T14:24:31Z) | 128/256 s = 0x80',
    command: { command: 'DeviceTimeAns', seconds: 1_139_322_288, fraction256: 128 },
  },
];

/** US915 sub-band 2 as one block: ChMaskCntl 7 turns all 125 kHz channels off, then ChMaskCntl 0 turns 8..15 on. */
const US915_SUB_BAND_2: readonly DownlinkMacCommand[] = [
  linkAdrReq({ dataRate: 3, txPower: 0, chMask: 0x0000, chMaskCntl: 7, nbTrans: 1 }),
  linkAdrReq({ dataRate: 3, txPower: 0, chMask: 0xff00, chMaskCntl: 0, nbTrans: 1 }),
];
/** 0x30: DR 3, TXPower 0 | ChMask LE | 0x71: ChMaskCntl 7, NbTrans 1; then 0x30 | 0xff00 LE = 00 ff | 0x01. */
const US915_SUB_BAND_2_HEX = '0330000071' + '033000ff01';

function linkAdrAns(powerAck: boolean, dataRateAck: boolean, channelMaskAck: boolean): UplinkMacCommand {
  return { command: 'LinkADRAns', powerAck, dataRateAck, channelMaskAck };
}

function devStatusAns(battery: number, margin: number): UplinkMacCommand {
  return { command: 'DevStatusAns', battery, margin };
}

function linkAdrReq(fields: { dataRate: number; txPower: number; chMask: number; chMaskCntl: number; nbTrans: number }): DownlinkMacCommand {
  return { command: 'LinkADRReq', ...fields };
}

function hexOf(vectors: readonly Vector<MacCommand>[]): string {
  return vectors.map((vector) => vector.hex).join('');
}

function parsedFully<C extends MacCommand>(result: MacCommandParseResult<C>): readonly C[] {
  assert.equal(result.stop, null, result.stop?.message);
  return result.commands;
}

test('every uplink command parses from and encodes to its hand-computed bytes', () => {
  for (const { hex, layout, command } of UPLINK_VECTORS) {
    assert.deepEqual(parsedFully(parseUplinkMacCommands(Buffer.from(hex, 'hex'))), [command], layout);
    assert.equal(encodeUplinkMacCommands([command]).toString('hex'), hex, layout);
  }
  const all = UPLINK_VECTORS.map((vector) => vector.command);
  assert.equal(encodeUplinkMacCommands(all).toString('hex'), hexOf(UPLINK_VECTORS), 'all of them back to back');
  assert.deepEqual(parsedFully(parseUplinkMacCommands(Buffer.from(hexOf(UPLINK_VECTORS), 'hex'))), all);
});

test('every downlink command parses from and encodes to its hand-computed bytes', () => {
  for (const { hex, layout, command } of DOWNLINK_VECTORS) {
    assert.deepEqual(parsedFully(parseDownlinkMacCommands(Buffer.from(hex, 'hex'))), [command], layout);
    assert.equal(encodeDownlinkMacCommands([command]).toString('hex'), hex, layout);
  }
  // Both LinkADRReq vectors are next to each other, so the sequence is one valid block.
  const all = DOWNLINK_VECTORS.map((vector) => vector.command);
  assert.equal(encodeDownlinkMacCommands(all).toString('hex'), hexOf(DOWNLINK_VECTORS));
  assert.deepEqual(parsedFully(parseDownlinkMacCommands(Buffer.from(hexOf(DOWNLINK_VECTORS), 'hex'))), all);
  assert.equal(encodeDownlinkMacCommands(US915_SUB_BAND_2).toString('hex'), US915_SUB_BAND_2_HEX);
  assert.deepEqual(parsedFully(parseDownlinkMacCommands(Buffer.from(US915_SUB_BAND_2_HEX, 'hex'))), US915_SUB_BAND_2);
});

test('RFU bits are ignored when read and sent as 0', () => {
  assert.deepEqual(parsedFully(parseUplinkMacCommands(Buffer.from('03f8', 'hex'))), [linkAdrAns(false, false, false)], 'Status bits 7..3 are RFU');
  assert.deepEqual(parsedFully(parseUplinkMacCommands(Buffer.from('0601ff', 'hex'))), [devStatusAns(1, -1)], 'Margin bits 7..6 are RFU');
  assert.deepEqual(parsedFully(parseDownlinkMacCommands(Buffer.from('04f3', 'hex'))), [{ command: 'DutyCycleReq', maxDutyCycle: 3 }]);
  assert.deepEqual(
    parsedFully(parseDownlinkMacCommands(Buffer.from('0351070081', 'hex'))),
    [linkAdrReq({ dataRate: 5, txPower: 1, chMask: 7, chMaskCntl: 0, nbTrans: 1 })],
    'Redundancy bit 7 is RFU',
  );
  assert.deepEqual(parsedFully(parseDownlinkMacCommands(Buffer.from('09c0', 'hex'))), [
    { command: 'TxParamSetupReq', downlinkDwellTimeLimited: false, uplinkDwellTimeLimited: false, maxEirp: 0 },
  ]);
  assert.equal(encodeUplinkMacCommands([devStatusAns(1, -1)]).toString('hex'), '06013f');
});

test('empty bytes hold no commands and nothing stopped the parse', () => {
  assert.deepEqual(parseUplinkMacCommands(new Uint8Array(0)), { commands: [], stop: null });
  assert.deepEqual(parseDownlinkMacCommands(new Uint8Array(0)), { commands: [], stop: null });
  assert.equal(encodeDownlinkMacCommands([]).length, 0);
});

test('a command cut short returns the commands before it and says where it stopped', () => {
  // LinkCheckReq | DevStatusAns with one of its two payload bytes.
  const uplink = parseUplinkMacCommands(Buffer.from('0206fe', 'hex'));
  assert.deepEqual(uplink.commands, [{ command: 'LinkCheckReq' }]);
  assert.deepEqual({ ...uplink.stop, message: undefined }, { reason: 'truncated', offset: 1, cid: 0x06, unreadBytes: 2, message: undefined });
  assert.match(uplink.stop?.message ?? '', /DevStatusAns \(CID 0x06\) at offset 1 needs 2 payload bytes, only 1 left/);

  const downlink = parseDownlinkMacCommands(Buffer.from('0db0ade843', 'hex'));
  assert.deepEqual(downlink.commands, []);
  assert.equal(downlink.stop?.reason, 'truncated');
  assert.match(downlink.stop?.message ?? '', /DeviceTimeAns .* needs 5 payload bytes, only 4 left/);
});

test('an unknown CID in the middle stops the parse there: the bytes after it cannot be read', () => {
  // LinkCheckReq | 0x10 PingSlotInfoReq (Class B) | what would be a LinkADRAns.
  const classB = parseUplinkMacCommands(Buffer.from('02100307', 'hex'));
  assert.deepEqual(classB.commands, [{ command: 'LinkCheckReq' }]);
  assert.equal(classB.stop?.reason, 'unknown-cid');
  assert.equal(classB.stop?.offset, 1);
  assert.equal(classB.stop?.cid, 0x10);
  assert.equal(classB.stop?.unreadBytes, 3);
  assert.match(classB.stop?.message ?? '', /CID 0x10 \(PingSlotInfoReq\/Ans, Class B\) at offset 1 .* 3 bytes from there are left unread/);

  const proprietary = parseDownlinkMacCommands(Buffer.from('0680aabb', 'hex'));
  assert.deepEqual(proprietary.commands, [{ command: 'DevStatusReq' }]);
  assert.match(proprietary.stop?.message ?? '', /CID 0x80 \(proprietary, vendor-defined\)/);

  const lorawan11 = parseUplinkMacCommands(Buffer.from('0b01', 'hex'));
  assert.match(lorawan11.stop?.message ?? '', /RekeyInd\/RekeyConf, LoRaWAN 1\.1/);
});

test('the direction decides the lengths: a DeviceTimeAns read as an uplink is a DeviceTimeReq and then an unknown CID', () => {
  const bytes = Buffer.from('0db0ade84380', 'hex');
  const asUplink = parseUplinkMacCommands(bytes);
  assert.deepEqual(asUplink.commands, [{ command: 'DeviceTimeReq' }]);
  assert.deepEqual([asUplink.stop?.reason, asUplink.stop?.offset, asUplink.stop?.cid], ['unknown-cid', 1, 0xb0]);
  assert.deepEqual(parsedFully(parseDownlinkMacCommands(bytes)), [{ command: 'DeviceTimeAns', seconds: 1_139_322_288, fraction256: 128 }]);
});

test('a view into a larger buffer is read from its own offset up to its own end', () => {
  const frame = Buffer.from('ff020403ff', 'hex');
  assert.deepEqual(parsedFully(parseUplinkMacCommands(frame.subarray(1, 3))), [{ command: 'LinkCheckReq' }, { command: 'DutyCycleAns' }]);
  // The LinkADRAns at the end of the view has its status byte only beyond it.
  const cut = parseUplinkMacCommands(new Uint8Array(frame.buffer, frame.byteOffset + 1, 3));
  assert.deepEqual(cut.commands, [{ command: 'LinkCheckReq' }, { command: 'DutyCycleAns' }]);
  assert.deepEqual([cut.stop?.reason, cut.stop?.offset], ['truncated', 2]);
});

test('something other than bytes is a programmer error', () => {
  assert.throws(() => parseUplinkMacCommands('0203' as unknown as Uint8Array), { name: 'TypeError', message: /must be bytes \(Uint8Array\), got "0203"/ });
});

test('encoding refuses each field out of range with a TypeError naming the command and field', () => {
  const cases: readonly [MacCommand, RegExp][] = [
    [
      linkAdrReq({ dataRate: 16, txPower: 0, chMask: 0, chMaskCntl: 0, nbTrans: 1 }),
      /MAC command 0 \(LinkADRReq\): dataRate must be an integer in 0\.\.15, got 16/,
    ],
    [linkAdrReq({ dataRate: 0, txPower: -1, chMask: 0, chMaskCntl: 0, nbTrans: 1 }), /txPower must be an integer in 0\.\.15, got -1/],
    [linkAdrReq({ dataRate: 0, txPower: 0, chMask: 0x1_0000, chMaskCntl: 0, nbTrans: 1 }), /chMask must be an integer in 0\.\.65535, got 65536/],
    [linkAdrReq({ dataRate: 0, txPower: 0, chMask: 0, chMaskCntl: 8, nbTrans: 1 }), /chMaskCntl must be an integer in 0\.\.7, got 8/],
    [linkAdrReq({ dataRate: 0, txPower: 0, chMask: 0, chMaskCntl: 0, nbTrans: 1.5 }), /nbTrans must be an integer in 0\.\.15, got 1\.5/],
    [{ command: 'LinkCheckAns', margin: 255, gwCnt: 1 }, /margin must be an integer in 0\.\.254, got 255/],
    [{ command: 'DutyCycleReq', maxDutyCycle: 255 }, /maxDutyCycle must be an integer in 0\.\.15, got 255/],
    [{ command: 'RXParamSetupReq', rx1DrOffset: 8, rx2DataRate: 0, frequencyHz: 869_525_000 }, /rx1DrOffset must be an integer in 0\.\.7, got 8/],
    [
      { command: 'RXParamSetupReq', rx1DrOffset: 0, rx2DataRate: 0, frequencyHz: 869_525_050 },
      /frequencyHz must be a multiple of 100 Hz in 0\.\.1677721500, got 869525050/,
    ],
    [{ command: 'NewChannelReq', chIndex: 0, frequencyHz: 1_677_721_600, minDr: 0, maxDr: 5 }, /frequencyHz must be a multiple of 100 Hz/],
    [{ command: 'NewChannelReq', chIndex: 256, frequencyHz: 867_100_000, minDr: 0, maxDr: 5 }, /chIndex must be an integer in 0\.\.255, got 256/],
    [{ command: 'RXTimingSetupReq', delay: 16 }, /delay must be an integer in 0\.\.15, got 16/],
    [
      { command: 'TxParamSetupReq', downlinkDwellTimeLimited: false, uplinkDwellTimeLimited: 1 as unknown as boolean, maxEirp: 0 },
      /uplinkDwellTimeLimited must be a boolean, got 1/,
    ],
    [{ command: 'DlChannelReq', chIndex: 0, frequencyHz: Number.NaN }, /frequencyHz must be a multiple of 100 Hz .* got NaN/],
    [{ command: 'DeviceTimeAns', seconds: 2 ** 32, fraction256: 0 }, /seconds must be an integer in 0\.\.4294967295, got 4294967296/],
    [{ command: 'DeviceTimeAns', seconds: 0, fraction256: 256 }, /fraction256 must be an integer in 0\.\.255, got 256/],
    [devStatusAns(256, 0), /battery must be an integer in 0\.\.255, got 256/],
    [devStatusAns(0, -33), /margin must be an integer in -32\.\.31, got -33/],
    [devStatusAns(0, 32), /margin must be an integer in -32\.\.31, got 32/],
    [{ command: 'LinkADRAns', powerAck: true, dataRateAck: 'yes' as unknown as boolean, channelMaskAck: true }, /dataRateAck must be a boolean, got "yes"/],
  ];
  for (const [command, message] of cases) {
    const encode = () =>
      UPLINK_VECTORS.some((vector) => vector.command.command === command.command)
        ? encodeUplinkMacCommands([command as UplinkMacCommand])
        : encodeDownlinkMacCommands([command as DownlinkMacCommand]);
    assert.throws(encode, { name: 'TypeError', message }, JSON.stringify(command));
  }
  assert.throws(() => encodeDownlinkMacCommands([{ command: 'DevStatusReq' }, { command: 'LinkCheckReq' } as unknown as DownlinkMacCommand]), {
    name: 'TypeError',
    message: /MAC command 1: "LinkCheckReq" is not a downlink command; expected one of LinkCheckAns, LinkADRReq/,
  });
  assert.throws(() => encodeUplinkMacCommands([{ command: 'DevStatusReq' } as unknown as UplinkMacCommand]), /"DevStatusReq" is not an uplink command/);
});

test('LinkADRReq in one downlink must be contiguous: a split run would be two blocks', () => {
  const [first, second] = US915_SUB_BAND_2 as [DownlinkMacCommand, DownlinkMacCommand];
  assert.throws(() => encodeDownlinkMacCommands([first, { command: 'DevStatusReq' }, second]), {
    name: 'TypeError',
    message: /MAC command 2 \(LinkADRReq\) is separated from the LinkADRReq before it \(command 0\)/,
  });
  assert.equal(encodeDownlinkMacCommands([{ command: 'DevStatusReq' }, first, second, { command: 'DevStatusReq' }]).length, 12);
});

test('random bytes never make a parser throw, and what they parse to is consistent', () => {
  const random = createRandom(20_260_315);
  const knownCids = [0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0d];
  const stops = { 'unknown-cid': 0, truncated: 0, none: 0 };
  for (let round = 0; round < 4000; round++) {
    // Mostly known CIDs, so that parses get past the first byte; now and then any byte.
    const input = Buffer.alloc(Math.floor(random() * 24));
    for (let index = 0; index < input.length; index++) {
      input[index] = random() < 0.6 ? (knownCids[Math.floor(random() * knownCids.length)] as number) : Math.floor(random() * 256);
    }
    const uplink = parseUplinkMacCommands(input);
    checkConsistent(input, uplink, parseUplinkMacCommands, (commands) => encodeUplinkMacCommands(commands));
    const downlink = parseDownlinkMacCommands(input);
    checkConsistent(input, downlink, parseDownlinkMacCommands, (commands) => {
      // What a network could not have sent: a reserved LinkCheckAns margin, or LinkADRReq runs apart.
      const encodable = !commands.some((command) => command.command === 'LinkCheckAns' && command.margin === 255) && linkAdrReqBlocks(commands).length <= 1;
      if (encodable) return encodeDownlinkMacCommands(commands);
      assert.throws(() => encodeDownlinkMacCommands(commands), TypeError);
      return null;
    });
    stops[uplink.stop?.reason ?? 'none'] += 1;
  }
  assert.ok(stops['unknown-cid'] > 100 && stops.truncated > 100 && stops.none > 100, `every outcome is exercised: ${JSON.stringify(stops)}`);
});

/**
 * The parse stopped at `stop.offset` (or read everything), the bytes before that parse to the same commands with
 * nothing stopping them, and those commands encode back to bytes that parse to them again.
 */
function checkConsistent<C extends MacCommand>(
  input: Buffer,
  result: MacCommandParseResult<C>,
  parse: (bytes: Uint8Array) => MacCommandParseResult<C>,
  encode: (commands: readonly C[]) => Buffer | null,
): void {
  const readBytes = result.stop === null ? input.length : result.stop.offset;
  if (result.stop !== null) {
    assert.equal(result.stop.offset + result.stop.unreadBytes, input.length);
    assert.equal(result.stop.cid, input[result.stop.offset]);
    assert.ok(result.stop.message.length > 0);
  }
  assert.deepEqual(parse(input.subarray(0, readBytes)), { commands: result.commands, stop: null });
  const encoded = encode(result.commands);
  if (encoded === null) return;
  assert.equal(encoded.length, readBytes, 'the commands take as many bytes as were read');
  assert.deepEqual(parse(encoded), { commands: result.commands, stop: null });
}

// ---- lora-packet, an independent implementation ------------------------------------------------------------

function upperFCntBytes(fcnt32: number): Buffer {
  const bytes = Buffer.alloc(2);
  bytes.writeUInt16LE(fcnt32 >>> 16); // lora-packet takes the upper counter bytes in wire (little-endian) order
  return bytes;
}

function parseDataFrame(phy: Uint8Array): DataFrame {
  const parsed = parsePhyPayload(phy);
  assert.ok(parsed.ok, parsed.ok ? '' : parsed.message);
  assert.equal(parsed.frame.kind, 'data');
  return parsed.frame;
}

const DOWNLINK_FOPTS: readonly DownlinkMacCommand[] = [
  linkAdrReq({ dataRate: 5, txPower: 1, chMask: 0x0007, chMaskCntl: 0, nbTrans: 1 }),
  { command: 'DevStatusReq' },
  { command: 'RXTimingSetupReq', delay: 1 },
  { command: 'LinkCheckAns', margin: 20, gwCnt: 3 },
];
const DOWNLINK_PORT0: readonly DownlinkMacCommand[] = [
  ...US915_SUB_BAND_2,
  { command: 'RXParamSetupReq', rx1DrOffset: 0, rx2DataRate: 3, frequencyHz: 869_525_000 },
  { command: 'DeviceTimeAns', seconds: 1_139_322_288, fraction256: 128 },
];
const UPLINK_FOPTS: readonly UplinkMacCommand[] = [
  linkAdrAns(true, true, true),
  linkAdrAns(true, true, true),
  devStatusAns(254, -1),
  { command: 'RXParamSetupAns', rx1DrOffsetAck: true, rx2DataRateAck: true, channelAck: true },
  { command: 'DeviceTimeReq' },
];
const UPLINK_PORT0: readonly UplinkMacCommand[] = [
  linkAdrAns(false, true, true),
  linkAdrAns(false, true, true),
  devStatusAns(0, 7),
  { command: 'NewChannelAns', dataRateRangeOk: true, channelFrequencyOk: true },
  { command: 'NewChannelAns', dataRateRangeOk: false, channelFrequencyOk: true },
  { command: 'NewChannelAns', dataRateRangeOk: true, channelFrequencyOk: false },
  { command: 'DlChannelAns', uplinkFrequencyExists: true, channelFrequencyOk: true },
  { command: 'RXTimingSetupAns' },
  { command: 'TxParamSetupAns' },
  { command: 'DeviceTimeReq' },
  { command: 'LinkCheckReq' },
  { command: 'DutyCycleAns' },
];

const CROSS_CHECKS = [
  { direction: 'down', fopts: encodeDownlinkMacCommands(DOWNLINK_FOPTS), port0: encodeDownlinkMacCommands(DOWNLINK_PORT0) },
  { direction: 'up', fopts: encodeUplinkMacCommands(UPLINK_FOPTS), port0: encodeUplinkMacCommands(UPLINK_PORT0) },
] as const;

for (const { direction, fopts, port0 } of CROSS_CHECKS) {
  test(`lora-packet reads our ${direction}links: MIC, the FOpts bytes, and the FPort-0 payload decrypted with the NwkSKey`, () => {
    assert.equal(placeMacCommands(fopts, true), 'fopts', `${fopts.length} bytes fit in FOpts beside an application payload`);
    assert.equal(placeMacCommands(port0, false), 'port0', `${port0.length} bytes need FPort 0`);
    assert.equal(placeMacCommands(port0, true), 'too-big');
    const confirmed = direction === 'up' ? 'ConfirmedDataUp' : 'ConfirmedDataDown';
    const fcnt32 = 0x0002_0105; // upper counter bits that only the MIC and keystream carry

    const withFOpts = encodeDataFrame({ mtype: confirmed, devAddr: DEV_ADDR, fcnt32, fopts, fport: 7, payload: Buffer.from('app'), ...KEYS });
    const packet = loraPacket.fromWire(withFOpts);
    assert.equal(packet.getDir(), direction);
    assert.equal(loraPacket.verifyMIC(packet, NWK_S_KEY, undefined, upperFCntBytes(fcnt32)), true, 'lora-packet verifies the MIC');
    assert.deepEqual(packet.FOpts, fopts, 'lora-packet reads the same FOpts bytes');
    assert.equal(loraPacket.decrypt(packet, APP_S_KEY, NWK_S_KEY, upperFCntBytes(fcnt32)).toString(), 'app');

    const onPort0 = encodeDataFrame({ mtype: confirmed, devAddr: DEV_ADDR, fcnt32, fport: 0, payload: port0, ...KEYS });
    const port0Packet = loraPacket.fromWire(onPort0);
    assert.equal(port0Packet.getFPort(), 0);
    assert.equal(port0Packet.FOpts?.length, 0, 'no FOpts beside FPort 0');
    assert.equal(loraPacket.verifyMIC(port0Packet, NWK_S_KEY, undefined, upperFCntBytes(fcnt32)), true);
    assert.notDeepEqual(port0Packet.FRMPayload, port0, 'the commands are encrypted on air');
    // lora-packet picks the key by FPort: for 0 the NwkSKey, the third argument. Given the AppSKey there, it must not decrypt.
    assert.deepEqual(loraPacket.decrypt(port0Packet, APP_S_KEY, NWK_S_KEY, upperFCntBytes(fcnt32)), port0);
    assert.notDeepEqual(loraPacket.decrypt(port0Packet, APP_S_KEY, APP_S_KEY, upperFCntBytes(fcnt32)), port0);
  });
}

test('frames built by lora-packet with MAC commands in FOpts and on FPort 0 parse to the commands, both directions', () => {
  // The FOpts and FPort-0 bytes are written out by hand here, not produced by our encoder.
  const cases: readonly { mtype: string; fopts: string; port0: string; inFOpts: readonly MacCommand[]; onPort0: readonly MacCommand[] }[] = [
    {
      mtype: 'Unconfirmed Data Up',
      // LinkADRAns 0x07 | DevStatusAns 254, 0x3f | DeviceTimeReq
      fopts: '0307' + '06fe3f' + '0d',
      inFOpts: [linkAdrAns(true, true, true), devStatusAns(254, -1), { command: 'DeviceTimeReq' }],
      // LinkADRAns 0x06 twice | DevStatusAns 0x12, 0x09 | NewChannelAns 0x03 | DlChannelAns 0x03 | RXTimingSetupAns | TxParamSetupAns | LinkCheckReq | DutyCycleAns
      port0: '0306' + '0306' + '061209' + '0703' + '0a03' + '08' + '09' + '02' + '04',
      onPort0: [
        linkAdrAns(true, true, false),
        linkAdrAns(true, true, false),
        devStatusAns(18, 9),
        { command: 'NewChannelAns', dataRateRangeOk: true, channelFrequencyOk: true },
        { command: 'DlChannelAns', uplinkFrequencyExists: true, channelFrequencyOk: true },
        { command: 'RXTimingSetupAns' },
        { command: 'TxParamSetupAns' },
        { command: 'LinkCheckReq' },
        { command: 'DutyCycleAns' },
      ],
    },
    {
      mtype: 'Unconfirmed Data Down',
      // LinkADRReq 0x51, 07 00, 0x01 | DevStatusReq | LinkCheckAns 20, 3
      fopts: '0351070001' + '06' + '021403',
      inFOpts: [
        linkAdrReq({ dataRate: 5, txPower: 1, chMask: 7, chMaskCntl: 0, nbTrans: 1 }),
        { command: 'DevStatusReq' },
        { command: 'LinkCheckAns', margin: 20, gwCnt: 3 },
      ],
      // the US915 block | RXParamSetupReq 0x03, 869525000 Hz | DeviceTimeAns 1139322288 s + 128/256
      port0: [US915_SUB_BAND_2_HEX, '0503d2ad84', '0db0ade84380'].join(''),
      onPort0: [
        ...US915_SUB_BAND_2,
        { command: 'RXParamSetupReq', rx1DrOffset: 0, rx2DataRate: 3, frequencyHz: 869_525_000 },
        { command: 'DeviceTimeAns', seconds: 1_139_322_288, fraction256: 128 },
      ],
    },
  ];
  for (const { mtype, fopts, port0, inFOpts: expectFOpts, onPort0: expectPort0 } of cases) {
    const up = mtype.endsWith('Up');
    const parseCommands = (bytes: Uint8Array): MacCommandParseResult<MacCommand> => (up ? parseUplinkMacCommands(bytes) : parseDownlinkMacCommands(bytes));
    const fcnt = 0x1234;
    const common = { MType: mtype, DevAddr: Buffer.from(DEV_ADDR, 'hex'), FCnt: fcnt, FCtrl: { ADR: true } };

    const withFOpts = parseDataFrame(
      loraPacket
        .fromFields({ ...common, FOpts: Buffer.from(fopts, 'hex'), FPort: 2, payload: Buffer.from('x') }, APP_S_KEY, NWK_S_KEY)
        .getPHYPayload() as Buffer,
    );
    assert.ok(verifyDataFrameMic(NWK_S_KEY, withFOpts.direction, withFOpts.devAddr, fcnt, withFOpts.micInput, withFOpts.mic), `${mtype}: MIC`);
    const inFOpts = carriedMacCommands(withFOpts, Buffer.alloc(0));
    assert.equal(inFOpts.carrier, 'fopts');
    assert.deepEqual(parsedFully(parseCommands(inFOpts.bytes)), expectFOpts, `${mtype}: FOpts`);

    const onPort0 = parseDataFrame(
      loraPacket.fromFields({ ...common, FPort: 0, payload: Buffer.from(port0, 'hex') }, APP_S_KEY, NWK_S_KEY).getPHYPayload() as Buffer,
    );
    assert.ok(verifyDataFrameMic(NWK_S_KEY, onPort0.direction, onPort0.devAddr, fcnt, onPort0.micInput, onPort0.mic), `${mtype}: MIC on FPort 0`);
    const plaintext = cryptFrmPayload(frmPayloadKey(onPort0.fport, KEYS), onPort0.direction, onPort0.devAddr, fcnt, onPort0.frmPayload);
    const inPort0 = carriedMacCommands(onPort0, plaintext);
    assert.equal(inPort0.carrier, 'port0');
    assert.deepEqual(parsedFully(parseCommands(inPort0.bytes)), expectPort0, `${mtype}: FPort 0`);
  }
});

test('a frame with MAC commands in FOpts and on FPort 0 at once is refused, whoever built it', () => {
  const both = loraPacket.fromFields(
    {
      MType: 'Unconfirmed Data Down',
      DevAddr: Buffer.from(DEV_ADDR, 'hex'),
      FCnt: 1,
      FOpts: Buffer.from('06', 'hex'),
      FPort: 0,
      payload: Buffer.from('06', 'hex'),
    },
    APP_S_KEY,
    NWK_S_KEY,
  );
  const parsed = parsePhyPayload(both.getPHYPayload() as Buffer);
  assert.equal(parsed.ok ? 'parsed' : parsed.reason, 'fport0-with-fopts');
  assert.throws(
    () => encodeDataFrame({ mtype: 'UnconfirmedDataDown', devAddr: DEV_ADDR, fcnt32: 1, fopts: Buffer.from('06', 'hex'), fport: 0, ...KEYS }),
    TypeError,
  );
  assert.throws(() => carriedMacCommands({ fopts: Buffer.from('06', 'hex'), fport: 0 }, Buffer.from('06', 'hex')), TypeError);
});
