// Prometheus metrics, registered on a Registry the composition root creates (never prom-client's global
// default, so tests and several gateways in one process do not collide). Names: iotgw_<component>_<thing>.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  readonly registry: Registry;
  readonly ingressAccepted: Counter<'source'>;
  readonly ingressRejected: Counter<'source' | 'reason'>;
  readonly mqttConnectedClients: Gauge;
  readonly mqttConnectionsRefused: Counter<'reason'>;
  /** scrypt checks of MQTT passwords, by result (a reconnect with a password that verified before needs none). */
  readonly mqttPasswordChecks: Counter<'result'>;
  /** Times a broker bound kept something from being stored: retained-limit, session-limit, queue-limit. */
  readonly mqttBrokerLimits: Counter<'limit'>;
  /** Log lines about refused input left out by log.max_input_warnings_per_minute. */
  readonly logLinesSuppressed: Counter;
  /** LoRaWAN MAC commands by direction (up/down), command and result. */
  readonly lorawanMacCommands: Counter<'direction' | 'command' | 'result'>;
  /** ADR decisions and their outcome: requested, applied, refused, unanswered. */
  readonly lorawanAdr: Counter<'result'>;
  /** LoRaWAN uplinks stored, by data rate index. */
  readonly lorawanUplinkDataRates: Counter<'dr'>;
  /** LoRaWAN devices by the data rate of their last uplink, and by the TX power index they confirmed (set at each scrape). */
  readonly lorawanDevicesByDataRate: Gauge<'dr'>;
  readonly lorawanDevicesByTxPower: Gauge<'index'>;
  /** Reloads of the device lists (SIGHUP), by result. */
  readonly configReloads: Counter<'result'>;
  readonly bufferDepthRecords: Gauge;
  readonly bufferDepthBytes: Gauge;
  readonly bufferOldestAgeSeconds: Gauge;
  readonly bufferDeadLetters: Gauge;
  readonly bufferDropped: Counter;
  readonly bufferCommits: Counter;
  readonly bufferCommitFailures: Counter<'code'>;
  readonly bufferCommitSeconds: Histogram;
  readonly bufferCommitRecords: Histogram;
  readonly kafkaSentRecords: Counter<'topic'>;
  readonly kafkaSendErrors: Counter<'code'>;
  readonly kafkaSendSeconds: Histogram;
  readonly kafkaDeadLettered: Counter<'reason'>;
  readonly forwarderUp: Gauge;
  /** 1 for the current Kafka link state (up | buffering | starting), 0 for the others: the /readyz kafka field. */
  readonly forwarderState: Gauge<'state'>;
  readonly lorawanJoins: Counter<'result'>;
  readonly lorawanDownlinks: Counter<'kind' | 'window' | 'result'>;
  readonly lorawanFrameGaps: Counter;
  readonly lorawanFCntResets: Counter;
  /** Frame-counter searches for ABP devices with no stored counter, by result (recovered, not-found, skipped, below-hint). */
  readonly lorawanFCntRecoveries: Counter<'result'>;
  /** MIC checks (one AES-CMAC each) spent by those searches: the CPU they cost. */
  readonly lorawanFCntRecoveryMicChecks: Counter;
  readonly lorawanMacOnlyFrames: Counter;
  readonly lorawanGateways: Gauge;
  readonly lorawanGatewayStat: Gauge<'gateway' | 'field'>;
  /** Periodic encrypted session backups (lorawan.session_backup) that failed, by reason (an errno code, read-state, previous-unreadable, would-lose-sessions). */
  readonly lorawanSessionBackupFailures: Counter<'reason'>;
  /** Unix time of the last session backup written; 0 until one is. */
  readonly lorawanSessionBackupLastSuccess: Gauge;
  /** 1 while the serial radio's port is open and its receiver armed, by port path. */
  readonly serialPortOpen: Gauge<'path'>;
  readonly serialPortReopens: Counter<'path'>;
  readonly serialRadioFrames: Counter<'kind'>;
  /** 1 while the MQTT connection to The Things Stack for the application is up. */
  readonly ttnConnected: Gauge<'application'>;
  readonly ttnReconnects: Counter<'application'>;
  readonly ttnMissedFrames: Counter<'application'>;
  /** Uplinks a javascript formatter did not decode, by codec (javascript:<file>) and kind of failure. */
  readonly formatterErrors: Counter<'codec' | 'kind'>;
  readonly ttnFCntResets: Counter<'application'>;
  /** Command receipts by status (accepted, sent, delivered, expired, failed, rejected, cancelled), and duplicates. */
  readonly commands: Counter<'status'>;
  /** Commands waiting for their device, by state (queued, sent). */
  readonly commandsWaiting: Gauge<'state'>;
  /** 1 while the command consumer is in its group and fetching. */
  readonly commandsConsumerUp: Gauge;
}

export function createMetrics(options: { readonly processMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'iotgw_' });
  const registers = [registry];
  return {
    registry,
    ingressAccepted: new Counter({
      name: 'iotgw_ingress_accepted_total',
      help: 'Records committed to the buffer, by ingress source',
      labelNames: ['source'],
      registers,
    }),
    ingressRejected: new Counter({
      name: 'iotgw_ingress_rejected_total',
      help: 'Input refused before anything was stored, by source and reason',
      labelNames: ['source', 'reason'],
      registers,
    }),
    mqttConnectedClients: new Gauge({ name: 'iotgw_mqtt_connected_clients', help: 'MQTT clients connected now', registers }),
    mqttPasswordChecks: new Counter({
      name: 'iotgw_mqtt_password_checks_total',
      help: 'scrypt checks of MQTT passwords, by result (ok | failed)',
      labelNames: ['result'],
      registers,
    }),
    mqttBrokerLimits: new Counter({
      name: 'iotgw_mqtt_broker_limits_total',
      help: 'Retained messages, persistent sessions or queued messages not kept because a broker bound was reached, by limit',
      labelNames: ['limit'],
      registers,
    }),
    logLinesSuppressed: new Counter({
      name: 'iotgw_log_lines_suppressed_total',
      help: 'Log lines about refused input left out to stay within log.max_input_warnings_per_minute',
      registers,
    }),
    lorawanMacCommands: new Counter({
      name: 'iotgw_lorawan_mac_commands_total',
      help: 'LoRaWAN MAC commands, by direction (up: from devices, down: sent to them), command (unknown/malformed: what could not be read) and result (handled, sent, refused, not-answered)',
      labelNames: ['direction', 'command', 'result'],
      registers,
    }),
    lorawanAdr: new Counter({
      name: 'iotgw_lorawan_adr_total',
      help: 'ADR: LinkADRReq requested (a better data rate, TX power or NbTrans), and what devices did with them: applied, refused, unanswered (no answer in the next uplink)',
      labelNames: ['result'],
      registers,
    }),
    lorawanUplinkDataRates: new Counter({
      name: 'iotgw_lorawan_uplinks_by_data_rate_total',
      help: 'LoRaWAN uplinks stored, by the data rate index they arrived at (ADR moves devices to higher ones: less airtime, longer batteries)',
      labelNames: ['dr'],
      registers,
    }),
    lorawanDevicesByDataRate: new Gauge({
      name: 'iotgw_lorawan_devices_by_data_rate',
      help: 'LoRaWAN devices by the data rate index of their last uplink (ADR moves them up)',
      labelNames: ['dr'],
      registers,
    }),
    lorawanDevicesByTxPower: new Gauge({
      name: 'iotgw_lorawan_devices_by_tx_power',
      help: 'LoRaWAN devices by the TXPower index they confirmed (0 = their maximum power; ADR lowers it where the link allows)',
      labelNames: ['index'],
      registers,
    }),
    configReloads: new Counter({
      name: 'iotgw_config_reloads_total',
      help: 'Reloads of the device lists on SIGHUP (systemctl reload iotgw), by result: applied, or refused (the new config is invalid; the running one stays)',
      labelNames: ['result'],
      registers,
    }),
    mqttConnectionsRefused: new Counter({
      name: 'iotgw_mqtt_connections_refused_total',
      help: 'MQTT connections refused, by reason',
      labelNames: ['reason'],
      registers,
    }),
    bufferDepthRecords: new Gauge({ name: 'iotgw_buffer_depth_records', help: 'Records waiting for Kafka', registers }),
    bufferDepthBytes: new Gauge({ name: 'iotgw_buffer_depth_bytes', help: 'Bytes of records waiting for Kafka', registers }),
    bufferOldestAgeSeconds: new Gauge({
      name: 'iotgw_buffer_oldest_age_seconds',
      help: 'Age of the oldest record waiting for Kafka (0 when empty)',
      registers,
    }),
    bufferDeadLetters: new Gauge({ name: 'iotgw_buffer_dead_letter_records', help: 'Records set aside as undeliverable', registers }),
    bufferDropped: new Counter({
      name: 'iotgw_buffer_dropped_total',
      help: 'Buffered records deleted by the drop_oldest policy before reaching Kafka',
      registers,
    }),
    bufferCommits: new Counter({ name: 'iotgw_buffer_commits_total', help: 'Group commits (one fsync each)', registers }),
    bufferCommitFailures: new Counter({
      name: 'iotgw_buffer_commit_failures_total',
      help: 'Group commits that failed (nothing of them was acknowledged), by error code',
      labelNames: ['code'],
      registers,
    }),
    bufferCommitSeconds: new Histogram({
      name: 'iotgw_buffer_commit_seconds',
      help: 'Duration of one group commit including fsync',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1],
      registers,
    }),
    bufferCommitRecords: new Histogram({
      name: 'iotgw_buffer_commit_records',
      help: 'Records per group commit',
      buckets: [1, 4, 16, 64, 256, 1024, 4096],
      registers,
    }),
    kafkaSentRecords: new Counter({
      name: 'iotgw_kafka_sent_records_total',
      help: 'Records acknowledged by Kafka (acks=all), by topic',
      labelNames: ['topic'],
      registers,
    }),
    kafkaSendErrors: new Counter({
      name: 'iotgw_kafka_send_errors_total',
      help: 'Failed produce batches, by error code',
      labelNames: ['code'],
      registers,
    }),
    kafkaSendSeconds: new Histogram({
      name: 'iotgw_kafka_send_seconds',
      help: 'Duration of one produce batch until acks=all',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30],
      registers,
    }),
    kafkaDeadLettered: new Counter({
      name: 'iotgw_kafka_dead_lettered_total',
      help: 'Records Kafka refused for good (kept in the dead_letters table), by reason',
      labelNames: ['reason'],
      registers,
    }),
    forwarderUp: new Gauge({ name: 'iotgw_forwarder_kafka_up', help: '1 while Kafka accepts records, 0 while buffering', registers }),
    lorawanJoins: new Counter({
      name: 'iotgw_lorawan_joins_total',
      help: 'OTAA join-requests by result (accepted, rejected, not-stored, accept-not-sent)',
      labelNames: ['result'],
      registers,
    }),
    lorawanDownlinks: new Counter({
      name: 'iotgw_lorawan_downlinks_total',
      help: 'LoRaWAN downlinks (join-accepts, ACKs, MAC commands, commands; Class A windows rx1/rx2 and Class C) by kind, window and result (sent, failed, no-route, too-large, duty-cycle)',
      labelNames: ['kind', 'window', 'result'],
      registers,
    }),
    lorawanFrameGaps: new Counter({
      name: 'iotgw_lorawan_missed_frames_total',
      help: 'Uplinks never heard, judged from jumps in the frame counters (each record carries its gap)',
      registers,
    }),
    lorawanFCntResets: new Counter({
      name: 'iotgw_lorawan_f_cnt_resets_total',
      help: 'Uplinks of resets_f_cnt devices whose frame counter started over (a reboot; each such record has iotgw.f_cnt_reset)',
      registers,
    }),
    lorawanFCntRecoveries: new Counter({
      name: 'iotgw_lorawan_f_cnt_recoveries_total',
      help: 'Searches for the frame counter of an ABP device with no stored counter whose MIC failed with upper bits 0, by result: recovered, not-found, skipped (lorawan.f_cnt_recovery_interval_s), below-hint (a replay under f_cnt_up_hint)',
      labelNames: ['result'],
      registers,
    }),
    lorawanFCntRecoveryMicChecks: new Counter({
      name: 'iotgw_lorawan_f_cnt_recovery_mic_checks_total',
      help: 'MIC checks (one AES-CMAC each) spent searching for frame counters; at most lorawan.f_cnt_recovery_max_tries per search',
      registers,
    }),
    lorawanMacOnlyFrames: new Counter({
      name: 'iotgw_lorawan_mac_only_frames_total',
      help: 'Valid uplinks without application payload (FPort 0 or none): counters advanced, no record',
      registers,
    }),
    lorawanGateways: new Gauge({ name: 'iotgw_lorawan_gateways', help: 'Packet forwarders heard from within the gateway timeout', registers }),
    lorawanGatewayStat: new Gauge({
      name: 'iotgw_lorawan_gateway_stat',
      help: 'The last stat report of each packet forwarder (rxnb, rxok, rxfw, ackr, dwnb, txnb, temp)',
      labelNames: ['gateway', 'field'],
      registers,
    }),
    lorawanSessionBackupFailures: new Counter({
      name: 'iotgw_lorawan_session_backup_failures_total',
      help: 'Periodic LoRaWAN session backups (lorawan.session_backup) not written, by reason: an errno code (ENOSPC, ENOENT, EACCES, EROFS, EIO), read-state, previous-unreadable, would-lose-sessions, other',
      labelNames: ['reason'],
      registers,
    }),
    lorawanSessionBackupLastSuccess: new Gauge({
      name: 'iotgw_lorawan_session_backup_last_success_timestamp_seconds',
      help: 'Unix time of the last LoRaWAN session backup written (0 until one is): alert when it falls more than two intervals behind',
      registers,
    }),
    serialPortOpen: new Gauge({
      name: 'iotgw_serial_port_open',
      help: '1 while the serial radio port is open and receiving, 0 while it is being reopened, by port path',
      labelNames: ['path'],
      registers,
    }),
    serialPortReopens: new Counter({
      name: 'iotgw_serial_port_reopens_total',
      help: 'Times the serial radio port was opened again after it was lost or could not be opened, by port path',
      labelNames: ['path'],
      registers,
    }),
    serialRadioFrames: new Counter({
      name: 'iotgw_serial_radio_frames_total',
      help: 'What the serial radio received: lorawan and raw frames, radio-error (radio_err: CRC error)',
      labelNames: ['kind'],
      registers,
    }),
    forwarderState: new Gauge({
      name: 'iotgw_forwarder_link_state',
      help: 'Kafka link state as /readyz reports it: 1 for the current state (up, buffering, starting), 0 for the others',
      labelNames: ['state'],
      registers,
    }),
    commands: new Counter({
      name: 'iotgw_commands_total',
      help: 'commands by receipt status (accepted, sent, delivered, expired, failed, rejected, cancelled) and duplicate (a command id seen before: not sent again)',
      labelNames: ['status'],
      registers,
    }),
    commandsWaiting: new Gauge({
      name: 'iotgw_commands_waiting',
      help: 'commands waiting for their device: queued (not sent yet) and sent (waiting for the acknowledgement)',
      labelNames: ['state'],
      registers,
    }),
    commandsConsumerUp: new Gauge({
      name: 'iotgw_commands_consumer_up',
      help: '1 while the command consumer is in its Kafka consumer group and fetching commands.topic',
      registers,
    }),
    ttnConnected: new Gauge({
      name: 'iotgw_ttn_connected',
      help: '1 while the MQTT connection to The Things Stack is up, by application',
      labelNames: ['application'],
      registers,
    }),
    ttnReconnects: new Counter({
      name: 'iotgw_ttn_reconnects_total',
      help: 'Connection attempts to The Things Stack after a drop or a refusal, by application',
      labelNames: ['application'],
      registers,
    }),
    formatterErrors: new Counter({
      name: 'iotgw_formatter_errors_total',
      help: 'Uplinks a javascript payload formatter did not decode (kept with iotgw.codec_error), by codec and kind: threw, errors, timeout, output, cooldown',
      labelNames: ['codec', 'kind'],
      registers,
    }),
    ttnMissedFrames: new Counter({
      name: 'iotgw_ttn_missed_frames_total',
      help: 'TTN uplinks never received (QoS 0: lost while disconnected, or not heard), judged from f_cnt jumps, by application',
      labelNames: ['application'],
      registers,
    }),
    ttnFCntResets: new Counter({
      name: 'iotgw_ttn_f_cnt_resets_total',
      help: 'TTN uplinks whose f_cnt went back within the same session (an ABP device that reset), stored and marked iotgw.f_cnt_reset, by application',
      labelNames: ['application'],
      registers,
    }),
  };
}
