// The serial radio ingress over serialport's mock binding with the firmware-sim RN2483 emulator as the
// module: raw frames keyed by the byte rule, short frames refused; mixed mode handing the frames of
// configured LoRaWAN devices to the real LoRaWAN network; an adapter missing at boot, unplugged and
// plugged back in: reopened, with the state in metrics, logs and health; a port closed while the module
// (still powered) is receiving: reopened on the same module; stop() leaves the module idle.
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import type { StateWrite } from '../../../src/buffer/record-buffer.ts';
import type { Accept } from '../../../src/ingress/ingress.ts';
import { EU868 } from '../../../src/ingress/lorawan/region.ts';
import { createLorawanNetwork, type LorawanNetwork } from '../../../src/ingress/lorawan-server/lorawan-network.ts';
import { CAYENNE_LPP_CODEC, RAW_CODEC } from '../../../src/codecs/payload-codec.ts';
import { createSerialRadioIngress, type SerialFrames, type SerialRadioIngress } from '../../../src/ingress/serial-radio/serial-radio-ingress.ts';
import { createMetrics, type Metrics } from '../../../src/core/metrics.ts';
import type { NewRecord } from '../../../src/record/record.ts';
import { type CapturedLog, captureLog } from '../../helpers/capture-log.ts';
import { type MockRadio, mockRadio } from '../../helpers/serial-radio-mock.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { VECTOR_ABP_DEVICE, vectorPhyPayload } from '../../helpers/lorawan-vectors.ts';

const phy = vectorPhyPayload;
const ABP = VECTOR_ABP_DEVICE;

interface Harness {
  readonly ingress: SerialRadioIngress;
  readonly mock: MockRadio;
  readonly metrics: Metrics;
  readonly records: NewRecord[];
  readonly logs: CapturedLog;
  metric(name: string, labels?: string): Promise<number>;
}

async function startHarness(
  t: TestContext,
  options: {
    frames?: SerialFrames;
    plugged?: boolean;
    network?: boolean;
    codec?: typeof RAW_CODEC;
    accept?: Accept;
    onReject?: (source: string, reason: string, detail: string) => void;
  } = {},
): Promise<Harness> {
  const metrics = createMetrics({ processMetrics: false });
  const records: NewRecord[] = [];
  const accept: Accept =
    options.accept ??
    (async (batch, _writes: readonly StateWrite[] = []) => {
      records.push(...batch);
      return { ok: true, seqs: batch.map((_, index) => index) };
    });
  const logs = captureLog('debug');
  let network: LorawanNetwork | null = null;
  if (options.network === true) {
    network = createLorawanNetwork(
      { region: EU868, netId: '000013', dedupWindowMs: 20, stream: 'uplink', rejectLogIntervalMs: 60_000, devices: [ABP], maxFramesInFlight: 1000 },
      { accept, loadState: async () => new Map(), log: logs.log, metrics },
    );
    await network.start();
    t.after(() => network?.stop());
  }
  const mock = mockRadio({ plugged: options.plugged ?? true });
  const ingress = createSerialRadioIngress(
    {
      path: mock.path,
      baudRate: 57_600,
      radioId: '00000000000000aa',
      radio: { frequencyHz: 868_300_000, spreadingFactor: 9, bandwidthKhz: 125, codingRate: '4/5', syncWord: '34' },
      frames: options.frames ?? 'raw',
      raw: { stream: 'radio', keyOffset: 1, keyLength: 2, keyPrefix: 'node-' },
      commandTimeoutMs: 2_000,
      reopenInitialMs: 20,
      reopenMaxMs: 100,
      rejectLogIntervalMs: 60_000,
      presenceCheckMs: 20,
    },
    {
      accept,
      lorawanNetwork: network,
      rawCodec: options.codec ?? RAW_CODEC,
      log: logs.log,
      metrics,
      createPort: mock.createPort,
      deviceIdentity: mock.deviceIdentity,
      ...(options.onReject === undefined ? {} : { onReject: options.onReject }),
    },
  );
  await ingress.start();
  t.after(() => ingress.stop());
  async function metric(name: string, labels = ''): Promise<number> {
    const found = (await metrics.registry.getSingleMetric(name)?.get())?.values.find((value) =>
      labels.split(',').every((pair) => pair === '' || String(value.labels[pair.split('=')[0] as string]) === pair.split('=')[1]),
    );
    return found?.value ?? 0;
  }
  return { ingress, mock, metrics, records, logs, metric };
}

test('raw frames: keyed by the configured bytes, payload after the key, SNR/RSSI and radio settings in the value', async (t) => {
  const h = await startHarness(t);
  assert.equal(h.ingress.state(), 'open');
  assert.deepEqual(h.ingress.health(), { status: 'ok' });
  assert.equal(await h.metric('iotgw_serial_port_open', `path=${h.mock.path}`), 1);
  const emulator = h.mock.emulator();
  assert.equal(emulator.transmit(Buffer.from('010a1b172c', 'hex'), { snr: -3, rssi: -98 }), true);
  await waitFor(() => h.records.length === 1 && emulator.isArmed(), 'the record');
  const record = h.records[0] as NewRecord;
  assert.equal(record.key, 'node-0a1b');
  assert.equal(record.stream, 'radio');
  assert.equal(record.source, 'serial-radio');
  const value = JSON.parse(Buffer.from(record.payload).toString('utf8')) as Record<string, unknown>;
  assert.equal(value.node_id, 'node-0a1b');
  assert.deepEqual(value.radio, { id: '00000000000000aa', frequency: 868_300_000, spreading_factor: 9, bandwidth: 125_000 });
  assert.equal(value.snr, -3);
  assert.equal(value.rssi, -98);
  assert.equal(Buffer.from(String(value.payload), 'base64').toString('hex'), '172c');
  assert.equal(Buffer.from(String(value.frame), 'base64').toString('hex'), '010a1b172c');
  assert.ok(!Number.isNaN(Date.parse(String(value.received_at))));
  assert.equal(value.decoded_payload, undefined);
  assert.deepEqual(value.iotgw, { codec: 'raw' }, 'the codec is named on every record, raw included');
  assert.equal(await h.metric('iotgw_serial_radio_frames_total', 'kind=raw'), 1);
});

test('raw frames shorter than key_offset + key_length are refused and counted', async (t) => {
  const h = await startHarness(t);
  const emulator = h.mock.emulator();
  emulator.transmit(Buffer.from('0102', 'hex'));
  await waitFor(async () => (await h.metric('iotgw_ingress_rejected_total', 'source=serial-radio,reason=frame-too-short')) === 1, 'the short frame counted');
  await waitFor(() => emulator.isArmed(), 're-armed');
  emulator.transmit(Buffer.from('03', 'hex'));
  await waitFor(
    async () => (await h.metric('iotgw_ingress_rejected_total', 'source=serial-radio,reason=frame-too-short')) === 2,
    'the second short frame counted',
  );
  await waitFor(() => emulator.isArmed(), 're-armed again');
  emulator.transmit(Buffer.from('00ffee', 'hex'));
  await waitFor(() => h.records.length === 1, 'the next frame (exactly long enough)');
  assert.equal(h.records[0]?.key, 'node-ffee');
  assert.equal(h.logs.messages().filter((message) => message.includes('no node id at bytes 1..2')).length, 1, 'logged once per reason per interval');
});

test('a raw codec decodes the bytes after the key', async (t) => {
  const h = await startHarness(t, { codec: CAYENNE_LPP_CODEC });
  // Cayenne LPP: channel 1, temperature (0x67) 27.2 °C.
  h.mock.emulator().transmit(Buffer.from('00abcd01670110', 'hex'));
  await waitFor(() => h.records.length === 1, 'the record');
  const value = JSON.parse(Buffer.from(h.records[0]?.payload ?? []).toString('utf8')) as Record<string, unknown>;
  assert.deepEqual(value.decoded_payload, { temperature_1: 27.2 });
  assert.deepEqual(value.iotgw, { codec: 'cayenne-lpp' });
});

test('mixed: frames of configured LoRaWAN devices go to the LoRaWAN network, the rest are raw', async (t) => {
  const h = await startHarness(t, { frames: 'mixed', network: true });
  const emulator = h.mock.emulator();
  emulator.transmit(phy('lp-test'), { snr: 7, rssi: -70 });
  await waitFor(() => h.records.some((record) => record.key === ABP.devEui), 'the LoRaWAN record');
  await waitFor(() => emulator.isArmed(), 're-armed');
  emulator.transmit(Buffer.from('00beef42', 'hex'));
  await waitFor(() => h.records.some((record) => record.key === 'node-beef'), 'the raw record');
  const lorawan = h.records.find((record) => record.key === ABP.devEui) as NewRecord;
  assert.equal(lorawan.source, 'serial-radio');
  const value = JSON.parse(Buffer.from(lorawan.payload).toString('utf8')) as {
    uplink_message: { rx_metadata: { gateway_ids: { eui: string }; snr: number; rssi: number }[]; settings: { frequency: string } };
  };
  assert.equal(value.uplink_message.rx_metadata[0]?.gateway_ids.eui, '00000000000000AA');
  assert.equal(value.uplink_message.rx_metadata[0]?.snr, 7);
  assert.equal(value.uplink_message.settings.frequency, '868300000');
  assert.equal(await h.metric('iotgw_serial_radio_frames_total', 'kind=lorawan'), 1);
  assert.equal(await h.metric('iotgw_serial_radio_frames_total', 'kind=raw'), 1);
});

test('an adapter missing at boot: start does not throw, health is down, and it is opened once plugged in', async (t) => {
  const h = await startHarness(t, { plugged: false });
  assert.equal(h.ingress.state(), 'reopening');
  assert.equal(h.ingress.health().status, 'down');
  assert.match(h.ingress.health().detail ?? '', /cannot open the port/);
  assert.equal(await h.metric('iotgw_serial_port_open', `path=${h.mock.path}`), 0);
  const warning = h.logs.lines().find((line) => line.state === 'reopening');
  assert.match(String(warning?.msg), /is the adapter plugged in/);
  await waitFor(() => h.mock.opens() >= 2, 'a retry');
  h.mock.plug();
  await waitFor(() => h.ingress.state() === 'open', 'the port to open');
  assert.equal(await h.metric('iotgw_serial_port_reopens_total', `path=${h.mock.path}`), 1);
  assert.equal(await h.metric('iotgw_serial_port_open', `path=${h.mock.path}`), 1);
  h.mock.emulator().transmit(Buffer.from('00000102', 'hex'));
  await waitFor(() => h.records.length === 1, 'a frame after plugging in');
});

test('unplugged and plugged back in: reopened with backoff, re-initialised, frames flow again; one log line per state change', async (t) => {
  const h = await startHarness(t);
  const first = h.mock.emulator();
  first.transmit(Buffer.from('00000101', 'hex'));
  await waitFor(() => h.records.length === 1 && first.isArmed(), 'a frame before the unplug');

  await h.mock.unplug();
  await waitFor(() => h.ingress.state() === 'reopening', 'the loss to be noticed');
  assert.equal(h.ingress.health().status, 'down');
  assert.equal(await h.metric('iotgw_serial_port_open', `path=${h.mock.path}`), 0);
  const opensWhileUnplugged = h.mock.opens();
  await waitFor(() => h.mock.opens() >= opensWhileUnplugged + 2, 'retries while unplugged');

  h.mock.plug();
  await waitFor(() => h.ingress.state() === 'open', 'the port to be reopened');
  const second = h.mock.emulator();
  assert.notEqual(second, first, 'a fresh (power-cycled) module');
  assert.equal(second.commands()[0], 'sys get ver', 'the init sequence ran again');
  assert.equal(second.isArmed(), true);
  second.transmit(Buffer.from('00000202', 'hex'));
  await waitFor(() => h.records.length === 2, 'a frame after the replug');
  assert.equal(h.records[1]?.key, 'node-0002');
  assert.equal(await h.metric('iotgw_serial_port_reopens_total', `path=${h.mock.path}`), 1);

  const stateLines = h.logs.lines().filter((line) => typeof line.state === 'string' && line.component === 'ingress.serial-radio');
  assert.deepEqual(
    stateLines.map((line) => line.state),
    ['opening', 'open', 'reopening', 'open'],
  );
  assert.match(String(stateLines[2]?.msg), /disconnected/);
});

test('an adapter that vanishes without the port noticing (a hung-up pty): the presence check reopens it', async (t) => {
  const h = await startHarness(t);
  const stale = h.mock.stream();
  h.mock.vanish();
  await waitFor(() => h.ingress.state() === 'reopening', 'the presence check to notice');
  assert.equal(stale?.isOpen, false, 'the stale port was closed');
  assert.equal(await h.metric('iotgw_serial_port_open', `path=${h.mock.path}`), 0);
  assert.ok(h.logs.lines().some((line) => line.state === 'reopening' && String(line.msg).includes(`${h.mock.path} disappeared`)));
  h.mock.plug();
  await waitFor(() => h.ingress.state() === 'open', 'the port to be reopened');
  h.mock.emulator().transmit(Buffer.from('00000404', 'hex'));
  await waitFor(() => h.records.length === 1, 'a frame after the replug');
});

test('a module that stops answering is reopened', async (t) => {
  const h = await startHarness(t);
  // The module hangs: it takes the frame but never answers again; the next open gets a working one.
  const stream = h.mock.stream();
  const binding = stream?.port as unknown as { write: (buffer: Buffer) => Promise<void> };
  binding.write = async () => undefined;
  h.mock.emulator().transmit(Buffer.from('00000303', 'hex'));
  await waitFor(() => h.ingress.state() === 'reopening', 'the timeout to close the port', 10_000);
  await waitFor(() => h.ingress.state() === 'open', 'the port to be reopened', 10_000);
  assert.ok(h.logs.lines().some((line) => line.state === 'reopening' && String(line.msg).includes("did not answer 'radio get snr'")));
  assert.equal(await h.metric('iotgw_serial_port_reopens_total', `path=${h.mock.path}`), 1);
});

test('the port closes while the module keeps receiving (it stays powered): reopened on the same module, rxstop first, frames flow', async (t) => {
  const h = await startHarness(t);
  const module = h.mock.emulator();
  assert.equal(module.isArmed(), true);
  const stream = h.mock.stream();
  await new Promise<void>((resolve) => stream?.close(() => resolve()));
  await waitFor(() => h.ingress.state() === 'reopening', 'the close to be noticed');
  assert.equal(module.isArmed(), true, 'still in radio rx 0: closing a port does not power-cycle the module');
  await waitFor(() => h.ingress.state() === 'open', 'the port to be reopened');
  assert.equal(h.mock.emulator(), module, 'the same module');
  const second = module.commands().slice(module.commands().lastIndexOf('sys get ver'));
  assert.deepEqual(second.slice(0, 4), ['sys get ver', 'mac pause', 'radio rxstop', 'radio set mod lora']);
  module.transmit(Buffer.from('00000404', 'hex'));
  await waitFor(() => h.records.length === 1, 'a frame after the reopen');
  assert.equal(h.records[0]?.key, 'node-0004');
  assert.equal(await h.metric('iotgw_serial_port_reopens_total', `path=${h.mock.path}`), 1);
  assert.equal(await h.metric('iotgw_ingress_rejected_total', 'source=serial-radio,reason=unexpected-line'), 0);
});

test('stop() ends the receive with rxstop before closing the port', async (t) => {
  const h = await startHarness(t);
  const module = h.mock.emulator();
  await h.ingress.stop();
  assert.equal(module.commands().at(-1), 'radio rxstop');
  assert.equal(module.isArmed(), false);
  assert.equal(h.mock.stream()?.isOpen, false);
  assert.equal(h.ingress.state(), 'stopped');
});

test('a refused commit whose reject hook throws: counted, logged, no unhandled rejection, and frames go on', async (t) => {
  let commits = 0;
  const h = await startHarness(t, {
    accept: async () => {
      commits += 1;
      return { ok: false, reason: 'buffer-full', message: 'the buffer is full' };
    },
    onReject: (_source, reason) => {
      if (reason === 'buffer-full') throw new TypeError('status hook bug');
    },
  });
  const module = h.mock.emulator();
  module.transmit(Buffer.from('00000505', 'hex'));
  await waitFor(async () => (await h.metric('iotgw_ingress_rejected_total', 'source=serial-radio,reason=internal-error')) === 1, 'the escaped error counted');
  assert.equal(await h.metric('iotgw_ingress_rejected_total', 'source=serial-radio,reason=buffer-full'), 1);
  assert.ok(h.logs.lines().some((line) => line.level === 'error' && String(line.msg).includes('storing a frame failed unexpectedly')));
  await waitFor(() => module.isArmed(), 're-armed');
  module.transmit(Buffer.from('00000606', 'hex'));
  await waitFor(() => commits === 2, 'the next frame offered for commit');
  assert.equal(h.ingress.health().status, 'ok');
});
