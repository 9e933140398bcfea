// The composition root: the only reader of Config. It maps config onto each component's options, wires
// buffer -> sink -> forwarder -> ingress, starts them in that order (sinks before sources) and stops
// them in reverse, so nothing is acknowledged that cannot be stored.
import type { AddressInfo } from 'node:net';
import type { RecordBuffer } from './buffer/record-buffer.ts';
import { createWorkerBuffer, type WorkerBuffer } from './buffer/worker-buffer.ts';
import { createForwarder, type Forwarder } from './forward/forwarder.ts';
import { createKafkaSink } from './forward/kafka-sink.ts';
import type { Sink } from './forward/sink.ts';
import { createAcceptBatcher } from './ingress/accept-batcher.ts';
import { regionByName } from './ingress/lorawan/region.ts';
import { deviceProfileFromEntry } from './ingress/lorawan-server/device-sessions.ts';
import { createLorawanNetwork, type LorawanNetwork, type LorawanNetworkDeps } from './ingress/lorawan-server/lorawan-network.ts';
import { createFormatterCache } from './codecs/javascript-formatter.ts';
import type { CodecChoice, PayloadCodec } from './codecs/payload-codec.ts';
import { createMqttIngress, type MqttIngress } from './ingress/mqtt-broker/broker.ts';
import { createSemtechUdpIngress, type SemtechUdpIngress } from './ingress/semtech-udp/semtech-udp-ingress.ts';
import { createSerialRadioIngress, type SerialRadioIngress } from './ingress/serial-radio/serial-radio-ingress.ts';
import { createTtnIngress, type TtnIngress, TTS_EVENTS } from './ingress/ttn/ttn-ingress.ts';
import type { Config } from './config/schema.ts';
import { createBufferWatermark } from './ops/buffer-watermark.ts';
import { type ClockTrust, createClockTrust } from './ops/clock.ts';
import { createOpsServer, type OpsServer, type ReadinessReport } from './ops/health.ts';
import { type Component, startAll, stopAll } from './core/lifecycle.ts';
import { createLogBudget, type Logger } from './core/log.ts';
import { createMetrics, type Metrics } from './core/metrics.ts';
import { createStatus, type KafkaLinkState, packageVersion } from './ops/status.ts';
import { createRouter } from './record/routes.ts';

export interface Gateway {
  start(): Promise<void>;
  /** Stops accepting, commits what is in flight, lets the forwarder finish its batch (bounded), closes. */
  stop(): Promise<void>;
  mqttAddress(): { readonly tcp: AddressInfo; readonly tls: AddressInfo | null };
  /** The Semtech UDP listener, null when lorawan.enabled is false. */
  lorawanAddress(): AddressInfo | null;
  httpAddress(): AddressInfo;
  readiness(): ReadinessReport;
  readonly metrics: Metrics;
}

export interface GatewayDeps {
  readonly log: Logger;
  /** Replaces the Kafka sink (benchmarks that measure ingest alone). */
  readonly sink?: Sink;
  /** Whether the wall clock is NTP-synchronized yet (default: timesyncd flag / timedatectl, re-checked every 5 s). */
  readonly clockTrust?: ClockTrust;
}

/** How long the forwarder's batch in flight may take at shutdown; well inside systemd's TimeoutStopSec. */
export const STOP_TIMEOUT_MS = 10_000;
/** A buffer thread with requests outstanding that answers nothing for this long is wedged: stop feeding the watchdog. */
const BUFFER_STALL_MS = 20_000;

export function createGateway(config: Config, deps: GatewayDeps): Gateway {
  const { log } = deps;
  const metrics = createMetrics();
  const router = createRouter(
    config.kafka.topic,
    config.kafka.routes.map((route) => ({ stream: route.stream, topic: route.topic, eventTimeField: route.event_time_field })),
  );
  const bufferLog = log.child({ component: 'buffer' });
  // One budget for every log line outside input can cause, whichever way it came in.
  const logBudget = createLogBudget(
    { linesPerMinute: config.log.max_input_warnings_per_minute, burst: Math.max(10, config.log.max_input_warnings_per_minute / 2) },
    { log: log.child({ component: 'log' }), onSuppressed: () => metrics.logLinesSuppressed.inc() },
  );
  // Payload codecs by configuration choice, for every ingress that decodes (LoRaWAN devices, TTN, serial raw frames).
  // A javascript formatter is compiled here, once per file; a broken one throws a ConfigError naming the file.
  const formatterCache = createFormatterCache(
    { timeoutMs: config.formatters.timeout_ms, maxOutputBytes: config.formatters.max_output_bytes },
    { log, metrics },
  );
  const { codecFor } = formatterCache;

  let buffer: WorkerBuffer | null = null;
  const requireBuffer = (): RecordBuffer => {
    if (buffer === null) throw new Error('buffer not open');
    return buffer;
  };
  // The buffer is opened in start(), not here: constructors do no I/O.
  const lazyBuffer: RecordBuffer = {
    append: (groups, state) => requireBuffer().append(groups, state),
    readState: (scope) => requireBuffer().readState(scope),
    lease: (max, bytes) => requireBuffer().lease(max, bytes),
    ack: (seqs) => requireBuffer().ack(seqs),
    release: (seqs) => requireBuffer().release(seqs),
    deadLetter: (seqs, reason) => requireBuffer().deadLetter(seqs, reason),
    stats: () => requireBuffer().stats(),
    close: async () => buffer?.close(),
  };
  let dropEpisodeLogged = false;
  const bufferComponent: Component = {
    name: 'buffer',
    async start() {
      buffer = await createWorkerBuffer(
        {
          path: config.buffer.path,
          maxRecords: config.buffer.max_records,
          maxBytes: config.buffer.max_bytes,
          whenFull: config.buffer.when_full,
        },
        {
          onDrop(records) {
            metrics.bufferDropped.inc(records);
            if (!dropEpisodeLogged) {
              dropEpisodeLogged = true;
              bufferLog.warn(
                { dropped: records },
                'buffer full: deleting the oldest buffered records (buffer.when_full: drop_oldest); see iotgw_buffer_dropped_total',
              );
            }
          },
          onFatal(error) {
            // Nothing can be stored any more: exit and let systemd restart us on the intact file.
            bufferLog.fatal({ err: error }, 'buffer thread died');
            exitOnFatal(error);
          },
        },
      );
      const stats = buffer.stats();
      bufferLog.info(
        { path: config.buffer.path, ...buffer.durability, depthRecords: stats.depthRecords, deadLetters: stats.deadLetters },
        stats.depthRecords > 0 ? `buffer open: ${stats.depthRecords} records from before the restart will be forwarded` : 'buffer open',
      );
    },
    async stop() {
      await buffer?.close();
      buffer = null;
    },
    health: () => {
      const problem = buffer === null ? 'buffer closed' : buffer.problem(BUFFER_STALL_MS);
      return problem === null ? { status: 'ok' } : { status: 'down', detail: problem };
    },
  };

  const sink =
    deps.sink ??
    createKafkaSink(
      {
        brokers: config.kafka.brokers,
        clientId: config.kafka.client_id,
        gatewayId: config.gateway_id,
        compression: config.kafka.compression,
        requestTimeoutMs: config.kafka.request_timeout_ms,
        connectionTimeoutMs: config.kafka.connection_timeout_ms,
        tls: config.kafka.tls.enabled
          ? {
              caFile: config.kafka.tls.ca_file,
              certFile: config.kafka.tls.cert_file,
              keyFile: config.kafka.tls.key_file,
            }
          : null,
        sasl:
          config.kafka.sasl.mechanism === 'none'
            ? null
            : { mechanism: config.kafka.sasl.mechanism, username: config.kafka.sasl.username, password: config.kafka.sasl.password },
      },
      { router, log, metrics },
    );

  const forwarder: Forwarder = createForwarder(
    {
      batchMaxRecords: config.kafka.batch_max_records,
      batchMaxBytes: config.kafka.batch_max_bytes,
      retryInitialMs: config.kafka.retry_initial_ms,
      retryMaxMs: config.kafka.retry_max_ms,
      stopTimeoutMs: STOP_TIMEOUT_MS,
    },
    { buffer: lazyBuffer, sink, log, metrics, onFatal: exitOnFatal },
  );

  const batcher = createAcceptBatcher(
    { commitIntervalMs: config.buffer.commit_interval_ms, commitMaxRecords: config.buffer.commit_max_records },
    { buffer: lazyBuffer, log, metrics },
  );
  // Before NTP sync the received-at time may be far off (no RTC on a Pi): say so in a header on each record.
  const clockTrust = deps.clockTrust ?? createClockTrust({ recheckMs: 5_000 }, { log });
  const kafkaLink = (): KafkaLinkState => {
    const state = forwarder.state();
    return state === 'up' ? 'up' : state === 'down' ? 'buffering' : 'starting';
  };
  // The status page's model: fed one LRU update per accepted record and every counted rejection. The ways in
  // are built below (they report rejections to it), so it reads them through a closure, only once started.
  const status = createStatus(
    { gatewayId: config.gateway_id, version: packageVersion(), maxRecords: config.buffer.max_records, maxBytes: config.buffer.max_bytes },
    { metrics, live: () => ({ kafka: kafkaLink(), buffer: buffer?.stats() ?? null }), waysIn: () => waysIn },
  );
  const accept: typeof batcher.accept = async (records, state) => {
    const marked = clockTrust.isTrusted() ? records : records.map((record) => ({ ...record, meta: { ...record.meta, clock: 'unsynchronized' } }));
    const result = await batcher.accept(marked, state);
    if (result.ok) {
      forwarder.notify();
      status.noteAccepted(records);
    }
    return result;
  };
  // Stopping ingress must also close the batcher so that nothing accepted after it is left uncommitted.
  const acceptComponent: Component = {
    name: 'ingress.commit',
    start: async () => undefined,
    stop: () => batcher.close(),
    health: () => ({ status: 'ok' }),
  };

  const { mqtt } = config;
  const mqttIngress: MqttIngress = createMqttIngress(
    {
      host: mqtt.host,
      port: mqtt.port,
      allowAnonymous: mqtt.allow_anonymous,
      maxPayloadBytes: mqtt.max_payload_bytes,
      maxConnections: mqtt.max_connections,
      maxConnectionsPerAddress: mqtt.max_connections_per_address,
      maxHeldBytes: mqtt.max_held_bytes,
      persistence: {
        maxRetainedMessages: mqtt.max_retained_messages,
        maxRetainedBytes: mqtt.max_retained_bytes,
        maxSessions: mqtt.max_sessions,
        maxQueuedPerClient: mqtt.max_queued_messages_per_client,
        maxQueuedBytes: mqtt.max_queued_bytes,
      },
      connectTimeoutMs: mqtt.connect_timeout_ms,
      keepaliveLimitS: mqtt.keepalive_limit_s,
      rejectLogIntervalMs: mqtt.reject_log_interval_s * 1000,
      devices: mqtt.devices.map((device) => ({ id: device.id, passwordHash: device.password_hash })),
      clients: mqtt.clients.map((client) => ({
        username: client.username,
        passwordHash: client.password_hash,
        publish: client.publish,
        subscribe: client.subscribe,
      })),
      tls:
        mqtt.tls.cert_file === ''
          ? null
          : {
              port: mqtt.tls.port,
              certFile: mqtt.tls.cert_file,
              keyFile: mqtt.tls.key_file,
              caFile: mqtt.tls.ca_file,
              crlFile: mqtt.tls.crl_file,
              requireClientCert: mqtt.tls.require_client_cert,
            },
    },
    { accept, router, log, metrics, onReject: status.noteRejection, logBudget },
  );

  const watermark = createBufferWatermark({ maxRecords: config.buffer.max_records, maxBytes: config.buffer.max_bytes }, log.child({ component: 'buffer' }));
  let watermarkTimer: NodeJS.Timeout | null = null;

  const lorawanNetwork: LorawanNetwork | null = config.lorawan.enabled
    ? createLorawanNetworkFromConfig(config, {
        accept,
        loadState: (scope) => lazyBuffer.readState(scope),
        codecFor,
        log,
        metrics,
        onReject: status.noteRejection,
        logBudget,
      })
    : null;
  const lorawanIngress: SemtechUdpIngress | null =
    lorawanNetwork === null
      ? null
      : createSemtechUdpIngress(
          {
            host: config.lorawan.udp.host,
            port: config.lorawan.udp.port,
            gatewayStatusStream: config.lorawan.gateway_status_stream === '' ? null : config.lorawan.gateway_status_stream,
            allowedGateways: config.lorawan.gateways.length === 0 ? null : new Map(config.lorawan.gateways.map((gateway) => [gateway.eui, gateway.addresses])),
            maxGateways: config.lorawan.max_gateways,
            maxDatagramsPerSecondPerSource: config.lorawan.udp.max_datagrams_per_second,
            rejectLogIntervalMs: config.lorawan.reject_log_interval_s * 1000,
          },
          { network: lorawanNetwork, accept, log, metrics, onReject: status.noteRejection, logBudget },
        );

  function refreshMetrics(): void {
    if (buffer === null) return;
    const stats = buffer.stats();
    metrics.bufferDepthRecords.set(stats.depthRecords);
    metrics.bufferDepthBytes.set(stats.depthBytes);
    metrics.bufferOldestAgeSeconds.set(stats.oldestReceivedAtMs === null ? 0 : Math.max(0, (Date.now() - stats.oldestReceivedAtMs) / 1000));
    metrics.bufferDeadLetters.set(stats.deadLetters);
    const link = kafkaLink();
    for (const state of ['up', 'buffering', 'starting'] as const) metrics.forwarderState.set({ state }, state === link ? 1 : 0);
    watermark.observe(stats);
  }

  function readiness(): ReadinessReport {
    const components = Object.fromEntries(ordered.map((component) => [component.name, component.health()]));
    const stats = buffer?.stats();
    const state = forwarder.state();
    return {
      ready: mqttIngress.health().status === 'ok' && (lorawanIngress === null || lorawanIngress.health().status === 'ok') && buffer !== null,
      kafka: state === 'up' ? 'up' : state === 'down' ? 'buffering' : 'starting',
      components,
      buffer: {
        depthRecords: stats?.depthRecords ?? 0,
        depthBytes: stats?.depthBytes ?? 0,
        oldestAgeSeconds: stats?.oldestReceivedAtMs == null ? 0 : Math.max(0, Math.round((Date.now() - stats.oldestReceivedAtMs) / 1000)),
      },
    };
  }

  const { auth } = config.http;
  const ops: OpsServer = createOpsServer(
    {
      host: config.http.host,
      port: config.http.port,
      auth: auth.username === '' ? null : { username: auth.username, passwordFile: auth.password_file },
      allowedHosts: config.http.allowed_hosts,
    },
    { metrics, log, refreshMetrics, readiness, status: () => status.snapshot() },
  );

  const ttnIngresses: readonly TtnIngress[] = config.ttn.enabled
    ? createTtnIngresses(config, { accept, buffer: lazyBuffer, codecFor, log, metrics, onReject: status.noteRejection, logBudget })
    : [];

  // Not part of readiness: a serial radio is one more way in, and an unplugged adapter should not make a load
  // balancer or systemd give up on MQTT and LoRaWAN traffic that still flows. Its own health (down, with what
  // to check) is in /readyz's components and iotgw_serial_port_open.
  const serialIngress: SerialRadioIngress | null = config.serial.enabled
    ? createSerialRadioIngressFromConfig(config, { accept, lorawanNetwork, codecFor, log, metrics, onReject: status.noteRejection, logBudget })
    : null;

  // The ways in, as the status page lists them (lorawan.network is not one: it decodes what UDP and serial hear).
  const waysIn: readonly Component[] = [
    mqttIngress,
    ...(lorawanIngress === null ? [] : [lorawanIngress]),
    ...(serialIngress === null ? [] : [serialIngress]),
    ...ttnIngresses,
  ];
  // Start order: storage, then the way out, then the LoRaWAN network its radio paths feed, then the ways in.
  // Stop runs in reverse.
  const ordered: readonly Component[] = [
    bufferComponent,
    sink,
    forwarder,
    status,
    ops,
    acceptComponent,
    ...(lorawanNetwork === null ? [] : [lorawanNetwork]),
    ...waysIn,
  ];
  let started = false;

  return {
    metrics,
    async start() {
      await clockTrust.start();
      await startAll(ordered);
      started = true;
      watermarkTimer = setInterval(refreshMetrics, 5_000);
      watermarkTimer.unref();
      log.info({ gatewayId: config.gateway_id, kafka: config.kafka.brokers, topic: config.kafka.topic }, 'iotgw started');
    },
    async stop() {
      clockTrust.stop();
      if (!started) return;
      started = false;
      if (watermarkTimer !== null) clearInterval(watermarkTimer);
      const failures = await stopAll(ordered);
      for (const failure of failures) log.error({ err: failure }, 'component failed to stop cleanly');
      log.info('iotgw stopped');
    },
    mqttAddress: () => mqttIngress.address(),
    lorawanAddress: () => lorawanIngress?.address() ?? null,
    httpAddress: () => ops.address(),
    readiness,
  };
}

/**
 * Ends the process after a bug or a dead buffer thread, already logged as fatal: thrown outside any promise, it
 * reaches the uncaughtException handler (cli.ts), which exits 1; systemd restarts the service on the intact buffer.
 */
function exitOnFatal(error: unknown): void {
  process.nextTick(() => {
    throw error;
  });
}

function createLorawanNetworkFromConfig(
  config: Config,
  deps: LorawanNetworkDeps & { readonly codecFor: (choice: CodecChoice) => PayloadCodec },
): LorawanNetwork {
  const { lorawan } = config;
  const region = regionByName(lorawan.region);
  if (region === null) throw new Error(`lorawan.region ${lorawan.region} is not implemented`);
  return createLorawanNetwork(
    {
      region,
      netId: lorawan.net_id,
      dedupWindowMs: lorawan.dedup_window_ms,
      maxFramesInFlight: lorawan.max_frames_in_flight,
      stream: lorawan.stream,
      rejectLogIntervalMs: lorawan.reject_log_interval_s * 1000,
      devices: lorawan.devices.map((entry) => deviceProfileFromEntry(entry, deps.codecFor)),
    },
    deps,
  );
}

/** One TTN ingress per TTS application (ttn.username, then ttn.applications): TTS allows one application per connection. */
function createTtnIngresses(
  config: Config,
  deps: Omit<Parameters<typeof createTtnIngress>[1], 'loadState'> & {
    readonly buffer: RecordBuffer;
    readonly codecFor: (choice: CodecChoice) => PayloadCodec;
  },
): TtnIngress[] {
  const { ttn } = config;
  const eventStreams = new Map(TTS_EVENTS.flatMap((event) => (ttn.events[event] ? [[event, ttn.events[event]] as const] : [])));
  const applications = [
    {
      username: ttn.username,
      password: ttn.password,
      password_file: ttn.password_file,
      topics: ttn.topics,
      codec: ttn.codec,
      formatter_file: ttn.formatter_file,
    },
    ...ttn.applications.map((application) => ({ ...application, topics: application.topics.length === 0 ? ttn.topics : application.topics })),
  ];
  const base = applications.length > 1 ? `iotgw-${config.gateway_id}` : null;
  return applications.map((application) =>
    createTtnIngress(
      {
        url: ttn.url,
        username: application.username,
        // The config loader has read password_file into password.
        password: application.password,
        caFile: ttn.ca_file === '' ? null : ttn.ca_file,
        // Stable across restarts; one per application (the whole username: app ids repeat across tenants),
        // or the server would drop one connection for the other.
        clientId: base === null ? `iotgw-${config.gateway_id}` : `${base}-${application.username}`,
        uplinkTopics: application.topics.map((topic) => topic.replaceAll('{username}', application.username)),
        stream: ttn.stream,
        eventStreams,
        codec: deps.codecFor(application),
        reconnectInitialMs: 1_000,
        reconnectMaxMs: ttn.reconnect_max_ms,
        maxMessageBytes: ttn.max_message_bytes,
        rejectLogIntervalMs: ttn.reject_log_interval_s * 1000,
      },
      { ...deps, loadState: (scope) => deps.buffer.readState(scope) },
    ),
  );
}

function createSerialRadioIngressFromConfig(
  config: Config,
  deps: Omit<Parameters<typeof createSerialRadioIngress>[1], 'rawCodec'> & { readonly codecFor: (choice: CodecChoice) => PayloadCodec },
): SerialRadioIngress {
  const { serial } = config;
  const { codecFor, ...rest } = deps;
  return createSerialRadioIngress(
    {
      path: serial.path,
      baudRate: serial.baud_rate,
      radioId: serial.radio_id,
      radio: {
        frequencyHz: serial.frequency_hz,
        spreadingFactor: serial.spreading_factor,
        bandwidthKhz: serial.bandwidth_khz,
        codingRate: serial.coding_rate,
        syncWord: serial.sync_word,
      },
      frames: serial.frames,
      raw: { stream: serial.raw.stream, keyOffset: serial.raw.key_offset, keyLength: serial.raw.key_length, keyPrefix: serial.raw.key_prefix },
      commandTimeoutMs: serial.command_timeout_ms,
      reopenInitialMs: 1_000,
      reopenMaxMs: serial.reopen_max_delay_ms,
      rejectLogIntervalMs: serial.reject_log_interval_s * 1000,
    },
    { ...rest, rawCodec: codecFor(serial.raw) },
  );
}
