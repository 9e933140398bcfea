// The embedded MQTT 3.1.1 broker (aedes) that devices connect to, on plain TCP and optionally TLS.
// A PUBLISH to devices/{device_id}/{stream} becomes a record, committed before the QoS 1 PUBACK (authorization.ts).
// This component composes the parts and runs their lifecycle: who a client is (authentication.ts), what it may
// do (authorization.ts), the sockets (listeners.ts). Everything a client controls is bounded there or in the modules
// beside them: bytes of unfinished packets (packet-size-guard.ts), password checks (login-guard.ts), topics and
// subscriptions (device-acl.ts), retained messages and session queues (bounded-persistence.ts), and the log lines it causes.
// The bus that relays publishes to subscribers matches topics only while someone subscribes (relay-emitter.ts).
import './quiet-debug.ts'; // before aedes: see there
import './buffer-list-reads.ts'; // mqtt-packet's byte reads without a Buffer view each: see there
import './puback-writes.ts'; // a PUBACK as one write: see there
import type { AddressInfo } from 'node:net';
import { Aedes, type AedesOptions, type AuthenticateError, type Client } from 'aedes';
import type { Component, HealthReport } from '../../core/lifecycle.ts';
import { createOnceLogger } from '../../core/log.ts';
import type { Router } from '../../record/routes.ts';
import { printable } from '../../shared/input-text.ts';
import type { AcceptThen, IngressDeps } from '../ingress.ts';
import { createRejections } from '../rejections.ts';
import { createAuthentication } from './authentication.ts';
import { createAuthorization } from './authorization.ts';
import { createBoundedPersistence, type PersistenceLimits } from './bounded-persistence.ts';
import { createRelayEmitter } from './relay-emitter.ts';
import type { Identity } from './device-acl.ts';
import { createDownlinkTracker, type MqttDownlink } from './device-downlink.ts';
import { createListeners } from './listeners.ts';
import { DRAIN_TIMEOUT_MS, reportUnreadConnections } from './unread-connections.ts';

export interface MqttIngressOptions {
  readonly host: string;
  readonly port: number;
  readonly allowAnonymous: boolean;
  readonly maxPayloadBytes: number;
  readonly maxConnections: number;
  /** Connections from one source address at once. */
  readonly maxConnectionsPerAddress: number;
  /** Bytes of packets still arriving, over all connections together. */
  readonly maxHeldBytes: number;
  readonly connectTimeoutMs: number;
  /** A refused publish, subscribe or connection is logged at most once per client and reason per interval (default 60 s). */
  readonly rejectLogIntervalMs?: number;
  /** Largest keepalive a client may ask for; 0 = any (keepalive 0, "off", is then allowed too). */
  readonly keepaliveLimitS: number;
  /** How long a connected device has to PUBACK a command (default 30 s). */
  readonly downlinkAckTimeoutMs?: number;
  readonly persistence: PersistenceLimits;
  readonly devices: readonly { readonly id: string; readonly passwordHash: string }[];
  readonly clients: readonly {
    readonly username: string;
    readonly passwordHash: string;
    readonly publish: readonly string[];
    readonly subscribe: readonly string[];
  }[];
  readonly tls: {
    readonly port: number;
    readonly certFile: string;
    readonly keyFile: string;
    readonly caFile: string;
    /** PEM certificate revocation list(s) for device certificates; '' = none. */
    readonly crlFile: string;
    readonly requireClientCert: boolean;
  } | null;
}

export interface MqttIngressDeps extends IngressDeps {
  /** `accept` without a promise: what every PUBLISH goes through (authorization.ts). */
  readonly acceptThen: AcceptThen;
  readonly router: Router;
  readonly nowMs?: () => number;
}

export interface MqttIngress extends Component {
  /** Bound addresses, known after start (port 0 picks a free port). */
  address(): { readonly tcp: AddressInfo; readonly tls: AddressInfo | null };
  /**
   * A reload (SIGHUP): devices and accounts are now these. Connected clients stay connected, except a password
   * login whose device or account was removed (its access is revoked) and an anonymous client whose id now
   * names a listed device; a connected account's changed ACL applies to its next PUBLISH and SUBSCRIBE. A
   * changed password applies at the next CONNECT.
   */
  reloadAccounts(accounts: Pick<MqttIngressOptions, 'devices' | 'clients'>): AccountChanges;
  /** The way to a device's connection, for commands. */
  readonly downlink: MqttDownlink;
}

/** What a reload changed: device ids and account names, and the connections closed for it. */
export interface AccountChanges {
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly changed: readonly string[];
  readonly disconnected: readonly string[];
}

/** How long a connected device has to acknowledge (PUBACK) a message from the gateway. */
const DOWNLINK_ACK_TIMEOUT_MS = 30_000;

const DEFAULT_LOG_INTERVAL_MS = 60_000;

export function createMqttIngress(options: MqttIngressOptions, deps: MqttIngressDeps): MqttIngress {
  const log = deps.log.child({ component: 'ingress.mqtt' });
  // Wall clock only for received-at; windows are durations, so a clock step at NTP sync cannot stretch them.
  const monotonicMs = (): number => performance.now();
  const { metrics } = deps;
  const logIntervalMs = options.rejectLogIntervalMs ?? DEFAULT_LOG_INTERVAL_MS;
  const once = createOnceLogger(logIntervalMs, monotonicMs, deps.logBudget === undefined ? {} : { budget: deps.logBudget });
  const rejections = createRejections({ source: 'mqtt', what: 'MQTT message', per: 'client and reason', intervalMs: logIntervalMs }, { ...deps, log });
  /** Who each connected client is, decided at CONNECT. */
  const identities = new WeakMap<Client, Identity>();
  /** Clients that logged in with a username and password (a reload may revoke those); certificate and anonymous clients are not here. */
  const passwordLogins = new WeakSet<Client>();
  let accounts: Pick<MqttIngressOptions, 'devices' | 'clients'> = { devices: options.devices, clients: options.clients };
  let broker: Aedes | null = null;
  let stopping = false;

  function refuseConnection(reason: string, subject: string, message: string): void {
    metrics.mqttConnectionsRefused.inc({ reason });
    if (once.shouldLog(`connect:${subject}:${reason}`)) log.warn({ reason, client: printable(subject, 64) }, message);
  }

  const authentication = createAuthentication(options, { metrics, monotonicMs });
  const authorization = createAuthorization(options, {
    acceptThen: deps.acceptThen,
    router: deps.router,
    rejections,
    identityOf: (client) => identities.get(client),
    nowMs: deps.nowMs ?? Date.now,
  });
  const downlink = createDownlinkTracker({ ackTimeoutMs: options.downlinkAckTimeoutMs ?? DOWNLINK_ACK_TIMEOUT_MS }, (client) => identities.get(client));
  const listeners = createListeners(options, { log, rejections, refuseConnection, handle: (socket) => broker?.handle(socket) });

  /** aedes' options: its limits, the bounded persistence, and the hooks adapted to the modules above. */
  function brokerOptions(): AedesOptions {
    return {
      connectTimeout: options.connectTimeoutMs,
      // A client that takes nothing the broker sends for this long, with more waiting, is closed.
      drainTimeout: DRAIN_TIMEOUT_MS,
      // Checked in authenticate instead, so a refusal carries a defined return code (aedes answers 6).
      keepaliveLimit: 0,
      maxClientsIdLength: 128,
      mq: createRelayEmitter(),
      persistence: createBoundedPersistence(
        options.persistence,
        (limit, detail) => {
          metrics.mqttBrokerLimits.inc({ limit });
          if (once.shouldLog(`limit:${limit}`)) log.warn({ limit }, `${detail}; see iotgw_mqtt_broker_limits_total`);
        },
        downlink.puback,
      ) as never,
      preConnect(client, packet, done) {
        authentication.noteConnect(client, packet);
        done(null, true);
      },
      authenticate(client, username, password, done) {
        authentication.authenticate(client, username, password).then(
          (identity) => {
            identities.set(client, identity);
            if (username !== undefined && username !== '' && identity.kind !== 'anonymous') passwordLogins.add(client);
            done(null, true);
          },
          (error: AuthenticateError & { reason?: string }) => {
            refuseConnection(error.reason ?? 'not-authorized', username ?? client.id, `connection refused: ${error.message}`);
            done(error, false);
          },
        );
      },
      // aedes' callback goes straight through to the commit's answer: no promise per PUBLISH.
      authorizePublish: authorization.authorizePublish,
      authorizeForward: (client, packet) => downlink.forward(client, packet),
      authorizeSubscribe(client, subscription, done) {
        // A null subscription answers SUBACK 0x80 (failure) [MQTT-3.9.3] and keeps the connection.
        done(null, authorization.authorizeSubscribe(client, subscription));
      },
    };
  }

  return {
    name: 'ingress.mqtt',

    async start() {
      broker = await Aedes.createBroker(brokerOptions());
      downlink.attach(broker);
      broker.on('client', () => metrics.mqttConnectedClients.inc());
      broker.on('clientDisconnect', () => metrics.mqttConnectedClients.dec());
      broker.on('clientError', (client, error) => log.debug({ client: printable(client.id, 64), err: error }, 'client error'));
      reportUnreadConnections(broker, DRAIN_TIMEOUT_MS, refuseConnection);
      broker.on('connectionError', (client, error) => log.debug({ client: printable(client.id ?? '', 64), err: error }, 'connection error'));
      await listeners.listen();
      const bound = listeners.address();
      log.info(
        { tcp: `${bound.tcp.address}:${bound.tcp.port}`, tls: bound.tls === null ? null : `${bound.tls.address}:${bound.tls.port}` },
        'MQTT broker listening',
      );
    },

    async stop() {
      if (stopping) return;
      stopping = true;
      const closed = listeners.close();
      downlink.close();
      // Closes every client connection; publishes already in authorizePublish finish their commit first.
      if (broker !== null) await new Promise<void>((resolve) => broker?.close(() => resolve()));
      listeners.destroySockets(); // connections that never completed CONNECT
      await closed;
      log.info('MQTT broker stopped');
    },

    health(): HealthReport {
      if (broker === null || !listeners.isListening()) return { status: 'down', detail: 'MQTT listener not running' };
      return { status: 'ok', detail: `${broker.connectedClients} clients` };
    },

    address() {
      return listeners.address();
    },

    reloadAccounts(next) {
      const changes = diffAccounts(accounts, next);
      accounts = next;
      authentication.replaceAccounts(next);
      const deviceIds = new Set(next.devices.map((device) => device.id));
      const byUsername = new Map(next.clients.map((client) => [client.username, client] as const));
      const disconnected: string[] = [];
      const connected = broker === null ? [] : Object.values((broker as unknown as { clients: Record<string, Client> }).clients);
      for (const client of connected) {
        const identity = identities.get(client);
        if (identity === undefined) continue;
        let revoked = false;
        if (identity.kind === 'device') revoked = passwordLogins.has(client) && !deviceIds.has(identity.deviceId);
        else if (identity.kind === 'anonymous') revoked = deviceIds.has(identity.deviceId) || byUsername.has(identity.deviceId);
        else {
          const account = byUsername.get(identity.username);
          if (account === undefined) revoked = true;
          else identities.set(client, { kind: 'client', username: identity.username, publish: account.publish, subscribe: account.subscribe });
        }
        if (!revoked) continue;
        disconnected.push(client.id);
        client.close();
      }
      if (disconnected.length > 0) {
        log.warn(
          { clients: disconnected.slice(0, 20).map((id) => printable(id, 64)), count: disconnected.length },
          'reload: connections of removed devices and accounts closed',
        );
      }
      return { ...changes, disconnected };
    },

    downlink,
  };
}

/** Device ids and account names added, removed, or with a changed password or ACL. */
function diffAccounts(
  before: Pick<MqttIngressOptions, 'devices' | 'clients'>,
  after: Pick<MqttIngressOptions, 'devices' | 'clients'>,
): Omit<AccountChanges, 'disconnected'> {
  const entries = (accounts: Pick<MqttIngressOptions, 'devices' | 'clients'>): Map<string, string> =>
    new Map([
      ...accounts.devices.map((device) => [device.id, JSON.stringify(device)] as const),
      ...accounts.clients.map((client) => [client.username, JSON.stringify(client)] as const),
    ]);
  const old = entries(before);
  const now = entries(after);
  return {
    added: [...now.keys()].filter((name) => !old.has(name)),
    removed: [...old.keys()].filter((name) => !now.has(name)),
    changed: [...now].filter(([name, value]) => old.has(name) && old.get(name) !== value).map(([name]) => name),
  };
}
