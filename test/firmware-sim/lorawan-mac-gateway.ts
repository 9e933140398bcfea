// The gateway's LoRaWAN ingress (Semtech UDP listener + LoRaWAN network server) on an ephemeral loopback port, with
// the MAC options a test picks (DevStatusReq interval, ADR) and a trusted clock (DeviceTimeAns), an `accept` that
// keeps every record and plays the buffer's committed device state, and the metrics to read counters from. For the
// firmware-sim MAC and ADR tests; stopped through the test context.
import type { TestContext } from 'node:test';
import type { LorawanDeviceConfigEntry } from '../../firmware-sim/state/lorawan-fleet-state.ts';
import type { Region } from '../../src/ingress/lorawan/region.ts';
import type { MacOptions } from '../../src/ingress/lorawan-server/lorawan-server.ts';
import type { NewRecord } from '../../src/record/record.ts';
import { startLorawanIngress } from '../helpers/lorawan-ingress.ts';

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
  const ingress = await startLorawanIngress(t, options.region, options.devices, { mac: options.mac ?? {}, dedupWindowMs: 50 });
  return {
    records: ingress.records,
    port: ingress.port,
    async counter(name, labels) {
      const metric = await ingress.metrics[name].get();
      const found = metric.values.find((value) =>
        Object.entries(labels).every(([key, expected]) => (value.labels as Record<string, unknown>)[key] === expected),
      );
      return found?.value ?? 0;
    },
  };
}
