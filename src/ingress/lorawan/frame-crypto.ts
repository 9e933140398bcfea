// LoRaWAN 1.0.x frame security: data-frame MIC and FRMPayload encryption, join-request and join-accept MICs,
// session-key derivation, and the builders the simulator (device side) and the gateway (ACK downlinks,
// join-accepts) use to put frames on air. Pure functions over parse results from phy-payload.ts.
// Keys are 16-byte AES-128 keys; a wrong length is a programmer error and throws TypeError. Decoding
// functions never throw on the bytes they are given.
import { createDecipheriv, timingSafeEqual } from 'node:crypto';
import { aesCmac, aesEncryptBlocks } from './aes-cmac.ts';
import { type DataMType, type Direction, JOIN_ACCEPT_BYTES, MAX_PHY_PAYLOAD_BYTES, MIC_BYTES, MTYPES } from './phy-payload.ts';

const BLOCK_BYTES = 16;
const MAX_FCNT32 = 0xffff_ffff;
const MHDR_JOIN_REQUEST = 0x00;
const MHDR_JOIN_ACCEPT = 0x20;
const CF_LIST_BYTES = 16;

// ---- Data frames (§4.3.3, §4.4) --------------------------------------------------------------------------

/**
 * The 4-byte MIC of a data frame (§4.4): AES-CMAC(NwkSKey, B0 | msg)[0..3], where B0 carries the full 32-bit
 * counter. A receiver that uses only the 16 bits on air rejects every frame after the first rollover.
 */
export function dataFrameMic(nwkSKey: Uint8Array, direction: Direction, devAddr: string, fcnt32: number, micInput: Uint8Array): Buffer {
  if (micInput.length > MAX_PHY_PAYLOAD_BYTES) {
    throw new RangeError(`MIC input is ${micInput.length} bytes; B0 holds its length in one byte (max ${MAX_PHY_PAYLOAD_BYTES})`);
  }
  const input = Buffer.alloc(BLOCK_BYTES + micInput.length);
  writeCounterBlock(input, 0x49, direction, devAddr, fcnt32, micInput.length);
  input.set(micInput, BLOCK_BYTES);
  return aesCmac(nwkSKey, input).subarray(0, MIC_BYTES);
}

/** Checks a data frame's MIC in constant time; false (never a throw) for a MIC of the wrong length. */
export function verifyDataFrameMic(nwkSKey: Uint8Array, direction: Direction, devAddr: string, fcnt32: number, micInput: Uint8Array, mic: Uint8Array): boolean {
  return micEquals(dataFrameMic(nwkSKey, direction, devAddr, fcnt32, micInput), mic);
}

/**
 * Encrypts or decrypts FRMPayload (the same XOR with an AES keystream, §4.3.3). `key` is the AppSKey for
 * FPort 1..255 and the NwkSKey for FPort 0; see frmPayloadKey.
 */
export function cryptFrmPayload(key: Uint8Array, direction: Direction, devAddr: string, fcnt32: number, payload: Uint8Array): Buffer {
  const blockCount = Math.ceil(payload.length / BLOCK_BYTES);
  if (blockCount === 0) return Buffer.alloc(0);
  // A_i = 0x01 | 0^4 | Dir | DevAddr | FCnt32 | 0x00 | i, for i = 1..k; all k blocks go through AES in one call.
  const counterBlocks = Buffer.alloc(blockCount * BLOCK_BYTES);
  writeCounterBlock(counterBlocks, 0x01, direction, devAddr, fcnt32, 1);
  for (let i = 2; i <= blockCount; i++) {
    const offset = (i - 1) * BLOCK_BYTES;
    counterBlocks.copy(counterBlocks, offset, 0, BLOCK_BYTES - 1);
    counterBlocks[offset + BLOCK_BYTES - 1] = i;
  }
  const keystream = aesEncryptBlocks(key, counterBlocks);
  const out = Buffer.allocUnsafe(payload.length);
  for (let i = 0; i < payload.length; i++) out[i] = (payload[i] ?? 0) ^ (keystream[i] ?? 0);
  return out;
}

/** The key that protects FRMPayload: NwkSKey for MAC commands on FPort 0, AppSKey otherwise (§4.3.3). */
export function frmPayloadKey(fport: number | null, keys: { readonly nwkSKey: Uint8Array; readonly appSKey: Uint8Array }): Uint8Array {
  return fport === 0 ? keys.nwkSKey : keys.appSKey;
}

/** B0 (first byte 0x49) and A_i (0x01) share one layout (§4.3.3, §4.4). */
function writeCounterBlock(target: Buffer, first: number, direction: Direction, devAddr: string, fcnt32: number, last: number): void {
  if (!Number.isInteger(fcnt32) || fcnt32 < 0 || fcnt32 > MAX_FCNT32) {
    throw new RangeError(`frame counter must be an integer in 0..${MAX_FCNT32}, got ${fcnt32}`);
  }
  target[0] = first;
  target.fill(0, 1, 5);
  target[5] = direction === 'up' ? 0 : 1;
  wireFromHex(devAddr, 4, 'DevAddr').copy(target, 6);
  target.writeUInt32LE(fcnt32, 10);
  target[14] = 0;
  target[15] = last;
}

// ---- OTAA (§6.2) -----------------------------------------------------------------------------------------

/** AES-CMAC(AppKey, MHDR | JoinEUI | DevEUI | DevNonce)[0..3] (§6.2.4). `micInput` is JoinRequestFrame.micInput. */
export function joinRequestMic(appKey: Uint8Array, micInput: Uint8Array): Buffer {
  return aesCmac(appKey, micInput).subarray(0, MIC_BYTES);
}

export function verifyJoinRequestMic(appKey: Uint8Array, micInput: Uint8Array, mic: Uint8Array): boolean {
  return micEquals(joinRequestMic(appKey, micInput), mic);
}

/** AES-CMAC(AppKey, MHDR | JoinNonce | NetID | DevAddr | DLSettings | RxDelay | CFList)[0..3] over the plaintext (§6.2.5). */
export function joinAcceptMic(appKey: Uint8Array, plaintextMicInput: Uint8Array): Buffer {
  return aesCmac(appKey, plaintextMicInput).subarray(0, MIC_BYTES);
}

export interface SessionKeys {
  readonly nwkSKey: Buffer;
  readonly appSKey: Buffer;
}

/**
 * LoRaWAN 1.0.x session keys (§6.2.5): AES(AppKey, 0x01 | JoinNonce | NetID | DevNonce | pad) for the NwkSKey,
 * 0x02 for the AppSKey, every field little-endian. `netId` is 6 hex digits in display order.
 */
export function deriveSessionKeys(appKey: Uint8Array, joinNonce: number, netId: string, devNonce: number): SessionKeys {
  assertUint('JoinNonce', joinNonce, 0xff_ffff);
  assertUint('DevNonce', devNonce, 0xffff);
  const blocks = Buffer.alloc(2 * BLOCK_BYTES);
  const netIdWire = wireFromHex(netId, 3, 'NetID');
  for (const [index, prefix] of [0x01, 0x02].entries()) {
    const offset = index * BLOCK_BYTES;
    blocks[offset] = prefix;
    blocks.writeUIntLE(joinNonce, offset + 1, 3);
    netIdWire.copy(blocks, offset + 4);
    blocks.writeUInt16LE(devNonce, offset + 7);
  }
  const keys = aesEncryptBlocks(appKey, blocks);
  return { nwkSKey: Buffer.from(keys.subarray(0, BLOCK_BYTES)), appSKey: Buffer.from(keys.subarray(BLOCK_BYTES)) };
}

export interface JoinAcceptFields {
  /** AppNonce in 1.0.x: 24 bits. */
  readonly joinNonce: number;
  /** 6 hex digits, display order. */
  readonly netId: string;
  /** 8 hex digits, display order. */
  readonly devAddr: string;
  /** DLSettings bits 6..4 (0..7). */
  readonly rx1DrOffset: number;
  /** DLSettings bits 3..0 (0..15). */
  readonly rx2DataRate: number;
  /** The RxDelay field (0..15) as sent: seconds from uplink end to RX1, where 0 also means 1 s (§5.7). */
  readonly rxDelay: number;
}

/**
 * A join-accept as it goes on air (§6.2.5): the MIC is computed over the plaintext, then everything after MHDR
 * is AES-ECB *decrypted* with the AppKey, so the device needs only AES encryption to read it.
 */
export function encodeJoinAccept(appKey: Uint8Array, accept: JoinAcceptFields & { readonly cfList?: Uint8Array | undefined }): Buffer {
  assertUint('JoinNonce', accept.joinNonce, 0xff_ffff);
  assertUint('RX1DRoffset', accept.rx1DrOffset, 7);
  assertUint('RX2 data rate', accept.rx2DataRate, 15);
  assertUint('RxDelay', accept.rxDelay, 15);
  const cfList = accept.cfList;
  if (cfList !== undefined && cfList.length !== CF_LIST_BYTES) throw new TypeError(`CFList must be ${CF_LIST_BYTES} bytes, got ${cfList.length}`);
  const plaintext = Buffer.alloc(13 + (cfList === undefined ? 0 : CF_LIST_BYTES) + MIC_BYTES);
  plaintext[0] = MHDR_JOIN_ACCEPT;
  plaintext.writeUIntLE(accept.joinNonce, 1, 3);
  wireFromHex(accept.netId, 3, 'NetID').copy(plaintext, 4);
  wireFromHex(accept.devAddr, 4, 'DevAddr').copy(plaintext, 7);
  plaintext[11] = (accept.rx1DrOffset << 4) | accept.rx2DataRate;
  plaintext[12] = accept.rxDelay;
  if (cfList !== undefined) plaintext.set(cfList, 13);
  const micStart = plaintext.length - MIC_BYTES;
  joinAcceptMic(appKey, plaintext.subarray(0, micStart)).copy(plaintext, micStart);
  const decipher = createDecipheriv('aes-128-ecb', appKey, null);
  decipher.setAutoPadding(false);
  const body = Buffer.concat([decipher.update(plaintext.subarray(1)), decipher.final()]);
  return Buffer.concat([plaintext.subarray(0, 1), body]);
}

export type JoinAcceptRejectReason = 'not-join-accept' | 'length-mismatch' | 'mic-mismatch';

export type DecodeJoinAcceptResult =
  | ({ readonly ok: true; readonly cfList: Buffer | null; readonly mic: Buffer } & JoinAcceptFields)
  | { readonly ok: false; readonly reason: JoinAcceptRejectReason; readonly message: string };

/**
 * The plaintext PHYPayload (MHDR | fields | MIC) of an on-air join-accept, or null when its length cannot be a
 * join-accept. The MIC is not checked here; decodeJoinAccept does that.
 */
export function decryptJoinAccept(appKey: Uint8Array, phy: Uint8Array): Buffer | null {
  if (!(phy instanceof Uint8Array) || !JOIN_ACCEPT_BYTES.some((length) => length === phy.length)) return null;
  const body = aesEncryptBlocks(appKey, phy.subarray(1));
  return Buffer.concat([Buffer.from([phy[0] ?? 0]), body]);
}

/** Device side: decrypts an on-air join-accept and checks its MIC (§6.2.5). */
export function decodeJoinAccept(appKey: Uint8Array, phy: Uint8Array): DecodeJoinAcceptResult {
  if (!(phy instanceof Uint8Array) || phy.length === 0 || (phy[0] ?? 0) >>> 5 !== 1 || ((phy[0] ?? 0) & 0x03) !== 0) {
    const mhdr = phy instanceof Uint8Array && phy.length > 0 ? `MHDR 0x${(phy[0] ?? 0).toString(16).padStart(2, '0')}` : 'no MHDR';
    return { ok: false, reason: 'not-join-accept', message: `${mhdr}: not a LoRaWAN R1 join-accept (MType 1, Major 0)` };
  }
  const plaintext = decryptJoinAccept(appKey, phy);
  if (plaintext === null) {
    return { ok: false, reason: 'length-mismatch', message: `join-accept is ${phy.length} bytes; it must be 17, or 33 with a CFList (LoRaWAN 1.0.2 §6.2.5)` };
  }
  const micStart = plaintext.length - MIC_BYTES;
  const mic = plaintext.subarray(micStart);
  if (!micEquals(joinAcceptMic(appKey, plaintext.subarray(0, micStart)), mic)) {
    return { ok: false, reason: 'mic-mismatch', message: 'join-accept MIC does not match: wrong AppKey, or the frame is corrupt' };
  }
  const dlSettings = plaintext[11] ?? 0;
  return {
    ok: true,
    joinNonce: plaintext.readUIntLE(1, 3),
    netId: hexFromWire(plaintext, 4, 3),
    devAddr: hexFromWire(plaintext, 7, 4),
    // Bit 7 is RFU in 1.0.x (OptNeg in 1.1) and is ignored.
    rx1DrOffset: (dlSettings >>> 4) & 0x07,
    rx2DataRate: dlSettings & 0x0f,
    rxDelay: (plaintext[12] ?? 0) & 0x0f,
    cfList: micStart > 13 ? Buffer.from(plaintext.subarray(13, micStart)) : null,
    mic: Buffer.from(mic),
  };
}

// ---- Builders -------------------------------------------------------------------------------------------

export interface DataFrameToEncode {
  readonly mtype: DataMType;
  readonly devAddr: string;
  /** The full counter: its 16 low bits go on air, all 32 into the MIC and keystream. */
  readonly fcnt32: number;
  readonly adr?: boolean | undefined;
  readonly adrAckReq?: boolean | undefined;
  readonly ack?: boolean | undefined;
  readonly fPending?: boolean | undefined;
  /** MAC commands in clear, at most 15 bytes. */
  readonly fopts?: Uint8Array | undefined;
  /** null or absent: no FPort, so the payload must be empty. */
  readonly fport?: number | null | undefined;
  /** Plaintext FRMPayload; encrypted here with the key the FPort selects. */
  readonly payload?: Uint8Array | undefined;
  readonly nwkSKey: Uint8Array;
  readonly appSKey: Uint8Array;
}

/** Builds an on-air data frame: FRMPayload encrypted, MIC appended (§4). Throws on input no device could send. */
export function encodeDataFrame(frame: DataFrameToEncode): Buffer {
  const mtypeCode = MTYPES.indexOf(frame.mtype);
  if (mtypeCode < 2 || mtypeCode > 5) throw new TypeError(`encodeDataFrame needs a data MType, got ${String(frame.mtype)}`);
  const direction: Direction = mtypeCode === 2 || mtypeCode === 4 ? 'up' : 'down';
  const fopts = frame.fopts ?? new Uint8Array(0);
  const fport = frame.fport ?? null;
  const payload = frame.payload ?? new Uint8Array(0);
  if (fopts.length > 15) throw new TypeError(`FOpts is ${fopts.length} bytes; FOptsLen allows at most 15`);
  if (fport !== null) assertUint('FPort', fport, 255);
  if (fport === 0 && fopts.length > 0) throw new TypeError('FPort 0 carries MAC commands in FRMPayload, so FOpts must be empty (LoRaWAN 1.0.2 §4.3.1.6)');
  if (fport === null && payload.length > 0) throw new TypeError('a FRMPayload needs an FPort');
  assertUint('FCnt', frame.fcnt32, MAX_FCNT32);
  assertKey(frame.nwkSKey, 'NwkSKey');
  assertKey(frame.appSKey, 'AppSKey');

  const fportBytes = fport === null ? 0 : 1;
  const phy = Buffer.alloc(1 + 7 + fopts.length + fportBytes + payload.length + MIC_BYTES);
  if (phy.length > MAX_PHY_PAYLOAD_BYTES) throw new TypeError(`frame would be ${phy.length} bytes; a LoRa PHYPayload holds at most ${MAX_PHY_PAYLOAD_BYTES}`);
  phy[0] = mtypeCode << 5;
  wireFromHex(frame.devAddr, 4, 'DevAddr').copy(phy, 1);
  phy[5] =
    (frame.adr === true ? 0x80 : 0) |
    (frame.adrAckReq === true ? 0x40 : 0) |
    (frame.ack === true ? 0x20 : 0) |
    (frame.fPending === true ? 0x10 : 0) |
    fopts.length;
  phy.writeUInt16LE(frame.fcnt32 & 0xffff, 6);
  phy.set(fopts, 8);
  let offset = 8 + fopts.length;
  if (fport !== null) {
    phy[offset] = fport;
    offset += 1;
    cryptFrmPayload(frmPayloadKey(fport, frame), direction, frame.devAddr, frame.fcnt32, payload).copy(phy, offset);
  }
  const micStart = phy.length - MIC_BYTES;
  dataFrameMic(frame.nwkSKey, direction, frame.devAddr, frame.fcnt32, phy.subarray(0, micStart)).copy(phy, micStart);
  return phy;
}

export interface JoinRequestToEncode {
  readonly appKey: Uint8Array;
  /** 16 hex digits, display order. */
  readonly joinEui: string;
  readonly devEui: string;
  readonly devNonce: number;
}

/** Builds an on-air join-request (§6.2.4): MHDR 0x00 | JoinEUI | DevEUI | DevNonce | MIC. */
export function encodeJoinRequest(request: JoinRequestToEncode): Buffer {
  assertUint('DevNonce', request.devNonce, 0xffff);
  const phy = Buffer.alloc(23);
  phy[0] = MHDR_JOIN_REQUEST;
  wireFromHex(request.joinEui, 8, 'JoinEUI').copy(phy, 1);
  wireFromHex(request.devEui, 8, 'DevEUI').copy(phy, 9);
  phy.writeUInt16LE(request.devNonce, 17);
  joinRequestMic(request.appKey, phy.subarray(0, 19)).copy(phy, 19);
  return phy;
}

// ---- Helpers --------------------------------------------------------------------------------------------

function micEquals(expected: Buffer, received: Uint8Array): boolean {
  return received instanceof Uint8Array && received.length === expected.length && timingSafeEqual(expected, received);
}

/** Display-order hex (most significant byte first) -> wire (little-endian) bytes; throws TypeError on bad input. */
function wireFromHex(hex: string, byteLength: number, name: string): Buffer {
  if (typeof hex !== 'string' || hex.length !== byteLength * 2 || !/^[0-9a-fA-F]+$/.test(hex)) {
    throw new TypeError(`${name} must be ${byteLength * 2} hex digits, got ${JSON.stringify(hex)}`);
  }
  return Buffer.from(hex, 'hex').reverse();
}

function hexFromWire(bytes: Buffer, offset: number, length: number): string {
  return Buffer.from(bytes.subarray(offset, offset + length))
    .reverse()
    .toString('hex');
}

function assertUint(name: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) throw new TypeError(`${name} must be an integer in 0..${max}, got ${value}`);
}

function assertKey(key: Uint8Array, name: string): void {
  if (!(key instanceof Uint8Array) || key.length !== BLOCK_BYTES) {
    throw new TypeError(`${name} must be 16 bytes, got ${key instanceof Uint8Array ? `${key.length} bytes` : typeof key}`);
  }
}
