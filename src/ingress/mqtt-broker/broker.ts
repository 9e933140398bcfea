// The embedded MQTT 3.1.1 broker (aedes) that devices connect to, on plain TCP and optionally TLS.
// A PUBLISH to devices/{device_id}/{stream} becomes a record; it is committed to the buffer inside
// aedes' authorizePublish hook, which runs before the QoS 1 PUBACK (lib/handlers/publish.js), so a
// device hears PUBACK only for a committed record. Refusing there closes the connection [MQTT-3.3.5-2].
// Everything a client controls is bounded here or in the modules beside it: connections per address, bytes of
// unfinished packets (packet-size-guard.ts), password checks (login-guard.ts), topics and subscriptions
// (device-acl.ts), retained messages and session queues (bounded-persistence.ts), and the log lines it causes.
import { readFileSync } from 'node:fs';
import { type AddressInfo, type Server, type Socket, createServer } from 'node:net';
import { type TLSSocket, createServer as createTlsServer } from 'node:tls';
import { Aedes, type AuthenticateError, type Client, type ConnectPacket, type PublishPacket } from 'aedes';
import type { Component, HealthReport } from '../../core/lifecycle.ts';
import type { Logger, LogBudget } from '../../core/log.ts';
import { createOnceLogger } from '../../core/log.ts';
import type { Metrics } from '../../core/metrics.ts';
import { isDeviceId } from '../../record/device-id.ts';
import type { Router } from '../../record/routes.ts';
import { printable } from '../../shared/input-text.ts';
import type { Accept } from '../ingress.ts';
import { createRejections } from '../rejections.ts';
import { createBoundedPersistence, type PersistenceLimits } from './bounded-persistence.ts';
import { type Identity, canSubscribe, decidePublish } from './device-acl.ts';
import { createLoginGuard } from './login-guard.ts';
import { createHeldBytesBudget, guardSocket } from './packet-size-guard.ts';
import { verifyPassword } from './password-hash.ts';

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

export interface MqttIngressDeps {
  readonly accept: Accept;
  readonly router: Router;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly nowMs?: () => number;
  /** Told of every rejection counted in iotgw_ingress_rejected_total (the status page's recent rejections). */
  readonly onReject?: (source: string, reason: string, detail: string) => void;
  /** Shared limit on log lines caused by input (log.max_input_warnings_per_minute). */
  readonly logBudget?: LogBudget;
}

export interface MqttIngress extends Component {
  /** Bound addresses, known after start (port 0 picks a free port). */
  address(): { readonly tcp: AddressInfo; readonly tls: AddressInfo | null };
}

// MQTT 3.1.1 CONNACK return codes [MQTT-3.2.2.3].
const IDENTIFIER_REJECTED = 2;
const SERVER_UNAVAILABLE = 3;
const BAD_USERNAME_OR_PASSWORD = 4;
const NOT_AUTHORIZED = 5;

/** Failed logins from one address per minute before it is refused without hashing (scrypt costs CPU). */
const MAX_LOGIN_FAILURES = 10;
const LOGIN_WINDOW_MS = 60_000;
/** scrypt checks at once (one per address): libuv's pool has 4 threads, shared with the file system, DNS and pino. */
const MAX_CONCURRENT_PASSWORD_CHECKS = 2;
/** Logins waiting for a check: after a restart every device logs in again, and waits its turn rather than being refused. */
const MAX_QUEUED_PASSWORD_CHECKS = 2_048;
/** Topic + headers on top of the payload; packets beyond payload + this are cut off at the socket. */
const PACKET_OVERHEAD_BYTES = 65_536 + 16;
/** Subscriptions one client may hold. */
const MAX_SUBSCRIPTIONS_PER_CLIENT = 32;
const DEFAULT_LOG_INTERVAL_MS = 60_000;

/** What CONNECT said that aedes does not pass to authenticate. */
interface ConnectFacts {
  readonly address: string;
  readonly keepaliveS: number;
  readonly emptyClientId: boolean;
  readonly clean: boolean;
}

export function createMqttIngress(options: MqttIngressOptions, deps: MqttIngressDeps): MqttIngress {
  const log = deps.log.child({ component: 'ingress.mqtt' });
  const nowMs = deps.nowMs ?? Date.now;
  // Wall clock only for received-at; windows are durations, so a clock step at NTP sync cannot stretch them.
  const monotonicMs = (): number => performance.now();
  const { metrics } = deps;
  const logIntervalMs = options.rejectLogIntervalMs ?? DEFAULT_LOG_INTERVAL_MS;
  const once = createOnceLogger(logIntervalMs, monotonicMs, deps.logBudget === undefined ? {} : { budget: deps.logBudget });
  const rejections = createRejections({ source: 'mqtt', what: 'MQTT message', per: 'client and reason', intervalMs: logIntervalMs }, { ...deps, log });
  const devices = new Map(options.devices.map((device) => [device.id, device.passwordHash]));
  const clients = new Map(options.clients.map((client) => [client.username, client]));
  /** username -> password that verified, so reconnects skip scrypt; keyed by configured names only, so bounded by the config. */
  const verified = new Map<string, string>();
  const loginGuard = createLoginGuard({
    maxFailuresPerAddress: MAX_LOGIN_FAILURES,
    windowMs: LOGIN_WINDOW_MS,
    maxConcurrentChecks: MAX_CONCURRENT_PASSWORD_CHECKS,
    maxQueuedChecks: MAX_QUEUED_PASSWORD_CHECKS,
    maxAddresses: 10_000,
    nowMs: monotonicMs,
  });
  const heldBytes = createHeldBytesBudget(options.maxHeldBytes);
  /** Live connections per source address (entries exist only while a connection does). */
  const connectionsByAddress = new Map<string, number>();
  /** Who each connected client is, decided at CONNECT. */
  const identities = new WeakMap<Client, Identity>();
  const connectFacts = new WeakMap<Client, ConnectFacts>();
  const subscriptionCounts = new WeakMap<Client, number>();

  let broker: Aedes | null = null;
  let tcpServer: Server | null = null;
  let tlsServer: Server | null = null;
  let stopping = false;
  const sockets = new Set<Socket>();

  function reject(reason: string, subject: string, message: string, extra: Record<string, unknown> = {}): void {
    const client = printable(subject, 64);
    rejections.reject(reason, `${client}: ${message}`, { logKey: `${subject}:${reason}`, fields: { client, ...extra } });
  }

  function refuseConnection(reason: string, subject: string, message: string): void {
    metrics.mqttConnectionsRefused.inc({ reason });
    if (once.shouldLog(`connect:${subject}:${reason}`)) log.warn({ reason, client: printable(subject, 64) }, message);
  }

  function authError(code: number, reason: string, message: string): AuthenticateError {
    return Object.assign(new Error(message), { returnCode: code, reason }) as AuthenticateError;
  }

  function remoteAddress(client: Client): string {
    return (client.conn as Socket | undefined)?.remoteAddress ?? 'unknown';
  }

  /** CONNECT rules aedes does not have, refused with a defined return code and a reason in the log. */
  function connectProblem(facts: ConnectFacts): AuthenticateError | null {
    // [MQTT-3.1.3-8]: a zero-byte client id needs clean session 1.
    if (facts.emptyClientId && !facts.clean) {
      return authError(IDENTIFIER_REJECTED, 'identifier-rejected', 'an empty client id needs clean session (MQTT-3.1.3-8); send a client id');
    }
    if (options.keepaliveLimitS > 0 && (facts.keepaliveS === 0 || facts.keepaliveS > options.keepaliveLimitS)) {
      // Keepalive 0 turns the broker's dead-connection check off: a vanished device would hold its connection
      // forever. Refused as mosquitto does with max_keepalive set: return code 2.
      return authError(
        IDENTIFIER_REJECTED,
        'keepalive',
        `keepalive ${facts.keepaliveS} s is not accepted: ask for 1..${options.keepaliveLimitS} s (mqtt.keepalive_limit_s)`,
      );
    }
    return null;
  }

  async function checkPassword(username: string, password: string, hash: string, address: string): Promise<boolean> {
    if (verified.get(username) === password) return true;
    const admission = await loginGuard.admit(address);
    if (!admission.ok) {
      if (admission.reason === 'throttled') throw authError(NOT_AUTHORIZED, 'throttled', `too many failed logins from ${address}; wait a minute`);
      throw authError(SERVER_UNAVAILABLE, 'busy', 'too many logins being checked at once; try again in a moment');
    }
    let ok = false;
    try {
      ok = await verifyPassword(password, hash);
    } finally {
      admission.release(ok);
      metrics.mqttPasswordChecks.inc({ result: ok ? 'ok' : 'failed' });
    }
    if (ok) verified.set(username, password);
    return ok;
  }

  async function authenticate(client: Client, username: string | undefined, password: Buffer | undefined): Promise<Identity> {
    const facts = connectFacts.get(client);
    const address = facts?.address ?? remoteAddress(client);
    const problem = facts === undefined ? null : connectProblem(facts);
    if (problem !== null) throw problem;
    const clientId = client.id;
    const socket = client.conn as Partial<TLSSocket>;
    // A verified client certificate is the identity; the CONNECT username is not trusted over it.
    if (socket.encrypted === true && socket.authorized === true && typeof socket.getPeerCertificate === 'function') {
      const commonName = socket.getPeerCertificate().subject?.CN;
      const deviceId = Array.isArray(commonName) ? commonName[0] : commonName;
      if (deviceId === undefined || deviceId === '') throw authError(NOT_AUTHORIZED, 'not-authorized', 'client certificate has no CN');
      if (!isDeviceId(deviceId)) {
        throw authError(NOT_AUTHORIZED, 'not-authorized', `client certificate CN "${printable(deviceId, 64)}" is not a valid device id`);
      }
      if (clientId !== deviceId) throw authError(IDENTIFIER_REJECTED, 'identifier-rejected', `client id must equal the certificate CN "${deviceId}"`);
      return { kind: 'device', deviceId };
    }
    if (username === undefined || username === '') {
      if (!options.allowAnonymous) {
        throw authError(NOT_AUTHORIZED, 'not-authorized', 'anonymous access is off (mqtt.allow_anonymous: false); connect with a username and password');
      }
      // A listed device's client id is its identity: an anonymous client taking it could publish as the device
      // and take over its session. An anonymous client id is a device id in records and topics: same rule.
      if (devices.has(clientId) || clients.has(clientId)) {
        throw authError(NOT_AUTHORIZED, 'not-authorized', 'this client id belongs to a listed device or account; connect with its username and password');
      }
      if (!isDeviceId(clientId))
        throw authError(IDENTIFIER_REJECTED, 'identifier-rejected', 'an anonymous client id must be a valid device id (letters, digits, . _ : -)');
      return { kind: 'anonymous', deviceId: clientId };
    }
    if (loginGuard.isThrottled(address)) throw authError(NOT_AUTHORIZED, 'throttled', `too many failed logins from ${address}; wait a minute`);
    const deviceHash = devices.get(username);
    const account = clients.get(username);
    const hash = deviceHash ?? account?.passwordHash;
    if (hash === undefined || password === undefined) {
      loginGuard.noteFailure(address); // an unknown name costs an attempt too, without hashing
      throw authError(BAD_USERNAME_OR_PASSWORD, 'bad-credentials', 'wrong username or password');
    }
    if (!(await checkPassword(username, password.toString('utf8'), hash, address))) {
      throw authError(BAD_USERNAME_OR_PASSWORD, 'bad-credentials', 'wrong username or password');
    }
    if (deviceHash !== undefined) {
      // The client id is the device's identity on the broker: binding it stops one device from taking over another's session.
      if (clientId !== username) throw authError(IDENTIFIER_REJECTED, 'identifier-rejected', `device "${username}" must connect with client id "${username}"`);
      return { kind: 'device', deviceId: username };
    }
    if (account === undefined) throw authError(NOT_AUTHORIZED, 'not-authorized', 'unknown account');
    // An account's sessions are its own: client id = its name, or its name and a suffix (dashboard-2), never a device's.
    if ((clientId !== username && !clientId.startsWith(`${username}-`)) || devices.has(clientId)) {
      throw authError(IDENTIFIER_REJECTED, 'identifier-rejected', `account "${username}" must connect with client id "${username}" or "${username}-<suffix>"`);
    }
    return { kind: 'client', username, publish: account.publish, subscribe: account.subscribe };
  }

  async function authorizePublish(client: Client | null, packet: PublishPacket): Promise<void> {
    // Publishes from the broker itself ($SYS heartbeats, wills) have no client and are not records.
    if (client === null) return;
    const identity = identities.get(client);
    const subject = client.id;
    if (identity === undefined) throw new Error('not authenticated');
    const decision = decidePublish(identity, packet.topic);
    if (!decision.allowed) {
      reject(decision.reason, subject, `publish refused: ${printable(decision.detail, 200)}`, { topic: printable(packet.topic, 128) });
      throw new Error(decision.detail);
    }
    const payload = packet.payload as Buffer;
    if (payload.length > options.maxPayloadBytes) {
      reject('oversize', subject, `publish refused: payload of ${payload.length} bytes exceeds mqtt.max_payload_bytes (${options.maxPayloadBytes})`);
      throw new Error('payload too large');
    }
    if (decision.record === null) return; // an account's publish outside devices/: relayed, not a record
    const receivedAtMs = nowMs();
    const { deviceId, stream } = decision.record;
    const committed = deps.accept([
      {
        key: deviceId,
        stream,
        source: 'mqtt',
        receivedAtMs,
        eventTimeMs: deps.router.eventTimeMs(stream, payload, receivedAtMs),
        payload,
        // An account may publish as any device its grant covers: the record says it was not the device.
        meta: identity.kind === 'client' ? { 'published-by': identity.username } : {},
      },
    ]);
    // QoS 0 has no acknowledgement to withhold: stored best effort, relayed at once.
    if (packet.qos === 0) {
      void committed.then((result) => {
        if (!result.ok) reject(result.reason, subject, `QoS 0 publish not stored: ${result.message}`);
      });
      return;
    }
    const result = await committed;
    if (!result.ok) {
      reject(result.reason, subject, `publish not acknowledged: ${result.message}`);
      throw new Error(result.message);
    }
  }

  function handleConnection(socket: Socket): void {
    if (stopping) {
      socket.destroy();
      return;
    }
    const address = socket.remoteAddress ?? 'unknown';
    const fromAddress = connectionsByAddress.get(address) ?? 0;
    if (fromAddress >= options.maxConnectionsPerAddress) {
      refuseConnection(
        'per-address-limit',
        address,
        `connection refused: ${fromAddress} connections from ${address} already (mqtt.max_connections_per_address); many devices behind one NAT may need it raised`,
      );
      socket.destroy();
      return;
    }
    connectionsByAddress.set(address, fromAddress + 1);
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      const left = (connectionsByAddress.get(address) ?? 1) - 1;
      if (left <= 0) connectionsByAddress.delete(address);
      else connectionsByAddress.set(address, left);
    });
    socket.setNoDelay(true);
    broker?.handle(socket);
    // After aedes' 'readable' listener: added before it, a 'data' listener would switch the socket to flowing mode.
    guardSocket(socket, options.maxPayloadBytes + PACKET_OVERHEAD_BYTES, heldBytes, (refusal) => {
      if (refusal.reason === 'oversize') {
        rejections.reject('oversize', `${address}: packet of ${refusal.declaredBytes} bytes exceeds mqtt.max_payload_bytes; connection closed`, {
          logKey: `oversize:${address}`,
          fields: { address, declaredBytes: refusal.declaredBytes },
        });
        return;
      }
      refuseConnection(
        'memory-budget',
        address,
        `connection closed: unfinished packets of all connections hold ${refusal.heldBytes} bytes, the most mqtt.max_held_bytes allows (slow or stalled senders)`,
      );
    });
  }

  function listen(server: Server, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error) => reject(new Error(`cannot listen for MQTT on ${options.host}:${port}: ${error.message}`));
      server.once('error', onError);
      server.listen(port, options.host, () => {
        server.off('error', onError);
        server.on('error', (error) => log.error({ err: error }, 'MQTT listener error'));
        resolve();
      });
    });
  }

  function configureServer(server: Server): void {
    server.maxConnections = options.maxConnections;
    server.on('drop', () => refuseConnection('max-connections', 'listener', `connection refused: mqtt.max_connections (${options.maxConnections}) reached`));
  }

  return {
    name: 'ingress.mqtt',

    async start() {
      broker = await Aedes.createBroker({
        connectTimeout: options.connectTimeoutMs,
        // Checked in authenticate instead, so a refusal carries a defined return code (aedes answers 6).
        keepaliveLimit: 0,
        maxClientsIdLength: 128,
        persistence: createBoundedPersistence(options.persistence, (limit, detail) => {
          metrics.mqttBrokerLimits.inc({ limit });
          if (once.shouldLog(`limit:${limit}`)) log.warn({ limit }, `${detail}; see iotgw_mqtt_broker_limits_total`);
        }) as never,
        preConnect(client, packet: ConnectPacket, done) {
          connectFacts.set(client, {
            address: remoteAddress(client),
            keepaliveS: packet.keepalive ?? 0,
            emptyClientId: (packet.clientId ?? '') === '',
            clean: packet.clean !== false,
          });
          done(null, true);
        },
        authenticate(client, username, password, done) {
          authenticate(client, username, password).then(
            (identity) => {
              identities.set(client, identity);
              done(null, true);
            },
            (error: AuthenticateError & { reason?: string }) => {
              refuseConnection(error.reason ?? 'not-authorized', username ?? client.id, `connection refused: ${error.message}`);
              done(error, false);
            },
          );
        },
        authorizePublish(client, packet, done) {
          authorizePublish(client, packet).then(
            () => done(null),
            (error: Error) => done(error),
          );
        },
        authorizeSubscribe(client, subscription, done) {
          const identity = identities.get(client);
          const held = subscriptionCounts.get(client) ?? 0;
          if (identity === undefined || !canSubscribe(identity, subscription.topic) || held >= MAX_SUBSCRIPTIONS_PER_CLIENT) {
            const why =
              held >= MAX_SUBSCRIPTIONS_PER_CLIENT ? `holds ${held} subscriptions already` : `may not subscribe to ${printable(subscription.topic, 128)}`;
            reject('not-authorized', client.id, `subscribe refused: ${printable(client.id, 64)} ${why}`);
            // A null subscription answers SUBACK 0x80 (failure) [MQTT-3.9.3] and keeps the connection.
            done(null, null);
            return;
          }
          subscriptionCounts.set(client, held + 1);
          done(null, subscription);
        },
      });
      broker.on('client', () => metrics.mqttConnectedClients.inc());
      broker.on('clientDisconnect', () => metrics.mqttConnectedClients.dec());
      broker.on('clientError', (client, error) => log.debug({ client: printable(client.id, 64), err: error }, 'client error'));
      broker.on('connectionError', (client, error) => log.debug({ client: printable(client.id ?? '', 64), err: error }, 'connection error'));

      tcpServer = createServer(handleConnection);
      configureServer(tcpServer);
      await listen(tcpServer, options.port);

      if (options.tls !== null) {
        const tls = options.tls;
        tlsServer = createTlsServer(
          {
            cert: readFileSync(tls.certFile),
            key: readFileSync(tls.keyFile),
            ...(tls.caFile === '' ? {} : { ca: readFileSync(tls.caFile) }),
            ...(tls.crlFile === '' ? {} : { crl: readFileSync(tls.crlFile) }),
            requestCert: tls.caFile !== '',
            rejectUnauthorized: tls.requireClientCert,
            minVersion: 'TLSv1.2',
          },
          handleConnection,
        );
        configureServer(tlsServer);
        tlsServer.on('tlsClientError', (error) => refuseConnection('tls', 'tls', `TLS handshake failed: ${error.message}`));
        await listen(tlsServer, tls.port);
      }
      const bound = this.address();
      log.info(
        { tcp: `${bound.tcp.address}:${bound.tcp.port}`, tls: bound.tls === null ? null : `${bound.tls.address}:${bound.tls.port}` },
        'MQTT broker listening',
      );
    },

    async stop() {
      if (stopping) return;
      stopping = true;
      const servers = [tcpServer, tlsServer].filter((server): server is Server => server !== null);
      const closed = servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
      // Closes every client connection; publishes already in authorizePublish finish their commit first.
      if (broker !== null) await new Promise<void>((resolve) => broker?.close(() => resolve()));
      for (const socket of sockets) socket.destroy(); // connections that never completed CONNECT
      await Promise.all(closed);
      log.info('MQTT broker stopped');
    },

    health(): HealthReport {
      if (broker === null || tcpServer === null || !tcpServer.listening) return { status: 'down', detail: 'MQTT listener not running' };
      return { status: 'ok', detail: `${broker.connectedClients} clients` };
    },

    address() {
      if (tcpServer === null) throw new Error('MQTT ingress not started');
      return { tcp: tcpServer.address() as AddressInfo, tls: tlsServer === null ? null : (tlsServer.address() as AddressInfo) };
    },
  };
}
