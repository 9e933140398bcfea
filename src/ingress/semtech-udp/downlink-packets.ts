// Downlinks, as PULL_RESP carries them: the txpk a network server builds (checked before it is sent, then
// encoded with PROTOCOL.TXT's key order) and parsed back (firmware-sim's forwarder, the golden vectors).
// Only LoRa: iotgw never sends FSK.
import {
  BASE64,
  FieldError,
  LORA_DATR,
  describe,
  isObject,
  optionalBoolean,
  parseJsonBody,
  requireInteger,
  requireNumber,
  requireString,
} from './json-fields.ts';
import { encodeHeader } from './packet-encoders.ts';
import {
  type DatagramParseResult,
  HEADER_BYTES,
  MAX_PHY_PAYLOAD_BYTES,
  type ProtocolVersion,
  PULL_RESP,
  type Txpk,
  UINT32_MAX,
  rejectDatagram,
} from './packets.ts';

export function parsePullResp(version: ProtocolVersion, token: Buffer, bytes: Uint8Array): DatagramParseResult {
  const body = parseJsonBody(bytes, HEADER_BYTES, 'PULL_RESP');
  if (!body.ok) return rejectDatagram('bad-json', body.message);
  if (body.value === null) return rejectDatagram('bad-json', 'PULL_RESP carries no JSON');
  const txpkJson = body.value.txpk;
  if (!isObject(txpkJson))
    return rejectDatagram('bad-field', `PULL_RESP: "txpk" must be an object, got ${txpkJson === undefined ? 'nothing' : describe(txpkJson)}`);
  try {
    const modu = requireString(txpkJson, 'modu');
    if (modu !== 'LORA') throw new FieldError(`"modu" ${describe(modu)} is not supported (LORA is)`);
    const imme = optionalBoolean(txpkJson, 'imme');
    const tmst = txpkJson.tmst === undefined ? undefined : requireInteger(txpkJson, 'tmst', 0, UINT32_MAX);
    const ncrc = optionalBoolean(txpkJson, 'ncrc');
    const txpk: Txpk = {
      ...(imme === undefined ? {} : { imme }),
      ...(tmst === undefined ? {} : { tmst }),
      freq: requireNumber(txpkJson, 'freq'),
      rfch: requireInteger(txpkJson, 'rfch', 0, 255),
      powe: requireNumber(txpkJson, 'powe'),
      modu,
      datr: requireString(txpkJson, 'datr'),
      codr: requireString(txpkJson, 'codr'),
      // lora_pkt_fwd treats an absent ipol as false.
      ipol: optionalBoolean(txpkJson, 'ipol') ?? false,
      size: requireInteger(txpkJson, 'size', 0, MAX_PHY_PAYLOAD_BYTES),
      data: requireString(txpkJson, 'data'),
      ...(ncrc === undefined ? {} : { ncrc }),
    };
    return { ok: true, datagram: { type: 'PULL_RESP', version, token, txpk } };
  } catch (error) {
    if (error instanceof FieldError) return rejectDatagram('bad-field', `PULL_RESP txpk: ${error.message}`);
    throw error;
  }
}

/** Key order follows PROTOCOL.TXT's example, so the vector re-encodes byte for byte. */
export function encodePullResp(version: ProtocolVersion, token: Uint8Array, txpk: Txpk): Buffer {
  const json = {
    imme: txpk.imme,
    tmst: txpk.tmst,
    freq: txpk.freq,
    rfch: txpk.rfch,
    powe: txpk.powe,
    modu: txpk.modu,
    datr: txpk.datr,
    codr: txpk.codr,
    ipol: txpk.ipol,
    size: txpk.size,
    data: txpk.data,
    ncrc: txpk.ncrc,
  };
  // JSON.stringify omits the undefined optionals.
  return Buffer.concat([encodeHeader(version, token, PULL_RESP), Buffer.from(JSON.stringify({ txpk: json }), 'utf8')]);
}

/** Checks a downlink before it is sent; returns what is wrong, or null. */
export function checkTxpk(txpk: Txpk): string | null {
  if (txpk.imme !== true && txpk.tmst === undefined) return 'txpk needs either imme: true or a tmst';
  if (txpk.tmst !== undefined && (!Number.isInteger(txpk.tmst) || txpk.tmst < 0 || txpk.tmst > UINT32_MAX))
    return `txpk.tmst ${txpk.tmst} is not a 32-bit µs count`;
  if (!Number.isFinite(txpk.freq) || txpk.freq < 1 || txpk.freq > 10_000) return `txpk.freq ${txpk.freq} must be in MHz (e.g. 869.525)`;
  if (!LORA_DATR.test(txpk.datr)) return `txpk.datr "${txpk.datr}" must look like "SF12BW125"`;
  if (!BASE64.test(txpk.data)) return 'txpk.data must be base64';
  const length = Buffer.from(txpk.data, 'base64').length;
  if (length !== txpk.size) return `txpk.data decodes to ${length} bytes but txpk.size says ${txpk.size}`;
  if (txpk.size > MAX_PHY_PAYLOAD_BYTES) return `txpk.size ${txpk.size} exceeds ${MAX_PHY_PAYLOAD_BYTES}`;
  return null;
}
