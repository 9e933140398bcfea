// The gateway's LoRaWAN ingress (Semtech UDP listener + LoRaWAN network server) on an ephemeral loopback port, with
// the MAC options a test picks (DevStatusReq interval, ADR) and a trusted clock (DeviceTimeAns), an `accept` that
// keeps every record and plays the buffer's committed device state, and the metrics to read counters from. For the
// firmware-sim MAC and ADR tests; stopped through the test context.
import type { TestContext } from 'node:test';
import type { LorawanDeviceConfigEntry } from '../../firmware-sim/state/lorawan-fleet-state.ts';
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
import { captureLog } from '../helpers/capture-log.ts';

export interface MacGateway {
  /** Committed records, in order. */
  readonly records: NewRecord[];
  readonly port: number;
  /** A counter of the gateway's metrics with these labels (0 when never counted). */
  counter(name: 'lorawanAdr' | 'lorawanMacCommands', labels: Readonly<Record<string, string>>): Promise<number>;
}

export interface MacGatewayOptions {
  readonly region: Region;
  readonly devices: readonly LorawanDeviceConfigEntry[];
  readonly mac?: Partial<MacOptions>;
}

export async function startMacGateway(t: TestContext, options: MacGatewayOptions): Promise<MacGateway> {
  const metrics: Metrics = createMetrics({ processMetrics: false });
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
      region: options.region,
      netId: '000000',
      dedupWindowMs: 50,
      maxFramesInFlight: 10_000,
      stream: 'uplink',
      rejectLogIntervalMs: 60_000,
      devices: options.devices.map((entry) => deviceProfileFromEntry(entry, (choice) => builtinCodec(choice.codec === 'cayenne-lpp' ? 'cayenne-lpp' : 'raw'))),
      mac: { ...DEFAULT_MAC, ...options.mac },
    },
    { accept, loadState: async () => new Map(state), log, metrics, clockTrusted: () => true },
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
  return {
    records,
    port: ingress.address().port,
    async counter(name, labels) {
      const metric = await metrics[name].get();
      const found = metric.values.find((value) =>
        Object.entries(labels).every(([key, expected]) => (value.labels as Record<string, unknown>)[key] === expected),
      );
      return found?.value ?? 0;
    },
  };
}
