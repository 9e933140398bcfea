// The socket side of the Semtech UDP protocol: one node:dgram socket that packet forwarders (lora_pkt_fwd)
// send PUSH_DATA and PULL_DATA to. It rate-limits each source, acknowledges at once, and hands each valid
// rxpk and stat to its events; it composes the gateway registry (routes, allow-list, liveness), the source
// rate limiter and the downlink sender (PULL_RESP, TX_ACK waits). Codecs live in the packet modules; what to
// do with an rxpk is the caller's. The port is unauthenticated (PROTOCOL.TXT §1): every datagram is untrusted
// input and none may kill the socket.
import { type RemoteInfo, type Socket, createSocket } from 'node:dgram';
import { isIPv6, type AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { LogBudget, Logger } from '../../core/log.ts';
import { createOnceLogger } from '../../core/log.ts';
import { type DownlinkResult, createDownlinkSender } from './downlink-sender.ts';
import { formatAddress } from './format-address.ts';
import { type GatewayInfo, createGatewayRegistry } from './gateway-registry.ts';
import { encodePullAck, encodePushAck } from './packet-encoders.ts';
import type { GatewayStat, PushData, Rxpk, Txpk } from './packets.ts';
import { parseDatagram } from './parse-datagram.ts';
import { createSourceRateLimiter } from './source-rate-limiter.ts';

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
  /** One call per dropped datagram, rxpk or stat; `reason` is a DatagramRejectReason, RxpkRejectReason or one named in udp-transport.ts, gateway-registry.ts or downlink-sender.ts. */
  onDrop(reason: string, detail: { readonly from: string; readonly gatewayEui?: string; readonly message: string }): void;
  /** First datagram from a gateway not seen (or forgotten) before. */
  onGatewayConnected?(gatewayEui: string, address: string): void;
  /** Nothing received from the gateway for gatewayTimeoutMs. */
  onGatewayLost?(gatewayEui: string): void;
}

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

/** A bound socket; a bind failure rejects with what to do about it. */
async function bindSocket(host: string, port: number): Promise<Socket> {
  // A big receive buffer rides out event-loop pauses (a GC, a burst of commits) without dropping datagrams:
  // the forwarder never retransmits. Linux caps it at net.core.rmem_max (often 208 KiB, about 90 PUSH_DATA).
  const created = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4', recvBufferSize: RECV_BUFFER_BYTES });
  await new Promise<void>((resolve, reject) => {
    const onBindError = (error: NodeJS.ErrnoException) => {
      created.close();
      reject(new Error(`cannot bind Semtech UDP on ${host}:${port}: ${error.message}; ${bindHint(error.code)}`, { cause: error }));
    };
    created.once('error', onBindError);
    created.bind(port, host, () => {
      created.off('error', onBindError);
      resolve();
    });
  });
  return created;
}

export function createUdpTransport(options: UdpTransportOptions, events: UdpTransportEvents, deps: UdpTransportDeps): UdpTransport {
  const log = deps.log.child({ component: 'ingress.semtech-udp' });
  const gatewayTimeoutMs = options.gatewayTimeoutMs ?? DEFAULT_GATEWAY_TIMEOUT_MS;
  // Internal failures log once a minute; the registry's lines, caused by datagrams, also take from the input budget.
  const once = createOnceLogger(60_000);
  const rateLimiter = createSourceRateLimiter(options.maxDatagramsPerSecondPerSource ?? DEFAULT_MAX_DATAGRAMS_PER_SECOND);
  const registry = createGatewayRegistry(
    { gatewayTimeoutMs, maxGateways: options.maxGateways ?? DEFAULT_MAX_GATEWAYS, allowedGateways: options.allowedGateways ?? null },
    {
      log,
      ...(deps.logBudget === undefined ? {} : { logBudget: deps.logBudget }),
      onConnected: (gatewayEui, from) => callEvent('onGatewayConnected', () => events.onGatewayConnected?.(gatewayEui, from)),
      onLost: (gatewayEui) => callEvent('onGatewayLost', () => events.onGatewayLost?.(gatewayEui)),
    },
  );
  const downlinks = createDownlinkSender(
    { txAckTimeoutMs: options.txAckTimeoutMs ?? DEFAULT_TX_ACK_TIMEOUT_MS, gatewayTimeoutMs },
    { log, downlinkRoute: registry.downlinkRoute, send, drop },
  );

  let socket: Socket | null = null;
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

  function handlePushData(datagram: PushData, from: string, receivedAtMs: number, receivedAtMono: number): void {
    registry.recordPush(datagram.gatewayEui, datagram.version, from, receivedAtMs);
    for (const rejected of datagram.rejectedRxpk) drop(rejected.reason, from, rejected.message, datagram.gatewayEui);
    for (const rxpk of datagram.rxpk) callEvent('onRxpk', () => events.onRxpk(datagram.gatewayEui, rxpk, receivedAtMs, receivedAtMono));
    if (datagram.statError !== null) drop('bad-stat', from, datagram.statError, datagram.gatewayEui);
    if (datagram.stat !== null) {
      const stat = datagram.stat;
      registry.recordStat(datagram.gatewayEui, stat, receivedAtMs);
      callEvent('onStat', () => events.onStat(datagram.gatewayEui, stat));
    }
  }

  function handleMessage(message: Buffer, remote: RemoteInfo): void {
    const receivedAtMs = Date.now();
    const receivedAtMono = performance.now();
    const from = formatAddress(remote.address, remote.port);
    if (!rateLimiter.allow(remote.address, receivedAtMono)) {
      drop(
        'rate-limited',
        from,
        `more than ${rateLimiter.datagramsPerSecond} datagrams a second from ${remote.address} (lorawan.udp.max_datagrams_per_second)`,
      );
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
      const refused = registry.refusal(datagram.gatewayEui, remote.address);
      if (refused !== null) {
        drop(refused.reason, from, refused.message, datagram.gatewayEui);
        return;
      }
    }
    switch (datagram.type) {
      case 'PUSH_DATA':
        // Acknowledge before processing (PROTOCOL.TXT §3.1); the ack says "received", not "stored".
        reply(encodePushAck(datagram.version, datagram.token), remote);
        handlePushData(datagram, from, receivedAtMs, receivedAtMono);
        return;
      case 'PULL_DATA':
        reply(encodePullAck(datagram.version, datagram.token), remote);
        registry.recordPull(datagram.gatewayEui, datagram.version, remote, from, receivedAtMs);
        return;
      case 'TX_ACK':
        registry.recordTxAck(datagram.gatewayEui, receivedAtMs);
        downlinks.matchTxAck(datagram, from);
        return;
      default:
        drop('wrong-direction', from, `${datagram.type} is sent by a server, not to one; is another network server pointed at this port?`);
    }
  }

  return {
    name: 'ingress.semtech-udp',

    async start() {
      if (socket !== null) return;
      stopping = false;
      const created = await bindSocket(options.host, options.port);
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
      registry.startSweeps();
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
      registry.stopSweeps();
      downlinks.cancelAll('Semtech UDP transport stopping');
      const closing = socket;
      socket = null;
      await new Promise<void>((resolve) => closing.close(() => resolve()));
      registry.clear();
      log.info('Semtech UDP stopped');
    },

    health() {
      if (socket === null) return { status: 'down', detail: 'Semtech UDP socket not bound' };
      const detail = `${registry.count()} packet forwarders, ${registry.countWithRoute()} with a downlink route`;
      if (lastSocketError !== null && Date.now() - lastSocketError.atMs < 60_000) {
        return { status: 'degraded', detail: `${detail}; socket error in the last minute: ${lastSocketError.message}` };
      }
      return { status: 'ok', detail };
    },

    address() {
      if (socket === null) throw new Error('Semtech UDP transport not started');
      return socket.address();
    },

    gatewayCount: () => registry.count(),
    hasDownlinkRoute: (gatewayEui) => registry.downlinkRoute(gatewayEui.toLowerCase()) !== null,
    gateways: () => registry.snapshot(),

    async sendDownlink(gatewayEui, txpk) {
      if (socket === null) return { ok: false, reason: 'Semtech UDP transport is not running' };
      return downlinks.send(gatewayEui, txpk);
    },
  };
}
