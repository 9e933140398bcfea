// ADR: ChirpStack's default algorithm (chirpstack/src/adr/default.rs) checked case by case against its own test
// tables and hand-computed values, our two departures from it shown next to what ChirpStack would do, the
// uplink history and its persisted form, and a simulated device driven through successive uplinks.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EU868 } from '../../../src/ingress/lorawan/region.ts';
import {
  ADR_HISTORY_SIZE,
  type AdrDecision,
  type AdrRequest,
  addToUplinkHistory,
  DEFAULT_INSTALLATION_MARGIN_DB,
  decideAdr,
  deserializeUplinkHistory,
  EMPTY_UPLINK_HISTORY,
  lostFrames,
  nbTransForLoss,
  packetLossPercent,
  persistUplinkHistory,
  readPersistedUplinkHistory,
  requiredSnrDb,
  serializeUplinkHistory,
  type UplinkHistory,
  uplinkHistoryEntry,
} from '../../../src/ingress/lorawan-server/adr.ts';

/** RP002-1.0.3 §2.4, the EU863-870 TX power table: TXPower 0..7 = MaxEIRP - 2 dB * index. */
const EU868_MAX_TX_POWER_INDEX = 7;
const DB_PER_TX_POWER_INDEX = 2;

function request(overrides: Partial<AdrRequest> = {}): AdrRequest {
  return {
    dataRate: 0,
    txPowerIndex: 0,
    nbTrans: 1,
    minDataRate: 0,
    maxDataRate: 5,
    maxTxPowerIndex: EU868_MAX_TX_POWER_INDEX,
    installationMarginDb: DEFAULT_INSTALLATION_MARGIN_DB,
    history: EMPTY_UPLINK_HISTORY,
    dataRates: EU868.dataRates,
    ...overrides,
  };
}

/** `count` uplinks with consecutive counters from `firstFcnt`, all at one SNR and TX power index. */
function historyOf(count: number, snr: number, txPowerIndex = 0, firstFcnt = 100): UplinkHistory {
  let history = EMPTY_UPLINK_HISTORY;
  for (let index = 0; index < count; index++) history = addToUplinkHistory(history, { fcnt: firstFcnt + index, maxSnrDb: snr, gatewayCount: 1, txPowerIndex });
  return history;
}

/** Required SNR of an EU868 data rate. */
function floorOf(dataRate: number): number {
  const rate = EU868.dataRates.get(dataRate);
  assert.ok(rate !== undefined);
  const floor = requiredSnrDb(rate.spreadingFactor);
  assert.ok(floor !== null);
  return floor;
}

test('the demodulation floor per spreading factor (ChirpStack get_required_snr_for_sf)', () => {
  assert.deepEqual(
    [7, 8, 9, 10, 11, 12].map((sf) => requiredSnrDb(sf)),
    [-7.5, -10, -12.5, -15, -17.5, -20],
  );
  assert.equal(requiredSnrDb(6), -5);
  assert.equal(requiredSnrDb(13), null);
  assert.equal(requiredSnrDb(5), null);
});

test("ChirpStack's get_ideal_tx_power_index_and_dr table, driven through decideAdr", () => {
  // Each case of default.rs test_get_ideal_tx_power_index_and_dr (max DR 5, max TX power index 5). The steps come
  // from an SNR chosen so that trunc(margin / 3) = nStep, with a full history so negative steps are not held.
  // `ours` is set where our data-rate backoff departs from ChirpStack's result.
  const cases = [
    { name: 'nothing to do', nStep: 0, txPowerIndex: 1, dataRate: 3, chirpstack: { txPowerIndex: 1, dataRate: 3 } },
    { name: 'one step: one step data-rate increase', nStep: 1, txPowerIndex: 1, dataRate: 4, chirpstack: { txPowerIndex: 1, dataRate: 5 } },
    { name: 'one step: one step tx-power decrease', nStep: 1, txPowerIndex: 1, dataRate: 5, chirpstack: { txPowerIndex: 2, dataRate: 5 } },
    { name: 'two steps: two steps data-rate increase', nStep: 2, txPowerIndex: 1, dataRate: 3, chirpstack: { txPowerIndex: 1, dataRate: 5 } },
    { name: 'two steps: one data-rate increase, one tx-power decrease', nStep: 2, txPowerIndex: 1, dataRate: 4, chirpstack: { txPowerIndex: 2, dataRate: 5 } },
    { name: 'two step tx-power decrease', nStep: 2, txPowerIndex: 1, dataRate: 5, chirpstack: { txPowerIndex: 3, dataRate: 5 } },
    { name: 'two steps: already at the lowest power', nStep: 2, txPowerIndex: 5, dataRate: 5, chirpstack: { txPowerIndex: 5, dataRate: 5 } },
    { name: 'one negative step: one step power increase', nStep: -1, txPowerIndex: 1, dataRate: 5, chirpstack: { txPowerIndex: 0, dataRate: 5 } },
    {
      name: 'one negative step at full power: ChirpStack does nothing, we back off one data rate',
      nStep: -1,
      txPowerIndex: 0,
      dataRate: 4,
      chirpstack: { txPowerIndex: 0, dataRate: 4 },
      ours: { txPowerIndex: 0, dataRate: 3 },
    },
    {
      name: '10 negative steps at full power: ChirpStack does nothing, we back off to the minimum',
      nStep: -10,
      txPowerIndex: 0,
      dataRate: 4,
      chirpstack: { txPowerIndex: 0, dataRate: 4 },
      ours: { txPowerIndex: 0, dataRate: 0 },
    },
  ];
  for (const tc of cases) {
    const marginDb = tc.nStep === 0 ? 0 : tc.nStep * 3 + Math.sign(tc.nStep) * 1.5;
    const decision = decideAdr(
      request({
        dataRate: tc.dataRate,
        txPowerIndex: tc.txPowerIndex,
        maxTxPowerIndex: 5,
        installationMarginDb: 0,
        history: historyOf(ADR_HISTORY_SIZE, floorOf(tc.dataRate) + marginDb, tc.txPowerIndex),
      }),
    );
    assert.equal(decision.steps, tc.nStep, tc.name);
    assert.deepEqual({ txPowerIndex: decision.txPowerIndex, dataRate: decision.dataRate }, tc.ours ?? tc.chirpstack, tc.name);
  }
});

test("ChirpStack's handle() cases and further hand-computed requests", () => {
  // default.rs test_handle "max dr exceeded, decrease dr": DR5 above max DR 4, margin 0 -> DR4.
  assert.deepEqual(pick(decideAdr(request({ dataRate: 5, maxDataRate: 4, maxTxPowerIndex: 5, installationMarginDb: 0, history: historyOf(1, floorOf(5)) }))), {
    dataRate: 4,
    txPowerIndex: 0,
    nbTrans: 1,
    changed: true,
  });
  // test_handle "increase dr": DR0 (floor -20 dB), SNR -15, no installation margin: 5 dB = 1 step -> DR1.
  assert.deepEqual(pick(decideAdr(request({ dataRate: 0, maxTxPowerIndex: 5, installationMarginDb: 0, history: historyOf(1, -15) }))), {
    dataRate: 1,
    txPowerIndex: 0,
    nbTrans: 1,
    changed: true,
  });
  // By hand: DR2 (SF10, -15 dB), SNR 4.6, margin 10: 4.6 + 15 - 10 = 9.6 dB -> 3 steps -> DR5.
  const dr2 = decideAdr(request({ dataRate: 2, txPowerIndex: 1, history: historyOf(3, 4.6, 1) }));
  assert.ok(dr2.snrMarginDb !== null && Math.abs(dr2.snrMarginDb - 9.6) < 1e-9);
  assert.deepEqual(pick(dr2), { dataRate: 5, txPowerIndex: 1, nbTrans: 1, changed: true });
  // By hand: DR5 (SF7, -7.5 dB), best SNR 14 of 2.0/14/-1: 14 + 7.5 - 10 = 11.5 dB -> 3 steps of TX power.
  let history = EMPTY_UPLINK_HISTORY;
  for (const [index, snr] of [2, 14, -1].entries()) history = addToUplinkHistory(history, { fcnt: index, maxSnrDb: snr, gatewayCount: 1, txPowerIndex: 1 });
  assert.deepEqual(pick(decideAdr(request({ dataRate: 5, txPowerIndex: 1, history }))), { dataRate: 5, txPowerIndex: 4, nbTrans: 1, changed: true });
  // By hand: DR1 (SF11, -17.5 dB), SNR 21: 21 + 17.5 - 10 = 28.5 dB = 9 steps from index 5 of 7: four data rates,
  // then two indexes to the limit; the other three are unused.
  const nine = decideAdr(request({ dataRate: 1, txPowerIndex: 5, history: historyOf(1, 21) }));
  assert.equal(nine.steps, 9);
  assert.deepEqual(pick(nine), { dataRate: 5, txPowerIndex: 7, nbTrans: 1, changed: true });
});

function pick(decision: AdrDecision) {
  return { dataRate: decision.dataRate, txPowerIndex: decision.txPowerIndex, nbTrans: decision.nbTrans, changed: decision.changed };
}

test('steps round toward zero as ChirpStack does: a margin inside ±3 dB moves nothing', () => {
  const at = (marginDb: number) =>
    decideAdr(request({ dataRate: 3, txPowerIndex: 2, installationMarginDb: 0, history: historyOf(ADR_HISTORY_SIZE, floorOf(3) + marginDb, 2) }));
  for (const marginDb of [-2.9, -0.1, 0, 2.9]) {
    const decision = at(marginDb);
    assert.equal(decision.steps, 0, `margin ${marginDb}`);
    assert.equal(decision.changed, false, `margin ${marginDb}`);
  }
  assert.equal(Object.is(at(-0.1).steps, -0), false, 'no negative zero leaks out');
  assert.deepEqual(pick(at(-3.1)), { dataRate: 3, txPowerIndex: 1, nbTrans: 1, changed: true });
  assert.deepEqual(pick(at(3.1)), { dataRate: 4, txPowerIndex: 2, nbTrans: 1, changed: true });
  assert.equal(at(-5.9).steps, -1);
  assert.equal(at(-6).steps, -2);
});

test('negative steps wait for a full history at the current TX power; positive ones do not', () => {
  const weak = floorOf(5) + DEFAULT_INSTALLATION_MARGIN_DB - 4; // margin -4 dB: one negative step
  const held = decideAdr(request({ dataRate: 5, txPowerIndex: 3, history: historyOf(ADR_HISTORY_SIZE - 1, weak, 3) }));
  assert.equal(held.steps, -1);
  assert.equal(held.held, 'history-not-full');
  assert.equal(held.changed, false);

  // 20 entries, but one from before the last power change: still not 20 at this power.
  let mixed = historyOf(ADR_HISTORY_SIZE - 1, weak, 3, 200);
  mixed = [{ fcnt: 199, maxSnrDb: weak, gatewayCount: 1, txPowerIndex: 4 }, ...mixed];
  assert.equal(decideAdr(request({ dataRate: 5, txPowerIndex: 3, history: mixed })).held, 'history-not-full');

  const acted = decideAdr(request({ dataRate: 5, txPowerIndex: 3, history: historyOf(ADR_HISTORY_SIZE, weak, 3) }));
  assert.equal(acted.held, null);
  assert.deepEqual(pick(acted), { dataRate: 5, txPowerIndex: 2, nbTrans: 1, changed: true });

  const strong = decideAdr(request({ dataRate: 0, history: historyOf(1, 0) }));
  assert.equal(strong.held, null);
  assert.equal(strong.dataRate, 3); // 0 + 20 - 10 = 10 dB -> 3 steps
  assert.equal(decideAdr(request()).held, 'no-history');
  assert.equal(decideAdr(request()).changed, false);
});

test('data-rate limits: the network maximum, capped at the highest 125 kHz rate; the minimum for our backoff', () => {
  // EU868 DR6 is SF7BW250: the algorithm stays on 125 kHz rates (ChirpStack max_lora_dr), so spare margin at DR5
  // lowers TX power instead.
  const spare = decideAdr(request({ dataRate: 5, maxDataRate: 6, history: historyOf(1, 10) }));
  assert.deepEqual(pick(spare), { dataRate: 5, txPowerIndex: 2, nbTrans: 1, changed: true });
  // An uplink at DR6 is above that cap: brought down, like "max dr exceeded".
  assert.equal(decideAdr(request({ dataRate: 6, maxDataRate: 6, history: historyOf(1, floorOf(5) + 10) })).dataRate, 5);
  // Backoff stops at minDataRate.
  const deep = decideAdr(request({ dataRate: 5, minDataRate: 3, history: historyOf(ADR_HISTORY_SIZE, -30) }));
  assert.deepEqual(pick(deep), { dataRate: 3, txPowerIndex: 0, nbTrans: 1, changed: true });
  // A device already below the minimum is not pushed further down.
  assert.equal(decideAdr(request({ dataRate: 1, minDataRate: 3, history: historyOf(ADR_HISTORY_SIZE, -40) })).dataRate, 1);
});

test('a rate the algorithm does not cover is left alone', () => {
  // EU868 DR7 is FSK: not in the LoRa table.
  const fsk = decideAdr(request({ dataRate: 7, maxDataRate: 7, history: historyOf(ADR_HISTORY_SIZE, 0) }));
  assert.equal(fsk.held, 'not-a-lora-rate');
  assert.equal(fsk.snrMarginDb, null);
});

test('packet loss and NbTrans as ChirpStack computes them', () => {
  // default.rs test_get_packet_loss_percentage: counters 0-4, 6-10, 12-21 -> 2 lost of 20 = 10 %.
  let history = EMPTY_UPLINK_HISTORY;
  for (let index = 0; index < 20; index++) {
    const fcnt = index < 5 ? index : index < 10 ? index + 1 : index + 2;
    history = addToUplinkHistory(history, { fcnt, maxSnrDb: 0, gatewayCount: 1, txPowerIndex: 0 });
  }
  assert.equal(lostFrames(history), 2);
  assert.equal(packetLossPercent(history), 10);
  // Until the history is full the loss reads 0 % (ChirpStack's rule).
  assert.equal(lostFrames(history.slice(0, 19)), 2);
  assert.equal(packetLossPercent(history.slice(0, 19)), 0);

  // default.rs test_get_nb_trans, and the table's corners.
  assert.equal(nbTransForLoss(3, 4.99), 2);
  assert.equal(nbTransForLoss(2, 9.99), 2);
  assert.equal(nbTransForLoss(3, 30), 3);
  assert.equal(nbTransForLoss(1, 0), 1);
  assert.equal(nbTransForLoss(1, 5), 1);
  assert.equal(nbTransForLoss(1, 10), 2);
  assert.equal(nbTransForLoss(1, 30), 3);
  assert.equal(nbTransForLoss(0, 30), 3); // read as 1
  assert.equal(nbTransForLoss(15, 0), 2); // read as 3

  // Through decideAdr: 10 % is not below 10 %, so row "< 30 %": NbTrans 1 -> 2.
  const lossy = decideAdr(request({ dataRate: 5, history: history.map((entry) => ({ ...entry, maxSnrDb: floorOf(5) + 10 })) }));
  assert.equal(lossy.nbTrans, 2);
  assert.equal(lossy.changed, true);
});

test('departure from ChirpStack: NbTrans holds until the history is full', () => {
  // Right after a LinkADRReq raised NbTrans to 2 the history starts over. ChirpStack's literal rule would read
  // its loss as 0 % and lower NbTrans again on the very next uplink:
  const short = historyOf(1, floorOf(5) + 10);
  assert.equal(nbTransForLoss(2, packetLossPercent(short)), 1);
  // We keep it until the loss is known.
  for (const count of [1, 10, ADR_HISTORY_SIZE - 1]) {
    const decision = decideAdr(request({ dataRate: 5, nbTrans: 2, history: historyOf(count, floorOf(5) + 10) }));
    assert.equal(decision.nbTrans, 2, `${count} uplinks`);
    assert.equal(decision.changed, false, `${count} uplinks`);
  }
  // A full, clean history then lowers it (table row "< 5 %", column 2).
  assert.equal(decideAdr(request({ dataRate: 5, nbTrans: 2, history: historyOf(ADR_HISTORY_SIZE, floorOf(5) + 10) })).nbTrans, 1);
});

test('the history keeps the last 20 uplinks, skips retransmissions and starts over when the counter does', () => {
  const full = historyOf(25, 1, 0, 0);
  assert.equal(full.length, ADR_HISTORY_SIZE);
  assert.equal(full[0]?.fcnt, 5);
  assert.equal(full.at(-1)?.fcnt, 24);

  // The same counter again: a retransmission (NbTrans > 1) counts once.
  const again = addToUplinkHistory(full, { fcnt: 24, maxSnrDb: 9, gatewayCount: 3, txPowerIndex: 0 });
  assert.equal(again, full);

  // Across the 32-bit wrap no frame is lost.
  let wrapped = EMPTY_UPLINK_HISTORY;
  for (const fcnt of [0xffff_fffe, 0xffff_ffff, 0, 1]) wrapped = addToUplinkHistory(wrapped, { fcnt, maxSnrDb: 0, gatewayCount: 1, txPowerIndex: 0 });
  assert.equal(wrapped.length, 4);
  assert.equal(lostFrames(wrapped), 0);
  // A gap across the wrap counts like any other.
  assert.equal(lostFrames(addToUplinkHistory(wrapped, { fcnt: 5, maxSnrDb: 0, gatewayCount: 1, txPowerIndex: 0 })), 3);

  // A counter behind the last one (a rejoin, a resets_f_cnt device) or too far ahead: the history starts over.
  const restarted = addToUplinkHistory(full, { fcnt: 3, maxSnrDb: 0, gatewayCount: 1, txPowerIndex: 0 });
  assert.deepEqual(
    restarted.map((entry) => entry.fcnt),
    [3],
  );
  // The server accepts up to MAX_FCNT_GAP - 1 = 16,383 skipped frames (frame-counter.ts); so does the history.
  assert.equal(addToUplinkHistory(full, { fcnt: 24 + 16_385, maxSnrDb: 0, gatewayCount: 1, txPowerIndex: 0 }).length, 1);
  assert.equal(addToUplinkHistory(full, { fcnt: 24 + 16_384, maxSnrDb: 0, gatewayCount: 1, txPowerIndex: 0 }).length, ADR_HISTORY_SIZE);

  assert.throws(() => addToUplinkHistory(full, { fcnt: 2 ** 32, maxSnrDb: 0, gatewayCount: 1, txPowerIndex: 0 }), /fcnt 4294967296/);
  assert.throws(() => addToUplinkHistory(full, { fcnt: 30, maxSnrDb: Number.NaN, gatewayCount: 1, txPowerIndex: 0 }), /maxSnrDb NaN/);
  assert.throws(() => addToUplinkHistory(full, { fcnt: 30, maxSnrDb: 0, gatewayCount: 1, txPowerIndex: 16 }), /txPowerIndex 16/);
});

test('a history entry takes the best SNR over the gateways that heard the uplink', () => {
  assert.deepEqual(uplinkHistoryEntry(42, [{ snr: -3 }, { snr: 5.5 }, { snr: null }], 2), { fcnt: 42, maxSnrDb: 5.5, gatewayCount: 3, txPowerIndex: 2 });
  assert.deepEqual(uplinkHistoryEntry(42, [{ snr: -12.25 }], 0), { fcnt: 42, maxSnrDb: -12.25, gatewayCount: 1, txPowerIndex: 0 });
  // No SNR (a serial radio without one): the uplink says nothing about the margin.
  assert.equal(uplinkHistoryEntry(42, [{ snr: null }], 0), null);
  assert.equal(uplinkHistoryEntry(42, [], 0), null);
  assert.equal(uplinkHistoryEntry(42, [{ snr: Number.NaN }], 0), null);
  // A gateway's nonsense SNR cannot make the entry invalid.
  assert.equal(uplinkHistoryEntry(42, [{ snr: 400 }], 0)?.maxSnrDb, 127);
});

test('the history serializes to compact JSON and reads back', () => {
  const history = [
    { fcnt: 7, maxSnrDb: -3.5, gatewayCount: 2, txPowerIndex: 1 },
    { fcnt: 9, maxSnrDb: 10.25, gatewayCount: 1, txPowerIndex: 1 },
  ];
  const text = serializeUplinkHistory(history);
  assert.equal(text, '{"v":1,"u":[[7,-3.5,2,1],[9,10.25,1,1]]}');
  assert.deepEqual(deserializeUplinkHistory(text), { ok: true, history });
  assert.deepEqual(deserializeUplinkHistory(serializeUplinkHistory(EMPTY_UPLINK_HISTORY)), { ok: true, history: [] });
  // The JSON value form, for embedding in the device's persisted state without double encoding.
  const embedded = JSON.parse(JSON.stringify({ session: {}, adr: persistUplinkHistory(history) })) as { adr: unknown };
  assert.deepEqual(readPersistedUplinkHistory(embedded.adr), { ok: true, history });
  // A full history stays small.
  assert.ok(serializeUplinkHistory(historyOf(ADR_HISTORY_SIZE, -12.25, 3, 4_000_000_000)).length < 600);
});

test('garbage is refused with a reason, never thrown', () => {
  const valid = (fcnt: number) => [fcnt, 0, 1, 0];
  const garbage: unknown[] = [
    undefined,
    null,
    42,
    '',
    'nope',
    '[]',
    '{}',
    'null',
    '{"v":2,"u":[]}',
    '{"v":"1","u":[]}',
    '{"v":1}',
    '{"v":1,"u":{}}',
    '{"v":1,"u":[null]}',
    '{"v":1,"u":[[1,2,3]]}',
    '{"v":1,"u":[[1,2,3,4,5]]}',
    '{"v":1,"u":[[1,"2",1,0]]}',
    '{"v":1,"u":[[1.5,0,1,0]]}',
    '{"v":1,"u":[[-1,0,1,0]]}',
    '{"v":1,"u":[[4294967296,0,1,0]]}',
    '{"v":1,"u":[[1,1e400,1,0]]}',
    '{"v":1,"u":[[1,-200,1,0]]}',
    '{"v":1,"u":[[1,0,0,0]]}',
    '{"v":1,"u":[[1,0,1,16]]}',
    '{"v":1,"u":[[1,0,1,-1]]}',
    JSON.stringify({ v: 1, u: [valid(5), valid(4)] }),
    JSON.stringify({ v: 1, u: [valid(5), valid(5)] }),
    JSON.stringify({ v: 1, u: [valid(5), valid(5 + 16_385)] }),
    JSON.stringify({ v: 1, u: Array.from({ length: 21 }, (_, index) => valid(index)) }),
    `{"v":1,"u":[${'[1,0,1,0],'.repeat(500)}[1,0,1,0]]}`,
    '{"v":1,"u":[[1,0,1,0]]',
    '{"__proto__":{"v":1},"u":[]}',
  ];
  for (const input of garbage) {
    const read = deserializeUplinkHistory(input);
    assert.equal(read.ok, false, `accepted ${String(input).slice(0, 60)}`);
    if (!read.ok) assert.match(read.reason, /^unreadable ADR uplink history: /);
  }
  assert.equal(readPersistedUplinkHistory([1, 2]).ok, false);
  assert.equal(readPersistedUplinkHistory({ v: 10n, u: [] }).ok, false);

  // Random corruptions of a valid text (a seeded generator, so a failure reproduces): each is read or refused,
  // and what is read is a valid history.
  const text = serializeUplinkHistory(historyOf(ADR_HISTORY_SIZE, -7.25, 2, 65_530));
  let seed = 0x5eed;
  const random = (below: number) => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed % below;
  };
  const alphabet = '{}[],:."-+e0123456789vu \\';
  for (let round = 0; round < 3000; round++) {
    const chars = [...text];
    for (let edits = 1 + random(4); edits > 0; edits--) {
      const at = random(chars.length + 1);
      const what = random(3);
      if (what === 0) chars.splice(at, 1);
      else if (what === 1) chars.splice(at, 0, alphabet[random(alphabet.length)] ?? '');
      else chars[at] = alphabet[random(alphabet.length)] ?? '';
    }
    const read = deserializeUplinkHistory(chars.join(''));
    if (read.ok) {
      assert.ok(read.history.length <= ADR_HISTORY_SIZE);
      let rebuilt = EMPTY_UPLINK_HISTORY;
      for (const entry of read.history) rebuilt = addToUplinkHistory(rebuilt, entry);
      assert.deepEqual(rebuilt, read.history);
    }
  }
});

test('a request with values no session can hold is a programming error', () => {
  assert.throws(() => decideAdr(request({ txPowerIndex: 16 })), /txPowerIndex 16/);
  assert.throws(() => decideAdr(request({ dataRate: -1 })), /dataRate -1/);
  assert.throws(() => decideAdr(request({ minDataRate: 4, maxDataRate: 3 })), /minDataRate 4 is above maxDataRate 3/);
  assert.throws(() => decideAdr(request({ installationMarginDb: Number.NaN })), /installationMarginDb NaN/);
});

// ---- a simulated device ----

interface SimulatedDevice {
  dataRate: number;
  txPowerIndex: number;
  nbTrans: number;
  history: UplinkHistory;
  fcnt: number;
}

interface Change {
  readonly uplink: number;
  readonly dataRate: number;
  readonly txPowerIndex: number;
  readonly nbTrans: number;
}

/**
 * Sends `count` uplinks. The gateway measures `linkSnrDb(uplink)` less 2 dB per TX power index (SNR does not
 * depend on the SF at one bandwidth). A frame `lost` is never heard (NbTrans > 1 is taken to get it through).
 * Each decision that changes something is acknowledged by the device before its next uplink, and the history
 * starts over, as ChirpStack does on a LinkADRAns that accepts a change.
 */
function run(
  device: SimulatedDevice,
  from: number,
  count: number,
  linkSnrDb: (uplink: number) => number,
  lost: (fcnt: number) => boolean = () => false,
): { changes: Change[]; decisions: AdrDecision[] } {
  const changes: Change[] = [];
  const decisions: AdrDecision[] = [];
  for (let uplink = from; uplink < from + count; uplink++) {
    const fcnt = device.fcnt++;
    if (device.nbTrans === 1 && lost(fcnt)) continue;
    const snr = linkSnrDb(uplink) - DB_PER_TX_POWER_INDEX * device.txPowerIndex;
    const entry = uplinkHistoryEntry(fcnt, [{ snr }, { snr: snr - 6 }], device.txPowerIndex);
    assert.ok(entry !== null);
    device.history = addToUplinkHistory(device.history, entry);
    const decision = decideAdr(request({ dataRate: device.dataRate, txPowerIndex: device.txPowerIndex, nbTrans: device.nbTrans, history: device.history }));
    decisions.push(decision);
    if (decision.changed) {
      device.dataRate = decision.dataRate;
      device.txPowerIndex = decision.txPowerIndex;
      device.nbTrans = decision.nbTrans;
      device.history = EMPTY_UPLINK_HISTORY;
      changes.push({ uplink, dataRate: decision.dataRate, txPowerIndex: decision.txPowerIndex, nbTrans: decision.nbTrans });
    }
  }
  return { changes, decisions };
}

function newDevice(): SimulatedDevice {
  return { dataRate: 0, txPowerIndex: 0, nbTrans: 1, history: EMPTY_UPLINK_HISTORY, fcnt: 0 };
}

/** Margin at the device's current settings for a link SNR at full power. */
function marginOf(device: SimulatedDevice, linkSnrDb: number): number {
  return linkSnrDb - DB_PER_TX_POWER_INDEX * device.txPowerIndex - floorOf(device.dataRate) - DEFAULT_INSTALLATION_MARGIN_DB;
}

test('a device starting at SF12 converges to the rate its SNR allows, then lowers its TX power', () => {
  // +9 dB at full power. Uplink 0 at DR0: 9 + 20 - 10 = 19 dB = 6 steps: DR5, then one power step (index 1).
  // Uplink 1: 7 + 7.5 - 10 = 4.5 dB = 1 step: index 2. Then 5 + 7.5 - 10 = 2.5 dB: stays.
  const good = newDevice();
  assert.deepEqual(run(good, 0, 60, () => 9).changes, [
    { uplink: 0, dataRate: 5, txPowerIndex: 1, nbTrans: 1 },
    { uplink: 1, dataRate: 5, txPowerIndex: 2, nbTrans: 1 },
  ]);
  const settled = marginOf(good, 9);
  assert.ok(settled >= 0 && settled < 3, `settled margin ${settled} dB`);

  // -6 dB: DR0 has 4 dB (1 step) -> DR1 with 1.5 dB; DR2 would be at -1 dB.
  const far = newDevice();
  assert.deepEqual(run(far, 0, 60, () => -6).changes, [{ uplink: 0, dataRate: 1, txPowerIndex: 0, nbTrans: 1 }]);

  // Over a range of links, the device always ends with 0..3 dB to spare, or at the top rate and lowest power.
  for (let link = -9.5; link <= 30; link += 0.75) {
    const device = newDevice();
    run(device, 0, 100, () => link);
    const margin = marginOf(device, link);
    const atTop = device.dataRate === 5 && device.txPowerIndex === EU868_MAX_TX_POWER_INDEX;
    assert.ok((margin >= 0 && margin < 3) || (atTop && margin >= 0), `link ${link} dB: DR${device.dataRate} index ${device.txPowerIndex}, margin ${margin} dB`);
  }
});

test('when the link degrades it comes back up in power first, then down in data rate, each after a full history', () => {
  const device = newDevice();
  const link = (uplink: number) => (uplink < 40 ? 9 : uplink < 100 ? -5 : 9);
  assert.equal(run(device, 0, 40, link).changes.length, 2); // DR5 at index 2, as above

  // From uplink 40 the link is 14 dB worse. The 20-uplink history still holds good SNRs until uplink 59; then
  // -9 + 7.5 - 10 = -11.5 dB = -3 steps: index 2 -> 0 (two steps), and the third lowers DR5 -> DR4.
  // (ChirpStack would stop at DR5, index 0, with -7.5 dB of margin.) At DR4: -5 + 10 - 10 = -5 dB = -1 step,
  // acted on once 20 uplinks at the new settings are in: DR3, where -5 + 12.5 - 10 = -2.5 dB rounds to 0.
  const degraded = run(device, 40, 60, link);
  assert.deepEqual(degraded.changes, [
    { uplink: 59, dataRate: 4, txPowerIndex: 0, nbTrans: 1 },
    { uplink: 79, dataRate: 3, txPowerIndex: 0, nbTrans: 1 },
  ]);
  const between = degraded.decisions.slice(20, 39); // uplinks 60..78
  assert.equal(between.length, ADR_HISTORY_SIZE - 1);
  for (const decision of between) {
    assert.equal(decision.steps, -1);
    assert.equal(decision.held, 'history-not-full');
  }
  assert.equal(degraded.decisions.at(-1)?.steps, 0);

  // The link recovers: positive steps act on the first good uplink (9 + 12.5 - 10 = 11.5 dB = 3 steps).
  assert.deepEqual(run(device, 100, 30, link).changes, [
    { uplink: 100, dataRate: 5, txPowerIndex: 1, nbTrans: 1 },
    { uplink: 101, dataRate: 5, txPowerIndex: 2, nbTrans: 1 },
  ]);
});

test('frame loss raises NbTrans once 20 uplinks show it, and it holds until the next 20 say otherwise', () => {
  const device: SimulatedDevice = { dataRate: 5, txPowerIndex: 0, nbTrans: 1, history: EMPTY_UPLINK_HISTORY, fcnt: 0 };
  // Margin 3 + 7.5 - 10 = 0.5 dB: ADR leaves DR and power alone. Every fifth frame is lost at NbTrans 1: the 20th
  // received uplink (counter 23, uplink 23) has 4 lost in the history, 20 % -> row "< 30 %" -> NbTrans 2.
  const lossy = run(
    device,
    0,
    60,
    () => 3,
    (fcnt) => fcnt % 5 === 4,
  );
  // At NbTrans 2 nothing is lost; the next change comes after 20 more uplinks: a clean history, NbTrans 2 -> 1.
  assert.deepEqual(lossy.changes, [
    { uplink: 23, dataRate: 5, txPowerIndex: 0, nbTrans: 2 },
    { uplink: 43, dataRate: 5, txPowerIndex: 0, nbTrans: 1 },
  ]);
});
