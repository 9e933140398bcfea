// The composition root: the only reader of Config, and wiring only. Each component's options come from a
// pure mapper beside it (*-config.ts); here they are created, connected, started in order (storage, the way
// out, then the ways in: sinks before sources) and stopped in reverse, so nothing is acknowledged that
// cannot be stored.
import type { AddressInfo } from 'node:net';
import { bufferOptionsFromConfig } from './buffer/buffer-config.ts';
import { createCommandDelivery } from './commands/command-delivery.ts';
import { createCommandIntake } from './commands/command-intake.ts';
import { createCommandQueue } from './commands/command-queue.ts';
import { createLorawanCommandPath } from './commands/lorawan-command-path.ts';
import { createMqttCommandPath } from './commands/mqtt-command-path.ts';
import { createTtnCommandPath, TTN_COMMAND_PATH_DEFAULTS } from './commands/ttn-command-path.ts';
import {
  commandDeliveryOptionsFromConfig,
  commandIntakeOptionsFromConfig,
  commandQueueOptionsFromConfig,
  lorawanCommandPathOptionsFromConfig,
} from './commands/commands-config.ts';
import { createWorkerBuffer } from './buffer/worker-buffer.ts';
import { createFormatterCache } from './codecs/javascript-formatter.ts';
import { codecChoice } from './config/formatter-check.ts';
import type { Config } from './config/schema.ts';
import { type Component, startAll, stopAll } from './core/lifecycle.ts';
import { createLogBudget, type Logger } from './core/log.ts';
import { createMetrics, type Metrics } from './core/metrics.ts';
import { forwardingThreadOptionsFromConfig } from './forward/forward-config.ts';
import { createForwardingThread } from './forward/forwarding-thread.ts';
import { createAcceptBatcher } from './ingress/accept-batcher.ts';
import { lorawanNetworkOptionsFromConfig } from './ingress/lorawan-server/lorawan-config.ts';
import { createLorawanNetwork } from './ingress/lorawan-server/lorawan-network.ts';
import { createSessionBackup } from './ingress/lorawan-server/session-backup.ts';
import { sessionBackupDevicesFromConfig, sessionBackupOptionsFromConfig } from './ingress/lorawan-server/session-backup-config.ts';
import { createMqttIngress } from './ingress/mqtt-broker/broker.ts';
import { mqttIngressOptionsFromConfig } from './ingress/mqtt-broker/mqtt-config.ts';
import { semtechUdpOptionsFromConfig } from './ingress/semtech-udp/semtech-udp-config.ts';
import { createSemtechUdpIngress } from './ingress/semtech-udp/semtech-udp-ingress.ts';
import { serialRadioOptionsFromConfig } from './ingress/serial-radio/serial-config.ts';
import { createSerialRadioIngress } from './ingress/serial-radio/serial-radio-ingress.ts';
import { ttnIngressOptionsFromConfig } from './ingress/ttn/ttn-config.ts';
import { createTtnIngress } from './ingress/ttn/ttn-ingress.ts';
import { createActivity } from './ops/activity.ts';
import { createCommandsApi } from './ops/commands-api.ts';
import type { DeviceReload } from './ops/config-reload.ts';
import { createBufferGauges } from './ops/buffer-gauges.ts';
import { type ClockTrust, createClockTrust } from './ops/clock.ts';
import { createOpsServer, type ReadinessReport } from './ops/health.ts';
import { createReadiness } from './ops/readiness.ts';
import { createStatus, packageVersion } from './ops/status.ts';
import { createRouter } from './record/routes.ts';

export { STOP_TIMEOUT_MS } from './forward/forward-config.ts';

export interface Gateway {
  start(): Promise<void>;
  /** Stops accepting, commits what is in flight, lets the forwarder finish its batch (bounded), closes. */
  stop(): Promise<void>;
  mqttAddress(): { readonly tcp: AddressInfo; readonly tls: AddressInfo | null };
  /** The Semtech UDP listener, null when lorawan.enabled is false. */
  lorawanAddress(): AddressInfo | null;
  httpAddress(): AddressInfo;
  readiness(): ReadinessReport;
  /**
   * SIGHUP: applies the device lists of `next` (mqtt.devices, mqtt.clients, lorawan.devices with devices_file)
   * without dropping connections or frames in flight. Throws ConfigError (nothing applied) if a device's
   * formatter does not compile.
   */
  reloadDevices(next: Config): Promise<DeviceReload>;
  readonly metrics: Metrics;
}

export interface GatewayDeps {
  readonly log: Logger;
  /** Whether the wall clock is NTP-synchronized yet (default: timesyncd flag / timedatectl, re-checked every 5 s). */
  readonly clockTrust?: ClockTrust;
}

export function createGateway(config: Config, deps: GatewayDeps): Gateway {
  const { log } = deps;
  const metrics = createMetrics();
  const forwardingOptions = forwardingThreadOptionsFromConfig(config);
  const router = createRouter(forwardingOptions.defaultTopic, forwardingOptions.routes);
  // One budget for every log line outside input can cause, whichever way it came in.
  const perMinute = config.log.max_input_warnings_per_minute;
  const logBudget = createLogBudget(
    { linesPerMinute: perMinute, burst: Math.max(10, perMinute / 2) },
    { log: log.child({ component: 'log' }), onSuppressed: () => metrics.logLinesSuppressed.inc() },
  );
  // A javascript formatter is compiled once per file; a broken one throws a ConfigError naming the file.
  const { timeout_ms: timeoutMs, max_output_bytes: maxOutputBytes } = config.formatters;
  const { codecFor } = createFormatterCache({ timeoutMs, maxOutputBytes }, { log, metrics });
  const clockTrust = deps.clockTrust ?? createClockTrust({ recheckMs: 5_000 }, { log });

  // Storage and the way out: the forwarder and the Kafka client run on the buffer's thread, beside the store.
  const forwarding = createForwardingThread(forwardingOptions, { metrics, onFatal: exitOnFatal });
  const { forwarder, sink } = forwarding;
  const buffer = createWorkerBuffer(bufferOptionsFromConfig(config), { log, metrics, onFatal: exitOnFatal, companion: forwarding.companion });

  // The one door into the buffer, shared by every way in.
  const activity = createActivity();
  const { commit_interval_ms: commitIntervalMs, commit_max_records: commitMaxRecords } = config.buffer;
  const batcher = createAcceptBatcher(
    { commitIntervalMs, commitMaxRecords },
    { buffer, log, metrics, clock: clockTrust, onCommitted: [activity.noteAccepted] },
  );
  const { accept, acceptThen } = batcher;
  const ingressDeps = { accept, log, metrics, onReject: activity.noteRejection, logBudget };
  const loadState = (scope: string) => buffer.readState(scope);

  // The ways in. lorawan.network is not one: it decodes what the UDP and serial radio paths hear.
  const mqttIngress = createMqttIngress(mqttIngressOptionsFromConfig(config), { ...ingressDeps, acceptThen, router });
  const lorawanNetwork = config.lorawan.enabled
    ? createLorawanNetwork(lorawanNetworkOptionsFromConfig(config, codecFor), { ...ingressDeps, loadState, clockTrusted: () => clockTrust.isTrusted() })
    : null;
  // Its key file is read here: a missing or exposed key is a ConfigError before anything starts.
  const sessionBackupOptions = sessionBackupOptionsFromConfig(config);
  const sessionBackup = sessionBackupOptions === null ? null : createSessionBackup(sessionBackupOptions, { readState: loadState, log, metrics });
  const udpIngress = lorawanNetwork === null ? null : createSemtechUdpIngress(semtechUdpOptionsFromConfig(config), { ...ingressDeps, network: lorawanNetwork });
  const serialIngress = config.serial.enabled
    ? createSerialRadioIngress(serialRadioOptionsFromConfig(config), { ...ingressDeps, lorawanNetwork, rawCodec: codecFor(codecChoice(config.serial.raw)) })
    : null;
  const ttnIngresses = config.ttn.enabled
    ? ttnIngressOptionsFromConfig(config, codecFor).map((options) => createTtnIngress(options, { ...ingressDeps, loadState }))
    : [];
  const waysIn: readonly Component[] = [mqttIngress, ...present(udpIngress), ...present(serialIngress), ...ttnIngresses];

  // The way back: commands from Kafka, kept in the buffer's state until delivered, receipts as records.
  const commandQueue = config.commands.enabled ? createCommandQueue(commandQueueOptionsFromConfig(config), { accept, loadState, log, metrics }) : null;
  // One path per transport, the first that claims a device serves it. LoRaWAN commands go out through the
  // packet forwarders (none over a receive-only serial radio); TTN devices through TTS's downlink queue.
  const commandPaths =
    commandQueue === null
      ? []
      : [
          ...(lorawanNetwork === null || udpIngress === null
            ? []
            : [
                createLorawanCommandPath(lorawanCommandPathOptionsFromConfig(config), {
                  network: lorawanNetwork,
                  hasWaiting: (devEui) => commandQueue.head(devEui) !== undefined,
                }),
              ]),
          ...(ttnIngresses.length === 0
            ? []
            : [createTtnCommandPath(TTN_COMMAND_PATH_DEFAULTS, { links: ttnIngresses.map((ingress) => ingress.downlink), log })]),
          createMqttCommandPath({ topic: config.commands.mqtt_topic }, mqttIngress.downlink),
        ];
  const commandParts: readonly Component[] =
    commandQueue === null
      ? []
      : [
          createCommandDelivery(commandDeliveryOptionsFromConfig(config), { queue: commandQueue, paths: commandPaths, log }),
          createCommandIntake(commandIntakeOptionsFromConfig(config), { queue: commandQueue, log, metrics }),
        ];

  // Beside the flow: gauges, the status model, readiness and the ops endpoint.
  const link = () => forwarder.state();
  const { max_records: maxRecords, max_bytes: maxBytes } = config.buffer;
  const gauges = createBufferGauges({ maxRecords, maxBytes }, { buffer, link, metrics, log });
  const status = createStatus(
    { gatewayId: config.gateway_id, version: packageVersion(), maxRecords, maxBytes },
    // The way back is listed with the ways in: its intake is a link to Kafka like theirs to devices.
    {
      metrics,
      live: () => ({ kafka: link(), buffer: buffer.stats() }),
      waysIn: [...waysIn, ...commandParts],
      activity,
      ...(lorawanNetwork === null ? {} : { lorawan: () => lorawanNetwork.radioStatus() }),
    },
  );
  const storageAndWayOut = [buffer, sink, forwarder, gauges, status];
  const doorAndWaysIn = [batcher, ...present(lorawanNetwork), ...waysIn];
  // A serial radio or a TTN link is one more way in: an unplugged adapter must not make systemd or a load
  // balancer give up on MQTT and LoRaWAN traffic that still flows.
  const readiness = createReadiness({
    components: [...storageAndWayOut, ...doorAndWaysIn, ...commandParts],
    required: [buffer, mqttIngress, ...present(udpIngress)],
    buffer,
    link,
  });
  const { auth } = config.http;
  const ops = createOpsServer(
    {
      host: config.http.host,
      port: config.http.port,
      auth: auth.username === '' ? null : { username: auth.username, passwordFile: auth.password_file },
      allowedHosts: config.http.allowed_hosts,
    },
    {
      metrics,
      log,
      refreshMetrics: () => {
        gauges.refresh();
        lorawanNetwork?.refreshGauges();
      },
      readiness,
      status: () => status.snapshot(),
      ...(commandQueue === null ? {} : { commands: createCommandsApi(commandQueue) }),
    },
  );
  // Start order: storage, the way out, ops, the door, the LoRaWAN network its radio paths feed, the ways in,
  // then the way back (it delivers over the ways in).
  // The session backup reads committed state only: it starts last and stops first, while the buffer is open.
  const components: readonly Component[] = [...storageAndWayOut, ops, ...doorAndWaysIn, ...commandParts, ...present(sessionBackup)];
  let started = false;

  return {
    metrics,
    async start() {
      await clockTrust.start();
      await startAll(components);
      started = true;
      const lorawan = config.lorawan.enabled ? { region: config.lorawan.region, subBand: config.lorawan.sub_band, devices: lorawanNetwork?.deviceCount } : null;
      log.info({ gatewayId: config.gateway_id, kafka: config.kafka.brokers, topic: config.kafka.topic, lorawan }, 'iotgw started');
    },
    async stop() {
      clockTrust.stop();
      if (!started) return;
      started = false;
      const failures = await stopAll(components);
      for (const failure of failures) log.error({ err: failure }, 'component failed to stop cleanly');
      log.info('iotgw stopped');
    },
    async reloadDevices(next) {
      // Everything that can fail first (formatters compile here), so a bad reload applies nothing.
      const lorawanDevices = lorawanNetwork === null ? null : lorawanNetworkOptionsFromConfig(next, codecFor).devices;
      const { devices, clients } = mqttIngressOptionsFromConfig(next);
      const mqtt = mqttIngress.reloadAccounts({ devices, clients });
      const lorawan = lorawanNetwork === null || lorawanDevices === null ? null : await lorawanNetwork.reloadDevices(lorawanDevices);
      sessionBackup?.replaceDevices(sessionBackupDevicesFromConfig(next));
      return { mqtt, lorawan };
    },
    mqttAddress: () => mqttIngress.address(),
    lorawanAddress: () => udpIngress?.address() ?? null,
    httpAddress: () => ops.address(),
    readiness,
  };
}

function present<T>(component: T | null): T[] {
  return component === null ? [] : [component];
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
