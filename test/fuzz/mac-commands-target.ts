// The fuzz target for the MAC command codec: any bytes, read as the MAC commands of an uplink (what the gateway
// parses from devices) and of a downlink (what the simulator parses). Registered in targets.ts.
import { isDeepStrictEqual } from 'node:util';
import { linkAdrReqBlocks } from '../../src/ingress/lorawan/mac-command-rules.ts';
import {
  type DownlinkMacCommand,
  encodeDownlinkMacCommands,
  encodeUplinkMacCommands,
  type MacCommand,
  type MacCommandParseResult,
  parseDownlinkMacCommands,
  parseUplinkMacCommands,
} from '../../src/ingress/lorawan/mac-commands.ts';
import type { FuzzTarget } from './fuzz-engine.ts';

function fail(message: string): never {
  throw new Error(`invariant broken: ${message}`);
}

/** What a network could not have sent, so the encoder refuses it: a reserved LinkCheckAns margin, LinkADRReq runs apart. */
function isEncodableDownlink(commands: readonly DownlinkMacCommand[]): boolean {
  return !commands.some((command) => command.command === 'LinkCheckAns' && command.margin === 255) && linkAdrReqBlocks(commands).length <= 1;
}

/**
 * A stop points at the first unread byte, the bytes before it parse to the same commands with nothing stopping
 * them, and (when `encode` gives bytes) the commands encode to as many bytes as were read and parse back to themselves.
 */
function check<C extends MacCommand>(
  direction: string,
  input: Buffer,
  parse: (bytes: Uint8Array) => MacCommandParseResult<C>,
  encode: (commands: readonly C[]) => Buffer | null,
): void {
  const result = parse(input);
  const { stop } = result;
  if (stop !== null) {
    if (stop.offset + stop.unreadBytes !== input.length || stop.cid !== input[stop.offset])
      fail(`${direction}: a stop that does not point at the unread bytes`);
    if (typeof stop.reason !== 'string' || stop.message.length === 0) fail(`${direction}: a stop without reason and message`);
  }
  const readBytes = stop === null ? input.length : stop.offset;
  if (!isDeepStrictEqual(parse(input.subarray(0, readBytes)), { commands: result.commands, stop: null }))
    fail(`${direction}: the bytes read parse differently alone`);
  const encoded = encode(result.commands);
  if (encoded === null) return;
  if (encoded.length !== readBytes) fail(`${direction}: ${result.commands.length} commands read from ${readBytes} bytes encode to ${encoded.length}`);
  if (!isDeepStrictEqual(parse(encoded).commands, result.commands)) fail(`${direction}: the commands do not survive encoding`);
}

export const macCommandsTarget: FuzzTarget = {
  name: 'mac-commands',
  description: 'MAC command bytes (FOpts, FPort-0 payloads) into parseUplinkMacCommands and parseDownlinkMacCommands',
  coverage: ['src/ingress/lorawan/mac-commands.ts'],
  // An FPort-0 FRMPayload is below the 255-byte PHYPayload.
  maxLength: 255,
  dictionary: [0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0d, 0x10, 0x80].map((cid) => Buffer.from([cid])),
  seeds: () =>
    [
      '',
      '0307' + '0305' + '04' + '0506' + '06fe3f' + '0702' + '08' + '09' + '0a01' + '0d' + '02',
      '021403' + '0351070001' + '0312040045' + '040d' + '0503d2ad84' + '06' + '0703184f8450' + '0801' + '0915' + '0a00287684' + '0db0ade84380',
      '0330000071033000ff01',
      '0206fe',
      '02100307',
      '0680aabb',
    ].map((hex) => Buffer.from(hex, 'hex')),
  run(input) {
    check('uplink', input, parseUplinkMacCommands, (commands) => encodeUplinkMacCommands(commands));
    check('downlink', input, parseDownlinkMacCommands, (commands) => (isEncodableDownlink(commands) ? encodeDownlinkMacCommands(commands) : null));
  },
};
