// A point-to-point LoRa frame of a non-LoRaWAN sensor -> one record (pure). The node id is `keyLength`
// bytes at `keyOffset` of the frame; the record key is keyPrefix + their lower-case hex:
//   frame  0a 1b 17 2c 01     key_offset 0, key_length 2, key_prefix 'node-'  ->  key 'node-0a1b'
//   payload = the bytes after the node id (17 2c 01), what the codec decodes (with fPort 1); `frame`
//   keeps every byte as received, so a header before the node id is never lost.
// Frames shorter than key_offset + key_length are refused.
// The decoder's output sits where it does in LoRaWAN and TTN records (uplink-record.ts): decoded_payload and
// decoded_payload_warnings beside the bytes, and what TTS has no field for under `iotgw`: the codec that
// ran (always, 'raw' included) and its error.
import type { NewRecord, RecordSource } from '../../record/record.ts';
import { decodedFields, decodePayload, type PayloadCodec } from '../../codecs/payload-codec.ts';
import type { RadioFrame, RadioSettings } from './rn2483-radio.ts';

export interface RawFrameRule {
  readonly keyOffset: number;
  readonly keyLength: number;
  readonly keyPrefix: string;
}

export interface RawRecordContext {
  readonly source: RecordSource;
  readonly stream: string;
  readonly radioId: string;
  readonly radio: RadioSettings;
  readonly codec: PayloadCodec;
}

/** The record value (JSON). */
export interface RawFrameValue {
  readonly node_id: string;
  readonly radio: { readonly id: string; readonly frequency: number; readonly spreading_factor: number; readonly bandwidth: number };
  readonly snr: number | null;
  readonly rssi?: number;
  readonly received_at: string;
  /** base64 of the bytes after the node id. */
  readonly payload: string;
  /** base64 of the whole frame. */
  readonly frame: string;
  readonly decoded_payload?: Record<string, unknown>;
  readonly decoded_payload_warnings?: readonly string[];
  readonly iotgw: { readonly codec: string; readonly codec_error?: string };
}

export type RawRecordResult =
  | { readonly ok: true; readonly record: NewRecord }
  | { readonly ok: false; readonly reason: 'frame-too-short'; readonly message: string };

/** The fPort a raw frame is decoded with: it has none, and codecs skip port 0 (MAC commands). */
export const RAW_FRAME_FPORT = 1;

export function buildRawRecord(frame: RadioFrame, rule: RawFrameRule, context: RawRecordContext): RawRecordResult {
  const keyEnd = rule.keyOffset + rule.keyLength;
  if (frame.payload.length < keyEnd) {
    return {
      ok: false,
      reason: 'frame-too-short',
      message: `a ${frame.payload.length}-byte frame has no node id at bytes ${rule.keyOffset}..${keyEnd - 1} (serial.raw.key_offset/key_length); frame ${frame.payload.toString('hex').slice(0, 64)}`,
    };
  }
  const nodeId = `${rule.keyPrefix}${frame.payload.subarray(rule.keyOffset, keyEnd).toString('hex')}`;
  const payload = frame.payload.subarray(keyEnd);
  const receivedAt = new Date(frame.receivedAtMs);
  const decoded = decodePayload(context.codec, RAW_FRAME_FPORT, payload, receivedAt);
  const value: RawFrameValue = {
    node_id: nodeId,
    radio: {
      id: context.radioId,
      frequency: context.radio.frequencyHz,
      spreading_factor: context.radio.spreadingFactor,
      bandwidth: context.radio.bandwidthKhz * 1000,
    },
    snr: frame.snr,
    ...(frame.rssi === null ? {} : { rssi: frame.rssi }),
    received_at: receivedAt.toISOString(),
    payload: payload.toString('base64'),
    frame: frame.payload.toString('base64'),
    ...decodedFields(decoded),
    iotgw: { codec: context.codec.name, ...(decoded.error === undefined ? {} : { codec_error: decoded.error }) },
  };
  const meta: Record<string, string> = { 'radio-id': context.radioId, 'radio-frequency': String(context.radio.frequencyHz) };
  if (frame.snr !== null) meta.snr = String(frame.snr);
  if (frame.rssi !== null) meta.rssi = String(frame.rssi);
  return {
    ok: true,
    record: {
      key: nodeId,
      stream: context.stream,
      source: context.source,
      receivedAtMs: frame.receivedAtMs,
      eventTimeMs: frame.receivedAtMs,
      payload: Buffer.from(JSON.stringify(value)),
      meta,
    },
  };
}
