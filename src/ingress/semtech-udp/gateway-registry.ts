// The packet forwarders the UDP transport knows: who may send (the allow-list, or a cap on how many are
// tracked), each one's downlink route (the source of its last PULL_DATA) and its last stat, and a liveness
// sweep that turns routes off and forgets gateways that fell silent. The port is unauthenticated, so the
// registry is bounded and every line it logs for input takes from the shared log budget.
import type { LogBudget, Logger } from '../../core/log.ts';
import { createOnceLogger } from '../../core/log.ts';
import { formatAddress } from './format-address.ts';
import type { GatewayStat, ProtocolVersion } from './packets.ts';

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

/** Where and how to send a gateway its PULL_RESP. */
export interface DownlinkRoute {
  readonly address: string;
  readonly port: number;
  readonly protocolVersion: ProtocolVersion;
}

export interface GatewayRegistryOptions {
  /** Routes expire after this long without PULL_DATA; gateways are forgotten after this long without any datagram. */
  readonly gatewayTimeoutMs: number;
  /** Gateways tracked at once without an allow-list. */
  readonly maxGateways: number;
  /** Lower-case EUI -> the source addresses it may send from (empty: any); null lets any gateway in. */
  readonly allowedGateways: ReadonlyMap<string, readonly string[]> | null;
}

export interface GatewayRegistryDeps {
  /** The transport's logger. */
  readonly log: Logger;
  readonly logBudget?: LogBudget;
  /** First datagram from a gateway not seen (or forgotten) before; `from` is its formatted source. */
  readonly onConnected: (gatewayEui: string, from: string) => void;
  /** The sweep forgot the gateway: nothing from it for gatewayTimeoutMs. */
  readonly onLost: (gatewayEui: string) => void;
}

export interface GatewayRegistry {
  /** Why a PUSH_DATA or PULL_DATA of this gateway from this address is not taken, or null when it is. */
  refusal(gatewayEui: string, address: string): { readonly reason: string; readonly message: string } | null;
  recordPush(gatewayEui: string, version: ProtocolVersion, from: string, atMs: number): void;
  recordStat(gatewayEui: string, stat: GatewayStat, atMs: number): void;
  /** PULL_DATA: its source becomes the gateway's downlink route. */
  recordPull(gatewayEui: string, version: ProtocolVersion, remote: { readonly address: string; readonly port: number }, from: string, atMs: number): void;
  /** A TX_ACK keeps a known gateway alive; it never adds one. */
  recordTxAck(gatewayEui: string, atMs: number): void;
  /** Null when the gateway is unknown or has sent no PULL_DATA within gatewayTimeoutMs. */
  downlinkRoute(gatewayEui: string): DownlinkRoute | null;
  count(): number;
  countWithRoute(): number;
  /** A copy, for the status page. */
  snapshot(): GatewayInfo[];
  startSweeps(): void;
  stopSweeps(): void;
  clear(): void;
}

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

export function createGatewayRegistry(options: GatewayRegistryOptions, deps: GatewayRegistryDeps): GatewayRegistry {
  const { gatewayTimeoutMs, maxGateways, allowedGateways: allowed } = options;
  const { log } = deps;
  // Every line here is caused by a datagram: once per gateway and minute, and from the shared input budget.
  const inputOnce = createOnceLogger(60_000, undefined, deps.logBudget === undefined ? {} : { budget: deps.logBudget });
  const registry = new Map<string, GatewayState>();
  let sweepTimer: NodeJS.Timeout | null = null;

  /** The gateway's entry, created (and announced) on first sight. */
  function touch(gatewayEui: string, version: ProtocolVersion, from: string, nowMs: number): GatewayState {
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
      if (inputOnce.shouldLog(`connected:${gatewayEui}`)) {
        log.info({ gatewayEui, from, protocolVersion: version }, `packet forwarder ${gatewayEui.toUpperCase()} connected from ${from}`);
      }
      deps.onConnected(gatewayEui, from);
    }
    state.protocolVersion = version;
    state.lastSeenAtMs = nowMs;
    return state;
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
        deps.onLost(state.gatewayEui);
      }
    }
  }

  return {
    refusal(gatewayEui, address) {
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
    },

    recordPush(gatewayEui, version, from, atMs) {
      touch(gatewayEui, version, from, atMs).lastPushAtMs = atMs;
    },

    recordStat(gatewayEui, stat, atMs) {
      const state = registry.get(gatewayEui);
      if (state === undefined) return;
      state.lastStat = stat;
      state.lastStatAtMs = atMs;
    },

    recordPull(gatewayEui, version, remote, from, atMs) {
      const state = touch(gatewayEui, version, from, atMs);
      const previous = state.pullRoute;
      if (previous !== null && (previous.address !== remote.address || previous.port !== remote.port)) {
        // A forwarder restart or a NAT rebinding; also what a spoofed PULL_DATA looks like (the protocol has no
        // auth: pin the gateway's addresses in lorawan.gateways to refuse those).
        if (inputOnce.shouldLog(`route-moved:${state.gatewayEui}`)) {
          log.info({ gatewayEui: state.gatewayEui, from, previous: formatAddress(previous.address, previous.port) }, 'downlink route moved');
        }
      }
      state.pullRoute = { address: remote.address, port: remote.port };
      state.lastPullAtMs = atMs;
    },

    recordTxAck(gatewayEui, atMs) {
      const state = registry.get(gatewayEui);
      if (state !== undefined) state.lastSeenAtMs = atMs;
    },

    downlinkRoute(gatewayEui) {
      const state = registry.get(gatewayEui);
      if (state === undefined || state.pullRoute === null) return null;
      return { address: state.pullRoute.address, port: state.pullRoute.port, protocolVersion: state.protocolVersion };
    },

    count: () => registry.size,
    countWithRoute: () => [...registry.values()].filter((state) => state.pullRoute !== null).length,

    snapshot() {
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

    startSweeps() {
      sweepTimer = setInterval(sweep, Math.max(50, Math.min(gatewayTimeoutMs / 4, 10_000)));
      sweepTimer.unref();
    },

    stopSweeps() {
      if (sweepTimer !== null) clearInterval(sweepTimer);
      sweepTimer = null;
    },

    clear: () => registry.clear(),
  };
}
