// Runs a simulated LoRaWAN network against the gateway's Semtech UDP port: G packet forwarders and N
// Class-A devices with real crypto. OTAA devices join first; every device then sends the fleet.ts readings
// of its kind, some confirmed, some heard by two forwarders, and on request a few replays of old frames and
// forged MICs. Devices act on the commands iotgw sends in their receive windows (firmware/lorawan-firmware.ts)
// and on its MAC commands (firmware/lorawan-mac.ts): ADR moves their data rate and TX power, which their radio
// link (transports/radio-link.ts: a path loss per device) turns into the SNR the forwarders report, or a lost frame.
// The region (EU868 unless told otherwise) decides their channels, data rates and receive windows.
// The report says, per device, what went on air and what came back (commands too), so a test can compare it
// with what reached Kafka. A composition of: the fleet state (state/lorawan-fleet-state.ts, and the --state
// file), the pacer (schedulers/pacer.ts), the device firmware (firmware/lorawan-firmware.ts) and the air
// between devices and forwarders (transports/lorawan-air.ts).
import { EU868, type Region } from '../src/ingress/lorawan/region.ts';
import { type LorawanFirmwareSettings, type LorawanFleetRun, runDevice } from './firmware/lorawan-firmware.ts';
import { createPacer } from './schedulers/pacer.ts';
import {
  configEntry,
  createMembers,
  type DeviceFrameEvent,
  deviceReport,
  fleetIdentities,
  fleetProgress,
  fleetTotals,
  type LorawanDeviceConfigEntry,
  type LorawanFleetProgress,
  type LorawanFleetReport,
  type LorawanFleetShape,
  type LorawanFleetStopReason,
  type LorawanFleetTally,
  type Member,
  type MemberLinkOptions,
} from './state/lorawan-fleet-state.ts';
import { readStateFile, writeStateFile } from './state/lorawan-state-file.ts';
import { createLorawanAir, type LorawanAir } from './transports/lorawan-air.ts';
import type { FleetCodec, SavedDeviceState } from './transports/lorawan-device.ts';

export type {
  AdrChange,
  DeviceFrameEvent,
  DeviceReport,
  MacActivity,
  RadioReport,
  FrameKind,
  LorawanDeviceConfigEntry,
  LorawanFleetProgress,
  LorawanFleetReport,
  LorawanFleetStopReason,
  LorawanFleetTotals,
  SentFrame,
} from './state/lorawan-fleet-state.ts';

export interface LorawanFleetOptions extends MemberLinkOptions {
  /** The gateway's Semtech UDP listener (lorawan.udp). */
  readonly server: { readonly host: string; readonly port: number };
  /** The regional parameters the devices follow; must match the gateway's lorawan.region (and sub-band). Default EU868. */
  readonly region?: Region;
  /** Simulated packet forwarders (>= 1). */
  readonly gateways: number;
  /** Simulated devices (>= 1). */
  readonly devices: number;
  /** Share of OTAA devices, 0..1, spread evenly over the fleet. Default 0.5. */
  readonly otaaShare?: number;
  /** Default 'mixed'. */
  readonly codec?: FleetCodec;
  /** New transmissions per second across the fleet (joins, uplinks, replays, forgeries); 0 = no limit. */
  readonly ratePerSecond: number;
  /** Stop starting new uplinks this long after the start; 0 or absent: no time limit. */
  readonly durationMs?: number;
  /** Each device sends this many new uplinks, then stops. Without it and without durationMs: 30 s. */
  readonly messagesPerDevice?: number;
  /** Share of uplinks sent confirmed, 0..1. Default 0. */
  readonly confirmedShare?: number;
  /** Share of transmissions heard by two forwarders (needs gateways >= 2), 0..1. Default 0. */
  readonly twoGatewayShare?: number;
  /** Old frames sent again by an "attacker" in range of a forwarder. Default 0. */
  readonly replays?: number;
  /** Uplinks sent with a flipped MIC bit instead of the real one; each uses up an FCntUp. Default 0. */
  readonly corruptMics?: number;
  /** Share of ACKs the device fails to hear (the forwarder sends them), to make it retransmit. Default 0. */
  readonly missedAckShare?: number;
  /** Retransmissions of an unacknowledged confirmed uplink (NbTrans - 1). Default 3. */
  readonly maxRetransmissions?: number;
  /** How long a device waits for an ACK before retransmitting; the RX2 window ends ~2 s after the uplink. Default 3,000. */
  readonly ackTimeoutMs?: number;
  /** How long a joining device waits for the join-accept (JOIN_ACCEPT_DELAY2 is 6 s). Default 7,000. */
  readonly joinTimeoutMs?: number;
  /** Join-requests (each with a new DevNonce) before a device gives up. Default 5. */
  readonly maxJoinAttempts?: number;
  /** Keys, devices and readings follow from it. */
  readonly seed: number;
  /** Device name prefix (see FleetOptions.prefix). Default ''. */
  readonly prefix?: string;
  /** JSON file with each device's counters and session: read at the start if it exists, written at the end. */
  readonly stateFile?: string;
  /** OTAA devices join again even when the state file holds a session. Default false. */
  readonly rejoin?: boolean;
  /** Aborting stops new transmissions and waits no longer for ACKs or join-accepts. */
  readonly signal?: AbortSignal;
}

export interface LorawanFleetHooks {
  /** About once per second. */
  onProgress?(progress: LorawanFleetProgress): void;
  /** After each frame a device sends (not the replays and forgeries): what went on air; the device's link can be changed here. */
  onFrame?(event: DeviceFrameEvent): void;
}

const PROGRESS_MS = 1_000;
/** Without a duration and without messagesPerDevice. */
const DEFAULT_DURATION_MS = 30_000;

/** The devices a run with these options simulates, as entries for lorawan.devices_file. Same seed, same list. */
export function lorawanDevicesConfig(options: LorawanFleetShape): LorawanDeviceConfigEntry[] {
  return fleetIdentities(options).map((member) => configEntry(member.identity));
}

/** Runs the fleet until each device sent its messages, the duration is over, or the signal aborts. */
export async function runLorawanFleet(options: LorawanFleetOptions, hooks: LorawanFleetHooks = {}): Promise<LorawanFleetReport> {
  validateOptions(options);
  const startedAtMs = performance.now();
  const saved = options.stateFile === undefined ? new Map<string, SavedDeviceState>() : readStateFile(options.stateFile, options.seed);
  const region = options.region ?? EU868;
  const members = createMembers({ ...options, region }, saved);
  const tally: LorawanFleetTally = { startedAtMs, acksMissed: 0, joining: 0 };
  const air = createLorawanAir({ server: options.server, gateways: options.gateways, twoGatewayShare: options.twoGatewayShare ?? 0 });
  // Our own signal: the caller's may be absent, and aborting must also end the waits for ACKs and joins.
  const controller = new AbortController();
  const onAbort = (): void => controller.abort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted === true) controller.abort();
  const run = createRun(options, region, air, tally, controller.signal, hooks);

  const progressTimer = setInterval(() => hooks.onProgress?.(fleetProgress(members, tally, air.counters())), PROGRESS_MS);
  progressTimer.unref();
  let stoppedBy: LorawanFleetStopReason = 'messages';
  try {
    await air.start(run.signal);
    await Promise.all(members.map((member) => runDevice(run, member)));
    if (run.signal.aborted) stoppedBy = 'aborted';
    else if (performance.now() >= run.deadlineMs) stoppedBy = 'duration';
  } finally {
    clearInterval(progressTimer);
    options.signal?.removeEventListener('abort', onAbort);
    await air.stop();
    if (options.stateFile !== undefined) {
      writeStateFile(
        options.stateFile,
        options.seed,
        members.map((member) => member.device.snapshot(member.mac.persist())),
      );
    }
  }
  return report(options, region, members, tally, air, stoppedBy);
}

function createRun(
  options: LorawanFleetOptions,
  region: Region,
  air: LorawanAir,
  tally: LorawanFleetTally,
  signal: AbortSignal,
  hooks: LorawanFleetHooks,
): LorawanFleetRun {
  const durationMs = (options.durationMs ?? 0) > 0 ? (options.durationMs ?? 0) : options.messagesPerDevice === undefined ? DEFAULT_DURATION_MS : 0;
  const settings: LorawanFirmwareSettings = {
    confirmedShare: options.confirmedShare ?? 0,
    missedAckShare: options.missedAckShare ?? 0,
    maxRetransmissions: options.maxRetransmissions ?? 3,
    ackTimeoutMs: options.ackTimeoutMs ?? 3_000,
    joinTimeoutMs: options.joinTimeoutMs ?? 7_000,
    maxJoinAttempts: options.maxJoinAttempts ?? 5,
    messagesPerDevice: options.messagesPerDevice,
  };
  return {
    settings,
    region,
    air,
    tally,
    signal,
    deadlineMs: durationMs > 0 ? tally.startedAtMs + durationMs : Number.POSITIVE_INFINITY,
    pacer: createPacer(options.ratePerSecond, signal),
    ...(hooks.onFrame === undefined ? {} : { onFrame: (event) => hooks.onFrame?.(event) }),
  };
}

function report(
  options: LorawanFleetOptions,
  region: Region,
  members: readonly Member[],
  tally: LorawanFleetTally,
  air: LorawanAir,
  stoppedBy: LorawanFleetStopReason,
): LorawanFleetReport {
  const identities = members.map((member) => member.device.identity);
  return {
    server: `${options.server.host}:${options.server.port}`,
    region: region.subBand === null ? region.name : `${region.name} sub-band ${region.subBand}`,
    seed: options.seed,
    gateways: air.gatewayEuis,
    devices: members.map((member) => deviceReport(region, member)),
    totals: fleetTotals(region, members, tally, air.counters()),
    stoppedBy,
    durationMs: Math.round(performance.now() - tally.startedAtMs),
    devicesConfig: () => identities.map(configEntry),
  };
}

function validateOptions(options: LorawanFleetOptions): void {
  if (!Number.isInteger(options.gateways) || options.gateways < 1) throw new RangeError(`gateways must be an integer >= 1, got ${options.gateways}`);
  for (const [name, value] of Object.entries({
    confirmedShare: options.confirmedShare,
    twoGatewayShare: options.twoGatewayShare,
    missedAckShare: options.missedAckShare,
  })) {
    if (value !== undefined && !(value >= 0 && value <= 1)) throw new RangeError(`${name} must be in 0..1, got ${value}`);
  }
  const region = options.region ?? EU868;
  if (options.initialDataRate !== undefined && !region.uplinkDataRates.includes(options.initialDataRate)) {
    throw new RangeError(
      `initialDataRate DR${options.initialDataRate} is not an uplink data rate of ${region.name} (${region.uplinkDataRates.map((dr) => `DR${dr}`).join(', ')})`,
    );
  }
  const loss = options.pathLossDb;
  if (loss !== undefined && (typeof loss === 'number' ? !Number.isFinite(loss) : !(Number.isFinite(loss.minDb) && loss.minDb <= loss.maxDb))) {
    throw new RangeError(`pathLossDb must be a number of dB or a range { minDb <= maxDb }, got ${JSON.stringify(loss)}`);
  }
  const every = options.linkCheckEveryUplinks;
  if (every !== undefined && !(Number.isInteger(every) && every >= 0)) throw new RangeError(`linkCheckEveryUplinks must be an integer >= 0, got ${every}`);
}
