// Between a simulated device's MAC layer (lorawan-mac.ts) and its run (lorawan-firmware.ts): a downlink's MAC
// commands handed to the MAC layer with what the radio knows (the SNR the device heard it at, from its link; the
// battery its model reports), the MAC commands and FCtrl bits of the next uplink, and where they go in it
// (FOpts beside the reading, or a frame of their own when they do not fit). Everything is recorded in the member's
// MacActivity for the report: commands by name and outcome, ADR changes, LinkCheckAns, DeviceTimeAns, DevStatusAns.
import { parseLoraDatr } from '../../src/ingress/lorawan/airtime.ts';
import { unixMsFromGpsTime } from '../../src/ingress/lorawan/gps-time.ts';
import { carriedMacCommands, MAX_FOPTS_BYTES, placeMacCommands } from '../../src/ingress/lorawan/mac-command-rules.ts';
import { encodeUplinkMacCommands, type UplinkMacCommand } from '../../src/ingress/lorawan/mac-commands.ts';
import { type AdrChange, countOne, type Member } from '../state/lorawan-fleet-state.ts';
import type { HeardDownlink } from '../transports/lorawan-air.ts';
import type { ReceivedDownlink } from '../transports/lorawan-device.ts';
import type { AdrSettings } from './lorawan-mac.ts';

/** FHDR without FOpts (DevAddr, FCtrl, FCnt) and the FPort byte: what a MACPayload holds besides FOpts and FRMPayload. */
const FHDR_BYTES = 7;
const FPORT_BYTES = 1;

/** The MAC part of the next uplink. */
export interface UplinkMac {
  readonly adr: boolean;
  readonly adrAckReq: boolean;
  readonly commands: readonly UplinkMacCommand[];
  readonly bytes: Buffer;
}

/** Where a MAC-only frame carries its commands: FOpts without an FPort (up to 15 bytes), else FPort 0. */
export interface MacOnlyFrame {
  readonly fport: 0 | null;
  readonly payload: Buffer;
  readonly fopts: Buffer;
}

/** The next uplink's FCtrl bits and MAC commands (ADR_ACK_CNT counts it); a backoff it starts with is recorded. */
export function nextUplinkMac(member: Member): UplinkMac {
  const plan = member.mac.nextUplink();
  if (plan.backoff !== null) recordAdrChange(member, 'backoff', plan.backoff);
  return { adr: plan.adr, adrAckReq: plan.adrAckReq, commands: plan.commands, bytes: encodeUplinkMacCommands(plan.commands) };
}

/** Answers already counted as sent: a repeated one (RXParamSetupAns, ...) is the same object in every uplink. */
const counted = new WeakSet<UplinkMacCommand>();

/** The MAC commands of the frame with this FCnt went out: the device's requests, and each answer the first time. */
export function recordUplinkMac(member: Member, mac: UplinkMac, fcnt: number): void {
  const activity = member.macActivity;
  for (const command of mac.commands) {
    if (command.command === 'LinkCheckReq' || command.command === 'DeviceTimeReq') {
      countOne(activity.requested, command.command);
      continue;
    }
    if (counted.has(command)) continue;
    counted.add(command);
    countOne(activity.answered, command.command);
    if (command.command === 'DevStatusAns') activity.devStatus.push({ fcnt, battery: command.battery, margin: command.margin });
  }
}

/** Whether `macBytes` fit in FOpts beside a `payloadBytes` FRMPayload at the device's data rate (RP002's M). */
export function fitsBeside(member: Member, macBytes: number, payloadBytes: number): boolean {
  if (macBytes > MAX_FOPTS_BYTES) return false;
  const max = member.mac.maxMacPayloadBytes();
  return max === null || FHDR_BYTES + macBytes + FPORT_BYTES + payloadBytes <= max;
}

/** The frame for MAC commands that travel alone (mac-command-rules.ts placeMacCommands without a payload). */
export function macOnlyFrame(bytes: Buffer): MacOnlyFrame {
  return placeMacCommands(bytes, false) === 'port0'
    ? { fport: 0, payload: bytes, fopts: Buffer.alloc(0) }
    : { fport: null, payload: Buffer.alloc(0), fopts: bytes };
}

/**
 * A downlink the device took: its MAC commands (FOpts, or the FPort-0 payload the device decrypted with its
 * NwkSKey) go to the MAC layer, which also ends repeated answers and restarts ADR_ACK_CNT for any downlink.
 */
export function takeDownlinkMac(member: Member, received: ReceivedDownlink, heard: HeardDownlink): void {
  const activity = member.macActivity;
  const bandwidthKHz = parseLoraDatr(heard.datr)?.bandwidthKHz ?? 125;
  const snrDb = member.link.sample(heard.powerDbm, bandwidthKHz).snrDb;
  const uplinks = member.frames.filter((frame) => frame.kind === 'uplink').length;
  const battery = member.battery.level(uplinks, member.lastReading);
  const carried = carriedMacCommands({ fopts: received.fopts ?? Buffer.alloc(0), fport: received.fport }, received.payload);
  if (carried.carrier !== null && carried.bytes.length > 0) activity.carriers[carried.carrier === 'port0' ? 'port0' : 'fopts'] += 1;
  const result = member.mac.receiveDownlink(carried.bytes, { snrDb, battery });
  if (result.stop !== null) activity.unknown += 1;
  for (const outcome of result.outcomes) {
    const name = outcome.command.command;
    countOne(activity.received, name);
    const byResult = { applied: activity.applied, refused: activity.refused, ignored: activity.ignored, read: null }[outcome.result];
    if (byResult !== null) countOne(byResult, name);
  }
  if (result.adrChange !== null) recordAdrChange(member, 'LinkADRReq', result.adrChange);
  const lastFcnt = (member.device.session()?.fcntUp ?? 1) - 1;
  if (result.linkCheck !== null) activity.linkChecks.push({ afterFcnt: lastFcnt, margin: result.linkCheck.margin, gwCnt: result.linkCheck.gwCnt });
  if (result.deviceTime !== null) {
    const unixMs = unixMsFromGpsTime(result.deviceTime);
    const answeredAtMs = Date.now();
    activity.deviceTime = {
      gpsSeconds: result.deviceTime.seconds,
      fraction256: result.deviceTime.fraction256,
      unixMs,
      requestedAtMs: member.lastUplinkWallMs,
      answeredAtMs,
      // The answer is the GPS time at the end of the uplink that asked (LoRaWAN 1.0.4 §5.9): the device keeps the difference.
      offsetMs: unixMs - member.lastUplinkWallMs,
    };
  }
}

function recordAdrChange(member: Member, cause: AdrChange['cause'], settings: AdrSettings): void {
  member.macActivity.adrChanges.push({
    cause,
    fromFcnt: member.device.session()?.fcntUp ?? 0,
    dataRate: settings.dataRate,
    txPowerIndex: settings.txPowerIndex,
    txPowerDbm: member.mac.txPowerDbm(),
    nbTrans: settings.nbTrans,
  });
}
