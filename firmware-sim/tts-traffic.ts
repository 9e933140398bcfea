// What The Things Stack publishes for an application, generated deterministically from a seed: v3 uplink
// messages for N end devices (Cayenne LPP payloads on a mix of f_ports, decoded_payload when the device has
// a TTS payload formatter, 1-3 gateways in rx_metadata, settings, consumed_airtime, network_ids), plus the
// faults a gateway must cope with: f_cnt gaps (frames TTS never delivered), the same message twice, and
// malformed messages. Each publish goes through the TTS stand-in at QoS 0, and the ledger records what was
// published, by category, and how many subscribers each message reached, so tests know what must arrive.
// With `models`, the devices are fleet.ts models (meters, lamps, parking sensors) sending their readings,
// and they act on the downlinks the stand-in sends them as commands (device-commands.ts reads the FPort and
// bytes), so their next uplinks show the new state.
import type { TtsDownlink } from '../src/ingress/ttn/tts-downlink.ts';
import { decodeCayenneLpp, encodeCayenneLpp } from '../src/codecs/cayenne-lpp.ts';
import { applyDeviceCommand, type CommandResult, parseLorawanCommand } from './device-commands.ts';
import { createFleet, createRandom, type Random, type SimDevice } from './fleet.ts';
import { encodeReading } from './reading-payload.ts';
import { READING_FPORTS } from './transports/lorawan-device.ts';
import type { TtsStandIn } from './tts-stand-in.ts';

export interface TtsFleetOptions {
  readonly devices: number;
  readonly seed: number;
  /** Share of devices whose messages carry decoded_payload (a payload formatter in TTS), 0..1. Default 0.5. */
  readonly decodedShare?: number;
  /** Put before every device id. Default ''. */
  readonly prefix?: string;
  /**
   * Devices are fleet.ts models (ids like sl-000002) sending their readings as Cayenne LPP on one FPort per
   * kind, and acting on commands in their downlinks. Default false: generic sensors with random readings.
   */
  readonly models?: boolean;
}

export interface TtsTrafficOptions {
  readonly messagesPerDevice: number;
  /** Times a device skips 1-3 frame counters (uplinks TTS never delivered). Default 0. */
  readonly gaps?: number;
  /** Uplinks published twice. Default 0. */
  readonly duplicates?: number;
  /** Malformed messages, cycling through the MalformedKind values. Default 0. */
  readonly malformed?: number;
  /** Messages per second across the fleet; 0 = as fast as the broker takes them. Default 0. */
  readonly ratePerSecond?: number;
  readonly signal?: AbortSignal;
}

/** Each is refused by the gateway with the reason of the same name. */
export const MALFORMED_KINDS = ['malformed-json', 'missing-device-id', 'missing-dev-eui'] as const;
export type MalformedKind = (typeof MALFORMED_KINDS)[number];

export interface LedgerUplink {
  /** 16 lower-case hex digits: the Kafka key the gateway must use. */
  readonly devEui: string;
  readonly deviceId: string;
  readonly fCnt: number;
  /** The message exactly as published (parsed back). */
  readonly message: Record<string, unknown>;
  /** Subscribers connected when it was published: 0 means nobody could receive it (QoS 0: lost). */
  readonly reached: number;
  /** The f_cnt gap the gateway must report: frames since the device's last uplink that reached a subscriber. Null if not reached. */
  readonly expectedGap: number | null;
}

export interface TtsLedger {
  /** Every distinct valid uplink, in publish order. */
  readonly uplinks: LedgerUplink[];
  /** Second copies of uplinks, published right after the first. */
  readonly duplicates: LedgerUplink[];
  readonly malformed: { readonly kind: MalformedKind; readonly reached: number }[];
  /** Frame counters skipped on purpose (never published). */
  readonly skippedFrames: number;
}

export interface TtsSimDevice {
  readonly deviceId: string;
  readonly devEui: string;
  readonly devAddr: string;
  readonly hasFormatter: boolean;
  sessionKeyId: string;
  /** The next frame counter. */
  fCnt: number;
  /** f_cnt of the last uplink that reached a subscriber. */
  lastReachedFCnt: number | null;
  /** With `models`: the device's model, whose readings its uplinks carry. */
  readonly model?: SimDevice | undefined;
  /** Commands it received in downlinks, in order (only model devices act on them). */
  readonly commands: TtsReceivedCommand[];
  /** Reporting interval set by a config command, in seconds (recorded; publishTtsTraffic keeps its own pace). */
  intervalS?: number;
}

/** A downlink the stand-in sent to a model device, read as a command, and what the device did. */
export interface TtsReceivedCommand {
  readonly deviceId: string;
  readonly fPort: number;
  readonly confirmed: boolean;
  readonly payloadHex: string;
  /** The command it matches (dim, on, off, valve, config), 'unknown' if none. */
  readonly name: string;
  readonly applied: boolean;
  /** The new state as the MQTT devices' state report says it, or {error}. */
  readonly result: CommandResult;
  /** f_cnt of the device's next uplink: it and every later one show the new state. */
  readonly effectiveFromFCnt: number;
  readonly receivedAtMs: number;
}

export interface TtsFleet {
  readonly applicationId: string;
  readonly devices: readonly TtsSimDevice[];
  /** The next uplink message of a device (advances its counter). */
  nextUplink(device: TtsSimDevice, nowMs: number): Record<string, unknown>;
  readonly random: Random;
}

const GATEWAYS = [
  { gateway_id: 'city-hall-roof', eui: 'B827EBFFFE6A0001', location: { latitude: 52.3731, longitude: 4.8922, altitude: 42 } },
  { gateway_id: 'water-tower', eui: 'B827EBFFFE6A0002', location: { latitude: 52.3802, longitude: 4.8601, altitude: 55 } },
  { gateway_id: 'depot-north', eui: '0016C001FF10A235', location: { latitude: 52.3954, longitude: 4.9103, altitude: 12 } },
] as const;
/** The Things Network's EU1 cluster, as TTS names itself in every uplink. */
const NETWORK_IDS = {
  net_id: '000013',
  ns_id: 'EC656E0000000181',
  tenant_id: 'ttn',
  cluster_id: 'eu1',
  cluster_address: 'eu1.cloud.thethings.network',
} as const;
const FREQUENCIES = [868_100_000, 868_300_000, 868_500_000, 867_100_000, 867_300_000, 867_500_000, 867_700_000, 867_900_000];

export function createTtsFleet(applicationId: string, options: TtsFleetOptions): TtsFleet {
  const random = createRandom(options.seed);
  const hex = (bytes: number): string =>
    Array.from({ length: bytes }, () =>
      Math.floor(random() * 256)
        .toString(16)
        .padStart(2, '0'),
    ).join('');
  const decodedShare = options.decodedShare ?? 0.5;
  const models =
    options.models === true
      ? createFleet({ devices: options.devices, seed: options.seed, ...(options.prefix === undefined ? {} : { prefix: options.prefix }) })
      : [];
  const devices: TtsSimDevice[] = Array.from({ length: options.devices }, (_, index) => ({
    deviceId: models[index]?.id ?? `${options.prefix ?? ''}sensor-${String(index + 1).padStart(4, '0')}`,
    devEui: `70b3d57ed0${(options.seed & 0xff).toString(16).padStart(2, '0')}${(index + 1).toString(16).padStart(4, '0')}`,
    devAddr: `260b${hex(2)}`,
    hasFormatter: random() < decodedShare,
    sessionKeyId: Buffer.from(hex(16), 'hex').toString('base64'),
    fCnt: 0,
    lastReachedFCnt: null,
    model: models[index],
    commands: [],
  }));

  const nextUplink = (device: TtsSimDevice, nowMs: number): Record<string, unknown> => uplinkMessage(applicationId, device, nowMs, random);
  return { applicationId, devices, nextUplink, random };
}

/** A TTS v3 uplink message of the device (its frame counter moves on), with TTS's field names and omissions. */
function uplinkMessage(applicationId: string, device: TtsSimDevice, nowMs: number, random: Random): Record<string, unknown> {
  const fCnt = device.fCnt;
  device.fCnt += 1;
  const uplink = uplinkFields(device, fCnt, nowMs, random);
  return {
    end_device_ids: {
      device_id: device.deviceId,
      application_ids: { application_id: applicationId },
      dev_eui: device.devEui.toUpperCase(),
      join_eui: '0000000000000000',
      dev_addr: device.devAddr.toUpperCase(),
    },
    correlation_ids: [`as:up:${ulid(nowMs, random)}`, `ns:uplink:${ulid(nowMs, random)}`, `rpc:/ttn.lorawan.v3.GsNs/HandleUplink:${ulid(nowMs, random)}`],
    received_at: new Date(nowMs).toISOString(),
    uplink_message: uplink,
  };
}

function uplinkFields(device: TtsSimDevice, fCnt: number, nowMs: number, random: Random): Record<string, unknown> {
  const { model } = device;
  const fPort = model === undefined ? 1 + Math.floor(random() * 3) : READING_FPORTS[model.kind];
  const payload = model === undefined ? cayennePayload(fPort, random) : encodeReading(model.nextReading(nowMs), 'cayenne-lpp').payload;
  const heardBy = GATEWAYS.slice(0, 1 + Math.floor(random() * 3));
  const spreadingFactor = 7 + Math.floor(random() * 4);
  const frequency = String(FREQUENCIES[Math.floor(random() * FREQUENCIES.length)]);
  const timestamp = Math.floor(random() * 2 ** 32);
  const times = { gateway: new Date(nowMs - 120).toISOString(), received: new Date(nowMs - 40).toISOString() };
  const airtimeS = ((payload.length + 13) * 8 * 2 ** spreadingFactor) / 125_000 / 4;
  return {
    session_key_id: device.sessionKeyId,
    ...(fPort === 0 ? {} : { f_port: fPort }),
    // The TTS JSON mapping leaves out fields at their default value: f_cnt 0 is absent.
    ...(fCnt === 0 ? {} : { f_cnt: fCnt }),
    frm_payload: payload.toString('base64'),
    ...(device.hasFormatter ? { decoded_payload: decodeCayenneLpp(payload).data } : {}),
    rx_metadata: heardBy.map((gateway, index) => ({
      gateway_ids: { gateway_id: gateway.gateway_id, eui: gateway.eui },
      time: times.gateway,
      timestamp: (timestamp + index * 7) % 2 ** 32,
      rssi: -70 - Math.round(random() * 50),
      channel_rssi: -70 - Math.round(random() * 50),
      snr: Math.round((random() * 20 - 8) * 4) / 4,
      location: { ...gateway.location, source: 'SOURCE_REGISTRY' },
      uplink_token: Buffer.from(`${gateway.gateway_id}:${timestamp}:${fCnt}`).toString('base64'),
      channel_index: FREQUENCIES.indexOf(Number(frequency)),
      received_at: times.received,
    })),
    settings: {
      data_rate: { lora: { bandwidth: 125_000, spreading_factor: spreadingFactor, coding_rate: '4/5' } },
      frequency,
      timestamp,
      time: times.gateway,
    },
    received_at: times.received,
    consumed_airtime: `${airtimeS.toFixed(6)}s`,
    network_ids: { ...NETWORK_IDS },
  };
}

type Action =
  | { readonly kind: 'uplink'; readonly device: TtsSimDevice; readonly duplicate: boolean }
  | { readonly kind: MalformedKind; readonly device: TtsSimDevice };

/**
 * Makes the fleet's model devices receive what the stand-in sends them: each downlink is read as a command
 * (device-commands.ts) and acted on by the model, so the device's next uplink shows it. publishTtsTraffic
 * does this itself; call it earlier if commands may go out before the first publish.
 */
export function attachTtsFleet(standIn: TtsStandIn, fleet: TtsFleet): void {
  for (const device of fleet.devices) {
    if (device.model !== undefined) standIn.setDeviceReceiver(device.deviceId, (downlink) => receiveCommand(device, downlink));
  }
}

function receiveCommand(device: TtsSimDevice, downlink: TtsDownlink): void {
  const { model } = device;
  if (model === undefined) return;
  const { name, command } = parseLorawanCommand(model.kind, downlink.fPort, downlink.frmPayload);
  const done = applyDeviceCommand(model, command);
  if (done.intervalS !== undefined) device.intervalS = done.intervalS;
  device.commands.push({
    deviceId: device.deviceId,
    fPort: downlink.fPort,
    confirmed: downlink.confirmed,
    payloadHex: downlink.frmPayload.toString('hex'),
    name,
    applied: done.applied,
    result: done.result,
    effectiveFromFCnt: device.fCnt,
    receivedAtMs: Date.now(),
  });
}

/** Publishes messagesPerDevice uplinks per device (round robin) with the faults asked for, through the stand-in. */
export async function publishTtsTraffic(standIn: TtsStandIn, fleet: TtsFleet, options: TtsTrafficOptions): Promise<TtsLedger> {
  attachTtsFleet(standIn, fleet);
  const { random, devices } = fleet;
  const actions: Action[] = [];
  for (let round = 0; round < options.messagesPerDevice; round += 1) {
    for (const device of devices) actions.push({ kind: 'uplink', device, duplicate: false });
  }
  const uplinkIndexes = actions.map((_, index) => index);
  const pick = (): number => uplinkIndexes.splice(Math.floor(random() * uplinkIndexes.length), 1)[0] ?? 0;
  const duplicated = new Set(Array.from({ length: Math.min(options.duplicates ?? 0, uplinkIndexes.length) }, pick));
  const gapBefore = new Map(Array.from({ length: Math.min(options.gaps ?? 0, uplinkIndexes.length) }, () => [pick(), 1 + Math.floor(random() * 3)] as const));
  const planned: Action[] = actions.map((action, index) => (action.kind === 'uplink' && duplicated.has(index) ? { ...action, duplicate: true } : action));
  const gapsByAction = new Map([...gapBefore].map(([index, frames]) => [planned[index] as Action, frames]));
  for (let index = 0; index < (options.malformed ?? 0); index += 1) {
    const kind = MALFORMED_KINDS[index % MALFORMED_KINDS.length] as MalformedKind;
    const device = devices[Math.floor(random() * devices.length)] as TtsSimDevice;
    planned.splice(Math.floor(random() * (planned.length + 1)), 0, { kind, device });
  }

  const ledger: TtsLedger = { uplinks: [], duplicates: [], malformed: [], skippedFrames: 0 };
  let skippedFrames = 0;
  const intervalMs = (options.ratePerSecond ?? 0) > 0 ? 1_000 / (options.ratePerSecond ?? 1) : 0;
  const startMs = performance.now();
  for (const [index, action] of planned.entries()) {
    if (options.signal?.aborted) break;
    if (intervalMs > 0) {
      const dueMs = startMs + index * intervalMs - performance.now();
      if (dueMs > 0) await new Promise((resolve) => setTimeout(resolve, dueMs));
    }
    const topic = `v3/${standIn.username}/devices/${action.device.deviceId}/up`;
    if (action.kind !== 'uplink') {
      const reached = await standIn.publish(topic, malformedMessage(action.kind, fleet, action.device));
      ledger.malformed.push({ kind: action.kind, reached });
      continue;
    }
    const { device } = action;
    const skip = gapsByAction.get(action) ?? 0;
    device.fCnt += skip;
    skippedFrames += skip;
    const message = fleet.nextUplink(device, Date.now());
    const fCnt = device.fCnt - 1;
    const text = JSON.stringify(message);
    const reached = await standIn.publish(topic, text);
    const expectedGap = reached === 0 ? null : device.lastReachedFCnt === null ? 0 : fCnt - device.lastReachedFCnt - 1;
    if (reached > 0) device.lastReachedFCnt = fCnt;
    const entry: LedgerUplink = {
      devEui: device.devEui,
      deviceId: device.deviceId,
      fCnt,
      message: JSON.parse(text) as Record<string, unknown>,
      reached,
      expectedGap,
    };
    ledger.uplinks.push(entry);
    if (action.duplicate) ledger.duplicates.push({ ...entry, reached: await standIn.publish(topic, text), expectedGap: null });
  }
  return { ...ledger, skippedFrames };
}

function malformedMessage(kind: MalformedKind, fleet: TtsFleet, device: TtsSimDevice): string {
  // Built from a copy so the device's real counter does not move.
  // Nor its model's readings (a broken message carries random ones).
  const message = fleet.nextUplink({ ...device, model: undefined }, Date.now());
  if (kind === 'malformed-json') return JSON.stringify(message).slice(0, 57);
  if (kind === 'missing-device-id') {
    const { end_device_ids: _ids, ...rest } = message;
    return JSON.stringify(rest);
  }
  const ids = { ...(message.end_device_ids as Record<string, unknown>) };
  delete ids.dev_eui;
  return JSON.stringify({ ...message, end_device_ids: ids });
}

/** Cayenne LPP readings by f_port: 1 climate (temperature, humidity, battery), 2 presence + luminosity, 3 counter. */
function cayennePayload(fPort: number, random: Random): Buffer {
  if (fPort === 1) {
    return encodeCayenneLpp([
      { channel: 1, type: 'temperature', value: random() * 40 - 10 },
      { channel: 2, type: 'relative_humidity', value: random() * 100 },
      { channel: 3, type: 'analog_in', value: 3 + random() * 0.6 },
    ]);
  }
  if (fPort === 2) {
    return encodeCayenneLpp([
      { channel: 4, type: 'presence', value: random() < 0.5 ? 1 : 0 },
      { channel: 5, type: 'luminosity', value: random() * 5000 },
    ]);
  }
  return encodeCayenneLpp([{ channel: 6, type: 'generic_sensor', value: Math.floor(random() * 2 ** 32) }]);
}

/** A ULID-looking id (TTS correlation ids carry ULIDs): time part + randomness, Crockford base32. */
function ulid(nowMs: number, random: Random): string {
  const alphabet = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
  let time = '';
  let rest = nowMs;
  for (let index = 0; index < 10; index += 1) {
    time = alphabet[rest % 32] + time;
    rest = Math.floor(rest / 32);
  }
  return time + Array.from({ length: 16 }, () => alphabet[Math.floor(random() * 32)]).join('');
}
