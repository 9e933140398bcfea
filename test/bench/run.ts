// `npm run bench`: measures the gateway as deployed (its own process, real SQLite file with
// synchronous=FULL, librdkafka's mock cluster) under load from firmware-sim (its own process).
// Prints figures; asserts nothing about speed. Scenarios:
//   A. against the reference pipeline (versus-reference.ts): sustained rate, CPU per record, latency at
//      2,500 msg/s (p50/p99/p99.9), peak RSS, each beside the same figure for mosquitto | kcat, as a ratio
//   1. ingest with Kafka down: 1,000 devices publish QoS 1 as fast as their PUBACKs allow (the buffer grows)
//   3. drain: Kafka down while devices publish, then up with live traffic at 2,500 msg/s
//   3b. drain rate against the link's round-trip time (0, 100, 300 ms added by the mock cluster)
//   4. LoRaWAN: Semtech UDP PUSH_DATA (8 frames per datagram, 4 gateways, 1,000 ABP devices) -> MIC,
//      counter, decrypt, Cayenne LPP -> committed to the buffer, at rising offered rates (Kafka down, so
//      the figure is the LoRaWAN path alone)
//   5. TTN: the TTS stand-in (firmware-sim, in this process) publishes v3 uplinks of 1,000 devices at QoS 0 to
//      the gateway's ttn ingress -> parse, gap tracking, Cayenne LPP for messages without decoded_payload ->
//      committed to the buffer, at rising offered rates and then as fast as the stand-in can (Kafka down)
//   6. peak RSS of the gateway process over the whole run
//   7. payload formatters in this process: µs per decode of a TTN-style JavaScript formatter (node:vm) and
//      of the built-in Cayenne LPP codec (no gateway process; `--only formatter` starts none)
//   8. compression: bytes on the wire and CPU per record for each kafka.compression (compression.ts)
//   9. idle fleet: gateway RSS with 10,000 MQTT devices connected, mostly idle (idle-fleet.ts)
//  10. memory: the gateway's peak RSS against aedes alone under the same load (memory-vs-aedes.ts)
//  11. command latency, Kafka -> device (MQTT, LoRaWAN Class C and A, TTN), MQTT and TTN beside a kcat | mosquitto_pub
//      bridge; 200 commands per path at 20/s, its own gateway and mock cluster (command-latency.ts)
import { createHash, randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createRandom } from '../../firmware-sim/fleet.ts';
import { startTtsStandIn, type TtsStandIn } from '../../firmware-sim/tts-stand-in.ts';
import { createTtsFleet, type TtsFleet } from '../../firmware-sim/tts-traffic.ts';
import { encodeDataFrame } from '../../src/ingress/lorawan/frame-crypto.ts';
import { encodeUplinkMacCommands } from '../../src/ingress/lorawan/mac-commands.ts';
import { createFormatterCache } from '../../src/codecs/javascript-formatter.ts';
import { CAYENNE_LPP_CODEC, decodePayload, type PayloadCodec } from '../../src/codecs/payload-codec.ts';
import { encodePushData } from '../../src/ingress/semtech-udp/packet-encoders.ts';
import type { Rxpk } from '../../src/ingress/semtech-udp/packets.ts';
import { configSchema } from '../../src/config/schema.ts';
import { createLogger } from '../../src/core/log.ts';
import { freeUdpPort, type GatewayProcess, launchGateway, writeGatewayConfig } from '../helpers/gateway-process.ts';
import { type KafkaMock, startKafkaMock } from '../helpers/kafka-mock.ts';
import { cpuSeconds, metric, rssMb, runSim, say, sleep, unitNode } from './bench-tools.ts';
import { benchCommandLatency } from './command-latency.ts';
import { benchCompression } from './compression.ts';
import { benchDrainVsRtt } from './drain-vs-rtt.ts';
import { benchIdleFleet } from './idle-fleet.ts';
import { benchMemoryVsAedes } from './memory-vs-aedes.ts';
import { benchVersusReference, REFERENCE_TOPIC } from './versus-reference.ts';

const TOPIC = 'bench.telemetry';
const TTN_APPLICATION = 'bench-ttn';
const CLIMATE_FORMATTER = fileURLToPath(new URL('../fixtures/formatters/climate-sensor.js', import.meta.url));
const SCENARIOS = ['mqtt', 'reference', 'lorawan', 'ttn', 'formatter', 'compression', 'idle', 'memory', 'commands'] as const;

const { values: args } = parseArgs({
  options: {
    devices: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '20' },
    rounds: { type: 'string', default: '3' },

    only: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  process.stdout.write(
    `npm run bench [-- --devices N --seconds S --rounds R --only ${SCENARIOS.join('|')}]   (defaults 1000 devices, 20 s per scenario, 3 rounds against the reference pipeline, all scenarios)\n`,
  );
  process.exit(0);
}
if (args.only !== undefined && !(SCENARIOS as readonly string[]).includes(args.only)) {
  process.stderr.write(`--only must be one of ${SCENARIOS.join(', ')}, got '${args.only}' (npm run bench -- --help)\n`);
  process.exit(2);
}
/** mqtt runs scenario A, 1-3 and 3b, reference A alone, lorawan 4, ttn 5, formatter 7, compression 8, idle 9, memory 10, commands 11; without --only, all of them (6 comes with any gateway scenario). */
const selected = (scenario: (typeof SCENARIOS)[number]): boolean => args.only === undefined || args.only === scenario;
const DEVICES = Number(args.devices);
const SECONDS = Number(args.seconds);
const ROUNDS = Number(args.rounds);
const INGEST_INFLIGHT = 8;

/** Deterministic ABP devices for the LoRaWAN scenario (keys from a hash, so nothing secret is involved). */
function benchLorawanDevices(count: number) {
  const key = (label: string, index: number) => createHash('sha256').update(`${label}-${index}`).digest().subarray(0, 16);
  return Array.from({ length: count }, (_, index) => ({
    devEui: `70b3d57e${index.toString(16).padStart(8, '0')}`,
    devAddr: (0x26000000 + index).toString(16),
    nwkSKey: key('nwk', index),
    appSKey: key('app', index),
  }));
}

/**
 * Offers LoRaWAN uplinks at `rate` frames/s for `seconds` as PUSH_DATA datagrams of 8 rxpk from 4 gateways,
 * each frame a fresh FCnt of one of the devices (round robin). Returns the frames sent.
 */
/**
 * What a device's MAC layer puts in each uplink with `mac` on: the ADR bit (the server runs ADR on every frame)
 * and FOpts with a DevStatusAns and a LinkADRAns (parsed, settled against what is pending).
 */
const BENCH_FOPTS = encodeUplinkMacCommands([
  { command: 'DevStatusAns', battery: 200, margin: 10 },
  { command: 'LinkADRAns', powerAck: true, dataRateAck: true, channelMaskAck: true },
]);

async function offerLorawan(
  port: number,
  devices: ReturnType<typeof benchLorawanDevices>,
  fcnts: number[],
  rate: number,
  seconds: number,
  mac = false,
): Promise<number> {
  const socket = createSocket('udp4');
  socket.connect(port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  const gateways = ['b827ebfffe000001', 'b827ebfffe000002', 'b827ebfffe000003', 'b827ebfffe000004'];
  const lpp = Buffer.from('0167011002880000007b03020159', 'hex'); // temperature, energy-ish analog values
  let sent = 0;
  let next = 0;
  const startedAt = performance.now();
  while (performance.now() - startedAt < seconds * 1000) {
    const due = Math.floor(((performance.now() - startedAt) / 1000) * rate);
    while (sent + 8 <= due) {
      const rxpk: Rxpk[] = [];
      for (let slot = 0; slot < 8; slot++) {
        const index = next++ % devices.length;
        const device = devices[index] as (typeof devices)[number];
        const fcnt = fcnts[index] ?? 0;
        fcnts[index] = fcnt + 1;
        const data = encodeDataFrame({
          mtype: 'UnconfirmedDataUp',
          fcnt32: fcnt,
          fport: 2,
          payload: lpp,
          ...(mac ? { adr: true, fopts: BENCH_FOPTS } : {}),
          ...device,
        });
        rxpk.push({
          time: null,
          tmms: null,
          tmst: (sent * 1000) >>> 0,
          frequencyHz: 868_100_000,
          chan: 0,
          rfch: 0,
          crcStatus: 1,
          modulation: 'LORA',
          datr: 'SF7BW125',
          codr: '4/5',
          rssi: -70,
          rssis: null,
          lsnr: 9.5,
          size: data.length,
          data,
        });
      }
      socket.send(encodePushData(2, randomBytes(2), gateways[(sent / 8) % gateways.length] as string, { rxpk }));
      sent += 8;
    }
    await sleep(5);
  }
  socket.close();
  return sent;
}

/** How far a counter moved from `before` once it stops moving (3 reads 500 ms apart alike): commits still landing are counted. */
async function settledDelta(gateway: GatewayProcess, name: string, before: number): Promise<number> {
  let delta = -1;
  for (let settled = 0; settled < 3; await sleep(500)) {
    const now = (await metric(gateway, name)) - before;
    settled = now === delta ? settled + 1 : 0;
    delta = now;
  }
  return delta;
}

/** iotgw_ingress_rejected_total of one source, by reason. */
async function rejectedByReason(gateway: GatewayProcess, source: string): Promise<Map<string, number>> {
  const prefix = `iotgw_ingress_rejected_total{source="${source}",`;
  const counts = new Map<string, number>();
  for (const line of (await gateway.metricsText()).split('\n')) {
    const reason = line.startsWith(prefix) ? /reason="([^"]*)"/.exec(line)?.[1] : undefined;
    if (reason !== undefined) counts.set(reason, Number(line.split(' ').at(-1)));
  }
  return counts;
}

interface TtnOffer {
  readonly published: number;
  /** Published while the gateway was not subscribed (QoS 0: nobody received them). */
  readonly unheard: number;
  readonly activeS: number;
  /** CPU of this process (the stand-in and the message generator) per second of the run: 1 = one core busy. */
  readonly standInCores: number;
}

/**
 * Publishes the fleet's next uplinks (devices round robin) through the TTS stand-in at `rate` msg/s, or as fast
 * as it can when `rate` is 0, for `seconds`. Each publish resolves once aedes has written the message to the
 * gateway's socket, and the gateway reads its socket only as fast as it commits, so a slower gateway holds the
 * stand-in back (TCP backpressure) instead of losing messages.
 */
async function offerTtn(standIn: TtsStandIn, fleet: TtsFleet, rate: number, seconds: number): Promise<TtnOffer> {
  const cpuBefore = process.cpuUsage();
  const startedAt = performance.now();
  const endAt = startedAt + seconds * 1000;
  let published = 0;
  let unheard = 0;
  while (performance.now() < endAt) {
    const due = rate === 0 ? published + 100 : Math.floor(((performance.now() - startedAt) / 1000) * rate);
    while (published < due && performance.now() < endAt) {
      const device = fleet.devices[published % fleet.devices.length] as (typeof fleet.devices)[number];
      const message = JSON.stringify(fleet.nextUplink(device, Date.now()));
      if ((await standIn.publish(`v3/${standIn.username}/devices/${device.deviceId}/up`, message)) === 0) unheard += 1;
      published += 1;
    }
    if (rate > 0) await sleep(5);
  }
  const activeS = (performance.now() - startedAt) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  return { published, unheard, activeS, standInCores: (cpu.user + cpu.system) / 1e6 / activeS };
}

/** 5. TTS v3 uplinks over MQTT (QoS 0) -> the gateway's ttn ingress -> committed, at rising offered rates, then flat out. */
async function benchTtn(gateway: GatewayProcess, standIn: TtsStandIn, kafka: KafkaMock): Promise<void> {
  say('');
  say(
    `5. TTN uplinks from the TTS stand-in (MQTT, QoS 0, ${DEVICES} devices, half with decoded_payload) -> parse, f_cnt gaps, Cayenne LPP for the rest -> committed to the buffer (Kafka down)`,
  );
  await kafka.down('all');
  await standIn.waitForSubscriber();
  const fleet = createTtsFleet(TTN_APPLICATION, { devices: DEVICES, seed: 5, decodedShare: 0.5 });
  const accepted = 'iotgw_ingress_accepted_total{source="ttn"}';
  const seconds = Math.max(5, Math.round(SECONDS / 2));
  for (const rate of [1000, 5000, 0]) {
    const acceptedBefore = await metric(gateway, accepted);
    const rejectedBefore = await rejectedByReason(gateway, 'ttn');
    const pid = gateway.child.pid as number;
    const cpuBefore = { process: cpuSeconds(pid), loop: cpuSeconds(pid, true) };
    const offer = await offerTtn(standIn, fleet, rate, seconds);
    const gatewayCores = { process: (cpuSeconds(pid) - cpuBefore.process) / offer.activeS, loop: (cpuSeconds(pid, true) - cpuBefore.loop) / offer.activeS };
    const committed = await settledDelta(gateway, accepted, acceptedBefore);
    const rejected = [...(await rejectedByReason(gateway, 'ttn'))]
      .map(([reason, count]) => [reason, count - (rejectedBefore.get(reason) ?? 0)] as const)
      .filter(([, count]) => count > 0);
    const rejectedTotal = rejected.reduce((sum, [, count]) => sum + count, 0);
    const publishedPerS = Math.round(offer.published / offer.activeS);
    const committedPerS = Math.round(committed / offer.activeS);
    const lost = offer.published - committed - rejectedTotal;
    say(
      `   offered ${rate === 0 ? 'as fast as the stand-in can' : `${rate} msg/s`} for ${seconds} s: stand-in published ${publishedPerS} msg/s, committed ${committedPerS} msg/s (${committed} of ${offer.published}; rejected ${rejected.length === 0 ? '0' : rejected.map(([reason, count]) => `${count} ${reason}`).join(', ')}; ${lost} lost${offer.unheard === 0 ? '' : `, ${offer.unheard} of them published while the gateway was not subscribed`})`,
    );
    say(
      `   CPU: gateway ${gatewayCores.process.toFixed(2)} cores (event loop ${gatewayCores.loop.toFixed(2)}), stand-in and message generator ${offer.standInCores.toFixed(2)} cores`,
    );
    if (rate > 0 && publishedPerS < rate * 0.9) say(`   the stand-in fell short of ${rate} msg/s: the gateway held it back or it ran out of CPU`);
    if (rate === 0) say(`   ${ttnVerdict(gatewayCores, offer.standInCores, committedPerS)}`);
    if (committed + rejectedTotal < offer.published * 0.9) {
      const lines = (await gateway.metricsText()).split('\n').filter((line) => line.includes('source="ttn"') && !line.startsWith('#'));
      say(`   stopping here; the gateway's ttn counters: ${lines.join('; ')}`);
      break;
    }
  }
}

/** Which side held the flat-out TTN run back, judged by CPU: both the stand-in and the gateway's work are single-threaded. */
function ttnVerdict(gatewayCores: { readonly process: number; readonly loop: number }, standInCores: number, committedPerS: number): string {
  const busy = 0.85;
  if (gatewayCores.loop >= busy) return `the gateway's event loop was saturated: ${committedPerS} msg/s is its TTN ceiling on this machine`;
  if (standInCores >= busy) {
    return `the stand-in is the limit (a core busy publishing while the gateway's event loop had time to spare): the gateway's TTN ceiling is above ${committedPerS} msg/s`;
  }
  if (gatewayCores.process + standInCores >= busy * cpus().length) {
    return `the stand-in could not saturate the gateway: together they kept the machine's ${cpus().length} cores busy, so ${committedPerS} msg/s is a lower bound of the gateway's TTN ceiling (run the stand-in elsewhere to find it)`;
  }
  return `neither the gateway's event loop nor the stand-in had a full core (${cpus().length} cores, shared): ${committedPerS} msg/s is a lower bound of the gateway's TTN ceiling`;
}

/** Temperature / humidity / battery readings as the climate-sensor formatter's FPort 1 frame and as the same readings in Cayenne LPP. */
function climatePayloads(count: number): { readonly formatter: Buffer[]; readonly lpp: Buffer[] } {
  const random = createRandom(11);
  const int16 = (value: number): number[] => [(value >> 8) & 0xff, value & 0xff];
  const formatter: Buffer[] = [];
  const lpp: Buffer[] = [];
  for (let index = 0; index < count; index += 1) {
    const centiCelsius = Math.round((random() * 40 - 10) * 100);
    const halfPercent = Math.round(random() * 200);
    const batteryMv = Math.round(2400 + random() * 1200); // some below 2500 mV: the formatter adds a warning
    formatter.push(Buffer.from([...int16(centiCelsius), halfPercent, ...int16(batteryMv)]));
    lpp.push(Buffer.from([1, 103, ...int16(Math.round(centiCelsius / 10)), 2, 104, halfPercent, 3, 2, ...int16(Math.round(batteryMv / 10))]));
  }
  return { formatter, lpp };
}

/** Decodes every payload once (after a warm-up of 1,000) through decodePayload, as the ingress paths call it. */
function timeDecodes(codec: PayloadCodec, payloads: readonly Buffer[]): { readonly usPerDecode: number; readonly perSecond: number; readonly errors: number } {
  const recvTime = new Date();
  for (const bytes of payloads.slice(0, 1000)) decodePayload(codec, 1, bytes, recvTime);
  let errors = 0;
  const startedAt = performance.now();
  for (const bytes of payloads) if (decodePayload(codec, 1, bytes, recvTime).error !== undefined) errors += 1;
  const elapsedMs = performance.now() - startedAt;
  return { usPerDecode: (elapsedMs * 1000) / payloads.length, perSecond: payloads.length / (elapsedMs / 1000), errors };
}

/** 7. Payload formatter cost in this process: the JavaScript formatter (node:vm) against the built-in Cayenne LPP codec. */
function benchFormatters(): void {
  const decodes = 20_000;
  const limits = configSchema.shape.formatters.parse({});
  const cache = createFormatterCache(
    { timeoutMs: limits.timeout_ms, maxOutputBytes: limits.max_output_bytes },
    { log: createLogger({ level: 'silent', gatewayId: 'bench' }) },
  );
  const payloads = climatePayloads(decodes);
  const javascript = timeDecodes(cache.codecFor({ codec: 'javascript', formatterFile: CLIMATE_FORMATTER }), payloads.formatter);
  const lpp = timeDecodes(CAYENNE_LPP_CODEC, payloads.lpp);
  const line = (result: ReturnType<typeof timeDecodes>) =>
    `${result.usPerDecode.toFixed(1)} µs per decode, ${Math.round(result.perSecond)} decodes/s${result.errors === 0 ? '' : ` (${result.errors} decode errors!)`}`;
  say('');
  say(`7. payload decode cost, in this process (${decodes} temperature/humidity/battery readings each, through decodePayload as the ingress paths call it)`);
  say(`   javascript formatter (climate-sensor.js in node:vm, ${limits.timeout_ms} ms limit): ${line(javascript)}`);
  say(`   cayenne-lpp (built in): ${line(lpp)}; the formatter costs ${(javascript.usPerDecode / lpp.usPerDecode).toFixed(0)}x as much`);
}

async function main(): Promise<void> {
  say(`iotgw bench: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), node ${process.version}, ${DEVICES} devices, ${SECONDS} s per scenario`);
  if (selected('mqtt') || selected('reference') || selected('lorawan') || selected('ttn')) await gatewayScenarios();
  if (selected('formatter')) benchFormatters();
  if (selected('compression')) await benchCompression();
  if (selected('idle')) await benchIdleFleet(10_000, SECONDS * 2, unitNode());
  if (selected('memory')) await benchMemoryVsAedes(DEVICES, SECONDS, unitNode());
  if (selected('commands')) await benchCommandLatency({ commands: 200, ratePerS: 20, devices: 10, node: unitNode() });
}

/** Scenarios 1-6: one gateway process against the Kafka mock, fed by firmware-sim, Semtech UDP and the TTS stand-in. */
async function gatewayScenarios(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'iotgw-bench-'));
  const lorawanDevices = benchLorawanDevices(1000);
  const lorawanPort = await freeUdpPort();
  const kafka = await startKafkaMock({
    brokers: 3,
    topics: [
      { name: TOPIC, partitions: 6 },
      { name: REFERENCE_TOPIC, partitions: 6 },
    ],
  });
  const standIn = selected('ttn') ? await startTtsStandIn({ applicationId: TTN_APPLICATION }) : null;
  const ttnKeyFile = join(dir, 'ttn-api-key');
  if (standIn !== null) writeFileSync(ttnKeyFile, `${standIn.apiKey}\n`, { mode: 0o600 });
  const configPath = writeGatewayConfig(dir, {
    gateway_id: 'bench',
    log: { level: 'info' },
    // Every simulated device connects from 127.0.0.1: lift the per-address limit (500) that protects a real network.
    mqtt: { host: '127.0.0.1', port: 0, allow_anonymous: true, max_connections_per_address: 100_000 },
    http: { port: 0 },
    kafka: { brokers: [...kafka.brokers], topic: TOPIC, routes: [{ stream: 'telemetry', event_time_field: 'ts' }], retry_initial_ms: 100, retry_max_ms: 1000 },
    buffer: { path: join(dir, 'buffer.db') },
    lorawan: {
      enabled: true,
      // One socket stands in for four packet forwarders: the per-address limit (200 datagrams/s) would measure the limiter.
      udp: { host: '127.0.0.1', port: lorawanPort, max_datagrams_per_second: 100_000 },
      devices: lorawanDevices.map((device) => ({
        dev_eui: device.devEui,
        dev_addr: device.devAddr,
        nwk_s_key: device.nwkSKey.toString('hex'),
        app_s_key: device.appSKey.toString('hex'),
        codec: 'cayenne-lpp' as const,
      })),
    },
    ...(standIn === null
      ? {}
      : { ttn: { enabled: true, url: standIn.url, username: standIn.username, password_file: ttnKeyFile, codec: 'cayenne-lpp' as const } }),
  });
  const node = unitNode();
  const gateway = await launchGateway(configPath, { NODE_OPTIONS: [process.env.NODE_OPTIONS, node.options].filter(Boolean).join(' ') }, node.args);
  const pid = gateway.child.pid as number;
  say('gateway: own process, SQLite WAL synchronous=FULL with group commit, acks=all to librdkafka mock cluster (3 brokers, 6 partitions)');
  say(`gateway node flags as in systemd/iotgw.service: ${[...node.args, `NODE_OPTIONS=${node.options === '' ? '(none)' : node.options}`].join(' ')}`);

  try {
    if (selected('mqtt') || selected('reference')) {
      await benchVersusReference(gateway, {
        devices: DEVICES,
        seconds: SECONDS,
        rounds: ROUNDS,
        inflight: INGEST_INFLIGHT,
        brokers: kafka.brokers,
        topic: TOPIC,
        aedesNode: node,
      });
    }
    if (selected('mqtt')) {
      // 1. Ingest with Kafka down: what the buffer takes in while nothing leaves it (an outage). Not a rate the
      //    gateway sustains: the buffer grows at it. Devices are paced by their PUBACKs, INGEST_INFLIGHT each.
      await kafka.down('all');
      const commitsBefore = await metric(gateway, 'iotgw_buffer_commits_total');
      const ingest = await runSim({ port: gateway.mqttPort, devices: DEVICES, rate: 0, seconds: SECONDS, seed: 1, inflight: INGEST_INFLIGHT });
      const commits = (await metric(gateway, 'iotgw_buffer_commits_total')) - commitsBefore;
      say('');
      say(
        `1. ingest with Kafka DOWN (every record committed with fsync before its PUBACK; ${INGEST_INFLIGHT} readings in flight per device): the buffer grows at this rate`,
      );
      say(
        `   acknowledged: ${Math.round(ingest.ackedPerSecond)} msg/s (${ingest.acked} in ${(ingest.activeMs / 1000).toFixed(1)} s, ${ingest.failed} devices failed)`,
      );
      say(`   PUBACK latency: p50 ${ingest.ackLatencyMs.p50} ms, p99 ${ingest.ackLatencyMs.p99} ms`);
      say(`   group commits: ${commits} (${(ingest.acked / Math.max(1, commits)).toFixed(0)} records per fsync)`);
      await kafka.up('all');
      while ((await gateway.readiness()).buffer.depthRecords > 0) await sleep(200);

      // 3. Drain after an outage, with live traffic continuing.
      await kafka.down('all');
      await runSim({ port: gateway.mqttPort, devices: DEVICES, rate: 0, seconds: Math.max(5, Math.round(SECONDS / 2)), seed: 3 });
      const backlog = (await gateway.readiness()).buffer.depthRecords;
      const live = runSim({ port: gateway.mqttPort, devices: DEVICES, rate: 2500, seconds: SECONDS * 2, seed: 4 });
      await sleep(1000);
      const drainStartedAt = Date.now();
      const sentAtUp = await metric(gateway, 'iotgw_kafka_sent_records_total');
      await kafka.up('all');
      let drainedAfterS = Number.NaN;
      while (Date.now() - drainStartedAt < SECONDS * 2000) {
        if ((await gateway.readiness()).buffer.depthRecords < 2500) {
          drainedAfterS = (Date.now() - drainStartedAt) / 1000;
          break;
        }
        await sleep(100);
      }
      const windowS = Number.isNaN(drainedAfterS) ? (Date.now() - drainStartedAt) / 1000 : drainedAfterS;
      const drainedRecords = (await metric(gateway, 'iotgw_kafka_sent_records_total')) - sentAtUp;
      const liveReport = await live;
      say('');
      say('3. drain after an outage (backlog built with Kafka down, then Kafka up while 2,500 msg/s keep arriving)');
      say(
        `   backlog: ${backlog} records; ${Number.isNaN(drainedAfterS) ? `not drained after ${windowS.toFixed(0)} s` : `drained in ${windowS.toFixed(1)} s`}: ${Math.round(drainedRecords / windowS)} msg/s to Kafka (live traffic: ${Math.round(liveReport.ackedPerSecond)} msg/s acknowledged)`,
      );
    }

    if (selected('mqtt')) await benchDrainVsRtt(gateway, kafka, { devices: DEVICES, backlogSeconds: 5, maxDrainSeconds: 60, rttsMs: [0, 100, 300] });

    if (selected('lorawan')) {
      // 4. LoRaWAN uplinks: UDP -> dedup -> MIC/counter/decrypt/LPP -> group commit, at rising offered rates.
      say('');
      say(
        '4. LoRaWAN uplinks through Semtech UDP -> MIC, counter, decrypt, Cayenne LPP -> committed to the buffer (Kafka down; 1,000 ABP devices, 4 gateways, 8 frames per datagram)',
      );
      await kafka.down('all');
      const fcnts: number[] = [];
      for (const rate of [1000, 5000, 10000, 20000]) {
        const acceptedBefore = await metric(gateway, 'iotgw_ingress_accepted_total{source="semtech-udp"}');
        const rejectedBefore = await metric(gateway, 'iotgw_ingress_rejected_total{source="semtech-udp",');
        const seconds = Math.max(5, Math.round(SECONDS / 2));
        const offered = await offerLorawan(lorawanPort, lorawanDevices, fcnts, rate, seconds);
        // Let the last frames' dedup windows close and their commits land: wait until the count stops moving.
        const accepted = await settledDelta(gateway, 'iotgw_ingress_accepted_total{source="semtech-udp"}', acceptedBefore);
        const rejected = (await metric(gateway, 'iotgw_ingress_rejected_total{source="semtech-udp",')) - rejectedBefore;
        say(
          `   offered ${rate} frames/s for ${seconds} s: committed ${Math.round(accepted / seconds)} frames/s (${accepted} of ${offered}; ${rejected} rejected, ${offered - accepted - rejected} lost in UDP socket buffers)`,
        );
        if (accepted < offered * 0.9) {
          const lines = (await gateway.metricsText()).split('\n').filter((line) => line.includes('semtech-udp') && !line.startsWith('#'));
          say(`   stopping here; the gateway's semtech-udp counters: ${lines.join('; ')}`);
          break;
        }
      }
      // The MAC layer's cost: the same offered rate without and with MAC commands in FOpts and the ADR bit set
      // (ADR decided on every frame), interleaved so drift hits both alike.
      const macRate = 20_000; // past what the gateway commits: the committed rate is its capacity
      const seconds = Math.max(5, Math.round(SECONDS / 2));
      const committed: Record<'off' | 'on', number[]> = { off: [], on: [] };
      for (let round = 0; round < 2; round++) {
        for (const mode of ['off', 'on'] as const) {
          const before = await metric(gateway, 'iotgw_ingress_accepted_total{source="semtech-udp"}');
          await offerLorawan(lorawanPort, lorawanDevices, fcnts, macRate, seconds, mode === 'on');
          committed[mode].push((await settledDelta(gateway, 'iotgw_ingress_accepted_total{source="semtech-udp"}', before)) / seconds);
        }
      }
      const best = (values: readonly number[]) => Math.round(Math.max(...values));
      say(
        `   MAC layer at ${macRate} frames/s offered: ${best(committed.off)} frames/s committed without MAC commands, ${best(committed.on)} with FOpts (DevStatusAns, LinkADRAns) and ADR on every frame = ${(best(committed.on) / best(committed.off)).toFixed(2)}x (best of 2 each)`,
      );
    }

    if (standIn !== null) await benchTtn(gateway, standIn, kafka);

    say('');
    say(`6. gateway peak RSS over all scenarios: ${rssMb(pid, 'VmHWM')} MB`);
  } finally {
    await gateway.kill('SIGTERM');
    await standIn?.stop();
    await kafka.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
