// The Semtech UDP packet-forwarder protocol ("GWMP", PROTOCOL.TXT v1.3+ of Lora-net/packet_forwarder): its
// wire grammar, bounds and typed datagrams, the vocabulary every codec module here shares. The codec itself
// is pure functions split by job: parse-datagram.ts (header, entry point), uplink-packets.ts (PUSH_DATA,
// TX_ACK), downlink-packets.ts (txpk), packet-encoders.ts; udp-transport.ts and firmware-sim's simulated
// forwarder share them, so the two ends cannot drift. The port carries unauthenticated input: parsing never throws.
//
// Wire grammar (all datagrams; multi-byte numbers do not occur outside the JSON):
//
//   datagram   = version token identifier body
//   version    = %x01 / %x02                 ; 2 = PROTOCOL.TXT v1.3+; 1 still spoken by old forwarders
//   token      = 2OCTET                      ; random per request; echoed verbatim, never re-serialised
//   identifier = %x00 PUSH_DATA / %x01 PUSH_ACK / %x02 PULL_DATA / %x03 PULL_RESP / %x04 PULL_ACK / %x05 TX_ACK
//
//   PUSH_DATA  (gw -> srv)  ver tok 00 eui json            ; json = {"rxpk":[...]?, "stat":{...}?}
//   PUSH_ACK   (srv -> gw)  ver tok 01                     ; exactly 4 bytes, token of the PUSH_DATA
//   PULL_DATA  (gw -> srv)  ver tok 02 eui                 ; exactly 12 bytes; its source is the downlink route
//   PULL_RESP  (srv -> gw)  ver tok 03 json                ; json = {"txpk":{...}}; NO gateway EUI
//   PULL_ACK   (srv -> gw)  ver tok 04                     ; exactly 4 bytes, token of the PULL_DATA
//   TX_ACK     (gw -> srv)  ver tok 05 eui [json] [%x00]   ; json = {"txpk_ack":{"error":..}}; absent = no error
//   eui        = 8OCTET                      ; gateway_ID, big-endian (display order): hex as-is
//
// Bounds: a datagram is at most MAX_DATAGRAM_BYTES (the largest UDP payload); its JSON may nest at most
// MAX_JSON_DEPTH levels and carry at most MAX_RXPK_PER_DATAGRAM rxpk. See those constants for why.

/** Largest datagram accepted: the UDP length field's limit. Real forwarders send far less (lora_pkt_fwd ~4.5 KB). */
export const MAX_DATAGRAM_BYTES = 65_535;
/**
 * JSON nesting accepted. The protocol needs 4 ({"rxpk":[{"rsig":[{...}]}]}); V8's JSON.parse is iterative,
 * so depth cannot overflow the stack, but 64 KB of brackets still costs ~20 ms of allocation per datagram,
 * an easy way to stall the event loop from an unauthenticated port. A byte scan (~0.1 ms) refuses it first.
 */
export const MAX_JSON_DEPTH = 16;
/** rxpk per PUSH_DATA: the SX1302 forwarder's NB_PKT_MAX (the legacy one sends at most 8). */
export const MAX_RXPK_PER_DATAGRAM = 255;
/** LoRa PHY payloads are at most 255 bytes (one length octet in the LoRa header). */
export const MAX_PHY_PAYLOAD_BYTES = 255;

export const PUSH_DATA = 0x00;
export const PUSH_ACK = 0x01;
export const PULL_DATA = 0x02;
export const PULL_RESP = 0x03;
export const PULL_ACK = 0x04;
export const TX_ACK = 0x05;

export type ProtocolVersion = 1 | 2;

/** Why a whole datagram was refused. */
export type DatagramRejectReason =
  | 'too-short' // < 4 bytes, or a type that carries an EUI shorter than 12
  | 'too-long' // > MAX_DATAGRAM_BYTES
  | 'unknown-version' // version byte not 1 or 2
  | 'unknown-identifier' // identifier byte not 0..5
  | 'bad-length' // fixed-size datagram (PULL_DATA, PUSH_ACK, PULL_ACK) of the wrong size
  | 'bad-json' // body is not UTF-8 JSON, not an object, or nested too deep
  | 'bad-field'; // JSON is valid but a structural field has the wrong type (rxpk not an array, txpk missing...)

/** Why one rxpk in an otherwise good PUSH_DATA was refused; the others in the datagram still count. */
export type RxpkRejectReason = 'not-an-object' | 'bad-field' | 'unsupported-modulation' | 'size-mismatch';

/** One received radio packet, typed; units in the names where the wire has none. */
export interface Rxpk {
  /** UTC receive time (ISO 8601) as the gateway wrote it; only with a GPS time reference, else null. */
  readonly time: string | null;
  /** GPS time of reception, ms since 1980-01-06 (GPS only), else null. */
  readonly tmms: number | null;
  /** Concentrator µs counter at end of reception; 32-bit unsigned, wraps every ~71.6 min. Class-A timing base. */
  readonly tmst: number;
  /** Centre frequency in Hz: Math.round(freq MHz × 1e6), exact for every 1 Hz step in the ISM bands. */
  readonly frequencyHz: number;
  /** Concentrator IF channel. */
  readonly chan: number;
  /** RF chain. */
  readonly rfch: number;
  /** PHY CRC: 1 OK, -1 bad, 0 no CRC. LoRaWAN uplinks always carry a CRC, so only 1 is a usable frame. */
  readonly crcStatus: 1 | 0 | -1;
  readonly modulation: 'LORA' | 'FSK';
  /** LoRa: "SF7BW125" (bandwidth in kHz); FSK: bit/s. */
  readonly datr: string | number;
  /** LoRa coding rate "4/5".."4/8" ("OFF" from lora_pkt_fwd when undefined); null for FSK. */
  readonly codr: string | null;
  /** RSSI in dBm (on SX1302 the channel RSSI). */
  readonly rssi: number;
  /** SX1302 only: the signal RSSI in dBm, else null. */
  readonly rssis: number | null;
  /** LoRa SNR in dB (0.1 dB precision); null for FSK. */
  readonly lsnr: number | null;
  /** Payload length in bytes, as declared by the gateway (checked against data). */
  readonly size: number;
  /** The PHYPayload, decoded from base64. */
  readonly data: Buffer;
}

/** A gateway's periodic status (PUSH_DATA "stat", every stat_interval, 30 s by default). */
export interface GatewayStat {
  /** Gateway's UTC time, "expanded" form as sent, e.g. "2014-01-12 08:59:28 GMT" (not RFC 3339). */
  readonly time: string;
  /** Latitude, longitude (degrees) and altitude (m): absent when the gateway has no GPS fix. */
  readonly lati?: number;
  readonly long?: number;
  readonly alti?: number;
  /** Packets received / received with CRC OK / forwarded since the last stat. */
  readonly rxnb: number;
  readonly rxok: number;
  readonly rxfw: number;
  /** Percentage of upstream datagrams acknowledged by this server. */
  readonly ackr: number;
  /** Downlink datagrams received / packets emitted since the last stat. */
  readonly dwnb: number;
  readonly txnb: number;
  /** SX1302 only: concentrator temperature, °C. */
  readonly temp?: number;
}

/** A downlink, as PULL_RESP carries it (LoRa only: iotgw never sends FSK). */
export interface Txpk {
  /** Send immediately, ignoring tmst (Class C). */
  readonly imme?: boolean;
  /** Concentrator µs counter at which to send (Class A: uplink tmst + RX delay), 32-bit. */
  readonly tmst?: number;
  /** MHz, like the wire. */
  readonly freq: number;
  readonly rfch: number;
  /** TX power, dBm. */
  readonly powe: number;
  readonly modu: 'LORA';
  readonly datr: string;
  readonly codr: string;
  /** Inverted polarity: true for LoRaWAN downlinks to devices. */
  readonly ipol: boolean;
  readonly size: number;
  /** PHYPayload, base64. */
  readonly data: string;
  /** Disable the physical-layer CRC (LoRaWAN downlinks carry none). */
  readonly ncrc?: boolean;
}

export interface PushData {
  readonly type: 'PUSH_DATA';
  readonly version: ProtocolVersion;
  /** The 2 token bytes verbatim (a copy, not a view into the receive buffer). */
  readonly token: Buffer;
  /** 16 lower-case hex digits. */
  readonly gatewayEui: string;
  /** The valid rxpk, in datagram order. */
  readonly rxpk: readonly Rxpk[];
  readonly stat: GatewayStat | null;
  /** rxpk entries refused individually; `index` is the position in the datagram's rxpk array. */
  readonly rejectedRxpk: readonly { readonly index: number; readonly reason: RxpkRejectReason; readonly message: string }[];
  /** Why a present "stat" was unusable (the rxpk are unaffected), else null. */
  readonly statError: string | null;
}

export interface PullData {
  readonly type: 'PULL_DATA';
  readonly version: ProtocolVersion;
  readonly token: Buffer;
  readonly gatewayEui: string;
}

export interface TxAck {
  readonly type: 'TX_ACK';
  readonly version: ProtocolVersion;
  readonly token: Buffer;
  readonly gatewayEui: string;
  /** txpk_ack.error: 'TOO_LATE', 'COLLISION_PACKET', ...; 'NONE' and an absent payload both mean null (sent). */
  readonly error: string | null;
  /** SX1302 (PROTOCOL v1.5) txpk_ack.warn, e.g. 'TX_POWER' (sent with a different power), else null. */
  readonly warn: string | null;
}

export interface PushAck {
  readonly type: 'PUSH_ACK';
  readonly version: ProtocolVersion;
  readonly token: Buffer;
}

export interface PullAck {
  readonly type: 'PULL_ACK';
  readonly version: ProtocolVersion;
  readonly token: Buffer;
}

export interface PullResp {
  readonly type: 'PULL_RESP';
  readonly version: ProtocolVersion;
  readonly token: Buffer;
  readonly txpk: Txpk;
}

export type Datagram = PushData | PullData | TxAck | PushAck | PullAck | PullResp;

export type DatagramParseResult =
  | { readonly ok: true; readonly datagram: Datagram }
  | { readonly ok: false; readonly reason: DatagramRejectReason; readonly message: string };

/** version + token + identifier. */
export const HEADER_BYTES = 4;
/** The header, then the gateway EUI (PUSH_DATA, PULL_DATA, TX_ACK). */
export const HEADER_WITH_EUI_BYTES = 12;
/** tmst is a 32-bit concentrator counter. */
export const UINT32_MAX = 0xffff_ffff;

/** The refusal every parser returns: a reason to count and a message that names the input. */
export function rejectDatagram(reason: DatagramRejectReason, message: string): DatagramParseResult {
  return { ok: false, reason, message };
}
