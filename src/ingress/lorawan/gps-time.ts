// GPS time as DeviceTimeAns carries it (LoRaWAN 1.0.4 §5.9): whole seconds since the GPS epoch,
// 1980-01-06T00:00:00Z, plus a fraction in 1/256 s. GPS time has no leap seconds, so it runs ahead of UTC by
// the leap seconds inserted since 1980 (18 s since 2017-01-01). The network server converts its clock to GPS
// time for the answer; the simulator converts the answer back to set its clock.

export interface GpsTime {
  /** Whole seconds since the GPS epoch, a uint32 (it wraps in 2116). */
  readonly seconds: number;
  /** Fraction of the second in 1/256 s, 0..255. */
  readonly fraction256: number;
}

/** 1980-01-06T00:00:00Z. */
export const GPS_EPOCH_UNIX_MS = Date.UTC(1980, 0, 6);

/**
 * The UTC instants from which GPS - UTC became `offsetSeconds`: each follows a leap second inserted at the end of
 * the day before (IERS Bulletin C; the same table as ChirpStack's chirpstack/src/gpstime.rs). None is announced
 * after 2017-01-01 as of 2026; append the day when IERS announces one.
 */
const LEAP_SECONDS: readonly { readonly fromUnixMs: number; readonly offsetSeconds: number }[] = [
  '1981-07-01',
  '1982-07-01',
  '1983-07-01',
  '1985-07-01',
  '1988-01-01',
  '1990-01-01',
  '1991-01-01',
  '1992-07-01',
  '1993-07-01',
  '1994-07-01',
  '1996-01-01',
  '1997-07-01',
  '1999-01-01',
  '2006-01-01',
  '2009-01-01',
  '2012-07-01',
  '2015-07-01',
  '2017-01-01',
].map((day, index) => ({ fromUnixMs: Date.parse(`${day}T00:00:00Z`), offsetSeconds: index + 1 }));

const GPS_EPOCH_UNIX_S = GPS_EPOCH_UNIX_MS / 1000;
const MAX_GPS_SECONDS = 0xffff_ffff;

/** GPS - UTC in seconds at a UTC instant. */
export function gpsUtcOffsetSeconds(unixMs: number): number {
  let offset = 0;
  for (const leap of LEAP_SECONDS) if (unixMs >= leap.fromUnixMs) offset = leap.offsetSeconds;
  return offset;
}

/**
 * The GPS time of a UTC instant (ms since the Unix epoch). The fraction is rounded down, so the answer is never
 * ahead of the instant. Throws RangeError before the GPS epoch or past the 32-bit seconds field.
 */
export function gpsTimeFromUnixMs(unixMs: number): GpsTime {
  if (!Number.isFinite(unixMs) || unixMs < GPS_EPOCH_UNIX_MS) {
    throw new RangeError(`GPS time starts at ${new Date(GPS_EPOCH_UNIX_MS).toISOString()} (Unix ms ${GPS_EPOCH_UNIX_MS}), got Unix ms ${unixMs}`);
  }
  const unixSeconds = Math.floor(unixMs / 1000);
  const seconds = unixSeconds - GPS_EPOCH_UNIX_S + gpsUtcOffsetSeconds(unixMs);
  if (seconds > MAX_GPS_SECONDS) throw new RangeError(`Unix ms ${unixMs} is past the last second a 32-bit GPS seconds field holds`);
  return { seconds, fraction256: Math.floor(((unixMs - unixSeconds * 1000) * 256) / 1000) };
}

/**
 * The UTC instant (Unix ms) of a GPS time: the inverse of gpsTimeFromUnixMs for every instant it can return.
 * Milliseconds are rounded up so that converting back gives the same fraction256. A leap second itself
 * (23:59:60 UTC) has no Unix time of its own and comes out as 23:59:59, as a POSIX clock shows it.
 */
export function unixMsFromGpsTime(time: GpsTime): number {
  const { seconds, fraction256 } = time;
  if (!Number.isInteger(seconds) || seconds < 0 || seconds > MAX_GPS_SECONDS) throw new RangeError(`GPS seconds must be a uint32, got ${seconds}`);
  if (!Number.isInteger(fraction256) || fraction256 < 0 || fraction256 > 255)
    throw new RangeError(`fraction256 must be an integer in 0..255, got ${fraction256}`);
  // Offset N applies from the GPS second of the leap second itself, one before the GPS second of the UTC day
  // that follows it: so the leap second maps onto the Unix second before the step, which POSIX clocks repeat.
  let offset = 0;
  for (const leap of LEAP_SECONDS) {
    if (seconds >= leap.fromUnixMs / 1000 - GPS_EPOCH_UNIX_S + leap.offsetSeconds - 1) offset = leap.offsetSeconds;
  }
  return (seconds + GPS_EPOCH_UNIX_S - offset) * 1000 + Math.ceil((fraction256 * 1000) / 256);
}
