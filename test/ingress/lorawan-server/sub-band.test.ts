// US915/AU915: a frame heard outside lorawan.sub_band is still stored, and the log says once per frequency that
// the device or the packet forwarder is set up for another sub-band.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RAW_CODEC } from '../../../src/codecs/payload-codec.ts';
import { createMetrics } from '../../../src/core/metrics.ts';
import type { Accept } from '../../../src/ingress/ingress.ts';
import { encodeDataFrame } from '../../../src/ingress/lorawan/frame-crypto.ts';
import { regionFor } from '../../../src/ingress/lorawan/region.ts';
import { createDeviceSessions, type LorawanDeviceProfile } from '../../../src/ingress/lorawan-server/device-sessions.ts';
import { createLorawanServer } from '../../../src/ingress/lorawan-server/lorawan-server.ts';
import type { NewRecord } from '../../../src/record/record.ts';
import { captureLog } from '../../helpers/capture-log.ts';
import { testReception } from '../../helpers/lorawan-reception.ts';

const DEVICE: LorawanDeviceProfile = {
  devEui: '0000000000000915',
  name: 'meter-us',
  codec: RAW_CODEC,
  activation: { mode: 'abp', devAddr: '26000915', nwkSKey: Buffer.alloc(16, 5), appSKey: Buffer.alloc(16, 6) },
};

test('US915 sub-band 2: a frame on a sub-band-1 channel is stored, and the mismatch is logged once per frequency', async () => {
  const region = regionFor('US915', { subBand: 2 });
  assert.ok(region !== null);
  const logs = captureLog('info');
  const records: NewRecord[] = [];
  const accept: Accept = async (batch) => {
    records.push(...batch);
    return { ok: true, seqs: batch.map((_, index) => index) };
  };
  const server = createLorawanServer(
    { region, netId: '000013', stream: 'uplink', rejectLogIntervalMs: 60_000 },
    {
      accept,
      log: logs.log,
      metrics: createMetrics({ processMetrics: false }),
      sessions: createDeviceSessions([DEVICE], new Map(), { log: logs.log }),
      downlink: null,
    },
  );
  const { activation } = DEVICE;
  assert.ok(activation.mode === 'abp');
  const send = (fcnt32: number, frequencyHz: number) =>
    server.handleFrame({
      phyPayload: encodeDataFrame({
        mtype: 'UnconfirmedDataUp',
        fcnt32,
        fport: 1,
        payload: Buffer.from('x'),
        devAddr: activation.devAddr,
        nwkSKey: activation.nwkSKey,
        appSKey: activation.appSKey,
      }),
      receptions: [testReception({ timestampUs: 1, frequencyHz, datr: 'SF10BW125', rssi: -90, snr: 3 })],
      source: 'semtech-udp',
      firstSeenMono: performance.now(),
    });
  await send(1, 902_300_000);
  await send(2, 902_300_000);
  await send(3, 903_900_000);
  assert.equal(records.length, 3, 'every frame is stored');
  const warnings = logs.lines().filter((line) => /outside US915 sub-band 2/.test(String(line.msg)));
  assert.equal(warnings.length, 1, 'once for 902.3 MHz, none for 903.9 MHz (in sub-band 2)');
  assert.match(String(warnings[0]?.msg), /^a frame on 902\.3 MHz, outside US915 sub-band 2 \(lorawan\.sub_band\)/);
});
