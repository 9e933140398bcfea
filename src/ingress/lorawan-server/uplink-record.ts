// A decrypted uplink as a record value shaped like The Things Stack v3 uplink message (ApplicationUp with
// uplink_message), so one consumer handles frames terminated here and frames that came through TTN alike.
// Field names, hex casing (upper-case EUIs), base64 bytes and string-typed 64-bit numbers follow the TTS
// JSON mapping; what TTS has no field for lives under `iotgw`.
import { type DecodedPayload, decodedFields } from '../../codecs/payload-codec.ts';
import { plausibleEventTime } from '../../record/routes.ts';
import type { Reception } from './reception.ts';

export interface UplinkRecordInput {
  readonly devEui: string;
  readonly deviceName: string;
  readonly devAddr: string;
  readonly joinEui: string | null;
  readonly sessionId: string;
  readonly fport: number | null;
  readonly fcnt: number;
  /** Frames skipped since the previous accepted uplink of this session (0 when none). */
  readonly fcntGap: number;
  /** The frame counter started over (a resets_f_cnt device rebooted). */
  readonly fcntReset?: boolean;
  readonly confirmed: boolean;
  readonly adr: boolean;
  readonly fopts: Buffer;
  readonly plaintext: Buffer;
  readonly codec: string;
  readonly decoded: DecodedPayload;
  readonly receptions: readonly Reception[];
  readonly receivedAtMs: number;
  /** Kept from the best reception for `settings`. */
  readonly consumedAirtimeS?: number;
  /** The MAC layer's fields (dev_status, mac_commands), under `iotgw`. */
  readonly mac?: Readonly<Record<string, unknown>>;
}

export interface TtsUplinkValue {
  readonly end_device_ids: {
    readonly device_id: string;
    readonly dev_eui: string;
    readonly dev_addr: string;
    readonly join_eui?: string;
  };
  readonly received_at: string;
  readonly uplink_message: Record<string, unknown>;
  readonly iotgw: Record<string, unknown>;
}

export function buildUplinkValue(input: UplinkRecordInput): TtsUplinkValue {
  const receivedAt = new Date(input.receivedAtMs).toISOString();
  const best = input.receptions[0];
  const settings: Record<string, unknown> = {};
  if (best !== undefined) {
    const rate = parseLoraDatr(best.datr);
    if (rate !== null) {
      settings.data_rate = {
        lora: { bandwidth: rate.bandwidthHz, spreading_factor: rate.spreadingFactor, ...(best.codingRate === null ? {} : { coding_rate: best.codingRate }) },
      };
    }
    settings.frequency = String(best.frequencyHz);
    if (best.timestampUs !== null) settings.timestamp = best.timestampUs;
    if (best.gatewayTime !== null) settings.time = best.gatewayTime;
  }
  const uplink: Record<string, unknown> = {
    session_key_id: Buffer.from(input.sessionId).toString('base64'),
    ...(input.fport === null ? {} : { f_port: input.fport }),
    f_cnt: input.fcnt,
    frm_payload: input.plaintext.toString('base64'),
    ...decodedFields(input.decoded),
    rx_metadata: input.receptions.map(rxMetadata),
    settings,
    received_at: receivedAt,
    ...(input.confirmed ? { confirmed: true } : {}),
  };
  return {
    end_device_ids: {
      device_id: input.deviceName,
      dev_eui: input.devEui.toUpperCase(),
      dev_addr: input.devAddr.toUpperCase(),
      ...(input.joinEui === null ? {} : { join_eui: input.joinEui.toUpperCase() }),
    },
    received_at: receivedAt,
    uplink_message: uplink,
    iotgw: {
      f_cnt_gap: input.fcntGap,
      ...(input.fcntReset === true ? { f_cnt_reset: true } : {}),
      codec: input.codec,
      ...(input.decoded.error === undefined ? {} : { codec_error: input.decoded.error }),
      adr: input.adr,
      ...(input.fopts.length === 0 ? {} : { f_opts: input.fopts.toString('hex') }),
      receptions: input.receptions.length,
      ...input.mac,
    },
  };
}

function rxMetadata(reception: Reception): Record<string, unknown> {
  return {
    gateway_ids: { gateway_id: `eui-${reception.gatewayEui}`, eui: reception.gatewayEui.toUpperCase() },
    ...(reception.gatewayTime === null ? {} : { time: reception.gatewayTime }),
    ...(reception.timestampUs === null ? {} : { timestamp: reception.timestampUs }),
    rssi: reception.rssi,
    channel_rssi: reception.rssi,
    ...(reception.signalRssi === null ? {} : { signal_rssi: reception.signalRssi }),
    ...(reception.snr === null ? {} : { snr: reception.snr }),
    ...(reception.channel === null ? {} : { channel_index: reception.channel }),
    received_at: new Date(reception.receivedAtMs).toISOString(),
  };
}

/** 'SF7BW125' -> { 7, 125000 }; null for FSK or anything else. */
export function parseLoraDatr(datr: string | number): { spreadingFactor: number; bandwidthHz: number } | null {
  if (typeof datr !== 'string') return null;
  const match = /^SF(\d{1,2})BW(\d{2,4})$/i.exec(datr);
  if (match === null) return null;
  return { spreadingFactor: Number(match[1]), bandwidthHz: Number(match[2]) * 1000 };
}

/** The record's event time: the gateway's GPS time of reception when it has one and it is plausible, else the receive time. */
export function gatewayEventTime(receptions: readonly Reception[], receivedAtMs: number): number {
  for (const reception of receptions) {
    if (reception.gatewayTime === null) continue;
    const time = plausibleEventTime(Date.parse(reception.gatewayTime), receivedAtMs);
    if (time !== null) return time;
  }
  return receivedAtMs;
}
