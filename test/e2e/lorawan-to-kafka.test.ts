// End to end over LoRaWAN with real parts: firmware-sim lorawan (simulated packet forwarders, ABP and OTAA
// devices with real crypto) -> the gateway process (Semtech UDP, LoRaWAN server, SQLite) -> librdkafka's mock
// cluster, read back with kafkajs. Every new uplink with a valid MIC must reach Kafka as one TTS-shaped
// record keyed by DevEUI (duplicates only across the kill -9), decrypted and decoded; replays and forged
// MICs never. After kill -9 and a restart on the same buffer, a second simulator run continues the counters
// from its state file, OTAA devices use their persisted sessions without re-joining, and a replay of a
// frame from before the restart is refused.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { type LorawanFleetOptions, type LorawanFleetReport, lorawanDevicesConfig, runLorawanFleet, type SentFrame } from '../../firmware-sim/lorawan-fleet.ts';
import { createSimulatedForwarder } from '../../firmware-sim/transports/packet-forwarder.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { freeUdpPort, type GatewayProcess, startGatewayProcess, writeGatewayConfig } from '../helpers/gateway-process.ts';
import { type ConsumedMessage, kafkaMockFor, readTopic } from '../helpers/kafka-mock.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait-for.ts';

const TOPIC = 'city.lorawan';

const accepted = (gateway: GatewayProcess): Promise<number> => gateway.metric('iotgw_ingress_accepted_total', ['source="semtech-udp"']);
const rejected = (gateway: GatewayProcess, reason: string): Promise<number> =>
  gateway.metric('iotgw_ingress_rejected_total', ['source="semtech-udp"', `reason="${reason}"`]);

interface UplinkValue {
  end_device_ids: { device_id: string; dev_eui: string; dev_addr: string; join_eui?: string };
  received_at: string;
  uplink_message: {
    f_port: number;
    f_cnt: number;
    frm_payload: string;
    decoded_payload?: Record<string, unknown>;
    rx_metadata: { gateway_ids: { eui: string }; rssi: number; snr: number; timestamp: number }[];
    settings: { data_rate: { lora: { spreading_factor: number; bandwidth: number } }; frequency: string };
  };
  iotgw: { f_cnt_gap: number };
}

interface Expected {
  readonly devEui: string;
  readonly name: string;
  readonly frame: SentFrame;
  /** Sent before the kill -9: its record may be in Kafka twice. */
  readonly beforeCrash: boolean;
}

function expectedUplinks(report: LorawanFleetReport, beforeCrash: boolean): Expected[] {
  return report.devices.flatMap((device) =>
    device.frames.filter((frame) => frame.kind === 'uplink').map((frame) => ({ devEui: device.devEui, name: device.name, frame, beforeCrash })),
  );
}

test('LoRaWAN devices -> gateway -> Kafka: every valid uplink once as a TTS record; counters and sessions survive kill -9', async (t) => {
  const kafka = await kafkaMockFor(t, { brokers: 1, topics: [{ name: TOPIC, partitions: 3 }] });
  const dir = tempDir(t);
  const udpPort = await freeUdpPort();
  const shape = { devices: 10, otaaShare: 0.5, seed: 31 } as const;
  const devicesFile = join(dir, 'lorawan-devices.yaml');
  writeFileSync(devicesFile, stringify(lorawanDevicesConfig(shape)));
  const config: ConfigInput = {
    gateway_id: 'gw-lorawan-e2e',
    log: { level: 'info' },
    mqtt: { host: '127.0.0.1', port: 0 },
    http: { host: '127.0.0.1', port: 0 },
    kafka: {
      brokers: [...kafka.brokers],
      topic: TOPIC,
      retry_initial_ms: 100,
      retry_max_ms: 1000,
      request_timeout_ms: 5000,
      connection_timeout_ms: 1000,
    },
    buffer: { path: join(dir, 'buffer.db') },
    lorawan: { enabled: true, udp: { host: '127.0.0.1', port: udpPort }, dedup_window_ms: 200, devices_file: devicesFile },
  };
  const configPath = writeGatewayConfig(dir, config);
  const stateFile = join(dir, 'sim-state.json');
  const fleet: LorawanFleetOptions = {
    ...shape,
    server: { host: '127.0.0.1', port: udpPort },
    gateways: 2,
    ratePerSecond: 50,
    twoGatewayShare: 0.3,
    confirmedShare: 0.3,
    missedAckShare: 0.15,
    maxRetransmissions: 2,
    ackTimeoutMs: 2_000,
    stateFile,
  };

  const phases: string[] = [];
  let phaseStart = performance.now();
  const phase = (name: string): void => {
    phases.push(`${name} ${((performance.now() - phaseStart) / 1000).toFixed(1)} s`);
    phaseStart = performance.now();
  };

  // Run 1: joins, uplinks, retransmissions, replays and forgeries.
  let gateway = await startGatewayProcess(t, configPath);
  phase('start');
  const first = await runLorawanFleet({ ...fleet, messagesPerDevice: 3, replays: 2, corruptMics: 2 });
  assert.equal(first.totals.failedDevices, 0, 'every OTAA device joined');
  assert.equal(first.totals.joinsAccepted, 5);
  assert.equal(first.totals.uplinks, 30);
  assert.ok(first.totals.replays + first.totals.replaysSkipped === 2 && first.totals.corrupt === 2);
  await waitFor(async () => (await accepted(gateway)) >= first.totals.uplinks, 'run 1 to be committed', 30_000, 100);
  await waitFor(
    async () => (await rejected(gateway, 'replay')) === first.totals.replays && (await rejected(gateway, 'mic-mismatch')) === first.totals.corrupt,
    'the replays and forgeries of run 1 to be refused',
    30_000,
    100,
  );
  assert.equal(await accepted(gateway), first.totals.uplinks, 'nothing but the new uplinks was stored');
  phase('run 1');

  // Crash with records possibly not yet in Kafka; restart on the same buffer.
  assert.equal(await gateway.kill('SIGKILL'), null);
  gateway = await startGatewayProcess(t, configPath);
  phase('restart');

  // A frame from before the crash, replayed by an attacker: the persisted counter refuses it.
  const stale = first.devices
    .map((device) => device.frames.filter((frame) => frame.kind === 'uplink'))
    .map((frames) => frames.at(-2))
    .filter((frame): frame is SentFrame => frame !== undefined)
    .slice(0, 2);
  const attacker = createSimulatedForwarder({ gatewayEui: 'aa555a00000000ff', server: { host: '127.0.0.1', port: udpPort } });
  await attacker.start();
  t.after(() => attacker.stop());
  for (const frame of stale) assert.equal(await attacker.pushRxpk([{ phyPayload: Buffer.from(frame.phyHex, 'hex') }]), true);
  await waitFor(async () => (await rejected(gateway, 'replay')) === stale.length, 'pre-crash frames to be refused as replays', 30_000, 100);

  // Run 2: the same devices continue from the state file; OTAA devices keep their sessions.
  const second = await runLorawanFleet({ ...fleet, messagesPerDevice: 2, corruptMics: 1 });
  assert.equal(second.totals.joinAttempts, 0, 'OTAA devices did not re-join');
  assert.equal(second.totals.uplinks, 20);
  for (const device of second.devices) {
    const before = first.devices.find((candidate) => candidate.devEui === device.devEui);
    const lastBefore = Math.max(...(before?.frames.map((frame) => frame.fcnt) ?? [0]));
    assert.ok((device.frames[0]?.fcnt ?? -1) > lastBefore, `${device.name} continues its counter after ${lastBefore}`);
    assert.equal(device.devAddr, before?.devAddr, `${device.name} keeps its DevAddr`);
  }
  await waitFor(async () => (await accepted(gateway)) >= second.totals.uplinks, 'run 2 to be committed', 30_000, 100);
  phase('replay + run 2');

  // Kafka: each expected (DevEUI, FCnt) present; nothing else.
  const expected = [...expectedUplinks(first, true), ...expectedUplinks(second, false)];
  const wanted = new Set(expected.map((entry) => `${entry.devEui}:${entry.frame.fcnt}`));
  const messages = await readTopic(kafka.brokers, TOPIC, {
    until: (read) => {
      const seen = new Set(
        read.map((message) => `${message.key}:${(JSON.parse(message.value?.toString('utf8') ?? '{}') as UplinkValue).uplink_message?.f_cnt}`),
      );
      return [...wanted].every((key) => seen.has(key));
    },
    timeoutMs: 45_000,
  });
  phase('read Kafka');
  const byFrame = new Map<string, ConsumedMessage[]>();
  for (const message of messages) {
    const value = JSON.parse(message.value?.toString('utf8') ?? '{}') as UplinkValue;
    const key = `${message.key}:${value.uplink_message.f_cnt}`;
    byFrame.set(key, [...(byFrame.get(key) ?? []), message]);
  }
  assert.deepEqual(
    [...byFrame.keys()].filter((key) => !wanted.has(key)),
    [],
    'no record for a replay, a forged MIC or a retransmission',
  );
  let duplicates = 0;
  for (const { devEui, name, frame, beforeCrash } of expected) {
    const copies = byFrame.get(`${devEui}:${frame.fcnt}`) ?? [];
    const where = `${name} FCnt ${frame.fcnt}`;
    assert.ok(copies.length >= 1, `${where} reached Kafka`);
    if (!beforeCrash) assert.equal(copies.length, 1, `${where}: exactly once`);
    assert.equal(new Set(copies.map((copy) => copy.headers['lorawan-frame'])).size, 1, `${where}: copies are the same frame`);
    duplicates += copies.length - 1;
    const message = copies[0] as ConsumedMessage;
    assert.equal(message.key, devEui, 'key = DevEUI, 16 lower-case hex digits');
    assert.match(message.key ?? '', /^[0-9a-f]{16}$/);
    const value = JSON.parse(message.value?.toString('utf8') ?? '{}') as UplinkValue;
    assert.equal(value.end_device_ids.dev_eui, devEui.toUpperCase());
    assert.equal(value.end_device_ids.dev_addr, frame.devAddr.toUpperCase());
    assert.equal(value.end_device_ids.device_id, name);
    assert.ok(!Number.isNaN(Date.parse(value.received_at)));
    assert.equal(value.uplink_message.f_port, frame.fport);
    assert.equal(Buffer.from(value.uplink_message.frm_payload, 'base64').toString('hex'), frame.plaintextHex, `${where} decrypts`);
    assert.deepEqual(value.uplink_message.decoded_payload, frame.decoded, `${where}: decoded_payload`);
    assert.deepEqual(
      value.uplink_message.rx_metadata.map((reception) => reception.gateway_ids.eui.toLowerCase()).sort(),
      [...frame.gateways].sort(),
      `${where}: rx_metadata names the forwarders that heard it`,
    );
    for (const reception of value.uplink_message.rx_metadata) {
      assert.ok(Number.isFinite(reception.rssi) && Number.isFinite(reception.snr) && Number.isInteger(reception.timestamp));
    }
    assert.equal(value.uplink_message.settings.data_rate.lora.bandwidth, 125_000);
    assert.match(value.uplink_message.settings.frequency, /^86[78]\d{6}$/);
  }
  // A forged frame used up its FCnt on the device: the next uplink carries the jump.
  for (const report of [first, second]) {
    for (const device of report.devices) {
      for (const [index, frame] of device.frames.entries()) {
        if (frame.kind !== 'corrupt') continue;
        const next = device.frames.slice(index + 1).find((candidate) => candidate.kind === 'uplink');
        if (next === undefined) continue;
        const message = byFrame.get(`${device.devEui}:${next.fcnt}`)?.[0];
        const value = JSON.parse(message?.value?.toString('utf8') ?? '{}') as UplinkValue;
        assert.equal(value.iotgw.f_cnt_gap, next.fcnt - frame.fcnt, `${device.name}: iotgw.f_cnt_gap after the forged FCnt ${frame.fcnt}`);
      }
    }
  }
  t.diagnostic(
    `uplinks ${expected.length}, duplicates after kill -9 ${duplicates}, retransmissions ${first.totals.retransmissions + second.totals.retransmissions}, ` +
      `two-gateway frames ${first.totals.twoGatewayFrames + second.totals.twoGatewayFrames}, confirmed ACKed ${first.totals.confirmedAcked + second.totals.confirmedAcked}; ${phases.join(', ')}`,
  );
});
