// The CFList a join-accept may carry (LoRaWAN 1.0.2 §6.2.5; layouts in RP002-1.0.3 §2.4.4 and §2.5.4): the
// gateway encodes it, the simulated device decodes it. 16 bytes, every field little-endian:
//
//   type 0 (frequencies): Freq0 (3) | Freq1 (3) | Freq2 (3) | Freq3 (3) | Freq4 (3) | CFListType = 0x00 (1)
//                         FreqN = frequency / 100 Hz; 0 = slot unused. The slots follow the default channels.
//   type 1 (masks):       ChMask0 (2) | ChMask1 (2) | ChMask2 (2) | ChMask3 (2) | ChMask4 (2) | RFU (5) | CFListType = 0x01 (1)
//                         bit i of ChMaskK turns channel 16K + i on; ChMask4 covers channels 64..71 (bits 8..15 RFU).

export const CF_LIST_BYTES = 16;
/** Frequencies in one type 0 CFList. */
export const CF_LIST_FREQUENCIES = 5;
/** Channels a type 1 CFList can address (US915/AU915: 64 x 125 kHz + 8 x 500 kHz). */
export const CF_LIST_MASK_CHANNELS = 72;
// Frequencies below 100 MHz are RFU (RP002-1.0.3 §2.4.4); 24 bits of 100 Hz reach 1677.7215 MHz.
const MIN_FREQUENCY_HZ = 100_000_000;
const MAX_FREQUENCY_HZ = 0xff_ffff * 100;

export type CfList =
  /** Five slots, 0 where unused. */
  | { readonly type: 0; readonly frequenciesHz: readonly number[] }
  /** The channels turned on, ascending. */
  | { readonly type: 1; readonly channelIndices: readonly number[] };

export type DecodeCfListResult = { readonly ok: true; readonly cfList: CfList } | { readonly ok: false; readonly message: string };

/** A type 0 CFList of up to five frequencies; throws TypeError for a list no device could take. */
export function encodeFrequencyCfList(frequenciesHz: readonly number[]): Buffer {
  if (frequenciesHz.length > CF_LIST_FREQUENCIES) {
    throw new TypeError(`a CFList holds at most ${CF_LIST_FREQUENCIES} frequencies, got ${frequenciesHz.length}`);
  }
  const bytes = Buffer.alloc(CF_LIST_BYTES);
  for (const [slot, frequencyHz] of frequenciesHz.entries()) {
    if (!Number.isInteger(frequencyHz) || frequencyHz % 100 !== 0 || frequencyHz < MIN_FREQUENCY_HZ || frequencyHz > MAX_FREQUENCY_HZ) {
      throw new TypeError(`CFList frequency ${frequencyHz} Hz must be a multiple of 100 Hz in ${MIN_FREQUENCY_HZ}..${MAX_FREQUENCY_HZ}`);
    }
    bytes.writeUIntLE(frequencyHz / 100, slot * 3, 3);
  }
  bytes[15] = 0;
  return bytes;
}

/** A type 1 CFList turning on exactly these channels (0..71); throws TypeError for any other index. */
export function encodeChannelMaskCfList(channelIndices: readonly number[]): Buffer {
  const bytes = Buffer.alloc(CF_LIST_BYTES);
  for (const index of channelIndices) {
    if (!Number.isInteger(index) || index < 0 || index >= CF_LIST_MASK_CHANNELS) {
      throw new TypeError(`CFList channel ${index} is not in 0..${CF_LIST_MASK_CHANNELS - 1}`);
    }
    const maskOffset = Math.floor(index / 16) * 2;
    bytes.writeUInt16LE(bytes.readUInt16LE(maskOffset) | (1 << (index % 16)), maskOffset);
  }
  bytes[15] = 1;
  return bytes;
}

/** Reads a CFList; never throws. */
export function decodeCfList(bytes: Uint8Array): DecodeCfListResult {
  if (!(bytes instanceof Uint8Array) || bytes.length !== CF_LIST_BYTES) {
    return { ok: false, message: `a CFList is ${CF_LIST_BYTES} bytes, got ${bytes instanceof Uint8Array ? bytes.length : typeof bytes}` };
  }
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const type = view[15];
  if (type === 0) {
    const frequenciesHz = Array.from({ length: CF_LIST_FREQUENCIES }, (_, slot) => view.readUIntLE(slot * 3, 3) * 100);
    return { ok: true, cfList: { type: 0, frequenciesHz } };
  }
  if (type === 1) {
    const channelIndices: number[] = [];
    for (let index = 0; index < CF_LIST_MASK_CHANNELS; index++) {
      if ((view.readUInt16LE(Math.floor(index / 16) * 2) >>> (index % 16)) & 1) channelIndices.push(index);
    }
    return { ok: true, cfList: { type: 1, channelIndices } };
  }
  return { ok: false, message: `CFListType ${type} is RFU (0: frequencies, 1: channel masks)` };
}
