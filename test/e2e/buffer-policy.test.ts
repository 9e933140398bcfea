// The buffer's bound in the running gateway, with Kafka unreachable: drop_oldest keeps acknowledging
// and deletes the oldest records, counted in metrics and logged once; reject stops acknowledging.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import mqtt from 'mqtt';
import { freePort, startGatewayProcess, writeGatewayConfig } from '../helpers/gateway-process.ts';
import { tempDir } from '../helpers/temp-dir.ts';

async function gatewayWithoutKafka(t: import('node:test').TestContext, whenFull: 'reject' | 'drop_oldest') {
  const dir = tempDir(t);
  const unreachable = await freePort();
  const configPath = writeGatewayConfig(dir, {
    mqtt: { host: '127.0.0.1', port: 0, allow_anonymous: true },
    http: { port: 0 },
    kafka: { brokers: [`127.0.0.1:${unreachable}`], connection_timeout_ms: 200, retry_max_ms: 500 },
    buffer: { path: join(dir, 'buffer.db'), max_records: 50, when_full: whenFull },
  });
  return startGatewayProcess(t, configPath);
}

test('drop_oldest: every publish is acknowledged, the overflow is dropped oldest first, counted and logged once', async (t) => {
  const gateway = await gatewayWithoutKafka(t, 'drop_oldest');
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${gateway.mqttPort}`, { clientId: 'em-1', protocolVersion: 4, reconnectPeriod: 0 });
  t.after(() => client.endAsync(true));
  for (let n = 1; n <= 80; n++) await client.publishAsync('devices/em-1/telemetry', String(n), { qos: 1 });

  assert.equal((await gateway.readiness()).buffer.depthRecords, 50);
  assert.match(await gateway.metricsText(), /^iotgw_buffer_dropped_total 30$/m);
  const dropLogs = gateway.logs.filter((line) => String(line.msg).startsWith('buffer full: deleting the oldest'));
  assert.equal(dropLogs.length, 1, 'logged once, not per drop');
  assert.equal((await gateway.readiness()).kafka, 'buffering');
});

test('reject: at the bound the device gets no PUBACK, the refusal is counted, and the gateway keeps running', async (t) => {
  const gateway = await gatewayWithoutKafka(t, 'reject');
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${gateway.mqttPort}`, { clientId: 'em-1', protocolVersion: 4, reconnectPeriod: 0 });
  t.after(() => client.endAsync(true));
  for (let n = 1; n <= 50; n++) await client.publishAsync('devices/em-1/telemetry', String(n), { qos: 1 });
  let acked = false;
  const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
  client.publish('devices/em-1/telemetry', '51', { qos: 1 }, (error) => {
    if (!error) acked = true;
  });
  await closed;
  assert.equal(acked, false);
  assert.match(await gateway.metricsText(), /^iotgw_ingress_rejected_total\{source="mqtt",reason="buffer-full"\} 1$/m);
  assert.equal((await gateway.readiness()).buffer.depthRecords, 50);
  assert.equal(gateway.child.exitCode, null, 'still running');
});
