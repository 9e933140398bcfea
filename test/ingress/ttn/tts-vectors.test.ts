// Golden tests against the published The Things Stack v3 MQTT examples (test/fixtures/lorawan, kind
// tts_v3_mqtt_message): each payload parses into exactly the fields the gateway keys, orders and gap-checks
// by, including what the examples leave out (f_cnt in the MQTT docs, f_port in the data-formats docs, the
// whole end_device_ids in the Cayenne LPP fragment); the LPP fragment's bytes decode locally to TTS's values;
// and the two complete messages, published on their own topics to a TTS stand-in, become records keyed by
// the DevEUI in lower case, carrying the message as TTS sent it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { type TestContext, test } from 'node:test';
import { startTtsStandIn } from '../../../firmware-sim/tts-stand-in.ts';
import { decodeCayenneLpp } from '../../../src/codecs/cayenne-lpp.ts';
import { CAYENNE_LPP_CODEC, decodePayload, type PayloadCodec, RAW_CODEC } from '../../../src/codecs/payload-codec.ts';
import { createMetrics } from '../../../src/core/metrics.ts';
import type { Accept } from '../../../src/ingress/ingress.ts';
import { createTtnIngress } from '../../../src/ingress/ttn/ttn-ingress.ts';
import { parseTtsUplink, type TtsUplink } from '../../../src/ingress/ttn/tts-uplink.ts';
import type { NewRecord } from '../../../src/record/record.ts';
import { captureLog } from '../../helpers/capture-log.ts';
import { waitFor } from '../../helpers/wait-for.ts';

interface TtsVector {
  readonly id: string;
  readonly kind: string;
  readonly description: string;
  readonly topic?: string;
  readonly mqtt_username?: string;
  readonly payload?: Record<string, unknown>;
  readonly payload_fragment?: { readonly uplink_message: Record<string, unknown> };
  readonly expected: Record<string, unknown>;
}

const MAX_MESSAGE_BYTES = 256 * 1024;
const vectors = JSON.parse(readFileSync(new URL('../../fixtures/lorawan/lorawan-vectors.json', import.meta.url), 'utf8')) as TtsVector[];

function vector(id: string): TtsVector {
  const found = vectors.find((candidate) => candidate.id === id);
  assert.ok(found !== undefined, `no vector '${id}' in test/fixtures/lorawan/lorawan-vectors.json`);
  assert.equal(found.kind, 'tts_v3_mqtt_message');
  return found;
}

/** The vector's payload as the MQTT message body: JSON bytes. */
function bytesOf(message: unknown): Buffer {
  return Buffer.from(JSON.stringify(message));
}

function parsed(message: unknown): TtsUplink {
  const result = parseTtsUplink(bytesOf(message), MAX_MESSAGE_BYTES);
  assert.ok(result.ok, JSON.stringify(result));
  return result.value;
}

const docUplink = vector('tts-mqtt-uplink-doc');
const formatsUplink = vector('tts-mqtt-uplink-formats-doc');
const lppFragment = vector('tts-lpp-uplink-doc');

test('the fixture holds these three TTS messages and no other, so a new one cannot go untested', () => {
  assert.deepEqual(
    vectors
      .filter((candidate) => candidate.kind === 'tts_v3_mqtt_message')
      .map((candidate) => candidate.id)
      .sort(),
    ['tts-lpp-uplink-doc', 'tts-mqtt-uplink-doc', 'tts-mqtt-uplink-formats-doc'],
  );
});

test('tts-mqtt-uplink-doc (MQTT docs): f_cnt absent reads as 0, no received_at at all, identified by its correlation ids', () => {
  const message = docUplink.payload as Record<string, unknown>;
  const uplink = parsed(message);
  assert.deepEqual(
    { ...uplink, frmPayload: uplink.frmPayload.toString('utf8'), message: undefined },
    {
      deviceId: 'dev1',
      devEui: '4200000000000000',
      applicationId: 'app1',
      sessionKeyId: 'AWiZpAyXrAfEkUNkBljRoA==',
      fCnt: 0,
      fPort: 15,
      frmPayload: 'Temperature = 0.0',
      decodedPayload: undefined,
      receivedAtMs: null,
      uplinkId: [
        'gs:conn:01D2CSNX7FJVKQPCVG612QF1TX',
        'gs:uplink:01D2CV8HF62ME0D7MZWE38HHH8',
        'ns:uplink:01D2CV8HF6FYJHKZ45YY1DB3MR',
        'rpc:/ttn.lorawan.v3.GsNs/HandleUplink:01D2CV8HF6XR7ZFVK768PDG3J4',
        'as:up:01D2CV8HNGJ57G25BW0FCZNY07',
      ].join(' '),
      message: undefined,
    },
  );
  const { expected } = docUplink;
  assert.equal(uplink.devEui, String(expected.dev_eui).toLowerCase());
  assert.equal(uplink.fCnt, expected.f_cnt);
  assert.equal(uplink.fPort, expected.f_port);
  assert.equal(uplink.frmPayload.toString('utf8'), expected.frm_payload_ascii);
  // Not read by the parser, kept as sent for the record.
  assert.deepEqual(uplink.message, message);
  const ids = uplink.message.end_device_ids as { dev_addr: string };
  const settings = (uplink.message.uplink_message as { settings: { frequency: string } }).settings;
  assert.equal(ids.dev_addr, expected.dev_addr);
  assert.equal(Number(settings.frequency), expected.frequency_hz);
});

test('tts-mqtt-uplink-formats-doc (data formats docs): DevEUI lower-cased, f_port absent reads as 0, the network time of uplink_message wins', () => {
  const message = formatsUplink.payload as Record<string, unknown>;
  const uplink = parsed(message);
  assert.deepEqual(
    { ...uplink, frmPayload: uplink.frmPayload.toString('hex'), message: undefined },
    {
      deviceId: 'dev1',
      devEui: '0004a30b001c0530',
      applicationId: 'app1',
      sessionKeyId: 'AXA50tHUGUucuzS/bCGMNw==',
      fCnt: 1,
      // The example omits f_port although frm_payload is set; proto3 JSON omits a 0, so it reads as port 0.
      fPort: 0,
      frmPayload: '8241de',
      decodedPayload: { temperature: 1, luminosity: 0.64 },
      // uplink_message.received_at (15:15:45.789585559), not the message's (15:15:46.014...); nanoseconds cut to ms.
      receivedAtMs: Date.UTC(2020, 1, 12, 15, 15, 45, 789),
      uplinkId: '2020-02-12T15:15:45.789585559Z',
      message: undefined,
    },
  );
  const { expected } = formatsUplink;
  assert.equal(uplink.frmPayload.toString('hex'), expected.frm_payload_hex);
  assert.equal(uplink.fCnt, expected.f_cnt);
  assert.deepEqual(uplink.message, message);
  const consumedAirtime = (uplink.message.uplink_message as { consumed_airtime: string }).consumed_airtime;
  assert.equal(Number.parseFloat(consumedAirtime), expected.consumed_airtime_seconds);
  // With f_port read as 0 (MAC commands), a local codec would not run on these bytes: TTS's decoded_payload is all there is.
  assert.deepEqual(decodePayload(CAYENNE_LPP_CODEC, uplink.fPort, uplink.frmPayload, new Date(0)), {});
});

test('tts-lpp-uplink-doc: the fragment alone is refused (no end_device_ids); inside a message it parses, and its bytes decode locally to TTS values', () => {
  const fragment = lppFragment.payload_fragment as { uplink_message: Record<string, unknown> };
  const alone = parseTtsUplink(bytesOf(fragment), MAX_MESSAGE_BYTES);
  assert.deepEqual(alone, { ok: false, reason: 'missing-device-id', message: 'end_device_ids is missing: not a TTS v3 application message' });

  // The fragment has no ids of its own: it is put under the MQTT docs example's.
  const uplink = parsed({ end_device_ids: (docUplink.payload as Record<string, unknown>).end_device_ids, ...fragment });
  assert.equal(uplink.devEui, '4200000000000000');
  assert.equal(uplink.fPort, 8);
  assert.equal(uplink.fCnt, 113);
  assert.equal(uplink.sessionKeyId, null);
  assert.equal(uplink.frmPayload.toString('hex'), lppFragment.expected.frm_payload_hex);
  const ttsDecoded = fragment.uplink_message.decoded_payload as Record<string, number>;
  assert.deepEqual(uplink.decodedPayload, ttsDecoded);

  const local = decodeCayenneLpp(uplink.frmPayload);
  assert.deepEqual(local, { ok: true, data: { temperature_3: 27.2, temperature_5: 25.5 } });
  // Same keys as TTS; TTS's formatter went through float32 (27.200000762939453), ours keeps the decimal value.
  assert.deepEqual(Object.keys(local.data), Object.keys(ttsDecoded));
  for (const [key, value] of Object.entries(local.data)) assert.equal(Math.fround(value as number), ttsDecoded[key], key);
  // The codec the TTN ingress runs on uplinks TTS did not decode gives the same values.
  assert.deepEqual(decodePayload(CAYENNE_LPP_CODEC, uplink.fPort, uplink.frmPayload, new Date(0)), { data: local.data });
});

interface Ingress {
  readonly records: NewRecord[];
  readonly publish: (topic: string, message: unknown) => Promise<void>;
}

/** A TTS stand-in for app1@tenant1 (the vectors' application) and the real TTN ingress subscribed to it. */
async function ttnIngress(t: TestContext, codec: PayloadCodec): Promise<Ingress> {
  const standIn = await startTtsStandIn({ applicationId: 'app1', tenantId: 'tenant1' });
  t.after(() => standIn.stop());
  const records: NewRecord[] = [];
  const accept: Accept = async (batch) => {
    records.push(...batch);
    return { ok: true, seqs: batch.map((_, index) => index) };
  };
  const ingress = createTtnIngress(
    {
      url: standIn.url,
      username: standIn.username,
      password: standIn.apiKey,
      caFile: null,
      clientId: 'iotgw-vectors',
      uplinkTopics: [`v3/${standIn.username}/devices/+/up`],
      stream: 'uplink',
      eventStreams: new Map(),
      codec,
      reconnectInitialMs: 1_000,
      reconnectMaxMs: 4_000,
      maxMessageBytes: MAX_MESSAGE_BYTES,
      rejectLogIntervalMs: 60_000,
    },
    { accept, loadState: async () => new Map(), log: captureLog('error').log, metrics: createMetrics({ processMetrics: false }) },
  );
  t.after(() => ingress.stop());
  await ingress.start();
  await standIn.waitForSubscriber();
  return {
    records,
    async publish(topic, message) {
      assert.equal(await standIn.publish(topic, bytesOf(message)), 1, `one subscriber for ${topic}`);
    },
  };
}

const payloadOf = (record: NewRecord): unknown => JSON.parse(Buffer.from(record.payload).toString('utf8'));

test('both complete messages, published on their topics, become records keyed by lower-case DevEUI with the message as sent', async (t) => {
  assert.equal(docUplink.mqtt_username, 'app1@tenant1');
  const ingress = await ttnIngress(t, RAW_CODEC);
  const before = Date.now();
  for (const published of [docUplink, formatsUplink]) await ingress.publish(published.topic as string, published.payload);
  await waitFor(() => ingress.records.length === 2, 'two records');
  const after = Date.now();

  assert.deepEqual(
    ingress.records.map((record) => ({ key: record.key, stream: record.stream, source: record.source, meta: record.meta })),
    [
      {
        key: '4200000000000000',
        stream: 'uplink',
        source: 'ttn',
        meta: { 'ttn-uplink': '4200000000000000:AWiZpAyXrAfEkUNkBljRoA==:0', 'ttn-application': 'app1@tenant1' },
      },
      {
        key: '0004a30b001c0530',
        stream: 'uplink',
        source: 'ttn',
        meta: { 'ttn-uplink': '0004a30b001c0530:AXA50tHUGUucuzS/bCGMNw==:1', 'ttn-application': 'app1@tenant1' },
      },
    ],
  );
  assert.deepEqual(payloadOf(ingress.records[0] as NewRecord), { ...docUplink.payload, iotgw: { f_cnt_gap: 0, application: 'app1@tenant1', codec: 'raw' } });
  assert.deepEqual(payloadOf(ingress.records[1] as NewRecord), {
    ...formatsUplink.payload,
    iotgw: { f_cnt_gap: 0, application: 'app1@tenant1', codec: 'tts' },
  });
  for (const record of ingress.records) {
    // The first has no network time; the second's (2020) is too far from the gateway clock to be trusted.
    assert.ok(record.receivedAtMs >= before && record.receivedAtMs <= after);
    assert.equal(record.eventTimeMs, record.receivedAtMs);
  }
});

test('the LPP fragment without TTS decoding, through an ingress running cayenne-lpp, gets the same decoded_payload keys', async (t) => {
  const fragment = lppFragment.payload_fragment as { uplink_message: Record<string, unknown> };
  const { decoded_payload: _ttsDecoded, ...undecoded } = fragment.uplink_message;
  const message = { end_device_ids: (docUplink.payload as Record<string, unknown>).end_device_ids, uplink_message: undecoded };
  const ingress = await ttnIngress(t, CAYENNE_LPP_CODEC);
  await ingress.publish(docUplink.topic as string, message);
  await waitFor(() => ingress.records.length === 1, 'the record');
  assert.deepEqual(payloadOf(ingress.records[0] as NewRecord), {
    ...message,
    uplink_message: { ...undecoded, decoded_payload: { temperature_3: 27.2, temperature_5: 25.5 } },
    iotgw: { f_cnt_gap: 0, application: 'app1@tenant1', codec: 'cayenne-lpp' },
  });
});
