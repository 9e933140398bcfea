// Network-side ADR (adaptive data rate, LoRaWAN 1.0.x §4.3.1.1) for the edge network server: from a device's
// last 20 uplinks, the data rate, TX power index and NbTrans its next LinkADRReq should ask for. A port of
// ChirpStack's default algorithm (chirpstack/chirpstack, chirpstack/src/adr/default.rs, "Default ADR algorithm
// (LoRa only)"); the per-device uplink history it reads is kept here too, as ChirpStack keeps it with the device
// session (chirpstack/src/uplink/data.rs, append_meta_data_to_uplink_history).
//
// Two departures from ChirpStack, both marked where they are made:
//  - Backing off the data rate (issue 15: "back up when the link degrades"). ChirpStack never lowers the data
//    rate; once TX power is at its maximum, negative steps do nothing, and a device whose link got worse only
//    recovers through its own ADR_ACK backoff: after ADR_ACK_LIMIT (64) uplinks without a downlink it sets
//    ADRACKReq, and only after ADR_ACK_DELAY (32) more does it step its data rate down (LoRaWAN 1.0.2
//    §4.3.1.1), 96 uplinks sent at a rate the gateways barely hear. Here, steps left over once TX power is at
//    index 0 lower the data rate, never below the configured minimum (stepsApplied()).
//  - NbTrans holds while the history is not full. ChirpStack reads the loss of a short history as 0 %, so right
//    after a LinkADRReq that raised NbTrans (which empties the history) the next uplink lowers it again: a lossy
//    link gets NbTrans 2 for one uplink in 21. The Things Stack fixed the same flapping by waiting for
//    enough uplinks (TheThingsNetwork/lorawan-stack#3253); the loss is only known once 20 are in.
//
// The server's part, which ChirpStack does outside the algorithm: call decideAdr() for uplinks with the ADR bit
// set, with the uplink's data rate; send a LinkADRReq when `changed`; and when the device acknowledges a
// LinkADRReq that changed DR, TX power or NbTrans, start its history over (EMPTY_UPLINK_HISTORY), since SNRs
// measured at the old settings no longer describe the link (chirpstack/src/maccommand/link_adr.rs).
import type { DataRate } from '../lorawan/region.ts';
import { MAX_FCNT_GAP } from '../lorawan/frame-counter.ts';
import type { Reception } from './reception.ts';

/**
 * Demodulation floor per spreading factor, dB: the SNR below which a frame at that SF is not received
 * (chirpstack/src/config.rs get_required_snr_for_sf; the SX1276 datasheet's table). For ADR and for the Margin
 * of a LinkCheckAns (LoRaWAN 1.0.2 §5.2: the link margin in dB above the demodulation floor).
 */
export const REQUIRED_SNR_DB_BY_SF: ReadonlyMap<number, number> = new Map([
  [6, -5],
  [7, -7.5],
  [8, -10],
  [9, -12.5],
  [10, -15],
  [11, -17.5],
  [12, -20],
]);

/** The demodulation floor for a spreading factor, dB; null for an SF LoRa does not have. */
export function requiredSnrDb(spreadingFactor: number): number | null {
  return REQUIRED_SNR_DB_BY_SF.get(spreadingFactor) ?? null;
}

/** Uplinks the history keeps, and how many at the current TX power a negative step waits for (ChirpStack: 20). */
export const ADR_HISTORY_SIZE = 20;

/** ChirpStack's default `installation_margin` (chirpstack/src/config.rs, RegionNetwork::default). */
export const DEFAULT_INSTALLATION_MARGIN_DB = 10;

/** dB per ADR step: one step is one data rate up, or one TX power index (2 dB in EU868) down. */
const DB_PER_STEP = 3;

const FCNT32 = 2 ** 32;

/** A LoRa SNR is reported as a signed byte (SX1301 and SX1276 registers); anything outside is not a measurement. */
const SNR_MIN_DB = -128;
const SNR_MAX_DB = 127;
const MAX_GATEWAY_COUNT = 0xffff;
/** LinkADRReq's TXPower field is 4 bits (LoRaWAN 1.0.2 §5.2). */
const MAX_TX_POWER_INDEX_FIELD = 15;

/** One uplink as ADR remembers it. */
export interface UplinkHistoryEntry {
  /** Full 32-bit FCntUp. */
  readonly fcnt: number;
  /** Best SNR over the gateways that heard the uplink, dB. */
  readonly maxSnrDb: number;
  readonly gatewayCount: number;
  /** The TX power index the session had when the uplink came (0 = the region's maximum power). */
  readonly txPowerIndex: number;
}

/** The last ADR_HISTORY_SIZE uplinks of a device, oldest first, counters strictly increasing (modulo 2^32). */
export type UplinkHistory = readonly UplinkHistoryEntry[];

export const EMPTY_UPLINK_HISTORY: UplinkHistory = Object.freeze([]);

/**
 * The history entry for an uplink heard by `receptions`, or null when no gateway reported an SNR (a serial radio
 * that gives none): without one the uplink says nothing about the link margin and is left out.
 */
export function uplinkHistoryEntry(fcnt: number, receptions: readonly Pick<Reception, 'snr'>[], txPowerIndex: number): UplinkHistoryEntry | null {
  let maxSnrDb: number | null = null;
  for (const { snr } of receptions) {
    if (snr !== null && Number.isFinite(snr) && (maxSnrDb === null || snr > maxSnrDb)) maxSnrDb = snr;
  }
  if (maxSnrDb === null) return null;
  // A gateway's SNR is a signed byte at most; clamped so the entry always passes the history's validation.
  return { fcnt, maxSnrDb: Math.min(SNR_MAX_DB, Math.max(SNR_MIN_DB, maxSnrDb)), gatewayCount: Math.min(receptions.length, MAX_GATEWAY_COUNT), txPowerIndex };
}

/** Frames lost between two consecutive history counters: the gap less the one expected step, modulo 2^32. */
function lostBetween(previousFcnt: number, fcnt: number): number {
  return (fcnt - previousFcnt - 1 + FCNT32) % FCNT32;
}

/**
 * The history with `entry` appended, the oldest dropped beyond ADR_HISTORY_SIZE. A retransmission (the last
 * entry's counter again) leaves it as it is, as ChirpStack does: its SNR would count one frame twice. A counter
 * behind the last one, or MAX_FCNT_GAP or more frames past it (what the server takes for a replay unless the
 * device restarted its count: a rejoin, a resets_f_cnt device), cannot be compared with the old ones, so the
 * history starts over.
 * Throws RangeError for an entry outside the ranges described on UplinkHistoryEntry (a programming error:
 * uplinkHistoryEntry() only builds valid ones).
 */
export function addToUplinkHistory(history: UplinkHistory, entry: UplinkHistoryEntry): UplinkHistory {
  const problem = entryProblem(entry);
  if (problem !== null) throw new RangeError(`ADR uplink history entry ${JSON.stringify(entry)}: ${problem}`);
  const last = history.at(-1);
  if (last !== undefined && last.fcnt === entry.fcnt) return history;
  if (last !== undefined && lostBetween(last.fcnt, entry.fcnt) >= MAX_FCNT_GAP) return [entry];
  return [...history.slice(-(ADR_HISTORY_SIZE - 1)), entry];
}

/** Frames missing between the history's counters: a gap of n between two consecutive entries is n - 1 lost. */
export function lostFrames(history: UplinkHistory): number {
  let lost = 0;
  for (let index = 1; index < history.length; index++) {
    const previous = history[index - 1];
    const current = history[index];
    if (previous !== undefined && current !== undefined) lost += lostBetween(previous.fcnt, current.fcnt);
  }
  return lost;
}

/**
 * Packet loss in percent as ChirpStack's get_packet_loss_percentage computes it: 0 until the history is full,
 * then lost frames / ADR_HISTORY_SIZE * 100 (lost over the entries kept, not over the frames sent).
 */
export function packetLossPercent(history: UplinkHistory): number {
  if (history.length < ADR_HISTORY_SIZE) return 0;
  return (lostFrames(history) / history.length) * 100;
}

/**
 * NbTrans (transmissions of each unconfirmed uplink) for a packet loss, ChirpStack's get_nb_trans table: rows
 * loss < 5 %, < 10 %, < 30 %, >= 30 %; columns the current NbTrans 1, 2, 3 (values outside 1..3 are read as the
 * nearest). A clean link steps NbTrans down by one, a lossy one up.
 */
export function nbTransForLoss(currentNbTrans: number, lossPercent: number): number {
  const column = Math.min(3, Math.max(1, Math.trunc(currentNbTrans))) - 1;
  const row = lossPercent < 5 ? 0 : lossPercent < 10 ? 1 : lossPercent < 30 ? 2 : 3;
  return NB_TRANS_BY_LOSS[row]?.[column] ?? 1;
}

const NB_TRANS_BY_LOSS: readonly (readonly number[])[] = [
  [1, 1, 2],
  [1, 2, 3],
  [2, 3, 3],
  [3, 3, 3],
];

/** What ADR reads of a region's data rate. */
export type LoraRate = Pick<DataRate, 'spreadingFactor' | 'bandwidthKHz'>;

/** What ADR needs to know about a device and the network; all plain data. */
export interface AdrRequest {
  /** The data rate of the uplink just received (ChirpStack uses the uplink's, not the one last requested). */
  readonly dataRate: number;
  /** The session's TX power index; 0 is the region's maximum power, each step lowers it (EU868: 2 dB). */
  readonly txPowerIndex: number;
  readonly nbTrans: number;
  /** The network's data-rate bounds (ChirpStack's min_dr/max_dr). maxDataRate is further capped to the region's highest 125 kHz LoRa rate. */
  readonly minDataRate: number;
  readonly maxDataRate: number;
  /** The region's highest TX power index (Region.txPowerOffsetsDb.length - 1; EU868 0..7 in RP002-1.0.3), or the device's own if lower. */
  readonly maxTxPowerIndex: number;
  /** dB kept in reserve above the demodulation floor; DEFAULT_INSTALLATION_MARGIN_DB as ChirpStack. */
  readonly installationMarginDb: number;
  readonly history: UplinkHistory;
  /** The region's LoRa data rates (Region.dataRates): the SF of `dataRate`, and which rates are 125 kHz. */
  readonly dataRates: ReadonlyMap<number, LoraRate>;
}

export interface AdrDecision {
  readonly dataRate: number;
  readonly txPowerIndex: number;
  readonly nbTrans: number;
  /** Whether any of the three differs from the request: then the device needs a LinkADRReq. */
  readonly changed: boolean;
  /** Best SNR in the history - required SNR of the data rate - installation margin, dB; null with no history or a non-LoRa rate. */
  readonly snrMarginDb: number | null;
  /** margin / 3 dB truncated toward zero (positive: the link has room). */
  readonly steps: number;
  /** Why the steps were not applied, for the log (the cap on the data rate and NbTrans still were); null when they were. */
  readonly held: 'no-history' | 'history-not-full' | 'not-a-lora-rate' | null;
}

/**
 * The data rate, TX power index and NbTrans a device should use next. ChirpStack's default algorithm:
 *  1. the data rate is capped at the network's maximum (itself capped at the highest 125 kHz LoRa rate);
 *  2. NbTrans follows the packet loss over a full history (nbTransForLoss; held until the history is full);
 *  3. margin = max SNR over the history - required SNR of the uplink's SF - installation margin, and
 *     steps = trunc(margin / 3): ChirpStack's `(snr_margin / 3.0) as isize` rounds toward zero, so a margin
 *     between -3 and +3 dB moves nothing (a dead band, not floor());
 *  4. negative steps wait until ADR_HISTORY_SIZE uplinks were received at the current TX power, so the power
 *     does not go up and down on a few weak frames;
 *  5. each positive step raises the data rate up to the maximum, then lowers the power (raises the index) up to
 *     maxTxPowerIndex; each negative step raises the power (lowers the index) while it is above 0, and then
 *     (our addition, see the module comment) lowers the data rate down to minDataRate.
 */
export function decideAdr(request: AdrRequest): AdrDecision {
  assertRequest(request);
  const { txPowerIndex, nbTrans, history } = request;
  const maxDataRate = Math.min(request.maxDataRate, highest125KHzRate(request.dataRates) ?? request.maxDataRate);
  const dataRate = Math.min(request.dataRate, maxDataRate);
  // Departure from ChirpStack (module comment): the loss of a short history is unknown, not 0 %.
  const nextNbTrans = history.length < ADR_HISTORY_SIZE ? nbTrans : nbTransForLoss(nbTrans, packetLossPercent(history));
  const decision = (next: { dataRate: number; txPowerIndex: number }, snrMarginDb: number | null, steps: number, held: AdrDecision['held']): AdrDecision => ({
    dataRate: next.dataRate,
    txPowerIndex: next.txPowerIndex,
    nbTrans: nextNbTrans,
    changed: next.dataRate !== request.dataRate || next.txPowerIndex !== txPowerIndex || nextNbTrans !== nbTrans,
    snrMarginDb,
    steps,
    held,
  });

  const spreadingFactor = request.dataRates.get(request.dataRate)?.spreadingFactor;
  const required = spreadingFactor === undefined ? null : requiredSnrDb(spreadingFactor);
  if (required === null) return decision({ dataRate, txPowerIndex }, null, 0, 'not-a-lora-rate');
  if (history.length === 0) return decision({ dataRate, txPowerIndex }, null, 0, 'no-history');

  const maxSnrDb = Math.max(...history.map((entry) => entry.maxSnrDb));
  const snrMarginDb = maxSnrDb - required - request.installationMarginDb;
  // `+ 0` turns trunc's -0 (a margin just below zero) into 0.
  const steps = Math.trunc(snrMarginDb / DB_PER_STEP) + 0;
  const atThisPower = history.filter((entry) => entry.txPowerIndex === txPowerIndex).length;
  if (steps < 0 && atThisPower !== ADR_HISTORY_SIZE) return decision({ dataRate, txPowerIndex }, snrMarginDb, steps, 'history-not-full');

  const next = stepsApplied(steps, { dataRate, txPowerIndex }, { ...request, maxDataRate });
  return decision(next, snrMarginDb, steps, null);
}

/** The session and configuration values are ours, not a device's: a bad one is a programming error. */
function assertRequest(request: AdrRequest): void {
  const indexes = {
    dataRate: [request.dataRate, 15],
    txPowerIndex: [request.txPowerIndex, MAX_TX_POWER_INDEX_FIELD],
    nbTrans: [request.nbTrans, 15],
    minDataRate: [request.minDataRate, 15],
    maxDataRate: [request.maxDataRate, 15],
    maxTxPowerIndex: [request.maxTxPowerIndex, MAX_TX_POWER_INDEX_FIELD],
  } as const;
  for (const [name, [value, max]] of Object.entries(indexes)) {
    if (!Number.isInteger(value) || value < 0 || value > max) throw new RangeError(`ADR request: ${name} ${value} is not an integer in 0..${max}`);
  }
  if (request.minDataRate > request.maxDataRate) {
    throw new RangeError(`ADR request: minDataRate ${request.minDataRate} is above maxDataRate ${request.maxDataRate}`);
  }
  if (!Number.isFinite(request.installationMarginDb)) {
    throw new RangeError(`ADR request: installationMarginDb ${request.installationMarginDb} is not a number of dB`);
  }
}

/** ChirpStack's get_ideal_tx_power_index_and_dr, as a loop, plus our data-rate backoff for negative steps. */
function stepsApplied(
  steps: number,
  start: { readonly dataRate: number; readonly txPowerIndex: number },
  limits: { readonly minDataRate: number; readonly maxDataRate: number; readonly maxTxPowerIndex: number },
): { dataRate: number; txPowerIndex: number } {
  let { dataRate, txPowerIndex } = start;
  for (let left = steps; left > 0; left--) {
    if (dataRate < limits.maxDataRate) dataRate++;
    else if (txPowerIndex < limits.maxTxPowerIndex) txPowerIndex++;
  }
  for (let left = steps; left < 0; left++) {
    if (txPowerIndex > 0) txPowerIndex--;
    // Our addition: ChirpStack stops here; we back the data rate off (see the module comment).
    else if (dataRate > limits.minDataRate) dataRate--;
  }
  return { dataRate, txPowerIndex };
}

/** ChirpStack works on 125 kHz LoRa rates only: SF7BW250 has SF7's floor, so a step onto it would gain nothing it can measure. */
function highest125KHzRate(dataRates: ReadonlyMap<number, LoraRate>): number | null {
  let highest: number | null = null;
  for (const [index, rate] of dataRates) {
    if (rate.bandwidthKHz === 125 && (highest === null || index > highest)) highest = index;
  }
  return highest;
}

// ---- persistence: the history is committed with the device session ----

/**
 * The history as a compact JSON value, to embed in the device's persisted state:
 *   { "v": 1, "u": [[fcnt, maxSnrDb, gatewayCount, txPowerIndex], ...] }   oldest first
 */
export interface PersistedUplinkHistory {
  readonly v: 1;
  readonly u: readonly (readonly [number, number, number, number])[];
}

export function persistUplinkHistory(history: UplinkHistory): PersistedUplinkHistory {
  return { v: 1, u: history.map((entry) => [entry.fcnt, entry.maxSnrDb, entry.gatewayCount, entry.txPowerIndex] as const) };
}

export type UplinkHistoryRead = { readonly ok: true; readonly history: UplinkHistory } | { readonly ok: false; readonly reason: string };

/** A persisted history read back; never throws. Anything but what persistUplinkHistory writes is refused with the reason. */
export function readPersistedUplinkHistory(value: unknown): UplinkHistoryRead {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return refused('not an object');
  const { v, u } = value as { v?: unknown; u?: unknown };
  if (v !== 1) return refused(`version ${typeof v === 'number' ? v : typeof v} (this build reads 1)`);
  if (!Array.isArray(u)) return refused('"u" is not an array');
  if (u.length > ADR_HISTORY_SIZE) return refused(`${u.length} entries, more than ${ADR_HISTORY_SIZE}`);
  const history: UplinkHistoryEntry[] = [];
  for (const [index, item] of u.entries()) {
    if (!Array.isArray(item) || item.length !== 4 || !item.every((field) => typeof field === 'number')) {
      return refused(`entry ${index} is not [fcnt, maxSnrDb, gatewayCount, txPowerIndex]`);
    }
    const [fcnt, maxSnrDb, gatewayCount, txPowerIndex] = item as [number, number, number, number];
    const entry: UplinkHistoryEntry = { fcnt, maxSnrDb, gatewayCount, txPowerIndex };
    const problem = entryProblem(entry);
    if (problem !== null) return refused(`entry ${index}: ${problem}`);
    const previous = history.at(-1);
    if (previous !== undefined) {
      const step = lostBetween(previous.fcnt, fcnt) + 1;
      if (step === 0 || step > MAX_FCNT_GAP) return refused(`entry ${index}: counter ${fcnt} does not follow ${previous.fcnt}`);
    }
    history.push(entry);
  }
  return { ok: true, history };
}

/** Bound on the text deserializeUplinkHistory reads: 20 entries of 4 numbers fit in well under 1 KB. */
const MAX_SERIALIZED_CHARS = 4096;

/** The history as compact JSON text (persistUplinkHistory's value). */
export function serializeUplinkHistory(history: UplinkHistory): string {
  return JSON.stringify(persistUplinkHistory(history));
}

/** serializeUplinkHistory's text read back; never throws, refuses garbage with the reason. */
export function deserializeUplinkHistory(text: unknown): UplinkHistoryRead {
  if (typeof text !== 'string') return refused(`not a string but ${text === null ? 'null' : typeof text}`);
  if (text.length > MAX_SERIALIZED_CHARS) return refused(`${text.length} characters, more than ${MAX_SERIALIZED_CHARS}`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return refused('not JSON');
  }
  return readPersistedUplinkHistory(value);
}

function refused(reason: string): UplinkHistoryRead {
  return { ok: false, reason: `unreadable ADR uplink history: ${reason}` };
}

function entryProblem(entry: UplinkHistoryEntry): string | null {
  if (!Number.isInteger(entry.fcnt) || entry.fcnt < 0 || entry.fcnt >= FCNT32) return `fcnt ${entry.fcnt} is not a 32-bit counter`;
  if (!Number.isFinite(entry.maxSnrDb) || entry.maxSnrDb < SNR_MIN_DB || entry.maxSnrDb > SNR_MAX_DB) return `maxSnrDb ${entry.maxSnrDb} is not an SNR in dB`;
  if (!Number.isInteger(entry.gatewayCount) || entry.gatewayCount < 1 || entry.gatewayCount > MAX_GATEWAY_COUNT)
    return `gatewayCount ${entry.gatewayCount} is not 1..${MAX_GATEWAY_COUNT}`;
  if (!Number.isInteger(entry.txPowerIndex) || entry.txPowerIndex < 0 || entry.txPowerIndex > MAX_TX_POWER_INDEX_FIELD) {
    return `txPowerIndex ${entry.txPowerIndex} is not 0..${MAX_TX_POWER_INDEX_FIELD}`;
  }
  return null;
}
