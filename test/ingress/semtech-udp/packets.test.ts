// The GWMP codec against the spec vectors (ChirpStack's end-to-end datagrams, PROTOCOL.TXT examples): each
// vector parses to the expected value and re-encodes to the same bytes; then every reject reason, protocol
// v1, partial rejection inside one PUSH_DATA, and stat with and without a GPS fix.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { checkTxpk, encodePullResp } from '../../../src/ingress/semtech-udp/downlink-packets.ts';
import { encodePullAck, encodePullData, encodePushAck, encodePushData, encodeTxAck } from '../../../src/ingress/semtech-udp/packet-encoders.ts';
import {
  type Datagram,
  type DatagramParseResult,
  MAX_DATAGRAM_BYTES,
  MAX_JSON_DEPTH,
  MAX_RXPK_PER_DATAGRAM,
  type PushData,
} from '../../../src/ingress/semtech-udp/packets.ts';
import { parseDatagram } from '../../../src/ingress/semtech-udp/parse-datagram.ts';

interface Vector {
  readonly id: string;
  readonly request_hex?: string;
  readonly datagram_hex?: string;
  readonly expected_reply_hex?: string | null;
  readonly expected?: Record<string, unknown>;
}

const vectors = JSON.parse(readFileSync(new URL('../../fixtures/lorawan/lorawan-vectors.json', import.meta.url), 'utf8')) as Vector[];

function vector(id: string): Vector {
  const found = vectors.find((candidate) => candidate.id === id);
  assert.ok(found, `vector ${id} is in lorawan-vectors.json`);
  return found;
}

function hex(value: string | null | undefined): Buffer {
  assert.ok(typeof value === 'string', 'vector has the hex field');
  return Buffer.from(value, 'hex');
}

function parsed(bytes: Uint8Array): Datagram {
  const result = parseDatagram(bytes);
  assert.ok(result.ok, `parses: ${result.ok ? '' : `${result.reason}: ${result.message}`}`);
  return result.datagram;
}

function pushData(bytes: Uint8Array): PushData {
  const datagram = parsed(bytes);
  assert.equal(datagram.type, 'PUSH_DATA');
  return datagram;
}

function rejected(bytes: Uint8Array): Extract<DatagramParseResult, { ok: false }> {
  const result = parseDatagram(bytes);
  assert.equal(result.ok, false, 'is rejected');
  if (result.ok) throw new Error('unreachable');
  assert.ok(result.message.length > 10, 'the message says what is wrong');
  return result;
}

const EUI = 'aa555a0000000000';
const TOKEN = Buffer.from([0xa1, 0xb2]);

/** A PUSH_DATA datagram around any JSON value (or raw body bytes). */
function rawPush(body: unknown, version = 2): Buffer {
  const json = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body), 'utf8');
  return Buffer.concat([Buffer.from([version, TOKEN[0] ?? 0, TOKEN[1] ?? 0, 0x00]), Buffer.from(EUI, 'hex'), json]);
}

const goodRxpk = {
  tmst: 1000,
  chan: 0,
  rfch: 1,
  freq: 868.3,
  stat: 1,
  modu: 'LORA',
  datr: 'SF9BW125',
  codr: '4/5',
  rssi: -80,
  lsnr: -2.5,
  size: 4,
  data: Buffer.from([1, 2, 3, 4]).toString('base64'),
};

test('cs-udp-pull: PULL_DATA parses, re-encodes byte for byte, and its PULL_ACK is the vector reply', () => {
  const v = vector('cs-udp-pull');
  const datagram = parsed(hex(v.request_hex));
  assert.equal(datagram.type, 'PULL_DATA');
  assert.equal(datagram.version, 2);
  assert.equal(datagram.token.toString('hex'), '0001');
  assert.equal(datagram.gatewayEui, '0102030405060708');
  assert.deepEqual(encodePullData(datagram.version, datagram.token, datagram.gatewayEui), hex(v.request_hex));
  assert.deepEqual(encodePullAck(datagram.version, datagram.token), hex(v.expected_reply_hex));
});

test('cs-udp-push: PUSH_DATA with one rxpk parses to typed fields and re-encodes byte for byte', () => {
  const v = vector('cs-udp-push');
  const datagram = pushData(hex(v.request_hex));
  assert.equal(datagram.gatewayEui, '0102030405060708');
  assert.equal(datagram.token.toString('hex'), '0001');
  assert.deepEqual(datagram.rejectedRxpk, []);
  assert.equal(datagram.stat, null);
  assert.deepEqual(datagram.rxpk, [
    {
      time: '2022-09-10T12:30:15Z',
      tmms: null,
      tmst: 1234,
      frequencyHz: 868_100_000,
      chan: 2,
      rfch: 0,
      crcStatus: 1,
      modulation: 'LORA',
      datr: 'SF7BW125',
      codr: '4/5',
      rssi: -35,
      rssis: null,
      lsnr: 5.1,
      size: 3,
      data: Buffer.from('010203', 'hex'),
    },
  ]);
  assert.deepEqual(encodePushAck(datagram.version, datagram.token), hex(v.expected_reply_hex));
  assert.deepEqual(encodePushData(datagram.version, datagram.token, datagram.gatewayEui, { rxpk: datagram.rxpk }), hex(v.request_hex));
});

test('syn-udp-push-lp-frame: rxpk with the lp-test frame plus a stat without GPS; re-encodes byte for byte', () => {
  const v = vector('syn-udp-push-lp-frame');
  const expected = v.expected ?? {};
  const datagram = pushData(hex(v.request_hex));
  assert.equal(datagram.gatewayEui, expected.gateway_eui_hex);
  assert.equal(datagram.token.toString('hex'), expected.token_bytes_hex);
  assert.equal(datagram.rxpk.length, expected.rxpk_count);
  const [rxpk] = datagram.rxpk;
  assert.equal(rxpk?.data.toString('hex'), expected.phy_payload_hex);
  assert.equal(rxpk?.frequencyHz, expected.frequency_hz);
  assert.equal(rxpk?.tmst, 3_512_348_611);
  assert.deepEqual(datagram.stat, { time: '2014-01-12 08:59:28 GMT', rxnb: 2, rxok: 2, rxfw: 2, ackr: 100, dwnb: 2, txnb: 2 });
  assert.equal(datagram.statError, null);
  assert.deepEqual(encodePushAck(datagram.version, datagram.token), hex(v.expected_reply_hex));
  const { rxpk: rxpkList, stat } = datagram;
  assert.ok(stat !== null);
  assert.deepEqual(encodePushData(datagram.version, datagram.token, datagram.gatewayEui, { rxpk: rxpkList, stat }), hex(v.request_hex));
});

test('syn-udp-txack: TX_ACK with error NONE means sent; re-encodes byte for byte', () => {
  const v = vector('syn-udp-txack');
  assert.equal(v.expected_reply_hex, null, 'a server answers nothing to TX_ACK');
  const datagram = parsed(hex(v.request_hex));
  assert.equal(datagram.type, 'TX_ACK');
  assert.equal(datagram.token.toString('hex'), '1234');
  assert.equal(datagram.gatewayEui, EUI);
  assert.equal(datagram.error, null);
  assert.equal(datagram.warn, null);
  assert.deepEqual(encodeTxAck(datagram.version, datagram.token, datagram.gatewayEui, datagram.error ?? 'NONE'), hex(v.request_hex));
});

test('semtech-udp-pull-resp: the PROTOCOL.TXT txpk parses and re-encodes byte for byte (no EUI in PULL_RESP)', () => {
  const v = vector('semtech-udp-pull-resp');
  const datagram = parsed(hex(v.datagram_hex));
  assert.equal(datagram.type, 'PULL_RESP');
  assert.equal(datagram.token.toString('hex'), '1234');
  assert.deepEqual(datagram.txpk, {
    imme: true,
    freq: 864.123456,
    rfch: 0,
    powe: 14,
    modu: 'LORA',
    datr: 'SF11BW125',
    codr: '4/6',
    ipol: false,
    size: 32,
    data: 'H3P3N2i9qc4yt7rK7ldqoeCVJGBybzPY5h1Dd7P7p8v',
  });
  assert.equal(checkTxpk(datagram.txpk), null);
  assert.deepEqual(encodePullResp(datagram.version, datagram.token, datagram.txpk), hex(v.datagram_hex));
});

test('protocol version 1 is accepted and answered in version 1; version 2 likewise', () => {
  for (const version of [1, 2] as const) {
    const pull = parsed(encodePullData(version, TOKEN, EUI));
    assert.equal(pull.version, version);
    assert.deepEqual(encodePullAck(pull.version, pull.token), Buffer.from([version, 0xa1, 0xb2, 0x04]));
    const push = pushData(rawPush({ rxpk: [goodRxpk] }, version));
    assert.equal(push.version, version);
    assert.equal(push.rxpk.length, 1);
    assert.deepEqual(encodePushAck(push.version, push.token), Buffer.from([version, 0xa1, 0xb2, 0x01]));
  }
});

test('the token is a copy of the two bytes, not a view into the receive buffer', () => {
  const bytes = encodePullData(2, TOKEN, EUI);
  const datagram = parsed(bytes);
  bytes[1] = 0;
  assert.equal(datagram.token.toString('hex'), 'a1b2');
});

test('each datagram reject reason, with a message a person can act on', () => {
  assert.equal(rejected(Buffer.from([2, 0, 1])).reason, 'too-short');
  assert.equal(rejected(Buffer.alloc(0)).reason, 'too-short');
  assert.equal(rejected(Buffer.from([2, 0, 1, 0x00, 1, 2, 3])).reason, 'too-short', 'PUSH_DATA without a whole EUI');
  assert.equal(rejected(Buffer.from([2, 0, 1, 0x05, 1, 2])).reason, 'too-short', 'TX_ACK without a whole EUI');
  assert.equal(rejected(Buffer.alloc(MAX_DATAGRAM_BYTES + 1, 2)).reason, 'too-long');

  const badVersion = rejected(Buffer.from([3, 0, 1, 0x02, 1, 2, 3, 4, 5, 6, 7, 8]));
  assert.equal(badVersion.reason, 'unknown-version');
  assert.match(badVersion.message, /version 3/);
  assert.equal(rejected(Buffer.from('GET / HTTP/1.1\r\n')).reason, 'unknown-version');

  const badIdentifier = rejected(Buffer.from([2, 0, 1, 0x06, 1, 2, 3, 4, 5, 6, 7, 8]));
  assert.equal(badIdentifier.reason, 'unknown-identifier');
  assert.match(badIdentifier.message, /0x06/);

  assert.equal(rejected(Buffer.concat([encodePullData(2, TOKEN, EUI), Buffer.from([0])])).reason, 'bad-length', 'PULL_DATA of 13 bytes');
  assert.equal(rejected(Buffer.from([2, 0, 1, 0x01, 0])).reason, 'bad-length', 'PUSH_ACK of 5 bytes');
  assert.equal(rejected(Buffer.from([2, 0, 1, 0x04, 0])).reason, 'bad-length', 'PULL_ACK of 5 bytes');
});

test('bad JSON is rejected as bad-json, never thrown', () => {
  const cases: [string, Buffer][] = [
    ['truncated JSON', rawPush(Buffer.from('{"rxpk":[{"tmst":1'))],
    ['not JSON at all', rawPush(Buffer.from('hello'))],
    ['invalid UTF-8', rawPush(Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]))],
    ['an array at the root', rawPush([1, 2, 3])],
    ['a string at the root', rawPush('rxpk')],
    ['no JSON after the EUI', rawPush(Buffer.alloc(0))],
    ['nested too deep', rawPush(Buffer.from(`{"rxpk":${'['.repeat(MAX_JSON_DEPTH)}${']'.repeat(MAX_JSON_DEPTH)}}`))],
    ['PULL_RESP with broken JSON', Buffer.from([2, 0x12, 0x34, 0x03, 0x7b])],
    ['TX_ACK with broken JSON', Buffer.concat([encodeTxAck(2, TOKEN, EUI), Buffer.from('{"txpk_ack":')])],
  ];
  for (const [what, bytes] of cases) {
    const result = rejected(bytes);
    assert.equal(result.reason, 'bad-json', what);
  }
  assert.match(rejected(rawPush(Buffer.from('{"rxpk":[{"tmst":1'))).message, /aa555a0000000000/, 'names the gateway');
  // Brackets inside strings are not nesting.
  const deepInString = pushData(rawPush({ rxpk: [], note: '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[' }));
  assert.deepEqual(deepInString.rxpk, []);
});

test('structurally wrong fields are rejected as bad-field', () => {
  assert.equal(rejected(rawPush({ rxpk: { tmst: 1 } })).reason, 'bad-field');
  assert.equal(rejected(rawPush({ rxpk: Array.from({ length: MAX_RXPK_PER_DATAGRAM + 1 }, () => 0) })).reason, 'bad-field');
  assert.equal(rejected(Buffer.concat([Buffer.from([2, 0x12, 0x34, 0x03]), Buffer.from('{"nottxpk":{}}')])).reason, 'bad-field');
  assert.equal(rejected(Buffer.concat([encodeTxAck(2, TOKEN, EUI), Buffer.from('{"txpk_ack":"NONE"}')])).reason, 'bad-field');
  const pullResp = (txpk: Record<string, unknown>) => Buffer.concat([Buffer.from([2, 0x12, 0x34, 0x03]), Buffer.from(JSON.stringify({ txpk }))]);
  const fsk = rejected(pullResp({ freq: 868, rfch: 0, powe: 14, modu: 'FSK', datr: 50000, size: 0, data: '' }));
  assert.equal(fsk.reason, 'bad-field');
  assert.match(fsk.message, /modu/);
});

test('one bad rxpk does not drop the good ones around it; each is reported with its index and reason', () => {
  const datagram = pushData(
    rawPush({
      rxpk: [
        goodRxpk,
        { ...goodRxpk, size: 5 }, // size-mismatch
        'not a packet', // not-an-object
        { ...goodRxpk, tmst: undefined }, // missing tmst
        { ...goodRxpk, modu: 'LR-FHSS' }, // unsupported-modulation
        { ...goodRxpk, freq: 868_300_000 }, // Hz sent as MHz
        { ...goodRxpk, data: 'AQID!!' }, // not base64
        { ...goodRxpk, stat: 2 },
        { ...goodRxpk, time: 'yesterday' },
        { ...goodRxpk, tmst: 2 ** 32 },
        { ...goodRxpk, datr: 'fast' },
        { ...goodRxpk, tmst: 2000, rssi: -100 },
      ],
    }),
  );
  assert.deepEqual(
    datagram.rxpk.map((rxpk) => rxpk.tmst),
    [1000, 2000],
  );
  assert.deepEqual(
    datagram.rejectedRxpk.map(({ index, reason }) => [index, reason]),
    [
      [1, 'size-mismatch'],
      [2, 'not-an-object'],
      [3, 'bad-field'],
      [4, 'unsupported-modulation'],
      [5, 'bad-field'],
      [6, 'bad-field'],
      [7, 'bad-field'],
      [8, 'bad-field'],
      [9, 'bad-field'],
      [10, 'bad-field'],
    ],
  );
  const messages = datagram.rejectedRxpk.map((entry) => entry.message);
  assert.match(messages[0] ?? '', /rxpk\[1\].*4 bytes.*size.*5/);
  assert.match(messages[2] ?? '', /"tmst" is missing/);
  assert.match(messages[4] ?? '', /MHz/);
});

test('rxpk details: FSK, CRC status, rssis, base64url, unknown keys ignored, GPS time fields', () => {
  const datagram = pushData(
    rawPush({
      rxpk: [
        { tmst: 1, chan: 9, rfch: 1, freq: 868.8, stat: 1, modu: 'FSK', datr: 50000, rssi: -75, size: 2, data: '__8=', rsig: [{ ant: 0 }], foo: 'bar' },
        { ...goodRxpk, stat: -1, rssis: -83, time: '2013-03-31T16:21:17.528002Z', tmms: 1_048_764_095_528, mid: 8, foff: -120 },
        { ...goodRxpk, stat: 0, codr: 'OFF', lsnr: null },
      ],
    }),
  );
  assert.deepEqual(datagram.rejectedRxpk, []);
  const [fsk, crcBad, noCrc] = datagram.rxpk;
  assert.equal(fsk?.modulation, 'FSK');
  assert.equal(fsk?.datr, 50000);
  assert.equal(fsk?.codr, null);
  assert.equal(fsk?.lsnr, null);
  assert.deepEqual(fsk?.data, Buffer.from([0xff, 0xff]), 'base64url alphabet');
  assert.equal(fsk?.frequencyHz, 868_800_000);
  assert.equal(crcBad?.crcStatus, -1);
  assert.equal(crcBad?.rssis, -83);
  assert.equal(crcBad?.time, '2013-03-31T16:21:17.528002Z');
  assert.equal(crcBad?.tmms, 1_048_764_095_528);
  assert.equal(noCrc?.crcStatus, 0);
  assert.equal(noCrc?.codr, 'OFF');
  assert.equal(noCrc?.lsnr, null);
});

test('frequencies convert to exact Hz', () => {
  for (const freq of [433.175, 868.1, 868.3, 868.5, 866.349812, 902.3, 923.3, 470.3]) {
    const datagram = pushData(rawPush({ rxpk: [{ ...goodRxpk, freq }] }));
    // The decimal digits of the MHz value, read as an integer, are the Hz.
    assert.equal(datagram.rxpk[0]?.frequencyHz, Number(freq.toFixed(6).replace('.', '')));
  }
});

test('stat with a GPS fix carries lati/long/alti (and SX1302 temp); without a fix they are absent', () => {
  const withGps = pushData(
    rawPush({
      stat: { time: '2014-01-12 08:59:28 GMT', lati: 46.24, long: 3.2523, alti: 145, rxnb: 2, rxok: 2, rxfw: 2, ackr: 100.0, dwnb: 2, txnb: 2, temp: 41.5 },
    }),
  );
  assert.deepEqual(withGps.stat, {
    time: '2014-01-12 08:59:28 GMT',
    lati: 46.24,
    long: 3.2523,
    alti: 145,
    rxnb: 2,
    rxok: 2,
    rxfw: 2,
    ackr: 100,
    dwnb: 2,
    txnb: 2,
    temp: 41.5,
  });
  assert.deepEqual(withGps.rxpk, []);
  const stat = withGps.stat;
  assert.ok(stat !== null);
  assert.deepEqual(parsed(encodePushData(2, TOKEN, EUI, { stat })), { ...withGps, token: TOKEN });

  const withoutGps = pushData(rawPush({ stat: { time: '2014-01-12 08:59:28 GMT', rxnb: 0, rxok: 0, rxfw: 0, ackr: 0.0, dwnb: 0, txnb: 0 } }));
  assert.ok(withoutGps.stat !== null);
  assert.equal('lati' in withoutGps.stat, false);
  assert.equal('long' in withoutGps.stat, false);
  assert.equal('alti' in withoutGps.stat, false);
});

test('a bad stat is reported in statError and does not cost the rxpk beside it', () => {
  const datagram = pushData(rawPush({ rxpk: [goodRxpk], stat: { time: '2014-01-12 08:59:28 GMT', rxnb: 'two' } }));
  assert.equal(datagram.rxpk.length, 1);
  assert.equal(datagram.stat, null);
  assert.match(datagram.statError ?? '', /rxnb/);
  assert.match(pushData(rawPush({ stat: 42 })).statError ?? '', /object/);
});

test('TX_ACK: no payload, a trailing NUL (Kerlink iBTS), an error, and an SX1302 warning', () => {
  const bare = parsed(encodeTxAck(2, TOKEN, EUI));
  assert.equal(bare.type, 'TX_ACK');
  assert.equal(bare.error, null);
  const withNul = parsed(Buffer.concat([encodeTxAck(2, TOKEN, EUI), Buffer.from([0])]));
  assert.equal(withNul.type === 'TX_ACK' && withNul.error, null);
  const tooLate = parsed(encodeTxAck(2, TOKEN, EUI, 'TOO_LATE'));
  assert.equal(tooLate.type === 'TX_ACK' && tooLate.error, 'TOO_LATE');
  const warned = parsed(Buffer.concat([encodeTxAck(2, TOKEN, EUI), Buffer.from('{"txpk_ack":{"warn":"TX_POWER","value":14}}\0')]));
  assert.ok(warned.type === 'TX_ACK');
  assert.equal(warned.error, null);
  assert.equal(warned.warn, 'TX_POWER');
});

test('PUSH_ACK and PULL_ACK parse (the simulated forwarder reads them)', () => {
  assert.deepEqual(parsed(encodePushAck(2, TOKEN)), { type: 'PUSH_ACK', version: 2, token: TOKEN });
  assert.deepEqual(parsed(encodePullAck(1, TOKEN)), { type: 'PULL_ACK', version: 1, token: TOKEN });
});

test('checkTxpk refuses downlinks a gateway could not send', () => {
  const txpk = { tmst: 5_000_000, freq: 869.525, rfch: 0, powe: 14, modu: 'LORA', datr: 'SF12BW125', codr: '4/5', ipol: true, size: 3, data: 'AQID' } as const;
  assert.equal(checkTxpk(txpk), null);
  const { tmst: _tmst, ...untimed } = txpk;
  assert.match(checkTxpk(untimed) ?? '', /imme/);
  assert.equal(checkTxpk({ ...untimed, imme: true }), null);
  assert.match(checkTxpk({ ...txpk, size: 4 }) ?? '', /size/);
  assert.match(checkTxpk({ ...txpk, freq: 869_525_000 }) ?? '', /MHz/);
  assert.match(checkTxpk({ ...txpk, datr: 'SF12' }) ?? '', /datr/);
});

test('encoders refuse a malformed token or EUI (programmer errors)', () => {
  assert.throws(() => encodePushAck(2, Buffer.from([1])), RangeError);
  assert.throws(() => encodePullData(2, TOKEN, 'aa555a'), RangeError);
});
