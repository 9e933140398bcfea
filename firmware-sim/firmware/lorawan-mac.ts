// The device side of the LoRaWAN 1.0.x MAC layer for a simulated Class-A device, one session at a time: it reads
// the MAC commands of each downlink (FOpts, or the FPort-0 payload decrypted with the NwkSKey), checks them against
// the region and the device's own channels the way LoRaMac-node does (src/mac/LoRaMac.c ProcessMacCommands and
// src/mac/region/Region*.c), applies what is valid and queues the answers for the next uplink, and it keeps the
// device's ADR state: data rate, TX power, NbTrans, channel mask, and the ADR_ACK_CNT backoff. Pure: no clocks, no
// I/O; the firmware (lorawan-firmware.ts) hands it each downlink's bytes and asks it what the next uplink carries.
//
//   LinkADRReq        a contiguous block is checked and applied as one (all or nothing), one LinkADRAns per request
//                     with the same bits (mac-command-rules.ts linkAdrReqBlocks); DataRate/TXPower 15 = keep
//   DevStatusReq      DevStatusAns: the battery the model reports, the downlink's SNR as margin (-32..31)
//   DutyCycleReq      aggregated duty cycle 1/2^MaxDutyCycle; DutyCycleAns
//   RXParamSetupReq   RX1DROffset, RX2 data rate and frequency, all or nothing; RXParamSetupAns
//   RXTimingSetupReq  RX1 delay; RXTimingSetupAns
//   NewChannelReq     defines (or removes) a channel, in regions with a dynamic channel plan; NewChannelAns
//   TxParamSetupReq   MaxEIRP and dwell times, in regions that have them (AS923, AU915); TxParamSetupAns
//   DlChannelReq      an RX1 frequency for a channel, in regions with a dynamic channel plan; DlChannelAns
//   LinkCheckAns, DeviceTimeAns   answers to the device's own requests: read and kept
// Commands a region does not implement (NewChannelReq, DlChannelReq in US915/AU915, TxParamSetupReq outside
// AS923/AU915) get no answer, as LoRaMac-node's region functions return -1 for them. The answers of
// REPEATED_UNTIL_DOWNLINK go in every uplink until a downlink arrives; the others in the next uplink only.
// An unknown CID ends the parse (its length is unknown, LoRaWAN 1.0.4 §5): the commands before it are handled.
import { linkAdrReqBlocks, REPEATED_UNTIL_DOWNLINK } from '../../src/ingress/lorawan/mac-command-rules.ts';
import {
  type DeviceTimeAns,
  type DownlinkMacCommand,
  type LinkADRReq,
  type LinkCheckAns,
  type MacParseStop,
  parseDownlinkMacCommands,
  rxDelaySeconds,
  type UplinkMacCommand,
} from '../../src/ingress/lorawan/mac-commands.ts';
import { type Region, regionFor, regionHasDwellTime, type UplinkChannel } from '../../src/ingress/lorawan/region.ts';

/** Uplinks without a downlink before the device sets ADRACKReq, and after that between backoff steps (RP002-1.0.3, every region). */
export const ADR_ACK_LIMIT = 64;
export const ADR_ACK_DELAY = 32;

/** One channel the device has defined. */
export interface DeviceChannel {
  readonly index: number;
  readonly frequencyHz: number;
  readonly minDataRate: number;
  readonly maxDataRate: number;
  /** The RX1 frequency a DlChannelReq set for it; null: the region's rule. */
  readonly rx1FrequencyHz: number | null;
}

/** Where and when the device listens after an uplink. */
export interface DeviceRxSettings {
  /** Seconds from the end of the uplink to RX1; RX2 one second later. */
  readonly rx1DelayS: number;
  readonly rx1DrOffset: number;
  readonly rx2DataRate: number;
  readonly rx2FrequencyHz: number;
}

/** What ADR sets. */
export interface AdrSettings {
  readonly dataRate: number;
  /** Index into the region's TXPower table; 0 is the maximum (MaxEIRP). */
  readonly txPowerIndex: number;
  /** Transmissions of each unconfirmed uplink. */
  readonly nbTrans: number;
}

export interface DeviceMacSettings extends AdrSettings {
  /** The channels it has defined, by index; `enabled` says which it transmits on. */
  readonly channels: readonly DeviceChannel[];
  readonly enabled: readonly number[];
  readonly rx: DeviceRxSettings;
  /** DutyCycleReq: the device transmits at most 1/2^maxDutyCycle of the time; 0: no aggregated limit. */
  readonly maxDutyCycle: number;
  /** TXPower 0 is this EIRP, dBm (TxParamSetupReq; else the region's default). */
  readonly maxEirpDbm: number;
  readonly uplinkDwellTime: boolean;
  readonly downlinkDwellTime: boolean;
  /** Uplinks since the last downlink (ADR_ACK_CNT). */
  readonly adrAckCounter: number;
}

export interface DeviceMacOptions {
  readonly region: Region;
  /** The channels the session starts with, all enabled (deviceUplinkChannels: defaults, CFList, or the plan). */
  readonly channels: readonly UplinkChannel[];
  readonly dataRate: number;
  /** The session's receive settings (the join-accept's, or the region's defaults for ABP). */
  readonly rx: DeviceRxSettings;
  /** The device sets the ADR bit and follows LinkADRReq; false: it keeps its data rate, power and NbTrans (a mask still applies). */
  readonly adr: boolean;
  /** Ask DeviceTimeReq in the session's first uplink. */
  readonly deviceTime?: boolean;
  /** LinkCheckReq every this many uplinks (the first in uplink N); 0 or absent: never. */
  readonly linkCheckEveryUplinks?: number;
}

/** What one downlink's MAC command did. */
export interface MacCommandOutcome {
  readonly command: DownlinkMacCommand;
  /**
   * applied: taken, every status bit set. refused: answered with a bit clear, nothing changed. read: an answer to
   * the device's own request. ignored: the region does not implement it (no answer).
   */
  readonly result: 'applied' | 'refused' | 'read' | 'ignored';
  /** The answer queued for the next uplink; null when none is due. */
  readonly answer: UplinkMacCommand | null;
}

export interface DownlinkContext {
  /** SNR in dB at which the device heard this downlink (DevStatusAns margin). */
  readonly snrDb: number;
  /** 0 external power, 1..254 battery level, 255 not measurable (DevStatusAns). */
  readonly battery: number;
}

export interface DownlinkMacResult {
  readonly outcomes: readonly MacCommandOutcome[];
  /** Why parsing stopped early (an unknown CID, a truncated command); null when every byte was read. */
  readonly stop: MacParseStop | null;
  /** The ADR settings after a LinkADRReq block that changed them; null otherwise. */
  readonly adrChange: AdrSettings | null;
  readonly linkCheck: LinkCheckAns | null;
  readonly deviceTime: DeviceTimeAns | null;
}

export interface UplinkMacPlan {
  /** FCtrl.ADR. */
  readonly adr: boolean;
  /** FCtrl.ADRACKReq: ADR_ACK_LIMIT uplinks without a downlink. */
  readonly adrAckReq: boolean;
  /** Answers (repeated ones first, in the order they were asked), then the device's own requests. */
  readonly commands: readonly UplinkMacCommand[];
  /** The backoff this uplink starts with (TX power to maximum, one data rate lower), or null. */
  readonly backoff: AdrSettings | null;
}

export interface DeviceMac {
  settings(): DeviceMacSettings;
  /** The enabled channels that allow the current data rate, in index order. */
  usableChannels(): DeviceChannel[];
  /** EIRP of the current TX power index, dBm. */
  txPowerDbm(): number;
  /** The largest MACPayload (RP002 M) at the current data rate under the device's dwell time; null where N/A. */
  maxMacPayloadBytes(): number | null;
  /** RX1's frequency after an uplink on this frequency: a DlChannelReq's, else the region's rule (null: none). */
  rx1FrequencyHz(uplinkFrequencyHz: number): number | null;
  /**
   * A Class A downlink was received (with or without MAC commands): repeated answers end and ADR_ACK_CNT starts
   * over (LoRaWAN 1.0.4 §4.3.1.1), then `macBytes` (FOpts or the decrypted FPort-0 payload) are acted on.
   */
  receiveDownlink(macBytes: Uint8Array, context: DownlinkContext): DownlinkMacResult;
  /** What the next new uplink carries. Call once per new frame (not for its retransmissions): it counts ADR_ACK_CNT. */
  nextUplink(): UplinkMacPlan;
  persist(): PersistedDeviceMac;
}

/** The MAC state as a state file keeps it (snake_case JSON). Fixed-plan regions keep only the enabled channels. */
export interface PersistedDeviceMac {
  readonly data_rate: number;
  readonly tx_power: number;
  readonly nb_trans: number;
  /** Dynamic-plan regions: [index, frequency Hz, min DR, max DR, RX1 frequency Hz or null]. */
  readonly channels: readonly (readonly [number, number, number, number, number | null])[];
  readonly enabled: readonly number[];
  readonly rx: { readonly rx1_delay_s: number; readonly rx1_dr_offset: number; readonly rx2_data_rate: number; readonly rx2_frequency_hz: number };
  readonly max_duty_cycle: number;
  readonly max_eirp_dbm: number;
  readonly uplink_dwell_time: boolean;
  readonly downlink_dwell_time: boolean;
  readonly adr_ack_cnt: number;
}

/** TxParamSetupReq's MaxEIRP index -> dBm (LoRaWAN 1.0.4 §5.8). */
export const MAX_EIRP_DBM: readonly number[] = [8, 10, 12, 13, 14, 16, 18, 20, 21, 24, 26, 27, 29, 30, 33, 36];

/** Channels a dynamic-plan device can define (RP002: 16 for EU868, AS923, KR920, IN865). */
const DYNAMIC_PLAN_CHANNELS = 16;
/** US915/AU915: channels 0..71 (64 x 125 kHz, 8 x 500 kHz). */
const FIXED_PLAN_CHANNELS = 72;
const FIXED_125_KHZ_CHANNELS = 64;
/** RP002-1.0.3 §2.4.5 and alike: ChMaskCntl 6 turns every defined channel on. */
const ALL_DEFINED_CHANNELS_ON = 6;
/** LinkADRReq's DataRate or TXPower 15: keep the current value (LoRaWAN 1.0.4 §5.2). */
const KEEP = 15;

/**
 * Frequencies (Hz, inclusive) a device accepts in NewChannelReq, RXParamSetupReq and DlChannelReq, where the region
 * has no duty-cycle bands to check against: LoRaMac-node's VerifyRfFreq/VerifyTxFreq in RegionAS923.c (915-928 MHz),
 * RegionKR920.c (920.9-923.3 MHz), RegionIN865.c (865-867 MHz). EU868 checks the ETSI sub-bands (Region.dutyCycleBands),
 * US915/AU915 the eight RX1 downlink channels.
 */
const FREQUENCY_RANGES_HZ: Readonly<Record<string, readonly [number, number]>> = {
  'AS923-1': [915_000_000, 928_000_000],
  'AS923-2': [915_000_000, 928_000_000],
  'AS923-3': [915_000_000, 928_000_000],
  'AS923-4': [915_000_000, 928_000_000],
  KR920: [920_900_000, 923_300_000],
  IN865: [865_000_000, 867_000_000],
};

interface State {
  dataRate: number;
  txPowerIndex: number;
  nbTrans: number;
  channels: Map<number, DeviceChannel>;
  enabled: Set<number>;
  rx: DeviceRxSettings;
  maxDutyCycle: number;
  maxEirpDbm: number;
  uplinkDwellTime: boolean;
  downlinkDwellTime: boolean;
  adrAckCounter: number;
  /** Answers that wait for the next uplink only. */
  answers: UplinkMacCommand[];
  /** REPEATED_UNTIL_DOWNLINK answers: in every uplink until a downlink. */
  repeated: UplinkMacCommand[];
  deviceTimeAsked: boolean;
  uplinks: number;
}

export function createDeviceMac(options: DeviceMacOptions, saved?: PersistedDeviceMac): DeviceMac {
  const { region } = options;
  const fixedPlan = region.cfListType === 1;
  const state: State = restoredState(options, saved) ?? initialState(options);

  /** The region with the device's current uplink dwell time (AS923, AU915: payload sizes and the lowest data rate). */
  function dwellRegion(dwell: boolean): Region {
    if (!regionHasDwellTime(region.name) || dwell === (region.dwellTime?.uplink ?? false)) return region;
    return regionFor(region.name, { ...(region.subBand === null ? {} : { subBand: region.subBand }), dwellTime400ms: dwell }) ?? region;
  }

  /** A data rate the device may transmit at (RP002 uplink rates; under the dwell time, those with a size). */
  function isTxDataRate(dataRate: number): boolean {
    return region.dataRates.get(dataRate)?.uplink === true && dwellRegion(state.uplinkDwellTime).maxPayloadSize(dataRate, 'up') !== null;
  }

  function channelAllows(channel: DeviceChannel, dataRate: number): boolean {
    return channel.minDataRate <= dataRate && dataRate <= channel.maxDataRate;
  }

  /** RegionCommonChanVerifyDr: some channel of `enabled` allows the data rate. */
  function someChannelAllows(enabled: ReadonlySet<number>, dataRate: number): boolean {
    for (const index of enabled) {
      const channel = state.channels.get(index);
      if (channel !== undefined && channelAllows(channel, dataRate)) return true;
    }
    return false;
  }

  function frequencyValid(frequencyHz: number): boolean {
    if (!Number.isInteger(frequencyHz) || frequencyHz <= 0) return false;
    if (fixedPlan) return downlinkChannelsHz().has(frequencyHz);
    if (region.dutyCycleBands.length > 0) return region.dutyCycleBands.some((band) => band.minHz <= frequencyHz && frequencyHz <= band.maxHz);
    const range = FREQUENCY_RANGES_HZ[region.name];
    return range !== undefined && range[0] <= frequencyHz && frequencyHz <= range[1];
  }

  function downlinkChannelsHz(): Set<number> {
    const frequencies = new Set<number>();
    for (let index = 0; index < 8; index++) {
      const uplink = region.uplinkChannel(index);
      const rx1 = uplink === null ? null : region.rx1Frequency(uplink.frequencyHz);
      if (rx1 !== null) frequencies.add(rx1);
    }
    return frequencies;
  }

  /** LinkADRReq block: the channel mask each request builds on, the last request's DR, TX power and NbTrans. */
  function linkAdrBlock(block: readonly LinkADRReq[]): { answer: UplinkMacCommand; applied: boolean; change: AdrSettings | null } {
    let enabled = new Set(state.enabled);
    let channelMaskAck = true;
    for (const request of block) {
      // LoRaMac-node (RegionEU868LinkAdrReq, RegionUS915LinkAdrReq): "we only check the last ADR request for the channel mask KO".
      const next = fixedPlan ? fixedPlanMask(enabled, request) : dynamicPlanMask(request);
      enabled = next.enabled;
      channelMaskAck = next.ok;
    }
    const last = block.at(-1) as LinkADRReq;
    // Every channel off leaves the device nothing to send on (LoRaWAN 1.0.4 §5.2).
    if (enabled.size === 0) channelMaskAck = false;
    const dataRate = !options.adr || last.dataRate === KEEP ? state.dataRate : last.dataRate;
    const dataRateAck = isTxDataRate(dataRate) && someChannelAllows(enabled, dataRate);
    // FCC 15.247: at least two 125 kHz channels to hop on below DR4 (LoRaMac-node RegionUS915LinkAdrReq).
    if (region.name === 'US915' && dataRate < 4 && [...enabled].filter((index) => index < FIXED_125_KHZ_CHANNELS).length < 2) channelMaskAck = false;
    const txPowerIndex = !options.adr || last.txPower === KEEP ? state.txPowerIndex : last.txPower;
    const powerAck = txPowerIndex < region.txPowerOffsetsDb.length;
    // NbTrans 0 means the default, 1 (LoRaMac-node RegionCommonLinkAdrReqVerifyParams).
    const nbTrans = !options.adr ? state.nbTrans : last.nbTrans === 0 ? 1 : last.nbTrans;
    const answer: UplinkMacCommand = { command: 'LinkADRAns', powerAck, dataRateAck, channelMaskAck };
    if (!(powerAck && dataRateAck && channelMaskAck)) return { answer, applied: false, change: null };
    const changed = dataRate !== state.dataRate || txPowerIndex !== state.txPowerIndex || nbTrans !== state.nbTrans;
    Object.assign(state, { dataRate, txPowerIndex, nbTrans, enabled });
    return { answer, applied: true, change: changed ? { dataRate, txPowerIndex, nbTrans } : null };
  }

  /** EU868-like plans (RP002-1.0.3 §2.4.5): ChMaskCntl 0 sets channels 0..15, 6 turns every defined channel on, the rest are RFU. */
  function dynamicPlanMask(request: LinkADRReq): { enabled: Set<number>; ok: boolean } {
    if (request.chMaskCntl === ALL_DEFINED_CHANNELS_ON) return { enabled: new Set(state.channels.keys()), ok: true };
    if (request.chMaskCntl !== 0) return { enabled: new Set(state.enabled), ok: false };
    const enabled = new Set<number>();
    let ok = request.chMask !== 0;
    for (let index = 0; index < DYNAMIC_PLAN_CHANNELS; index++) {
      if (((request.chMask >>> index) & 1) === 0) continue;
      // Turning on a channel the device has not defined (LoRaMac-node: "Trying to enable an undefined channel").
      if (!state.channels.has(index)) ok = false;
      enabled.add(index);
    }
    return { enabled, ok };
  }

  /**
   * US915/AU915 (RP002-1.0.3 §2.5.5, §2.8.5; LoRaMac-node RegionUS915LinkAdrReq): ChMaskCntl 0..3 set a bank of
   * 16 125 kHz channels, 4 the 500 kHz channels 64..71, 5 whole sub-bands (8 LSBs), 6 and 7 every 125 kHz channel
   * on or off with ChMask for 64..71. Requests of a block build on each other.
   */
  function fixedPlanMask(current: ReadonlySet<number>, request: LinkADRReq): { enabled: Set<number>; ok: boolean } {
    const enabled = new Set(current);
    const set = (index: number, on: boolean): void => {
      if (on) enabled.add(index);
      else enabled.delete(index);
    };
    const setBank = (first: number, count: number, bits: number): void => {
      for (let i = 0; i < count; i++) set(first + i, ((bits >>> i) & 1) === 1);
    };
    const { chMaskCntl: cntl, chMask: mask } = request;
    if (cntl <= 3) setBank(cntl * 16, 16, mask);
    else if (cntl === 4) setBank(FIXED_125_KHZ_CHANNELS, 8, mask & 0xff);
    else if (cntl === 5) {
      for (let subBand = 0; subBand < 8; subBand++) {
        const on = ((mask >>> subBand) & 1) === 1;
        for (let i = 0; i < 8; i++) set(subBand * 8 + i, on);
        set(FIXED_125_KHZ_CHANNELS + subBand, on);
      }
    } else {
      for (let index = 0; index < FIXED_125_KHZ_CHANNELS; index++) set(index, cntl === 6);
      setBank(FIXED_125_KHZ_CHANNELS, 8, mask & 0xff);
    }
    return { enabled, ok: true };
  }

  function rxParamSetup(command: Extract<DownlinkMacCommand, { command: 'RXParamSetupReq' }>): MacCommandOutcome {
    const rx2DataRateAck =
      region.dataRates.get(command.rx2DataRate)?.downlink === true &&
      (!state.downlinkDwellTime || dwellRegion(true).maxPayloadSize(command.rx2DataRate, 'down') !== null);
    const rx1DrOffsetAck = command.rx1DrOffset <= region.maxRx1DrOffset;
    const channelAck = frequencyValid(command.frequencyHz);
    const applied = rx2DataRateAck && rx1DrOffsetAck && channelAck;
    if (applied) state.rx = { ...state.rx, rx1DrOffset: command.rx1DrOffset, rx2DataRate: command.rx2DataRate, rx2FrequencyHz: command.frequencyHz };
    return answered(command, applied, { command: 'RXParamSetupAns', rx1DrOffsetAck, rx2DataRateAck, channelAck });
  }

  function newChannel(command: Extract<DownlinkMacCommand, { command: 'NewChannelReq' }>): MacCommandOutcome {
    if (fixedPlan) return { command, result: 'ignored', answer: null };
    const defaults = region.defaultUplinkChannels.length;
    const indexOk = command.chIndex >= defaults && command.chIndex < DYNAMIC_PLAN_CHANNELS;
    if (command.frequencyHz === 0) {
      // Removing a channel; the default ones cannot be (LoRaMac-node RegionEU868ChannelsRemove).
      if (indexOk) {
        state.channels.delete(command.chIndex);
        state.enabled.delete(command.chIndex);
      }
      return answered(command, indexOk, { command: 'NewChannelAns', dataRateRangeOk: indexOk, channelFrequencyOk: indexOk });
    }
    const dataRateRangeOk = indexOk && command.minDr <= command.maxDr && isTxDataRate(command.minDr) && isTxDataRate(command.maxDr);
    const channelFrequencyOk = indexOk && frequencyValid(command.frequencyHz);
    const applied = dataRateRangeOk && channelFrequencyOk;
    if (applied) {
      state.channels.set(command.chIndex, {
        index: command.chIndex,
        frequencyHz: command.frequencyHz,
        minDataRate: command.minDr,
        maxDataRate: command.maxDr,
        rx1FrequencyHz: null,
      });
      state.enabled.add(command.chIndex);
    }
    return answered(command, applied, { command: 'NewChannelAns', dataRateRangeOk, channelFrequencyOk });
  }

  function dlChannel(command: Extract<DownlinkMacCommand, { command: 'DlChannelReq' }>): MacCommandOutcome {
    if (fixedPlan) return { command, result: 'ignored', answer: null };
    const channel = state.channels.get(command.chIndex);
    const uplinkFrequencyExists = channel !== undefined;
    const channelFrequencyOk = frequencyValid(command.frequencyHz);
    const applied = uplinkFrequencyExists && channelFrequencyOk;
    if (applied && channel !== undefined) state.channels.set(command.chIndex, { ...channel, rx1FrequencyHz: command.frequencyHz });
    return answered(command, applied, { command: 'DlChannelAns', uplinkFrequencyExists, channelFrequencyOk });
  }

  function txParamSetup(command: Extract<DownlinkMacCommand, { command: 'TxParamSetupReq' }>): MacCommandOutcome {
    if (region.dwellTime === null) return { command, result: 'ignored', answer: null };
    state.maxEirpDbm = MAX_EIRP_DBM[command.maxEirp] ?? state.maxEirpDbm;
    state.uplinkDwellTime = command.uplinkDwellTimeLimited;
    state.downlinkDwellTime = command.downlinkDwellTimeLimited;
    // Under the uplink dwell time DR0/DR1 carry nothing (RP002 AS923/AU915): move up to the lowest rate that does.
    if (!isTxDataRate(state.dataRate)) state.dataRate = region.uplinkDataRates.find((dataRate) => isTxDataRate(dataRate)) ?? state.dataRate;
    return answered(command, true, { command: 'TxParamSetupAns' });
  }

  function answered(command: DownlinkMacCommand, applied: boolean, answer: UplinkMacCommand): MacCommandOutcome {
    queue(answer);
    return { command, result: applied ? 'applied' : 'refused', answer };
  }

  function queue(answer: UplinkMacCommand): void {
    if (REPEATED_UNTIL_DOWNLINK.has(answer.command)) state.repeated.push(answer);
    else state.answers.push(answer);
  }

  function receiveDownlink(macBytes: Uint8Array, context: DownlinkContext): DownlinkMacResult {
    state.repeated = [];
    state.adrAckCounter = 0;
    const parsed = parseDownlinkMacCommands(macBytes);
    const outcomes: MacCommandOutcome[] = [];
    let adrChange: AdrSettings | null = null;
    let linkCheck: LinkCheckAns | null = null;
    let deviceTime: DeviceTimeAns | null = null;
    const blocks = linkAdrReqBlocks(parsed.commands);
    let previous: DownlinkMacCommand | undefined;
    for (const command of parsed.commands) {
      const continuesBlock = command.command === 'LinkADRReq' && previous?.command === 'LinkADRReq';
      previous = command;
      switch (command.command) {
        case 'LinkADRReq': {
          if (continuesBlock) break;
          const block = blocks.shift() ?? [command];
          const done = linkAdrBlock(block);
          for (const request of block) {
            // One answer per request, all with the same bits (mac-command-rules.ts linkAdrReqBlocks).
            const answer = { ...done.answer };
            queue(answer);
            outcomes.push({ command: request, result: done.applied ? 'applied' : 'refused', answer });
          }
          adrChange = done.change ?? adrChange;
          break;
        }
        case 'DevStatusReq': {
          const margin = Math.max(-32, Math.min(31, Math.round(context.snrDb)));
          outcomes.push(answered(command, true, { command: 'DevStatusAns', battery: context.battery, margin }));
          break;
        }
        case 'DutyCycleReq':
          state.maxDutyCycle = command.maxDutyCycle;
          outcomes.push(answered(command, true, { command: 'DutyCycleAns' }));
          break;
        case 'RXParamSetupReq':
          outcomes.push(rxParamSetup(command));
          break;
        case 'RXTimingSetupReq':
          state.rx = { ...state.rx, rx1DelayS: rxDelaySeconds(command.delay) };
          outcomes.push(answered(command, true, { command: 'RXTimingSetupAns' }));
          break;
        case 'NewChannelReq':
          outcomes.push(newChannel(command));
          break;
        case 'TxParamSetupReq':
          outcomes.push(txParamSetup(command));
          break;
        case 'DlChannelReq':
          outcomes.push(dlChannel(command));
          break;
        case 'LinkCheckAns':
          linkCheck = command;
          outcomes.push({ command, result: 'read', answer: null });
          break;
        case 'DeviceTimeAns':
          deviceTime = command;
          outcomes.push({ command, result: 'read', answer: null });
          break;
      }
    }
    return { outcomes, stop: parsed.stop, adrChange, linkCheck, deviceTime };
  }

  function nextUplink(): UplinkMacPlan {
    let backoff: AdrSettings | null = null;
    let adrAckReq = false;
    if (options.adr) {
      adrAckReq = state.adrAckCounter >= ADR_ACK_LIMIT;
      const overLimit = state.adrAckCounter - ADR_ACK_LIMIT;
      if (overLimit >= ADR_ACK_DELAY && overLimit % ADR_ACK_DELAY === 0) backoff = stepBack();
      state.adrAckCounter += 1;
    }
    state.uplinks += 1;
    const requests: UplinkMacCommand[] = [];
    if (options.deviceTime === true && !state.deviceTimeAsked) {
      state.deviceTimeAsked = true;
      requests.push({ command: 'DeviceTimeReq' });
    }
    const every = options.linkCheckEveryUplinks ?? 0;
    if (every > 0 && state.uplinks % every === 0) requests.push({ command: 'LinkCheckReq' });
    const commands = [...state.repeated, ...state.answers, ...requests];
    state.answers = [];
    return { adr: options.adr, adrAckReq, commands, backoff };
  }

  /**
   * ADR backoff (LoRaWAN 1.0.4 §4.3.1.1): no downlink for ADR_ACK_LIMIT + k * ADR_ACK_DELAY uplinks, so the link may
   * be gone: TX power back to the maximum and one data rate lower, the lowest one a channel allows; at the lowest
   * data rate the default channels are turned back on. Null when there is nothing left to change.
   */
  function stepBack(): AdrSettings | null {
    const lower = [...region.uplinkDataRates]
      .reverse()
      .find((dataRate) => dataRate < state.dataRate && isTxDataRate(dataRate) && someChannelAllows(state.enabled, dataRate));
    const before = { dataRate: state.dataRate, txPowerIndex: state.txPowerIndex };
    state.txPowerIndex = 0;
    if (lower !== undefined) state.dataRate = lower;
    else for (const channel of region.defaultUplinkChannels) if (state.channels.has(channel.index)) state.enabled.add(channel.index);
    if (before.dataRate === state.dataRate && before.txPowerIndex === state.txPowerIndex) return null;
    return { dataRate: state.dataRate, txPowerIndex: state.txPowerIndex, nbTrans: state.nbTrans };
  }

  return {
    settings: () => ({
      dataRate: state.dataRate,
      txPowerIndex: state.txPowerIndex,
      nbTrans: state.nbTrans,
      channels: [...state.channels.values()].sort((a, b) => a.index - b.index),
      enabled: [...state.enabled].sort((a, b) => a - b),
      rx: state.rx,
      maxDutyCycle: state.maxDutyCycle,
      maxEirpDbm: state.maxEirpDbm,
      uplinkDwellTime: state.uplinkDwellTime,
      downlinkDwellTime: state.downlinkDwellTime,
      adrAckCounter: state.adrAckCounter,
    }),
    usableChannels: () =>
      [...state.enabled]
        .sort((a, b) => a - b)
        .map((index) => state.channels.get(index))
        .filter((channel): channel is DeviceChannel => channel !== undefined && channelAllows(channel, state.dataRate)),
    txPowerDbm: () => state.maxEirpDbm + (region.txPowerOffsetsDb[state.txPowerIndex] ?? 0),
    maxMacPayloadBytes: () => dwellRegion(state.uplinkDwellTime).maxPayloadSize(state.dataRate, 'up')?.m ?? null,
    rx1FrequencyHz: (uplinkFrequencyHz) => {
      for (const channel of state.channels.values()) {
        if (channel.frequencyHz === uplinkFrequencyHz && channel.rx1FrequencyHz !== null) return channel.rx1FrequencyHz;
      }
      return region.rx1Frequency(uplinkFrequencyHz);
    },
    receiveDownlink,
    nextUplink,
    persist: () => ({
      data_rate: state.dataRate,
      tx_power: state.txPowerIndex,
      nb_trans: state.nbTrans,
      channels: fixedPlan
        ? []
        : [...state.channels.values()].map(
            (channel) => [channel.index, channel.frequencyHz, channel.minDataRate, channel.maxDataRate, channel.rx1FrequencyHz] as const,
          ),
      enabled: [...state.enabled].sort((a, b) => a - b),
      rx: {
        rx1_delay_s: state.rx.rx1DelayS,
        rx1_dr_offset: state.rx.rx1DrOffset,
        rx2_data_rate: state.rx.rx2DataRate,
        rx2_frequency_hz: state.rx.rx2FrequencyHz,
      },
      max_duty_cycle: state.maxDutyCycle,
      max_eirp_dbm: state.maxEirpDbm,
      uplink_dwell_time: state.uplinkDwellTime,
      downlink_dwell_time: state.downlinkDwellTime,
      adr_ack_cnt: state.adrAckCounter,
    }),
  };
}

function initialState(options: DeviceMacOptions): State {
  const { region } = options;
  const channels = new Map<number, DeviceChannel>();
  if (region.cfListType === 1) {
    // Fixed plans: every channel exists; the session's channels are the enabled ones.
    for (let index = 0; index < FIXED_PLAN_CHANNELS; index++) {
      const channel = region.uplinkChannel(index);
      if (channel !== null) channels.set(index, { ...channel, rx1FrequencyHz: null });
    }
  } else {
    for (const channel of options.channels) channels.set(channel.index, { ...channel, rx1FrequencyHz: null });
  }
  return {
    dataRate: options.dataRate,
    txPowerIndex: 0,
    nbTrans: 1,
    channels,
    enabled: new Set(options.channels.map((channel) => channel.index)),
    rx: options.rx,
    maxDutyCycle: 0,
    maxEirpDbm: region.defaultMaxEirpDbm,
    uplinkDwellTime: region.dwellTime?.uplink ?? false,
    downlinkDwellTime: region.dwellTime?.downlink ?? false,
    adrAckCounter: 0,
    answers: [],
    repeated: [],
    deviceTimeAsked: false,
    uplinks: 0,
  };
}

/** The state a state file kept; null when it does not read as one (the device then starts the session's defaults). */
function restoredState(options: DeviceMacOptions, saved: PersistedDeviceMac | undefined): State | null {
  if (saved === undefined || typeof saved !== 'object' || saved === null) return null;
  const int = (value: unknown, max: number): value is number => typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= max;
  const { rx } = saved;
  if (!int(saved.data_rate, 15) || !int(saved.tx_power, 15) || !int(saved.nb_trans, 15) || !int(saved.max_duty_cycle, 15) || !int(saved.adr_ack_cnt, 2 ** 31))
    return null;
  if (
    typeof rx !== 'object' ||
    rx === null ||
    !int(rx.rx1_delay_s, 15) ||
    !int(rx.rx1_dr_offset, 7) ||
    !int(rx.rx2_data_rate, 15) ||
    !int(rx.rx2_frequency_hz, 2 ** 32)
  ) {
    return null;
  }
  if (!Array.isArray(saved.enabled) || !saved.enabled.every((index) => int(index, FIXED_PLAN_CHANNELS - 1)) || !Array.isArray(saved.channels)) return null;
  const { region } = options;
  // A state file is kept per seed, not per region: values another region wrote are not taken.
  if (region.dataRates.get(saved.data_rate)?.uplink !== true || saved.tx_power >= region.txPowerOffsetsDb.length) return null;
  if (region.dataRates.get(rx.rx2_data_rate)?.downlink !== true || rx.rx1_dr_offset > region.maxRx1DrOffset) return null;
  const state = initialState(options);
  if (region.cfListType !== 1) {
    state.channels = new Map();
    for (const entry of saved.channels) {
      if (!Array.isArray(entry) || entry.length !== 5) return null;
      const [index, frequencyHz, minDataRate, maxDataRate, rx1FrequencyHz] = entry;
      if (!int(index, DYNAMIC_PLAN_CHANNELS - 1) || !int(frequencyHz, 2 ** 32) || !int(minDataRate, 15) || !int(maxDataRate, 15)) return null;
      state.channels.set(index, { index, frequencyHz, minDataRate, maxDataRate, rx1FrequencyHz: int(rx1FrequencyHz, 2 ** 32) ? rx1FrequencyHz : null });
    }
  }
  const enabled = new Set(saved.enabled.filter((index) => state.channels.has(index)));
  if (enabled.size === 0) return null;
  return {
    ...state,
    dataRate: saved.data_rate,
    txPowerIndex: saved.tx_power,
    nbTrans: saved.nb_trans || 1,
    enabled,
    rx: { rx1DelayS: rx.rx1_delay_s, rx1DrOffset: rx.rx1_dr_offset, rx2DataRate: rx.rx2_data_rate, rx2FrequencyHz: rx.rx2_frequency_hz },
    maxDutyCycle: saved.max_duty_cycle,
    maxEirpDbm: typeof saved.max_eirp_dbm === 'number' && Number.isFinite(saved.max_eirp_dbm) ? saved.max_eirp_dbm : state.maxEirpDbm,
    uplinkDwellTime: saved.uplink_dwell_time === true,
    downlinkDwellTime: saved.downlink_dwell_time === true,
    adrAckCounter: saved.adr_ack_cnt,
  };
}
