// The MQTT broker's sockets: a plain TCP listener and, when configured, a TLS one (optionally requiring client
// certificates, checked against a CRL). Before a socket reaches aedes it passes the limits on connections in
// total and per source address; once it does, packet-size-guard.ts caps the bytes of unfinished packets.
import { readFileSync } from 'node:fs';
import { type AddressInfo, type Server, type Socket, createServer } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { Logger } from '../../core/log.ts';
import type { Rejections } from '../rejections.ts';
import type { MqttIngressOptions } from './broker.ts';
import { createHeldBytesBudget, guardSocket } from './packet-size-guard.ts';

export type ListenerOptions = Pick<
  MqttIngressOptions,
  'host' | 'port' | 'tls' | 'maxConnections' | 'maxConnectionsPerAddress' | 'maxHeldBytes' | 'maxPayloadBytes'
>;

/** Counts a refused or closed connection in iotgw_mqtt_connections_refused_total and logs it once per subject and reason. */
export type RefuseConnection = (reason: string, subject: string, message: string) => void;

export interface ListenerDeps {
  readonly log: Logger;
  readonly rejections: Rejections;
  readonly refuseConnection: RefuseConnection;
  /** Hands an admitted socket to the broker. */
  readonly handle: (socket: Socket) => void;
}

export interface MqttListeners {
  /** Listens on TCP, then on TLS when configured; rejects naming the address it could not bind. */
  listen(): Promise<void>;
  /** Refuses new sockets and closes the listeners; resolves once they have closed (after their connections end). */
  close(): Promise<void>;
  /** Destroys the sockets still open: connections that never completed CONNECT, which aedes does not know. */
  destroySockets(): void;
  isListening(): boolean;
  /** Bound addresses, known after listen (port 0 picks a free port). */
  address(): { readonly tcp: AddressInfo; readonly tls: AddressInfo | null };
}

/** Topic + headers on top of the payload; packets beyond payload + this are cut off at the socket. */
const PACKET_OVERHEAD_BYTES = 65_536 + 16;

export function createListeners(options: ListenerOptions, deps: ListenerDeps): MqttListeners {
  const { log, rejections, refuseConnection } = deps;
  const heldBytes = createHeldBytesBudget(options.maxHeldBytes);
  /** Live connections per source address (entries exist only while a connection does). */
  const connectionsByAddress = new Map<string, number>();
  const sockets = new Set<Socket>();
  let tcpServer: Server | null = null;
  let tlsServer: Server | null = null;
  let closing = false;

  function handleConnection(socket: Socket): void {
    if (closing) {
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
    deps.handle(socket);
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

  function listenOn(server: Server, port: number): Promise<void> {
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
    async listen() {
      tcpServer = createServer(handleConnection);
      configureServer(tcpServer);
      await listenOn(tcpServer, options.port);

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
        await listenOn(tlsServer, tls.port);
      }
    },

    async close() {
      closing = true;
      const servers = [tcpServer, tlsServer].filter((server): server is Server => server !== null);
      await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    },

    destroySockets() {
      for (const socket of sockets) socket.destroy();
    },

    isListening() {
      return tcpServer?.listening === true;
    },

    address() {
      if (tcpServer === null) throw new Error('MQTT ingress not started');
      return { tcp: tcpServer.address() as AddressInfo, tls: tlsServer === null ? null : (tlsServer.address() as AddressInfo) };
    },
  };
}
