// The UDP port is unauthenticated, so parseDatagram must survive anything: random bytes, every truncation
// of valid datagrams, flipped bytes and JSON with fields of the wrong type. Seeded, so a failure reproduces;
// the failing input's hex is in the assertion message.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodePullResp } from '../../../src/ingress/semtech-udp/downlink-packets.ts';
import { encodePullData, encodePushData, encodeTxAck } from '../../../src/ingress/semtech-udp/packet-encoders.ts';
import type { DatagramParseResult } from '../../../src/ingress/semtech-udp/packets.ts';
import { parseDatagram } from '../../../src/ingress/semtech-udp/parse-datagram.ts';
import { createRandom } from '../../../firmware-sim/fleet.ts';

const SEED = 0x5eed_0001;
const REASONS = new Set(['too-short', 'too-long', 'unknown-version', 'unknown-identifier', 'bad-length', 'bad-json', 'bad-field']);

const EUI = 'aa555a0000000000';
const TOKEN = Buffer.from([0x12, 0x34]);

const seeds: Buffer[] = [
  encodePullData(2, TOKEN, EUI),
  encodeTxAck(2, TOKEN, EUI, 'TOO_LATE'),
  encodePullResp(2, TOKEN, { imme: true, freq: 869.525, rfch: 0, powe: 14, modu: 'LORA', datr: 'SF9BW125', codr: '4/5', ipol: true, size: 3, data: 'AQID' }),
  encodePushData(1, TOKEN, EUI, {
    rxpk: [0, 1, 2].map((n) => ({
      time: '2013-03-31T16:21:17.528002Z',
      tmms: null,
      tmst: 3_512_348_611 + n,
      frequencyHz: 868_100_000 + n * 200_000,
      chan: n,
      rfch: 0,
      crcStatus: 1 as const,
      modulation: 'LORA' as const,
      datr: 'SF7BW125',
      codr: '4/5',
      rssi: -35,
      rssis: null,
      lsnr: 5.1,
      size: 17,
      data: Buffer.from('40f17dbe4900020001954378762b11ff0d', 'hex'),
    })),
    stat: { time: '2014-01-12 08:59:28 GMT', lati: 46.24, long: 3.25, alti: 145, rxnb: 2, rxok: 2, rxfw: 2, ackr: 100, dwnb: 2, txnb: 2 },
  }),
];

const WEIRD_VALUES: unknown[] = [null, true, 0, -1, 1e308, -0.5, '', 'x'.repeat(300), [], {}, [[[]]], { rxpk: [] }, '\u0000', 2 ** 53];

function check(bytes: Uint8Array, label: string): DatagramParseResult {
  let result: DatagramParseResult;
  try {
    result = parseDatagram(bytes);
  } catch (error) {
    assert.fail(`${label}: threw ${String(error)} on ${Buffer.from(bytes).toString('hex')}`);
  }
  if (!result.ok) {
    assert.ok(REASONS.has(result.reason), `${label}: unknown reason ${result.reason}`);
    // The catch-all in parseDatagram hides a bug from callers, not from this test.
    assert.doesNotMatch(result.message, /could not be parsed/, `${label}: a parser threw on ${Buffer.from(bytes).toString('hex')}`);
    return result;
  }
  const datagram = result.datagram;
  assert.equal(datagram.token.length, 2, label);
  if (datagram.type === 'PUSH_DATA') {
    assert.match(datagram.gatewayEui, /^[0-9a-f]{16}$/, label);
    for (const rxpk of datagram.rxpk) {
      assert.equal(rxpk.data.length, rxpk.size, `${label}: size checked`);
      assert.ok(Number.isInteger(rxpk.frequencyHz), `${label}: Hz are integers`);
      assert.ok(Number.isInteger(rxpk.tmst) && rxpk.tmst >= 0 && rxpk.tmst <= 0xffff_ffff, `${label}: tmst is 32-bit`);
    }
  }
  return result;
}

/** Replaces one JSON value somewhere in the tree with a value of another type. */
function mutateJson(value: unknown, random: () => number): unknown {
  if (random() < 0.25) return WEIRD_VALUES[Math.floor(random() * WEIRD_VALUES.length)];
  if (Array.isArray(value)) return value.map((item) => (random() < 0.5 ? mutateJson(item, random) : item));
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value).map(([key, item]) => [key, random() < 0.4 ? mutateJson(item, random) : item] as const);
    if (random() < 0.2) entries.pop();
    return Object.fromEntries(entries);
  }
  return value;
}

test('random datagrams never throw (seeded)', () => {
  const random = createRandom(SEED);
  for (let i = 0; i < 2_000; i++) {
    const length = Math.floor(random() * 160);
    const bytes = Buffer.alloc(length);
    for (let j = 0; j < length; j++) bytes[j] = Math.floor(random() * 256);
    // Bias half of them past the header checks so the body parsers see random input too.
    if (length >= 4 && random() < 0.5) {
      bytes[0] = 1 + Math.floor(random() * 2);
      bytes[3] = Math.floor(random() * 6);
    }
    check(bytes, `random #${i}`);
  }
});

test('every truncation of valid datagrams never throws and is never mistaken for a longer one', () => {
  for (const [n, full] of seeds.entries()) {
    for (let length = 0; length < full.length; length++) {
      const result = check(full.subarray(0, length), `seed ${n} truncated to ${length}`);
      // A cut in the JSON of PUSH_DATA or PULL_RESP must not parse; cuts of TX_ACK JSON likewise.
      if (length > 12 && result.ok) assert.fail(`seed ${n} truncated to ${length} parsed as ${result.datagram.type}`);
    }
    check(full, `seed ${n} whole`);
  }
});

test('flipped bytes and type-confused JSON never throw (seeded)', () => {
  const random = createRandom(SEED + 1);
  for (let i = 0; i < 2_000; i++) {
    const base = seeds[i % seeds.length] ?? Buffer.alloc(0);
    const bytes = Buffer.from(base);
    const flips = 1 + Math.floor(random() * 4);
    for (let f = 0; f < flips; f++) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
    check(bytes, `flip #${i}`);
  }
  for (let i = 0; i < 1_500; i++) {
    const base = seeds[i % seeds.length] ?? Buffer.alloc(0);
    const offset = base[3] === 0x03 ? 4 : 12;
    if (base.length <= offset) continue;
    const json = JSON.parse(base.subarray(offset).toString('utf8')) as unknown;
    const mutated = Buffer.concat([base.subarray(0, offset), Buffer.from(JSON.stringify(mutateJson(json, random)) ?? 'null', 'utf8')]);
    check(mutated, `json #${i}`);
  }
});

test('large and deeply nested inputs are refused quickly', () => {
  const started = performance.now();
  const header = Buffer.concat([Buffer.from([2, 0, 1, 0]), Buffer.from(EUI, 'hex')]);
  check(Buffer.concat([header, Buffer.alloc(65_000, '[')]), 'brackets');
  check(Buffer.concat([header, Buffer.from(`{"rxpk":[${'{},'.repeat(20_000)}{}]}`)]), 'many rxpk');
  check(Buffer.concat([header, Buffer.from(`{"rxpk":[],"x":"${'\\"'.repeat(30_000)}"}`)]), 'escapes');
  check(Buffer.alloc(70_000, 2), 'oversize');
  // A bound on waiting, generous for slow machines: the point is "milliseconds, not a stalled event loop".
  assert.ok(performance.now() - started < 1_000, 'refused in well under a second');
});
