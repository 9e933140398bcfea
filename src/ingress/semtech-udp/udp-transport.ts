// The socket side of the Semtech UDP protocol: one node:dgram socket that packet forwarders (lora_pkt_fwd)
// send PUSH_DATA and PULL_DATA to. It acknowledges at once, keeps a registry of gateways and their downlink
// routes (the PULL_DATA source), hands each valid rxpk and stat to its events, and sends PULL_RESP downlinks
// matched to their TX_ACK by token. Codecs live in packets.ts; what to do with an rxpk is the caller's.
// The port is unauthenticated (PROTOCOL.TXT §1): every datagram is untrusted input and none may kill the socket.
import { randomBytes } from 'node:crypto';
import { type RemoteInfo, type Socket, createSocket } from 'node:dgram';
import { isIPv6, type AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { LogBudget, Logger } from '../../core/log.ts';
import { createOnceLogger } from '../../core/log.ts';
import { createBoundedMap } from '../../shared/bounded-map.ts';
import {
  type GatewayStat,
  type ProtocolVersion,
  type PullData,
  type PushData,
  type Rxpk,
  type TxAck,
  type Txpk,
  checkTxpk,
  encodePullAck,
  encodePullResp,
  encodePushAck,
  parseDatagram,
} from './packets.ts';

export interface UdpTransportOptions {
  readonly host: string;
  /** 0 = an ephemeral port (tests); 1700 is the de-facto network-server port. */
  readonly port: number;
  /**
   * Drop a gateway's downlink route after this long without PULL_DATA, and forget the gateway after this long
   * without any datagram. Default 60,000 (ChirpStack's connection_timeout_duration); forwarders send PULL_DATA
   * every keepalive_interval (5-10 s).
   */
  readonly gatewayTimeoutMs?: number;
  /** How long sendDownlink waits for the TX_ACK. Default 3,000. */
  readonly txAckTimeoutMs?: number;
  /**
   * The gateways allowed to send, by lower-case EUI, each with the source addresses it may send from (empty:
   * any). Datagrams of others are dropped unanswered. null: any gateway, up to maxGateways at once.
   */
  readonly allowedGateways?: ReadonlyMap<string, readonly string[]> | null;
  /** Gateways tracked at once without an allow-list. Default 100. */
  readonly maxGateways?: number;
  /** Datagrams per second one source address may send (bursts of twice that). Default 200. */
  readonly maxDatagramsPerSecondPerSource?: number;
}

export interface UdpTransportEvents {
  /** One valid rxpk (any CRC status: filter on rxpk.crcStatus === 1 for LoRaWAN). Times are taken on arrival. */
  onRxpk(gatewayEui: string, rxpk: Rxpk, receivedAtMs: number, receivedAtMono: number): void;
  onStat(gatewayEui: string, stat: GatewayStat): void;
  /** One call per dropped datagram, rxpk or stat; `reason` is a DatagramRejectReason, RxpkRejectReason or one listed in udp-transport.ts. */
  onDrop(reason: string, detail: { readonly from: string; readonly gatewayEui?: string; readonly message: string }): void;
  /** First datagram from a gateway not seen (or forgotten) before. */
  onGatewayConnected?(gatewayEui: string, address: string): void;
  /** Nothing received from the gateway for gatewayTimeoutMs. */
  onGatewayLost?(gatewayEui: string): void;
}

export interface GatewayInfo {
  readonly gatewayEui: string;
  /** Version of its last datagram; replies and PULL_RESP use it. */
  readonly protocolVersion: ProtocolVersion;
  /** Where PULL_RESP goes: the source of its last PULL_DATA, null if none within gatewayTimeoutMs. */
  readonly pullRoute: { readonly address: string; readonly port: number } | null;
  readonly lastPullAtMs: number | null;
  readonly lastPushAtMs: number | null;
  readonly lastStat: GatewayStat | null;
  readonly lastStatAtMs: number | null;
}

export type DownlinkResult = { readonly ok: true } | { readonly ok: false; readonly reason: string; readonly txAckError?: string };

export interface UdpTransport {
  readonly name: 'ingress.semtech-udp';
  start(): Promise<void>;
  stop(): Promise<void>;
  health(): { readonly status: 'ok' | 'degraded' | 'down'; readonly detail?: string };
  /** Bound address, known after start (port 0 picks a free port). */
  address(): AddressInfo;
  /** A copy of the registry (the status page); use gatewayCount and hasDownlinkRoute on hot paths. */
  gateways(): readonly GatewayInfo[];
  gatewayCount(): number;
  hasDownlinkRoute(gatewayEui: string): boolean;
  /**
   * Sends a PULL_RESP to the gateway's PULL_DATA source. Resolves on its TX_ACK (an error in it gives
   * ok: false with `txAckError`), on txAckTimeoutMs, or at once when no route is known. Protocol v1
   * forwarders send no TX_ACK: they resolve ok once the datagram is sent.
   */
  sendDownlink(gatewayEui: string, txpk: Txpk): Promise<DownlinkResult>;
}

export interface UdpTransportDeps {
  readonly log: Logger;
  /** Shared limit on log lines caused by input (log.max_input_warnings_per_minute). */
  readonly logBudget?: LogBudget;
}

const DEFAULT_GATEWAY_TIMEOUT_MS = 60_000;
const DEFAULT_TX_ACK_TIMEOUT_MS = 3_000;
/** Asked of the kernel for the socket's receive buffer: a few seconds of PUSH_DATA at thousands of uplinks/s. */
const RECV_BUFFER_BYTES = 8 * 1024 * 1024;
/** Gateways tracked at once without an allow-list. The port is unauthenticated: random EUIs must not grow memory or metrics. */
const DEFAULT_MAX_GATEWAYS = 100;
const DEFAULT_MAX_DATAGRAMS_PER_SECOND = 200;
/** Source addresses whose datagram rate is tracked at once (the oldest are forgotten first). */
const MAX_TRACKED_SOURCES = 10_000;
/** Downlinks awaiting a TX_ACK at once; one 16-bit token space per gateway makes more pointless. */
const MAX_PENDING_DOWNLINKS = 4_096;

interface GatewayState {
  gatewayEui: string;
  protocolVersion: ProtocolVersion;
  pullRoute: { address: string; port: number } | null;
  lastPullAtMs: number | null;
  lastPushAtMs: number | null;
  lastSeenAtMs: number;
  lastStat: GatewayStat | null;
  lastStatAtMs: number | null;
}

interface PendingDownlink {
  readonly resolve: (result: DownlinkResult) => void;
  readonly timer: NodeJS.Timeout;
}

function formatAddress(address: string, port: number): string {
  return isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
}

export function createUdpTransport(options: UdpTransportOptions, events: UdpTransportEvents, deps: UdpTransportDeps): UdpTransport {
  const log = deps.log.child({ component: 'ingress.semtech-udp' });
  const gatewayTimeoutMs = options.gatewayTimeoutMs ?? DEFAULT_GATEWAY_TIMEOUT_MS;
  const txAckTimeoutMs = options.txAckTimeoutMs ?? DEFAULT_TX_ACK_TIMEOUT_MS;
  const maxGateways = options.maxGateways ?? DEFAULT_MAX_GATEWAYS;
  const allowed = options.allowedGateways ?? null;
  const datagramsPerMs = (options.maxDatagramsPerSecondPerSource ?? DEFAULT_MAX_DATAGRAMS_PER_SECOND) / 1000;
  const burst = 2 * (options.maxDatagramsPerSecondPerSource ?? DEFAULT_MAX_DATAGRAMS_PER_SECOND);
  // Internal failures log once a minute; lines caused by datagrams also take from the shared input budget.
  const once = createOnceLogger(60_000);
  const inputOnce = createOnceLogger(60_000, undefined, deps.logBudget === undefined ? {} : { budget: deps.logBudget });
  /** Token buckets per source address. */
  const sources = createBoundedMap<string, { tokens: number; atMs: number }>({
    maxEntries: MAX_TRACKED_SOURCES,
    maxBytes: MAX_TRACKED_SOURCES * 200,
    maxAgeMs: 60_000,
  });
  const registry = new Map<string, GatewayState>();
  /** `${gatewayEui}:${token hex}` -> the sendDownlink waiting for that TX_ACK. */
  const pending = new Map<string, PendingDownlink>();

  let socket: Socket | null = null;
  let sweepTimer: NodeJS.Timeout | null = null;
  let stopping = false;
  let lastSocketError: { message: string; atMs: number } | null = null;

  /** Runs an event callback; a throw (or a rejected promise) is logged, never allowed to reach the socket. */
  function callEvent(name: string, call: () => unknown): void {
    try {
      const result = call();
      if (result instanceof Promise) result.catch((error: unknown) => logCallbackError(name, error));
    } catch (error) {
      logCallbackError(name, error);
    }
  }

  function logCallbackError(name: string, error: unknown): void {
    if (once.shouldLog(`callback:${name}`))
      log.error({ err: error, callback: name }, `the ${name} handler threw; the datagram was acknowledged and the socket keeps serving`);
  }

  /** Every drop goes to onDrop, which counts and logs it (the ingress's rejections): the transport does not log drops. */
  function drop(reason: string, from: string, message: string, gatewayEui?: string): void {
    const detail = gatewayEui === undefined ? { from, message } : { from, gatewayEui, message };
    callEvent('onDrop', () => events.onDrop(reason, detail));
  }

  function send(bytes: Buffer, port: number, address: string): Promise<Error | null> {
    return new Promise((resolve) => {
      if (socket === null) {
        resolve(new Error('socket closed'));
        return;
      }
      try {
        socket.send(bytes, port, address, (error) => resolve(error ?? null));
      } catch (error) {
        resolve(error instanceof Error ? error : new Error(String(error)));
      }
    });
  }

  function reply(bytes: Buffer, remote: RemoteInfo): void {
    void send(bytes, remote.port, remote.address).then((error) => {
      if (error !== null && once.shouldLog(`send:${remote.address}`))
        log.warn({ err: error, to: formatAddress(remote.address, remote.port) }, 'acknowledgement not sent');
    });
  }

  /** Whether the source may send one more datagram now (a token bucket per address). */
  function withinRate(address: string, nowMono: number): boolean {
    const bucket = sources.get(address) ?? { tokens: burst, atMs: nowMono };
    bucket.tokens = Math.min(burst, bucket.tokens + (nowMono - bucket.atMs) * datagramsPerMs);
    bucket.atMs = nowMono;
    sources.set(address, bucket);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** Why a datagram of this gateway from this address is not taken, or null when it is. */
  function refusal(gatewayEui: string, address: string): { reason: string; message: string } | null {
    if (allowed !== null) {
      const addresses = allowed.get(gatewayEui);
      if (addresses === undefined) {
        return { reason: 'unknown-gateway', message: `gateway ${gatewayEui.toUpperCase()} is not in lorawan.gateways; add it there if it is yours` };
      }
      if (addresses.length > 0 && !addresses.includes(address)) {
        return {
          reason: 'address-mismatch',
          message: `gateway ${gatewayEui.toUpperCase()} sent from ${address}, not from its addresses in lorawan.gateways (${addresses.join(', ')})`,
        };
      }
      return null;
    }
    if (!registry.has(gatewayEui) && registry.size >= maxGateways) {
      return {
        reason: 'gateway-limit',
        message: `gateway ${gatewayEui.toUpperCase()} not taken: ${maxGateways} gateways are tracked already (lorawan.max_gateways); list yours in lorawan.gateways`,
      };
    }
    return null;
  }

  /** The gateway's registry entry, created (and announced) on first sight. */
  function touchGateway(gatewayEui: string, version: ProtocolVersion, remote: RemoteInfo, nowMs: number): GatewayState {
    let state = registry.get(gatewayEui);
    if (state === undefined) {
      state = {
        gatewayEui,
        protocolVersion: version,
        pullRoute: null,
        lastPullAtMs: null,
        lastPushAtMs: null,
        lastSeenAtMs: nowMs,
        lastStat: null,
        lastStatAtMs: null,
      };
      registry.set(gatewayEui, state);
      const from = formatAddress(remote.address, remote.port);
      if (inputOnce.shouldLog(`connected:${gatewayEui}`)) {
        log.info({ gatewayEui, from, protocolVersion: version }, `packet forwarder ${gatewayEui.toUpperCase()} connected from ${from}`);
      }
      callEvent('onGatewayConnected', () => events.onGatewayConnected?.(gatewayEui, from));
    }
    state.protocolVersion = version;
    state.lastSeenAtMs = nowMs;
    return state;
  }

  function handlePushData(datagram: PushData, remote: RemoteInfo, from: string, receivedAtMs: number, receivedAtMono: number): void {
    const state = touchGateway(datagram.gatewayEui, datagram.version, remote, receivedAtMs);
    state.lastPushAtMs = receivedAtMs;
    for (const rejected of datagram.rejectedRxpk) drop(rejected.reason, from, rejected.message, datagram.gatewayEui);
    for (const rxpk of datagram.rxpk) callEvent('onRxpk', () => events.onRxpk(datagram.gatewayEui, rxpk, receivedAtMs, receivedAtMono));
    if (datagram.statError !== null) drop('bad-stat', from, datagram.statError, datagram.gatewayEui);
    if (datagram.stat !== null) {
      const stat = datagram.stat;
      state.lastStat = stat;
      state.lastStatAtMs = receivedAtMs;
      callEvent('onStat', () => events.onStat(datagram.gatewayEui, stat));
    }
  }

  function handlePullData(datagram: PullData, remote: RemoteInfo, from: string, nowMs: number): void {
    const state = touchGateway(datagram.gatewayEui, datagram.version, remote, nowMs);
    const previous = state.pullRoute;
    if (previous !== null && (previous.address !== remote.address || previous.port !== remote.port)) {
      // A forwarder restart or a NAT rebinding; also what a spoofed PULL_DATA looks like (the protocol has no
      // auth: pin the gateway's addresses in lorawan.gateways to refuse those).
      if (inputOnce.shouldLog(`route-moved:${state.gatewayEui}`)) {
        log.info({ gatewayEui: state.gatewayEui, from, previous: formatAddress(previous.address, previous.port) }, 'downlink route moved');
      }
    }
    state.pullRoute = { address: remote.address, port: remote.port };
    state.lastPullAtMs = nowMs;
  }

  function handleTxAck(datagram: TxAck, from: string): void {
    const key = `${datagram.gatewayEui}:${datagram.token.toString('hex')}`;
    const waiting = pending.get(key);
    if (waiting === undefined) {
      drop('unmatched-tx-ack', from, `TX_ACK from gateway ${datagram.gatewayEui} matches no downlink awaiting one (late, or a duplicate)`, datagram.gatewayEui);
      return;
    }
    pending.delete(key);
    clearTimeout(waiting.timer);
    if (datagram.warn !== null) log.debug({ gatewayEui: datagram.gatewayEui, warn: datagram.warn }, 'downlink sent with a warning');
    if (datagram.error === null) waiting.resolve({ ok: true });
    else {
      waiting.resolve({
        ok: false,
        reason: `gateway ${datagram.gatewayEui} did not send the downlink: TX_ACK error ${datagram.error}`,
        txAckError: datagram.error,
      });
    }
  }

  function handleMessage(message: Buffer, remote: RemoteInfo): void {
    const receivedAtMs = Date.now();
    const receivedAtMono = performance.now();
    const from = formatAddress(remote.address, remote.port);
    if (!withinRate(remote.address, receivedAtMono)) {
      drop('rate-limited', from, `more than ${burst / 2} datagrams a second from ${remote.address} (lorawan.udp.max_datagrams_per_second)`);
      return;
    }
    const parsed = parseDatagram(message);
    if (!parsed.ok) {
      // Not acknowledged: the gateway's "ackr" statistic then shows the loss.
      drop(parsed.reason, from, parsed.message);
      return;
    }
    const datagram = parsed.datagram;
    if (datagram.type === 'PUSH_DATA' || datagram.type === 'PULL_DATA') {
      // Not acknowledged either: a gateway that is not ours learns nothing, and no reply can be made to amplify.
      const refused = refusal(datagram.gatewayEui, remote.address);
      if (refused !== null) {
        drop(refused.reason, from, refused.message, datagram.gatewayEui);
        return;
      }
    }
    switch (datagram.type) {
      case 'PUSH_DATA':
        // Acknowledge before processing (PROTOCOL.TXT §3.1); the ack says "received", not "stored".
        reply(encodePushAck(datagram.version, datagram.token), remote);
        handlePushData(datagram, remote, from, receivedAtMs, receivedAtMono);
        return;
      case 'PULL_DATA':
        reply(encodePullAck(datagram.version, datagram.token), remote);
        handlePullData(datagram, remote, from, receivedAtMs);
        return;
      case 'TX_ACK': {
        const state = registry.get(datagram.gatewayEui);
        if (state !== undefined) state.lastSeenAtMs = receivedAtMs;
        handleTxAck(datagram, from);
        return;
      }
      default:
        drop('wrong-direction', from, `${datagram.type} is sent by a server, not to one; is another network server pointed at this port?`);
    }
  }

  /** Expires downlink routes and forgets silent gateways; runs a few times per timeout. */
  function sweep(): void {
    const nowMs = Date.now();
    for (const state of registry.values()) {
      if (state.pullRoute !== null && state.lastPullAtMs !== null && nowMs - state.lastPullAtMs > gatewayTimeoutMs) {
        state.pullRoute = null;
        log.warn(
          { gatewayEui: state.gatewayEui },
          `no PULL_DATA from packet forwarder ${state.gatewayEui.toUpperCase()} for ${gatewayTimeoutMs} ms: downlinks to it are off`,
        );
      }
      if (nowMs - state.lastSeenAtMs > gatewayTimeoutMs) {
        registry.delete(state.gatewayEui);
        if (inputOnce.shouldLog(`lost:${state.gatewayEui}`)) {
          log.warn({ gatewayEui: state.gatewayEui }, `packet forwarder ${state.gatewayEui.toUpperCase()} lost: nothing received for ${gatewayTimeoutMs} ms`);
        }
        callEvent('onGatewayLost', () => events.onGatewayLost?.(state.gatewayEui));
      }
    }
  }

  function bindHint(code: string | undefined): string {
    switch (code) {
      case 'EADDRINUSE':
        return 'another process is using that port (a second iotgw, chirpstack-gateway-bridge, a network server?): stop it or choose another port';
      case 'EACCES':
        return 'ports below 1024 need privileges: use 1700 (the usual one) or another port above 1023';
      case 'EADDRNOTAVAIL':
        return 'that address is not on this machine: use 0.0.0.0, 127.0.0.1 or an address of one of its interfaces';
      default:
        return 'check the host and port';
    }
  }

  return {
    name: 'ingress.semtech-udp',

    async start() {
      if (socket !== null) return;
      stopping = false;
      // A big receive buffer rides out event-loop pauses (a GC, a burst of commits) without dropping datagrams:
      // the forwarder never retransmits. Linux caps it at net.core.rmem_max (often 208 KiB, about 90 PUSH_DATA).
      const created = createSocket({ type: isIPv6(options.host) ? 'udp6' : 'udp4', recvBufferSize: RECV_BUFFER_BYTES });
      await new Promise<void>((resolve, reject) => {
        const onBindError = (error: NodeJS.ErrnoException) => {
          created.close();
          reject(new Error(`cannot bind Semtech UDP on ${options.host}:${options.port}: ${error.message}; ${bindHint(error.code)}`, { cause: error }));
        };
        created.once('error', onBindError);
        created.bind(options.port, options.host, () => {
          created.off('error', onBindError);
          resolve();
        });
      });
      created.on('error', (error) => {
        // After bind, errors are per-datagram (e.g. ICMP unreachable on a send): log and keep serving.
        lastSocketError = { message: error.message, atMs: Date.now() };
        if (once.shouldLog(`socket-error:${error.message}`)) log.error({ err: error }, 'Semtech UDP socket error; still serving');
      });
      created.on('message', (message, remote) => {
        try {
          handleMessage(message, remote);
        } catch (error) {
          // A bug, not bad input (parseDatagram never throws): keep the socket alive and say so.
          log.error({ err: error, from: formatAddress(remote.address, remote.port) }, 'datagram handling failed');
        }
      });
      socket = created;
      sweepTimer = setInterval(sweep, Math.max(50, Math.min(gatewayTimeoutMs / 4, 10_000)));
      sweepTimer.unref();
      const bound = created.address();
      const receiveBuffer = created.getRecvBufferSize();
      log.info({ address: formatAddress(bound.address, bound.port), receiveBufferBytes: receiveBuffer }, 'Semtech UDP listening for packet forwarders');
      if (receiveBuffer < RECV_BUFFER_BYTES) {
        log.info(
          `the UDP receive buffer is ${receiveBuffer} bytes (kernel limit net.core.rmem_max); for sites with hundreds of uplinks per second raise it: sysctl -w net.core.rmem_max=${RECV_BUFFER_BYTES}`,
        );
      }
    },

    async stop() {
      if (socket === null || stopping) return;
      stopping = true;
      if (sweepTimer !== null) clearInterval(sweepTimer);
      sweepTimer = null;
      for (const [key, waiting] of pending) {
        clearTimeout(waiting.timer);
        waiting.resolve({ ok: false, reason: 'Semtech UDP transport stopping' });
        pending.delete(key);
      }
      const closing = socket;
      socket = null;
      await new Promise<void>((resolve) => closing.close(() => resolve()));
      registry.clear();
      log.info('Semtech UDP stopped');
    },

    health() {
      if (socket === null) return { status: 'down', detail: 'Semtech UDP socket not bound' };
      const withRoute = [...registry.values()].filter((state) => state.pullRoute !== null).length;
      const detail = `${registry.size} packet forwarders, ${withRoute} with a downlink route`;
      if (lastSocketError !== null && Date.now() - lastSocketError.atMs < 60_000) {
        return { status: 'degraded', detail: `${detail}; socket error in the last minute: ${lastSocketError.message}` };
      }
      return { status: 'ok', detail };
    },

    address() {
      if (socket === null) throw new Error('Semtech UDP transport not started');
      return socket.address();
    },

    gatewayCount: () => registry.size,
    hasDownlinkRoute: (gatewayEui) => (registry.get(gatewayEui.toLowerCase())?.pullRoute ?? null) !== null,

    gateways() {
      return [...registry.values()].map((state) => ({
        gatewayEui: state.gatewayEui,
        protocolVersion: state.protocolVersion,
        pullRoute: state.pullRoute === null ? null : { ...state.pullRoute },
        lastPullAtMs: state.lastPullAtMs,
        lastPushAtMs: state.lastPushAtMs,
        lastStat: state.lastStat,
        lastStatAtMs: state.lastStatAtMs,
      }));
    },

    async sendDownlink(gatewayEui, txpk) {
      if (socket === null) return { ok: false, reason: 'Semtech UDP transport is not running' };
      const eui = gatewayEui.toLowerCase();
      const invalid = checkTxpk(txpk);
      if (invalid !== null) return { ok: false, reason: `downlink not sent: ${invalid}` };
      const state = registry.get(eui);
      const route = state?.pullRoute ?? null;
      if (state === undefined || route === null) {
        return {
          ok: false,
          reason: `no downlink route to gateway ${eui}: no PULL_DATA from it in the last ${gatewayTimeoutMs} ms (is its serv_port_down pointed at this port?)`,
        };
      }
      if (pending.size >= MAX_PENDING_DOWNLINKS) return { ok: false, reason: `${MAX_PENDING_DOWNLINKS} downlinks already await a TX_ACK` };
      let token = randomBytes(2);
      while (pending.has(`${eui}:${token.toString('hex')}`)) token = randomBytes(2);
      const key = `${eui}:${token.toString('hex')}`;
      const version = state.protocolVersion;

      // Protocol v1 has no TX_ACK: sent is all we can know.
      if (version === 1) {
        const error = await send(encodePullResp(version, token, txpk), route.port, route.address);
        return error === null ? { ok: true } : { ok: false, reason: `PULL_RESP not sent to gateway ${eui}: ${error.message}` };
      }
      const acknowledged = new Promise<DownlinkResult>((resolve) => {
        const timer = setTimeout(() => {
          pending.delete(key);
          resolve({ ok: false, reason: `no TX_ACK from gateway ${eui} within ${txAckTimeoutMs} ms` });
        }, txAckTimeoutMs);
        pending.set(key, { resolve, timer });
      });
      const error = await send(encodePullResp(version, token, txpk), route.port, route.address);
      if (error !== null) {
        const waiting = pending.get(key);
        if (waiting !== undefined) {
          clearTimeout(waiting.timer);
          pending.delete(key);
        }
        return { ok: false, reason: `PULL_RESP not sent to gateway ${eui}: ${error.message}` };
      }
      return acknowledged;
    },
  };
}
