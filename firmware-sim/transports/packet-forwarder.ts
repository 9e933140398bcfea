// A simulated Semtech packet forwarder (the gateway side of GWMP, as lora_pkt_fwd behaves): it pushes rxpk
// and stat over an "up" socket and keeps a downlink route open with PULL_DATA over a separate "down" socket,
// answering each PULL_RESP with a TX_ACK. Used by the firmware simulator and by tests; it encodes with the
// gateway's own codec (src/ingress/semtech-udp/packets.ts), so both ends speak exactly the same bytes.
import { randomBytes } from 'node:crypto';
import { type Socket, createSocket } from 'node:dgram';
import { type AddressInfo, isIPv6 } from 'node:net';
import { performance } from 'node:perf_hooks';
import { encodePullData, encodePushData, encodeTxAck } from '../../src/ingress/semtech-udp/packet-encoders.ts';
import type { GatewayStat, ProtocolVersion, Rxpk, Txpk } from '../../src/ingress/semtech-udp/packets.ts';
import { parseDatagram } from '../../src/ingress/semtech-udp/parse-datagram.ts';

export interface SimulatedForwarderOptions {
  /** 16 hex digits, e.g. 'aa555a0000000000' (global_conf.json gateway_ID). */
  readonly gatewayEui: string;
  /** The network server (serv_port_up and serv_port_down are the same port here, as on most installs). */
  readonly server: { readonly host: string; readonly port: number };
  /** Default 2 (PROTOCOL.TXT v1.3+). Version 1 forwarders send no TX_ACK. */
  readonly version?: ProtocolVersion;
  /** PULL_DATA period; lora_pkt_fwd's keepalive_interval (code default 5 s, sample config 10 s). Default 10,000. */
  readonly keepaliveMs?: number;
  /** How long pushRxpk/pushStat wait for the PUSH_ACK. lora_pkt_fwd waits 100 ms (push_timeout_ms); default 1,000 for loaded CI. */
  readonly pushAckTimeoutMs?: number;
}

/** One packet to push; everything but the payload has a typical EU868 default. */
export interface RxpkInput {
  readonly phyPayload: Uint8Array;
  /** MHz. Default 868.1. */
  readonly freqMhz?: number;
  /** Default 'SF7BW125'. */
  readonly datr?: string;
  /** Default '4/5'. */
  readonly codr?: string;
  /** dBm. Default -60. */
  readonly rssi?: number;
  /** dB. Default 7.5. */
  readonly lsnr?: number;
  /** Concentrator µs counter; default the forwarder's counter now (see tmst()). */
  readonly tmst?: number;
  readonly chan?: number;
  readonly rfch?: number;
  /** CRC status. Default 1 (OK). */
  readonly crcStatus?: 1 | 0 | -1;
  /** GPS receive time (ISO 8601); default none, as on a gateway without GPS. */
  readonly time?: string;
  /** SX1302 signal RSSI. */
  readonly rssis?: number;
}

/** Answers a downlink: 'NONE' if sent, else a txpk_ack error ('TOO_LATE', 'COLLISION_PACKET', ...). */
export type DownlinkHandler = (txpk: Txpk, receivedAtMono: number, receivedAtTmst: number) => string;

export interface ForwarderCounters {
  readonly pushSent: number;
  readonly pushAcked: number;
  readonly pullSent: number;
  readonly pullAcked: number;
  /** PULL_RESP received on the down socket (the only one a real forwarder reads them from). */
  readonly downlinks: number;
  readonly txAckSent: number;
  /** PULL_RESP that arrived on the up socket: the server replied to the wrong route. Ignored, as lora_pkt_fwd does. */
  readonly misroutedDownlinks: number;
  /** Datagrams the forwarder ignored (wrong version, unknown token, garbage), like lora_pkt_fwd. */
  readonly ignored: number;
  readonly socketErrors: number;
}

export interface SimulatedForwarder {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Sends one PUSH_DATA with these packets; true if its PUSH_ACK came within pushAckTimeoutMs. */
  pushRxpk(rxpk: readonly RxpkInput[]): Promise<boolean>;
  /** Sends one PUSH_DATA with a stat; fields default to this forwarder's own counters and no GPS. */
  pushStat(stat?: Partial<GatewayStat>): Promise<boolean>;
  /** Replaces the downlink handler (default: answer 'NONE'). */
  onDownlink(handler: DownlinkHandler): void;
  /** The 32-bit µs concentrator counter now (process.hrtime based); wraps like the real one. */
  tmst(): number;
  counters(): ForwarderCounters;
  /** Local addresses of the up (PUSH_DATA) and down (PULL_DATA, PULL_RESP, TX_ACK) sockets. */
  upAddress(): AddressInfo;
  downAddress(): AddressInfo;
}

const DEFAULT_KEEPALIVE_MS = 10_000;
const DEFAULT_PUSH_ACK_TIMEOUT_MS = 1_000;
const TMST_MODULUS = 2n ** 32n;

/** lora_pkt_fwd's stat time format: "2014-01-12 08:59:28 GMT". */
function statTime(date: Date): string {
  return `${date.toISOString().slice(0, 19).replace('T', ' ')} GMT`;
}

type MutableCounters = { -readonly [K in keyof ForwarderCounters]: number };

/** Packets since the last pushStat, for the default stat fields. */
interface SinceStat {
  rxnb: number;
  rxok: number;
  dwnb: number;
  txnb: number;
  pushSent: number;
  pushAcked: number;
}

/** Everything one forwarder holds; the functions below move it. */
interface Forwarder {
  readonly gatewayEui: string;
  readonly version: ProtocolVersion;
  readonly server: SimulatedForwarderOptions['server'];
  readonly pushAckTimeoutMs: number;
  readonly counters: MutableCounters;
  readonly sinceStat: SinceStat;
  /** token hex -> resolver of the PUSH_DATA awaiting its PUSH_ACK. */
  readonly awaitingPushAck: Map<string, (acked: boolean) => void>;
  /** A random start, like a concentrator that has been running for a while; lets callers meet the wrap. */
  readonly tmstOffset: bigint;
  pullToken: Buffer | null;
  downlinkHandler: DownlinkHandler;
  upSocket: Socket | null;
  downSocket: Socket | null;
  keepaliveTimer: NodeJS.Timeout | null;
}

export function createSimulatedForwarder(options: SimulatedForwarderOptions): SimulatedForwarder {
  const forwarder: Forwarder = {
    gatewayEui: options.gatewayEui.toLowerCase(),
    version: options.version ?? 2,
    server: options.server,
    pushAckTimeoutMs: options.pushAckTimeoutMs ?? DEFAULT_PUSH_ACK_TIMEOUT_MS,
    counters: { pushSent: 0, pushAcked: 0, pullSent: 0, pullAcked: 0, downlinks: 0, txAckSent: 0, misroutedDownlinks: 0, ignored: 0, socketErrors: 0 },
    sinceStat: { rxnb: 0, rxok: 0, dwnb: 0, txnb: 0, pushSent: 0, pushAcked: 0 },
    awaitingPushAck: new Map(),
    tmstOffset: BigInt(randomBytes(4).readUInt32BE(0)),
    pullToken: null,
    downlinkHandler: () => 'NONE',
    upSocket: null,
    downSocket: null,
    keepaliveTimer: null,
  };
  const keepaliveMs = options.keepaliveMs ?? DEFAULT_KEEPALIVE_MS;
  const socketAddress = (socket: Socket | null): AddressInfo => {
    if (socket === null) throw new Error('simulated forwarder not started');
    return socket.address();
  };

  return {
    async start() {
      if (forwarder.upSocket !== null) return;
      forwarder.upSocket = await openSocket(forwarder);
      forwarder.downSocket = await openSocket(forwarder);
      forwarder.upSocket.on('message', (message: Buffer) => onUpMessage(forwarder, message));
      forwarder.downSocket.on('message', (message: Buffer) => onDownMessage(forwarder, message));
      sendPullData(forwarder);
      forwarder.keepaliveTimer = setInterval(() => sendPullData(forwarder), keepaliveMs);
      forwarder.keepaliveTimer.unref();
    },
    stop: () => stopForwarder(forwarder),
    pushRxpk(inputs) {
      const rxpk = inputs.map((input) => rxpkOf(input, input.tmst ?? tmstOf(forwarder)));
      forwarder.sinceStat.rxnb += rxpk.length;
      forwarder.sinceStat.rxok += rxpk.filter((packet) => packet.crcStatus === 1).length;
      return push(forwarder, { rxpk });
    },
    pushStat(overrides = {}) {
      const stat = { ...statSince(forwarder.sinceStat), ...overrides };
      Object.assign(forwarder.sinceStat, { rxnb: 0, rxok: 0, dwnb: 0, txnb: 0, pushSent: 0, pushAcked: 0 });
      return push(forwarder, { stat });
    },
    onDownlink(handler) {
      forwarder.downlinkHandler = handler;
    },
    tmst: () => tmstOf(forwarder),
    counters: () => ({ ...forwarder.counters }),
    upAddress: () => socketAddress(forwarder.upSocket),
    downAddress: () => socketAddress(forwarder.downSocket),
  };
}

/** The 32-bit µs concentrator counter now; wraps like the real one. */
function tmstOf(forwarder: Forwarder): number {
  return Number((process.hrtime.bigint() / 1000n + forwarder.tmstOffset) % TMST_MODULUS);
}

/** Connected sockets (as lora_pkt_fwd connect()s them): only the server's datagrams arrive. */
async function openSocket(forwarder: Forwarder): Promise<Socket> {
  const { server } = forwarder;
  const socket = createSocket({ type: isIPv6(server.host) ? 'udp6' : 'udp4' });
  socket.on('error', () => {
    forwarder.counters.socketErrors += 1;
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.connect(server.port, server.host, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  return socket;
}

async function stopForwarder(forwarder: Forwarder): Promise<void> {
  if (forwarder.keepaliveTimer !== null) clearInterval(forwarder.keepaliveTimer);
  forwarder.keepaliveTimer = null;
  for (const resolve of forwarder.awaitingPushAck.values()) resolve(false);
  forwarder.awaitingPushAck.clear();
  const sockets = [forwarder.upSocket, forwarder.downSocket].filter((socket): socket is Socket => socket !== null);
  forwarder.upSocket = null;
  forwarder.downSocket = null;
  await Promise.all(sockets.map((socket) => new Promise<void>((resolve) => socket.close(() => resolve()))));
}

function send(forwarder: Forwarder, socket: Socket | null, bytes: Buffer): void {
  if (socket === null) return;
  socket.send(bytes, (error) => {
    if (error) forwarder.counters.socketErrors += 1;
  });
}

function sendPullData(forwarder: Forwarder): void {
  forwarder.pullToken = randomBytes(2);
  forwarder.counters.pullSent += 1;
  send(forwarder, forwarder.downSocket, encodePullData(forwarder.version, forwarder.pullToken, forwarder.gatewayEui));
}

function onUpMessage(forwarder: Forwarder, message: Buffer): void {
  const { counters } = forwarder;
  const parsed = parseDatagram(message);
  if (!parsed.ok || parsed.datagram.version !== forwarder.version) {
    counters.ignored += 1;
    return;
  }
  const datagram = parsed.datagram;
  if (datagram.type === 'PULL_RESP') {
    counters.misroutedDownlinks += 1;
    return;
  }
  const key = datagram.token.toString('hex');
  const resolve = datagram.type === 'PUSH_ACK' ? forwarder.awaitingPushAck.get(key) : undefined;
  if (resolve === undefined) {
    counters.ignored += 1;
    return;
  }
  forwarder.awaitingPushAck.delete(key);
  counters.pushAcked += 1;
  forwarder.sinceStat.pushAcked += 1;
  resolve(true);
}

function onDownMessage(forwarder: Forwarder, message: Buffer): void {
  const receivedAtMono = performance.now();
  const receivedAtTmst = tmstOf(forwarder);
  const { counters, version } = forwarder;
  const parsed = parseDatagram(message);
  if (!parsed.ok || parsed.datagram.version !== version) {
    counters.ignored += 1;
    return;
  }
  const datagram = parsed.datagram;
  if (datagram.type === 'PULL_ACK' && forwarder.pullToken !== null && datagram.token.equals(forwarder.pullToken)) {
    counters.pullAcked += 1;
    return;
  }
  if (datagram.type !== 'PULL_RESP') {
    counters.ignored += 1;
    return;
  }
  counters.downlinks += 1;
  forwarder.sinceStat.dwnb += 1;
  let error: string;
  try {
    error = forwarder.downlinkHandler(datagram.txpk, receivedAtMono, receivedAtTmst);
  } catch {
    error = 'TX_FREQ'; // a failing handler stands for a radio that refused the packet
  }
  if (error === 'NONE') forwarder.sinceStat.txnb += 1;
  // Protocol v1 predates TX_ACK.
  if (version === 1) return;
  counters.txAckSent += 1;
  send(forwarder, forwarder.downSocket, encodeTxAck(version, datagram.token, forwarder.gatewayEui, error));
}

/** One PUSH_DATA; resolves true when its PUSH_ACK came within pushAckTimeoutMs. */
function push(forwarder: Forwarder, content: { rxpk?: readonly Rxpk[]; stat?: GatewayStat }): Promise<boolean> {
  if (forwarder.upSocket === null) return Promise.resolve(false);
  const { awaitingPushAck } = forwarder;
  let token = randomBytes(2);
  while (awaitingPushAck.has(token.toString('hex'))) token = randomBytes(2);
  const key = token.toString('hex');
  const acked = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => {
      awaitingPushAck.delete(key);
      resolve(false);
    }, forwarder.pushAckTimeoutMs);
    awaitingPushAck.set(key, (value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
  forwarder.counters.pushSent += 1;
  forwarder.sinceStat.pushSent += 1;
  send(forwarder, forwarder.upSocket, encodePushData(forwarder.version, token, forwarder.gatewayEui, content));
  return acked;
}

function rxpkOf(input: RxpkInput, tmst: number): Rxpk {
  return {
    time: input.time ?? null,
    tmms: null,
    tmst,
    frequencyHz: Math.round((input.freqMhz ?? 868.1) * 1e6),
    chan: input.chan ?? 0,
    rfch: input.rfch ?? 0,
    crcStatus: input.crcStatus ?? 1,
    modulation: 'LORA',
    datr: input.datr ?? 'SF7BW125',
    codr: input.codr ?? '4/5',
    rssi: input.rssi ?? -60,
    rssis: input.rssis ?? null,
    lsnr: input.lsnr ?? 7.5,
    size: input.phyPayload.length,
    data: Buffer.from(input.phyPayload),
  };
}

/** The stat fields from this forwarder's own counters since the last stat, and no GPS. */
function statSince(since: SinceStat): GatewayStat {
  const ackr = since.pushSent === 0 ? 0 : Math.round((1000 * since.pushAcked) / since.pushSent) / 10;
  return { time: statTime(new Date()), rxnb: since.rxnb, rxok: since.rxok, rxfw: since.rxok, ackr, dwnb: since.dwnb, txnb: since.txnb };
}
