// LoRaWAN from local packet forwarders: the UDP transport (acks, gateway routes) hands rxpk with a good
// CRC to the shared LoRaWAN network (dedup, MIC, counters, decryption, joins), and is the network's
// downlink path: join-accepts and ACKs go back out as PULL_RESP. Gateway `stat` reports become metrics,
// and records on their own stream when configured.
import type { AddressInfo } from 'node:net';
import type { Component, HealthReport } from '../../core/lifecycle.ts';
import type { IngressDeps } from '../ingress.ts';
import type { LorawanNetwork } from '../lorawan-server/lorawan-network.ts';
import type { ClassADownlink } from '../lorawan-server/lorawan-server.ts';
import type { Reception } from '../lorawan-server/reception.ts';
import { createRejections } from '../rejections.ts';
import type { GatewayStat, Rxpk } from './packets.ts';
import type { GatewayInfo } from './gateway-registry.ts';
import { createUdpTransport, type UdpTransport } from './udp-transport.ts';

export interface SemtechUdpIngressOptions {
  readonly host: string;
  readonly port: number;
  /** null: stat reports are metrics only. */
  readonly gatewayStatusStream: string | null;
  /** lorawan.gateways by lower-case EUI, with their pinned source addresses; null = any gateway. */
  readonly allowedGateways: ReadonlyMap<string, readonly string[]> | null;
  readonly maxGateways: number;
  readonly maxDatagramsPerSecondPerSource: number;
  /** A dropped datagram is logged at most once per source address and reason per interval (default 600 s, as lorawan.reject_log_interval_s). */
  readonly rejectLogIntervalMs?: number;
}

/** `accept` takes the gateway status records. */
export interface SemtechUdpIngressDeps extends IngressDeps {
  readonly network: LorawanNetwork;
}

export interface SemtechUdpIngress extends Component {
  address(): AddressInfo;
  gateways(): readonly GatewayInfo[];
}

const SOURCE = 'semtech-udp';
const STAT_FIELDS = ['rxnb', 'rxok', 'rxfw', 'ackr', 'dwnb', 'txnb', 'temp'] as const;
/** A gateway's stat becomes a record at most this often (forwarders send one every 30 s by default). */
const STAT_RECORD_INTERVAL_MS = 10_000;

export function createSemtechUdpIngress(options: SemtechUdpIngressOptions, deps: SemtechUdpIngressDeps): SemtechUdpIngress {
  const log = deps.log.child({ component: 'ingress.semtech-udp' });
  const { metrics, network } = deps;
  const rejections = createRejections(
    { source: SOURCE, what: 'Semtech UDP datagram', per: 'source address and reason', intervalMs: options.rejectLogIntervalMs ?? 600_000 },
    { ...deps, log },
  );
  let transport: UdpTransport | null = null;
  let stopping = false;
  /** When each tracked gateway's stat last became a record (entries go with their gateway). */
  const lastStatRecordAtMs = new Map<string, number>();

  function toReception(gatewayEui: string, rxpk: Rxpk, receivedAtMs: number): Reception {
    return {
      gatewayEui,
      timestampUs: rxpk.tmst,
      gatewayTime: rxpk.time,
      frequencyHz: rxpk.frequencyHz,
      datr: String(rxpk.datr),
      codingRate: rxpk.codr,
      rssi: rxpk.rssi,
      signalRssi: rxpk.rssis,
      snr: rxpk.lsnr,
      channel: rxpk.chan,
      rfChain: rxpk.rfch,
      receivedAtMs,
    };
  }

  function onStat(gatewayEui: string, stat: GatewayStat): void {
    for (const field of STAT_FIELDS) {
      const value = stat[field];
      if (typeof value === 'number') metrics.lorawanGatewayStat.set({ gateway: gatewayEui, field }, value);
    }
    if (options.gatewayStatusStream === null) return;
    const receivedAtMs = Date.now();
    // A stat costs buffer space: a forwarder sending them fast (or a flood under one EUI) gets one record per interval.
    const last = lastStatRecordAtMs.get(gatewayEui);
    if (last !== undefined && receivedAtMs - last < STAT_RECORD_INTERVAL_MS && receivedAtMs >= last) return;
    lastStatRecordAtMs.set(gatewayEui, receivedAtMs);
    const value = { gateway_ids: { gateway_id: `eui-${gatewayEui}`, eui: gatewayEui.toUpperCase() }, received_at: new Date(receivedAtMs).toISOString(), stat };
    void deps
      .accept([
        {
          key: gatewayEui,
          stream: options.gatewayStatusStream,
          source: SOURCE,
          receivedAtMs,
          eventTimeMs: receivedAtMs,
          payload: Buffer.from(JSON.stringify(value)),
          meta: {},
        },
      ])
      .then((result) => {
        if (!result.ok) rejections.reject(result.reason, `stat of gateway ${gatewayEui} not stored: ${result.message}`, { logKey: `stat:${result.reason}` });
      });
  }

  return {
    name: 'ingress.semtech-udp',

    async start() {
      stopping = false;
      network.attachDownlink({
        canReach: (gatewayEui) => transport?.hasDownlinkRoute(gatewayEui) ?? false,
        send: async (down: ClassADownlink) => {
          if (transport === null) return { ok: false, reason: 'the UDP listener is stopped' };
          return transport.sendDownlink(down.gatewayEui, {
            ...(down.timestampUs === null ? { imme: true } : { tmst: down.timestampUs }),
            freq: down.frequencyHz / 1e6,
            rfch: 0,
            powe: down.powerDbm,
            modu: 'LORA',
            datr: down.datr,
            codr: down.codingRate,
            ipol: true,
            size: down.phyPayload.length,
            data: down.phyPayload.toString('base64'),
            ncrc: true,
          });
        },
      });
      const udp = createUdpTransport(
        {
          host: options.host,
          port: options.port,
          allowedGateways: options.allowedGateways,
          maxGateways: options.maxGateways,
          maxDatagramsPerSecondPerSource: options.maxDatagramsPerSecondPerSource,
        },
        {
          onRxpk(gatewayEui, rxpk, receivedAtMs) {
            if (stopping) {
              rejections.reject('shutting-down', `rxpk from gateway ${gatewayEui} heard while stopping`, { level: 'none' });
              return;
            }
            // LoRaWAN uplinks always carry a PHY CRC: a bad or missing one means a corrupted frame. Radio noise
            // makes bad CRCs routine: counted and shown, not logged.
            if (rxpk.crcStatus !== 1) {
              const reason = rxpk.crcStatus === -1 ? 'crc-bad' : 'crc-missing';
              rejections.reject(reason, `rxpk from gateway ${gatewayEui} with ${reason === 'crc-bad' ? 'a bad' : 'no'} CRC`, { level: 'none' });
              return;
            }
            if (rxpk.modulation !== 'LORA') {
              rejections.reject('not-lora', `rxpk from gateway ${gatewayEui} is ${rxpk.modulation}, not LoRa`, { level: 'none' });
              return;
            }
            network.receive(rxpk.data, toReception(gatewayEui, rxpk, receivedAtMs), SOURCE);
          },
          onStat,
          onDrop(reason, detail) {
            const fields = { from: detail.from, ...(detail.gatewayEui === undefined ? {} : { gatewayEui: detail.gatewayEui }) };
            rejections.reject(reason, `${detail.message} (from ${detail.from})`, { logKey: `${detail.from}:${reason}`, fields });
          },
          onGatewayConnected() {
            metrics.lorawanGateways.set(udp.gatewayCount());
          },
          onGatewayLost(gatewayEui) {
            metrics.lorawanGateways.set(udp.gatewayCount());
            // Its series go with it: the label set is at most the gateways tracked at once.
            for (const field of STAT_FIELDS) metrics.lorawanGatewayStat.remove({ gateway: gatewayEui, field });
            lastStatRecordAtMs.delete(gatewayEui);
          },
        },
        { log: deps.log, ...(deps.logBudget === undefined ? {} : { logBudget: deps.logBudget }) },
      );
      await udp.start();
      transport = udp;
      const { address, port } = udp.address();
      log.info({ address, port, devices: network.deviceCount }, `LoRaWAN: listening for Semtech UDP packet forwarders on ${address}:${port}`);
    },

    async stop() {
      const udp = transport;
      // Take no new frames, let the network commit (and answer) those it holds; the socket stays open
      // meanwhile so their join-accepts and ACKs can still go out.
      stopping = true;
      await network.drain();
      if (udp !== null) await udp.stop();
      transport = null;
    },

    health(): HealthReport {
      if (transport === null) return { status: 'down', detail: 'not listening' };
      return transport.health();
    },

    address() {
      if (transport === null) throw new Error('the Semtech UDP listener is not started');
      return transport.address();
    },

    gateways: () => transport?.gateways() ?? [],
  };
}
