// Who may publish and subscribe where (pure functions). Devices publish to devices/{device_id}/{stream}
// and only under their own id; non-device clients get the topic filters their account lists. Default deny.
import { isReservedStream } from '../../record/streams.ts';

/** Who is on the other end of a connection, decided once at CONNECT. */
export type Identity =
  | { readonly kind: 'device'; readonly deviceId: string }
  | { readonly kind: 'client'; readonly username: string; readonly publish: readonly string[]; readonly subscribe: readonly string[] }
  /** allow_anonymous: the client id stands in for the device id. */
  | { readonly kind: 'anonymous'; readonly deviceId: string };

export const DEVICE_TOPIC_ROOT = 'devices';
const DEVICE_TOPIC_PREFIX = `${DEVICE_TOPIC_ROOT}/`;
/**
 * Longest topic (publish) or topic filter (subscribe), in UTF-8 bytes. MQTT allows 65,535; a device topic is
 * devices/{id of at most 128}/{stream of at most MAX_STREAM_CHARS}, and nothing else here needs more.
 */
export const MAX_TOPIC_BYTES = 256;
/** Longest stream (the topic after devices/{id}/): it is a record field, a Kafka header and a route key. */
export const MAX_STREAM_CHARS = 64;

export interface DeviceTopic {
  readonly deviceId: string;
  /** Everything after the device id, e.g. 'telemetry' or 'telemetry/power'. */
  readonly stream: string;
}

/** `devices/{device_id}/{stream...}` -> its parts, or null for any other topic. */
export function parseDeviceTopic(topic: string): DeviceTopic | null {
  if (!topic.startsWith(DEVICE_TOPIC_PREFIX)) return null;
  const start = DEVICE_TOPIC_PREFIX.length;
  const slash = topic.indexOf('/', start);
  if (slash <= start || slash === topic.length - 1) return null;
  return { deviceId: topic.slice(start, slash), stream: topic.slice(slash + 1) };
}

export type PublishDecision =
  | { readonly allowed: true; readonly record: DeviceTopic | null }
  | { readonly allowed: false; readonly reason: 'not-authorized' | 'bad-topic'; readonly detail: string };

export function decidePublish(identity: Identity, topic: string): PublishDecision {
  const topicBytes = Buffer.byteLength(topic);
  if (topicBytes > MAX_TOPIC_BYTES) {
    return { allowed: false, reason: 'bad-topic', detail: `a topic of ${topicBytes} bytes is longer than the ${MAX_TOPIC_BYTES} this broker accepts` };
  }
  if (topic.startsWith('$')) return { allowed: false, reason: 'not-authorized', detail: `clients may not publish to ${topic}` };
  const deviceTopic = parseDeviceTopic(topic);
  if (deviceTopic !== null && deviceTopic.stream.length > MAX_STREAM_CHARS) {
    return { allowed: false, reason: 'bad-topic', detail: `a stream name of ${deviceTopic.stream.length} characters is longer than ${MAX_STREAM_CHARS}` };
  }
  if (deviceTopic !== null && isReservedStream(deviceTopic.stream)) {
    return { allowed: false, reason: 'bad-topic', detail: `the stream ${deviceTopic.stream} is the gateway's own; publish to another stream` };
  }
  if (identity.kind === 'client') {
    if (!identity.publish.some((filter) => topicMatches(filter, topic))) {
      return { allowed: false, reason: 'not-authorized', detail: `account ${identity.username} may not publish to ${topic}` };
    }
    return { allowed: true, record: deviceTopic };
  }
  if (deviceTopic === null) {
    return {
      allowed: false,
      reason: topic.startsWith(`${DEVICE_TOPIC_ROOT}/`) ? 'bad-topic' : 'not-authorized',
      detail: `devices publish to devices/{device_id}/{stream}, not ${topic}`,
    };
  }
  if (deviceTopic.deviceId !== identity.deviceId) {
    return { allowed: false, reason: 'not-authorized', detail: `device ${identity.deviceId} may not publish as ${deviceTopic.deviceId}` };
  }
  return { allowed: true, record: deviceTopic };
}

/** Devices, listed or anonymous, may subscribe only under their own prefix; accounts where their filters allow. */
export function canSubscribe(identity: Identity, filter: string): boolean {
  if (Buffer.byteLength(filter) > MAX_TOPIC_BYTES) return false;
  switch (identity.kind) {
    case 'client':
      return identity.subscribe.some((allowed) => filterCovers(allowed, filter));
    case 'device':
    case 'anonymous':
      return filterCovers(`${DEVICE_TOPIC_ROOT}/${identity.deviceId}/#`, filter);
  }
}

/** MQTT topic matching: does `topic` match `filter` (with + and # wildcards)? [MQTT-4.7] */
export function topicMatches(filter: string, topic: string): boolean {
  if (topic.startsWith('$') && !filter.startsWith('$')) return false; // [MQTT-4.7.2-1]
  const filterLevels = filter.split('/');
  const topicLevels = topic.split('/');
  for (let index = 0; index < filterLevels.length; index++) {
    const level = filterLevels[index];
    if (level === '#') return true;
    if (index >= topicLevels.length) return false;
    if (level !== '+' && level !== topicLevels[index]) return false;
  }
  return filterLevels.length === topicLevels.length;
}

/** Is every topic that `filter` matches also matched by `allowed`? (A subscription may not widen its grant.) */
export function filterCovers(allowed: string, filter: string): boolean {
  const allowedLevels = allowed.split('/');
  const filterLevels = filter.split('/');
  for (let index = 0; index < allowedLevels.length; index++) {
    const grant = allowedLevels[index];
    if (grant === '#') return true;
    const asked = filterLevels[index];
    if (asked === undefined) return false;
    if (asked === '#') return false;
    if (grant === '+') continue;
    if (asked === '+' || asked !== grant) return false;
  }
  return allowedLevels.length === filterLevels.length;
}
