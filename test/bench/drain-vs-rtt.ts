// Scenario 3b: how fast a backlog drains over a slow link. The mock cluster adds a round-trip time to every
// broker response (an LTE uplink: 100-300 ms); the forwarder keeps one batch on the wire at a time, so the
// drain rate is about batch size / round trip once the link, not the CPU, is the limit.
import type { GatewayProcess } from '../helpers/gateway-process.ts';
import type { KafkaMock } from '../helpers/kafka-mock.ts';
import { metric, runSim, say, sleep } from './bench-tools.ts';

export interface DrainVsRttOptions {
  readonly devices: number;
  /** Seconds of closed-loop ingest with Kafka down that build each backlog. */
  readonly backlogSeconds: number;
  /** Longest a drain is watched. */
  readonly maxDrainSeconds: number;
  readonly rttsMs: readonly number[];
}

export async function benchDrainVsRtt(gateway: GatewayProcess, kafka: KafkaMock, options: DrainVsRttOptions): Promise<void> {
  say('');
  say('3b. drain rate against the link round-trip time (backlog built with Kafka down; no live traffic; mock cluster rtt added to every response)');
  for (const rttMs of options.rttsMs) {
    await kafka.down('all');
    await runSim({ port: gateway.mqttPort, devices: options.devices, rate: 0, seconds: options.backlogSeconds, seed: 30 + rttMs, inflight: 8 });
    const backlog = (await gateway.readiness()).buffer.depthRecords;
    await kafka.setRttMs('all', rttMs);
    const sentBefore = await metric(gateway, 'iotgw_kafka_sent_records_total');
    const startedAt = Date.now();
    await kafka.up('all');
    while ((await gateway.readiness()).buffer.depthRecords > 0 && Date.now() - startedAt < options.maxDrainSeconds * 1000) await sleep(100);
    const seconds = (Date.now() - startedAt) / 1000;
    const sent = (await metric(gateway, 'iotgw_kafka_sent_records_total')) - sentBefore;
    const left = (await gateway.readiness()).buffer.depthRecords;
    say(
      `   rtt ${String(rttMs).padStart(3)} ms: ${Math.round(sent / seconds).toLocaleString('en-US')} msg/s (${sent} of a ${backlog}-record backlog in ${seconds.toFixed(1)} s${left > 0 ? `, ${left} left when the watch ended` : ''})`,
    );
    await kafka.setRttMs('all', 0);
    while ((await gateway.readiness()).buffer.depthRecords > 0) await sleep(200);
  }
}
