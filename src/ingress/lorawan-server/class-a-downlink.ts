// Class-A downlinks of the LoRaWAN server (LoRaWAN 1.0.x §3.3): a downlink answers one uplink, in RX1 (the
// uplink's timestamp + the RX1 delay, on the frequency and data rate the region derives from the uplink's) or
// in RX2 one second later (the region's fixed frequency and data rate). It goes through the best gateway that
// heard the uplink and can transmit; RX2 is tried when the gateway refuses RX1 (too late, a collision). A window
// whose data rate cannot carry the frame (the region's M, RP002-1.0.3) is skipped; when neither can, nothing is
// sent and the reason is counted and logged. In regions with duty-cycle bands (EU868: ETSI EN 300 220) a window
// whose band the gateway has used up within the last hour is skipped too; the airtime of a window the gateway
// then refuses in its TX_ACK is given back.
import type { Logger } from '../../core/log.ts';
import type { Metrics } from '../../core/metrics.ts';
import type { RecordSource } from '../../record/record.ts';
import { lorawanAirtimeMs } from '../lorawan/airtime.ts';
import type { Region } from '../lorawan/region.ts';
import type { LorawanDevice } from './device-sessions.ts';
import { createDownlinkDutyCycle, type DutyCycleGrant } from './downlink-duty-cycle.ts';
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

/**
 * A device's receive windows as it has them: the region's defaults, the join-accept's DLSettings, or what it
 * confirmed to RXParamSetupReq / RXTimingSetupReq (mac-layer.ts).
 */
export interface RxSettings {
  /** Seconds from the end of the uplink to RX1 (RX2 one second later). */
  readonly rx1DelayS: number;
  readonly rx1DrOffset: number;
  readonly rx2DataRate: number;
  readonly rx2FrequencyHz: number;
}

/** The region's RX windows for data frames (RECEIVE_DELAY1, RX1DROffset 0, the RX2 default). */
export function defaultRxSettings(region: Region): RxSettings {
  return { rx1DelayS: region.rx1DelaySeconds, rx1DrOffset: 0, rx2DataRate: region.rx2DataRate, rx2FrequencyHz: region.rx2FrequencyHz };
}

/** The `kind` label of the downlink metric. */
export type ClassADownlinkKind = 'ack' | 'join-accept' | 'command' | 'mac';

/** Why a downlink could not go out at all. */
export type DownlinkRejectReason = 'no-downlink-path' | 'downlink-too-large' | 'duty-cycle';

export interface ClassASenderDeps {
  readonly region: Region;
  /** null for a receive-only radio: nothing can be sent. */
  readonly downlink: DownlinkPath | null;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Counts and logs a frame whose answer could not be sent (the LoRaWAN server's rejections, per device). */
  readonly reject: (source: RecordSource, reason: DownlinkRejectReason, device: string, message: string) => void;
  /** Wall clock, ms, for the duty-cycle window; Date.now when absent. */
  readonly nowMs?: () => number;
}

export interface ClassASender {
  /** Resolves true once a gateway took the downlink for RX1 or RX2; false when none could (counted and logged). */
  send(
    kind: ClassADownlinkKind,
    device: LorawanDevice,
    receptions: readonly Reception[],
    phyPayload: Buffer,
    rx: RxSettings,
    source: RecordSource,
  ): Promise<boolean>;
  /** Class C: at once, on the device's RX2 frequency and data rate, through the best gateway that heard the device last. */
  sendNow(
    kind: ClassADownlinkKind,
    device: LorawanDevice,
    receptions: readonly Reception[],
    phyPayload: Buffer,
    rx: RxSettings,
    source: RecordSource,
  ): Promise<boolean>;
}

/** Gateways whose downlink airtime is tracked at once; past it, a gateway with airtime still in its window is never forgotten (downlinks through new ones are refused). */
const MAX_DUTY_CYCLE_GATEWAYS = 1_000;

/** MHDR (1) + MIC (4): the PHYPayload around the MACPayload that RP002's M bounds. */
const PHY_OVERHEAD_BYTES = 5;

type WindowName = 'rx1' | 'rx2';

interface ReceiveWindow {
  readonly name: WindowName;
  readonly dataRate: number;
  readonly downlink: ClassADownlink;
}

export function createClassASender(deps: ClassASenderDeps): ClassASender {
  const { region, log, metrics } = deps;
  const nowMs = deps.nowMs ?? Date.now;
  const dutyCycle = createDownlinkDutyCycle({ bands: region.dutyCycleBands, maxGateways: MAX_DUTY_CYCLE_GATEWAYS });

  /** The window's airtime, reserved in its band; a refusal says why (logged at debug, counted by the caller). */
  function reserveAirtime(window: ReceiveWindow): DutyCycleGrant | { readonly ok: false; readonly message: string } {
    const { downlink } = window;
    const airtimeMs = lorawanAirtimeMs(downlink.datr, downlink.codingRate, downlink.phyPayload.length, 'down');
    if (airtimeMs === null) return { ok: false, message: `no airtime for ${downlink.datr}` };
    return dutyCycle.reserve(downlink.gatewayEui, downlink.frequencyHz, airtimeMs, nowMs());
  }

  /** Sends in the first window that carries the frame and has airtime left; a refused window gives its airtime back. */
  async function sendInWindows(
    path: DownlinkPath,
    kind: ClassADownlinkKind,
    devEui: string,
    windows: readonly ReceiveWindow[],
    label: (window: ReceiveWindow) => string,
    source: RecordSource,
  ): Promise<boolean> {
    const refusals: string[] = [];
    for (const window of windows) {
      const grant = reserveAirtime(window);
      if (!grant.ok) {
        metrics.lorawanDownlinks.inc({ kind, window: label(window), result: 'duty-cycle' });
        refusals.push(`${label(window).toUpperCase()}: ${grant.message}`);
        continue;
      }
      const result = await path.send(window.downlink);
      metrics.lorawanDownlinks.inc({ kind, window: label(window), result: result.ok ? 'sent' : 'failed' });
      if (result.ok) return true;
      dutyCycle.release(grant, nowMs());
      log.debug({ devEui, kind, window: label(window), reason: result.reason }, 'downlink window refused');
    }
    if (refusals.length === windows.length) {
      deps.reject(source, 'duty-cycle', devEui, `${kind} for ${devEui} not sent: the gateway's duty cycle is used up (${refusals.join('; ')})`);
    }
    return false;
  }

  /** The downlink in one window: the transmit settings of `dataRate` on `frequencyHz`. */
  function inWindow(name: WindowName, via: Reception, phyPayload: Buffer, timestampUs: number | null, frequencyHz: number, dataRate: number): ReceiveWindow {
    return {
      name,
      dataRate,
      downlink: {
        gatewayEui: via.gatewayEui,
        phyPayload,
        timestampUs,
        frequencyHz,
        datr: region.datrFromDataRate(dataRate),
        codingRate: region.codingRate,
        powerDbm: region.defaultTxPowerDbm,
      },
    };
  }

  /** RX1 where the region can derive its frequency and data rate from the uplink's, then RX2. */
  function receiveWindows(via: Reception, uplinkTimestampUs: number, phyPayload: Buffer, rx: RxSettings): ReceiveWindow[] {
    const { rx1DelayS } = rx;
    const uplinkDr = region.dataRateFromDatr(via.datr);
    const rx1FrequencyHz = region.rx1Frequency(via.frequencyHz);
    const windows: ReceiveWindow[] = [];
    if (uplinkDr !== null && rx1FrequencyHz !== null) {
      const timestampUs = (uplinkTimestampUs + rx1DelayS * 1_000_000) >>> 0;
      windows.push(inWindow('rx1', via, phyPayload, timestampUs, rx1FrequencyHz, region.rx1DataRate(uplinkDr, rx.rx1DrOffset)));
    }
    const rx2TimestampUs = (uplinkTimestampUs + (rx1DelayS + 1) * 1_000_000) >>> 0;
    windows.push(inWindow('rx2', via, phyPayload, rx2TimestampUs, rx.rx2FrequencyHz, rx.rx2DataRate));
    return windows;
  }

  /** Whether the window's data rate carries the frame: its MACPayload (PHYPayload - MHDR - MIC) within the region's M. */
  function carries(window: ReceiveWindow): boolean {
    const limit = region.maxPayloadSize(window.dataRate, 'down');
    return limit !== null && window.downlink.phyPayload.length - PHY_OVERHEAD_BYTES <= limit.m;
  }

  /** What a person reads when no window could carry the frame: the sizes, the limits, what to change. */
  function tooLargeMessage(kind: ClassADownlinkKind, devEui: string, phyPayload: Buffer, windows: readonly ReceiveWindow[]): string {
    const limits = windows
      .map(
        (window) =>
          `${window.name.toUpperCase()} at DR${window.dataRate} (${window.downlink.datr}) carries ${region.maxPayloadSize(window.dataRate, 'down')?.m ?? 0}`,
      )
      .join(', ');
    const advice =
      kind === 'command'
        ? 'send a shorter command (commands.max_payload_bytes), or let the device uplink at a faster data rate'
        : `the uplink's data rate is too slow for this frame in ${region.name}${region.dwellTime?.downlink === true ? ' under the 400 ms dwell time (lorawan.dwell_time_400ms)' : ''}`;
    return `${kind} for ${devEui} not sent: its MACPayload is ${phyPayload.length - PHY_OVERHEAD_BYTES} bytes and ${limits} (${region.name}, RP002 M): ${advice}`;
  }

  async function send(
    kind: ClassADownlinkKind,
    device: LorawanDevice,
    receptions: readonly Reception[],
    phyPayload: Buffer,
    rx: RxSettings,
    source: RecordSource,
  ): Promise<boolean> {
    const path = deps.downlink;
    const devEui = device.profile.devEui;
    const via = receptions.find((reception) => reception.timestampUs !== null && path?.canReach(reception.gatewayEui));
    if (path === null || via === undefined || via.timestampUs === null) {
      metrics.lorawanDownlinks.inc({ kind, window: 'none', result: 'no-route' });
      deps.reject(source, 'no-downlink-path', devEui, `no gateway that heard ${devEui} has a downlink route (no PULL_DATA from it lately) for the ${kind}`);
      return false;
    }
    const windows = receiveWindows(via, via.timestampUs, phyPayload, rx);
    const usable = windows.filter(carries);
    for (const window of windows) {
      if (usable.includes(window)) continue;
      metrics.lorawanDownlinks.inc({ kind, window: window.name, result: 'too-large' });
      log.debug(
        { devEui, kind, window: window.name, dataRate: window.dataRate, bytes: phyPayload.length },
        'downlink window skipped: the frame is too large for its data rate',
      );
    }
    if (usable.length === 0) {
      deps.reject(source, 'downlink-too-large', devEui, tooLargeMessage(kind, devEui, phyPayload, windows));
      return false;
    }
    return sendInWindows(path, kind, devEui, usable, (window) => window.name, source);
  }

  async function sendNow(
    kind: ClassADownlinkKind,
    device: LorawanDevice,
    receptions: readonly Reception[],
    phyPayload: Buffer,
    rx: RxSettings,
    source: RecordSource,
  ): Promise<boolean> {
    const path = deps.downlink;
    const devEui = device.profile.devEui;
    const via = receptions.find((reception) => path?.canReach(reception.gatewayEui));
    if (path === null || via === undefined) {
      metrics.lorawanDownlinks.inc({ kind, window: 'none', result: 'no-route' });
      deps.reject(source, 'no-downlink-path', devEui, `no gateway that heard ${devEui} has a downlink route for the ${kind}`);
      return false;
    }
    const window = inWindow('rx2', via, phyPayload, null, rx.rx2FrequencyHz, rx.rx2DataRate);
    if (!carries(window)) {
      metrics.lorawanDownlinks.inc({ kind, window: 'class-c', result: 'too-large' });
      deps.reject(source, 'downlink-too-large', devEui, tooLargeMessage(kind, devEui, phyPayload, [window]));
      return false;
    }
    return sendInWindows(path, kind, devEui, [window], () => 'class-c', source);
  }

  return { send, sendNow };
}
