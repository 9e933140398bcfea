// The air between simulated LoRaWAN devices and G simulated packet forwarders (packet-forwarder.ts): a
// transmission is heard by the device's home forwarder (and, for a share of them, the next one too, with a
// weaker signal), and a downlink a forwarder is asked to send reaches the device listening for it.
// The device's radio link (radio-link.ts) sets the RSSI and SNR each forwarder reports; a forwarder that hears a
// frame below its spreading factor's demodulation floor does not report it, and a frame no forwarder hears is lost.
//
// Radio timing: a downlink counts only if it reached the forwarder before its transmit time (its tmst) and
// that time, its frequency and its data rate are those of one of the windows the device listens in after its
// last uplink on that forwarder (RX1/RX2, or the join windows, as the region says); the device takes it at
// once instead of waiting for the window, so runs stay fast. The device picks its channel and data rate.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Txpk } from '../../src/ingress/semtech-udp/packets.ts';
import { parseLoraDatr } from '../../src/ingress/lorawan/airtime.ts';
import type { Random } from '../fleet.ts';
import { createSimulatedForwarder, type SimulatedForwarder } from './packet-forwarder.ts';
import { demodulates, type LinkSample, type RadioLink, SECOND_GATEWAY_EXTRA_LOSS_DB } from './radio-link.ts';

/** Who transmits: where it stands (home forwarder), its own random numbers, its radio path. */
export interface Transmitter {
  /** Index of the forwarder closest to the device; the second one (two-gateway frames) is the next. */
  readonly homeGateway: number;
  readonly random: Random;
  /** The path to its home forwarder; null: right next to it (an attacker replaying frames), always heard. */
  readonly link: RadioLink | null;
}

/** A channel and a data rate. */
export interface RadioSettings {
  readonly frequencyHz: number;
  /** Semtech form, e.g. 'SF7BW125'. */
  readonly datr: string;
}

/** How one transmission goes on air. */
export interface TransmitSettings extends RadioSettings {
  /** EIRP, dBm. */
  readonly txPowerDbm: number;
}

/** A downlink as the device's radio receives it. */
export interface HeardDownlink {
  /** The forwarder's transmit power (txpk powe), dBm. */
  readonly powerDbm: number;
  readonly datr: string;
  readonly frequencyHz: number;
}

/** What one forwarder reported of a transmission (the rxpk rssi and lsnr). */
export interface HeardBy extends LinkSample {
  readonly gatewayEui: string;
}

/** One receive window: when (seconds after the uplink), on which frequency and at which data rate. */
export interface ReceiveWindowSettings extends RadioSettings {
  readonly delayS: number;
}

/** What a device listens for after an uplink. */
export interface DownlinkWindows {
  /** RX1 and RX2, or the join-accept windows. */
  readonly windows: readonly ReceiveWindowSettings[];
  /** Returns true when the downlink was for this device (taken or deliberately missed). */
  offer(phy: Buffer, heard: HeardDownlink): boolean;
}

export interface Transmission {
  /** EUIs of the forwarders that pushed it (one or two; none when the frame was lost). */
  readonly gateways: string[];
  /** What each of them reported, in the same order. */
  readonly heardBy: readonly HeardBy[];
  /** How many of those pushes got their PUSH_ACK. */
  readonly pushAcked: number;
  /** Stops listening for this transmission's downlink (call once the device stopped waiting). */
  stopListening(): void;
}

export interface AirCounters {
  readonly pushSent: number;
  readonly pushAcked: number;
  /** PULL_RESP received by the forwarders. */
  readonly downlinks: number;
  /** Downlinks that reached their forwarder after their transmit time (answered TOO_LATE). */
  readonly lateDownlinks: number;
  /** Downlinks no listening device took (wrong window, frequency or data rate, foreign DevAddr, bad MIC). */
  readonly unmatchedDownlinks: number;
}

export interface LorawanAir {
  /** Forwarder EUIs, in index order. */
  readonly gatewayEuis: readonly string[];
  /** Starts the forwarders and waits (up to 5 s) for each downlink route (PULL_ACK). */
  start(signal: AbortSignal): Promise<void>;
  /** Pushes one transmission through the forwarder(s) that hear it; `listen` is in place before it leaves. */
  transmit(from: Transmitter, phy: Buffer, radio: TransmitSettings, listen?: DownlinkWindows): Promise<Transmission>;
  counters(): AirCounters;
  stop(): Promise<void>;
}

export interface LorawanAirOptions {
  /** The gateway's Semtech UDP listener. */
  readonly server: { readonly host: string; readonly port: number };
  readonly gateways: number;
  /** Share of transmissions heard by two forwarders (needs gateways >= 2), 0..1. */
  readonly twoGatewayShare: number;
}

const GATEWAY_EUI_PREFIX = 'aa555a00';
const ROUTE_WAIT_MS = 5_000;

interface Listener extends DownlinkWindows {
  /** Forwarder EUI -> its tmst at the uplink. */
  readonly uplinkTmst: ReadonlyMap<string, number>;
}

/** EUIs of the simulated forwarders: aa555a00 + index, the same in every run. */
export function simulatedGatewayEuis(count: number): string[] {
  return Array.from({ length: count }, (_, index) => `${GATEWAY_EUI_PREFIX}${(index + 1).toString(16).padStart(8, '0')}`);
}

export function createLorawanAir(options: LorawanAirOptions): LorawanAir {
  const euis = simulatedGatewayEuis(options.gateways);
  const forwarders = euis.map((gatewayEui) => createSimulatedForwarder({ gatewayEui, server: options.server, keepaliveMs: 5_000 }));
  const listeners = new Set<Listener>();
  const misses = { lateDownlinks: 0, unmatchedDownlinks: 0 };
  forwarders.forEach((forwarder, index) => {
    forwarder.onDownlink((txpk, _receivedAtMono, receivedAtTmst) => routeDownlink(txpk, receivedAtTmst, euis[index] as string, listeners, misses));
  });

  return {
    gatewayEuis: euis,
    async start(signal) {
      await Promise.all(forwarders.map((forwarder) => forwarder.start()));
      // Downlinks need the route a PULL_DATA opens: wait for each forwarder's PULL_ACK (or give up quietly).
      const routeDeadline = performance.now() + ROUTE_WAIT_MS;
      while (forwarders.some((forwarder) => forwarder.counters().pullAcked === 0) && performance.now() < routeDeadline && !signal.aborted) await sleep(10);
    },
    async transmit(from, phy, radio, listen) {
      const pushes = receptions(from, phy, radio, forwarders, euis, options.gateways >= 2 ? options.twoGatewayShare : 0);
      const uplinkTmst = new Map(pushes.map(({ eui, input }) => [eui, input.tmst]));
      const listener = listen === undefined ? null : { ...listen, uplinkTmst };
      if (listener !== null) listeners.add(listener);
      const acked = await Promise.all(pushes.map(({ forwarder, input }) => forwarder.pushRxpk([input])));
      return {
        gateways: pushes.map(({ eui }) => eui),
        heardBy: pushes.map(({ eui, input }) => ({ gatewayEui: eui, rssiDbm: input.rssi, snrDb: input.lsnr })),
        pushAcked: acked.filter(Boolean).length,
        stopListening: () => {
          if (listener !== null) listeners.delete(listener);
        },
      };
    },
    counters() {
      const counters = forwarders.map((forwarder) => forwarder.counters());
      const sum = (key: 'pushSent' | 'pushAcked' | 'downlinks'): number => counters.reduce((total, counter) => total + counter[key], 0);
      return { pushSent: sum('pushSent'), pushAcked: sum('pushAcked'), downlinks: sum('downlinks'), ...misses };
    },
    async stop() {
      await Promise.all(forwarders.map((forwarder) => forwarder.stop()));
    },
  };
}

/**
 * The forwarders that hear a transmission, each with the rxpk it reports: the second one (two-gateway frames) is
 * farther away, so weaker; one that hears the frame below its demodulation floor reports nothing.
 */
function receptions(
  from: Transmitter,
  phy: Buffer,
  radio: TransmitSettings,
  forwarders: readonly SimulatedForwarder[],
  euis: readonly string[],
  twoGatewayShare: number,
) {
  const home = from.homeGateway;
  const indexes = from.random() < twoGatewayShare ? [home, (home + 1) % forwarders.length] : [home];
  const freqMhz = radio.frequencyHz / 1e6;
  const rate = parseLoraDatr(radio.datr);
  return indexes.flatMap((index, order) => {
    const signal = signalAt(from, radio, rate?.bandwidthKHz ?? 125, order);
    if (rate !== null && !demodulates(signal.snrDb, rate.spreadingFactor)) return [];
    const forwarder = forwarders[index] as SimulatedForwarder;
    const tmst = forwarder.tmst();
    return [{ forwarder, eui: euis[index] as string, input: { phyPayload: phy, tmst, freqMhz, datr: radio.datr, rssi: signal.rssiDbm, lsnr: signal.snrDb } }];
  });
}

/** What the `order`-th forwarder (0: home) measures: the device's link, or a strong signal from next to it. */
function signalAt(from: Transmitter, radio: TransmitSettings, bandwidthKHz: number, order: number): LinkSample {
  if (from.link !== null) return from.link.sample(radio.txPowerDbm, bandwidthKHz, order * SECOND_GATEWAY_EXTRA_LOSS_DB);
  return { rssiDbm: Math.round(-70 - from.random() * 30 - order * 15), snrDb: Math.round((9 - from.random() * 12 - order * 5) * 10) / 10 };
}

/** Answers a PULL_RESP the way a forwarder's radio would: too late, or on air to whoever listens in that window. */
function routeDownlink(
  txpk: Txpk,
  receivedAtTmst: number,
  eui: string,
  listeners: ReadonlySet<Listener>,
  misses: { lateDownlinks: number; unmatchedDownlinks: number },
): string {
  if (txpk.tmst === undefined) return 'NONE';
  // µs from arrival to transmit time, modulo the 32-bit counter: "negative" means the window has passed.
  const leadUs = (txpk.tmst - receivedAtTmst) >>> 0;
  if (leadUs === 0 || leadUs >= 2 ** 31) {
    misses.lateDownlinks += 1;
    return 'TOO_LATE';
  }
  const phy = Buffer.from(txpk.data, 'base64');
  const frequencyHz = Math.round(txpk.freq * 1e6);
  const datr = txpk.datr.toUpperCase();
  const heard: HeardDownlink = { powerDbm: txpk.powe, datr, frequencyHz };
  for (const listener of listeners) {
    const uplinkTmst = listener.uplinkTmst.get(eui);
    if (uplinkTmst === undefined) continue;
    const inWindow = (window: ReceiveWindowSettings): boolean =>
      (uplinkTmst + window.delayS * 1_000_000) >>> 0 === txpk.tmst && window.frequencyHz === frequencyHz && window.datr.toUpperCase() === datr;
    if (!listener.windows.some(inWindow)) continue;
    if (listener.offer(phy, heard)) return 'NONE';
  }
  misses.unmatchedDownlinks += 1;
  return 'NONE';
}
