// The join rules kept with a device's session: which DevNonces a join-request may carry, per LoRaWAN version,
// and that the rule holds across a restart (the used DevNonces are part of the committed state).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RAW_CODEC } from '../../../src/codecs/payload-codec.ts';
import { admitDevNonce, createDeviceSessions, type LorawanDevice, type MacVersion } from '../../../src/ingress/lorawan-server/device-sessions.ts';
import { captureLog } from '../../helpers/capture-log.ts';

const DEV_EUI = '0102030405060708';

function otaaDevice(macVersion: MacVersion | undefined, state = new Map<string, string>()): { device: LorawanDevice; restart(): LorawanDevice } {
  const profile = {
    devEui: DEV_EUI,
    name: 'meter',
    codec: RAW_CODEC,
    ...(macVersion === undefined ? {} : { macVersion }),
    activation: { mode: 'otaa' as const, joinEui: '0000000000000000', appKey: Buffer.alloc(16, 7) },
  };
  const { log } = captureLog('info');
  const sessions = createDeviceSessions([profile], state, { log });
  const device = sessions.byDevEui(DEV_EUI);
  assert.ok(device);
  return {
    device,
    restart() {
      const write = sessions.stateWrite(device);
      const again = createDeviceSessions([profile], new Map([[write.key, write.value ?? '']]), { log }).byDevEui(DEV_EUI);
      assert.ok(again);
      return again;
    },
  };
}

test('DevNonce, LoRaWAN 1.0.4: a counter; one not above the last accepted is a replay, also after a restart', () => {
  const { device, restart } = otaaDevice('1.0.4');
  assert.equal(admitDevNonce(device, 0), null);
  assert.equal(admitDevNonce(device, 1), null);
  assert.match(admitDevNonce(device, 1) ?? '', /^DevNonce 1 is not above the last accepted 1 .*set its mac_version/);
  assert.match(admitDevNonce(device, 0) ?? '', /not above the last accepted 1/);
  // A device may skip values (a join-request that was never heard).
  assert.equal(admitDevNonce(device, 9), null);
  const restarted = restart();
  assert.match(admitDevNonce(restarted, 5) ?? '', /not above the last accepted 9/);
  assert.equal(admitDevNonce(restarted, 10), null);
  assert.equal(admitDevNonce(restarted, 65_535), null);
  assert.notEqual(admitDevNonce(restarted, 65_535), null, 'the last DevNonce there is: the device has to be re-provisioned');
});

for (const macVersion of [undefined, '1.0.2', '1.0.3'] as const) {
  test(`DevNonce, ${macVersion ?? 'default (1.0.3)'}: random; only one used before is a replay, also after a restart`, () => {
    const { device, restart } = otaaDevice(macVersion);
    assert.equal(admitDevNonce(device, 40_000), null);
    assert.equal(admitDevNonce(device, 7), null, 'a lower one is fine: 1.0.3 devices pick at random');
    assert.equal(admitDevNonce(device, 7), 'DevNonce 7 was used before: a replayed join-request');
    const restarted = restart();
    assert.equal(admitDevNonce(restarted, 40_000), 'DevNonce 40000 was used before: a replayed join-request');
    assert.equal(admitDevNonce(restarted, 3), null);
  });
}
