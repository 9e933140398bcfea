// The codec's entry point: one datagram in, one typed value or a reason out. It checks the 4-byte header
// and the fixed-size types here, then hands the bodies to uplink-packets.ts (PUSH_DATA, TX_ACK) and
// downlink-packets.ts (PULL_RESP). Never throws: the port is unauthenticated (grammar in packets.ts).
import { parsePullResp } from './downlink-packets.ts';
import {
  type DatagramParseResult,
  HEADER_BYTES,
  HEADER_WITH_EUI_BYTES,
  MAX_DATAGRAM_BYTES,
  PULL_ACK,
  PULL_DATA,
  PULL_RESP,
  PUSH_ACK,
  TX_ACK,
  rejectDatagram,
} from './packets.ts';
import { parsePushData, parseTxAck } from './uplink-packets.ts';

const IDENTIFIER_NAMES = ['PUSH_DATA', 'PUSH_ACK', 'PULL_DATA', 'PULL_RESP', 'PULL_ACK', 'TX_ACK'] as const;

/** Parses one datagram. Never throws: anything unexpected becomes `{ ok: false, reason, message }`. */
export function parseDatagram(bytes: Uint8Array): DatagramParseResult {
  try {
    return parseUnchecked(bytes);
  } catch (error) {
    // Defence in depth: every path above returns a result; an exception here is a bug, still not the caller's crash.
    return rejectDatagram('bad-field', `datagram could not be parsed: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function parseUnchecked(bytes: Uint8Array): DatagramParseResult {
  if (bytes.length < HEADER_BYTES) return rejectDatagram('too-short', `datagram of ${bytes.length} bytes is shorter than the 4-byte header`);
  if (bytes.length > MAX_DATAGRAM_BYTES) return rejectDatagram('too-long', `datagram of ${bytes.length} bytes exceeds ${MAX_DATAGRAM_BYTES}`);
  const version = bytes[0];
  if (version !== 1 && version !== 2) {
    return rejectDatagram('unknown-version', `protocol version ${version} is not supported (1 and 2 are); is this a Semtech packet forwarder?`);
  }
  const token = Buffer.from(bytes.subarray(1, 3));
  const identifier = bytes[3] ?? -1;
  const name = IDENTIFIER_NAMES[identifier];
  if (name === undefined)
    return rejectDatagram('unknown-identifier', `identifier 0x${identifier.toString(16).padStart(2, '0')} is not a GWMP datagram type (0x00-0x05)`);

  if (identifier === PUSH_ACK || identifier === PULL_ACK) {
    if (bytes.length !== HEADER_BYTES) return rejectDatagram('bad-length', `${name} must be exactly 4 bytes, got ${bytes.length}`);
    return { ok: true, datagram: { type: name as 'PUSH_ACK' | 'PULL_ACK', version, token } };
  }
  if (identifier === PULL_RESP) return parsePullResp(version, token, bytes);

  if (bytes.length < HEADER_WITH_EUI_BYTES) return rejectDatagram('too-short', `${name} of ${bytes.length} bytes is shorter than header + gateway EUI (12)`);
  const gatewayEui = Buffer.from(bytes.subarray(HEADER_BYTES, HEADER_WITH_EUI_BYTES)).toString('hex');
  if (identifier === PULL_DATA) {
    if (bytes.length !== HEADER_WITH_EUI_BYTES) return rejectDatagram('bad-length', `PULL_DATA must be exactly 12 bytes, got ${bytes.length}`);
    return { ok: true, datagram: { type: 'PULL_DATA', version, token, gatewayEui } };
  }
  if (identifier === TX_ACK) return parseTxAck(version, token, gatewayEui, bytes);
  return parsePushData(version, token, gatewayEui, bytes);
}
