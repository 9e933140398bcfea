// The one LoRaWAN network server of this gateway, shared by every way a frame comes in (Semtech UDP packet
// forwarders, a serial radio): one set of device sessions and frame counters, one deduplicator, one server.
// Two radios hearing the same frame make one record, and a device's counters never split between paths.
//
// Feeders hand over each received PHYPayload with its reception; the UDP transport also attaches the
// downlink path (join-accepts, ACKs). The network loads the committed sessions when it starts, so it starts
// before its feeders and stops after them; a feeder that must still send downlinks at shutdown drains it
// first (see drain()).
import type { PayloadCodec } from '../../codecs/payload-codec.ts';
import type { Component, HealthReport } from '../../core/lifecycle.ts';
import type { RecordSource } from '../../record/record.ts';
import { createInFlight } from '../in-flight.ts';
import { createRejections } from '../rejections.ts';
import type { IngressDeps, LoadState } from '../ingress.ts';
import { parsePhyPayload } from '../lorawan/phy-payload.ts';
import type { Region } from '../lorawan/region.ts';
import { createDeviceSessions, type DeviceChanges, type DeviceSessions, type LorawanDeviceProfile, STATE_SCOPE } from './device-sessions.ts';
import type { FCntRecoveryOptions } from './counter-recovery.ts';
import { createFrameDeduplicator, type FrameDeduplicator } from './frame-deduplicator.ts';
import {
  type ApplicationDownlinks,
  type ClassADownlink,
  createLorawanServer,
  type DownlinkPath,
  type DownlinkResult,
  type LorawanRadioStatus,
  type LorawanServer,
  type MacOptions,
} from './lorawan-server.ts';
import type { Reception } from './reception.ts';

export interface LorawanNetworkOptions {
  readonly region: Region;
  readonly netId: string;
  readonly dedupWindowMs: number;
  readonly stream: string;
  readonly rejectLogIntervalMs: number;
  readonly devices: readonly LorawanDeviceProfile[];
  /**
   * Frames held at once (collecting copies, or waiting for their commit). UDP has no backpressure: when the
   * buffer commits slower than radios deliver, frames past this are refused (counted as `overloaded`) instead
   * of queuing in memory without bound. None of them was acknowledged.
   */
  readonly maxFramesInFlight: number;
  /** The counter search for ABP devices with no stored counter (see counter-recovery.ts); its defaults when absent. */
  readonly fCntRecovery?: FCntRecoveryOptions;
  /** ADR and DevStatusReq (see mac-layer.ts); DEFAULT_MAC when absent. */
  readonly mac?: MacOptions;
}

export interface LorawanNetworkDeps extends IngressDeps {
  readonly loadState: LoadState;
  /** Whether this box's clock is NTP-synchronized (DeviceTimeAns from it only then); false when absent. */
  readonly clockTrusted?: () => boolean;
}

export interface LorawanNetwork extends Component {
  /** One received frame. Copies from other radios within the dedup window join it. */
  receive(phyPayload: Buffer, reception: Reception, source: RecordSource): void;
  /** Whether the bytes are an uplink of a configured device (a data frame from a known DevAddr, or a join-request from a known OTAA DevEUI). */
  claims(phyPayload: Buffer): boolean;
  /** Where join-accepts and ACKs go out (the UDP transport); without one the network is receive-only. */
  attachDownlink(path: DownlinkPath): void;
  /** Application downlinks (commands) offered each receive window. */
  attachApplicationDownlinks(downlinks: ApplicationDownlinks): void;
  /** Whether the DevEUI (16 lower-case hex digits) is a configured device. */
  knows(devEui: string): boolean;
  /** The configured class of a device (A when unknown). */
  deviceClass(devEui: string): 'A' | 'C';
  /** The device's payload codec (its formatter may encode downlinks), undefined for an unknown device. */
  payloadCodec(devEui: string): PayloadCodec | undefined;
  /** A Class C downlink now (see LorawanServer.sendClassC). */
  sendClassC(devEui: string, payload: Buffer, fport: number, confirmed: boolean): Promise<DownlinkResult>;
  /** Hands on frames still in their dedup window and waits until they are committed (and answered). */
  drain(): Promise<void>;
  /**
   * A reload (SIGHUP): the configured devices are now `profiles`. Sessions, counters and frames in flight of
   * kept devices go on untouched; added devices start from their committed state. Before start: taken as the
   * devices to start with.
   */
  reloadDevices(profiles: readonly LorawanDeviceProfile[]): Promise<DeviceChanges>;
  /** The devices' data rates, TX power and recent ADR changes; null before start. */
  radioStatus(): LorawanRadioStatus | null;
  /** Sets the devices-by-data-rate and by-TX-power gauges (at each metrics scrape). */
  refreshGauges(): void;
  readonly deviceCount: number;
}

/** A path that reaches no gateway: joins and ACKs are refused as `no-downlink-path`. */
const NO_DOWNLINK: DownlinkPath = { canReach: () => false, send: async () => ({ ok: false, reason: 'no downlink path' }) };

export function createLorawanNetwork(options: LorawanNetworkOptions, deps: LorawanNetworkDeps): LorawanNetwork {
  const { metrics } = deps;
  let sessions: DeviceSessions | null = null;
  let deduplicator: FrameDeduplicator | null = null;
  let downlink: DownlinkPath = NO_DOWNLINK;
  let applicationDownlinks: ApplicationDownlinks | null = null;
  let devices = options.devices;
  let classes = classesOf(devices);
  let codecs = codecsOf(devices);
  let server: LorawanServer | null = null;
  let stopping = false;
  const log = deps.log.child({ component: 'ingress.lorawan' });
  const rejections = createRejections({ what: 'LoRaWAN frame', intervalMs: options.rejectLogIntervalMs }, { ...deps, log });
  // handleFrame() never rejects (the server catches everything); should that ever break: counted and logged, never unhandled.
  const inFlight = createInFlight<RecordSource>((error, source) => {
    rejections.reject('internal-error', 'handling the frame failed unexpectedly (a bug); it was not stored', {
      source,
      level: 'error',
      fields: { err: error },
    });
  });

  async function drain(): Promise<void> {
    stopping = true;
    deduplicator?.flush();
    await inFlight.settled();
  }

  return {
    name: 'lorawan.network',

    async start() {
      stopping = false;
      const persisted = await deps.loadState(STATE_SCOPE);
      const loaded = createDeviceSessions(devices, persisted, { log });
      // The server sees the attached path at send time, so a transport that attaches after start still answers.
      const path: DownlinkPath = {
        canReach: (gatewayEui) => downlink.canReach(gatewayEui),
        send: (down: ClassADownlink) => downlink.send(down),
      };
      const started = createLorawanServer(
        {
          region: options.region,
          netId: options.netId,
          stream: options.stream,
          rejectLogIntervalMs: options.rejectLogIntervalMs,
          ...(options.fCntRecovery === undefined ? {} : { fCntRecovery: options.fCntRecovery }),
          ...(options.mac === undefined ? {} : { mac: options.mac }),
        },
        {
          accept: deps.accept,
          sessions: loaded,
          downlink: path,
          applicationDownlinks: {
            wants: (devEui) => applicationDownlinks?.wants(devEui) ?? false,
            windowOpened: async (window) => (await applicationDownlinks?.windowOpened(window)) ?? false,
          },
          log: deps.log,
          metrics,
          ...(deps.clockTrusted === undefined ? {} : { clockTrusted: deps.clockTrusted }),
          ...(deps.onReject === undefined ? {} : { onReject: deps.onReject }),
          ...(deps.logBudget === undefined ? {} : { logBudget: deps.logBudget }),
        },
      );
      deduplicator = createFrameDeduplicator({ windowMs: options.dedupWindowMs }, (frame) => inFlight.track(started.handleFrame(frame), frame.source));
      server = started;
      sessions = loaded;
    },

    async stop() {
      await drain();
      deduplicator = null;
      sessions = null;
      server = null;
    },

    health(): HealthReport {
      return sessions === null ? { status: 'down', detail: 'not started' } : { status: 'ok' };
    },

    receive(phyPayload, reception, source) {
      if (stopping || deduplicator === null) {
        rejections.reject('shutting-down', 'frame heard while stopping', { source, level: 'none' });
        return;
      }
      if (inFlight.size + deduplicator.pending >= options.maxFramesInFlight) {
        rejections.reject(
          'overloaded',
          `${options.maxFramesInFlight} frames are waiting for the buffer (lorawan.max_frames_in_flight); new frames are refused until it catches up. A slow SD card, or more traffic than this box handles: see npm run bench`,
          { source, fields: { maxFramesInFlight: options.maxFramesInFlight } },
        );
        return;
      }
      deduplicator.add(phyPayload, reception, source);
    },

    claims(phyPayload) {
      if (sessions === null) return false;
      const parsed = parsePhyPayload(phyPayload);
      if (!parsed.ok) return false;
      const frame = parsed.frame;
      if (frame.kind === 'data') return frame.direction === 'up' && sessions.byDevAddr(frame.devAddr).length > 0;
      if (frame.kind === 'join-request') return sessions.byDevEui(frame.devEui)?.profile.activation.mode === 'otaa';
      return false;
    },

    attachDownlink(path) {
      downlink = path;
    },

    attachApplicationDownlinks(downlinks) {
      applicationDownlinks = downlinks;
    },

    knows: (devEui) => classes.has(devEui),
    deviceClass: (devEui) => classes.get(devEui) ?? 'A',
    payloadCodec: (devEui) => codecs.get(devEui),
    async sendClassC(devEui, payload, fport, confirmed) {
      if (server === null || stopping) return { ok: false, reason: 'the LoRaWAN network is not running' };
      return server.sendClassC(devEui, payload, fport, confirmed);
    },

    drain,

    async reloadDevices(profiles) {
      let changes: DeviceChanges;
      if (sessions === null) {
        const before = new Set(devices.map((device) => device.devEui));
        const after = new Set(profiles.map((device) => device.devEui));
        changes = {
          added: [...after].filter((devEui) => !before.has(devEui)),
          removed: [...before].filter((devEui) => !after.has(devEui)),
          changed: [],
        };
      } else {
        // Read before the synchronous swap: a frame of a kept device is never handled against half-applied devices.
        const persisted = await deps.loadState(STATE_SCOPE);
        changes = sessions.replaceProfiles(profiles, persisted);
        server?.forgetDevices(changes.removed);
      }
      devices = profiles;
      classes = classesOf(profiles);
      codecs = codecsOf(profiles);
      return changes;
    },

    radioStatus: () => server?.radioStatus() ?? null,

    refreshGauges() {
      const status = server?.radioStatus();
      if (status === undefined) return;
      metrics.lorawanDevicesByDataRate.reset();
      metrics.lorawanDevicesByTxPower.reset();
      for (const [dr, count] of Object.entries(status.byDataRate)) metrics.lorawanDevicesByDataRate.set({ dr }, count);
      for (const [index, count] of Object.entries(status.byTxPowerIndex)) metrics.lorawanDevicesByTxPower.set({ index }, count);
    },

    get deviceCount() {
      return sessions?.size ?? devices.length;
    },
  };
}

function classesOf(devices: readonly LorawanDeviceProfile[]): ReadonlyMap<string, 'A' | 'C'> {
  return new Map(devices.map((device) => [device.devEui, device.deviceClass ?? 'A'] as const));
}

function codecsOf(devices: readonly LorawanDeviceProfile[]): ReadonlyMap<string, PayloadCodec> {
  return new Map(devices.map((device) => [device.devEui, device.codec] as const));
}
