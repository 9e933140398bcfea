// End to end over a serial radio with real parts: firmware-sim's RN2483 emulator on one end of a socat pty
// pair -> the gateway process with serialport's real bindings on the other end (serial.frames: mixed, the
// LoRaWAN server on) -> SQLite -> librdkafka's mock cluster, read back with kafkajs. LoRaWAN uplinks of the
// simulated ABP devices must arrive decrypted as TTS-shaped records keyed by DevEUI, raw frames keyed by the
// byte rule, garbage lines only counted. Then the adapter is "unplugged" (socat killed: the gateway's pty
// disappears) and plugged back in (socat again on the same links, a power-cycled module): the gateway
// reopens the port, runs its init sequence again, and the frames after the replug reach Kafka too.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { createSerialRadioSim, type SerialSentFrame } from '../../firmware-sim/serial-radio-sim.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { startGatewayProcess, writeGatewayConfig } from '../helpers/gateway-process.ts';
import { type ConsumedMessage, kafkaMockFor, readTopic } from '../helpers/kafka-mock.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait-for.ts';

const TOPIC = 'city.serial';
const RADIO_ID = '00000000000000a1';

interface UplinkValue {
  end_device_ids: { dev_eui: string };
  uplink_message: {
    f_cnt: number;
    frm_payload: string;
    decoded_payload?: Record<string, unknown>;
    rx_metadata: { gateway_ids: { eui: string }; snr: number }[];
    settings: { frequency: string; data_rate: { lora: { spreading_factor: number; bandwidth: number } } };
  };
}

interface RawValue {
  node_id: string;
  radio: { id: string; frequency: number; spreading_factor: number; bandwidth: number };
  snr: number;
  rssi?: number;
  payload: string;
  frame: string;
  iotgw: { codec: string; codec_error?: string };
}

/** The Kafka identity of a sent frame: DevEUI + FCnt, or node key + frame bytes. */
function frameId(frame: SerialSentFrame): string {
  return frame.kind === 'lorawan' ? `${frame.key}:${frame.fcnt}` : `${frame.key}:${frame.payloadHex}`;
}

function messageId(message: ConsumedMessage): string {
  const value = JSON.parse(message.value?.toString('utf8') ?? '{}') as Partial<UplinkValue & RawValue>;
  if (value.uplink_message !== undefined) return `${message.key}:${value.uplink_message.f_cnt}`;
  return `${message.key}:${Buffer.from(value.frame ?? '', 'base64').toString('hex')}`;
}

test('serial radio -> gateway -> Kafka: LoRaWAN and raw frames, garbage ignored, unplug and replug', async (t) => {
  const kafka = await kafkaMockFor(t, { brokers: 1, topics: [{ name: TOPIC, partitions: 3 }] });
  const dir = tempDir(t);
  const gatewayLink = join(dir, 'radio-gateway');
  const sim = createSerialRadioSim({ gatewayLink, simLink: join(dir, 'radio-sim'), devices: 4, rawNodes: 3, codec: 'mixed', seed: 41 });
  await sim.start();
  t.after(() => sim.stop());
  const devicesFile = join(dir, 'lorawan-devices.yaml');
  writeFileSync(devicesFile, stringify(sim.devicesConfig()));
  const config: ConfigInput = {
    gateway_id: 'gw-serial-e2e',
    log: { level: 'info' },
    mqtt: { host: '127.0.0.1', port: 0 },
    http: { host: '127.0.0.1', port: 0 },
    kafka: { brokers: [...kafka.brokers], topic: TOPIC, retry_initial_ms: 100, retry_max_ms: 1000, request_timeout_ms: 5000, connection_timeout_ms: 1000 },
    buffer: { path: join(dir, 'buffer.db') },
    lorawan: { enabled: true, udp: { host: '127.0.0.1', port: 0 }, dedup_window_ms: 50, devices_file: devicesFile },
    serial: { enabled: true, path: gatewayLink, frames: 'mixed', radio_id: RADIO_ID, frequency_hz: 868_100_000, reopen_max_delay_ms: 1000 },
  };
  const gateway = await startGatewayProcess(t, writeGatewayConfig(dir, config));
  const accepted = (): Promise<number> => gateway.metric('iotgw_ingress_accepted_total', ['source="serial-radio"']);
  const rejected = (reason: string): Promise<number> => gateway.metric('iotgw_ingress_rejected_total', ['source="serial-radio"', `reason="${reason}"`]);
  const portOpen = (): Promise<number> => gateway.metric('iotgw_serial_port_open', [`path="${gatewayLink}"`]);

  await waitFor(() => sim.isArmed(), 'the gateway to open the port and arm the receiver', 20_000, 20);
  await waitFor(async () => (await portOpen()) === 1, 'iotgw_serial_port_open 1', 10_000, 50);

  // Before the unplug: two rounds, with garbage lines after the first.
  await sim.round({ garbage: 4 });
  await sim.round();
  const before = sim.report().sent.length;
  assert.equal(before, 2 * (4 + 3));
  await waitFor(async () => (await accepted()) >= before, 'the frames before the unplug to be committed', 30_000, 100);
  assert.equal(await rejected('garbage-line'), 1, 'binary noise counted');
  assert.equal(await rejected('unexpected-line'), 2, 'unknown lines counted');
  assert.equal(await rejected('line-too-long'), 1, 'the over-long line counted');

  // Unplug: the gateway's pty goes away.
  await sim.unplug();
  await waitFor(async () => (await portOpen()) === 0, 'the gateway to notice the unplug', 20_000, 100);
  const lost = await gateway.waitForLog((line) => line.component === 'ingress.serial-radio' && line.state === 'reopening', 5_000);

  // Replug on the same links: a power-cycled module, initialised again by the gateway.
  await sim.replug();
  await waitFor(() => sim.isArmed(), 'the gateway to reopen the port and arm the receiver again', 30_000, 20);
  await sim.round();
  const sent = sim.report().sent;
  assert.equal(sim.report().missed, 0);
  assert.equal(sim.report().inits, 2, 'the init sequence ran once per open');
  await waitFor(async () => (await accepted()) >= sent.length, 'the frames after the replug to be committed', 30_000, 100);
  assert.ok((await gateway.metric('iotgw_serial_port_reopens_total', [`path="${gatewayLink}"`])) >= 1, 'the reopen is counted');
  assert.equal(await portOpen(), 1);

  // Kafka: every frame exactly once, with the right key and content.
  const wanted = new Set(sent.map(frameId));
  const messages = await readTopic(kafka.brokers, TOPIC, {
    until: (read) => {
      const seen = new Set(read.map(messageId));
      return [...wanted].every((id) => seen.has(id));
    },
    timeoutMs: 45_000,
  });
  const byId = new Map<string, ConsumedMessage[]>();
  for (const message of messages) byId.set(messageId(message), [...(byId.get(messageId(message)) ?? []), message]);
  assert.deepEqual(
    [...byId.keys()].filter((id) => !wanted.has(id)),
    [],
    'nothing but the sent frames (garbage made no record)',
  );
  for (const frame of sent) {
    const copies = byId.get(frameId(frame)) ?? [];
    assert.equal(copies.length, 1, `${frameId(frame)} exactly once`);
    const message = copies[0] as ConsumedMessage;
    assert.equal(message.key, frame.key);
    if (frame.kind === 'lorawan') {
      const value = JSON.parse(message.value?.toString('utf8') ?? '{}') as UplinkValue;
      assert.equal(value.end_device_ids.dev_eui, frame.key.toUpperCase());
      assert.equal(Buffer.from(value.uplink_message.frm_payload, 'base64').toString('hex'), frame.plaintextHex, `${frameId(frame)} decrypts`);
      assert.deepEqual(value.uplink_message.decoded_payload, frame.decoded);
      assert.equal(value.uplink_message.rx_metadata[0]?.gateway_ids.eui, RADIO_ID.toUpperCase());
      assert.ok(Number.isInteger(value.uplink_message.rx_metadata[0]?.snr));
      assert.equal(value.uplink_message.settings.frequency, '868100000');
      assert.deepEqual(value.uplink_message.settings.data_rate.lora, { bandwidth: 125_000, spreading_factor: 7, coding_rate: '4/5' });
    } else {
      const value = JSON.parse(message.value?.toString('utf8') ?? '{}') as RawValue;
      assert.match(frame.key, /^node-0a0[1-3]$/);
      assert.equal(value.node_id, frame.key);
      assert.equal(Buffer.from(value.payload, 'base64').toString('hex'), frame.payloadHex.slice(4), 'payload = the bytes after the node id');
      assert.deepEqual(value.radio, { id: RADIO_ID, frequency: 868_100_000, spreading_factor: 7, bandwidth: 125_000 });
      assert.ok(Number.isInteger(value.snr) && Number.isInteger(value.rssi));
      assert.deepEqual(value.iotgw, { codec: 'raw' }, 'the codec that ran, as on LoRaWAN records');
    }
  }
  t.diagnostic(
    `frames ${sent.length} (${sent.filter((frame) => frame.kind === 'lorawan').length} LoRaWAN), Kafka messages ${messages.length}; unplug: ${String(lost.msg)}`,
  );
});
