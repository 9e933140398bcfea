// The network side of the LoRaWAN 1.0.x MAC layer, one uplink at a time: what the device's MAC commands (FOpts,
// or FPort 0) say and what the network answers or asks in the receive window after it.
//   LinkCheckReq  -> LinkCheckAns: margin of the best reception above the data rate's demodulation floor, and
//                    how many gateways heard it.
//   DeviceTimeReq -> DeviceTimeAns: GPS time at the end of the uplink, from the gateway's GPS time or else this
//                    box's clock, and only while that clock is synchronized (a wrong time is worse than none).
//   ADR           -> LinkADRReq when decideAdr (adr.ts, ChirpStack's algorithm) finds a better data rate, TX power
//                    or NbTrans; the device's LinkADRAns applies it (all three bits set) or refuses it.
//   DevStatusReq  every `devStatusIntervalMs`; the DevStatusAns goes into the next record as iotgw.dev_status.
//   NewChannelReq for the region's extra channels to a device that has only the default ones (ABP: no CFList).
//   RXParamSetupReq, RXTimingSetupReq, DutyCycleReq when the device's receive windows or duty cycle differ from
//                    the configured ones; the server uses the new windows once the device confirmed them.
// Answers (LinkCheckAns, DeviceTimeAns) and ADRACKReq oblige a downlink in this window; requests only ask for
// one. What is pending (an unanswered LinkADRReq, DevStatusReq, NewChannelReq) is settled by the device's next
// uplink: answered, or dropped and asked again later. Unknown or malformed commands are counted, logged once per
// device and interval, and the uplink is kept. The state (TX power, NbTrans, channels, the ADR history) lives in
// the session and is committed with every uplink.
import { createOnceLogger, type LogBudget, type Logger } from '../../core/log.ts';
import type { Metrics } from '../../core/metrics.ts';
import { gpsTimeFromUnixMs } from '../lorawan/gps-time.ts';
import { linkAdrBlockStatus, REPEATED_UNTIL_DOWNLINK } from '../lorawan/mac-command-rules.ts';
import { type DownlinkMacCommand, parseUplinkMacCommands, type UplinkMacCommand } from '../lorawan/mac-commands.ts';
import type { DataFrame } from '../lorawan/phy-payload.ts';
import type { Region } from '../lorawan/region.ts';
import {
  addToUplinkHistory,
  decideAdr,
  EMPTY_UPLINK_HISTORY,
  persistUplinkHistory,
  readPersistedUplinkHistory,
  requiredSnrDb,
  type UplinkHistory,
  uplinkHistoryEntry,
} from './adr.ts';
import type { RxSettings } from './class-a-downlink.ts';
import type { Reception } from './reception.ts';

export interface MacLayerOptions {
  readonly region: Region;
  readonly adr: {
    readonly enabled: boolean;
    readonly installationMarginDb: number;
    readonly minDataRate: number;
    /** Capped by adr.ts at the region's highest 125 kHz rate. */
    readonly maxDataRate: number;
  };
  /** The receive windows and the duty cycle devices should have; they are asked to take them. */
  readonly rx: RxSettings;
  /** DutyCycleReq MaxDutyCycle, 0..15: 1/2^n of the time; 0 = no limit beyond the region's. */
  readonly maxDutyCycle: number;
  /** How often a device is asked for its battery and margin (the first time one interval into its session); 0 = never. */
  readonly devStatusIntervalMs: number;
  /**
   * Offer the region's extra channels (NewChannelReq) to devices that have only the default ones (ABP: no
   * CFList). Off by default: an ABP device's firmware often has them already, and a device that was fine should
   * not get unasked-for commands.
   */
  readonly announceChannels: boolean;
  readonly rejectLogIntervalMs: number;
}

export interface MacLayerDeps {
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Wall clock, ms (DevStatus interval, DeviceTimeAns). */
  readonly nowMs: () => number;
  /** Whether this box's clock is synchronized (NTP): DeviceTimeAns from it only then. */
  readonly clockTrusted: () => boolean;
  readonly logBudget?: LogBudget;
}

/** A session's MAC state: committed with it (see device-sessions.ts), reset by a join. */
export interface MacState {
  /** The data rate of its last uplink; null before the first. */
  dataRate: number | null;
  /** TXPower index the device confirmed; 0 (its maximum power) after a join. */
  txPowerIndex: number;
  /** Transmissions per unconfirmed uplink the device confirmed; 1 after a join. */
  nbTrans: number;
  /**
   * 'all': the whole channel plan; 'default': only the region's default channels (ABP, no CFList), NewChannelReq
   * offers the rest; 'default-only': the device refused them and is not asked again.
   */
  channels: ChannelPlan;
  /** The last ADR_HISTORY_SIZE uplinks' best SNRs, for ADR. */
  history: UplinkHistory;
  /** The device's receive windows as it confirmed them (or as its join-accept or the region set them). */
  rx: RxSettings;
  /** The MaxDutyCycle it confirmed; 0 after a join. */
  maxDutyCycle: number;
  /** Wall-clock ms of the last DevStatusReq sent, or of the session's first uplink before one was; null until then. */
  devStatusRequestedAtMs: number | null;
  /** A DevStatusAns not yet put into a record (it came on FPort 0, which makes none). */
  unreportedDevStatus: DevStatus | null;
  /** Sent and not answered yet; committed right after the downlink went, so an answer after a restart is still read. */
  pending: PendingRequests;
}

export type ChannelPlan = 'all' | 'default' | 'default-only';

export interface DevStatus {
  /** 0 external power, 1..254 battery level, 255 unknown. */
  readonly battery: number;
  /** SNR in dB of the DevStatusReq at the device, -32..31. */
  readonly marginDb: number;
  readonly receivedAtMs: number;
}

interface PendingRequests {
  adr: { readonly dataRate: number; readonly txPowerIndex: number; readonly nbTrans: number } | null;
  devStatus: boolean;
  newChannels: number;
  /** LinkADRReq / NewChannelReq the device let pass without an answer in a row: past MAX_UNANSWERED it is not asked again this session. */
  adrUnanswered: number;
  newChannelsUnanswered: number;
  rxParams: Pick<RxSettings, 'rx1DrOffset' | 'rx2DataRate' | 'rx2FrequencyHz'> | null;
  rxDelayS: number | null;
  dutyCycle: number | null;
  /** Receive-window and duty-cycle requests unanswered in a row, or refused: then not asked again this session. */
  rxUnanswered: number;
  rxRefused: boolean;
}

/** A device that ignores a request is not sent it after every uplink: after this many in a row, not until its next session (or restart). */
const MAX_UNANSWERED = 3;

/** The committed form of MacState, inside the device's state JSON. */
export interface PersistedMacState {
  readonly tx: number;
  readonly nb: number;
  readonly ch: ChannelPlan;
  readonly h: unknown;
  readonly ds_at: number | null;
  /** [RX1 delay s, RX1DROffset, RX2 data rate, RX2 Hz] */
  readonly rx?: readonly [number, number, number, number];
  readonly dc?: number;
  readonly dr?: number | null;
  /** What was asked and not answered: LinkADRReq [DR, TX power, NbTrans], RXParamSetupReq [offset, RX2 DR, Hz], RXTimingSetupReq s, DutyCycleReq, DevStatusReq, NewChannelReq count. */
  readonly p?: {
    readonly adr?: readonly [number, number, number];
    readonly rx?: readonly [number, number, number];
    readonly d?: number;
    readonly dc?: number;
    readonly ds?: true;
    readonly nc?: number;
  };
}

export interface UplinkMac {
  /** Fields for the uplink's record, under `iotgw`. */
  readonly recordFields: Readonly<Record<string, unknown>>;
  /** Answers first, then requests, in the order they go out. */
  readonly downlink: readonly DownlinkMacCommand[];
  /** This window must carry a downlink: an answer, an ADRACKReq, or answers the device repeats until one comes. */
  readonly mustAnswer: boolean;
  /** The data rate index of this uplink; null for a datr the region does not have. */
  readonly dataRate: number | null;
  /**
   * The commands that went out (after the gateway took the downlink): requests become pending. True when
   * any did, so the state must be committed; answers (LinkCheckAns, DeviceTimeAns) change nothing.
   */
  sent(commands: readonly DownlinkMacCommand[]): boolean;
}

export interface UplinkMacInput {
  readonly devEui: string;
  /** The session's state; created on first use. */
  readonly state: MacState;
  readonly frame: Pick<DataFrame, 'fctrl' | 'fport'>;
  readonly fcnt: number;
  /** Best first. */
  readonly receptions: readonly Reception[];
  /** FOpts, or the decrypted FRMPayload of FPort 0. */
  readonly macBytes: Uint8Array;
  /** Per-device ADR switch (lorawan.devices[].adr). */
  readonly adrAllowed: boolean;
}

export interface MacLayer {
  uplink(input: UplinkMacInput): UplinkMac;
  /** The last ADR changes devices applied, newest first (bounded). */
  recentAdrChanges(): readonly AdrChange[];
}

/** One LinkADRReq a device applied: for the status page. */
export interface AdrChange {
  readonly atMs: number;
  readonly devEui: string;
  readonly from: { readonly dataRate: number | null; readonly txPowerIndex: number; readonly nbTrans: number };
  readonly to: { readonly dataRate: number; readonly txPowerIndex: number; readonly nbTrans: number };
}

/** ADR changes kept for the status page. */
const RECENT_ADR_CHANGES = 50;

const DEFAULT_NB_TRANS = 1;
/** ChMaskCntl 6 in EU868-like regions: every channel the device has defined on, ChMask ignored (RP002 §2.4.5). */
const ALL_DEFINED_CHANNELS_ON = 6;

/** A new session's MAC state: an OTAA session got the whole channel plan in its join-accept's CFList. */
export function initialMacState(region: Region, joined: boolean, rx: RxSettings): MacState {
  return {
    rx,
    maxDutyCycle: 0,
    dataRate: null,
    txPowerIndex: 0,
    nbTrans: DEFAULT_NB_TRANS,
    channels: joined || region.extraUplinkChannels.length === 0 || region.cfListType === 1 ? 'all' : 'default',
    history: EMPTY_UPLINK_HISTORY,
    devStatusRequestedAtMs: null,
    unreportedDevStatus: null,
    pending: {
      adr: null,
      devStatus: false,
      newChannels: 0,
      adrUnanswered: 0,
      newChannelsUnanswered: 0,
      rxParams: null,
      rxDelayS: null,
      dutyCycle: null,
      rxUnanswered: 0,
      rxRefused: false,
    },
  };
}

export function persistMacState(state: MacState): PersistedMacState {
  const { rx } = state;
  return {
    tx: state.txPowerIndex,
    nb: state.nbTrans,
    ch: state.channels,
    h: persistUplinkHistory(state.history),
    ds_at: state.devStatusRequestedAtMs,
    rx: [rx.rx1DelayS, rx.rx1DrOffset, rx.rx2DataRate, rx.rx2FrequencyHz],
    dc: state.maxDutyCycle,
    dr: state.dataRate,
    ...pendingField(state.pending),
  };
}

function pendingField(pending: PendingRequests): Pick<PersistedMacState, 'p'> {
  const p = {
    ...(pending.adr === null ? {} : { adr: [pending.adr.dataRate, pending.adr.txPowerIndex, pending.adr.nbTrans] as const }),
    ...(pending.rxParams === null ? {} : { rx: [pending.rxParams.rx1DrOffset, pending.rxParams.rx2DataRate, pending.rxParams.rx2FrequencyHz] as const }),
    ...(pending.rxDelayS === null ? {} : { d: pending.rxDelayS }),
    ...(pending.dutyCycle === null ? {} : { dc: pending.dutyCycle }),
    ...(pending.devStatus ? { ds: true as const } : {}),
    ...(pending.newChannels === 0 ? {} : { nc: pending.newChannels }),
  };
  return Object.keys(p).length === 0 ? {} : { p };
}

/** The committed state read back; what does not read starts from `initial` (the worst case: one more LinkADRReq). */
export function readMacState(value: unknown, initial: MacState): MacState {
  if (typeof value !== 'object' || value === null) return initial;
  const saved = value as Partial<Record<keyof PersistedMacState, unknown>>;
  const history = readPersistedUplinkHistory(saved.h);
  const int = (field: unknown, max: number, fallback: number): number =>
    typeof field === 'number' && Number.isInteger(field) && field >= 0 && field <= max ? field : fallback;
  return {
    ...initial,
    txPowerIndex: int(saved.tx, 15, initial.txPowerIndex),
    nbTrans: int(saved.nb, 15, initial.nbTrans) || DEFAULT_NB_TRANS,
    channels: saved.ch === 'all' || saved.ch === 'default' || saved.ch === 'default-only' ? saved.ch : initial.channels,
    history: history.ok ? history.history : initial.history,
    devStatusRequestedAtMs: typeof saved.ds_at === 'number' && Number.isFinite(saved.ds_at) ? saved.ds_at : null,
    rx: readRx(saved.rx, initial.rx),
    maxDutyCycle: int(saved.dc, 15, initial.maxDutyCycle),
    dataRate: typeof saved.dr === 'number' && Number.isInteger(saved.dr) && saved.dr >= 0 && saved.dr <= 15 ? saved.dr : initial.dataRate,
    pending: readPending(saved.p, initial.pending),
  };
}

/** The committed pending requests; anything that does not read is dropped (the next uplink settles nothing, then asks again). */
function readPending(value: unknown, initial: PendingRequests): PendingRequests {
  if (typeof value !== 'object' || value === null) return initial;
  const p = value as Record<string, unknown>;
  const ints = (field: unknown, length: number): number[] | null =>
    Array.isArray(field) && field.length === length && field.every((item) => typeof item === 'number' && Number.isInteger(item) && item >= 0)
      ? (field as number[])
      : null;
  const small = (field: unknown, max: number): number | null =>
    typeof field === 'number' && Number.isInteger(field) && field >= 0 && field <= max ? field : null;
  const adr = ints(p.adr, 3);
  const rx = ints(p.rx, 3);
  return {
    ...initial,
    adr: adr === null ? null : { dataRate: adr[0] ?? 0, txPowerIndex: adr[1] ?? 0, nbTrans: adr[2] ?? 1 },
    rxParams: rx === null ? null : { rx1DrOffset: rx[0] ?? 0, rx2DataRate: rx[1] ?? 0, rx2FrequencyHz: rx[2] ?? 0 },
    rxDelayS: small(p.d, 15),
    dutyCycle: small(p.dc, 15),
    devStatus: p.ds === true,
    newChannels: small(p.nc, 16) ?? 0,
  };
}

function readRx(value: unknown, initial: RxSettings): RxSettings {
  if (!Array.isArray(value) || value.length !== 4 || !value.every((field) => typeof field === 'number' && Number.isInteger(field) && field >= 0))
    return initial;
  const [rx1DelayS, rx1DrOffset, rx2DataRate, rx2FrequencyHz] = value as number[];
  if (rx1DelayS === undefined || rx1DrOffset === undefined || rx2DataRate === undefined || rx2FrequencyHz === undefined) return initial;
  if (rx1DelayS < 1 || rx1DelayS > 15 || rx1DrOffset > 7 || rx2DataRate > 15) return initial;
  return { rx1DelayS, rx1DrOffset, rx2DataRate, rx2FrequencyHz };
}

export function createMacLayer(options: MacLayerOptions, deps: MacLayerDeps): MacLayer {
  const { region } = options;
  const { metrics } = deps;
  const log = deps.log;
  const once = createOnceLogger(options.rejectLogIntervalMs, undefined, deps.logBudget === undefined ? {} : { budget: deps.logBudget });

  const adrChanges: AdrChange[] = [];
  // Every outcome exists from the start at 0, so an alert on a rate of refusals has a series to read.
  for (const result of ['requested', 'applied', 'refused', 'unanswered']) metrics.lorawanAdr.inc({ result }, 0);

  function counted(direction: 'up' | 'down', command: string, result: string): void {
    metrics.lorawanMacCommands.inc({ direction, command, result });
  }

  function warnOnce(devEui: string, what: string, fields: Record<string, unknown>, message: string): void {
    if (once.shouldLog(`${devEui}|${what}`)) log.warn({ devEui, ...fields }, message);
  }

  /**
   * The ChMask blocks that keep the device's channels on: the plan's, or for a device whose channels are not known
   * (ABP in a CFList-type-0 region) ChMaskCntl 6, "all defined channels on" (RP002 EU868 and alike), so ADR never
   * turns off channels its firmware set up.
   */
  function channelMasks(state: MacState): readonly { chMaskCntl: number; chMask: number }[] {
    if (state.channels === 'all') return region.linkAdrChannelMasks();
    return [{ chMaskCntl: ALL_DEFINED_CHANNELS_ON, chMask: 0 }];
  }

  function uplink(input: UplinkMacInput): UplinkMac {
    const { state, devEui, receptions } = input;
    const parsed = parseUplinkMacCommands(input.macBytes);
    const commands = parsed.commands;
    if (parsed.stop !== null) {
      counted('up', parsed.stop.reason === 'unknown-cid' ? 'unknown' : 'malformed', 'refused');
      warnOnce(
        devEui,
        'mac-parse',
        { offset: parsed.stop.offset },
        `LoRaWAN device ${devEui}: MAC commands not understood from byte ${parsed.stop.offset} on (${parsed.stop.message}); the commands before it are handled and the uplink is kept`,
      );
    }
    const recordFields: Record<string, unknown> = {};
    const answers: DownlinkMacCommand[] = [];
    const requests: DownlinkMacCommand[] = [];
    let mustAnswer = input.frame.fctrl.adrAckReq;
    const best = receptions[0];
    const uplinkDr = best === undefined ? null : region.dataRateFromDatr(best.datr);
    const previousDr = state.dataRate;
    if (uplinkDr !== null) state.dataRate = uplinkDr;

    for (const command of commands) {
      counted('up', command.command, 'handled');
      if (REPEATED_UNTIL_DOWNLINK.has(command.command)) mustAnswer = true;
      if (command.command === 'LinkCheckReq') {
        const floor = uplinkDr === null ? null : requiredSnrDb(region.dataRates.get(uplinkDr)?.spreadingFactor ?? 0);
        const snr = best?.snr ?? null;
        const margin = floor === null || snr === null ? 0 : Math.max(0, Math.min(254, Math.round(snr - floor)));
        answers.push({ command: 'LinkCheckAns', margin, gwCnt: Math.min(255, receptions.length) });
        mustAnswer = true;
      } else if (command.command === 'DeviceTimeReq') {
        const time = deviceTime(receptions);
        if (time === null) {
          counted('up', 'DeviceTimeReq', 'not-answered');
          warnOnce(
            devEui,
            'device-time',
            {},
            `LoRaWAN device ${devEui} asked for the time (DeviceTimeReq): not answered, the gateway's clock is not synchronized yet`,
          );
        } else {
          answers.push({ command: 'DeviceTimeAns', ...gpsTimeFromUnixMs(time) });
          mustAnswer = true;
        }
      } else if (command.command === 'DevStatusAns') {
        state.unreportedDevStatus = { battery: command.battery, marginDb: command.margin, receivedAtMs: deps.nowMs() };
      }
    }
    settleAdr(state, devEui, commands, previousDr);
    settleNewChannels(state, devEui, commands);
    settleRx(state, devEui, commands);
    state.pending.devStatus = false;

    const entry = uplinkHistoryEntry(input.fcnt, receptions, state.txPowerIndex);
    if (entry !== null) state.history = addToUplinkHistory(state.history, entry);
    if (state.unreportedDevStatus !== null && input.frame.fport !== null && input.frame.fport !== 0) {
      recordFields.dev_status = devStatusFields(state.unreportedDevStatus);
      state.unreportedDevStatus = null;
    }
    if (commands.length > 0) recordFields.mac_commands = commands.map((command) => command.command);

    if (options.announceChannels && state.channels === 'default' && state.pending.newChannels === 0) requests.push(...newChannelRequests());
    requests.push(...rxRequests(state));
    const adr = options.adr.enabled && input.adrAllowed && input.frame.fctrl.adr && uplinkDr !== null ? adrRequests(state, uplinkDr) : [];
    requests.push(...adr);
    const now = deps.nowMs();
    state.devStatusRequestedAtMs ??= now;
    if (options.devStatusIntervalMs > 0 && now - state.devStatusRequestedAtMs >= options.devStatusIntervalMs) requests.push({ command: 'DevStatusReq' });

    return {
      recordFields,
      downlink: [...answers, ...requests],
      mustAnswer,
      dataRate: uplinkDr,
      sent(sentCommands) {
        const { pending } = state;
        let newChannels = 0;
        let requested = false;
        for (const command of sentCommands) {
          counted('down', command.command, 'sent');
          requested ||= command.command !== 'LinkCheckAns' && command.command !== 'DeviceTimeAns';
          switch (command.command) {
            case 'LinkADRReq':
              // A block: the last request's DataRate, TXPower and NbTrans are the ones the device applies.
              pending.adr = { dataRate: command.dataRate, txPowerIndex: command.txPower, nbTrans: command.nbTrans };
              break;
            case 'NewChannelReq':
              newChannels += 1;
              break;
            case 'RXParamSetupReq':
              pending.rxParams = { rx1DrOffset: command.rx1DrOffset, rx2DataRate: command.rx2DataRate, rx2FrequencyHz: command.frequencyHz };
              break;
            case 'RXTimingSetupReq':
              pending.rxDelayS = command.delay === 0 ? 1 : command.delay;
              break;
            case 'DutyCycleReq':
              pending.dutyCycle = command.maxDutyCycle;
              break;
            case 'DevStatusReq':
              pending.devStatus = true;
              state.devStatusRequestedAtMs = deps.nowMs();
              break;
            default:
              break; // an answer: nothing to wait for
          }
        }
        if (newChannels > 0) pending.newChannels = newChannels;
        return requested;
      },
    };
  }

  /** GPS-synchronized gateways tell the time of reception; else this box's clock, when synchronized. */
  function deviceTime(receptions: readonly Reception[]): number | null {
    for (const reception of receptions) {
      if (reception.gatewayTime === null) continue;
      const time = Date.parse(reception.gatewayTime);
      if (Number.isFinite(time)) return time;
    }
    const best = receptions[0];
    return best !== undefined && deps.clockTrusted() ? best.receivedAtMs : null;
  }

  function settleAdr(state: MacState, devEui: string, commands: readonly UplinkMacCommand[], previousDr: number | null): void {
    const pending = state.pending.adr;
    state.pending.adr = null;
    const status = linkAdrBlockStatus(commands);
    if (pending === null || status === null) {
      if (pending !== null) {
        metrics.lorawanAdr.inc({ result: 'unanswered' });
        state.pending.adrUnanswered += 1;
        if (state.pending.adrUnanswered === MAX_UNANSWERED) {
          warnOnce(
            devEui,
            'adr-unanswered',
            {},
            `LoRaWAN device ${devEui} answered none of ${MAX_UNANSWERED} LinkADRReq: ADR is paused for it until it joins again or the gateway restarts`,
          );
        }
      }
      return;
    }
    state.pending.adrUnanswered = 0;
    if (status.powerAck && status.dataRateAck && status.channelMaskAck) {
      adrChanges.unshift({
        atMs: deps.nowMs(),
        devEui,
        from: { dataRate: previousDr, txPowerIndex: state.txPowerIndex, nbTrans: state.nbTrans },
        to: { dataRate: pending.dataRate, txPowerIndex: pending.txPowerIndex, nbTrans: pending.nbTrans },
      });
      if (adrChanges.length > RECENT_ADR_CHANGES) adrChanges.pop();
      state.txPowerIndex = pending.txPowerIndex;
      state.nbTrans = pending.nbTrans;
      // SNRs measured at the old settings no longer describe the link (chirpstack maccommand/link_adr.rs).
      state.history = EMPTY_UPLINK_HISTORY;
      metrics.lorawanAdr.inc({ result: 'applied' });
      return;
    }
    metrics.lorawanAdr.inc({ result: 'refused' });
    const refused = [!status.dataRateAck && 'data rate', !status.powerAck && 'TX power', !status.channelMaskAck && 'channel mask'].filter(Boolean).join(', ');
    warnOnce(
      devEui,
      'adr-refused',
      { dataRate: pending.dataRate, txPowerIndex: pending.txPowerIndex },
      `LoRaWAN device ${devEui} refused a LinkADRReq (${refused}): it stays on its settings; set adr: false for it if it keeps refusing`,
    );
  }

  /** Answers to RXParamSetupReq, RXTimingSetupReq, DutyCycleReq: the new settings count from now on, for the next downlink. */
  function settleRx(state: MacState, devEui: string, commands: readonly UplinkMacCommand[]): void {
    const { pending } = state;
    const asked = pending.rxParams !== null || pending.rxDelayS !== null || pending.dutyCycle !== null;
    if (!asked) return;
    let answered = false;
    for (const command of commands) {
      if (command.command === 'RXParamSetupAns' && pending.rxParams !== null) {
        answered = true;
        if (command.rx1DrOffsetAck && command.rx2DataRateAck && command.channelAck) {
          state.rx = { ...state.rx, ...pending.rxParams };
        } else {
          pending.rxRefused = true;
          const refused = [!command.rx1DrOffsetAck && 'RX1DROffset', !command.rx2DataRateAck && 'RX2 data rate', !command.channelAck && 'RX2 frequency'].filter(
            Boolean,
          );
          warnOnce(devEui, 'rx-refused', {}, `LoRaWAN device ${devEui} refused the receive windows (RXParamSetupReq: ${refused.join(', ')}): it keeps its own`);
        }
      } else if (command.command === 'RXTimingSetupAns' && pending.rxDelayS !== null) {
        answered = true;
        state.rx = { ...state.rx, rx1DelayS: pending.rxDelayS };
      } else if (command.command === 'DutyCycleAns' && pending.dutyCycle !== null) {
        answered = true;
        state.maxDutyCycle = pending.dutyCycle;
      }
    }
    // Answered or not, the next uplink after a request settles it: an unanswered one is asked again later.
    pending.rxParams = null;
    pending.rxDelayS = null;
    pending.dutyCycle = null;
    pending.rxUnanswered = answered ? 0 : pending.rxUnanswered + 1;
  }

  function rxRequests(state: MacState): DownlinkMacCommand[] {
    const { pending, rx } = state;
    if (pending.rxRefused || pending.rxUnanswered >= MAX_UNANSWERED) return [];
    const want = options.rx;
    const requests: DownlinkMacCommand[] = [];
    if (rx.rx1DrOffset !== want.rx1DrOffset || rx.rx2DataRate !== want.rx2DataRate || rx.rx2FrequencyHz !== want.rx2FrequencyHz) {
      requests.push({ command: 'RXParamSetupReq', rx1DrOffset: want.rx1DrOffset, rx2DataRate: want.rx2DataRate, frequencyHz: want.rx2FrequencyHz });
    }
    if (rx.rx1DelayS !== want.rx1DelayS) requests.push({ command: 'RXTimingSetupReq', delay: want.rx1DelayS });
    if (state.maxDutyCycle !== options.maxDutyCycle) requests.push({ command: 'DutyCycleReq', maxDutyCycle: options.maxDutyCycle });
    return requests;
  }

  function settleNewChannels(state: MacState, devEui: string, commands: readonly UplinkMacCommand[]): void {
    const asked = state.pending.newChannels;
    state.pending.newChannels = 0;
    if (asked === 0) return;
    const answers = commands.filter((command) => command.command === 'NewChannelAns');
    if (answers.length === 0) {
      state.pending.newChannelsUnanswered += 1;
      if (state.pending.newChannelsUnanswered >= MAX_UNANSWERED) state.channels = 'default-only';
      return;
    }
    if (answers.length === asked && answers.every((answer) => answer.dataRateRangeOk && answer.channelFrequencyOk)) {
      state.channels = 'all';
      return;
    }
    // A device that cannot take them keeps its default channels, and is not asked again.
    state.channels = 'default-only';
    warnOnce(devEui, 'new-channel', {}, `LoRaWAN device ${devEui} refused the region's extra channels (NewChannelReq): it keeps its default channels`);
  }

  function newChannelRequests(): DownlinkMacCommand[] {
    return region.extraUplinkChannels.map((channel) => ({
      command: 'NewChannelReq',
      chIndex: channel.index,
      frequencyHz: channel.frequencyHz,
      minDr: channel.minDataRate,
      maxDr: channel.maxDataRate,
    }));
  }

  function adrRequests(state: MacState, uplinkDr: number): DownlinkMacCommand[] {
    if (state.pending.adr !== null || state.pending.adrUnanswered >= MAX_UNANSWERED) return [];
    const decision = decideAdr({
      dataRate: uplinkDr,
      txPowerIndex: state.txPowerIndex,
      nbTrans: state.nbTrans,
      minDataRate: options.adr.minDataRate,
      maxDataRate: options.adr.maxDataRate,
      maxTxPowerIndex: region.txPowerOffsetsDb.length - 1,
      installationMarginDb: options.adr.installationMarginDb,
      history: state.history,
      dataRates: region.dataRates,
    });
    if (!decision.changed) return [];
    metrics.lorawanAdr.inc({ result: 'requested' });
    return channelMasks(state).map((block) => ({
      command: 'LinkADRReq',
      dataRate: decision.dataRate,
      txPower: decision.txPowerIndex,
      chMask: block.chMask,
      chMaskCntl: block.chMaskCntl,
      nbTrans: decision.nbTrans,
    }));
  }

  return { uplink, recentAdrChanges: () => [...adrChanges] };
}

function devStatusFields(status: DevStatus): Record<string, unknown> {
  return {
    battery: status.battery,
    // TTS's last_battery_percentage: 1..254 mapped onto 0..100; 0 is external power, 255 not measurable.
    ...(status.battery >= 1 && status.battery <= 254 ? { battery_percent: Math.round(((status.battery - 1) / 253) * 1000) / 10 } : {}),
    external_power: status.battery === 0,
    margin_db: status.marginDb,
    received_at: new Date(status.receivedAtMs).toISOString(),
  };
}
