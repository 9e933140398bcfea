// One gateway reception of a LoRaWAN frame for tests that drive the server directly: EU868 868.1 MHz, a fixed
// gateway, good signal; a test overrides what it is about (the SNR, the datr, the concentrator timestamp).
import type { Reception } from '../../src/ingress/lorawan-server/reception.ts';

export function testReception(overrides: Partial<Reception> = {}): Reception {
  return {
    gatewayEui: 'aa555a0000000001',
    timestampUs: 1_000_000,
    gatewayTime: null,
    frequencyHz: 868_100_000,
    datr: 'SF7BW125',
    codingRate: '4/5',
    rssi: -80,
    signalRssi: null,
    snr: 7,
    channel: 0,
    rfChain: 0,
    receivedAtMs: Date.now(),
    ...overrides,
  };
}
