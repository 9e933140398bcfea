// One simulated device's MQTT 3.1.1 connection to the gateway's broker. mqtt.js owns the connection
// (CONNECT, keepalive, reconnect, TLS, DISCONNECT) and answers the gateway's QoS 1 commands with PUBACK;
// readings, state reports and the SUBSCRIBE bypass its publish() and subscribe() and are written as raw
// packets (see `write`), so the fleet's ledger is the only copy of what is outstanding. What the device does
// with the events (re-send, give up, act on a command) is firmware/mqtt-firmware.ts's business.
import { connect } from 'mqtt';
import type { IClientOptions, MqttClient } from 'mqtt';

export interface MqttDeviceConnectionOptions {
  /** Broker URL: mqtt://host:1883, mqtts://host:8883 (tcp:// and tls:// too). */
  readonly url: string;
  readonly clientId: string;
  /** If set, connects with username = clientId and this password. */
  readonly password?: string;
  /** Base reconnect delay; +-25 % jitter per device so a fleet does not reconnect in lockstep. */
  readonly reconnectPeriodMs: number;
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

/** What the connection reports; nothing is reported once `end` was called. */
export interface MqttDeviceEvents {
  connected(): void;
  closed(): void;
  puback(packetId: number | undefined): void;
  /** The SUBACK of a raw SUBSCRIBE: one return code per filter, the granted QoS or 0x80 [MQTT-3.9.3]. */
  suback(packetId: number | undefined, granted: readonly number[]): void;
  /**
   * A PUBLISH from the broker (a command). Given only by a device that takes commands: without it nothing
   * listens for messages. mqtt.js sends the PUBACK (QoS 1) once this returns, so a device that acts here
   * has acted before the gateway hears the command was delivered.
   */
  message?(topic: string, payload: Buffer): void;
  /**
   * CONNACK refused [MQTT-3.2.2.3]. `retrying` for return code 3 (server unavailable, temporary): a
   * reconnect follows after the reconnect period. The other codes (bad password, not authorized) need a person.
   */
  refused(message: string, retrying: boolean): void;
  /** Any other connection error, by its code (ECONNREFUSED) or message. */
  failed(error: string): void;
}

export interface MqttDeviceConnection {
  /**
   * Writes a PUBLISH (or a SUBSCRIBE) straight to the socket. Through client.publish() mqtt.js clones each
   * packet into its outgoing store, writes it in six small chunks and logs ~30 times; at 1,000 devices that
   * was the simulator's main CPU cost. Its store would also re-send unacked QoS 1 publishes by itself after a
   * reconnect, even with clean: true, on top of the firmware's own re-send. Without a socket it is dropped
   * (the firmware re-sends after the next connect).
   */
  write(packet: Buffer, written?: (error?: Error | null) => void): void;
  /** Resolves when the socket is closed. Graceful (DISCONNECT) only when `online`. Idempotent. */
  end(online: boolean): Promise<void>;
  /** Destroys a socket still open (a peer that stopped reading): no handle outlives the run. */
  destroy(): void;
}

const CONNECTION_REFUSED_SERVER_UNAVAILABLE = 3;
const SUBACK_FAILURE = 0x80;
const noop = (): void => {};

export function connectMqttDevice(options: MqttDeviceConnectionOptions, events: MqttDeviceEvents): MqttDeviceConnection {
  const client = connect(options.url, clientOptions(options));
  let ending: Promise<void> | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  const live = (): boolean => ending === undefined;

  client.on('connect', () => {
    if (!live()) return;
    // Each reading leaves at once: with inflight > 1 Nagle would hold the 2nd..nth PUBLISH back until
    // the first is ACKed at TCP level, adding latency that belongs to neither device nor gateway.
    (client.stream as { setNoDelay?: (noDelay: boolean) => unknown }).setNoDelay?.(true);
    events.connected();
  });
  client.on('close', () => {
    if (live()) events.closed();
  });
  client.on('packetreceive', (packet) => {
    if (packet.cmd === 'puback') {
      if (live()) events.puback(packet.messageId);
    } else if (packet.cmd === 'suback' && live()) {
      // MQTT 3.1.1 return codes are numbers; mqtt-packet types them for MQTT 5 too.
      events.suback(
        packet.messageId,
        (packet.granted as readonly unknown[]).map((code) => (typeof code === 'number' ? code : SUBACK_FAILURE)),
      );
    }
  });
  const { message } = events;
  if (message !== undefined) {
    client.on('message', (topic, payload) => {
      if (live()) message(topic, payload);
    });
  }
  client.on('error', (err: Error & { code?: unknown }) => {
    if (!live()) return;
    const { code } = err;
    if (typeof code !== 'number' || !err.message.startsWith('Connection refused')) {
      events.failed(typeof code === 'string' ? code : err.message);
      return;
    }
    const retrying = code === CONNECTION_REFUSED_SERVER_UNAVAILABLE;
    if (retrying) {
      clearTimeout(retryTimer);
      retryTimer = setTimeout(() => {
        if (live()) client.reconnect();
      }, options.reconnectPeriodMs);
    }
    events.refused(err.message, retrying);
  });

  return {
    write(packet, written) {
      const stream = client.stream;
      if (stream === undefined) return;
      if (written === undefined) stream.write(packet);
      else stream.write(packet, written);
    },
    end(online) {
      clearTimeout(retryTimer);
      ending ??= endClient(client, online);
      return ending;
    },
    destroy() {
      client.stream?.destroy();
    },
  };
}

function clientOptions(options: MqttDeviceConnectionOptions): IClientOptions {
  return {
    clientId: options.clientId,
    protocolVersion: 4,
    clean: true,
    keepalive: 30,
    reconnectPeriod: Math.round(options.reconnectPeriodMs * (0.75 + Math.random() * 0.5)),
    connectTimeout: 10_000,
    // A QoS 0 reading taken while offline is dropped, as firmware without storage would.
    queueQoSZero: false,
    resubscribe: false,
    // PINGREQ every keepalive instead of re-arming a timer on every PUBACK (cheaper at high rates).
    reschedulePings: false,
    // mqtt.js logs through `debug` several times per packet; even disabled that costs CPU.
    log: noop,
    ...(options.password === undefined ? {} : { username: options.clientId, password: options.password }),
    ...(options.ca === undefined ? {} : { ca: options.ca }),
    ...(options.cert === undefined ? {} : { cert: options.cert }),
    ...(options.key === undefined ? {} : { key: options.key }),
  };
}

/**
 * Ends a client; resolves when its socket is closed. Graceful (DISCONNECT) only when it is online:
 * mqtt.js then waits for its own outstanding packets (none: readings bypass it) before disconnecting.
 */
function endClient(client: MqttClient, online: boolean): Promise<void> {
  return new Promise((resolve) => {
    const stream = client.stream as { closed?: boolean } | undefined;
    const graceful = online && client.connected && Object.keys(client.outgoing).length === 0;
    // mqtt.js calls back from the socket's 'close' event; do not depend on it for a socket long closed.
    if (stream === undefined || stream.closed === true) {
      client.end(true);
      resolve();
      return;
    }
    client.end(!graceful, () => resolve());
  });
}

/** Ends every connection, waits for them up to `timeoutMs`, then destroys what is still open. */
export async function endConnections(connections: readonly { connection: MqttDeviceConnection; online: boolean }[], timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
  });
  const ends = Promise.all(connections.map(({ connection, online }) => connection.end(online)));
  await Promise.race([ends, timeout]).finally(() => clearTimeout(timer));
  for (const { connection } of connections) connection.destroy();
}
