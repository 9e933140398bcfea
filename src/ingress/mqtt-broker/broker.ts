// The embedded MQTT 3.1.1 broker (aedes) that devices connect to, on plain TCP and optionally TLS.
// A PUBLISH to devices/{device_id}/{stream} becomes a record; it is committed to the buffer inside
// aedes' authorizePublish hook, which runs before the QoS 1 PUBACK (lib/handlers/publish.js), so a
// device hears PUBACK only for a committed record. Refusing there closes the connection [MQTT-3.3.5-2].
import { readFileSync } from 'node:fs';
import { type AddressInfo, type Server, type Socket, createServer } from 'node:net';
import { type TLSSocket, createServer as createTlsServer } from 'node:tls';
import { Aedes, type AuthenticateError, type Client, type PublishPacket } from 'aedes';
import type { Logger } from '../../ops/log.ts';
import { createOnceLogger } from '../../ops/log.ts';
import type { Component, HealthReport } from '../../ops/lifecycle.ts';
import type { Metrics } from '../../ops/metrics.ts';
import type { Router } from '../../record/routes.ts';
import type { Accept } from '../ingress.ts';
import { type Identity, canSubscribe, decidePublish } from './device-acl.ts';
import { guardSocket } from './packet-size-guard.ts';
import { verifyPassword } from './password-hash.ts';

export interface MqttIngressOptions {
  readonly host: string;
  readonly port: number;
  readonly allowAnonymous: boolean;
  readonly maxPayloadBytes: number;
  readonly maxConnections: number;
  readonly connectTimeoutMs: number;
  readonly keepaliveLimitS: number;
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
}

export interface MqttIngress extends Component {
  /** Bound addresses, known after start (port 0 picks a free port). */
  address(): { readonly tcp: AddressInfo; readonly tls: AddressInfo | null };
}

// MQTT 3.1.1 CONNACK return codes [MQTT-3.2.2.3].
const IDENTIFIER_REJECTED = 2;
const BAD_USERNAME_OR_PASSWORD = 4;
const NOT_AUTHORIZED = 5;

/** Failed logins from one address before it is refused without hashing for a while (scrypt costs CPU). */
const MAX_LOGIN_FAILURES = 10;
const LOGIN_FAILURE_WINDOW_MS = 60_000;
/** Topic + headers on top of the payload; packets beyond payload + this are cut off at the socket. */
const PACKET_OVERHEAD_BYTES = 65_536 + 16;

export function createMqttIngress(options: MqttIngressOptions, deps: MqttIngressDeps): MqttIngress {
  const log = deps.log.child({ component: 'ingress.mqtt' });
  const nowMs = deps.nowMs ?? Date.now;
  // Wall clock only for received-at; windows are durations, so a clock step at NTP sync cannot stretch them.
  const monotonicMs = (): number => performance.now();
  const { metrics } = deps;
  const once = createOnceLogger(60_000, monotonicMs);
  const devices = new Map(options.devices.map((device) => [device.id, device.passwordHash]));
  const clients = new Map(options.clients.map((client) => [client.username, client]));
  /** username -> password that verified, so reconnects skip scrypt (config is fixed for the process's life). */
  const verified = new Map<string, string>();
  const loginFailures = new Map<string, { count: number; sinceMs: number }>();
  /** Who each connected client is, decided at CONNECT. */
  const identities = new WeakMap<Client, Identity>();

  let broker: Aedes | null = null;
  let tcpServer: Server | null = null;
  let tlsServer: Server | null = null;
  let stopping = false;
  const sockets = new Set<Socket>();

  function reject(source: 'mqtt', reason: string, subject: string, message: string, extra: Record<string, unknown> = {}): void {
    metrics.ingressRejected.inc({ source, reason });
    deps.onReject?.(source, reason, `${subject}: ${message}`);
    if (once.shouldLog(`${subject}:${reason}`)) log.warn({ reason, client: subject, ...extra }, message);
  }

  function refuseConnection(reason: string, subject: string, message: string): void {
    metrics.mqttConnectionsRefused.inc({ reason });
    if (once.shouldLog(`connect:${subject}:${reason}`)) log.warn({ reason, client: subject }, message);
  }

  function authError(code: number, message: string): AuthenticateError {
    return Object.assign(new Error(message), { returnCode: code }) as AuthenticateError;
  }

  function remoteAddress(client: Client): string {
    return (client.conn as Socket | undefined)?.remoteAddress ?? 'unknown';
  }

  async function checkPassword(username: string, password: string, hash: string): Promise<boolean> {
    if (verified.get(username) === password) return true;
    const ok = await verifyPassword(password, hash);
    if (ok) verified.set(username, password);
    return ok;
  }

  function tooManyFailures(address: string): boolean {
    const entry = loginFailures.get(address);
    if (entry === undefined) return false;
    if (monotonicMs() - entry.sinceMs > LOGIN_FAILURE_WINDOW_MS) {
      loginFailures.delete(address);
      return false;
    }
    return entry.count >= MAX_LOGIN_FAILURES;
  }

  function noteFailure(address: string): void {
    const entry = loginFailures.get(address);
    if (entry === undefined || monotonicMs() - entry.sinceMs > LOGIN_FAILURE_WINDOW_MS) {
      if (loginFailures.size > 10_000) loginFailures.clear();
      loginFailures.set(address, { count: 1, sinceMs: monotonicMs() });
    } else entry.count += 1;
  }

  async function authenticate(client: Client, username: string | undefined, password: Buffer | undefined): Promise<Identity> {
    const address = remoteAddress(client);
    const clientId = client.id;
    const socket = client.conn as Partial<TLSSocket>;
    // A verified client certificate is the identity; the CONNECT username is not trusted over it.
    if (socket.encrypted === true && socket.authorized === true && typeof socket.getPeerCertificate === 'function') {
      const commonName = socket.getPeerCertificate().subject?.CN;
      const deviceId = Array.isArray(commonName) ? commonName[0] : commonName;
      if (deviceId === undefined || deviceId === '') throw authError(NOT_AUTHORIZED, 'client certificate has no CN');
      if (clientId !== deviceId) throw authError(IDENTIFIER_REJECTED, `client id "${clientId}" must equal the certificate CN "${deviceId}"`);
      return { kind: 'device', deviceId };
    }
    if (username === undefined || username === '') {
      if (!options.allowAnonymous)
        throw authError(NOT_AUTHORIZED, 'anonymous access is off (mqtt.allow_anonymous: false); connect with a username and password');
      // A listed device's client id is its identity: an anonymous client taking it could publish as the device
      // and take over its session.
      if (devices.has(clientId) || clients.has(clientId)) {
        throw authError(NOT_AUTHORIZED, `client id "${clientId}" belongs to a listed device or account; connect with its username and password`);
      }
      return { kind: 'anonymous', deviceId: clientId };
    }
    if (tooManyFailures(address)) throw authError(NOT_AUTHORIZED, `too many failed logins from ${address}; wait a minute`);
    const deviceHash = devices.get(username);
    const account = clients.get(username);
    const hash = deviceHash ?? account?.passwordHash;
    if (hash === undefined || password === undefined || !(await checkPassword(username, password.toString('utf8'), hash))) {
      noteFailure(address);
      throw authError(BAD_USERNAME_OR_PASSWORD, `wrong username or password for "${username}"`);
    }
    if (deviceHash !== undefined) {
      // The client id is the device's identity on the broker: binding it stops one device from taking over another's session.
      if (clientId !== username) throw authError(IDENTIFIER_REJECTED, `device "${username}" must connect with client id "${username}", not "${clientId}"`);
      return { kind: 'device', deviceId: username };
    }
    if (account === undefined) throw authError(NOT_AUTHORIZED, `unknown account "${username}"`);
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
      reject('mqtt', decision.reason, subject, `publish refused: ${decision.detail}`, { topic: packet.topic.slice(0, 256) });
      throw new Error(decision.detail);
    }
    const payload = packet.payload as Buffer;
    if (payload.length > options.maxPayloadBytes) {
      reject('mqtt', 'oversize', subject, `publish refused: payload of ${payload.length} bytes exceeds mqtt.max_payload_bytes (${options.maxPayloadBytes})`);
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
        meta: {},
      },
    ]);
    // QoS 0 has no acknowledgement to withhold: stored best effort, relayed at once.
    if (packet.qos === 0) {
      void committed.then((result) => {
        if (!result.ok) reject('mqtt', result.reason, subject, `QoS 0 publish not stored: ${result.message}`);
      });
      return;
    }
    const result = await committed;
    if (!result.ok) {
      reject('mqtt', result.reason, subject, `publish not acknowledged: ${result.message}`);
      throw new Error(result.message);
    }
  }

  function handleConnection(socket: Socket): void {
    if (stopping) {
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.setNoDelay(true);
    broker?.handle(socket);
    // After aedes' 'readable' listener: added before it, a 'data' listener would switch the socket to flowing mode.
    guardSocket(socket, options.maxPayloadBytes + PACKET_OVERHEAD_BYTES, (declared) => {
      metrics.ingressRejected.inc({ source: 'mqtt', reason: 'oversize' });
      deps.onReject?.('mqtt', 'oversize', `${socket.remoteAddress}: packet of ${declared} bytes exceeds mqtt.max_payload_bytes; connection closed`);
      if (once.shouldLog(`oversize:${socket.remoteAddress}`)) {
        log.warn(
          { reason: 'oversize', address: socket.remoteAddress, declaredBytes: declared },
          'connection closed: packet larger than mqtt.max_payload_bytes allows',
        );
      }
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
        keepaliveLimit: options.keepaliveLimitS,
        maxClientsIdLength: 128,
        authenticate(client, username, password, done) {
          authenticate(client, username, password).then(
            (identity) => {
              identities.set(client, identity);
              done(null, true);
            },
            (error: AuthenticateError) => {
              refuseConnection(
                error.returnCode === BAD_USERNAME_OR_PASSWORD ? 'bad-credentials' : 'not-authorized',
                username ?? client.id,
                `connection refused: ${error.message}`,
              );
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
          if (identity === undefined || !canSubscribe(identity, subscription.topic)) {
            reject('mqtt', 'not-authorized', client.id, `subscribe refused: ${client.id} may not subscribe to ${subscription.topic}`);
            // A null subscription answers SUBACK 0x80 (failure) [MQTT-3.9.3] and keeps the connection.
            done(null, null);
            return;
          }
          done(null, subscription);
        },
      });
      broker.on('client', () => metrics.mqttConnectedClients.inc());
      broker.on('clientDisconnect', () => metrics.mqttConnectedClients.dec());
      broker.on('clientError', (client, error) => log.debug({ client: client.id, err: error }, 'client error'));
      broker.on('connectionError', (client, error) => log.debug({ client: client.id, err: error }, 'connection error'));

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
