// A device's records must reach Kafka in the order it sent them, also when the buffer is full. Against the
// gateway process: the buffer nearly full (Kafka away), a device sends a large reading and a small one in one
// TCP write; the large one does not fit, and the small one, which would, must not be stored ahead of it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { connect as connectTcp } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { freePort, startGatewayProcess, writeGatewayConfig } from '../helpers/gateway-process.ts';
import { kafkaMockFor } from '../helpers/kafka-mock.ts';
import { connectPacket, publishPacket } from '../helpers/mqtt-wire.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));

test('with when_full: reject, a later, smaller record of a device is not stored ahead of a refused one from the same write', async (t) => {
  // Before: the 2,000-byte publish was refused and the 500-byte one behind it committed; the device resent both
  // and Kafka got P2, P1, P2.
  const kafka = await kafkaMockFor(t, { brokers: 1, topics: [{ name: 'order.records', partitions: 1 }] });
  await kafka.down('all');
  const dir = tempDir(t);
  const configPath = writeGatewayConfig(dir, {
    mqtt: { host: '127.0.0.1', port: await freePort(), allow_anonymous: true },
    http: { host: '127.0.0.1', port: 0 },
    kafka: { brokers: [...kafka.brokers], topic: 'order.records', retry_initial_ms: 100, retry_max_ms: 500 },
    buffer: { path: join(dir, 'buffer.db'), max_bytes: 10_000, when_full: 'reject' },
  });
  const gateway = await startGatewayProcess(t, configPath);
  // Fill the buffer to about 8,700 of its 10,000 bytes with another device's readings.
  const filler = await mqtt.connectAsync(`mqtt://127.0.0.1:${gateway.mqttPort}`, { clientId: 'em-filler', reconnectPeriod: 0 });
  for (let index = 0; index < 6; index++) await filler.publishAsync('devices/em-filler/telemetry', 'f'.repeat(1400), { qos: 1 });
  await filler.endAsync();

  const socket = connectTcp({ port: gateway.mqttPort, host: '127.0.0.1' });
  socket.on('error', () => undefined);
  const closed = new Promise<Buffer>((resolve) => {
    const received: Buffer[] = [];
    socket.on('data', (chunk) => received.push(chunk));
    socket.on('close', () => resolve(Buffer.concat(received)));
  });
  const publish = (id: number, payload: string) => publishPacket('devices/em-order/telemetry', Buffer.from(payload), 1, id);
  socket.write(
    Buffer.concat([connectPacket({ clientId: 'em-order' }), publish(1, `{"p":1,"x":"${'a'.repeat(2000)}"}`), publish(2, `{"p":2,"x":"${'b'.repeat(500)}"}`)]),
  );
  const answers = await closed;
  assert.equal(answers.indexOf(Buffer.from([0x40, 0x02])), -1, 'no PUBACK for either: the connection closed');

  const exported = spawnSync(process.execPath, [CLI, 'buffer', 'export', '--config', configPath], { encoding: 'utf8' });
  assert.equal(exported.status, 0, exported.stderr);
  const keys = exported.stdout
    .trim()
    .split('\n')
    .map((line) => (JSON.parse(line) as { key: string }).key);
  assert.deepEqual([...new Set(keys)], ['em-filler'], 'nothing of em-order was stored: after it resends both, they are in order');
  assert.ok((await gateway.metric('iotgw_ingress_rejected_total', ['reason="buffer-full"'])) >= 1);
});
