// firmware-sim lorawan against the gateway's real LoRaWAN ingress (Semtech UDP listener, deduplicator,
// LoRaWAN server) in-process on an ephemeral loopback port, with an `accept` that keeps what it is given:
// ABP and OTAA uplinks decrypt to the simulator's plaintext, two-gateway frames become one record with two
// receptions, replays and forged MICs are refused and counted, confirmed uplinks are ACKed (also after a
// missed ACK, without a second record), and a state file carries counters and sessions to the next run.
// Also the CLI: --help, and --write-devices producing a file the real config loader accepts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  type LorawanDeviceConfigEntry,
  type LorawanFleetOptions,
  type LorawanFleetReport,
  lorawanDevicesConfig,
  runLorawanFleet,
} from '../../firmware-sim/lorawan-fleet.ts';
import type { StateWrite } from '../../src/buffer/record-buffer.ts';
import type { Accept } from '../../src/ingress/ingress.ts';
import { EU868 } from '../../src/ingress/lorawan/region.ts';
import { deviceProfileFromEntry } from '../../src/ingress/lorawan-server/lorawan-config.ts';
import { createLorawanNetwork } from '../../src/ingress/lorawan-server/lorawan-network.ts';
import { builtinCodec } from '../../src/codecs/payload-codec.ts';
import { createSemtechUdpIngress, type SemtechUdpIngress } from '../../src/ingress/semtech-udp/semtech-udp-ingress.ts';
import { loadConfig } from '../../src/config/load.ts';
import { createMetrics, type Metrics } from '../../src/core/metrics.ts';
import type { NewRecord } from '../../src/record/record.ts';
import { captureLog } from '../helpers/capture-log.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait-for.ts';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface Harness {
  readonly ingress: SemtechUdpIngress;
  readonly metrics: Metrics;
  readonly records: NewRecord[];
  readonly port: number;
  rejected(reason: string): Promise<number>;
  stop(): Promise<void>;
}

/** The gateway's LoRaWAN ingress; `state` plays the buffer's committed device state across restarts. */
async function startGatewayIngress(t: TestContext, devices: readonly LorawanDeviceConfigEntry[], state = new Map<string, string>()): Promise<Harness> {
  const metrics = createMetrics({ processMetrics: false });
  const records: NewRecord[] = [];
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
      region: EU868,
      netId: '000000',
      dedupWindowMs: 200,
      maxFramesInFlight: 10_000,
      stream: 'uplink',
      rejectLogIntervalMs: 60_000,
      devices: devices.map((entry) => deviceProfileFromEntry(entry, (choice) => builtinCodec(choice.codec === 'cayenne-lpp' ? 'cayenne-lpp' : 'raw'))),
    },
    { accept, loadState: async () => new Map(state), log, metrics },
  );
  const ingress = createSemtechUdpIngress(
    { host: '127.0.0.1', port: 0, gatewayStatusStream: null, allowedGateways: null, maxGateways: 100, maxDatagramsPerSecondPerSource: 100_000 },
    { network, accept, log, metrics },
  );
  await network.start();
  await ingress.start();
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await ingress.stop();
    await network.stop();
  };
  t.after(stop);
  return {
    ingress,
    metrics,
    records,
    port: ingress.address().port,
    async rejected(reason) {
      const metric = await metrics.ingressRejected.get();
      return metric.values.find((value) => value.labels.reason === reason && value.labels.source === 'semtech-udp')?.value ?? 0;
    },
    stop,
  };
}

type FleetShape = Pick<LorawanFleetOptions, 'devices' | 'otaaShare' | 'seed'>;

async function run(harness: Harness, shape: FleetShape, options: Partial<LorawanFleetOptions> = {}): Promise<LorawanFleetReport> {
  return runLorawanFleet({ server: { host: '127.0.0.1', port: harness.port }, gateways: 2, ratePerSecond: 50, ackTimeoutMs: 2_500, ...shape, ...options });
}

interface UplinkValue {
  end_device_ids: { device_id: string; dev_eui: string; dev_addr: string };
  uplink_message: {
    f_port: number;
    f_cnt: number;
    frm_payload: string;
    decoded_payload?: Record<string, unknown>;
    rx_metadata: { gateway_ids: { eui: string } }[];
    confirmed?: boolean;
  };
  iotgw: { f_cnt_gap: number };
}

function uplinkValueOf(record: NewRecord): UplinkValue {
  return JSON.parse(Buffer.from(record.payload).toString('utf8')) as UplinkValue;
}

/** Every new uplink the simulator sent is exactly one record, decrypted, decoded and with its receptions. */
function assertRecordsMatch(report: LorawanFleetReport, records: readonly NewRecord[]): void {
  const byFrame = new Map<string, UplinkValue[]>();
  for (const record of records) {
    const value = uplinkValueOf(record);
    assert.equal(record.key, value.end_device_ids.dev_eui.toLowerCase(), 'key = DevEUI');
    const key = `${record.key}:${value.uplink_message.f_cnt}`;
    byFrame.set(key, [...(byFrame.get(key) ?? []), value]);
  }
  let expected = 0;
  for (const device of report.devices) {
    for (const frame of device.frames.filter((candidate) => candidate.kind === 'uplink')) {
      expected += 1;
      const values = byFrame.get(`${device.devEui}:${frame.fcnt}`) ?? [];
      assert.equal(values.length, 1, `${device.name} FCnt ${frame.fcnt}: one record`);
      const value = values[0] as UplinkValue;
      assert.equal(value.end_device_ids.device_id, device.name);
      assert.equal(value.end_device_ids.dev_addr, frame.devAddr.toUpperCase());
      assert.equal(value.uplink_message.f_port, frame.fport);
      assert.equal(Buffer.from(value.uplink_message.frm_payload, 'base64').toString('hex'), frame.plaintextHex, `${device.name} FCnt ${frame.fcnt} decrypts`);
      assert.deepEqual(value.uplink_message.decoded_payload, frame.decoded, `${device.name} FCnt ${frame.fcnt} decoded_payload`);
      assert.deepEqual(
        value.uplink_message.rx_metadata.map((reception) => reception.gateway_ids.eui.toLowerCase()).sort(),
        [...frame.gateways].sort(),
        `${device.name} FCnt ${frame.fcnt}: one reception per forwarder that heard it`,
      );
      assert.equal(value.uplink_message.confirmed === true, frame.confirmed);
    }
  }
  assert.equal(records.length, expected, 'nothing but the new uplinks was stored');
}

test('ABP devices over two forwarders: every uplink decrypts to what was sent, shared frames list both receptions, confirmed ones are ACKed', async (t) => {
  const shape = { devices: 6, otaaShare: 0, seed: 3 };
  const harness = await startGatewayIngress(t, lorawanDevicesConfig(shape));
  const report = await run(harness, shape, { messagesPerDevice: 4, twoGatewayShare: 0.5, confirmedShare: 0.4 });
  const { totals } = report;
  assert.equal(totals.uplinks, 24);
  assert.ok(totals.twoGatewayFrames > 0, 'some frames were heard by both forwarders');
  assert.ok(totals.confirmed > 0, 'some uplinks were confirmed');
  // On a loaded machine an ACK can miss RX1 and RX2 (the forwarder answers TOO_LATE): the device then
  // retransmits, which assertRecordsMatch shows is never stored twice. Timing itself is not asserted.
  assert.ok(totals.confirmedAcked > 0, 'confirmed uplinks got their ACK');
  assert.equal(totals.acksHeard, totals.confirmedAcked, 'each ACK heard acknowledged one transmission of a confirmed uplink');
  await waitFor(() => harness.records.length >= totals.uplinks, 'the records', 30_000);
  assertRecordsMatch(report, harness.records);
  const twoGateway = harness.records.map(uplinkValueOf).filter((value) => value.uplink_message.rx_metadata.length === 2);
  const sharedUplinks = report.devices.flatMap((device) => device.frames).filter((frame) => frame.kind === 'uplink' && frame.gateways.length === 2);
  assert.equal(twoGateway.length, sharedUplinks.length, 'one record with two receptions per frame both forwarders heard');
  assert.ok(
    report.devices.some((device) => device.codec === 'cayenne-lpp') && report.devices.some((device) => device.codec === 'raw'),
    'the mixed fleet has both codecs',
  );
});

test('OTAA devices join through the simulated forwarder, then their uplinks decrypt', async (t) => {
  const shape = { devices: 3, otaaShare: 1, seed: 5 };
  const harness = await startGatewayIngress(t, lorawanDevicesConfig(shape));
  const report = await run(harness, shape, { messagesPerDevice: 3, confirmedShare: 0.5 });
  for (const device of report.devices) {
    assert.equal(device.activation, 'otaa');
    assert.deepEqual(device.joins, { attempts: 1, accepted: 1 }, `${device.name} joined at the first attempt`);
    assert.match(device.devAddr ?? '', /^0[01][0-9a-f]{6}$/, 'a DevAddr in NwkID 0 from the join-accept');
  }
  const joins = await harness.metrics.lorawanJoins.get();
  assert.equal(joins.values.find((value) => value.labels.result === 'accepted')?.value, 3);
  await waitFor(() => harness.records.length >= report.totals.uplinks, 'the records', 30_000);
  assertRecordsMatch(report, harness.records);
  assert.ok(report.totals.confirmedAcked > 0, 'ACKs reach joined devices too');
});

test('replayed frames and forged MICs are refused and counted; the frame after a forgery shows the gap', async (t) => {
  const shape = { devices: 3, otaaShare: 0.34, seed: 9 };
  const harness = await startGatewayIngress(t, lorawanDevicesConfig(shape));
  const report = await run(harness, shape, { messagesPerDevice: 5, replays: 3, corruptMics: 3, gateways: 1 });
  const { totals } = report;
  assert.equal(totals.replays, 3);
  assert.equal(totals.corrupt, 3);
  try {
    await waitFor(async () => (await harness.rejected('mic-mismatch')) + (await harness.rejected('replay')) >= 6, 'the refusals to be counted', 30_000);
  } catch (error) {
    const counted = await Promise.all(
      ['mic-mismatch', 'replay', 'retransmission', 'unknown-devaddr', 'malformed-frame'].map(async (reason) => `${reason}=${await harness.rejected(reason)}`),
    );
    const sent = report.devices.flatMap((device) => device.frames.map((frame) => `${device.name}:${frame.kind}:${frame.fcnt}:${frame.pushAcked}`));
    throw new Error(`${(error as Error).message}; counted ${counted.join(' ')}; sent ${sent.join(' ')}`);
  }
  await waitFor(() => harness.records.length >= totals.uplinks, 'the records', 30_000);
  await new Promise((resolve) => setTimeout(resolve, 300));
  assertRecordsMatch(report, harness.records);
  assert.equal(await harness.rejected('mic-mismatch'), 3, 'each forged MIC is refused as mic-mismatch');
  assert.equal(await harness.rejected('replay'), 3, 'each replayed old frame is refused as a replay');
  for (const device of report.devices) {
    const frames = device.frames;
    for (const [index, frame] of frames.entries()) {
      if (frame.kind !== 'corrupt') continue;
      const next = frames.slice(index + 1).find((candidate) => candidate.kind === 'uplink');
      if (next === undefined) continue;
      const record = harness.records
        .map(uplinkValueOf)
        .find((value) => value.end_device_ids.device_id === device.name && value.uplink_message.f_cnt === next.fcnt);
      assert.equal(record?.iotgw.f_cnt_gap, next.fcnt - frame.fcnt, `${device.name}: the uplink after the forged FCnt ${frame.fcnt} is marked with the gap`);
    }
  }
});

test('a confirmed uplink whose ACK is missed is retransmitted with the same FCnt: ACKed again, stored once', async (t) => {
  const shape = { devices: 1, otaaShare: 0, seed: 11 };
  const harness = await startGatewayIngress(t, lorawanDevicesConfig(shape));
  const report = await run(harness, shape, { messagesPerDevice: 1, confirmedShare: 1, missedAckShare: 1, maxRetransmissions: 2, ackTimeoutMs: 1_200 });
  const frames = report.devices[0]?.frames ?? [];
  assert.deepEqual(
    frames.map((frame) => [frame.kind, frame.fcnt, frame.acked]),
    [
      ['uplink', 0, false],
      ['retransmission', 0, false],
      ['retransmission', 0, false],
    ],
  );
  assert.equal(new Set(frames.map((frame) => frame.phyHex)).size, 1, 'a retransmission is the same frame');
  assert.ok(report.totals.acksMissed >= 1, 'the gateway sent ACKs (the device was told not to hear them)');
  await waitFor(async () => (await harness.rejected('retransmission')) === 2, 'both retransmissions to be recognised', 30_000);
  assertRecordsMatch(report, harness.records);
});

test('with a state file a second run continues the counters and OTAA sessions, across a gateway restart', async (t) => {
  const dir = tempDir(t);
  const stateFile = join(dir, 'sim-state.json');
  const shape = { devices: 4, otaaShare: 0.5, seed: 21 };
  const devices = lorawanDevicesConfig(shape);
  const gatewayState = new Map<string, string>();
  const first = await startGatewayIngress(t, devices, gatewayState);
  const before = await run(first, shape, { messagesPerDevice: 3, stateFile });
  await waitFor(() => first.records.length >= before.totals.uplinks, 'the first run', 30_000);
  await first.stop();

  const second = await startGatewayIngress(t, devices, gatewayState);
  const after = await run(second, shape, { messagesPerDevice: 3, stateFile, replays: 2 });
  assert.equal(after.totals.joinAttempts, 0, 'OTAA devices kept their sessions');
  for (const device of after.devices) {
    const previous = before.devices.find((candidate) => candidate.devEui === device.devEui);
    const firstNew = device.frames.find((frame) => frame.kind === 'uplink');
    assert.equal(firstNew?.fcnt, 3, `${device.name} continues at FCnt 3`);
    assert.equal(device.devAddr, previous?.devAddr);
  }
  await waitFor(
    async () => second.records.length >= after.totals.uplinks && (await second.rejected('replay')) + (await second.rejected('mic-mismatch')) >= 2,
    'the second run',
    30_000,
  );
  assertRecordsMatch(after, second.records);
  assert.equal(await second.rejected('replay'), 2, 'frames of the first run replayed in the second are refused as replays');
});

test('the CLI explains how to use it with iotgw, and --write-devices writes a devices_file the config loader accepts', async (t) => {
  const dir = tempDir(t);
  const help = spawnSync(process.execPath, ['--import', 'tsx', 'firmware-sim/cli.ts', 'lorawan', '--help'], { cwd: REPO_ROOT, encoding: 'utf8' });
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /lorawan\.devices_file/);
  assert.match(help.stdout, /--write-devices/);

  const devicesFile = join(dir, 'lorawan-devices.yaml');
  const written = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'firmware-sim/cli.ts', 'lorawan', '--devices', '5', '--otaa-share', '0.4', '--seed', '7', '--write-devices', devicesFile],
    { cwd: REPO_ROOT, encoding: 'utf8' },
  );
  assert.equal(written.status, 0, written.stderr);
  const configPath = join(dir, 'iotgw.yaml');
  writeFileSync(configPath, `lorawan:\n  enabled: true\n  devices_file: ${devicesFile}\n`);
  const config = loadConfig({ path: configPath, env: {} });
  assert.deepEqual(
    config.lorawan.devices.map((device) => device.dev_eui),
    lorawanDevicesConfig({ devices: 5, otaaShare: 0.4, seed: 7 }).map((device) => device.dev_eui),
  );
  assert.equal(config.lorawan.devices.filter((device) => device.app_key !== undefined).length, 2, 'two OTAA devices');
});
