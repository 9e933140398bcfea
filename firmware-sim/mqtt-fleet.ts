// Runs a simulated fleet as MQTT 3.1.1 clients (one connection per device) publishing JSON readings to
// `devices/{id}/{stream}` on the gateway's broker, and keeps an exact ledger of which readings were
// acknowledged. With `commands` on, each device also takes commands from the gateway and reports its new
// state (firmware/mqtt-commands.ts). A composition of: the fleet state (state/mqtt-fleet-state.ts), the
// schedulers (connect ramp-up, rate, run phases in schedulers/), the device firmware (firmware/) and the
// transport (transports/mqtt-device.ts).
import { createFleet } from './fleet.ts';
import { type MqttCommandEvent, stopCommands } from './firmware/mqtt-commands.ts';
import { canPublishNew, type MqttFirmwareSettings, type MqttFleetRun, publishNew, startDevice } from './firmware/mqtt-firmware.ts';
import { createConnectRamp } from './schedulers/connect-ramp.ts';
import { createRateScheduler } from './schedulers/rate-scheduler.ts';
import { createRunPhases } from './schedulers/run-phases.ts';
import {
  buildMqttFleetReport,
  createMqttDeviceState,
  createMqttFleetTally,
  createProgressMeter,
  type MqttDeviceState,
  type MqttFleetProgress,
  type MqttFleetReport,
  type MqttFleetTally,
} from './state/mqtt-fleet-state.ts';
import { endConnections } from './transports/mqtt-device.ts';
import { encodeTopic } from './transports/mqtt-publish-packet.ts';

export type { MqttCommandEvent } from './firmware/mqtt-commands.ts';
export type { MqttCommandsSummary, MqttFleetProgress, MqttFleetReport, MqttFleetStopReason } from './state/mqtt-fleet-state.ts';

export interface MqttFleetOptions {
  /** Broker URL: mqtt://host:1883, mqtts://host:8883 (tcp:// and tls:// too). */
  readonly url: string;
  /** Simulated devices, one MQTT connection each. */
  readonly devices: number;
  /**
   * Total new readings per second across the fleet, spread evenly (10 ms ticks, round-robin over the
   * devices that have a free in-flight slot). 0 = each device publishes as fast as its acks allow.
   */
  readonly ratePerSecond: number;
  /** Stop starting new readings this long (ms) after publishing starts (see `start`); 0 = until `messages` or abort. */
  readonly durationMs: number;
  /** Stop after this many new readings in total (re-sends not counted). */
  readonly messages?: number;
  readonly qos: 0 | 1;
  readonly seed: number;
  /** Topic level after the device id. Default 'telemetry'. */
  readonly stream?: string;
  /**
   * Devices take commands like field devices: each subscribes to devices/{id}/commands/# (QoS 1) at every
   * connect, acts on the commands its model knows (device-commands.ts) and reports its new state, or why
   * not, at QoS 1 on devices/{id}/state. Default false: a fleet that only publishes (a benchmark) sends no
   * SUBSCRIBE, so the broker holds no subscription per device, and a reading costs what it did before.
   */
  readonly commands?: boolean;
  /** If set, each device connects with username = its id and this password. */
  readonly password?: string;
  /** Unacknowledged readings a device may have at once. Default 1: wait for the PUBACK, like firmware. */
  readonly inflightPerDevice?: number;
  /** Connection attempts in progress at once while ramping up. Default 50. */
  readonly connectConcurrency?: number;
  /**
   * 'together' (default): connect the whole fleet first, then all devices start publishing and the
   * `durationMs` clock starts; a benchmark then measures the steady state, not the ramp-up.
   * 'staggered': each device publishes as soon as it is connected; the clock starts at once.
   * Devices that are still not connected at `connectDeadlineMs` join whenever they connect.
   */
  readonly start?: MqttFleetStart;
  /** Device id prefix (see FleetOptions.prefix). Default ''. */
  readonly prefix?: string;
  /** After the stop, how long to wait for outstanding acks (re-sending as needed). Default 10,000. */
  readonly drainTimeoutMs?: number;
  /** Give up when no device has connected within this long; with start 'together', stop waiting for the rest. Default 30,000. */
  readonly connectDeadlineMs?: number;
  /** Base reconnect delay; each device adds +-25 % jitter so a fleet does not reconnect in lockstep. Default 1,000. */
  readonly reconnectPeriodMs?: number;
  /**
   * MQTT 3.1.1 has no negative PUBACK: a broker that refuses a publish closes the connection
   * [MQTT-3.3.5-2]. A device whose connection closes this many times in a row with a publish
   * outstanding and no PUBACK is counted as failed. Default 3.
   */
  readonly maxClosesWithoutAck?: number;
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  /** Aborting stops at once (no drain), ends every client and resolves with the report. */
  readonly signal?: AbortSignal;
}

export type MqttFleetStart = 'together' | 'staggered';

export interface MqttFleetHooks {
  /** Called about once per second while the run is going. */
  onProgress?(snapshot: MqttFleetProgress): void;
  /** Called for each command a device received, after it acted (with `commands` on). */
  onCommand?(event: MqttCommandEvent): void;
  /** Called when the gateway acknowledged a device's state report (PUBACK), with the device's id. */
  onStateReported?(deviceId: string): void;
}

const PROGRESS_MS = 1_000;
/** Where a device reports its state after a command: devices/{id}/state. */
export const STATE_STREAM = 'state';
/** How long the disconnect may take before the remaining sockets are destroyed. */
const END_TIMEOUT_MS = 3_000;

/** Runs the fleet until the stop condition, then ends every client and reports. Never rejects once started. */
export async function runMqttFleet(options: MqttFleetOptions, hooks: MqttFleetHooks = {}): Promise<MqttFleetReport> {
  validateOptions(options);
  const stream = options.stream ?? 'telemetry';
  const sims = createFleet({ devices: options.devices, seed: options.seed, prefix: options.prefix ?? '' });
  const commands = options.commands === true;
  const devices = sims.map((sim) =>
    createMqttDeviceState(
      sim,
      encodeTopic(`devices/${sim.id}/${stream}`),
      commands ? { stateTopic: encodeTopic(`devices/${sim.id}/${STATE_STREAM}`) } : undefined,
    ),
  );
  const tally = createMqttFleetTally(performance.now(), commands);
  let progressTimer: NodeJS.Timeout | undefined;
  let resolveFinished: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    resolveFinished = resolve;
  });
  const run = createRun(options, devices, tally, hooks, () => {
    clearInterval(progressTimer);
    for (const device of devices) stopCommands(device);
    const connections = devices.flatMap(({ connection, online }) => (connection === undefined ? [] : [{ connection, online }]));
    void endConnections(connections, END_TIMEOUT_MS).then(resolveFinished);
  });

  run.phases.begin();
  const { onProgress } = hooks;
  if (onProgress !== undefined && !run.phases.status.isFinished) {
    const progress = createProgressMeter(tally, devices.length);
    progressTimer = setInterval(() => onProgress(progress()), PROGRESS_MS);
  }
  run.ramp.fill();
  await finished;

  const outcome = {
    url: options.url,
    qos: options.qos,
    seed: options.seed,
    stoppedBy: run.phases.status.stoppedBy ?? 'aborted',
    rampUpMs: run.phases.status.rampUpMs,
  };
  return buildMqttFleetReport(tally, devices, outcome);
}

/** Wires the schedulers to the firmware: ramp-up starts devices, the rate lets them publish, the phases stop them. */
function createRun(
  options: MqttFleetOptions,
  devices: readonly MqttDeviceState[],
  tally: MqttFleetTally,
  hooks: Pick<MqttFleetHooks, 'onCommand' | 'onStateReported'>,
  onFinished: () => void,
): MqttFleetRun {
  const device = (index: number): MqttDeviceState => devices[index] as MqttDeviceState;
  const run: MqttFleetRun = {
    settings: firmwareSettings(options),
    devices,
    tally,
    onCommand: hooks.onCommand,
    onStateReported: hooks.onStateReported,
    ramp: createConnectRamp({
      devices: devices.length,
      concurrency: options.connectConcurrency ?? 50,
      isStopped: () => run.phases.status.stoppedBy !== undefined,
      connect: (index) => startDevice(run, device(index)),
    }),
    rate: createRateScheduler({
      ratePerSecond: options.ratePerSecond,
      devices: devices.length,
      canPublish: (index) => canPublishNew(run, device(index)),
      publish: (index) => publishNew(run, device(index)),
    }),
    phases: createRunPhases({
      start: options.start ?? 'together',
      durationMs: options.durationMs,
      drainTimeoutMs: options.drainTimeoutMs ?? 10_000,
      connectDeadlineMs: options.connectDeadlineMs ?? 30_000,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      hasConnected: () => tally.connected > 0,
      // State reports in flight count too: the gateway should have the state a command led to.
      isDrained: () => tally.inflight <= 0 && (tally.commands === undefined || tally.commands.reportsInflight <= 0),
      onPublishing: () => {
        run.rate.start();
        for (const { sim } of devices) run.rate.offer(sim.index);
      },
      onStopping: () => run.rate.stop(),
      onFinished,
    }),
  };
  return run;
}

function firmwareSettings(options: MqttFleetOptions): MqttFirmwareSettings {
  return {
    qos: options.qos,
    inflightPerDevice: options.inflightPerDevice ?? 1,
    messageLimit: options.messages ?? Number.POSITIVE_INFINITY,
    maxClosesWithoutAck: options.maxClosesWithoutAck ?? 3,
    connection: {
      url: options.url,
      reconnectPeriodMs: options.reconnectPeriodMs ?? 1_000,
      ...(options.password === undefined ? {} : { password: options.password }),
      ...(options.ca === undefined ? {} : { ca: options.ca }),
      ...(options.cert === undefined ? {} : { cert: options.cert }),
      ...(options.key === undefined ? {} : { key: options.key }),
    },
  };
}

function validateOptions(options: MqttFleetOptions): void {
  const integerAtLeast = (name: string, value: number | undefined, min: number): void => {
    if (value !== undefined && (!Number.isInteger(value) || value < min)) {
      throw new RangeError(`runMqttFleet: ${name} must be an integer >= ${min}, got ${value}`);
    }
  };
  const numberAtLeast = (name: string, value: number | undefined, min: number): void => {
    if (value !== undefined && (!Number.isFinite(value) || value < min)) {
      throw new RangeError(`runMqttFleet: ${name} must be a number >= ${min}, got ${value}`);
    }
  };
  integerAtLeast('devices', options.devices, 1);
  numberAtLeast('ratePerSecond', options.ratePerSecond, 0);
  numberAtLeast('durationMs', options.durationMs, 0);
  integerAtLeast('messages', options.messages, 1);
  integerAtLeast('inflightPerDevice', options.inflightPerDevice, 1);
  integerAtLeast('connectConcurrency', options.connectConcurrency, 1);
  numberAtLeast('drainTimeoutMs', options.drainTimeoutMs, 0);
  numberAtLeast('connectDeadlineMs', options.connectDeadlineMs, 0);
  numberAtLeast('reconnectPeriodMs', options.reconnectPeriodMs, 1);
  integerAtLeast('maxClosesWithoutAck', options.maxClosesWithoutAck, 1);
  validateChoices(options);
}

function validateChoices(options: MqttFleetOptions): void {
  if (options.start !== undefined && options.start !== 'together' && options.start !== 'staggered') {
    throw new RangeError(`runMqttFleet: start must be 'together' or 'staggered', got '${String(options.start)}'`);
  }
  if (options.qos !== 0 && options.qos !== 1) {
    throw new RangeError(`runMqttFleet: qos must be 0 or 1, got ${String(options.qos)}`);
  }
  if (!Number.isInteger(options.seed)) throw new RangeError(`runMqttFleet: seed must be an integer, got ${options.seed}`);
  if (options.stream !== undefined && (options.stream === '' || /[#+/]/.test(options.stream) || options.stream.includes('\u0000'))) {
    throw new RangeError(`runMqttFleet: stream must be one topic level without / + #, got '${options.stream}'`);
  }
  if (options.commands === true && options.stream === STATE_STREAM) {
    throw new RangeError(`runMqttFleet: with commands on, devices report their state on ${STATE_STREAM}: choose another stream`);
  }
  let protocol: string;
  try {
    protocol = new URL(options.url).protocol;
  } catch {
    throw new RangeError(`runMqttFleet: url is not a URL: '${options.url}'`);
  }
  // WebSocket URLs would need a test of the raw PUBLISH write over mqtt.js's ws stream first.
  if (!['mqtt:', 'mqtts:', 'tcp:', 'tls:', 'ssl:'].includes(protocol)) {
    throw new RangeError(`runMqttFleet: url must be mqtt://, mqtts://, tcp:// or tls://, got '${options.url}'`);
  }
}
