// Routes map a record's stream to its Kafka topic and say where its event time is: the device's own
// timestamp field when the route names one and the value is plausible, else the gateway's receive time.
import { readJsonField } from './json-field.ts';
import type { NewRecord } from './record.ts';
import { parseTimestampText } from './timestamp-text.ts';

export interface Route {
  /** Stream name, or '*' for every stream. */
  readonly stream: string;
  readonly topic?: string | undefined;
  readonly eventTimeField?: string | undefined;
}

export interface Router {
  topicFor(stream: string): string;
  /** The payload field `stream`'s event time is read from, if its route names one (for NewRecord.eventTimeField). */
  eventTimeField(stream: string): string | undefined;
}

/** Device clocks drift and reset; anything outside this window around the receive time is not trusted. */
export const EVENT_TIME_MAX_PAST_MS = 7 * 24 * 60 * 60 * 1000;
export const EVENT_TIME_MAX_FUTURE_MS = 10 * 60 * 1000;

/** A device's or network's time for a record received at `receivedAtMs`: within the window, else null. */
export function plausibleEventTime(timeMs: number, receivedAtMs: number): number | null {
  return timeMs >= receivedAtMs - EVENT_TIME_MAX_PAST_MS && timeMs <= receivedAtMs + EVENT_TIME_MAX_FUTURE_MS ? timeMs : null;
}

export function createRouter(defaultTopic: string, routes: readonly Route[]): Router {
  // Keyed by the configured streams only: a map keyed by the streams records arrive with would grow with input.
  const byStream = new Map<string, Route>();
  for (const route of routes) if (route.stream !== '*' && !byStream.has(route.stream)) byStream.set(route.stream, route);
  const wildcardIndex = routes.findIndex((route) => route.stream === '*');
  function routeFor(stream: string): Route | null {
    const exact = byStream.get(stream);
    const wildcard = wildcardIndex === -1 ? null : (routes[wildcardIndex] as Route);
    // The first matching route wins: an exact route listed after '*' loses to it.
    if (exact !== undefined && (wildcardIndex === -1 || routes.indexOf(exact) < wildcardIndex)) return exact;
    return wildcard;
  }

  return {
    topicFor(stream) {
      return routeFor(stream)?.topic ?? defaultTopic;
    },
    eventTimeField: (stream) => routeFor(stream)?.eventTimeField,
  };
}

/**
 * The event time a record is stored with: read from its payload when it names a field (see
 * NewRecord.eventTimeField) and the value there is plausible (never throws), else its eventTimeMs.
 */
export function eventTimeOf(record: NewRecord): number {
  const field = record.eventTimeField;
  if (field === undefined) return record.eventTimeMs;
  const candidate = readTimestampField(record.payload, field);
  if (candidate === null) return record.eventTimeMs;
  return plausibleEventTime(candidate, record.receivedAtMs) ?? record.eventTimeMs;
}

/** Longer strings are no timestamps: they are not even decoded. */
const MAX_TIMESTAMP_LENGTH = 64;

/**
 * Reads `field` (dotted path) from a JSON payload as ms since the epoch: ISO-8601, epoch seconds or epoch ms.
 * The result is JSON.parse's (then `value[part]` for each part) for every input, invalid JSON included: the
 * scanner reads only the one field, without building the whole payload's objects (this runs for every record).
 */
export function readTimestampField(payload: Uint8Array, field: string): number | null {
  const value = readJsonField(payload, field, MAX_TIMESTAMP_LENGTH);
  if (typeof value === 'number' && Number.isFinite(value)) {
    // Below 1e11 it cannot be ms (that would be 1973): read it as seconds.
    return Math.round(value < 1e11 ? value * 1000 : value);
  }
  if (typeof value === 'string') {
    const parsed = parseTimestampText(value);
    return Number.isNaN(parsed) ? null : parsed;
  }
  return null;
}
