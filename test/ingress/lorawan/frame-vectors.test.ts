// Every LoRaWAN 1.0.x and Cayenne LPP vector of test/fixtures/lorawan/lorawan-vectors.json, one test per vector
// id: parse, MIC (with the full 32-bit counter), decryption, re-encoding to the same bytes, join MICs and
// join-accept decryption, session keys, the 32-bit counter table and LPP decoding.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { decodeCayenneLpp } from '../../../src/codecs/cayenne-lpp.ts';
import {
  cryptFrmPayload,
  decodeJoinAccept,
  decryptJoinAccept,
  deriveSessionKeys,
  encodeDataFrame,
  encodeJoinAccept,
  encodeJoinRequest,
  joinAcceptMic,
  verifyDataFrameMic,
  verifyJoinRequestMic,
} from '../../../src/ingress/lorawan/frame-crypto.ts';
import { fullFrameCounter } from '../../../src/ingress/lorawan/frame-counter.ts';
import { type DataFrame, MTYPES, type PhyFrame, parsePhyPayload } from '../../../src/ingress/lorawan/phy-payload.ts';

interface DataFrameVector {
  readonly id: string;
  readonly kind: 'lorawan_1_0_data_frame';
  readonly phy_payload_hex: string;
  readonly phy_payload_base64: string;
  readonly keys: { readonly nwk_s_key_hex: string; readonly app_s_key_hex: string | null } | null;
  readonly expected: {
    readonly mhdr_hex?: string;
    readonly mtype: number;
    readonly mtype_name: string;
    readonly major?: number;
    readonly dev_addr_hex: string;
    readonly fctrl_hex: string;
    readonly fctrl?: {
      readonly adr: boolean;
      readonly adr_ack_req_or_rfu: boolean;
      readonly ack: boolean;
      readonly bit4_classb_or_fpending: boolean;
      readonly fopts_len: number;
    };
    readonly fcnt_on_air: number;
    readonly fcnt_full_32bit?: number;
    readonly fopts_hex: string;
    readonly fport: number | null;
    readonly frm_payload_encrypted_hex: string;
    readonly frm_payload_plaintext_hex?: string | null;
    readonly mic_hex: string;
  };
}

interface JoinRequestVector {
  readonly id: string;
  readonly kind: 'lorawan_1_0_join_request';
  readonly phy_payload_hex: string;
  readonly keys: { readonly app_key_hex: string };
  readonly expected: {
    readonly mhdr_hex: string;
    readonly join_eui_app_eui_hex: string;
    readonly dev_eui_hex: string;
    readonly dev_nonce_wire_hex: string;
    readonly dev_nonce_uint16: number;
    readonly mic_hex: string;
  };
}

interface JoinAcceptVector {
  readonly id: string;
  readonly kind: 'lorawan_1_0_join_accept';
  readonly phy_payload_hex: string;
  readonly encrypted_on_air: boolean;
  readonly keys: { readonly app_key_hex: string };
  readonly expected: {
    readonly decrypted_phy_payload_hex: string;
    readonly join_nonce_uint24: number;
    readonly net_id_hex: string;
    readonly dev_addr_hex: string;
    readonly dl_settings_hex: string;
    readonly rx_delay: number;
    readonly cflist_hex: string;
    readonly mic_hex: string;
  };
}

interface SessionKeysVector {
  readonly id: string;
  readonly kind: 'lorawan_1_0_session_keys';
  readonly inputs: { readonly app_key_hex: string; readonly app_nonce_hex_be: string; readonly net_id_hex_be: string; readonly dev_nonce_hex_be: string };
  readonly expected: { readonly nwk_s_key_hex: string; readonly app_s_key_hex: string };
}

interface FrameCounterVector {
  readonly id: string;
  readonly kind: 'fcnt_32bit_reconstruction';
  readonly cases: readonly {
    readonly next_expected_full_fcnt: number;
    readonly on_air_fcnt16: number;
    readonly expected_full_fcnt: number;
    readonly comment: string;
  }[];
}

interface CayenneLppVector {
  readonly id: string;
  readonly kind: 'cayenne_lpp';
  readonly payload_hex: string;
  readonly payload_base64: string;
  readonly expected_tts_keys: Record<string, unknown>;
}

type Vector =
  | DataFrameVector
  | JoinRequestVector
  | JoinAcceptVector
  | SessionKeysVector
  | FrameCounterVector
  | CayenneLppVector
  | { readonly id: string; readonly kind: string };

const vectors = JSON.parse(readFileSync(new URL('../../fixtures/lorawan/lorawan-vectors.json', import.meta.url), 'utf8')) as readonly Vector[];

/** Kinds tested by the codecs of other ingress paths, not by the LoRaWAN frame layer. */
const KINDS_TESTED_ELSEWHERE = new Set(['semtech_udp_datagram', 'tts_v3_mqtt_message', 'serial_line_protocol', 'chirpstack_gateway_bridge_event']);

const hex = (value: string): Buffer => Buffer.from(value, 'hex');

function parsed(phyHex: string): PhyFrame {
  const result = parsePhyPayload(hex(phyHex));
  assert.ok(result.ok, result.ok ? '' : `parse failed: ${result.reason}: ${result.message}`);
  return result.frame;
}

function parsedData(phyHex: string): DataFrame {
  const frame = parsed(phyHex);
  assert.equal(frame.kind, 'data');
  return frame;
}

function isKind<K extends Vector['kind']>(kind: K) {
  return (vector: Vector): vector is Extract<Vector, { kind: K }> => vector.kind === kind;
}

test('the fixture holds the vectors this file expects, and every kind has an owner', () => {
  for (const vector of vectors) {
    const ours = [
      'lorawan_1_0_data_frame',
      'lorawan_1_0_join_request',
      'lorawan_1_0_join_accept',
      'lorawan_1_0_session_keys',
      'fcnt_32bit_reconstruction',
      'cayenne_lpp',
    ];
    assert.ok(ours.includes(vector.kind) || KINDS_TESTED_ELSEWHERE.has(vector.kind), `${vector.id}: kind ${vector.kind} is tested nowhere`);
  }
  assert.equal(vectors.filter(isKind('lorawan_1_0_data_frame')).length, 11);
  assert.equal(vectors.filter(isKind('cayenne_lpp')).length, 7);
});

for (const vector of vectors.filter(isKind('lorawan_1_0_data_frame'))) {
  test(`data frame ${vector.id}`, () => {
    const { expected } = vector;
    assert.equal(Buffer.from(vector.phy_payload_base64, 'base64').toString('hex'), vector.phy_payload_hex, 'base64 and hex agree');
    const frame = parsedData(vector.phy_payload_hex);
    const phy = hex(vector.phy_payload_hex);

    assert.equal(frame.mhdr, phy[0]);
    if (expected.mhdr_hex !== undefined) assert.equal(frame.mhdr, Number.parseInt(expected.mhdr_hex, 16));
    assert.equal(frame.mtype, expected.mtype_name);
    assert.equal(MTYPES.indexOf(frame.mtype), expected.mtype);
    assert.equal(frame.direction, expected.mtype === 2 || expected.mtype === 4 ? 'up' : 'down');
    assert.equal(frame.confirmed, expected.mtype === 4 || expected.mtype === 5);
    assert.equal(frame.devAddr, expected.dev_addr_hex);
    const fctrlByte = Number.parseInt(expected.fctrl_hex, 16);
    assert.equal(frame.fctrl.foptsLen, fctrlByte & 0x0f);
    if (expected.fctrl !== undefined) {
      assert.deepEqual(frame.fctrl, {
        adr: expected.fctrl.adr,
        adrAckReq: expected.fctrl.adr_ack_req_or_rfu,
        ack: expected.fctrl.ack,
        fPending: expected.fctrl.bit4_classb_or_fpending,
        foptsLen: expected.fctrl.fopts_len,
      });
    }
    assert.equal(frame.fcnt16, expected.fcnt_on_air);
    assert.equal(frame.fopts.toString('hex'), expected.fopts_hex);
    assert.equal(frame.fport, expected.fport);
    assert.equal(frame.frmPayload.toString('hex'), expected.frm_payload_encrypted_hex);
    assert.equal(frame.mic.toString('hex'), expected.mic_hex);
    assert.deepEqual(frame.micInput, phy.subarray(0, phy.length - 4));

    if (vector.keys === null) return; // parse-only vector: keys were never published
    const fcnt32 = expected.fcnt_full_32bit ?? expected.fcnt_on_air;
    const nwkSKey = hex(vector.keys.nwk_s_key_hex);
    assert.ok(verifyDataFrameMic(nwkSKey, frame.direction, frame.devAddr, fcnt32, frame.micInput, frame.mic), 'MIC verifies with the full counter');
    if (fcnt32 !== frame.fcnt16) {
      // syn-fcnt-rollover: B0 carries all 32 bits, so the 16 bits on air alone give another MIC.
      assert.equal(verifyDataFrameMic(nwkSKey, frame.direction, frame.devAddr, frame.fcnt16, frame.micInput, frame.mic), false, 'MIC fails with 16 bits');
    }

    const plaintextHex = expected.frm_payload_plaintext_hex;
    if (plaintextHex === null || plaintextHex === undefined) return; // AppSKey not published: MIC-only vector
    // FPort 0 carries MAC commands under the NwkSKey; lp-fport0-mic publishes no AppSKey at all.
    const appSKey = vector.keys.app_s_key_hex === null ? Buffer.alloc(16, 0xee) : hex(vector.keys.app_s_key_hex);
    const key = frame.fport === 0 ? nwkSKey : appSKey;
    assert.equal(cryptFrmPayload(key, frame.direction, frame.devAddr, fcnt32, frame.frmPayload).toString('hex'), plaintextHex);

    const reencoded = encodeDataFrame({
      mtype: frame.mtype,
      devAddr: frame.devAddr,
      fcnt32,
      adr: frame.fctrl.adr,
      adrAckReq: frame.fctrl.adrAckReq,
      ack: frame.fctrl.ack,
      fPending: frame.fctrl.fPending,
      fopts: frame.fopts,
      fport: frame.fport,
      payload: hex(plaintextHex),
      nwkSKey,
      appSKey,
    });
    assert.equal(reencoded.toString('hex'), vector.phy_payload_hex, 're-encoding gives the same bytes');
  });
}

for (const vector of vectors.filter(isKind('lorawan_1_0_join_request'))) {
  test(`join-request ${vector.id}`, () => {
    const { expected } = vector;
    const frame = parsed(vector.phy_payload_hex);
    assert.equal(frame.kind, 'join-request');
    assert.equal(frame.mhdr, Number.parseInt(expected.mhdr_hex, 16));
    assert.equal(frame.joinEui, expected.join_eui_app_eui_hex);
    assert.equal(frame.devEui, expected.dev_eui_hex);
    assert.equal(frame.devNonce, expected.dev_nonce_uint16);
    assert.equal(hex(expected.dev_nonce_wire_hex).readUInt16LE(0), expected.dev_nonce_uint16, 'DevNonce is little-endian on air');
    assert.equal(frame.mic.toString('hex'), expected.mic_hex);

    const appKey = hex(vector.keys.app_key_hex);
    assert.ok(verifyJoinRequestMic(appKey, frame.micInput, frame.mic));
    const reencoded = encodeJoinRequest({ appKey, joinEui: frame.joinEui, devEui: frame.devEui, devNonce: frame.devNonce });
    assert.equal(reencoded.toString('hex'), vector.phy_payload_hex);
  });
}

for (const vector of vectors.filter(isKind('lorawan_1_0_join_accept'))) {
  test(`join-accept ${vector.id}`, () => {
    const { expected } = vector;
    const appKey = hex(vector.keys.app_key_hex);
    const dlSettings = Number.parseInt(expected.dl_settings_hex, 16);
    const fields = {
      joinNonce: expected.join_nonce_uint24,
      netId: expected.net_id_hex,
      devAddr: expected.dev_addr_hex,
      rx1DrOffset: (dlSettings >>> 4) & 0x07,
      rx2DataRate: dlSettings & 0x0f,
      rxDelay: expected.rx_delay,
    };
    const plaintext = hex(expected.decrypted_phy_payload_hex);
    assert.equal(joinAcceptMic(appKey, plaintext.subarray(0, plaintext.length - 4)).toString('hex'), expected.mic_hex, 'MIC over the plaintext');

    // lp-ja-plain is published decrypted; its on-air form is what the server encoder produces.
    const onAir = vector.encrypted_on_air ? hex(vector.phy_payload_hex) : encodeJoinAccept(appKey, fields);
    const frame = parsed(onAir.toString('hex'));
    assert.equal(frame.kind, 'join-accept');
    assert.deepEqual(frame.encrypted, onAir.subarray(1));

    assert.deepEqual(decryptJoinAccept(appKey, onAir), plaintext);
    const decoded = decodeJoinAccept(appKey, onAir);
    assert.ok(decoded.ok, decoded.ok ? '' : decoded.message);
    assert.deepEqual(decoded, { ok: true, ...fields, cfList: expected.cflist_hex === '' ? null : hex(expected.cflist_hex), mic: hex(expected.mic_hex) });

    assert.equal(encodeJoinAccept(appKey, fields).toString('hex'), onAir.toString('hex'), 're-encoding gives the same bytes');
  });
}

for (const vector of vectors.filter(isKind('lorawan_1_0_session_keys'))) {
  test(`session keys ${vector.id}`, () => {
    const { inputs, expected } = vector;
    const keys = deriveSessionKeys(
      hex(inputs.app_key_hex),
      Number.parseInt(inputs.app_nonce_hex_be, 16),
      inputs.net_id_hex_be,
      Number.parseInt(inputs.dev_nonce_hex_be, 16),
    );
    assert.equal(keys.nwkSKey.toString('hex'), expected.nwk_s_key_hex);
    assert.equal(keys.appSKey.toString('hex'), expected.app_s_key_hex);
  });
}

test('lp-jr-2, lp-ja-plain and lp-session-keys-1-0 form one OTAA exchange', () => {
  const byId = (id: string) => vectors.find((vector) => vector.id === id);
  const request = byId('lp-jr-2') as JoinRequestVector;
  const accept = byId('lp-ja-plain') as JoinAcceptVector;
  const sessionKeys = byId('lp-session-keys-1-0') as SessionKeysVector;
  const frame = parsed(request.phy_payload_hex);
  assert.equal(frame.kind, 'join-request');
  const appKey = hex(request.keys.app_key_hex);
  const keys = deriveSessionKeys(appKey, accept.expected.join_nonce_uint24, accept.expected.net_id_hex, frame.devNonce);
  assert.equal(keys.nwkSKey.toString('hex'), sessionKeys.expected.nwk_s_key_hex);
  assert.equal(keys.appSKey.toString('hex'), sessionKeys.expected.app_s_key_hex);
});

for (const vector of vectors.filter(isKind('fcnt_32bit_reconstruction'))) {
  test(`32-bit frame counter ${vector.id}`, async (t) => {
    for (const row of vector.cases) {
      await t.test(`next ${row.next_expected_full_fcnt}, on air ${row.on_air_fcnt16}: ${row.comment}`, () => {
        assert.equal(fullFrameCounter(row.next_expected_full_fcnt, row.on_air_fcnt16), row.expected_full_fcnt);
      });
    }
  });
}

for (const vector of vectors.filter(isKind('cayenne_lpp'))) {
  test(`Cayenne LPP ${vector.id}`, () => {
    assert.equal(Buffer.from(vector.payload_base64, 'base64').toString('hex'), vector.payload_hex, 'base64 and hex agree');
    assert.deepEqual(decodeCayenneLpp(hex(vector.payload_hex)), { ok: true, data: vector.expected_tts_keys });
  });
}

test('syn-fcnt-rollover carries Cayenne LPP lpp-two-temps', () => {
  const vector = vectors.find((candidate) => candidate.id === 'syn-fcnt-rollover') as DataFrameVector;
  const frame = parsedData(vector.phy_payload_hex);
  const nextExpected = 65_547; // the session last accepted 65546
  const fcnt32 = fullFrameCounter(nextExpected, frame.fcnt16);
  assert.equal(fcnt32, 65_547);
  const appSKey = hex(vector.keys?.app_s_key_hex ?? '');
  const plaintext = cryptFrmPayload(appSKey, frame.direction, frame.devAddr, fcnt32, frame.frmPayload);
  assert.deepEqual(decodeCayenneLpp(plaintext), { ok: true, data: { temperature_3: 27.2, temperature_5: 25.5 } });
});
