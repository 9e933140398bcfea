// The LoRaWAN 1.0.x MAC command codec (1.0.2, 1.0.3, 1.0.4; Class A and C) in both directions: the network server
// parses uplink answers and encodes downlink requests, the simulator does the reverse. Pure functions over the bytes
// of FOpts or of a decrypted FPort-0 FRMPayload (mac-command-rules.ts says which a frame uses); the typed commands
// are in mac-command-types.ts. Parsing never throws on bytes: it returns the commands it read and what stopped it.
// Encoding throws TypeError naming the command and field when a value is out of range (a bug, not input).
//
// Grammar (LoRaWAN 1.0.4 §5 Table 15 and §5.1-§5.9; multi-octet fields little-endian; RFU bits sent as 0, ignored
// when read). A command is CID(1) | payload, and the payload length is fixed by the CID and the direction:
//   uplink (end-device -> network)
//     0x02 LinkCheckReq      -
//     0x03 LinkADRAns        Status: RFU(7..3) PowerACK(2) DataRateACK(1) ChannelMaskACK(0)
//     0x04 DutyCycleAns      -
//     0x05 RXParamSetupAns   Status: RFU(7..3) RX1DRoffsetACK(2) RX2DataRateACK(1) ChannelACK(0)
//     0x06 DevStatusAns      Battery(1) | Margin: RFU(7..6) SNR dB, signed 6 bits(5..0)
//     0x07 NewChannelAns     Status: RFU(7..2) DataRateRangeOk(1) ChannelFrequencyOk(0)
//     0x08 RXTimingSetupAns  -
//     0x09 TxParamSetupAns   -
//     0x0A DlChannelAns      Status: RFU(7..2) UplinkFrequencyExists(1) ChannelFrequencyOk(0)
//     0x0D DeviceTimeReq     -                                                   (since 1.0.3)
//   downlink (network -> end-device)
//     0x02 LinkCheckAns      Margin(1, dB 0..254) | GwCnt(1)
//     0x03 LinkADRReq        DataRate(7..4) TXPower(3..0) | ChMask(2) | Redundancy: RFU(7) ChMaskCntl(6..4) NbTrans(3..0)
//     0x04 DutyCycleReq      RFU(7..4) MaxDutyCycle(3..0)
//     0x05 RXParamSetupReq   DLSettings: RFU(7) RX1DRoffset(6..4) RX2DataRate(3..0) | Frequency(3, 100 Hz steps)
//     0x06 DevStatusReq      -
//     0x07 NewChannelReq     ChIndex(1) | Frequency(3, 100 Hz steps) | DrRange: MaxDR(7..4) MinDR(3..0)
//     0x08 RXTimingSetupReq  RFU(7..4) Del(3..0)
//     0x09 TxParamSetupReq   RFU(7..6) DownlinkDwellTime(5) UplinkDwellTime(4) MaxEIRP(3..0)
//     0x0A DlChannelReq      ChIndex(1) | Frequency(3, 100 Hz steps)
//     0x0D DeviceTimeAns     GPS seconds(4) | fraction(1, 1/256 s)                (since 1.0.3; gps-time.ts)
// Other CIDs: 0x01, 0x0B, 0x0C, 0x0E, 0x0F are LoRaWAN 1.1, 0x10..0x13 Class B, 0x80..0xFF proprietary.
import type { DownlinkMacCommand, MacCommand, UplinkMacCommand } from './mac-command-types.ts';

export type * from './mac-command-types.ts';

// ---- Parsing ---------------------------------------------------------------------------------------------

export type MacParseStopReason = 'unknown-cid' | 'truncated';

/** Why a parse ended before the last byte. Nothing after `offset` can be read: lengths are known only per CID. */
export interface MacParseStop {
  readonly reason: MacParseStopReason;
  /** Offset of the CID that could not be read, in the bytes given. */
  readonly offset: number;
  readonly cid: number;
  /** Bytes from `offset` to the end, left unread. */
  readonly unreadBytes: number;
  readonly message: string;
}

export interface MacCommandParseResult<C extends MacCommand> {
  /** The commands before the stop (all of them when stop is null), in frame order. */
  readonly commands: readonly C[];
  readonly stop: MacParseStop | null;
}

/** Network side: the commands in an uplink's FOpts or decrypted FPort-0 payload. */
export function parseUplinkMacCommands(bytes: Uint8Array): MacCommandParseResult<UplinkMacCommand> {
  return parseMacCommands(bytes, UPLINK_BY_CID, 'uplink');
}

/** Device side (simulator): the commands in a downlink's FOpts or decrypted FPort-0 payload. */
export function parseDownlinkMacCommands(bytes: Uint8Array): MacCommandParseResult<DownlinkMacCommand> {
  return parseMacCommands(bytes, DOWNLINK_BY_CID, 'downlink');
}

// ---- Encoding --------------------------------------------------------------------------------------------

/** Network side. Throws TypeError naming the command and field when a value is out of range. */
export function encodeDownlinkMacCommands(commands: readonly DownlinkMacCommand[]): Buffer {
  assertLinkAdrReqContiguous(commands);
  return encodeMacCommands(commands, DOWNLINK_CODECS, 'downlink');
}

/** Device side (simulator). Throws TypeError naming the command and field when a value is out of range. */
export function encodeUplinkMacCommands(commands: readonly UplinkMacCommand[]): Buffer {
  return encodeMacCommands(commands, UPLINK_CODECS, 'uplink');
}

/** Bytes the command takes on air, CID included. Every command name is unique across both directions. */
export function macCommandByteLength(command: MacCommand): number {
  const codec = codecByName(command.command);
  if (codec === undefined) throw new TypeError(`unknown MAC command ${JSON.stringify(command.command)}`);
  return 1 + codec.payloadBytes;
}

/** Seconds from the end of an uplink to RX1 for a RXTimingSetupReq delay (or a join-accept RxDelay): 0 means 1 (LoRaWAN 1.0.2 §5.7). */
export function rxDelaySeconds(delay: number): number {
  if (!Number.isInteger(delay) || delay < 0 || delay > 15) throw new TypeError(`RX delay must be an integer in 0..15, got ${describe(delay)}`);
  return Math.max(1, delay);
}

// ---- Codec tables ----------------------------------------------------------------------------------------

type Direction = 'uplink' | 'downlink';

interface FieldCheck {
  uint(field: string, value: number, max: number): number;
  int(field: string, value: number, min: number, max: number): number;
  flag(field: string, value: boolean): number;
  /** Hz -> 100 Hz units in 24 bits. */
  frequency(field: string, value: number): number;
}

interface Codec<C extends MacCommand> {
  readonly cid: number;
  readonly payloadBytes: number;
  /** `payload` holds exactly payloadBytes bytes. */
  read(payload: Buffer): C;
  /** Writes payloadBytes bytes at `out[at]`, each field through `check`. */
  write(command: C, check: FieldCheck, out: Buffer, at: number): void;
}

type CodecTable<C extends MacCommand> = { readonly [K in C['command']]: Codec<Extract<C, { readonly command: K }>> };

const bit = (byte: number, index: number): boolean => ((byte >>> index) & 1) === 1;
const noPayload = <C extends MacCommand>(command: C, cid: number): Codec<C> => ({ cid, payloadBytes: 0, read: () => ({ ...command }), write: () => undefined });

const UPLINK_CODECS: CodecTable<UplinkMacCommand> = {
  LinkCheckReq: noPayload({ command: 'LinkCheckReq' }, 0x02),
  LinkADRAns: {
    cid: 0x03,
    payloadBytes: 1,
    read: (p) => {
      const status = p.readUInt8(0);
      return { command: 'LinkADRAns', powerAck: bit(status, 2), dataRateAck: bit(status, 1), channelMaskAck: bit(status, 0) };
    },
    write: (c, check, out, at) => {
      out[at] = (check.flag('powerAck', c.powerAck) << 2) | (check.flag('dataRateAck', c.dataRateAck) << 1) | check.flag('channelMaskAck', c.channelMaskAck);
    },
  },
  DutyCycleAns: noPayload({ command: 'DutyCycleAns' }, 0x04),
  RXParamSetupAns: {
    cid: 0x05,
    payloadBytes: 1,
    read: (p) => {
      const status = p.readUInt8(0);
      return { command: 'RXParamSetupAns', rx1DrOffsetAck: bit(status, 2), rx2DataRateAck: bit(status, 1), channelAck: bit(status, 0) };
    },
    write: (c, check, out, at) => {
      out[at] =
        (check.flag('rx1DrOffsetAck', c.rx1DrOffsetAck) << 2) | (check.flag('rx2DataRateAck', c.rx2DataRateAck) << 1) | check.flag('channelAck', c.channelAck);
    },
  },
  DevStatusAns: {
    cid: 0x06,
    payloadBytes: 2,
    read: (p) => {
      const margin = p.readUInt8(1) & 0x3f;
      return { command: 'DevStatusAns', battery: p.readUInt8(0), margin: margin >= 32 ? margin - 64 : margin };
    },
    write: (c, check, out, at) => {
      out[at] = check.uint('battery', c.battery, 255);
      out[at + 1] = check.int('margin', c.margin, -32, 31) & 0x3f;
    },
  },
  NewChannelAns: {
    cid: 0x07,
    payloadBytes: 1,
    read: (p) => {
      const status = p.readUInt8(0);
      return { command: 'NewChannelAns', dataRateRangeOk: bit(status, 1), channelFrequencyOk: bit(status, 0) };
    },
    write: (c, check, out, at) => {
      out[at] = (check.flag('dataRateRangeOk', c.dataRateRangeOk) << 1) | check.flag('channelFrequencyOk', c.channelFrequencyOk);
    },
  },
  RXTimingSetupAns: noPayload({ command: 'RXTimingSetupAns' }, 0x08),
  TxParamSetupAns: noPayload({ command: 'TxParamSetupAns' }, 0x09),
  DlChannelAns: {
    cid: 0x0a,
    payloadBytes: 1,
    read: (p) => {
      const status = p.readUInt8(0);
      return { command: 'DlChannelAns', uplinkFrequencyExists: bit(status, 1), channelFrequencyOk: bit(status, 0) };
    },
    write: (c, check, out, at) => {
      out[at] = (check.flag('uplinkFrequencyExists', c.uplinkFrequencyExists) << 1) | check.flag('channelFrequencyOk', c.channelFrequencyOk);
    },
  },
  DeviceTimeReq: noPayload({ command: 'DeviceTimeReq' }, 0x0d),
};

const DOWNLINK_CODECS: CodecTable<DownlinkMacCommand> = {
  LinkCheckAns: {
    cid: 0x02,
    payloadBytes: 2,
    read: (p) => ({ command: 'LinkCheckAns', margin: p.readUInt8(0), gwCnt: p.readUInt8(1) }),
    write: (c, check, out, at) => {
      out[at] = check.uint('margin', c.margin, 254);
      out[at + 1] = check.uint('gwCnt', c.gwCnt, 255);
    },
  },
  LinkADRReq: {
    cid: 0x03,
    payloadBytes: 4,
    read: (p) => {
      const dataRateTxPower = p.readUInt8(0);
      const redundancy = p.readUInt8(3);
      return {
        command: 'LinkADRReq',
        dataRate: dataRateTxPower >>> 4,
        txPower: dataRateTxPower & 0x0f,
        chMask: p.readUInt16LE(1),
        chMaskCntl: (redundancy >>> 4) & 0x07,
        nbTrans: redundancy & 0x0f,
      };
    },
    write: (c, check, out, at) => {
      out[at] = (check.uint('dataRate', c.dataRate, 15) << 4) | check.uint('txPower', c.txPower, 15);
      out.writeUInt16LE(check.uint('chMask', c.chMask, 0xffff), at + 1);
      out[at + 3] = (check.uint('chMaskCntl', c.chMaskCntl, 7) << 4) | check.uint('nbTrans', c.nbTrans, 15);
    },
  },
  DutyCycleReq: {
    cid: 0x04,
    payloadBytes: 1,
    read: (p) => ({ command: 'DutyCycleReq', maxDutyCycle: p.readUInt8(0) & 0x0f }),
    write: (c, check, out, at) => {
      out[at] = check.uint('maxDutyCycle', c.maxDutyCycle, 15);
    },
  },
  RXParamSetupReq: {
    cid: 0x05,
    payloadBytes: 4,
    read: (p) => {
      const dlSettings = p.readUInt8(0);
      return { command: 'RXParamSetupReq', rx1DrOffset: (dlSettings >>> 4) & 0x07, rx2DataRate: dlSettings & 0x0f, frequencyHz: p.readUIntLE(1, 3) * 100 };
    },
    write: (c, check, out, at) => {
      out[at] = (check.uint('rx1DrOffset', c.rx1DrOffset, 7) << 4) | check.uint('rx2DataRate', c.rx2DataRate, 15);
      out.writeUIntLE(check.frequency('frequencyHz', c.frequencyHz), at + 1, 3);
    },
  },
  DevStatusReq: noPayload({ command: 'DevStatusReq' }, 0x06),
  NewChannelReq: {
    cid: 0x07,
    payloadBytes: 5,
    read: (p) => {
      const drRange = p.readUInt8(4);
      return { command: 'NewChannelReq', chIndex: p.readUInt8(0), frequencyHz: p.readUIntLE(1, 3) * 100, minDr: drRange & 0x0f, maxDr: drRange >>> 4 };
    },
    write: (c, check, out, at) => {
      out[at] = check.uint('chIndex', c.chIndex, 255);
      out.writeUIntLE(check.frequency('frequencyHz', c.frequencyHz), at + 1, 3);
      out[at + 4] = (check.uint('maxDr', c.maxDr, 15) << 4) | check.uint('minDr', c.minDr, 15);
    },
  },
  RXTimingSetupReq: {
    cid: 0x08,
    payloadBytes: 1,
    read: (p) => ({ command: 'RXTimingSetupReq', delay: p.readUInt8(0) & 0x0f }),
    write: (c, check, out, at) => {
      out[at] = check.uint('delay', c.delay, 15);
    },
  },
  TxParamSetupReq: {
    cid: 0x09,
    payloadBytes: 1,
    read: (p) => {
      const eirpDwellTime = p.readUInt8(0);
      return {
        command: 'TxParamSetupReq',
        downlinkDwellTimeLimited: bit(eirpDwellTime, 5),
        uplinkDwellTimeLimited: bit(eirpDwellTime, 4),
        maxEirp: eirpDwellTime & 0x0f,
      };
    },
    write: (c, check, out, at) => {
      out[at] =
        (check.flag('downlinkDwellTimeLimited', c.downlinkDwellTimeLimited) << 5) |
        (check.flag('uplinkDwellTimeLimited', c.uplinkDwellTimeLimited) << 4) |
        check.uint('maxEirp', c.maxEirp, 15);
    },
  },
  DlChannelReq: {
    cid: 0x0a,
    payloadBytes: 4,
    read: (p) => ({ command: 'DlChannelReq', chIndex: p.readUInt8(0), frequencyHz: p.readUIntLE(1, 3) * 100 }),
    write: (c, check, out, at) => {
      out[at] = check.uint('chIndex', c.chIndex, 255);
      out.writeUIntLE(check.frequency('frequencyHz', c.frequencyHz), at + 1, 3);
    },
  },
  DeviceTimeAns: {
    cid: 0x0d,
    payloadBytes: 5,
    read: (p) => ({ command: 'DeviceTimeAns', seconds: p.readUInt32LE(0), fraction256: p.readUInt8(4) }),
    write: (c, check, out, at) => {
      out.writeUInt32LE(check.uint('seconds', c.seconds, 0xffff_ffff), at);
      out[at + 4] = check.uint('fraction256', c.fraction256, 255);
    },
  },
};

interface NamedCodec<C extends MacCommand> extends Codec<C> {
  readonly name: string;
}

function byCid<C extends MacCommand>(table: CodecTable<C>): ReadonlyMap<number, NamedCodec<C>> {
  return new Map(Object.entries<Codec<C>>(table).map(([name, codec]) => [codec.cid, { ...codec, name }]));
}

const UPLINK_BY_CID = byCid(UPLINK_CODECS);
const DOWNLINK_BY_CID = byCid(DOWNLINK_CODECS);

function codecByName(name: string): Codec<MacCommand> | undefined {
  const tables: readonly Readonly<Record<string, Codec<MacCommand>>>[] = [UPLINK_CODECS, DOWNLINK_CODECS];
  for (const table of tables) if (Object.hasOwn(table, name)) return table[name];
  return undefined;
}

/** CIDs that exist outside LoRaWAN 1.0.x Class A/C, named so a stop message says what the device sent. */
const FOREIGN_CIDS: ReadonlyMap<number, string> = new Map([
  [0x01, 'ResetInd/ResetConf, LoRaWAN 1.1'],
  [0x0b, 'RekeyInd/RekeyConf, LoRaWAN 1.1'],
  [0x0c, 'ADRParamSetupReq/Ans, LoRaWAN 1.1'],
  [0x0e, 'ForceRejoinReq, LoRaWAN 1.1'],
  [0x0f, 'RejoinParamSetupReq/Ans, LoRaWAN 1.1'],
  [0x10, 'PingSlotInfoReq/Ans, Class B'],
  [0x11, 'PingSlotChannelReq/Ans, Class B'],
  [0x12, 'BeaconTimingReq/Ans, Class B, deprecated'],
  [0x13, 'BeaconFreqReq/Ans, Class B'],
  [0x20, 'DeviceModeInd/Conf, LoRaWAN 1.1'],
]);

function parseMacCommands<C extends MacCommand>(bytes: Uint8Array, codecs: ReadonlyMap<number, NamedCodec<C>>, direction: Direction): MacCommandParseResult<C> {
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`MAC commands must be bytes (Uint8Array), got ${describe(bytes)}`);
  // A view, not a copy: every field read below is a number or a boolean, so nothing keeps a reference to it.
  const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const commands: C[] = [];
  let offset = 0;
  while (offset < data.length) {
    const cid = data.readUInt8(offset);
    const codec = codecs.get(cid);
    const unreadBytes = data.length - offset;
    if (codec === undefined) {
      const known = FOREIGN_CIDS.get(cid) ?? (cid >= 0x80 ? 'proprietary, vendor-defined' : 'RFU');
      const message =
        `CID 0x${hexByte(cid)} (${known}) at offset ${offset} is not a LoRaWAN 1.0.x ${direction} MAC command; its length is unknown, so the ` +
        `${unreadBytes} bytes from there are left unread. Check the device's LoRaWAN version and class`;
      return { commands, stop: { reason: 'unknown-cid', offset, cid, unreadBytes, message } };
    }
    const end = offset + 1 + codec.payloadBytes;
    if (end > data.length) {
      const message = `${codec.name} (CID 0x${hexByte(cid)}) at offset ${offset} needs ${codec.payloadBytes} payload bytes, only ${unreadBytes - 1} left: the commands are cut short`;
      return { commands, stop: { reason: 'truncated', offset, cid, unreadBytes, message } };
    }
    commands.push(codec.read(data.subarray(offset + 1, end)));
    offset = end;
  }
  return { commands, stop: null };
}

function encodeMacCommands<C extends MacCommand>(commands: readonly C[], table: CodecTable<C>, direction: Direction): Buffer {
  if (!Array.isArray(commands)) throw new TypeError(`expected an array of ${direction} MAC commands, got ${typeof commands}`);
  const codecs = commands.map((command, index) => {
    const name = (command as { readonly command?: unknown } | null)?.command;
    const codec = typeof name === 'string' && Object.hasOwn(table, name) ? (table as Readonly<Record<string, Codec<C>>>)[name] : undefined;
    if (codec === undefined) {
      throw new TypeError(
        `MAC command ${index}: ${JSON.stringify(name)} is not ${direction === 'uplink' ? 'an' : 'a'} ${direction} command; expected one of ${Object.keys(table).join(', ')}`,
      );
    }
    return codec;
  });
  const out = Buffer.alloc(codecs.reduce((length, codec) => length + 1 + codec.payloadBytes, 0));
  let at = 0;
  commands.forEach((command, index) => {
    const codec = codecs[index] as Codec<C>;
    out[at] = codec.cid;
    codec.write(command, fieldCheck(`MAC command ${index} (${command.command})`), out, at + 1);
    at += 1 + codec.payloadBytes;
  });
  return out;
}

function fieldCheck(what: string): FieldCheck {
  const fail = (field: string, expected: string, value: unknown): never => {
    throw new TypeError(`${what}: ${field} must be ${expected}, got ${describe(value)}`);
  };
  const int = (field: string, value: number, min: number, max: number): number =>
    Number.isInteger(value) && value >= min && value <= max ? value : fail(field, `an integer in ${min}..${max}`, value);
  return {
    int,
    uint: (field, value, max) => int(field, value, 0, max),
    flag: (field, value) => (typeof value === 'boolean' ? Number(value) : fail(field, 'a boolean', value)),
    frequency: (field, value) =>
      Number.isInteger(value) && value >= 0 && value % 100 === 0 && value / 100 <= 0xff_ffff
        ? value / 100
        : fail(field, 'a multiple of 100 Hz in 0..1677721500', value),
  };
}

/** A device applies each contiguous run of LinkADRReq as one block (1.0.3 §5.2); two runs in a frame are a bug. */
function assertLinkAdrReqContiguous(commands: readonly DownlinkMacCommand[]): void {
  if (!Array.isArray(commands)) return; // encodeMacCommands names the problem
  let runEnd = -1;
  commands.forEach((command, index) => {
    if (command?.command !== 'LinkADRReq') return;
    if (runEnd !== -1 && runEnd !== index - 1) {
      throw new TypeError(
        `MAC command ${index} (LinkADRReq) is separated from the LinkADRReq before it (command ${runEnd}): a device applies each contiguous ` +
          'run as one atomic block (LoRaWAN 1.0.3 §5.2), so put all LinkADRReq of a frame next to each other',
      );
    }
    runEnd = index;
  });
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  return ['number', 'bigint', 'boolean', 'undefined'].includes(typeof value) ? String(value) : typeof value;
}

function hexByte(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}
