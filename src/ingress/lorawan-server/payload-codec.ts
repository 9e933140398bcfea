// Per-device payload codecs: turn a decrypted FRMPayload into `decoded_payload`. A codec failure never
// drops the uplink: the record goes on with the bytes and the error noted.
import { decodeCayenneLpp } from '../lorawan/cayenne-lpp.ts';
import type { PayloadCodecName } from './device-sessions.ts';

export interface DecodedPayload {
  readonly data?: Record<string, unknown>;
  readonly error?: string;
  readonly warnings?: readonly string[];
}

export function decodePayload(codec: PayloadCodecName, fport: number | null, bytes: Buffer): DecodedPayload {
  // FPort 0 carries MAC commands and a frame without FPort carries nothing: no application payload to decode.
  if (codec === 'raw' || fport === null || fport === 0) return {};
  const result = decodeCayenneLpp(bytes);
  return result.ok ? { data: result.data } : { data: result.data, error: `cayenne-lpp: ${result.error}` };
}
