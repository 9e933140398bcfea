// Class-A downlinks of the LoRaWAN server (LoRaWAN 1.0.x §3.3): a downlink answers one uplink, in RX1 (the
// uplink's timestamp + the RX1 delay, on the frequency and data rate the region derives from the uplink's) or
// in RX2 one second later (the region's fixed frequency and data rate). It goes through the best gateway that
// heard the uplink and can transmit; RX2 is tried when the gateway refuses RX1 (too late, a collision).
import type { Logger } from '../../core/log.ts';
import type { Metrics } from '../../core/metrics.ts';
import type { RecordSource } from '../../record/record.ts';
import type { Region } from '../lorawan/region.ts';
import type { LorawanDevice } from './device-sessions.ts';
import type { Reception } from './reception.ts';

/** A Class-A downlink for the transport to schedule on a gateway. */
export interface ClassADownlink {
  readonly gatewayEui: string;
  readonly phyPayload: Buffer;
  /** Concentrator µs counter at which to transmit (32-bit, wraps); null: at once (Class C). */
  readonly timestampUs: number | null;
  readonly frequencyHz: number;
  readonly datr: string;
  readonly codingRate: string;
  readonly powerDbm: number;
}

export interface DownlinkPath {
  /** Whether a downlink route to this gateway is known now. */
  canReach(gatewayEui: string): boolean;
  send(downlink: ClassADownlink): Promise<{ readonly ok: true } | { readonly ok: false; readonly reason: string }>;
}

/** The `kind` label of the downlink metric. */
export type ClassADownlinkKind = 'ack' | 'join-accept' | 'command';

export interface ClassASenderDeps {
  readonly region: Region;
  /** null for a receive-only radio: nothing can be sent. */
  readonly downlink: DownlinkPath | null;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Counts and logs a frame whose answer has no route (the LoRaWAN server's rejections, per device). */
  readonly reject: (source: RecordSource, reason: 'no-downlink-path', device: string, message: string) => void;
}

export interface ClassASender {
  /** Resolves true once a gateway took the downlink for RX1 or RX2; false when none could (counted and logged). */
  send(
    kind: ClassADownlinkKind,
    device: LorawanDevice,
    receptions: readonly Reception[],
    phyPayload: Buffer,
    rx1DelayS: number,
    source: RecordSource,
  ): Promise<boolean>;
  /** Class C: at once, on RX2's frequency and data rate, through the best gateway that heard the device last. */
  sendNow(kind: ClassADownlinkKind, device: LorawanDevice, receptions: readonly Reception[], phyPayload: Buffer, source: RecordSource): Promise<boolean>;
}

export function createClassASender(deps: ClassASenderDeps): ClassASender {
  const { region, log, metrics } = deps;

  /** RX1 where the region can derive its data rate from the uplink's, then RX2. */
  function receiveWindows(via: Reception, uplinkTimestampUs: number, phyPayload: Buffer, rx1DelayS: number): ClassADownlink[] {
    const uplinkDr = region.dataRateFromDatr(via.datr);
    const windows: ClassADownlink[] = [];
    if (uplinkDr !== null) {
      windows.push({
        gatewayEui: via.gatewayEui,
        phyPayload,
        timestampUs: (uplinkTimestampUs + rx1DelayS * 1_000_000) >>> 0,
        frequencyHz: region.rx1Frequency(via.frequencyHz),
        datr: region.datrFromDataRate(region.rx1DataRate(uplinkDr, 0)),
        codingRate: region.codingRate,
        powerDbm: region.defaultTxPowerDbm,
      });
    }
    windows.push({
      gatewayEui: via.gatewayEui,
      phyPayload,
      timestampUs: (uplinkTimestampUs + (rx1DelayS + 1) * 1_000_000) >>> 0,
      frequencyHz: region.rx2FrequencyHz,
      datr: region.datrFromDataRate(region.rx2DataRate),
      codingRate: region.codingRate,
      powerDbm: region.defaultTxPowerDbm,
    });
    return windows;
  }

  async function send(
    kind: ClassADownlinkKind,
    device: LorawanDevice,
    receptions: readonly Reception[],
    phyPayload: Buffer,
    rx1DelayS: number,
    source: RecordSource,
  ): Promise<boolean> {
    const path = deps.downlink;
    const via = receptions.find((reception) => reception.timestampUs !== null && path?.canReach(reception.gatewayEui));
    if (path === null || via === undefined || via.timestampUs === null) {
      metrics.lorawanDownlinks.inc({ kind, window: 'none', result: 'no-route' });
      deps.reject(
        source,
        'no-downlink-path',
        device.profile.devEui,
        `no gateway that heard ${device.profile.devEui} has a downlink route (no PULL_DATA from it lately) for the ${kind}`,
      );
      return false;
    }
    const windows = receiveWindows(via, via.timestampUs, phyPayload, rx1DelayS);
    for (const [index, downlink] of windows.entries()) {
      const window = windows.length === 2 && index === 0 ? 'rx1' : 'rx2';
      const result = await path.send(downlink);
      metrics.lorawanDownlinks.inc({ kind, window, result: result.ok ? 'sent' : 'failed' });
      if (result.ok) return true;
      log.debug({ devEui: device.profile.devEui, kind, window, reason: result.reason }, 'downlink window refused');
    }
    return false;
  }

  async function sendNow(
    kind: ClassADownlinkKind,
    device: LorawanDevice,
    receptions: readonly Reception[],
    phyPayload: Buffer,
    source: RecordSource,
  ): Promise<boolean> {
    const path = deps.downlink;
    const via = receptions.find((reception) => path?.canReach(reception.gatewayEui));
    if (path === null || via === undefined) {
      metrics.lorawanDownlinks.inc({ kind, window: 'none', result: 'no-route' });
      deps.reject(source, 'no-downlink-path', device.profile.devEui, `no gateway that heard ${device.profile.devEui} has a downlink route for the ${kind}`);
      return false;
    }
    const result = await path.send({
      gatewayEui: via.gatewayEui,
      phyPayload,
      timestampUs: null,
      frequencyHz: region.rx2FrequencyHz,
      datr: region.datrFromDataRate(region.rx2DataRate),
      codingRate: region.codingRate,
      powerDbm: region.defaultTxPowerDbm,
    });
    metrics.lorawanDownlinks.inc({ kind, window: 'class-c', result: result.ok ? 'sent' : 'failed' });
    if (!result.ok) log.debug({ devEui: device.profile.devEui, kind, reason: result.reason }, 'Class C downlink refused');
    return result.ok;
  }

  return { send, sendNow };
}
