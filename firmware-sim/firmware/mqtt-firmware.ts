// What a simulated MQTT device does, like real firmware: it publishes a reading only with a free in-flight
// slot, waits for the PUBACK, sends every unacknowledged reading again with the same seq after a reconnect
// (at-least-once), and gives up when the broker refuses its CONNECT or keeps closing the connection on its
// publishes. Commands, when the run takes them, are mqtt-commands.ts's. Functions of the run (state,
// schedulers, phases) and one device; the fleet wires them together.
import type { ConnectRamp } from '../schedulers/connect-ramp.ts';
import type { RateScheduler } from '../schedulers/rate-scheduler.ts';
import type { RunPhases } from '../schedulers/run-phases.ts';
import {
  countConnectionError,
  dropPending,
  type MqttDeviceState,
  type MqttFleetTally,
  type PendingReading,
  recordConnected,
  recordDelivered,
  recordFailure,
  recordOffline,
  recordPublished,
  recordResent,
  takePacketId,
} from '../state/mqtt-fleet-state.ts';
import { connectMqttDevice, type MqttDeviceConnectionOptions } from '../transports/mqtt-device.ts';
import { encodePublish } from '../transports/mqtt-publish-packet.ts';
import { type MqttCommandEvent, noteReading, onCommand, onReportPuback, onSuback, resumeCommands } from './mqtt-commands.ts';

export interface MqttFirmwareSettings {
  readonly qos: 0 | 1;
  readonly inflightPerDevice: number;
  /** New readings in total before the run stops ('messages'); Infinity for none. */
  readonly messageLimit: number;
  /**
   * MQTT 3.1.1 has no negative PUBACK: a broker that refuses a publish closes the connection
   * [MQTT-3.3.5-2]. A device whose connection closes this many times in a row with a publish
   * outstanding and no PUBACK gives up.
   */
  readonly maxClosesWithoutAck: number;
  readonly connection: Omit<MqttDeviceConnectionOptions, 'clientId'>;
}

/** One fleet run: what the device functions below read and move. */
export interface MqttFleetRun {
  readonly settings: MqttFirmwareSettings;
  readonly devices: readonly MqttDeviceState[];
  readonly tally: MqttFleetTally;
  readonly phases: RunPhases;
  readonly rate: RateScheduler;
  readonly ramp: ConnectRamp;
  /** Told of each command a device acted on or refused (only with commands on). */
  readonly onCommand: ((event: MqttCommandEvent) => void) | undefined;
  /** Told when a state report was acknowledged. */
  readonly onStateReported: ((deviceId: string) => void) | undefined;
}

/** Opens the device's connection; from then on its events drive it. */
export function startDevice(run: MqttFleetRun, device: MqttDeviceState): void {
  device.connection = connectMqttDevice(
    { ...run.settings.connection, clientId: device.sim.id },
    {
      connected: () => onConnected(run, device),
      closed: () => onClosed(run, device),
      puback: (packetId) => onPuback(run, device, packetId),
      suback: (packetId, granted) => onSuback(run, device, packetId, granted),
      ...(device.commands === undefined ? {} : { message: (topic: string, payload: Buffer) => onCommand(run, device, topic, payload) }),
      refused: (message, retrying) => {
        countConnectionError(run.tally, message);
        if (retrying) run.ramp.attemptEnded(device.sim.index);
        else failDevice(run, device, message);
      },
      failed: (error) => countConnectionError(run.tally, error),
    },
  );
}

export function canPublishNew(run: MqttFleetRun, device: MqttDeviceState): boolean {
  return (
    run.phases.status.isPublishing &&
    run.phases.status.stoppedBy === undefined &&
    isActive(run, device) &&
    device.online &&
    device.pending.length < run.settings.inflightPerDevice &&
    run.tally.published < run.settings.messageLimit &&
    // A config command's interval: held until its timer offers the device again.
    device.commands?.holdTimer === undefined
  );
}

export function publishNew(run: MqttFleetRun, device: MqttDeviceState): void {
  const reading = recordPublished(run.tally, device, performance.now());
  if (device.commands !== undefined) noteReading(run, device, device.commands);
  send(run, device, reading);
  if (run.tally.published >= run.settings.messageLimit) run.phases.stop('messages');
}

function isActive(run: MqttFleetRun, device: MqttDeviceState): boolean {
  return !run.phases.status.isFinished && device.failure === undefined;
}

function onConnected(run: MqttFleetRun, device: MqttDeviceState): void {
  const isFirst = recordConnected(run.tally, device);
  if (isFirst) run.phases.deviceConnected();
  // At-least-once, like firmware: what was not acknowledged goes again, same seq, same payload.
  // First, before anything below can publish new readings into `pending`.
  if (run.settings.qos === 1) {
    for (const reading of device.pending) {
      recordResent(run.tally, device);
      send(run, device, reading);
    }
  }
  if (device.commands !== undefined) resumeCommands(device, device.commands);
  run.ramp.attemptEnded(device.sim.index);
  if (run.tally.settled === run.devices.length) run.phases.startPublishing();
  run.rate.offer(device.sim.index);
}

function onClosed(run: MqttFleetRun, device: MqttDeviceState): void {
  run.ramp.attemptEnded(device.sim.index);
  if (!device.online) return;
  recordOffline(run.tally, device);
  if (run.settings.qos === 0) {
    dropPending(run.tally, device);
  } else if (device.pending.length > 0 && !device.ackedOnThisConnection) {
    device.closesWithoutAck += 1;
    if (device.closesWithoutAck >= run.settings.maxClosesWithoutAck) {
      failDevice(run, device, `connection closed ${device.closesWithoutAck} times with a publish outstanding and no PUBACK (publish not authorized?)`);
      return;
    }
  }
  if (run.phases.status.stoppedBy !== undefined) run.phases.checkDrained();
}

function onPuback(run: MqttFleetRun, device: MqttDeviceState, packetId: number | undefined): void {
  const reading = device.pending.find((candidate) => candidate.packetId === packetId && candidate.connectionNumber === device.connectionNumber);
  if (reading !== undefined) onDelivered(run, device, reading);
  // Else a state report's, or for nothing we are waiting for (e.g. a duplicate): that changes nothing [MQTT-4.3.2].
  else if (device.commands !== undefined) onReportPuback(run, device, packetId);
}

/** Sends (or re-sends) a reading on the current connection; offline, the next 'connected' re-sends it (QoS 1). */
function send(run: MqttFleetRun, device: MqttDeviceState, reading: PendingReading): void {
  const { connection } = device;
  if (!device.online || connection === undefined) return;
  const { qos } = run.settings;
  reading.connectionNumber = device.connectionNumber;
  // Its old id must not count as taken when choosing the new one.
  reading.packetId = 0;
  reading.packetId = qos === 1 ? takePacketId(device) : 0;
  reading.sentAt = performance.now();
  const packet = encodePublish(device.topic, reading.payload, qos, reading.packetId);
  if (qos === 1) {
    connection.write(packet);
    return;
  }
  // QoS 0 has no ack: handing the bytes to the socket is as delivered as it gets.
  connection.write(packet, (err) => {
    if (!err && isActive(run, device) && reading.connectionNumber === device.connectionNumber) onDelivered(run, device, reading);
  });
}

function onDelivered(run: MqttFleetRun, device: MqttDeviceState, reading: PendingReading): void {
  if (!recordDelivered(run.tally, device, reading, run.settings.qos, performance.now())) return;
  if (run.phases.status.stoppedBy !== undefined) run.phases.checkDrained();
  else run.rate.offer(device.sim.index);
}

/** The device gives up for good: counted as failed, its connection ended, never retried. */
export function failDevice(run: MqttFleetRun, device: MqttDeviceState, reason: string): void {
  if (device.failure !== undefined || run.phases.status.isFinished) return;
  recordFailure(run.tally, device, reason);
  void device.connection?.end(false);
  run.ramp.attemptEnded(device.sim.index);
  if (run.tally.failed === run.devices.length) {
    run.phases.stop('all-failed');
    run.phases.finish();
  } else if (run.phases.status.stoppedBy !== undefined) {
    run.phases.checkDrained();
  } else if (run.tally.settled === run.devices.length) {
    run.phases.startPublishing();
  }
}
