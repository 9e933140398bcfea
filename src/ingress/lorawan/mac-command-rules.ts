// The rules around the MAC command codec (mac-commands.ts) that the network server and the simulator both follow:
// where commands travel in a LoRaWAN 1.0.x data frame, what fits beside an application payload, and how a block of
// LinkADRReq is answered and read.
//
// Where they travel (LoRaWAN 1.0.4 §4.3.1.6, §5): in FOpts, at most 15 bytes and in clear in 1.0.x, or as the whole
// FRMPayload of FPort 0, encrypted with the NwkSKey (§4.3.3); never both in one frame (parsePhyPayload refuses
// such a frame). FPort 1..223 carry application data, so commands that ride with an application payload must fit
// in FOpts.
import type { DataFrame } from './phy-payload.ts';
import { type DownlinkMacCommand, type LinkADRAns, type LinkADRReq, type MacCommand, macCommandByteLength, type UplinkMacCommand } from './mac-commands.ts';

/** FOptsLen is 4 bits (§4.3.1.6). */
export const MAX_FOPTS_BYTES = 15;

export type MacCarrier = 'fopts' | 'port0';

export interface CarriedMacCommands {
  /** null when the frame carries no MAC commands. */
  readonly carrier: MacCarrier | null;
  readonly bytes: Uint8Array;
}

/**
 * The MAC command bytes of a parsed data frame: the decrypted FRMPayload when FPort is 0, else FOpts.
 * `frmPlaintext` is the FRMPayload decrypted with frmPayloadKey (the NwkSKey on FPort 0); it is not looked at on
 * other ports. Throws TypeError for FOpts with FPort 0, which no frame from parsePhyPayload has.
 */
export function carriedMacCommands(frame: Pick<DataFrame, 'fopts' | 'fport'>, frmPlaintext: Uint8Array): CarriedMacCommands {
  if (frame.fport === 0) {
    if (frame.fopts.length > 0) throw new TypeError('a frame with FPort 0 and FOpts is refused by parsePhyPayload (LoRaWAN 1.0.4 §4.3.1.6); parse it first');
    return { carrier: 'port0', bytes: frmPlaintext };
  }
  return { carrier: frame.fopts.length > 0 ? 'fopts' : null, bytes: frame.fopts };
}

/**
 * Where encoded MAC commands go in the next frame, either direction:
 *   none     no commands.
 *   fopts    up to 15 bytes: in FOpts, beside the application payload when there is one; without one it still
 *            saves the FPort byte a port-0 frame costs (ChirpStack's downlink/data.rs chooses the same way).
 *   port0    more than 15 bytes and no application payload: the FRMPayload of FPort 0.
 *   too-big  more than 15 bytes and an application payload wants the same frame: they cannot share it. Send the
 *            commands on FPort 0 and the payload in a later frame (with FPending set on a downlink), or send
 *            takeMacCommandsThatFit(commands, MAX_FOPTS_BYTES).now in FOpts and the rest later.
 * The caller still checks the whole frame against the data rate's maximum payload size (RP002).
 */
export function placeMacCommands(macBytes: Uint8Array, hasAppPayload: boolean): 'none' | 'fopts' | 'port0' | 'too-big' {
  if (macBytes.length === 0) return 'none';
  if (macBytes.length <= MAX_FOPTS_BYTES) return 'fopts';
  return hasAppPayload ? 'too-big' : 'port0';
}

export interface MacCommandSplit<C extends MacCommand> {
  readonly now: readonly C[];
  readonly later: readonly C[];
}

/**
 * The longest run of whole commands from the front that fits in `maxBytes` (MAX_FOPTS_BYTES for FOpts), and the
 * rest for a later frame. Order is kept, and a contiguous LinkADRReq block goes whole or not at all: the device
 * applies a block atomically, so half of one would set half a channel mask.
 */
export function takeMacCommandsThatFit<C extends MacCommand>(commands: readonly C[], maxBytes: number): MacCommandSplit<C> {
  let used = 0;
  let index = 0;
  while (index < commands.length) {
    let end = index + 1;
    if (commands[index]?.command === 'LinkADRReq') while (commands[end]?.command === 'LinkADRReq') end += 1;
    const bytes = commands.slice(index, end).reduce((sum, command) => sum + macCommandByteLength(command), 0);
    if (used + bytes > maxBytes) break;
    used += bytes;
    index = end;
  }
  return { now: commands.slice(0, index), later: commands.slice(index) };
}

/**
 * Device side: the contiguous runs of LinkADRReq in a downlink, in frame order. The device checks and applies
 * each run as one atomic block, the channel masks of all its requests and the DataRate, TXPower and NbTrans of
 * the last, then answers every request of the run with a LinkADRAns carrying the same status bits (LoRaWAN
 * 1.0.3 §5.2; LoRaMac-node adds one LinkADRAns per request parsed). encodeDownlinkMacCommands makes at most one run.
 */
export function linkAdrReqBlocks(commands: readonly DownlinkMacCommand[]): LinkADRReq[][] {
  const blocks: LinkADRReq[][] = [];
  let previous: DownlinkMacCommand | undefined;
  for (const command of commands) {
    if (command.command === 'LinkADRReq') {
      if (previous?.command === 'LinkADRReq') blocks.at(-1)?.push(command);
      else blocks.push([command]);
    }
    previous = command;
  }
  return blocks;
}

export interface LinkAdrBlockStatus {
  readonly powerAck: boolean;
  readonly dataRateAck: boolean;
  readonly channelMaskAck: boolean;
  /** LinkADRAns in the uplink; a compliant device sends one per LinkADRReq of the block it received. */
  readonly answers: number;
}

/**
 * Network side: how an uplink answers the pending LinkADRReq block, or null when it holds no LinkADRAns. In
 * 1.0.x every request of a block gets its own answer and all of them carry the same bits, those of the final
 * settings of the last request (1.0.3 §5.2), so the last answer decides. A bit is set here only when it is set
 * in every answer: for a compliant device that is the last answer's bit, and a device that contradicts itself
 * counts as refusing (ChirpStack's maccommand/link_adr.rs reads a block the same way). Compare `answers` with
 * the number of requests sent: a mismatch means the device saw a different block.
 */
export function linkAdrBlockStatus(commands: readonly UplinkMacCommand[]): LinkAdrBlockStatus | null {
  const answers = commands.filter((command): command is LinkADRAns => command.command === 'LinkADRAns');
  if (answers.length === 0) return null;
  return {
    powerAck: answers.every((answer) => answer.powerAck),
    dataRateAck: answers.every((answer) => answer.dataRateAck),
    channelMaskAck: answers.every((answer) => answer.channelMaskAck),
    answers: answers.length,
  };
}

/**
 * Answers a 1.0.x device repeats in every uplink until it receives a Class A downlink, so that the network learns
 * the new downlink settings even if an uplink is lost (1.0.4 §5.4 for RXParamSetupAns, §5.8 for TxParamSetupAns;
 * the same rule for DlChannelAns and RXTimingSetupAns). The network reads a repeat as the same answer again, and
 * any Class A downlink to the device ends the repeats.
 */
export const REPEATED_UNTIL_DOWNLINK: ReadonlySet<UplinkMacCommand['command']> = new Set([
  'RXParamSetupAns',
  'DlChannelAns',
  'RXTimingSetupAns',
  'TxParamSetupAns',
]);
