// Commands reach the simulated devices through the real gateway process: a kafkajs producer writes commands
// to librdkafka's mock cluster, the gateway (commands enabled) sends them as LoRaWAN downlinks to firmware-sim
// lorawan's devices (its own network server, simulated packet forwarders) or pushes them to the TTS stand-in,
// which sends them to tts-traffic's model devices. Each device acts on its command, and its next uplink, read
// back from Kafka, shows the new state: a street lamp dimmed (binary on FPort 10, confirmed and acked by the
// ACK bit; or JSON through TTN), a water meter's valve closed (JSON), a meter refusing a lamp command.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { stringify } from 'yaml';
import { type DeviceReport, lorawanDevicesConfig, runLorawanFleet } from '../../firmware-sim/lorawan-fleet.ts';
import { startTtsStandIn } from '../../firmware-sim/tts-stand-in.ts';
import { createTtsFleet, publishTtsTraffic, type TtsSimDevice } from '../../firmware-sim/tts-traffic.ts';
import { decodeCayenneLpp } from '../../src/codecs/cayenne-lpp.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { freeUdpPort, type GatewayProcess, startGatewayProcess, writeGatewayConfig } from '../helpers/gateway-process.ts';
import { startCommandKafka } from '../helpers/command-kafka.ts';
import type { ConsumedMessage } from '../helpers/kafka-mock.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait-for.ts';

const RECORDS = 'city.records';
const COMMANDS = 'city.commands';
const RECEIPTS = 'city.command-receipts';

interface Uplink {
  readonly key: string | null;
  readonly fCnt: number;
  readonly fPort: number;
  readonly payload: Buffer;
}

/** Mock Kafka, the gateway process with `extra` config and commands on, a receipts reader and a producer. */
async function setup(t: TestContext, extra: (dir: string) => Partial<ConfigInput>) {
  const commandKafka = await startCommandKafka(t, { records: RECORDS, commands: COMMANDS, receipts: RECEIPTS, partitions: 1 });
  const { kafka } = commandKafka;
  const dir = tempDir(t);
  const config: ConfigInput = {
    gateway_id: 'gw-sim-commands',
    mqtt: { host: '127.0.0.1', port: 0 },
    http: { host: '127.0.0.1', port: 0 },
    kafka: { brokers: [...kafka.brokers], topic: RECORDS, retry_initial_ms: 100, retry_max_ms: 1000, request_timeout_ms: 5000, connection_timeout_ms: 1000 },
    buffer: { path: join(dir, 'buffer.db') },
    commands: { enabled: true, topic: COMMANDS, receipts_topic: RECEIPTS, fetch_wait_ms: 50 },
    ...extra(dir),
  };
  const gateway: GatewayProcess = await startGatewayProcess(t, writeGatewayConfig(dir, config));
  return {
    gateway,
    statuses: (commandId: string): string[] => commandKafka.statuses(commandId),
    async command(key: string, commandId: string, body: Record<string, unknown>): Promise<void> {
      await commandKafka.send(key, JSON.stringify(body), { 'command-id': commandId });
    },
    /** The device's uplink records in Kafka (TTS-shaped JSON), by FCnt. */
    uplinks(devEui: string): Uplink[] {
      return commandKafka
        .records()
        .filter((message: ConsumedMessage) => message.key === devEui)
        .map((message) => {
          const value = JSON.parse(message.value?.toString('utf8') ?? '{}') as { uplink_message: { f_cnt?: number; f_port: number; frm_payload: string } };
          const { uplink_message: uplink } = value;
          return { key: message.key, fCnt: uplink.f_cnt ?? 0, fPort: uplink.f_port, payload: Buffer.from(uplink.frm_payload, 'base64') };
        })
        .sort((a, b) => a.fCnt - b.fCnt);
    },
  };
}

function device(report: { readonly devices: readonly DeviceReport[] }, name: string): DeviceReport {
  const found = report.devices.find((candidate) => candidate.name === name);
  assert.ok(found !== undefined, name);
  return found;
}

test('firmware-sim lorawan: commands from Kafka dim a lamp and close a valve; the next uplinks in Kafka show it', async (t) => {
  const shape = { devices: 4, otaaShare: 0, seed: 404 } as const;
  const udpPort = await freeUdpPort();
  const h = await setup(t, (dir) => {
    const devicesFile = join(dir, 'lorawan-devices.yaml');
    writeFileSync(devicesFile, stringify(lorawanDevicesConfig(shape)));
    return { lorawan: { enabled: true, udp: { host: '127.0.0.1', port: udpPort }, dedup_window_ms: 50, devices_file: devicesFile } };
  });
  // The fleet's first four devices are one of each kind: em, sl, wm, ps (raw payloads for sl and wm).
  const [meter, lamp, water] = lorawanDevicesConfig(shape);
  assert.ok(meter?.name === 'em-000001' && lamp?.name === 'sl-000002' && water?.name === 'wm-000003');
  await h.command(lamp.dev_eui, 'c-dim', { name: 'dim', payload_hex: '0128', port: 10, confirmed: true });
  await h.command(water.dev_eui, 'c-valve', { name: 'valve', payload: { open: false } });
  await h.command(meter.dev_eui, 'c-wrong', { name: 'dim', payload_hex: '0128', port: 10 });
  for (const id of ['c-dim', 'c-valve', 'c-wrong']) await waitFor(() => h.statuses(id).includes('accepted'), `${id} accepted`, 20_000);

  const report = await runLorawanFleet({ ...shape, server: { host: '127.0.0.1', port: udpPort }, gateways: 1, ratePerSecond: 4, messagesPerDevice: 4 });
  assert.equal(report.totals.uplinks, 16);

  // The devices: what each heard and did.
  const [dim] = device(report, lamp.name).commands;
  assert.deepEqual(
    { name: dim?.name, fport: dim?.fport, payloadHex: dim?.payloadHex, confirmed: dim?.confirmed, applied: dim?.applied, result: dim?.result },
    { name: 'dim', fport: 10, payloadHex: '0128', confirmed: true, applied: true, result: { on: true, dim_pct: 40 } },
  );
  const [valve] = device(report, water.name).commands;
  assert.deepEqual(
    { name: valve?.name, fport: valve?.fport, payloadHex: valve?.payloadHex, result: valve?.result },
    {
      name: 'valve',
      fport: 1,
      payloadHex: Buffer.from('{"open":false}').toString('hex'),
      result: { valve: 'closed' },
    },
  );
  const [wrong] = device(report, meter.name).commands;
  assert.deepEqual({ applied: wrong?.applied, result: wrong?.result }, { applied: false, result: { error: 'unknown command' } });
  assert.deepEqual([report.totals.commandsReceived, report.totals.commandsApplied, report.totals.commandsRefused], [3, 2, 1]);

  // The gateway: the confirmed command is acked by the lamp's next uplink (the ACK bit); the others are sent.
  await waitFor(() => h.statuses('c-dim').at(-1) === 'acked', 'c-dim acked', 20_000);
  assert.deepEqual(h.statuses('c-dim'), ['accepted', 'sent', 'acked']);
  await waitFor(() => h.statuses('c-valve').at(-1) === 'sent' && h.statuses('c-wrong').at(-1) === 'sent', 'the unconfirmed commands sent', 20_000);

  // Kafka: from the first uplink after the command, the lamp reports on at 40 % and the valve no flow.
  await waitFor(() => h.uplinks(lamp.dev_eui).length === 4 && h.uplinks(water.dev_eui).length === 4, 'every uplink in Kafka', 30_000, 100);
  assert.ok(dim !== undefined && dim.effectiveFromFcnt < 4, `the lamp's command came before its last uplink (FCnt ${dim?.effectiveFromFcnt})`);
  for (const uplink of h.uplinks(lamp.dev_eui).filter((entry) => entry.fCnt >= dim.effectiveFromFcnt)) {
    // Raw street lamp: flags (bit 0 on) | dim % | power dW.
    assert.equal((uplink.payload[0] ?? 0) & 1, 1, `lamp FCnt ${uplink.fCnt}: on`);
    assert.equal(uplink.payload[1], 40, `lamp FCnt ${uplink.fCnt}: dimmed to 40 %`);
  }
  assert.ok(valve !== undefined && valve.effectiveFromFcnt < 3, `the valve closed before the meter's last two uplinks (FCnt ${valve?.effectiveFromFcnt})`);
  // Raw water meter: volume l u32 | flow (l/min)/100 u16 | flags; the reading after the closing one integrates no flow.
  for (const uplink of h.uplinks(water.dev_eui).filter((entry) => entry.fCnt >= valve.effectiveFromFcnt)) {
    assert.equal(uplink.payload.readUInt16BE(4), 0, `water meter FCnt ${uplink.fCnt}: no flow`);
  }
  const volumes = h
    .uplinks(water.dev_eui)
    .filter((entry) => entry.fCnt >= valve.effectiveFromFcnt)
    .map((entry) => entry.payload.readUInt32BE(0));
  assert.equal(new Set(volumes.slice(1)).size, 1, 'the register stands still once the valve is closed');
});

test('TTS stand-in: a command pushed through The Things Stack dims a model lamp; its next uplink in Kafka shows it', async (t) => {
  const standIn = await startTtsStandIn({ applicationId: 'city-lights', tenantId: 'ttn' });
  t.after(() => standIn.stop());
  const h = await setup(t, (dir) => {
    const keyFile = join(dir, 'ttn-api-key');
    writeFileSync(keyFile, `${standIn.apiKey}\n`, { mode: 0o600 });
    return { ttn: { enabled: true, url: standIn.url, username: standIn.username, password_file: keyFile, reconnect_max_ms: 2000 } };
  });
  await standIn.waitForSubscriber();
  const fleet = createTtsFleet('city-lights', { devices: 4, seed: 8, models: true, decodedShare: 0 });
  const [, lamp] = fleet.devices as TtsSimDevice[];
  assert.ok(lamp !== undefined && lamp.deviceId === 'sl-000002' && lamp.model?.kind === 'street-lamp');
  await publishTtsTraffic(standIn, fleet, { messagesPerDevice: 1 });
  await waitFor(async () => (await h.gateway.metric('iotgw_ingress_accepted_total', ['source="ttn"'])) === 4, 'the devices known to the gateway', 30_000, 100);

  await h.command(lamp.devEui, 'c-ttn-dim', { name: 'dim', payload: { level: 25 }, confirmed: true });
  await waitFor(() => h.statuses('c-ttn-dim').at(-1) === 'acked', 'c-ttn-dim acked by TTS', 30_000);
  assert.deepEqual(h.statuses('c-ttn-dim'), ['accepted', 'sent', 'acked']);
  assert.deepEqual(
    lamp.commands.map((command) => ({
      fPort: command.fPort,
      name: command.name,
      applied: command.applied,
      result: command.result,
      from: command.effectiveFromFCnt,
    })),
    [{ fPort: 1, name: 'dim', applied: true, result: { on: true, dim_pct: 25 }, from: 1 }],
  );

  await publishTtsTraffic(standIn, fleet, { messagesPerDevice: 1 });
  await waitFor(() => h.uplinks(lamp.devEui).length === 2, "the lamp's second uplink in Kafka", 30_000, 100);
  const [before, after] = h.uplinks(lamp.devEui);
  assert.equal(before?.fPort, 4, 'street lamp readings on FPort 4');
  // Cayenne LPP street lamp: 1 digital_out on | 2 percentage dim | 3 power | 4 digital_in fault.
  const decoded = decodeCayenneLpp(after?.payload ?? Buffer.alloc(0)).data;
  assert.equal(after?.fCnt, 1);
  assert.equal(decoded.digital_out_1, 1, 'on');
  assert.equal(decoded.percentage_2, 25, 'dimmed to 25 %');
});
