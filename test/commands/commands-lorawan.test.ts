// Commands to LoRaWAN Class A devices through the gateway's own network server, with real parts: a kafkajs
// producer writes commands to librdkafka's mock cluster, the gateway process consumes them, and a simulated
// Semtech packet forwarder carries the devices' uplinks and the gateway's downlinks. The uplinks are built
// and the downlinks checked with lora-packet, an independent LoRaWAN implementation: MType, DevAddr,
// FCntDown, FPort, MIC and the decrypted payload, sent in RX1 of the uplink that opened the window.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type TestContext, test } from 'node:test';
import loraPacketModule from 'lora-packet';
import { stringify } from 'yaml';
import { lorawanDevicesConfig } from '../../firmware-sim/lorawan-fleet.ts';
import { createSimulatedForwarder } from '../../firmware-sim/transports/packet-forwarder.ts';
import type { Txpk } from '../../src/ingress/semtech-udp/packets.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { freeUdpPort, startGatewayProcess, writeGatewayConfig } from '../helpers/gateway-process.ts';
import { type ReceiptValue, startCommandKafka } from '../helpers/command-kafka.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait-for.ts';

// lora-packet is CommonJS with module.exports = its functions; its types describe them as `default`.
const loraPacket = loraPacketModule as unknown as typeof loraPacketModule.default;
const RECORDS = 'city.lorawan';
const COMMANDS = 'city.commands';
const RECEIPTS = 'city.command-receipts';
const GATEWAY_EUI = 'aa555a0000000001';

interface SimDevice {
  readonly devEui: string;
  readonly devAddr: Buffer;
  readonly nwkSKey: Buffer;
  readonly appSKey: Buffer;
  fcnt: number;
}

async function setup(t: TestContext, options: { classC?: boolean; formatterFile?: string } = {}) {
  const commandKafka = await startCommandKafka(t, { records: RECORDS, commands: COMMANDS, receipts: RECEIPTS, partitions: 2 });
  const { kafka } = commandKafka;
  const dir = tempDir(t);
  const udpPort = await freeUdpPort();
  const entries = lorawanDevicesConfig({ devices: 2, otaaShare: 0, seed: 77 }).map((entry, index) =>
    options.classC === true && index === 1
      ? { ...entry, class: 'C' as const }
      : options.formatterFile !== undefined && index === 0
        ? { ...entry, codec: 'javascript' as const, formatter_file: options.formatterFile }
        : entry,
  );
  const devicesFile = join(dir, 'lorawan-devices.yaml');
  writeFileSync(devicesFile, stringify(entries));
  const config: ConfigInput = {
    gateway_id: 'gw-lorawan-commands',
    mqtt: { host: '127.0.0.1', port: 0 },
    http: { host: '127.0.0.1', port: 0 },
    kafka: { brokers: [...kafka.brokers], topic: RECORDS, retry_initial_ms: 100, retry_max_ms: 1000, request_timeout_ms: 5000, connection_timeout_ms: 1000 },
    buffer: { path: join(dir, 'buffer.db') },
    lorawan: { enabled: true, udp: { host: '127.0.0.1', port: udpPort }, dedup_window_ms: 50, devices_file: devicesFile },
    commands: { enabled: true, topic: COMMANDS, receipts_topic: RECEIPTS, fetch_wait_ms: 50 },
  };
  const gateway = await startGatewayProcess(t, writeGatewayConfig(dir, config));
  const forwarder = createSimulatedForwarder({ gatewayEui: GATEWAY_EUI, server: { host: '127.0.0.1', port: udpPort }, keepaliveMs: 1_000 });
  const downlinks: Txpk[] = [];
  forwarder.onDownlink((txpk) => {
    downlinks.push(txpk);
    return 'NONE';
  });
  await forwarder.start();
  t.after(() => forwarder.stop());
  const devices: SimDevice[] = entries.map((entry) => {
    const abp = entry as { dev_eui: string; dev_addr: string; nwk_s_key: string; app_s_key: string };
    return {
      devEui: abp.dev_eui,
      devAddr: Buffer.from(abp.dev_addr, 'hex'),
      nwkSKey: Buffer.from(abp.nwk_s_key, 'hex'),
      appSKey: Buffer.from(abp.app_s_key, 'hex'),
      fcnt: 0,
    };
  });
  const statuses = (commandId: string): ReceiptValue[] => commandKafka.receipts(commandId).map((entry) => entry.value);
  return {
    gateway,
    forwarder,
    downlinks,
    devices,
    statuses,
    async command(devEui: string, commandId: string, body: Record<string, unknown>): Promise<void> {
      await commandKafka.send(devEui, JSON.stringify(body), { 'command-id': commandId });
    },
    /** An uplink built with lora-packet; resolves with the tmst it was received at. */
    async uplink(device: SimDevice, options: { confirmed?: boolean; ack?: boolean } = {}): Promise<number> {
      const packet = loraPacket.fromFields(
        {
          MType: options.confirmed === true ? 'Confirmed Data Up' : 'Unconfirmed Data Up',
          DevAddr: device.devAddr,
          FCtrl: { ADR: false, ACK: options.ack === true, ADRACKReq: false, FPending: false },
          FCnt: device.fcnt,
          FPort: 4,
          payload: Buffer.from([0x01, 0x02]),
        },
        device.appSKey,
        device.nwkSKey,
      );
      device.fcnt += 1;
      const tmst = forwarder.tmst();
      assert.equal(await forwarder.pushRxpk([{ phyPayload: packet.getPHYPayload() as Buffer, tmst }]), true, 'PUSH_ACK');
      return tmst;
    },
  };
}

/** The downlink decoded and checked by lora-packet: MIC with the NwkSKey, payload decrypted with the AppSKey. */
function decode(txpk: Txpk, device: SimDevice) {
  const packet = loraPacket.fromWire(Buffer.from(txpk.data, 'base64'));
  assert.equal(Buffer.from(packet.DevAddr as Buffer).toString('hex'), device.devAddr.toString('hex'), 'addressed to the device');
  assert.equal(loraPacket.verifyMIC(packet, device.nwkSKey), true, 'MIC verifies with the NwkSKey');
  return {
    mtype: packet.getMType(),
    fcnt: packet.getFCnt(),
    fport: packet.getFPort(),
    ack: packet.getFCtrlACK(),
    payload: packet.getFPort() === null ? null : loraPacket.decrypt(packet, device.appSKey, device.nwkSKey).toString('hex'),
  };
}

test('LoRaWAN Class A: a command goes in RX1 after the next uplink, encrypted, with the right FCntDown, FPort and MIC', async (t) => {
  const h = await setup(t);
  const device = h.devices[0] as (typeof h.devices)[number];
  await h.command(device.devEui, 'c-lamp', { name: 'dim', payload_hex: '0a28', port: 10 });
  await waitFor(() => h.statuses('c-lamp').some((receipt) => receipt.status === 'accepted'), 'the accepted receipt', 20_000);
  assert.equal(h.downlinks.length, 0, 'nothing is sent before the device opens a window');

  const tmst = await h.uplink(device);
  await waitFor(() => h.downlinks.length === 1, 'the downlink after the uplink', 10_000);
  const txpk = h.downlinks[0] as Txpk;
  assert.equal(txpk.tmst, (tmst + 1_000_000) >>> 0, 'RX1: one second after the uplink');
  assert.equal(txpk.freq, 868.1, 'RX1 on the uplink frequency (EU868)');
  assert.equal(txpk.ipol, true);
  const frame = decode(txpk, device);
  assert.deepEqual(frame, { mtype: 'Unconfirmed Data Down', fcnt: 0, fport: 10, ack: false, payload: '0a28' });
  await waitFor(() => h.statuses('c-lamp').at(-1)?.status === 'sent', 'the final sent receipt', 20_000);
  assert.deepEqual(
    h.statuses('c-lamp').map((receipt) => receipt.status),
    ['accepted', 'sent'],
  );
  assert.equal(h.statuses('c-lamp').at(-1)?.path, 'lorawan');
  assert.match(h.statuses('c-lamp').at(-1)?.reason ?? '', /FCntDown 0, FPort 10/);

  // The next uplink opens a window with nothing waiting: no downlink.
  await h.uplink(device);
  await waitFor(async () => (await h.gateway.metric('iotgw_ingress_accepted_total', ['source="semtech-udp"'])) === 2, 'the second uplink stored');
  assert.equal(h.downlinks.length, 1);
});

test('LoRaWAN Class A: a confirmed command rides with the ACK of a confirmed uplink, and is acked by the next uplink', async (t) => {
  const h = await setup(t);
  const device = h.devices[1] as (typeof h.devices)[number];
  await h.command(device.devEui, 'c-valve', { name: 'valve', payload: { open: false }, port: 20, confirmed: true });
  await waitFor(() => h.statuses('c-valve').some((receipt) => receipt.status === 'accepted'), 'the accepted receipt', 20_000);

  await h.uplink(device, { confirmed: true });
  await waitFor(() => h.downlinks.length === 1, 'the downlink', 10_000);
  const frame = decode(h.downlinks[0] as Txpk, device);
  assert.equal(frame.mtype, 'Confirmed Data Down');
  assert.equal(frame.ack, true, "the confirmed uplink's ACK rides in the same frame");
  assert.equal(frame.fport, 20);
  assert.equal(Buffer.from(frame.payload ?? '', 'hex').toString('utf8'), '{"open":false}');
  await waitFor(() => h.statuses('c-valve').some((receipt) => receipt.status === 'sent'), 'the sent receipt (TX_ACK)', 20_000);

  // The device's next uplink acknowledges it.
  await h.uplink(device, { ack: true });
  await waitFor(() => h.statuses('c-valve').at(-1)?.status === 'acked', 'the acked receipt', 20_000);
  assert.deepEqual(
    h.statuses('c-valve').map((receipt) => receipt.status),
    ['accepted', 'sent', 'acked'],
  );
  assert.equal(h.downlinks.length, 1, 'no separate ACK downlink and nothing more');
});

test('LoRaWAN Class A: an unacknowledged confirmed command is sent again with a new FCntDown', async (t) => {
  const h = await setup(t);
  const device = h.devices[0] as (typeof h.devices)[number];
  await h.command(device.devEui, 'c-retry', { name: 'config', payload_hex: '01', port: 30, confirmed: true });
  await waitFor(() => h.statuses('c-retry').some((receipt) => receipt.status === 'accepted'), 'the accepted receipt', 20_000);
  await h.uplink(device);
  await waitFor(() => h.downlinks.length === 1, 'the first send', 10_000);
  // The device missed it: its next uplink carries no ACK.
  await h.uplink(device);
  await waitFor(() => h.downlinks.length === 2, 'the second send', 10_000);
  const [first, second] = h.downlinks.map((txpk) => decode(txpk, device));
  assert.equal(first?.payload, '01');
  assert.equal(second?.payload, '01');
  assert.ok((second?.fcnt ?? 0) > (first?.fcnt ?? 0), `FCntDown moved on (${first?.fcnt} -> ${second?.fcnt})`);
  await h.uplink(device, { ack: true });
  await waitFor(() => h.statuses('c-retry').at(-1)?.status === 'acked', 'the acked receipt', 20_000);
});

test('LoRaWAN Class C: a command goes at once on RX2 through the gateway that heard the device last', async (t) => {
  const h = await setup(t, { classC: true });
  const device = h.devices[1] as (typeof h.devices)[number];
  // Heard once, so a gateway that reaches it is known.
  await h.uplink(device);
  await waitFor(async () => (await h.gateway.metric('iotgw_ingress_accepted_total', ['source="semtech-udp"'])) === 1, 'the uplink stored');
  // Keyed with the DevEUI in upper case, as many systems print it: the same device.
  await h.command(device.devEui.toUpperCase(), 'c-class-c', { name: 'on', payload_hex: 'ff', port: 5 });
  await waitFor(() => h.downlinks.length === 1, 'the Class C downlink, without waiting for an uplink', 20_000);
  const txpk = h.downlinks[0] as Txpk;
  assert.equal(txpk.imme, true, 'sent immediately');
  assert.equal(txpk.tmst, undefined);
  assert.equal(txpk.freq, 869.525, 'RX2 frequency (EU868)');
  assert.equal(txpk.datr, 'SF12BW125', 'RX2 data rate (EU868 DR0)');
  assert.deepEqual(decode(txpk, device), { mtype: 'Unconfirmed Data Down', fcnt: 0, fport: 5, ack: false, payload: 'ff' });
  await waitFor(() => h.statuses('c-class-c').at(-1)?.status === 'sent', 'the sent receipt', 20_000);
});

test("LoRaWAN: an object payload goes through the device formatter's encodeDownlink, which gives the bytes and the FPort", async (t) => {
  const h = await setup(t, { formatterFile: fileURLToPath(new URL('../fixtures/formatters/street-lamp.js', import.meta.url)) });
  const device = h.devices[0] as (typeof h.devices)[number];
  await h.command(device.devEui, 'c-encode', { name: 'dim', payload: { level: 40 } });
  await h.command(device.devEui, 'c-refused', { name: 'dim', payload: { level: 400 } });
  await waitFor(() => h.statuses('c-refused').some((receipt) => receipt.status === 'accepted'), 'the accepted receipts', 20_000);
  await h.uplink(device);
  await waitFor(() => h.downlinks.length === 1, 'the downlink', 10_000);
  assert.deepEqual(decode(h.downlinks[0] as Txpk, device), { mtype: 'Unconfirmed Data Down', fcnt: 0, fport: 10, ack: false, payload: '0128' });
  await waitFor(() => h.statuses('c-encode').at(-1)?.status === 'sent', 'the sent receipt', 20_000);
  // The next window: the formatter refuses the second command, which fails with its reason, and nothing is sent.
  await h.uplink(device);
  await waitFor(() => h.statuses('c-refused').at(-1)?.status === 'failed', 'the failed receipt', 20_000);
  assert.match(h.statuses('c-refused').at(-1)?.reason ?? '', /could not encode it: .*level must be 0\.\.100, got 400/);
  assert.equal(h.downlinks.length, 1);
});
