// Encoders for the fixed-shape datagrams: the server's replies (PUSH_ACK, PULL_ACK) and the gateway side
// (PUSH_DATA, PULL_DATA, TX_ACK) that firmware-sim's forwarder sends, so parse(encode(x)) gives x again.
// PULL_RESP is built in downlink-packets.ts with its txpk. They take trusted values from our own code: a
// wrong token or EUI is a programmer error and throws.
import { type GatewayStat, type ProtocolVersion, PULL_ACK, PULL_DATA, PUSH_ACK, PUSH_DATA, type Rxpk, TX_ACK } from './packets.ts';

/** The 4-byte header every datagram starts with. */
export function encodeHeader(version: ProtocolVersion, token: Uint8Array, identifier: number): Buffer {
  if (token.length !== 2) throw new RangeError(`token must be 2 bytes, got ${token.length}`);
  return Buffer.from([version, token[0] ?? 0, token[1] ?? 0, identifier]);
}

function euiBytes(gatewayEui: string): Buffer {
  if (!/^[0-9a-fA-F]{16}$/.test(gatewayEui)) throw new RangeError(`gateway EUI must be 16 hex digits, got "${gatewayEui}"`);
  return Buffer.from(gatewayEui, 'hex');
}

export function encodePushAck(version: ProtocolVersion, token: Uint8Array): Buffer {
  return encodeHeader(version, token, PUSH_ACK);
}

export function encodePullAck(version: ProtocolVersion, token: Uint8Array): Buffer {
  return encodeHeader(version, token, PULL_ACK);
}

export function encodePullData(version: ProtocolVersion, token: Uint8Array, gatewayEui: string): Buffer {
  return Buffer.concat([encodeHeader(version, token, PULL_DATA), euiBytes(gatewayEui)]);
}

/** `error` undefined sends the 12-byte form (no JSON: "no error"); a string, 'NONE' included, sends {"txpk_ack":{"error":..}}. */
export function encodeTxAck(version: ProtocolVersion, token: Uint8Array, gatewayEui: string, error?: string): Buffer {
  const parts = [encodeHeader(version, token, TX_ACK), euiBytes(gatewayEui)];
  if (error !== undefined) parts.push(Buffer.from(JSON.stringify({ txpk_ack: { error } }), 'utf8'));
  return Buffer.concat(parts);
}

/** The wire form of an Rxpk; key order as in the vectors (time first, then lora_pkt_fwd's order). */
function rxpkToJson(rxpk: Rxpk): Record<string, unknown> {
  return {
    time: rxpk.time ?? undefined,
    tmms: rxpk.tmms ?? undefined,
    tmst: rxpk.tmst,
    chan: rxpk.chan,
    rfch: rxpk.rfch,
    freq: rxpk.frequencyHz / 1e6,
    stat: rxpk.crcStatus,
    modu: rxpk.modulation,
    datr: rxpk.datr,
    codr: rxpk.codr ?? undefined,
    rssi: rxpk.rssi,
    rssis: rxpk.rssis ?? undefined,
    lsnr: rxpk.lsnr ?? undefined,
    size: rxpk.size,
    data: rxpk.data.toString('base64'),
  };
}

function statToJson(stat: GatewayStat): Record<string, unknown> {
  return {
    time: stat.time,
    lati: stat.lati,
    long: stat.long,
    alti: stat.alti,
    rxnb: stat.rxnb,
    rxok: stat.rxok,
    rxfw: stat.rxfw,
    ackr: stat.ackr,
    dwnb: stat.dwnb,
    txnb: stat.txnb,
    temp: stat.temp,
  };
}

/** Gateway side (firmware-sim). Encodes the typed Rxpk back to the wire: parse(encode(x)) gives x again. */
export function encodePushData(
  version: ProtocolVersion,
  token: Uint8Array,
  gatewayEui: string,
  content: { readonly rxpk?: readonly Rxpk[]; readonly stat?: GatewayStat },
): Buffer {
  const json = { rxpk: content.rxpk?.map(rxpkToJson), stat: content.stat === undefined ? undefined : statToJson(content.stat) };
  return Buffer.concat([encodeHeader(version, token, PUSH_DATA), euiBytes(gatewayEui), Buffer.from(JSON.stringify(json), 'utf8')]);
}
