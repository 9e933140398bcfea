// Who a client is, decided once at CONNECT: a verified TLS client certificate names a device; otherwise a
// username and password name a listed device or account (scrypt, rationed by login-guard.ts); otherwise, with
// mqtt.allow_anonymous, the client id stands in for the device id. Also refuses CONNECTs that break rules aedes
// does not check (empty client id without clean session, keepalive off or too long), each with a defined
// CONNACK return code and a reason for the log.
import type { TLSSocket } from 'node:tls';
import type { AuthenticateError, Client, ConnectPacket } from 'aedes';
import type { Metrics } from '../../core/metrics.ts';
import { isDeviceId } from '../../record/device-id.ts';
import { printable } from '../../shared/input-text.ts';
import type { MqttIngressOptions } from './broker.ts';
import type { Identity } from './device-acl.ts';
import { createLoginGuard } from './login-guard.ts';
import { verifyPassword } from './password-hash.ts';

export type AuthenticationOptions = Pick<MqttIngressOptions, 'allowAnonymous' | 'keepaliveLimitS' | 'devices' | 'clients'>;

export interface AuthenticationDeps {
  readonly metrics: Metrics;
  /** Monotonic clock for the failed-login window. */
  readonly monotonicMs: () => number;
}

export interface Authentication {
  /** Keeps what CONNECT said that aedes does not pass to authenticate (aedes' preConnect hook). */
  noteConnect(client: Client, packet: ConnectPacket): void;
  /** The client's identity; rejects with an AuthenticateError carrying the CONNACK return code and a reason. */
  authenticate(client: Client, username: string | undefined, password: Buffer | undefined): Promise<Identity>;
  /** A reload: logins from now on are checked against these; remembered passwords of changed or removed names are forgotten. */
  replaceAccounts(accounts: Pick<AuthenticationOptions, 'devices' | 'clients'>): void;
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

/** What CONNECT said that aedes does not pass to authenticate. */
interface ConnectFacts {
  readonly address: string;
  readonly keepaliveS: number;
  readonly emptyClientId: boolean;
  readonly clean: boolean;
}

/** A refused CONNECT: aedes answers CONNACK with returnCode; reason labels iotgw_mqtt_connections_refused_total. */
type ConnectRefusal = AuthenticateError & { readonly reason: string };

function authError(code: number, reason: string, message: string): ConnectRefusal {
  return Object.assign(new Error(message), { returnCode: code, reason }) as ConnectRefusal;
}

function remoteAddress(client: Client): string {
  return (client.conn as { remoteAddress?: string } | undefined)?.remoteAddress ?? 'unknown';
}

export function createAuthentication(options: AuthenticationOptions, deps: AuthenticationDeps): Authentication {
  const { metrics } = deps;
  const devices = new Map<string, string>();
  const clients = new Map<string, AuthenticationOptions['clients'][number]>();
  function setAccounts(accounts: Pick<AuthenticationOptions, 'devices' | 'clients'>): void {
    devices.clear();
    clients.clear();
    for (const device of accounts.devices) devices.set(device.id, device.passwordHash);
    for (const client of accounts.clients) clients.set(client.username, client);
  }
  setAccounts(options);
  /** username -> password that verified, so reconnects skip scrypt; keyed by configured names only, so bounded by the config. */
  const verified = new Map<string, string>();
  const loginGuard = createLoginGuard({
    maxFailuresPerAddress: MAX_LOGIN_FAILURES,
    windowMs: LOGIN_WINDOW_MS,
    maxConcurrentChecks: MAX_CONCURRENT_PASSWORD_CHECKS,
    maxQueuedChecks: MAX_QUEUED_PASSWORD_CHECKS,
    maxAddresses: 10_000,
    nowMs: deps.monotonicMs,
  });
  const connectFacts = new WeakMap<Client, ConnectFacts>();

  /** CONNECT rules aedes does not have, refused with a defined return code and a reason in the log. */
  function connectProblem(facts: ConnectFacts): ConnectRefusal | null {
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

  /** A verified client certificate is the identity; the CONNECT username is not trusted over it. */
  function certificateIdentity(socket: TLSSocket, clientId: string): Identity {
    const commonName = socket.getPeerCertificate().subject?.CN;
    const deviceId = Array.isArray(commonName) ? commonName[0] : commonName;
    if (deviceId === undefined || deviceId === '') throw authError(NOT_AUTHORIZED, 'not-authorized', 'client certificate has no CN');
    if (!isDeviceId(deviceId)) {
      throw authError(NOT_AUTHORIZED, 'not-authorized', `client certificate CN "${printable(deviceId, 64)}" is not a valid device id`);
    }
    if (clientId !== deviceId) throw authError(IDENTIFIER_REJECTED, 'identifier-rejected', `client id must equal the certificate CN "${deviceId}"`);
    return { kind: 'device', deviceId };
  }

  function anonymousIdentity(clientId: string): Identity {
    if (!options.allowAnonymous) {
      throw authError(NOT_AUTHORIZED, 'not-authorized', 'anonymous access is off (mqtt.allow_anonymous: false); connect with a username and password');
    }
    // A listed device's client id is its identity: an anonymous client taking it could publish as the device
    // and take over its session. An anonymous client id is a device id in records and topics: same rule.
    if (devices.has(clientId) || clients.has(clientId)) {
      throw authError(NOT_AUTHORIZED, 'not-authorized', 'this client id belongs to a listed device or account; connect with its username and password');
    }
    if (!isDeviceId(clientId)) {
      throw authError(IDENTIFIER_REJECTED, 'identifier-rejected', 'an anonymous client id must be a valid device id (letters, digits, . _ : -)');
    }
    return { kind: 'anonymous', deviceId: clientId };
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
    // A reload during the check may have changed or removed the name's password: only the current one is remembered.
    if (ok && configuredHash(username) === hash) verified.set(username, password);
    return ok;
  }

  function configuredHash(username: string): string | undefined {
    return devices.get(username) ?? clients.get(username)?.passwordHash;
  }

  async function passwordIdentity(clientId: string, username: string, password: Buffer | undefined, address: string): Promise<Identity> {
    if (loginGuard.isThrottled(address)) throw authError(NOT_AUTHORIZED, 'throttled', `too many failed logins from ${address}; wait a minute`);
    const hash = configuredHash(username);
    if (hash === undefined || password === undefined) {
      loginGuard.noteFailure(address); // an unknown name costs an attempt too, without hashing
      throw authError(BAD_USERNAME_OR_PASSWORD, 'bad-credentials', 'wrong username or password');
    }
    if (!(await checkPassword(username, password.toString('utf8'), hash, address))) {
      throw authError(BAD_USERNAME_OR_PASSWORD, 'bad-credentials', 'wrong username or password');
    }
    // A reload may have come while the password was checked (scrypt, perhaps queued behind other logins): the
    // login stands only if the checked hash is still the name's, and it takes the grant configured now.
    if (configuredHash(username) !== hash) {
      throw authError(BAD_USERNAME_OR_PASSWORD, 'bad-credentials', 'the password was changed or the name removed while it was checked; connect again');
    }
    return credentialIdentity(clientId, username);
  }

  /** The identity of a name whose password just verified against its configured hash. */
  function credentialIdentity(clientId: string, username: string): Identity {
    const deviceHash = devices.get(username);
    const account = clients.get(username);
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

  return {
    noteConnect(client, packet) {
      connectFacts.set(client, {
        address: remoteAddress(client),
        keepaliveS: packet.keepalive ?? 0,
        emptyClientId: (packet.clientId ?? '') === '',
        clean: packet.clean !== false,
      });
    },

    replaceAccounts(accounts) {
      const hashBefore = (name: string): string | undefined => devices.get(name) ?? clients.get(name)?.passwordHash;
      const before = new Map([...verified.keys()].map((name) => [name, hashBefore(name)] as const));
      setAccounts(accounts);
      for (const [name, hash] of before) if (hashBefore(name) !== hash) verified.delete(name);
    },

    async authenticate(client, username, password) {
      const facts = connectFacts.get(client);
      const address = facts?.address ?? remoteAddress(client);
      const problem = facts === undefined ? null : connectProblem(facts);
      if (problem !== null) throw problem;
      const socket = client.conn as Partial<TLSSocket>;
      if (socket.encrypted === true && socket.authorized === true && typeof socket.getPeerCertificate === 'function') {
        return certificateIdentity(socket as TLSSocket, client.id);
      }
      if (username === undefined || username === '') return anonymousIdentity(client.id);
      return passwordIdentity(client.id, username, password, address);
    },
  };
}
