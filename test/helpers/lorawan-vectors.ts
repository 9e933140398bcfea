// The spec vectors of test/fixtures/lorawan (from ../shared/LORAWAN.md) as the ingress tests use them: a
// PHYPayload by id, and the ABP device whose session the lp-* uplinks belong to.
import { readFileSync } from 'node:fs';
import type { LorawanDeviceProfile } from '../../src/ingress/lorawan-server/device-sessions.ts';
import { RAW_CODEC } from '../../src/codecs/payload-codec.ts';

interface Vector {
  readonly id: string;
  readonly phy_payload_hex: string;
}

const vectors = JSON.parse(readFileSync(new URL('../fixtures/lorawan/lorawan-vectors.json', import.meta.url), 'utf8')) as Vector[];

/** The PHYPayload of a vector; throws for an unknown id so a typo cannot pass as an empty frame. */
export function vectorPhyPayload(id: string): Buffer {
  const vector = vectors.find((candidate) => candidate.id === id);
  if (vector === undefined) throw new Error(`no LoRaWAN vector '${id}' in test/fixtures/lorawan/lorawan-vectors.json`);
  return Buffer.from(vector.phy_payload_hex, 'hex');
}

/** lp-test and lp-large: one ABP session (DevAddr 49be7df1), FCnt 2 and 4. */
export const VECTOR_ABP_DEVICE: LorawanDeviceProfile = {
  devEui: '0011223344556677',
  name: 'meter-1',
  codec: RAW_CODEC,
  activation: {
    mode: 'abp',
    devAddr: '49be7df1',
    nwkSKey: Buffer.from('44024241ed4ce9a68c6a8bc055233fd3', 'hex'),
    appSKey: Buffer.from('ec925802ae430ca77fd3dd73cb2cc588', 'hex'),
  },
};
