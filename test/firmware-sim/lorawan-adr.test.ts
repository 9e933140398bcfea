// ADR end to end: a firmware-sim device behind a simulated packet forwarder, against the gateway's real Semtech UDP
// ingress and LoRaWAN network server (ChirpStack's ADR with iotgw's data-rate backoff), over UDP on loopback. The
// device's radio link sets the SNR the forwarder reports; the device follows the LinkADRReq it gets. It starts at
// SF12 on a link that carries SF7 and is moved to DR5, then to lower TX power; then its path loss rises by 10 dB
// and the network first raises the power again and, once 20 uplinks at that power are in, lowers the data rate.
// Nothing here depends on timing: the device moves on only after its RX1, and each step is read from the records.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type DeviceFrameEvent, lorawanDevicesConfig, runLorawanFleet, type SentFrame } from '../../firmware-sim/lorawan-fleet.ts';
import { EU868 } from '../../src/ingress/lorawan/region.ts';
import { ADR_HISTORY_SIZE, requiredSnrDb } from '../../src/ingress/lorawan-server/adr.ts';
import type { NewRecord } from '../../src/record/record.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { startMacGateway } from './lorawan-mac-gateway.ts';

interface StoredUplink {
  readonly uplink_message: {
    readonly f_cnt?: number;
    readonly settings: { readonly data_rate: { readonly lora: { readonly spreading_factor: number; readonly bandwidth: number } } };
    readonly rx_metadata: readonly { readonly snr?: number; readonly rssi: number }[];
  };
}

function stored(record: NewRecord): StoredUplink {
  return JSON.parse(Buffer.from(record.payload).toString('utf8')) as StoredUplink;
}

/**
 * EU868: TXPower 0 is 16 dBm, each index 2 dB less; the noise floor at 125 kHz is -117 dBm. ADR (installation
 * margin 10 dB, one step per 3 dB, truncated) on the path losses below:
 *   126.5 dB: SNR +6.5 dB at 16 dBm. At SF12 (floor -20 dB) 16.5 dB of margin, 5 steps: DR5. At SF7 (floor -7.5 dB)
 *             4 dB, one step: TXPower 1 (14 dBm), where +4.5 dB of SNR leaves 2 dB: settled.
 *   134.4 dB: SNR -3.4 dB at 14 dBm, -5.9 dB of margin, one step back: TXPower 0 (once 20 uplinks at the weaker
 *             link are known). -1.4 dB there, -3.9 dB: one more step, and the power is at its maximum, so the data
 *             rate goes down: DR4 (SF8, floor -10 dB), where the margin is -1.4 dB: settled.
 * Each margin is at least 0.4 dB from the edge of a step once the best of 20 SNRs (+/-0.5 dB of jitter) is taken.
 */
const PATH_LOSS_DB = 126.5;
const DEGRADED_PATH_LOSS_DB = 134.4;

test('ADR: a device at SF12 on a link that carries SF7 is moved to DR5 and lower power; when its link degrades the network raises its power first, then lowers its data rate', async (t) => {
  const shape = { devices: 1, otaaShare: 0, seed: 61 };
  const gateway = await startMacGateway(t, { region: EU868, devices: lorawanDevicesConfig(shape), mac: { devStatusIntervalMs: 0 } });

  // The link degrades once the device has settled: three uplinks in a row at DR5 and the same TX power.
  let degradedFromFcnt: number | null = null;
  const settled: SentFrame[] = [];
  const onFrame = (event: DeviceFrameEvent): void => {
    if (degradedFromFcnt !== null || event.frame.kind !== 'uplink') return;
    const last = settled.at(-1);
    if (event.frame.dataRate !== 5 || (last !== undefined && last.txPowerIndex !== event.frame.txPowerIndex)) settled.length = 0;
    if (event.frame.dataRate === 5) settled.push(event.frame);
    if (settled.length === 3) {
      event.setPathLossDb(DEGRADED_PATH_LOSS_DB);
      degradedFromFcnt = event.frame.fcnt + 1;
    }
  };
  const report = await runLorawanFleet(
    {
      server: { host: '127.0.0.1', port: gateway.port },
      gateways: 1,
      ratePerSecond: 0,
      messagesPerDevice: 52,
      initialDataRate: 0,
      pathLossDb: PATH_LOSS_DB,
      ...shape,
    },
    { onFrame },
  );
  const [device] = report.devices;
  assert.ok(device !== undefined);
  const uplinks = device.frames.filter((frame) => frame.kind === 'uplink');
  assert.equal(uplinks.length, 52);
  assert.ok(degradedFromFcnt !== null, 'the device settled at DR5 before its link degraded');
  const degradedAt = degradedFromFcnt;

  // Every frame was heard: the link allowed each one (the degraded link leaves SF7 4 dB above its floor), and each is stored once.
  assert.equal(report.totals.lost, 0);
  await waitFor(() => gateway.records.length === uplinks.length, 'every uplink stored');
  const byFcnt = new Map(gateway.records.map((record) => [stored(record).uplink_message.f_cnt ?? 0, stored(record)]));
  for (const frame of uplinks) {
    const record = byFcnt.get(frame.fcnt);
    assert.ok(record !== undefined, `FCnt ${frame.fcnt} stored`);
    const lora = record.uplink_message.settings.data_rate.lora;
    assert.equal(`SF${lora.spreading_factor}BW${lora.bandwidth / 1000}`, frame.datr, `FCnt ${frame.fcnt}: stored with the data rate it went at`);
    // The forwarder reports the SNR and RSSI of the device's link.
    assert.equal(record.uplink_message.rx_metadata[0]?.snr, frame.snrDb, `FCnt ${frame.fcnt}: SNR`);
  }

  // Phase 1: the stored data rate rises from SF12 to SF7 and stays there; the TX power steps down once it is there.
  const spreadingFactor = (fcnt: number): number | undefined => byFcnt.get(fcnt)?.uplink_message.settings.data_rate.lora.spreading_factor;
  assert.equal(spreadingFactor(0), 12, 'the first uplink at SF12 (DR0)');
  const before = uplinks.filter((frame) => frame.fcnt > 0 && frame.fcnt < degradedAt);
  assert.ok(
    before.every((frame) => spreadingFactor(frame.fcnt) === 7),
    'then SF7 (DR5) until the link degrades',
  );
  const powers = before.map((frame) => frame.txPowerDbm);
  assert.deepEqual(
    powers,
    [...powers].sort((a, b) => b - a),
    'the TX power only goes down',
  );
  assert.ok((powers.at(-1) ?? 16) < (powers.at(0) ?? 0), `the TX power went down at DR5 (${powers.join(', ')} dBm)`);

  // Phase 2: the network raises the power first (the data rate stays), 20 uplinks into the degraded link...
  const changes = device.mac.adrChanges;
  assert.ok(
    changes.every((change) => change.cause === 'LinkADRReq'),
    'every change came from the network',
  );
  const afterDegrading = changes.filter((change) => change.fromFcnt > degradedAt);
  const [powerUp, dataRateDown] = afterDegrading;
  assert.ok(powerUp !== undefined && dataRateDown !== undefined, `two changes after the link degraded, got ${JSON.stringify(afterDegrading)}`);
  const settledPower = before.at(-1)?.txPowerIndex ?? 0;
  assert.equal(powerUp.dataRate, 5, 'the data rate stays at first');
  assert.ok(powerUp.txPowerIndex < settledPower, `the TX power goes up (TXPower ${settledPower} -> ${powerUp.txPowerIndex})`);
  assert.ok(powerUp.fromFcnt - degradedAt >= ADR_HISTORY_SIZE, 'only once 20 uplinks of the weaker link are known');
  // ...and lowers the data rate once 20 uplinks at that power are in.
  assert.equal(dataRateDown.txPowerIndex, powerUp.txPowerIndex, 'the power stays');
  assert.ok(dataRateDown.dataRate < 5, `then the data rate goes down (DR${dataRateDown.dataRate})`);
  assert.ok(dataRateDown.fromFcnt - powerUp.fromFcnt >= ADR_HISTORY_SIZE, 'once its history at the new power is full');
  assert.equal(afterDegrading.length, 2, 'and then the link is where it should be');

  // The device ends at a data rate its new link carries, as the stored records show.
  const last = uplinks.at(-1);
  assert.ok(last !== undefined && last.snrDb !== null);
  assert.equal(device.radio.dataRate, dataRateDown.dataRate);
  assert.equal(spreadingFactor(last.fcnt), EU868.dataRates.get(dataRateDown.dataRate)?.spreadingFactor);
  assert.ok(last.snrDb >= (requiredSnrDb(EU868.dataRates.get(device.radio.dataRate)?.spreadingFactor ?? 0) ?? 0), `SNR ${last.snrDb} dB is above the floor`);

  // The gateway counts each applied change, as the device made them.
  assert.equal(await gateway.counter('lorawanAdr', { result: 'applied' }), changes.length);
  assert.equal(report.totals.adrChanges.linkAdrReq, changes.length);
  assert.deepEqual(report.totals.dataRates, { [`DR${dataRateDown.dataRate}`]: 1 });
  assert.deepEqual(device.mac.refused, {}, 'the device refused nothing');
});
