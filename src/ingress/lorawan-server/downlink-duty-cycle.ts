// Downlink duty cycle: a gateway is a transmitter too, and in regions like EU868 each sub-band allows a share of
// airtime per observation window (ETSI EN 300 220: one hour; RP002-1.0.3 §2.4 refers EU868 devices to it).
// Before a downlink goes to a gateway the server reserves its airtime here; a refusal says which band is full and
// when the frame would fit. Pure: the caller passes the time (any ms clock, the same one on every call).
//
// Memory is bounded twice: per (gateway, band) the airtime sits in buckets of bucketMs (a minute by default),
// at most windowMs / bucketMs + 1 of them, dropped as they leave the window; and at most maxGateways gateways
// are tracked. A new gateway beyond that takes the place of the least recently used one if that one has nothing
// left in its window; otherwise the downlink is refused, because forgetting airtime a gateway has used could
// let it transmit past its legal limit.

export interface DutyCycleBand {
  readonly name: string;
  /** Inclusive edges, Hz. Where two bands share an edge frequency, the first band in the list has it. */
  readonly minHz: number;
  readonly maxHz: number;
  /** Share of the window, 0 < dutyCycle <= 1 (0.01 for 1 %). */
  readonly dutyCycle: number;
}

export interface DownlinkDutyCycleOptions {
  /** The region's duty-cycle bands; none (regions without a duty-cycle rule): every reservation is granted. */
  readonly bands: readonly DutyCycleBand[];
  readonly maxGateways: number;
  /** The observation window; ETSI_WINDOW_MS by default. */
  readonly windowMs?: number;
  /** Bucket width; windowMs must be a multiple of it. DEFAULT_BUCKET_MS by default. */
  readonly bucketMs?: number;
}

/** ETSI EN 300 220's observation period for duty cycle: one hour. */
export const ETSI_WINDOW_MS = 3_600_000;
export const DEFAULT_BUCKET_MS = 60_000;

export interface DutyCycleGrant {
  readonly ok: true;
  readonly gatewayEui: string;
  /** null when the region has no duty-cycle bands. */
  readonly band: DutyCycleBand | null;
  readonly airtimeMs: number;
  readonly reservedAtMs: number;
}

export type DutyCycleRefusal =
  | {
      readonly ok: false;
      readonly reason: 'duty-cycle';
      readonly band: DutyCycleBand;
      /** Airtime the gateway used in the band within the window, and what the band allows, ms. */
      readonly usedMs: number;
      readonly limitMs: number;
      /** From now until the frame would fit; null when it never fits (longer than the band's whole allowance). */
      readonly retryInMs: number | null;
      readonly message: string;
    }
  | { readonly ok: false; readonly reason: 'no-band'; readonly message: string }
  | { readonly ok: false; readonly reason: 'too-many-gateways'; readonly message: string };

export interface BandUsage {
  readonly band: DutyCycleBand;
  readonly usedMs: number;
  readonly limitMs: number;
}

export interface DownlinkDutyCycle {
  /**
   * Reserves `airtimeMs` on `frequencyHz` for a downlink through `gatewayEui` at `nowMs`, or says why not.
   * A frequency outside every band of a region that has bands is refused ('no-band'): the gateway may not
   * transmit there at all.
   */
  reserve(gatewayEui: string, frequencyHz: number, airtimeMs: number, nowMs: number): DutyCycleGrant | DutyCycleRefusal;
  /** Gives back a grant's airtime when the frame was not sent after all (the gateway refused it in its TX_ACK). */
  release(grant: DutyCycleGrant, nowMs: number): void;
  /** The bands this gateway has airtime in within the window at `nowMs`. */
  usage(gatewayEui: string, nowMs: number): readonly BandUsage[];
  /** The band a frequency falls in, or null. */
  bandFor(frequencyHz: number): DutyCycleBand | null;
  readonly gatewayCount: number;
}

/** Float slack for sums of fractional ms (an SF7 frame is 46.336 ms): far below any frame's airtime. */
const EPSILON_MS = 1e-6;
/** Gateway ids are 16 hex digits or a configured serial-radio id; a bound keeps a key from growing the map's bytes. */
const MAX_GATEWAY_ID_CHARS = 64;

interface Bucket {
  readonly index: number;
  airtimeMs: number;
}

interface BandLedger {
  /** Oldest first, indexes strictly increasing; at most windowBuckets + 1. */
  readonly buckets: Bucket[];
  usedMs: number;
}

interface GatewayLedger {
  readonly bands: Map<DutyCycleBand, BandLedger>;
  /** The bucket of its latest reservation: once that leaves the window, the gateway has nothing left to remember. */
  lastBucket: number;
}

export function createDownlinkDutyCycle(options: DownlinkDutyCycleOptions): DownlinkDutyCycle {
  const windowMs = options.windowMs ?? ETSI_WINDOW_MS;
  const bucketMs = options.bucketMs ?? DEFAULT_BUCKET_MS;
  assertOptions(options, windowMs, bucketMs);
  const bands = options.bands.map((band) => Object.freeze({ ...band }));
  const windowBuckets = windowMs / bucketMs;
  /** Insertion order is use order (a reservation moves its gateway to the end): the first is the least recently used. */
  const gateways = new Map<string, GatewayLedger>();

  const bucketOf = (nowMs: number): number => Math.floor(nowMs / bucketMs);
  const limitOf = (band: DutyCycleBand): number => band.dutyCycle * windowMs;
  // A bucket counts while it is at most windowBuckets behind the current one, so airtime is remembered for at
  // least windowMs (and at most one bucket longer): never less than ETSI's hour.
  const expiresAtMs = (bucket: Bucket): number => (bucket.index + windowBuckets + 1) * bucketMs;

  function bandFor(frequencyHz: number): DutyCycleBand | null {
    return bands.find((band) => frequencyHz >= band.minHz && frequencyHz <= band.maxHz) ?? null;
  }

  function pruned(ledger: BandLedger, currentBucket: number): BandLedger {
    const oldestKept = currentBucket - windowBuckets;
    let dropped = 0;
    while (dropped < ledger.buckets.length && (ledger.buckets[dropped]?.index ?? oldestKept) < oldestKept) dropped++;
    if (dropped > 0) {
      ledger.buckets.splice(0, dropped);
      // Summed afresh rather than subtracted, so float error does not build up over a long-running gateway.
      ledger.usedMs = ledger.buckets.reduce((sum, bucket) => sum + bucket.airtimeMs, 0);
    }
    return ledger;
  }

  /** Until enough of the oldest buckets have left the window for `airtimeMs` more to fit. */
  function retryInMs(buckets: readonly Bucket[], usedMs: number, airtimeMs: number, limitMs: number, nowMs: number): number | null {
    if (airtimeMs > limitMs + EPSILON_MS) return null;
    let remaining = usedMs;
    for (const bucket of buckets) {
      remaining -= bucket.airtimeMs;
      if (remaining + airtimeMs <= limitMs + EPSILON_MS) return Math.max(0, expiresAtMs(bucket) - nowMs);
    }
    return 0;
  }

  function reserve(gatewayEui: string, frequencyHz: number, airtimeMs: number, nowMs: number): DutyCycleGrant | DutyCycleRefusal {
    assertReservation(gatewayEui, frequencyHz, airtimeMs, nowMs);
    if (bands.length === 0) return { ok: true, gatewayEui, band: null, airtimeMs, reservedAtMs: nowMs };
    const band = bandFor(frequencyHz);
    if (band === null) {
      return {
        ok: false,
        reason: 'no-band',
        message: `downlink on ${mhz(frequencyHz)} MHz through gateway ${gatewayEui}: the frequency is in none of the region's duty-cycle bands (${bands.map(describeBand).join(', ')}), so a gateway may not transmit there; check the region's RX1/RX2 frequencies`,
      };
    }
    const currentBucket = bucketOf(nowMs);
    let gateway = gateways.get(gatewayEui);
    const ledger = gateway?.bands.get(band);
    if (ledger !== undefined) pruned(ledger, currentBucket);
    const usedMs = ledger?.usedMs ?? 0;
    const limitMs = limitOf(band);
    if (usedMs + airtimeMs > limitMs + EPSILON_MS) {
      const retry = retryInMs(ledger?.buckets ?? [], usedMs, airtimeMs, limitMs, nowMs);
      const when = retry === null ? 'it never fits: the frame is longer than the whole allowance' : `it fits in ${duration(retry)}`;
      return {
        ok: false,
        reason: 'duty-cycle',
        band,
        usedMs,
        limitMs,
        retryInMs: retry,
        message: `downlink of ${duration(airtimeMs)} through gateway ${gatewayEui} on ${mhz(frequencyHz)} MHz refused: band ${describeBand(band)} has ${duration(Math.max(0, limitMs - usedMs))} of its ${duration(limitMs)} per ${duration(windowMs)} left; ${when} (or send in the other receive window, on another band)`,
      };
    }
    if (gateway === undefined && gateways.size >= options.maxGateways) {
      const oldest = gateways.entries().next();
      if (oldest.done === true || oldest.value[1].lastBucket >= currentBucket - windowBuckets) {
        return {
          ok: false,
          reason: 'too-many-gateways',
          message: `downlink through gateway ${gatewayEui} refused: the duty-cycle ledger already tracks ${options.maxGateways} gateways that transmitted within the last ${duration(windowMs)}, and forgetting one could let it exceed its limit; raise the gateway limit if this many gateways are real`,
        };
      }
      gateways.delete(oldest.value[0]);
    }

    if (gateway === undefined) {
      gateway = { bands: new Map(), lastBucket: currentBucket };
    } else {
      gateways.delete(gatewayEui);
    }
    gateways.set(gatewayEui, gateway);
    gateway.lastBucket = Math.max(gateway.lastBucket, currentBucket);
    let bandLedger = gateway.bands.get(band);
    if (bandLedger === undefined) {
      bandLedger = { buckets: [], usedMs: 0 };
      gateway.bands.set(band, bandLedger);
    }
    const newest = bandLedger.buckets.at(-1);
    // A clock that stepped back files the airtime in the newest bucket: kept longer, never shorter.
    if (newest !== undefined && newest.index >= currentBucket) newest.airtimeMs += airtimeMs;
    else bandLedger.buckets.push({ index: currentBucket, airtimeMs });
    bandLedger.usedMs += airtimeMs;
    return { ok: true, gatewayEui, band, airtimeMs, reservedAtMs: nowMs };
  }

  function release(grant: DutyCycleGrant, nowMs: number): void {
    if (grant.band === null) return;
    const ledger = gateways.get(grant.gatewayEui)?.bands.get(grant.band);
    if (ledger === undefined) return;
    const currentBucket = bucketOf(nowMs);
    pruned(ledger, currentBucket);
    const reservedBucket = bucketOf(grant.reservedAtMs);
    // Already out of the window: nothing left to give back.
    if (reservedBucket < currentBucket - windowBuckets) return;
    // The bucket the grant went into: its own, or the newest one if the clock had stepped back then.
    const bucket = ledger.buckets.find((candidate) => candidate.index >= reservedBucket);
    if (bucket === undefined) return;
    const returned = Math.min(bucket.airtimeMs, grant.airtimeMs);
    bucket.airtimeMs -= returned;
    ledger.usedMs = Math.max(0, ledger.usedMs - returned);
  }

  function usage(gatewayEui: string, nowMs: number): readonly BandUsage[] {
    const gateway = gateways.get(gatewayEui);
    if (gateway === undefined) return [];
    const currentBucket = bucketOf(nowMs);
    const result: BandUsage[] = [];
    for (const [band, ledger] of gateway.bands) {
      if (pruned(ledger, currentBucket).usedMs > EPSILON_MS) result.push({ band, usedMs: ledger.usedMs, limitMs: limitOf(band) });
    }
    return result;
  }

  return {
    reserve,
    release,
    usage,
    bandFor,
    get gatewayCount() {
      return gateways.size;
    },
  };
}

/** Bands come from region data and the limits from config: a bad value is a programming or config error. */
function assertOptions(options: DownlinkDutyCycleOptions, windowMs: number, bucketMs: number): void {
  if (!Number.isInteger(options.maxGateways) || options.maxGateways < 1) {
    throw new RangeError(`downlink duty cycle: maxGateways ${options.maxGateways} is not a positive integer`);
  }
  if (!Number.isInteger(windowMs) || windowMs < 1 || !Number.isInteger(bucketMs) || bucketMs < 1 || windowMs % bucketMs !== 0) {
    throw new RangeError(`downlink duty cycle: windowMs ${windowMs} must be a positive multiple of bucketMs ${bucketMs}`);
  }
  for (const band of options.bands) {
    const { name, minHz, maxHz, dutyCycle } = band;
    if (typeof name !== 'string' || name.length === 0) throw new RangeError(`downlink duty cycle: a band has no name (${minHz}..${maxHz} Hz)`);
    if (!Number.isFinite(minHz) || !Number.isFinite(maxHz) || minHz > maxHz) {
      throw new RangeError(`downlink duty cycle: band ${name} has edges ${minHz}..${maxHz} Hz; minHz must be at most maxHz`);
    }
    if (!Number.isFinite(dutyCycle) || dutyCycle <= 0 || dutyCycle > 1) {
      throw new RangeError(`downlink duty cycle: band ${name} has duty cycle ${dutyCycle}; give a share in (0, 1], e.g. 0.01 for 1 %`);
    }
  }
}

function assertReservation(gatewayEui: string, frequencyHz: number, airtimeMs: number, nowMs: number): void {
  if (typeof gatewayEui !== 'string' || gatewayEui.length === 0 || gatewayEui.length > MAX_GATEWAY_ID_CHARS) {
    throw new RangeError(`downlink duty cycle: gateway id ${JSON.stringify(String(gatewayEui).slice(0, 80))} is not 1..${MAX_GATEWAY_ID_CHARS} characters`);
  }
  if (!Number.isFinite(frequencyHz)) throw new RangeError(`downlink duty cycle: frequency ${frequencyHz} Hz is not a number`);
  if (!Number.isFinite(airtimeMs) || airtimeMs < 0) throw new RangeError(`downlink duty cycle: airtime ${airtimeMs} ms is not a duration`);
  if (!Number.isFinite(nowMs)) throw new RangeError(`downlink duty cycle: time ${nowMs} ms is not a number`);
}

function describeBand(band: DutyCycleBand): string {
  return `${band.name} (${mhz(band.minHz)}-${mhz(band.maxHz)} MHz, ${Number((band.dutyCycle * 100).toPrecision(6))} %)`;
}

function mhz(hz: number): string {
  return Number((hz / 1e6).toFixed(6)).toString();
}

function duration(ms: number): string {
  if (ms >= 3_600_000 && ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms >= 1000) return `${Number((ms / 1000).toFixed(3))} s`;
  return `${Number(ms.toFixed(3))} ms`;
}
