// LoRaWAN 1.0.x PHYPayload parser: raw radio bytes -> typed frame, no keys and no crypto. It runs on bytes
// from an untrusted UDP port, so it never throws; a rejection names the field and the numbers involved.
// MIC checks and decryption live in frame-crypto.ts. Shared by the gateway and firmware-sim.
//
// Grammar (LoRaWAN 1.0.2 §4; every multi-octet field little-endian on air, EUIs and DevAddr included):
//   PHYPayload  = MHDR(1) | MACPayload | MIC(4)          join frames replace MACPayload
//   MHDR        = MType(bits 7..5) | RFU(4..2) | Major(1..0)
//   MACPayload  = FHDR | [FPort(1) | FRMPayload(0..N)]
//   FHDR        = DevAddr(4) | FCtrl(1) | FCnt(2) | FOpts(FCtrl.FOptsLen, 0..15)
//   JoinRequest = JoinEUI(8) | DevEUI(8) | DevNonce(2)                   (§6.2.4, 23 bytes in all)
//   JoinAccept  = encrypted: JoinNonce(3) | NetID(3) | DevAddr(4) | DLSettings(1) | RxDelay(1) | [CFList(16)] | MIC

export type MType =
  | 'JoinRequest'
  | 'JoinAccept'
  | 'UnconfirmedDataUp'
  | 'UnconfirmedDataDown'
  | 'ConfirmedDataUp'
  | 'ConfirmedDataDown'
  | 'RFU'
  | 'Proprietary';

/** MType by its 3-bit code (§4.2.1). */
export const MTYPES: readonly MType[] = [
  'JoinRequest',
  'JoinAccept',
  'UnconfirmedDataUp',
  'UnconfirmedDataDown',
  'ConfirmedDataUp',
  'ConfirmedDataDown',
  'RFU',
  'Proprietary',
];

export type DataMType = 'UnconfirmedDataUp' | 'UnconfirmedDataDown' | 'ConfirmedDataUp' | 'ConfirmedDataDown';
export type Direction = 'up' | 'down';

export interface FrameControl {
  readonly adr: boolean;
  /** Uplink ADRACKReq; RFU in downlinks (§4.3.1). */
  readonly adrAckReq: boolean;
  readonly ack: boolean;
  /** Bit 4: FPending in downlinks; RFU (Class B in 1.0.2) in uplinks. */
  readonly fPending: boolean;
  readonly foptsLen: number;
}

export interface DataFrame {
  readonly kind: 'data';
  readonly mhdr: number;
  readonly mtype: DataMType;
  readonly direction: Direction;
  readonly confirmed: boolean;
  /** 8 lower-case hex digits in display (big-endian) order: wire f1 7d be 49 -> '49be7df1'. */
  readonly devAddr: string;
  readonly fctrl: FrameControl;
  /** The 16 low bits of the frame counter as sent; see frame-counter.ts for the full 32-bit value. */
  readonly fcnt16: number;
  /** MAC commands, in clear in 1.0.x. */
  readonly fopts: Buffer;
  /** null when the frame has no FPort (and so no FRMPayload). */
  readonly fport: number | null;
  /** Still encrypted: AppSKey for FPort 1..255, NwkSKey for FPort 0 (§4.3.3). */
  readonly frmPayload: Buffer;
  readonly mic: Buffer;
  /** MHDR through the end of FRMPayload: the message the MIC covers (§4.4). */
  readonly micInput: Buffer;
}

export interface JoinRequestFrame {
  readonly kind: 'join-request';
  readonly mhdr: number;
  /** 16 lower-case hex digits in display order (AppEUI in 1.0.x). */
  readonly joinEui: string;
  readonly devEui: string;
  readonly devNonce: number;
  readonly mic: Buffer;
  readonly micInput: Buffer;
}

export interface JoinAcceptFrame {
  readonly kind: 'join-accept';
  readonly mhdr: number;
  /** Everything after MHDR, MIC included, as sent: decrypt with decodeJoinAccept (frame-crypto.ts). */
  readonly encrypted: Buffer;
}

export type PhyFrame = DataFrame | JoinRequestFrame | JoinAcceptFrame;

export type PhyRejectReason = 'too-short' | 'too-long' | 'major-unsupported' | 'mtype-unsupported' | 'fopts-overflow' | 'fport0-with-fopts' | 'length-mismatch';

export type PhyParseResult =
  | { readonly ok: true; readonly frame: PhyFrame }
  | { readonly ok: false; readonly reason: PhyRejectReason; readonly message: string };

/** The LoRa PHY length field is one byte, so no radio can deliver a longer PHYPayload. */
export const MAX_PHY_PAYLOAD_BYTES = 255;
/** MHDR + FHDR without FOpts + MIC: the shortest data frame (§4.3.1). */
export const MIN_DATA_FRAME_BYTES = 12;
export const JOIN_REQUEST_BYTES = 23;
/** Join-accept without and with the 16-byte CFList (§6.2.5). */
export const JOIN_ACCEPT_BYTES = [17, 33] as const;
export const MIC_BYTES = 4;

const MTYPE_JOIN_REQUEST = 0;
const MTYPE_JOIN_ACCEPT = 1;

export function parsePhyPayload(bytes: Uint8Array): PhyParseResult {
  if (!(bytes instanceof Uint8Array)) return reject('too-short', `expected the PHYPayload as bytes (Uint8Array), got ${describe(bytes)}`);
  if (bytes.length === 0) return reject('too-short', 'PHYPayload is empty');
  if (bytes.length > MAX_PHY_PAYLOAD_BYTES) {
    return reject('too-long', `PHYPayload is ${bytes.length} bytes; a LoRa frame carries at most ${MAX_PHY_PAYLOAD_BYTES}`);
  }
  // One private copy: the fields below are views into it, so a caller reusing its receive buffer cannot change them.
  const phy = Buffer.from(bytes);
  const mhdr = phy[0] ?? 0;
  const major = mhdr & 0x03;
  if (major !== 0) {
    return reject('major-unsupported', `MHDR 0x${hexByte(mhdr)} has Major ${major}; only LoRaWAN R1 (Major 0) is supported (LoRaWAN 1.0.2 §4.2.2)`);
  }
  const mtypeCode = mhdr >>> 5;
  switch (mtypeCode) {
    case MTYPE_JOIN_REQUEST:
      return parseJoinRequest(phy, mhdr);
    case MTYPE_JOIN_ACCEPT:
      return parseJoinAccept(phy, mhdr);
    case 6:
      return reject('mtype-unsupported', `MHDR 0x${hexByte(mhdr)} has MType 6, RFU in LoRaWAN 1.0.x (a Rejoin-request in 1.1)`);
    case 7:
      return reject('mtype-unsupported', `MHDR 0x${hexByte(mhdr)} has MType 7 (Proprietary), whose format is vendor-defined`);
    default:
      return parseDataFrame(phy, mhdr, mtypeCode);
  }
}

function parseDataFrame(phy: Buffer, mhdr: number, mtypeCode: number): PhyParseResult {
  if (phy.length < MIN_DATA_FRAME_BYTES) {
    return reject('too-short', `data frame is ${phy.length} bytes; MHDR, FHDR and MIC need at least ${MIN_DATA_FRAME_BYTES}`);
  }
  const fctrlByte = phy[5] ?? 0;
  const foptsLen = fctrlByte & 0x0f;
  const fhdrEnd = 8 + foptsLen;
  const micStart = phy.length - MIC_BYTES;
  if (fhdrEnd > micStart) {
    return reject('fopts-overflow', `FOptsLen ${foptsLen} needs a frame of at least ${MIN_DATA_FRAME_BYTES + foptsLen} bytes, this one has ${phy.length}`);
  }
  // §4.3.1: FPort is present exactly when bytes remain between FHDR and MIC; it may be followed by an empty FRMPayload.
  const fport = fhdrEnd < micStart ? (phy[fhdrEnd] ?? 0) : null;
  if (fport === 0 && foptsLen > 0) {
    return reject('fport0-with-fopts', `FPort 0 (MAC commands in FRMPayload) with FOptsLen ${foptsLen}; LoRaWAN 1.0.2 §4.3.1.6 forbids both at once`);
  }
  const mtype = MTYPES[mtypeCode] as DataMType;
  const frame: DataFrame = {
    kind: 'data',
    mhdr,
    mtype,
    direction: mtypeCode === 2 || mtypeCode === 4 ? 'up' : 'down',
    confirmed: mtypeCode === 4 || mtypeCode === 5,
    devAddr: hexReversed(phy, 1, 4),
    fctrl: {
      adr: (fctrlByte & 0x80) !== 0,
      adrAckReq: (fctrlByte & 0x40) !== 0,
      ack: (fctrlByte & 0x20) !== 0,
      fPending: (fctrlByte & 0x10) !== 0,
      foptsLen,
    },
    fcnt16: phy.readUInt16LE(6),
    fopts: phy.subarray(8, fhdrEnd),
    fport,
    frmPayload: fport === null ? phy.subarray(micStart, micStart) : phy.subarray(fhdrEnd + 1, micStart),
    mic: phy.subarray(micStart),
    micInput: phy.subarray(0, micStart),
  };
  return { ok: true, frame };
}

function parseJoinRequest(phy: Buffer, mhdr: number): PhyParseResult {
  if (phy.length !== JOIN_REQUEST_BYTES) {
    return reject(
      phy.length < JOIN_REQUEST_BYTES ? 'too-short' : 'length-mismatch',
      `join-request is ${phy.length} bytes; it must be exactly ${JOIN_REQUEST_BYTES} (LoRaWAN 1.0.2 §6.2.4)`,
    );
  }
  const frame: JoinRequestFrame = {
    kind: 'join-request',
    mhdr,
    joinEui: hexReversed(phy, 1, 8),
    devEui: hexReversed(phy, 9, 8),
    devNonce: phy.readUInt16LE(17),
    mic: phy.subarray(19),
    micInput: phy.subarray(0, 19),
  };
  return { ok: true, frame };
}

function parseJoinAccept(phy: Buffer, mhdr: number): PhyParseResult {
  const [plain, withCfList] = JOIN_ACCEPT_BYTES;
  if (phy.length !== plain && phy.length !== withCfList) {
    return reject(
      phy.length < plain ? 'too-short' : 'length-mismatch',
      `join-accept is ${phy.length} bytes; it must be ${plain}, or ${withCfList} with a CFList (LoRaWAN 1.0.2 §6.2.5)`,
    );
  }
  return { ok: true, frame: { kind: 'join-accept', mhdr, encrypted: phy.subarray(1) } };
}

function reject(reason: PhyRejectReason, message: string): PhyParseResult {
  return { ok: false, reason, message };
}

const HEX_BYTES = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, '0'));

function hexByte(byte: number): string {
  return HEX_BYTES[byte & 0xff] ?? '00';
}

/** Little-endian wire bytes -> display hex (most significant byte first). */
function hexReversed(bytes: Buffer, offset: number, length: number): string {
  let hex = '';
  for (let i = offset + length - 1; i >= offset; i--) hex += hexByte(bytes[i] ?? 0);
  return hex;
}

function describe(value: unknown): string {
  return value === null ? 'null' : typeof value;
}
