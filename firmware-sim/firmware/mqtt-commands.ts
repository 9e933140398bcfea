// A simulated MQTT device's side of commands, as field firmware does it: at every connect it subscribes to
// devices/{id}/commands/# at QoS 1 (a clean session forgets its subscriptions), acts on each command its
// model knows (device-commands.ts decides, fleet.ts `actuate` acts), and reports its new state, or why not,
// at QoS 1 on devices/{id}/state; mqtt.js PUBACKs the command after that, so the gateway's `delivered`
// receipt means the device has acted. A `config` command spaces its new readings by the interval it sets.
// Only a fleet run with `commands` on gets here (MqttDeviceState.commands is set).
import { type CommandResult, parseDeviceCommand, stateReport, UNKNOWN_COMMAND } from '../device-commands.ts';
import type { DeviceKind } from '../fleet.ts';
import {
  type MqttDeviceCommands,
  type MqttDeviceState,
  type PendingReport,
  recordCommand,
  recordReported,
  recordSubscribed,
  takePacketId,
} from '../state/mqtt-fleet-state.ts';
import { encodePublish } from '../transports/mqtt-publish-packet.ts';
import { encodeSubscribe } from '../transports/mqtt-subscribe-packet.ts';
import type { MqttFleetRun } from './mqtt-firmware.ts';

/** One command a device received and what it did. */
export interface MqttCommandEvent {
  readonly deviceId: string;
  readonly kind: DeviceKind;
  /** The topic level after commands/. */
  readonly name: string;
  /** The topic level after the name, decoded, when the gateway's commands.mqtt_topic puts {command_id} there. */
  readonly commandId: string | undefined;
  readonly payload: Buffer;
  /** Date.now() when it arrived; the device acts at once. */
  readonly receivedAtMs: number;
  /** false: refused (unknown to the model, or a payload it cannot use). */
  readonly applied: boolean;
  /** The state report as sent on devices/{id}/state. */
  readonly report: string;
}

const SUBACK_FAILURE = 0x80;

/** After a (re)connect: state reports still unacknowledged go again, then the SUBSCRIBE. */
export function resumeCommands(device: MqttDeviceState, commands: MqttDeviceCommands): void {
  for (const report of commands.reports) sendReport(device, commands, report);
  const { connection } = device;
  if (connection === undefined) return;
  commands.subscribePacketId = 0;
  const packetId = takePacketId(device);
  commands.subscribePacketId = packetId;
  commands.subscribeConnection = device.connectionNumber;
  connection.write(encodeSubscribe(commands.filter, 1, packetId));
}

export function onSuback(run: MqttFleetRun, device: MqttDeviceState, packetId: number | undefined, granted: readonly number[]): void {
  const { commands } = device;
  if (commands === undefined || packetId !== commands.subscribePacketId || commands.subscribeConnection !== device.connectionNumber) return;
  const code = granted[0] ?? SUBACK_FAILURE;
  recordSubscribed(run.tally, device, (code & SUBACK_FAILURE) === 0);
}

/** A PUBLISH from the gateway: act, report, and let mqtt.js PUBACK it when this returns. */
export function onCommand(run: MqttFleetRun, device: MqttDeviceState, topic: string, payload: Buffer): void {
  const { commands } = device;
  if (commands === undefined || device.failure !== undefined) return;
  const receivedAtMs = Date.now();
  const { name, commandId } = commandOfTopic(commands.filter, topic);
  const decision = parseDeviceCommand(device.sim.kind, name, payload);
  let result: CommandResult;
  switch (decision.action) {
    case 'actuate':
      // parseDeviceCommand only asks a model for the actuator it has; null would be a mismatch of the two.
      result = device.sim.actuate(decision.actuation) ?? { error: UNKNOWN_COMMAND };
      break;
    case 'config':
      commands.intervalMs = decision.intervalS * 1_000;
      if (commands.lastReadingAt > 0) holdForInterval(run, device, commands);
      result = { interval_s: decision.intervalS };
      break;
    case 'refuse':
      result = { error: decision.error };
      break;
  }
  const applied = !('error' in result);
  const report = stateReport({ deviceId: device.sim.id, kind: device.sim.kind, command: name, commandId, result, nowMs: receivedAtMs });
  const pending = recordCommand(run.tally, device, applied, report);
  if (pending !== undefined) sendReport(device, commands, pending);
  run.onCommand?.({ deviceId: device.sim.id, kind: device.sim.kind, name, commandId, payload, receivedAtMs, applied, report });
}

/** A PUBACK that may be for a state report; true if it was. */
export function onReportPuback(run: MqttFleetRun, device: MqttDeviceState, packetId: number | undefined): boolean {
  const report = device.commands?.reports.find((candidate) => candidate.packetId === packetId && candidate.connectionNumber === device.connectionNumber);
  if (report === undefined || !recordReported(run.tally, device, report)) return false;
  run.onStateReported?.(device.sim.id);
  if (run.phases.status.stoppedBy !== undefined) run.phases.checkDrained();
  return true;
}

/** A new reading was taken: with an interval configured, the next one waits for it. */
export function noteReading(run: MqttFleetRun, device: MqttDeviceState, commands: MqttDeviceCommands): void {
  commands.lastReadingAt = performance.now();
  if (commands.intervalMs > 0) holdForInterval(run, device, commands);
}

/** The run is over: no interval timer may outlive it. */
export function stopCommands(device: MqttDeviceState): void {
  if (device.commands === undefined) return;
  clearTimeout(device.commands.holdTimer);
  device.commands.holdTimer = undefined;
}

/** Holds new readings until `intervalMs` after the latest one, then offers the device to the rate again. */
function holdForInterval(run: MqttFleetRun, device: MqttDeviceState, commands: MqttDeviceCommands): void {
  clearTimeout(commands.holdTimer);
  const waitMs = Math.max(0, commands.lastReadingAt + commands.intervalMs - performance.now());
  commands.holdTimer = setTimeout(() => {
    commands.holdTimer = undefined;
    run.rate.offer(device.sim.index);
  }, waitMs);
  // Cleared when the run finishes; unref so a forgotten one could never keep the process alive either.
  commands.holdTimer.unref();
}

/** Sends (or re-sends) a state report at QoS 1; offline, the next connect re-sends it. */
function sendReport(device: MqttDeviceState, commands: MqttDeviceCommands, report: PendingReport): void {
  const { connection } = device;
  if (!device.online || connection === undefined) return;
  report.connectionNumber = device.connectionNumber;
  // Its old id must not count as taken when choosing the new one.
  report.packetId = 0;
  report.packetId = takePacketId(device);
  connection.write(encodePublish(commands.stateTopic, report.payload, 1, report.packetId));
}

/**
 * devices/{id}/commands/{name}[/{command_id}] -> name and command id. The gateway percent-encodes the id
 * (encodeURIComponent: a command id may hold / + #), so it is one level, decoded here.
 */
function commandOfTopic(filter: string, topic: string): { name: string; commandId: string | undefined } {
  const prefix = filter.slice(0, -1);
  const rest = topic.startsWith(prefix) ? topic.slice(prefix.length) : topic;
  const slash = rest.indexOf('/');
  if (slash < 0) return { name: rest, commandId: undefined };
  const encoded = rest.slice(slash + 1);
  if (encoded === '') return { name: rest.slice(0, slash), commandId: undefined };
  let commandId = encoded;
  try {
    commandId = decodeURIComponent(encoded);
  } catch {
    // Not percent-encoding after all: the level as it is.
  }
  return { name: rest.slice(0, slash), commandId };
}
