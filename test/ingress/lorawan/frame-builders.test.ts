// Builders against the parser: what the simulator encodes the gateway must parse, verify and decrypt, and
// what the gateway encodes (join-accepts, ACK downlinks) the simulator must read back.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  cryptFrmPayload,
  type DataFrameToEncode,
  decodeJoinAccept,
  deriveSessionKeys,
  encodeDataFrame,
  encodeJoinAccept,
  encodeJoinRequest,
  verifyDataFrameMic,
  verifyJoinRequestMic,
} from '../../../src/ingress/lorawan/frame-crypto.ts';
import { fullFrameCounter } from '../../../src/ingress/lorawan/frame-counter.ts';
import { type DataFrame, type DataMType, type PhyFrame, parsePhyPayload } from '../../../src/ingress/lorawan/phy-payload.ts';

const NWK_S_KEY = Buffer.from('0102030405060708090a0b0c0d0e0f10', 'hex');
const APP_S_KEY = Buffer.from('100f0e0d0c0b0a090807060504030201', 'hex');
const APP_KEY = Buffer.from('2b7e151628aed2a6abf7158809cf4f3c', 'hex');

function parse(bytes: Uint8Array): PhyFrame {
  const result = parsePhyPayload(bytes);
  assert.ok(result.ok, result.ok ? '' : `${result.reason}: ${result.message}`);
  return result.frame;
}

function parseData(bytes: Uint8Array): DataFrame {
  const frame = parse(bytes);
  assert.equal(frame.kind, 'data');
  return frame;
}

const MTYPES: readonly DataMType[] = ['UnconfirmedDataUp', 'ConfirmedDataUp', 'UnconfirmedDataDown', 'ConfirmedDataDown'];

for (const mtype of MTYPES) {
  test(`${mtype}: encode -> parse -> verify MIC -> decrypt`, () => {
    const direction = mtype.endsWith('Up') ? 'up' : 'down';
    const payload = Buffer.from('03670110056700ff', 'hex');
    const cases: { fport: number | null; fopts: Buffer; payload: Buffer; fcnt32: number }[] = [
      { fport: 1, fopts: Buffer.alloc(0), payload, fcnt32: 7 },
      { fport: 10, fopts: Buffer.from('067307', 'hex'), payload: Buffer.alloc(40, 0xab), fcnt32: 0x0001_000b },
      { fport: 224, fopts: Buffer.alloc(15, 2), payload: Buffer.alloc(0), fcnt32: 0xffff_ffff },
      { fport: null, fopts: Buffer.from('02', 'hex'), payload: Buffer.alloc(0), fcnt32: 65_536 },
    ];
    for (const { fport, fopts, payload: plaintext, fcnt32 } of cases) {
      const bytes = encodeDataFrame({
        mtype,
        devAddr: '26011BDA',
        fcnt32,
        adr: true,
        ack: true,
        fPending: true,
        fopts,
        fport,
        payload: plaintext,
        nwkSKey: NWK_S_KEY,
        appSKey: APP_S_KEY,
      });
      const frame = parseData(bytes);
      const label = `FPort ${fport}, FCnt ${fcnt32}`;
      assert.equal(frame.mtype, mtype, label);
      assert.equal(frame.direction, direction, label);
      assert.equal(frame.confirmed, mtype.startsWith('Confirmed'), label);
      assert.equal(frame.devAddr, '26011bda', label);
      assert.deepEqual(frame.fctrl, { adr: true, adrAckReq: false, ack: true, fPending: true, foptsLen: fopts.length }, label);
      assert.equal(frame.fcnt16, fcnt32 & 0xffff, label);
      assert.deepEqual(frame.fopts, fopts, label);
      assert.equal(frame.fport, fport, label);
      assert.equal(frame.frmPayload.length, plaintext.length, label);
      // The receiver rebuilds the full counter from the 16 bits on air and a session that expects it.
      const full = fullFrameCounter(fcnt32, frame.fcnt16);
      assert.equal(full, fcnt32, label);
      assert.ok(verifyDataFrameMic(NWK_S_KEY, frame.direction, frame.devAddr, full, frame.micInput, frame.mic), label);
      assert.equal(verifyDataFrameMic(APP_S_KEY, frame.direction, frame.devAddr, full, frame.micInput, frame.mic), false, `${label}: MIC is under the NwkSKey`);
      assert.deepEqual(cryptFrmPayload(APP_S_KEY, frame.direction, frame.devAddr, full, frame.frmPayload), plaintext, label);
    }
  });
}

test('the direction is part of MIC and keystream: an uplink MIC does not verify as a downlink', () => {
  const bytes = encodeDataFrame({
    mtype: 'UnconfirmedDataUp',
    devAddr: '01020304',
    fcnt32: 1,
    fport: 1,
    payload: Buffer.from('hello'),
    nwkSKey: NWK_S_KEY,
    appSKey: APP_S_KEY,
  });
  const frame = parseData(bytes);
  assert.ok(verifyDataFrameMic(NWK_S_KEY, 'up', frame.devAddr, 1, frame.micInput, frame.mic));
  assert.equal(verifyDataFrameMic(NWK_S_KEY, 'down', frame.devAddr, 1, frame.micInput, frame.mic), false);
  assert.notDeepEqual(cryptFrmPayload(APP_S_KEY, 'down', frame.devAddr, 1, frame.frmPayload), Buffer.from('hello'));
});

test('FPort 0 (MAC commands) is encrypted with the NwkSKey', () => {
  const macCommands = Buffer.from('020305', 'hex');
  for (const mtype of ['UnconfirmedDataUp', 'UnconfirmedDataDown'] as const) {
    const frame = parseData(
      encodeDataFrame({ mtype, devAddr: '01020304', fcnt32: 42, fport: 0, payload: macCommands, nwkSKey: NWK_S_KEY, appSKey: APP_S_KEY }),
    );
    assert.equal(frame.fport, 0);
    assert.deepEqual(frame.frmPayload, cryptFrmPayload(NWK_S_KEY, frame.direction, frame.devAddr, 42, macCommands));
    assert.deepEqual(cryptFrmPayload(NWK_S_KEY, frame.direction, frame.devAddr, 42, frame.frmPayload), macCommands);
    assert.notDeepEqual(cryptFrmPayload(APP_S_KEY, frame.direction, frame.devAddr, 42, frame.frmPayload), macCommands);
  }
});

test('an ACK downlink without FPort is the 12-byte minimum frame', () => {
  const bytes = encodeDataFrame({ mtype: 'UnconfirmedDataDown', devAddr: '01020304', fcnt32: 3, ack: true, nwkSKey: NWK_S_KEY, appSKey: APP_S_KEY });
  assert.equal(bytes.length, 12);
  const frame = parseData(bytes);
  assert.equal(frame.fport, null);
  assert.equal(frame.fctrl.ack, true);
  assert.ok(verifyDataFrameMic(NWK_S_KEY, 'down', '01020304', 3, frame.micInput, frame.mic));
});

test('encodeDataFrame refuses frames no device could send, with a TypeError', () => {
  const base: DataFrameToEncode = {
    mtype: 'UnconfirmedDataUp',
    devAddr: '01020304',
    fcnt32: 1,
    fport: 1,
    payload: Buffer.from('x'),
    nwkSKey: NWK_S_KEY,
    appSKey: APP_S_KEY,
  };
  const refusals: [string, Partial<DataFrameToEncode>, RegExp][] = [
    ['short NwkSKey', { nwkSKey: Buffer.alloc(15) }, /NwkSKey must be 16 bytes, got 15 bytes/],
    ['short AppSKey', { appSKey: Buffer.alloc(8) }, /AppSKey must be 16 bytes/],
    ['bad DevAddr', { devAddr: '0102030' }, /DevAddr must be 8 hex digits/],
    ['non-hex DevAddr', { devAddr: '0102030g' }, /DevAddr must be 8 hex digits/],
    ['16 bytes of FOpts', { fopts: Buffer.alloc(16) }, /at most 15/],
    ['FPort 0 with FOpts', { fport: 0, fopts: Buffer.alloc(1) }, /FOpts must be empty/],
    ['payload without FPort', { fport: null }, /needs an FPort/],
    ['FPort 256', { fport: 256 }, /FPort must be an integer in 0\.\.255/],
    ['negative FCnt', { fcnt32: -1 }, /FCnt/],
    ['FCnt past 32 bits', { fcnt32: 2 ** 32 }, /FCnt/],
    ['join MType', { mtype: 'JoinRequest' as DataMType }, /data MType/],
    ['too long for LoRa', { payload: Buffer.alloc(250) }, /at most 255/],
  ];
  for (const [label, change, message] of refusals) {
    assert.throws(() => encodeDataFrame({ ...base, ...change }), { name: 'TypeError', message }, label);
  }
});

test('encodeJoinRequest -> parse -> verify MIC', () => {
  const bytes = encodeJoinRequest({ appKey: APP_KEY, joinEui: '70B3D57ED0000001', devEui: '0004a30b001c0530', devNonce: 0xbeef });
  assert.equal(bytes.length, 23);
  const frame = parse(bytes);
  assert.equal(frame.kind, 'join-request');
  assert.equal(frame.joinEui, '70b3d57ed0000001');
  assert.equal(frame.devEui, '0004a30b001c0530');
  assert.equal(frame.devNonce, 0xbeef);
  assert.ok(verifyJoinRequestMic(APP_KEY, frame.micInput, frame.mic));
  assert.equal(verifyJoinRequestMic(NWK_S_KEY, frame.micInput, frame.mic), false);
  assert.throws(() => encodeJoinRequest({ appKey: APP_KEY, joinEui: '70b3d57e', devEui: '0004a30b001c0530', devNonce: 1 }), /JoinEUI must be 16 hex digits/);
  assert.throws(() => encodeJoinRequest({ appKey: APP_KEY, joinEui: '70b3d57ed0000001', devEui: '0004a30b001c0530', devNonce: 65_536 }), /DevNonce/);
  assert.throws(() => encodeJoinRequest({ appKey: Buffer.alloc(0), joinEui: '70b3d57ed0000001', devEui: '0004a30b001c0530', devNonce: 1 }), TypeError);
});

const ACCEPT = { joinNonce: 0xabcdef, netId: '000013', devAddr: '260b1234', rx1DrOffset: 1, rx2DataRate: 3, rxDelay: 5 };
// EU868 CFList: five extra channels (867.1..867.9 MHz, 24-bit little-endian in units of 100 Hz) + CFListType 0.
const CF_LIST = Buffer.from('184f84e85684b85e84886684586e8400', 'hex');

for (const cfList of [undefined, CF_LIST]) {
  test(`encodeJoinAccept -> decodeJoinAccept ${cfList === undefined ? 'without' : 'with'} a CFList`, () => {
    const bytes = encodeJoinAccept(APP_KEY, cfList === undefined ? ACCEPT : { ...ACCEPT, cfList });
    assert.equal(bytes.length, cfList === undefined ? 17 : 33);
    const frame = parse(bytes);
    assert.equal(frame.kind, 'join-accept');
    const decoded = decodeJoinAccept(APP_KEY, bytes);
    assert.ok(decoded.ok, decoded.ok ? '' : decoded.message);
    const { mic, ...fields } = decoded;
    assert.equal(mic.length, 4);
    assert.deepEqual(fields, { ok: true, ...ACCEPT, cfList: cfList ?? null });
  });
}

test('decodeJoinAccept rejects a wrong key, a flipped bit, a wrong length and other frames', () => {
  const bytes = encodeJoinAccept(APP_KEY, ACCEPT);
  const wrongKey = decodeJoinAccept(NWK_S_KEY, bytes);
  assert.ok(!wrongKey.ok);
  assert.equal(wrongKey.reason, 'mic-mismatch');
  const flipped = Buffer.from(bytes);
  flipped[5] = (flipped[5] ?? 0) ^ 0x01;
  assert.equal(decodeJoinAccept(APP_KEY, flipped).ok, false);
  const truncated = decodeJoinAccept(APP_KEY, bytes.subarray(0, 16));
  assert.ok(!truncated.ok);
  assert.equal(truncated.reason, 'length-mismatch');
  const request = decodeJoinAccept(APP_KEY, encodeJoinRequest({ appKey: APP_KEY, joinEui: '0000000000000001', devEui: '0000000000000002', devNonce: 1 }));
  assert.ok(!request.ok);
  assert.equal(request.reason, 'not-join-accept');
  assert.equal(decodeJoinAccept(APP_KEY, new Uint8Array(0)).ok, false);
});

test('encodeJoinAccept refuses out-of-range fields with a TypeError', () => {
  assert.throws(() => encodeJoinAccept(APP_KEY, { ...ACCEPT, joinNonce: 0x1_000000 }), /JoinNonce/);
  assert.throws(() => encodeJoinAccept(APP_KEY, { ...ACCEPT, netId: '13' }), /NetID must be 6 hex digits/);
  assert.throws(() => encodeJoinAccept(APP_KEY, { ...ACCEPT, rx1DrOffset: 8 }), /RX1DRoffset/);
  assert.throws(() => encodeJoinAccept(APP_KEY, { ...ACCEPT, rxDelay: 16 }), /RxDelay/);
  assert.throws(() => encodeJoinAccept(APP_KEY, { ...ACCEPT, cfList: Buffer.alloc(15) }), /CFList must be 16 bytes/);
  assert.throws(() => encodeJoinAccept(Buffer.alloc(15), ACCEPT), TypeError);
});

test('a whole OTAA join: both sides derive the same session keys and exchange a data frame', () => {
  const devNonce = 0x1234;
  const request = parse(encodeJoinRequest({ appKey: APP_KEY, joinEui: '70b3d57ed0000001', devEui: '0004a30b001c0530', devNonce }));
  assert.equal(request.kind, 'join-request');
  assert.ok(verifyJoinRequestMic(APP_KEY, request.micInput, request.mic));
  const server = deriveSessionKeys(APP_KEY, ACCEPT.joinNonce, ACCEPT.netId, request.devNonce);

  const accepted = decodeJoinAccept(APP_KEY, encodeJoinAccept(APP_KEY, ACCEPT));
  assert.ok(accepted.ok);
  const device = deriveSessionKeys(APP_KEY, accepted.joinNonce, accepted.netId, devNonce);
  assert.deepEqual(device, server);

  const uplink = parseData(
    encodeDataFrame({ mtype: 'ConfirmedDataUp', devAddr: accepted.devAddr, fcnt32: 0, fport: 2, payload: Buffer.from([1, 2, 3]), ...device }),
  );
  assert.ok(verifyDataFrameMic(server.nwkSKey, 'up', uplink.devAddr, 0, uplink.micInput, uplink.mic));
  assert.deepEqual(cryptFrmPayload(server.appSKey, 'up', uplink.devAddr, 0, uplink.frmPayload), Buffer.from([1, 2, 3]));
});
