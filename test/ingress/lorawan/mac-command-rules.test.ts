// The rules around the MAC command codec: where encoded commands go, what is held back when they do not fit, and
// a LinkADRReq block from the network through the simulated device and back, answered and read as 1.0.x says.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRandom } from '../../../firmware-sim/fleet.ts';
import { encodeDataFrame } from '../../../src/ingress/lorawan/frame-crypto.ts';
import {
  carriedMacCommands,
  linkAdrBlockStatus,
  linkAdrReqBlocks,
  MAX_FOPTS_BYTES,
  placeMacCommands,
  REPEATED_UNTIL_DOWNLINK,
  takeMacCommandsThatFit,
} from '../../../src/ingress/lorawan/mac-command-rules.ts';
import {
  type DownlinkMacCommand,
  encodeDownlinkMacCommands,
  encodeUplinkMacCommands,
  type LinkADRReq,
  macCommandByteLength,
  parseDownlinkMacCommands,
  parseUplinkMacCommands,
  type UplinkMacCommand,
} from '../../../src/ingress/lorawan/mac-commands.ts';
import { parsePhyPayload } from '../../../src/ingress/lorawan/phy-payload.ts';

const KEYS = { nwkSKey: Buffer.alloc(16, 1), appSKey: Buffer.alloc(16, 2) };

function linkAdrReq(chMaskCntl: number, chMask: number): LinkADRReq {
  return { command: 'LinkADRReq', dataRate: 3, txPower: 2, chMask, chMaskCntl, nbTrans: 1 };
}

test('placement: up to 15 bytes ride in FOpts, more go on FPort 0 unless an application payload wants the frame', () => {
  const bytes = (length: number) => new Uint8Array(length);
  assert.equal(placeMacCommands(bytes(0), false), 'none');
  assert.equal(placeMacCommands(bytes(0), true), 'none');
  assert.equal(placeMacCommands(bytes(1), false), 'fopts');
  assert.equal(placeMacCommands(bytes(MAX_FOPTS_BYTES), true), 'fopts');
  assert.equal(placeMacCommands(bytes(MAX_FOPTS_BYTES + 1), false), 'port0');
  assert.equal(placeMacCommands(bytes(MAX_FOPTS_BYTES + 1), true), 'too-big');
  // What the placement allows, the frame encoder accepts; one byte more in FOpts it refuses.
  const fopts = encodeDownlinkMacCommands([linkAdrReq(0, 0xff), linkAdrReq(1, 0), linkAdrReq(2, 0)]);
  assert.equal(fopts.length, MAX_FOPTS_BYTES);
  const frame = { mtype: 'UnconfirmedDataDown', devAddr: '26011bda', fcnt32: 3, fport: 1, payload: Buffer.from('app'), ...KEYS } as const;
  assert.ok(encodeDataFrame({ ...frame, fopts }).length > 0);
  assert.throws(() => encodeDataFrame({ ...frame, fopts: Buffer.concat([fopts, Buffer.from('06', 'hex')]) }), TypeError);
});

test('the MAC commands of a parsed frame: FOpts in clear, or the FPort-0 plaintext, or none', () => {
  const parse = (phy: Buffer) => {
    const parsed = parsePhyPayload(phy);
    assert.ok(parsed.ok && parsed.frame.kind === 'data');
    return parsed.frame;
  };
  const frame = { mtype: 'UnconfirmedDataUp', devAddr: '26011bda', fcnt32: 9, ...KEYS } as const;
  const withFOpts = parse(encodeDataFrame({ ...frame, fopts: Buffer.from('0203', 'hex'), fport: 5, payload: Buffer.from('x') }));
  assert.deepEqual(carriedMacCommands(withFOpts, Buffer.from('x')), { carrier: 'fopts', bytes: Buffer.from('0203', 'hex') });
  const port0 = parse(encodeDataFrame({ ...frame, fport: 0, payload: Buffer.from('02', 'hex') }));
  const plaintext = Buffer.from('02', 'hex');
  assert.deepEqual(carriedMacCommands(port0, plaintext), { carrier: 'port0', bytes: plaintext });
  const plain = parse(encodeDataFrame({ ...frame, fport: 5, payload: Buffer.from('x') }));
  assert.deepEqual(carriedMacCommands(plain, Buffer.from('x')), { carrier: null, bytes: Buffer.alloc(0) });
});

test('what fits: whole commands from the front, and a LinkADRReq block whole or not at all', () => {
  const block = [linkAdrReq(0, 0xff), linkAdrReq(1, 0), linkAdrReq(2, 0)];
  const status: DownlinkMacCommand = { command: 'DevStatusReq' };
  const timing: DownlinkMacCommand = { command: 'RXTimingSetupReq', delay: 2 };
  // 1 + 15 bytes: the block would fit alone, but not after DevStatusReq, and it is not split.
  assert.deepEqual(takeMacCommandsThatFit([status, ...block, timing], MAX_FOPTS_BYTES), { now: [status], later: [...block, timing] });
  assert.deepEqual(takeMacCommandsThatFit([...block, status], MAX_FOPTS_BYTES), { now: block, later: [status] });
  assert.deepEqual(takeMacCommandsThatFit([timing, block[0] as LinkADRReq, status], 7), { now: [timing, block[0]], later: [status] });
  assert.deepEqual(takeMacCommandsThatFit([], MAX_FOPTS_BYTES), { now: [], later: [] });
});

test('what fits, for random command lists: in order, within the limit, no block split, nothing more could be taken', () => {
  const random = createRandom(7);
  const menu: readonly DownlinkMacCommand[] = [
    linkAdrReq(0, 0x00ff),
    { command: 'DevStatusReq' },
    { command: 'LinkCheckAns', margin: 7, gwCnt: 2 },
    { command: 'DutyCycleReq', maxDutyCycle: 3 },
    { command: 'NewChannelReq', chIndex: 4, frequencyHz: 867_300_000, minDr: 0, maxDr: 5 },
    { command: 'DeviceTimeAns', seconds: 1_400_000_000, fraction256: 3 },
  ];
  for (let round = 0; round < 500; round++) {
    const commands = Array.from({ length: Math.floor(random() * 8) }, () => menu[Math.floor(random() * menu.length)] as DownlinkMacCommand);
    const maxBytes = Math.floor(random() * 20);
    const { now, later } = takeMacCommandsThatFit(commands, maxBytes);
    assert.deepEqual([...now, ...later], commands);
    assert.ok(byteLength(now) <= maxBytes);
    if (now.at(-1)?.command === 'LinkADRReq') assert.notEqual(later[0]?.command, 'LinkADRReq', 'a block is never split');
    const next = later[0];
    if (next !== undefined) {
      let blockLength = 1;
      if (next.command === 'LinkADRReq') while (later[blockLength]?.command === 'LinkADRReq') blockLength += 1;
      assert.ok(byteLength([...now, ...later.slice(0, blockLength)]) > maxBytes, 'the next command (or block) would not fit');
    }
  }
});

/** Bytes on air, checked against the encoder whenever the commands are a frame it accepts. */
function byteLength(commands: readonly DownlinkMacCommand[]): number {
  const length = commands.reduce((sum, command) => sum + macCommandByteLength(command), 0);
  if (linkAdrReqBlocks(commands).length <= 1) assert.equal(encodeDownlinkMacCommands(commands).length, length, 'macCommandByteLength agrees with the encoder');
  return length;
}

test('a US915 LinkADRReq block goes down, the simulated device answers each request, the network reads one status', () => {
  const block = [linkAdrReq(7, 0x0000), linkAdrReq(0, 0xff00)];
  const downlink = encodeDownlinkMacCommands([{ command: 'DevStatusReq' }, ...block, { command: 'RXTimingSetupReq', delay: 1 }]);

  // Device side: one atomic block, one LinkADRAns per request, all with the same bits.
  const received = parseDownlinkMacCommands(downlink);
  assert.equal(received.stop, null);
  const blocks = linkAdrReqBlocks(received.commands);
  assert.deepEqual(blocks, [block]);
  const accepted = { powerAck: true, dataRateAck: true, channelMaskAck: true };
  const answers: UplinkMacCommand[] = [
    { command: 'DevStatusAns', battery: 200, margin: 8 },
    ...(blocks[0] ?? []).map(() => ({ command: 'LinkADRAns', ...accepted }) as const),
    { command: 'RXTimingSetupAns' },
  ];
  const uplink = encodeUplinkMacCommands(answers);
  assert.equal(uplink.toString('hex'), '06c808' + '0307' + '0307' + '08');

  // Network side.
  const read = parseUplinkMacCommands(uplink);
  assert.deepEqual(linkAdrBlockStatus(read.commands), { ...accepted, answers: block.length });
});

test('the network reads a LinkADRAns block as its last answer, and a device that contradicts itself as refusing', () => {
  /** Status bits as PowerACK, DataRateACK, ChannelMaskACK. */
  type Bits = readonly [boolean, boolean, boolean];
  const read = (...answers: Bits[]): Bits | null => {
    const status = linkAdrBlockStatus(
      answers.map(([powerAck, dataRateAck, channelMaskAck]) => ({ command: 'LinkADRAns', powerAck, dataRateAck, channelMaskAck })),
    );
    assert.equal(status?.answers ?? 0, answers.length);
    return status === null ? null : [status.powerAck, status.dataRateAck, status.channelMaskAck];
  };
  assert.equal(linkAdrBlockStatus([{ command: 'DeviceTimeReq' }]), null);
  assert.deepEqual(read([false, true, true], [false, true, true]), [false, true, true], 'consistent answers: the last one');
  assert.deepEqual(read([true, true, true], [false, true, true], [true, true, true]), [false, true, true]);
  assert.deepEqual(read([true, true, true], [true, false, true]), [true, false, true]);
  assert.deepEqual(read([true, true, false], [true, true, true]), [true, true, false]);
});

test('runs of LinkADRReq as a device sees them, and the answers it repeats until a downlink', () => {
  const [a, b, c] = [linkAdrReq(0, 1), linkAdrReq(1, 2), linkAdrReq(2, 3)];
  assert.deepEqual(linkAdrReqBlocks([a, b, { command: 'DevStatusReq' }, c]), [[a, b], [c]]);
  assert.deepEqual(linkAdrReqBlocks([{ command: 'DevStatusReq' }]), []);
  assert.deepEqual([...REPEATED_UNTIL_DOWNLINK].sort(), ['DlChannelAns', 'RXParamSetupAns', 'RXTimingSetupAns', 'TxParamSetupAns']);
});
