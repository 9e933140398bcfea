// A reload of lorawan.devices (SIGHUP) on the running LoRaWAN network: kept devices go on with their live
// counters (a replay stays a replay), an added device starts from the state committed for it before (a device
// removed and added back keeps its counters), a removed device's frames are refused as unknown, and an ABP
// device whose keys changed starts a new session. Frames are built by the repo's device-side encoder.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RAW_CODEC } from '../../../src/codecs/payload-codec.ts';
import { createMetrics } from '../../../src/core/metrics.ts';
import type { Accept } from '../../../src/ingress/ingress.ts';
import { encodeDataFrame } from '../../../src/ingress/lorawan/frame-crypto.ts';
import { EU868 } from '../../../src/ingress/lorawan/region.ts';
import type { LorawanDeviceProfile } from '../../../src/ingress/lorawan-server/device-sessions.ts';
import { createLorawanNetwork } from '../../../src/ingress/lorawan-server/lorawan-network.ts';
import type { NewRecord } from '../../../src/record/record.ts';
import { captureLog } from '../../helpers/capture-log.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { testReception } from '../../helpers/lorawan-reception.ts';

function abpDevice(index: number, keyByte = index): LorawanDeviceProfile {
  return {
    devEui: `00000000000000${index.toString(16).padStart(2, '0')}`,
    name: `meter-${index}`,
    codec: RAW_CODEC,
    activation: {
      mode: 'abp',
      devAddr: `260000${index.toString(16).padStart(2, '0')}`,
      nwkSKey: Buffer.alloc(16, keyByte),
      appSKey: Buffer.alloc(16, keyByte + 100),
    },
  };
}

function uplink(device: LorawanDeviceProfile, fcnt32: number): Buffer {
  const { activation } = device;
  assert.ok(activation.mode === 'abp');
  return encodeDataFrame({
    mtype: 'UnconfirmedDataUp',
    devAddr: activation.devAddr,
    fcnt32,
    fport: 2,
    payload: Buffer.from(`${device.name} ${fcnt32}`),
    nwkSKey: activation.nwkSKey,
    appSKey: activation.appSKey,
  });
}

async function startNetwork(devices: readonly LorawanDeviceProfile[]) {
  const state = new Map<string, string>();
  const records: NewRecord[] = [];
  const rejections: string[] = [];
  const accept: Accept = async (batch, writes = []) => {
    records.push(...batch);
    for (const write of writes) if (write.value !== null) state.set(write.key, write.value);
    return { ok: true, seqs: batch.map((_, index) => index) };
  };
  const { log } = captureLog('info');
  const network = createLorawanNetwork(
    { region: EU868, netId: '000013', dedupWindowMs: 0, stream: 'uplink', rejectLogIntervalMs: 60_000, devices, maxFramesInFlight: 100 },
    {
      accept,
      log,
      metrics: createMetrics({ processMetrics: false }),
      loadState: async () => new Map(state),
      onReject: (_source, reason, detail) => rejections.push(`${reason}: ${detail}`),
    },
  );
  await network.start();
  let tmst = 0;
  return {
    network,
    records,
    rejections,
    /** Sends one frame and waits until it was stored or refused. */
    async send(phyPayload: Buffer): Promise<void> {
      const before = records.length + rejections.length;
      tmst += 1_000_000;
      network.receive(phyPayload, testReception({ timestampUs: tmst }), 'semtech-udp');
      await waitFor(() => records.length + rejections.length > before, 'the frame stored or refused');
    },
  };
}

test('reload of lorawan.devices: kept devices keep their counters, added ones start, removed ones are unknown, new ABP keys start over', async () => {
  const [one, two, three] = [abpDevice(1), abpDevice(2), abpDevice(3)] as const;
  const lab = await startNetwork([one, two]);
  await lab.send(uplink(one, 10));
  await lab.send(uplink(two, 20));
  await lab.send(uplink(three, 1));
  assert.match(lab.rejections.at(-1) ?? '', /^unknown-devaddr: no device with DevAddr 26000003/);

  // Device two's keys change, three is added, one is kept.
  const twoRekeyed = abpDevice(2, 42);
  const changes = await lab.network.reloadDevices([one, twoRekeyed, three]);
  assert.deepEqual(changes, { added: ['0000000000000003'], removed: [], changed: ['0000000000000002'] });
  assert.equal(lab.network.knows('0000000000000003'), true);

  await lab.send(uplink(one, 10));
  assert.match(lab.rejections.at(-1) ?? '', /^retransmission|^replay/, 'a kept device: its frame 10 is not stored twice');
  await lab.send(uplink(one, 11));
  await lab.send(uplink(three, 1));
  await lab.send(uplink(twoRekeyed, 5));
  assert.deepEqual(
    lab.records.map((record) => `${record.key}`),
    ['0000000000000001', '0000000000000002', '0000000000000001', '0000000000000003', '0000000000000002'],
  );
  await lab.send(uplink(two, 21));
  assert.match(lab.rejections.at(-1) ?? '', /^mic-mismatch/, 'the old keys of device two are no longer accepted');

  // One is removed: its frames are unknown now. Added back, it goes on from its committed counter.
  const removal = await lab.network.reloadDevices([twoRekeyed, three]);
  assert.deepEqual(removal, { added: [], removed: ['0000000000000001'], changed: [] });
  assert.equal(lab.network.knows('0000000000000001'), false);
  await lab.send(uplink(one, 12));
  assert.match(lab.rejections.at(-1) ?? '', /^unknown-devaddr/);
  await lab.network.reloadDevices([one, twoRekeyed, three]);
  await lab.send(uplink(one, 11));
  assert.match(lab.rejections.at(-1) ?? '', /^replay|^retransmission/, 'its committed counter came back with it');
  const stored = lab.records.length;
  await lab.send(uplink(one, 13));
  assert.equal(lab.records.length, stored + 1);
  await lab.network.stop();
});

test('reload of lorawan.devices: a profile change (name, class) applies to the next record and keeps the session', async () => {
  const meter = abpDevice(5);
  const lab = await startNetwork([meter]);
  await lab.send(uplink(meter, 1));
  const renamed: LorawanDeviceProfile = { ...meter, name: 'meter-renamed', deviceClass: 'C' };
  assert.deepEqual(await lab.network.reloadDevices([renamed]), { added: [], removed: [], changed: ['0000000000000005'] });
  assert.equal(lab.network.deviceClass('0000000000000005'), 'C');
  await lab.send(uplink(meter, 2));
  const value = JSON.parse(lab.records.at(-1)?.payload.toString() ?? '{}') as { end_device_ids: { device_id: string } };
  assert.equal(value.end_device_ids.device_id, 'meter-renamed');
  assert.equal(lab.records.length, 2);
  assert.deepEqual(await lab.network.reloadDevices([renamed]), { added: [], removed: [], changed: [] }, 'nothing changed, nothing reported');
  await lab.network.stop();
});
