// End to end with a JavaScript payload formatter: a simulated packet forwarder -> the gateway process (Semtech
// UDP, LoRaWAN server, a TTN-style decodeUplink file in node:vm, SQLite) -> librdkafka's mock cluster. A frame
// the formatter decodes reaches Kafka with decoded_payload; frames whose formatter throws, or runs an endless
// promise chain until the time limit, reach Kafka too, with iotgw.codec_error and their bytes intact, and
// are counted in iotgw_formatter_errors_total.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { createSimulatedForwarder } from '../../firmware-sim/transports/packet-forwarder.ts';
import { encodeDataFrame } from '../../src/ingress/lorawan/frame-crypto.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { freeUdpPort, type GatewayProcess, startGatewayProcess, writeGatewayConfig } from '../helpers/gateway-process.ts';
import { kafkaMockFor, readTopic } from '../helpers/kafka-mock.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const TOPIC = 'city.formatted';
const DEVICE = {
  devEui: '70b3d57ed00000f1',
  devAddr: '260b00f1',
  nwkSKey: Buffer.from('2b7e151628aed2a6abf7158809cf4f3c', 'hex'),
  appSKey: Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex'),
};

// FPort 1: temperature int16 BE in 0.01 °C. A first byte 0xff is the sensor's error code: the formatter throws.
// FPort 67: a bug that chains promises forever; the time limit stops it.
const FORMATTER = `function decodeUplink(input) {
  var bytes = input.bytes;
  if (input.fPort === 67) { var spin = function () { return Promise.resolve().then(spin); }; spin(); }
  if (bytes[0] === 0xff) throw new RangeError('sensor error code ' + bytes[1]);
  var raw = (bytes[0] << 8) | bytes[1];
  if (raw & 0x8000) raw -= 0x10000;
  return { data: { temperature: raw / 100 }, warnings: raw < 0 ? ['below freezing'] : [] };
}
`;

interface UplinkValue {
  uplink_message: { f_port: number; f_cnt: number; frm_payload: string; decoded_payload?: Record<string, unknown>; decoded_payload_warnings?: string[] };
  iotgw: { codec: string; codec_error?: string };
}

const formatterErrors = (gateway: GatewayProcess, kind: string): Promise<number> =>
  gateway.metric('iotgw_formatter_errors_total', ['codec="javascript:thermometer.js"', `kind="${kind}"`]);

test('a javascript formatter decodes uplinks into Kafka; a throwing or stuck formatter still lets the uplink through with iotgw.codec_error', async (t) => {
  const kafka = await kafkaMockFor(t, { brokers: 1, topics: [{ name: TOPIC, partitions: 1 }] });
  const dir = tempDir(t);
  writeFileSync(join(dir, 'thermometer.js'), FORMATTER);
  const udpPort = await freeUdpPort();
  const config: ConfigInput = {
    gateway_id: 'gw-formatter-e2e',
    mqtt: { host: '127.0.0.1', port: 0 },
    http: { host: '127.0.0.1', port: 0 },
    kafka: { brokers: [...kafka.brokers], topic: TOPIC, retry_initial_ms: 100, retry_max_ms: 1000, request_timeout_ms: 5000, connection_timeout_ms: 1000 },
    buffer: { path: join(dir, 'buffer.db') },
    formatters: { timeout_ms: 100 },
    lorawan: {
      enabled: true,
      udp: { host: '127.0.0.1', port: udpPort },
      dedup_window_ms: 0,
      devices: [
        {
          dev_eui: DEVICE.devEui,
          name: 'thermometer-1',
          codec: 'javascript',
          formatter_file: '${FORMATTER_DIR}/thermometer.js',
          dev_addr: DEVICE.devAddr,
          nwk_s_key: DEVICE.nwkSKey.toString('hex'),
          app_s_key: DEVICE.appSKey.toString('hex'),
        },
      ],
    },
  };
  const gateway = await startGatewayProcess(t, writeGatewayConfig(dir, config), { FORMATTER_DIR: dir });
  assert.ok(gateway.logs.some((line) => line.msg === 'payload formatter compiled' && line.codec === 'javascript:thermometer.js'));

  const forwarder = createSimulatedForwarder({ gatewayEui: 'aa555a00000000f1', server: { host: '127.0.0.1', port: udpPort } });
  await forwarder.start();
  t.after(() => forwarder.stop());
  const frames: { fcnt: number; fport: number; payload: number[] }[] = [
    { fcnt: 1, fport: 1, payload: [0x08, 0x66] }, // 21.5 °C
    { fcnt: 2, fport: 1, payload: [0xff, 0x07] }, // the formatter throws
    { fcnt: 3, fport: 67, payload: [0x00, 0x01] }, // the formatter never finishes
    { fcnt: 4, fport: 1, payload: [0xfe, 0x0c] }, // -5 °C, with a warning
  ];
  for (const frame of frames) {
    const phyPayload = encodeDataFrame({
      mtype: 'UnconfirmedDataUp',
      devAddr: DEVICE.devAddr,
      fcnt32: frame.fcnt,
      fport: frame.fport,
      payload: Buffer.from(frame.payload),
      nwkSKey: DEVICE.nwkSKey,
      appSKey: DEVICE.appSKey,
    });
    assert.equal(await forwarder.pushRxpk([{ phyPayload }]), true, `PUSH_ACK for FCnt ${frame.fcnt}`);
  }

  const messages = await readTopic(kafka.brokers, TOPIC, { until: (read) => read.length >= frames.length, timeoutMs: 30_000 });
  const byFcnt = new Map(messages.map((message) => [(JSON.parse(message.value?.toString('utf8') ?? '{}') as UplinkValue).uplink_message.f_cnt, message]));
  assert.deepEqual([...byFcnt.keys()].sort(), [1, 2, 3, 4], 'every uplink reached Kafka, the failed decodes too');
  const value = (fcnt: number): UplinkValue => JSON.parse(byFcnt.get(fcnt)?.value?.toString('utf8') ?? '{}') as UplinkValue;
  for (const frame of frames) {
    const uplink = value(frame.fcnt);
    assert.equal(byFcnt.get(frame.fcnt)?.key, DEVICE.devEui);
    assert.equal(uplink.iotgw.codec, 'javascript:thermometer.js');
    assert.equal(uplink.uplink_message.frm_payload, Buffer.from(frame.payload).toString('base64'), `FCnt ${frame.fcnt}: the bytes are intact`);
  }

  assert.deepEqual(value(1).uplink_message.decoded_payload, { temperature: 21.5 });
  assert.equal(value(1).iotgw.codec_error, undefined);

  assert.equal(value(2).uplink_message.decoded_payload, undefined);
  assert.equal(value(2).iotgw.codec_error, 'decodeUplink threw RangeError: sensor error code 7');

  assert.equal(value(3).uplink_message.decoded_payload, undefined);
  assert.equal(value(3).iotgw.codec_error, 'decodeUplink did not finish within 100 ms');

  assert.deepEqual(value(4).uplink_message.decoded_payload, { temperature: -5 });
  assert.deepEqual(value(4).uplink_message.decoded_payload_warnings, ['below freezing']);
  assert.equal(await formatterErrors(gateway, 'threw'), 1);
  assert.equal(await formatterErrors(gateway, 'timeout'), 1);
  assert.equal(await formatterErrors(gateway, 'errors'), 0);
  assert.equal(gateway.child.exitCode, null, 'the gateway is still running');
});
