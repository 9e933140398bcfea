// The bodies of the datagrams a packet forwarder sends up: PUSH_DATA (each rxpk and the stat report, refused
// one by one so a bad entry costs only itself) and TX_ACK (the verdict on a downlink). parse-datagram.ts has
// already checked the header and EUI; these read the JSON after it and never throw.
import {
  BASE64,
  FieldError,
  LORA_DATR,
  describe,
  isObject,
  optionalNumber,
  optionalString,
  parseJsonBody,
  requireInteger,
  requireNumber,
  requireString,
} from './json-fields.ts';
import {
  type DatagramParseResult,
  type GatewayStat,
  HEADER_WITH_EUI_BYTES,
  MAX_PHY_PAYLOAD_BYTES,
  MAX_RXPK_PER_DATAGRAM,
  type ProtocolVersion,
  type Rxpk,
  type RxpkRejectReason,
  UINT32_MAX,
  rejectDatagram,
} from './packets.ts';

/** ISO 8601 date-time with a zone ("compact" form from lora_pkt_fwd: 2013-03-31T16:21:17.528002Z). */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})$/;

export function parsePushData(version: ProtocolVersion, token: Buffer, gatewayEui: string, bytes: Uint8Array): DatagramParseResult {
  const body = parseJsonBody(bytes, HEADER_WITH_EUI_BYTES, 'PUSH_DATA');
  if (!body.ok) return rejectDatagram('bad-json', `${body.message} (gateway ${gatewayEui})`);
  if (body.value === null) return rejectDatagram('bad-json', `PUSH_DATA from gateway ${gatewayEui} carries no JSON after the EUI`);
  const json = body.value;

  const rxpkJson = json.rxpk;
  if (rxpkJson !== undefined && !Array.isArray(rxpkJson)) {
    return rejectDatagram('bad-field', `PUSH_DATA from gateway ${gatewayEui}: "rxpk" must be an array, got ${describe(rxpkJson)}`);
  }
  if (rxpkJson !== undefined && rxpkJson.length > MAX_RXPK_PER_DATAGRAM) {
    return rejectDatagram('bad-field', `PUSH_DATA from gateway ${gatewayEui} carries ${rxpkJson.length} rxpk; at most ${MAX_RXPK_PER_DATAGRAM} are accepted`);
  }
  const rxpk: Rxpk[] = [];
  const rejectedRxpk: { index: number; reason: RxpkRejectReason; message: string }[] = [];
  (rxpkJson ?? []).forEach((entry: unknown, index: number) => {
    const parsed = parseRxpk(entry);
    if (parsed.ok) rxpk.push(parsed.rxpk);
    else rejectedRxpk.push({ index, reason: parsed.reason, message: `rxpk[${index}]: ${parsed.message}` });
  });

  let stat: GatewayStat | null = null;
  let statError: string | null = null;
  if (json.stat !== undefined) {
    const parsed = parseStat(json.stat);
    if (parsed.ok) stat = parsed.stat;
    else statError = parsed.message;
  }
  return { ok: true, datagram: { type: 'PUSH_DATA', version, token, gatewayEui, rxpk, stat, rejectedRxpk, statError } };
}

type RxpkResult = { ok: true; rxpk: Rxpk } | { ok: false; reason: RxpkRejectReason; message: string };

function parseRxpk(entry: unknown): RxpkResult {
  if (!isObject(entry)) return { ok: false, reason: 'not-an-object', message: `must be an object, got ${describe(entry)}` };
  try {
    const modulation = requireString(entry, 'modu');
    if (modulation !== 'LORA' && modulation !== 'FSK') {
      return { ok: false, reason: 'unsupported-modulation', message: `modulation "${modulation.slice(0, 20)}" is not supported (LORA and FSK are)` };
    }
    const time = optionalString(entry, 'time');
    if (time !== null && (!ISO_TIME.test(time) || Number.isNaN(Date.parse(time)))) {
      throw new FieldError(`"time" must be an ISO 8601 UTC time like 2013-03-31T16:21:17.528002Z, got ${describe(time)}`);
    }
    const tmms = optionalNumber(entry, 'tmms');
    if (tmms !== null && (!Number.isInteger(tmms) || tmms < 0)) throw new FieldError(`"tmms" must be a non-negative integer, got ${tmms}`);
    const tmst = requireInteger(entry, 'tmst', 0, UINT32_MAX);
    const freqMhz = requireNumber(entry, 'freq');
    // 1 MHz..10 GHz: wide enough for every LoRa band, narrow enough to catch Hz or kHz sent by mistake.
    if (freqMhz < 1 || freqMhz > 10_000) throw new FieldError(`"freq" must be in MHz (e.g. 868.1), got ${freqMhz}`);
    const chan = requireInteger(entry, 'chan', 0, 255);
    const rfch = requireInteger(entry, 'rfch', 0, 255);
    const crcStatus = requireNumber(entry, 'stat');
    if (crcStatus !== 1 && crcStatus !== 0 && crcStatus !== -1) throw new FieldError(`"stat" (CRC status) must be 1, 0 or -1, got ${crcStatus}`);
    let datr: string | number;
    if (modulation === 'LORA') {
      datr = requireString(entry, 'datr');
      if (!LORA_DATR.test(datr)) throw new FieldError(`"datr" must look like "SF7BW125" for LoRa, got ${describe(datr)}`);
    } else {
      datr = requireNumber(entry, 'datr');
      if (datr <= 0) throw new FieldError(`"datr" must be a positive bit rate for FSK, got ${datr}`);
    }
    const codr = optionalString(entry, 'codr');
    if (modulation === 'LORA' && codr === null) throw new FieldError('"codr" is missing (required for LoRa)');
    const rssi = requireNumber(entry, 'rssi');
    const rssis = optionalNumber(entry, 'rssis');
    const lsnr = optionalNumber(entry, 'lsnr');
    const size = requireInteger(entry, 'size', 0, MAX_PHY_PAYLOAD_BYTES);
    const encoded = requireString(entry, 'data');
    if (encoded.length > 4 * Math.ceil(MAX_PHY_PAYLOAD_BYTES / 3) + 4 || !BASE64.test(encoded)) throw new FieldError('"data" must be base64');
    const data = Buffer.from(encoded, 'base64');
    if (data.length !== size) {
      return { ok: false, reason: 'size-mismatch', message: `"data" decodes to ${data.length} bytes but "size" says ${size}` };
    }
    return {
      ok: true,
      rxpk: {
        time,
        tmms,
        tmst,
        frequencyHz: Math.round(freqMhz * 1e6),
        chan,
        rfch,
        crcStatus,
        modulation,
        datr,
        codr,
        rssi,
        rssis,
        lsnr,
        size,
        data,
      },
    };
  } catch (error) {
    if (error instanceof FieldError) return { ok: false, reason: 'bad-field', message: error.message };
    throw error;
  }
}

function parseStat(value: unknown): { ok: true; stat: GatewayStat } | { ok: false; message: string } {
  if (!isObject(value)) return { ok: false, message: `"stat" must be an object, got ${describe(value)}` };
  try {
    const lati = optionalNumber(value, 'lati');
    const long = optionalNumber(value, 'long');
    const alti = optionalNumber(value, 'alti');
    const temp = optionalNumber(value, 'temp');
    const time = requireString(value, 'time');
    // lora_pkt_fwd writes "2014-01-12 08:59:28 GMT" (23 characters); anything long is not a time.
    if (time.length > 40) throw new FieldError(`"time" is ${time.length} characters; a gateway time is at most 40`);
    const stat: GatewayStat = {
      time,
      ...(lati === null ? {} : { lati }),
      ...(long === null ? {} : { long }),
      ...(alti === null ? {} : { alti }),
      rxnb: requireNumber(value, 'rxnb'),
      rxok: requireNumber(value, 'rxok'),
      rxfw: requireNumber(value, 'rxfw'),
      ackr: requireNumber(value, 'ackr'),
      dwnb: requireNumber(value, 'dwnb'),
      txnb: requireNumber(value, 'txnb'),
      ...(temp === null ? {} : { temp }),
    };
    return { ok: true, stat };
  } catch (error) {
    if (error instanceof FieldError) return { ok: false, message: `stat: ${error.message}` };
    throw error;
  }
}

export function parseTxAck(version: ProtocolVersion, token: Buffer, gatewayEui: string, bytes: Uint8Array): DatagramParseResult {
  const body = parseJsonBody(bytes, HEADER_WITH_EUI_BYTES, 'TX_ACK');
  if (!body.ok) return rejectDatagram('bad-json', `${body.message} (gateway ${gatewayEui})`);
  let error: string | null = null;
  let warn: string | null = null;
  if (body.value !== null && body.value.txpk_ack !== undefined) {
    const ack = body.value.txpk_ack;
    if (!isObject(ack)) return rejectDatagram('bad-field', `TX_ACK from gateway ${gatewayEui}: "txpk_ack" must be an object, got ${describe(ack)}`);
    if (ack.error !== undefined && typeof ack.error !== 'string') {
      return rejectDatagram('bad-field', `TX_ACK from gateway ${gatewayEui}: "txpk_ack.error" must be a string, got ${describe(ack.error)}`);
    }
    if (typeof ack.error === 'string' && ack.error !== 'NONE' && ack.error !== '') error = ack.error.slice(0, 64);
    if (typeof ack.warn === 'string' && ack.warn !== 'NONE' && ack.warn !== '') warn = ack.warn.slice(0, 64);
  }
  return { ok: true, datagram: { type: 'TX_ACK', version, token, gatewayEui, error, warn } };
}
