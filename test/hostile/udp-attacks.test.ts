// Attacks on the Semtech UDP port, which has no authentication: anyone who can send UDP to it can pose as a
// packet forwarder. Against the gateway process, while a fleet of MQTT devices keeps publishing.
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodePushData } from '../../src/ingress/semtech-udp/packet-encoders.ts';
import type { GatewayStat } from '../../src/ingress/semtech-udp/packets.ts';
import { MB, startHostileGateway } from './hostile-gateway.ts';

const stat: GatewayStat = { time: '2026-12-06 08:00:00 GMT', rxnb: 1, rxok: 1, rxfw: 1, ackr: 100, dwnb: 0, txnb: 0 };

async function socketAt(address: string): Promise<Socket> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, address, resolve));
  return socket;
}

test('waves of stat reports from random gateway EUIs: metric series, status records, memory and log stay bounded', async (t) => {
  // Before: 5 waves of 12,000 stats from random EUIs left 300,000 gateway_stat series (a 21 MB /metrics page),
  // RSS 96 -> 295 MB and growing; with gateway_status_stream set, each one a durable record.
  const stage = await startHostileGateway(t, {
    lorawan: true,
    config: (base) => ({ ...base, lorawan: { ...base.lorawan, gateway_status_stream: 'gateway-status' } }),
  });
  const sources = await Promise.all(Array.from({ length: 8 }, (_, index) => socketAt(`127.0.3.${index + 1}`)));
  t.after(() => {
    for (const socket of sources) socket.close();
  });
  for (let wave = 0; wave < 5; wave++) {
    for (let index = 0; index < 12_000; index++) {
      const datagram = encodePushData(2, randomBytes(2), randomBytes(8).toString('hex'), { stat });
      (sources[index % sources.length] as Socket).send(datagram, stage.udpPort, '127.0.0.1');
      if (index % 500 === 0) await sleep(1); // let the sends drain
    }
    await sleep(300);
  }
  await sleep(500);
  const metrics = await stage.gateway.metricsText();
  const series = metrics.split('\n').filter((line) => line.startsWith('iotgw_lorawan_gateway_stat{')).length;
  assert.ok(series <= 100 * 7, `${series} gateway_stat series: at most lorawan.max_gateways (100) x 7 fields`);
  assert.ok(metrics.length < MB, `the /metrics page is ${(metrics.length / 1024).toFixed(0)} KiB`);
  const statRecords = await stage.gateway.metric('iotgw_ingress_accepted_total', ['source="semtech-udp"']);
  assert.ok(statRecords <= 100 * 3, `${statRecords} status records: one per tracked gateway per 10 s at most`);
  assert.ok((await stage.gateway.metric('iotgw_ingress_rejected_total', ['reason="rate-limited"'])) > 0, 'sources over their rate are cut off');
  assert.ok((await stage.gateway.metric('iotgw_ingress_rejected_total', ['reason="gateway-limit"'])) > 0, 'gateways past the limit are refused');
  const dropLines = stage.gateway.logs.filter((line) => line.reason === 'rate-limited' || line.reason === 'gateway-limit');
  assert.ok(dropLines.length <= 80, `log lines about the flood stay within the budget (${dropLines.length})`);
  const { peakRssBytes, report } = await stage.finish();
  t.diagnostic(
    `peak RSS ${(peakRssBytes / MB).toFixed(0)} MB, ${series} series, ${statRecords} status records; fleet acknowledged ${report.ackedPerSecond.toFixed(0)}/s of 200/s offered`,
  );
  assert.ok(peakRssBytes < 300 * MB, `peak RSS ${(peakRssBytes / MB).toFixed(0)} MB < 300 MB`);
});
