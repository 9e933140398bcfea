// The gateway's LoRaWAN ingress in one region (Semtech UDP listener + LoRaWAN network) on an ephemeral loopback
// port, with an `accept` that keeps what it is given and plays the buffer's committed device state; and
// simulated packet forwarders attached to it. Stopped through the test context.
import type { TestContext } from 'node:test';
import type { LorawanDeviceConfigEntry } from '../../firmware-sim/state/lorawan-fleet-state.ts';
import { createSimulatedForwarder, type SimulatedForwarder } from '../../firmware-sim/transports/packet-forwarder.ts';
import type { StateWrite } from '../../src/buffer/record-buffer.ts';
import { builtinCodec } from '../../src/codecs/payload-codec.ts';
import { createMetrics, type Metrics } from '../../src/core/metrics.ts';
import type { Accept } from '../../src/ingress/ingress.ts';
import type { Region } from '../../src/ingress/lorawan/region.ts';
import { deviceProfileFromEntry } from '../../src/ingress/lorawan-server/lorawan-config.ts';
import { DEFAULT_MAC, type MacOptions } from '../../src/ingress/lorawan-server/lorawan-server.ts';
import { createLorawanNetwork } from '../../src/ingress/lorawan-server/lorawan-network.ts';
import { createSemtechUdpIngress } from '../../src/ingress/semtech-udp/semtech-udp-ingress.ts';
import type { NewRecord } from '../../src/record/record.ts';
import { captureLog } from './capture-log.ts';
import { waitFor } from './wait-for.ts';

export interface LorawanIngress {
  /** What was committed, in order. */
  readonly records: NewRecord[];
  readonly port: number;
  readonly metrics: Metrics;
  /** A simulated packet forwarder whose downlink route (PULL_DATA) the ingress has taken. */
  forwarder(eui: string): Promise<SimulatedForwarder>;
}

export interface LorawanIngressOptions {
  /** MAC options over DEFAULT_MAC (ADR, DevStatusReq, receive windows); with any, the clock counts as synchronized (DeviceTimeAns). */
  readonly mac?: Partial<MacOptions>;
  /** Default 100 ms. */
  readonly dedupWindowMs?: number;
}

export async function startLorawanIngress(
  t: TestContext,
  region: Region,
  devices: readonly LorawanDeviceConfigEntry[],
  options: LorawanIngressOptions = {},
): Promise<LorawanIngress> {
  const metrics = createMetrics({ processMetrics: false });
  const records: NewRecord[] = [];
  const state = new Map<string, string>();
  const accept: Accept = async (batch, writes: readonly StateWrite[] = []) => {
    records.push(...batch);
    for (const write of writes) {
      if (write.value === null) state.delete(write.key);
      else state.set(write.key, write.value);
    }
    return { ok: true, seqs: batch.map((_, index) => index) };
  };
  const log = captureLog('error').log;
  const network = createLorawanNetwork(
    {
      region,
      netId: '000000',
      dedupWindowMs: options.dedupWindowMs ?? 100,
      maxFramesInFlight: 10_000,
      stream: 'uplink',
      rejectLogIntervalMs: 60_000,
      devices: devices.map((entry) => deviceProfileFromEntry(entry, (choice) => builtinCodec(choice.codec === 'cayenne-lpp' ? 'cayenne-lpp' : 'raw'))),
      ...(options.mac === undefined ? {} : { mac: { ...DEFAULT_MAC, ...options.mac } }),
    },
    { accept, loadState: async () => new Map(state), log, metrics, ...(options.mac === undefined ? {} : { clockTrusted: () => true }) },
  );
  const ingress = createSemtechUdpIngress(
    { host: '127.0.0.1', port: 0, gatewayStatusStream: null, allowedGateways: null, maxGateways: 100, maxDatagramsPerSecondPerSource: 100_000 },
    { network, accept, log, metrics },
  );
  await network.start();
  await ingress.start();
  t.after(async () => {
    await ingress.stop();
    await network.stop();
  });
  const port = ingress.address().port;
  return {
    records,
    port,
    metrics,
    async forwarder(eui) {
      const forwarder = createSimulatedForwarder({ gatewayEui: eui, server: { host: '127.0.0.1', port }, keepaliveMs: 1_000 });
      await forwarder.start();
      t.after(() => forwarder.stop());
      await waitFor(() => ingress.gateways().some((gateway) => gateway.gatewayEui === eui && gateway.pullRoute !== null), `a downlink route to ${eui}`);
      return forwarder;
    },
  };
}
