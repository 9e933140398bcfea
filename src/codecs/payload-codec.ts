// Payload codecs: turn a device's application bytes into `decoded_payload`. Raw (none), Cayenne LPP, or a
// JavaScript payload formatter in the TTN/ChirpStack `decodeUplink(input)` form. A codec failure never
// drops the uplink: the record goes on with the bytes and the error noted. A formatter that also defines TTN's
// `encodeDownlink(input)` turns a downlink's data into its bytes the other way (PayloadCodec.encodeDownlink).
import { decodeCayenneLpp } from './cayenne-lpp.ts';

export interface DecodedPayload {
  readonly data?: Record<string, unknown>;
  readonly error?: string;
  readonly warnings?: readonly string[];
}

/** What a codec is given: the TTN `decodeUplink` input. */
export interface UplinkInput {
  readonly bytes: Buffer;
  readonly fPort: number;
  readonly recvTime: Date;
}

/**
 * What encodeDownlink gives: the FRMPayload (0..242 bytes) and its FPort, or why there is none. fport is the
 * formatter's fPort when it names one, else the caller's; null when neither did (TTS then sends on FPort 1).
 */
export type EncodedDownlink =
  | { readonly ok: true; readonly bytes: Buffer; readonly fport: number | null; readonly warnings: readonly string[] }
  | { readonly ok: false; readonly error: string };

export interface PayloadCodec {
  /** 'raw', 'cayenne-lpp', or 'javascript:{file}': noted on every record as iotgw.codec. */
  readonly name: string;
  /** Never throws: failures come back as `error`. */
  decode(input: UplinkInput): DecodedPayload;
  /**
   * The TTN `encodeDownlink({ data, fPort })` of a javascript formatter whose file defines one; no other codec
   * has it. data is the downlink's decoded payload (a JSON object); fport the FPort asked for (1..223) or null.
   * Never throws: a bad input, a throw, a timeout, a non-empty errors list or bytes that are not 0..242 integers
   * 0..255 come back as `error`.
   */
  encodeDownlink?(data: unknown, fport: number | null): EncodedDownlink;
}

/** A codec as configuration names it (lorawan.devices[].codec, ttn.codec, serial.raw.codec). */
export type CodecName = 'raw' | 'cayenne-lpp' | 'javascript';

export interface CodecChoice {
  readonly codec: CodecName;
  /** Required for 'javascript': the formatter file defining decodeUplink(input) (config: formatter_file). */
  readonly formatterFile?: string | undefined;
}

export const RAW_CODEC: PayloadCodec = { name: 'raw', decode: () => ({}) };

export const CAYENNE_LPP_CODEC: PayloadCodec = {
  name: 'cayenne-lpp',
  decode({ bytes }) {
    const result = decodeCayenneLpp(bytes);
    return result.ok ? { data: result.data } : { data: result.data, error: `cayenne-lpp: ${result.error}` };
  },
};

/** Where a decode result goes in a record, as TTS places it: decoded_payload and decoded_payload_warnings. */
export function decodedFields(decoded: DecodedPayload): { decoded_payload?: Record<string, unknown>; decoded_payload_warnings?: readonly string[] } {
  return {
    ...(decoded.data === undefined ? {} : { decoded_payload: decoded.data }),
    ...(decoded.warnings === undefined || decoded.warnings.length === 0 ? {} : { decoded_payload_warnings: decoded.warnings }),
  };
}

export function decodePayload(codec: PayloadCodec, fport: number | null, bytes: Buffer, recvTime: Date): DecodedPayload {
  // FPort 0 carries MAC commands and a frame without FPort carries nothing: no application payload to decode.
  if (fport === null || fport === 0) return {};
  return codec.decode({ bytes, fPort: fport, recvTime });
}

/** data -> FRMPayload through the codec's encodeDownlink; a codec without one cannot encode, and says so. */
export function encodeDownlinkPayload(codec: PayloadCodec, data: unknown, fport: number | null): EncodedDownlink {
  if (codec.encodeDownlink === undefined) {
    return {
      ok: false,
      error: `codec ${codec.name} cannot encode downlinks: send the bytes themselves, or use a javascript formatter that defines encodeDownlink(input)`,
    };
  }
  return codec.encodeDownlink(data, fport);
}

/** The codecs that need no file; 'javascript' is compiled by the formatter cache (javascript-formatter.ts). */
export function builtinCodec(name: Exclude<CodecName, 'javascript'>): PayloadCodec {
  return name === 'cayenne-lpp' ? CAYENNE_LPP_CODEC : RAW_CODEC;
}
