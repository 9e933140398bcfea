// The raw-frame record value keeps the decoder's output where LoRaWAN and TTN records keep it: the codec
// that ran and its error under `iotgw`, decoded_payload and decoded_payload_warnings beside the bytes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type PayloadCodec, RAW_CODEC } from '../../../src/codecs/payload-codec.ts';
import { buildRawRecord, RAW_FRAME_FPORT, type RawFrameValue } from '../../../src/ingress/serial-radio/raw-frame.ts';
import type { RadioFrame } from '../../../src/ingress/serial-radio/rn2483-radio.ts';

const FRAME: RadioFrame = { payload: Buffer.from('0a1b172c01', 'hex'), snr: 8, rssi: null, receivedAtMs: Date.UTC(2026, 0, 1, 12) };
const RULE = { keyOffset: 0, keyLength: 2, keyPrefix: 'node-' };

function valueWith(codec: PayloadCodec): RawFrameValue {
  const built = buildRawRecord(FRAME, RULE, {
    source: 'serial-radio',
    stream: 'radio',
    radioId: 'b827ebfffe000002',
    radio: { frequencyHz: 868_100_000, spreadingFactor: 7, bandwidthKhz: 125, codingRate: '4/5', syncWord: '34' },
    codec,
  });
  assert.ok(built.ok);
  return JSON.parse(Buffer.from(built.record.payload).toString('utf8')) as RawFrameValue;
}

test('raw codec: iotgw.codec says raw, nothing decoded', () => {
  const value = valueWith(RAW_CODEC);
  assert.deepEqual(value, {
    node_id: 'node-0a1b',
    radio: { id: 'b827ebfffe000002', frequency: 868_100_000, spreading_factor: 7, bandwidth: 125_000 },
    snr: 8,
    received_at: '2026-01-01T12:00:00.000Z',
    payload: Buffer.from('172c01', 'hex').toString('base64'),
    frame: Buffer.from('0a1b172c01', 'hex').toString('base64'),
    iotgw: { codec: 'raw' },
  });
});

test('a formatter with data, warnings and an error: decoded_payload, decoded_payload_warnings, iotgw.codec_error', () => {
  const seen: { bytes: string; fPort: number }[] = [];
  const formatter: PayloadCodec = {
    name: 'javascript:/etc/iotgw/node.js',
    decode: ({ bytes, fPort }) => {
      seen.push({ bytes: bytes.toString('hex'), fPort });
      return { data: { level: 44 }, warnings: ['battery low'], error: 'decodeUplink: field 3 unknown' };
    },
  };
  const value = valueWith(formatter);
  assert.deepEqual(seen, [{ bytes: '172c01', fPort: RAW_FRAME_FPORT }], 'the bytes after the node id, with fPort 1');
  assert.deepEqual(value.decoded_payload, { level: 44 });
  assert.deepEqual(value.decoded_payload_warnings, ['battery low']);
  assert.deepEqual(value.iotgw, { codec: 'javascript:/etc/iotgw/node.js', codec_error: 'decodeUplink: field 3 unknown' });
  assert.equal('codec' in value, false, 'no codec at the top level');
  assert.equal('codec_error' in value, false);
});

test('no warnings: no decoded_payload_warnings key', () => {
  const value = valueWith({ name: 'cayenne-lpp', decode: () => ({ data: { x: 1 }, warnings: [] }) });
  assert.equal('decoded_payload_warnings' in value, false);
  assert.deepEqual(value.iotgw, { codec: 'cayenne-lpp' });
});
