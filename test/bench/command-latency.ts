// Scenario 11: command latency, Kafka -> device, through the gateway process (commands.enabled, SQLite buffer,
// librdkafka's mock cluster). A kafkajs producer in this process writes each command with acks=all; the clock
// starts just before producer.send and stops when:
//   - MQTT: an mqtt.js device subscribed at QoS 1 gets it; beside the same figure for a naive bridge of Debian
//     tools (command-reference.ts: kcat | mawk | mosquitto_pub -l -> mosquitto), as a ratio;
//   - LoRaWAN Class C: the simulated packet forwarder gets the PULL_RESP (sent at once on RX2);
//   - LoRaWAN Class A: from the device's uplink (PUSH_DATA sent) to the PULL_RESP of a command already waiting,
//     the part the gateway controls (the rest is the device's uplink interval);
//   - TTN: the TTS stand-in gets the down/push; beside the same bridge publishing to the stand-in's down/push.
// Commands go at a modest rate over a few devices, so the figures are latency, not queueing. The mock cluster
// holds an empty Fetch for its full MaxWait, so the MQTT case runs at the default commands.fetch_wait_ms and
// at 50 ms. The gateway's own receipts (their `at`) split its figure into steps. Prints figures, asserts none.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import kafkajs from 'kafkajs';
import { connectAsync, type MqttClient } from 'mqtt';
import { startTtsStandIn, type TtsStandIn } from '../../firmware-sim/tts-stand-in.ts';
import { createTtsFleet, publishTtsTraffic } from '../../firmware-sim/tts-traffic.ts';
import { createSimulatedForwarder, type SimulatedForwarder } from '../../firmware-sim/transports/packet-forwarder.ts';
import { commands as commandsSchema } from '../../src/config/schema-commands.ts';
import { configSchema, type ConfigInput } from '../../src/config/schema.ts';
import { cryptFrmPayload, encodeDataFrame } from '../../src/ingress/lorawan/frame-crypto.ts';
import { parsePhyPayload } from '../../src/ingress/lorawan/phy-payload.ts';
import type { Txpk } from '../../src/ingress/semtech-udp/packets.ts';
import { freeUdpPort, type GatewayProcess, launchGateway, writeGatewayConfig } from '../helpers/gateway-process.ts';
import { type KafkaMock, startKafkaMock, type TopicTail, tailTopic } from '../helpers/kafka-mock.ts';
import { metric, percentile, say, sleep, type UnitNode } from './bench-tools.ts';
import { type CommandBridge, missingCommandBridgeTools, type ReferenceBroker, startCommandBridge, startReferenceBroker } from './command-reference.ts';

const { Kafka, logLevel } = kafkajs;

const RECORDS = 'bench.command-records';
const COMMANDS = 'bench.commands';
const RECEIPTS = 'bench.command-receipts';
/** The reference bridges read their own topics, so the gateway never sees their commands. */
const REFERENCE_MQTT = 'bench.commands.reference-mqtt';
const REFERENCE_TTN = 'bench.commands.reference-ttn';
const TTN_APPLICATION = 'bench-commands';
const GATEWAY_EUI = 'b827ebfffe00c0de';
/** lora_pkt_fwd (sx1302_hal jitqueue.c) refuses a timed downlink TOO_LATE unless it arrives this far ahead: TX_START_DELAY + TX_MARGIN_DELAY + TX_JIT_DELAY. */
const LORA_PKT_FWD_LEAD_MS = 42.5;
/** Class A: commands waiting per device before its uplinks start. */
const CLASS_A_COMMANDS_PER_DEVICE = 5;
const CLASS_A_DEVICES = 20;
const WARM_UP_TIMEOUT_MS = 30_000;
/** How long after the last send a command may still arrive before it counts as lost. */
const ARRIVAL_GRACE_MS = 10_000;
const REDUCED_FETCH_WAIT_MS = 50;

export interface CommandLatencyOptions {
  /** Commands per path. */
  readonly commands: number;
  /** Commands per second, all devices together. */
  readonly ratePerS: number;
  /** Devices per path (MQTT, Class C, TTN). */
  readonly devices: number;
  /** The gateway's node flags (the systemd unit's NODE_OPTIONS). */
  /** The unit's node flags. */
  readonly node: UnitNode;
}

/** One command offered to a pipeline. */
interface Offered {
  readonly seq: number;
  readonly key: string;
  readonly commandId: string;
  readonly producedAtMono: number;
  readonly producedAtWallMs: number;
  /** producer.send (acks=all) resolved; NaN until then. */
  ackedAtMono: number;
}

/** seq -> when it reached the device (performance.now() of this process). */
type Arrivals = Map<number, number>;

interface Latency {
  readonly sent: number;
  readonly arrived: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

interface Sender {
  /** Produces one command (acks=all); `value` is the Kafka value. */
  send(topic: string, key: string, value: string, commandId: string): Promise<void>;
  stop(): Promise<void>;
}

async function createSender(brokers: readonly string[]): Promise<Sender> {
  const producer = new Kafka({ clientId: 'bench-commands', brokers: [...brokers], logLevel: logLevel.NOTHING }).producer();
  await producer.connect();
  return {
    async send(topic, key, value, commandId) {
      await producer.send({ topic, acks: -1, messages: [{ key, value, headers: { 'command-id': commandId } }] });
    },
    stop: () => producer.disconnect(),
  };
}

let lastSeq = 0;
const nextSeq = (): number => ++lastSeq;

/**
 * Produces `count` commands at `ratePerS`, devices round robin, each timed from just before producer.send.
 * Not awaited one by one: a slow acknowledgement must not hold the next command back.
 */
async function offer(
  sender: Sender,
  topic: string,
  keys: readonly string[],
  count: number,
  ratePerS: number,
  command: (seq: number, key: string) => { readonly value: string; readonly commandId: string },
): Promise<Offered[]> {
  const offered: Offered[] = [];
  const sends: Promise<void>[] = [];
  const startedAt = performance.now();
  for (let index = 0; index < count; index++) {
    const dueIn = startedAt + (index * 1000) / ratePerS - performance.now();
    if (dueIn > 0) await sleep(dueIn);
    const seq = nextSeq();
    const key = keys[index % keys.length] as string;
    const { value, commandId } = command(seq, key);
    const entry: Offered = { seq, key, commandId, producedAtMono: performance.now(), producedAtWallMs: Date.now(), ackedAtMono: Number.NaN };
    offered.push(entry);
    sends.push(
      sender.send(topic, key, value, commandId).then(() => {
        entry.ackedAtMono = performance.now();
      }),
    );
  }
  await Promise.all(sends);
  return offered;
}

/** Waits until every offered command arrived, or ARRIVAL_GRACE_MS passed. */
async function awaitArrivals(offered: readonly Offered[], arrivals: Arrivals): Promise<void> {
  const deadline = performance.now() + ARRIVAL_GRACE_MS;
  while (performance.now() < deadline && !offered.every((entry) => arrivals.has(entry.seq))) await sleep(20);
}

function latencyOf(offered: readonly Offered[], arrivals: Arrivals): Latency {
  const samples = offered
    .filter((entry) => arrivals.has(entry.seq))
    .map((entry) => (arrivals.get(entry.seq) as number) - entry.producedAtMono)
    .sort((a, b) => a - b);
  return { sent: offered.length, arrived: samples.length, p50: percentile(samples, 50), p99: percentile(samples, 99), max: samples.at(-1) ?? Number.NaN };
}

/**
 * Sends one command per device and waits for all of them, again until they arrive: warms up both ends, and
 * gets past a consumer that starts at the end of the topic (kcat -o end) after the first commands were written.
 */
async function warmUp(keys: readonly string[], arrivals: Arrivals, send: (seq: number, key: string) => Promise<void>): Promise<boolean> {
  const deadline = performance.now() + WARM_UP_TIMEOUT_MS;
  while (performance.now() < deadline) {
    const seqs = keys.map(() => nextSeq());
    await Promise.all(seqs.map((seq, index) => send(seq, keys[index] as string)));
    const until = performance.now() + 3_000;
    while (performance.now() < until && !seqs.every((seq) => arrivals.has(seq))) await sleep(20);
    if (seqs.every((seq) => arrivals.has(seq))) return true;
  }
  return false;
}

/** MQTT devices, each subscribed at QoS 1 to devices/{id}/commands/#; every message's seq goes into `arrivals`. */
async function connectDevices(port: number, ids: readonly string[], arrivals: Arrivals): Promise<MqttClient[]> {
  return Promise.all(
    ids.map(async (id) => {
      const client = await connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: id, reconnectPeriod: 0 });
      client.on('message', (_topic, payload) => {
        const at = performance.now();
        const seq = seqOf(payload.toString('utf8'));
        if (seq !== null && !arrivals.has(seq)) arrivals.set(seq, at);
      });
      await client.subscribeAsync(`devices/${id}/commands/#`, { qos: 1 });
      return client;
    }),
  );
}

/** The seq of a command as the device got it: {"seq":n} from the gateway, the whole Kafka value from the bridge. */
function seqOf(text: string): number | null {
  try {
    const value = JSON.parse(text) as { seq?: unknown; payload?: { seq?: unknown } };
    const seq = value.seq ?? value.payload?.seq;
    return typeof seq === 'number' ? seq : null;
  } catch {
    return null;
  }
}

const mqttCommand = (label: string) => (seq: number) => ({
  value: JSON.stringify({ name: 'x', payload: { seq }, ttl_s: 600 }),
  commandId: `${label}-${seq}`,
});

/** One MQTT run: devices on `port`, commands to `topic`; warm-up, then the measured commands. */
async function mqttRun(
  sender: Sender,
  options: CommandLatencyOptions,
  port: number,
  topic: string,
  label: string,
): Promise<{ offered: Offered[]; arrivals: Arrivals; warm: boolean }> {
  const ids = Array.from({ length: options.devices }, (_, index) => `cmd-dev-${String(index + 1).padStart(2, '0')}`);
  const arrivals: Arrivals = new Map();
  const clients = await connectDevices(port, ids, arrivals);
  try {
    const command = mqttCommand(label);
    const warm = await warmUp(ids, arrivals, (seq, key) => {
      const { value, commandId } = command(seq);
      return sender.send(topic, key, value, commandId);
    });
    const offered = await offer(sender, topic, ids, options.commands, options.ratePerS, command);
    await awaitArrivals(offered, arrivals);
    return { offered, arrivals, warm };
  } finally {
    await Promise.all(clients.map((client) => client.endAsync(true)));
  }
}

/** Deterministic ABP devices (keys from a hash: nothing secret). */
function abpDevices(label: string, count: number, firstAddr: number, deviceClass: 'A' | 'C') {
  const key = (kind: string, index: number) => createHash('sha256').update(`${label}-${kind}-${index}`).digest().subarray(0, 16);
  return Array.from({ length: count }, (_, index) => ({
    devEui: `70b3d57e${(firstAddr + index).toString(16).padStart(8, '0')}`,
    devAddr: (firstAddr + index).toString(16).padStart(8, '0'),
    nwkSKey: key('nwk', index),
    appSKey: key('app', index),
    deviceClass,
    fcnt: 0,
  }));
}
type AbpDevice = ReturnType<typeof abpDevices>[number];

/** Pushes one unconfirmed uplink of the device; returns its tmst and when it was sent. Not awaited: the PUSH_ACK follows the commit. */
function uplink(forwarder: SimulatedForwarder, device: AbpDevice): { readonly tmst: number; readonly sentAtMono: number; readonly acked: Promise<boolean> } {
  const { devAddr, nwkSKey, appSKey } = device;
  const phyPayload = encodeDataFrame({ mtype: 'UnconfirmedDataUp', devAddr, nwkSKey, appSKey, fcnt32: device.fcnt, fport: 2, payload: Buffer.from([1, 2]) });
  device.fcnt += 1;
  const tmst = forwarder.tmst();
  const sentAtMono = performance.now();
  return { tmst, sentAtMono, acked: forwarder.pushRxpk([{ phyPayload, tmst }]) };
}

/** The 4-byte seq a LoRaWAN command carries, decrypted from the downlink; null if not ours. */
function downlinkSeq(txpk: Txpk, byAddr: ReadonlyMap<string, AbpDevice>): { device: AbpDevice; seq: number } | null {
  const parsed = parsePhyPayload(Buffer.from(txpk.data, 'base64'));
  if (!parsed.ok || parsed.frame.kind !== 'data') return null;
  const device = byAddr.get(parsed.frame.devAddr);
  if (device === undefined || parsed.frame.frmPayload.length !== 4) return null;
  const plain = cryptFrmPayload(device.appSKey, 'down', device.devAddr, parsed.frame.fcnt16, parsed.frame.frmPayload);
  return { device, seq: plain.readUInt32BE(0) };
}

interface Steps {
  /** Produced -> the accepted receipt's `at` (fetch wait, parse, the wait for the queue's turn; taken before the intake's commit). */
  readonly intake: number[];
  /** accepted -> sent receipt (intake commit, hand-over started); MQTT only. */
  readonly toSent: number[];
  /** The last receipt seen before the device -> the device. */
  readonly toDevice: number[];
}

/** The gateway's receipts of these commands split each latency into steps (receipt `at`: wall clock, ms). */
function steps(receipts: TopicTail, offered: readonly Offered[], arrivals: Arrivals): Steps {
  const at = new Map<string, Map<string, number>>();
  for (const message of receipts.messages()) {
    try {
      const value = JSON.parse(message.value?.toString('utf8') ?? '') as { command_id?: string; status?: string; at?: string };
      if (value.command_id === undefined || value.status === undefined || value.at === undefined) continue;
      const statuses = at.get(value.command_id) ?? new Map<string, number>();
      if (!statuses.has(value.status)) statuses.set(value.status, Date.parse(value.at));
      at.set(value.command_id, statuses);
    } catch {
      // Not a receipt.
    }
  }
  const result: Steps = { intake: [], toSent: [], toDevice: [] };
  for (const entry of offered) {
    const statuses = at.get(entry.commandId);
    const arrived = arrivals.get(entry.seq);
    const accepted = statuses?.get('accepted');
    if (statuses === undefined || arrived === undefined || accepted === undefined) continue;
    const arrivedAtWallMs = entry.producedAtWallMs + (arrived - entry.producedAtMono);
    result.intake.push(accepted - entry.producedAtWallMs);
    const sent = statuses.get('sent');
    // The sent receipt of MQTT is taken at hand-over; LoRaWAN's and TTN's come after the device (TX_ACK, down/sent).
    if (sent !== undefined && sent <= arrivedAtWallMs) {
      result.toSent.push(sent - accepted);
      result.toDevice.push(arrivedAtWallMs - sent);
    } else {
      result.toDevice.push(arrivedAtWallMs - accepted);
    }
  }
  for (const list of Object.values(result)) (list as number[]).sort((a, b) => a - b);
  return result;
}

/** Group commits of the buffer over a phase: how many, and their mean duration (iotgw_buffer_commit_seconds). */
async function commitCounters(gateway: GatewayProcess): Promise<{ count: number; seconds: number }> {
  return { count: await metric(gateway, 'iotgw_buffer_commit_seconds_count'), seconds: await metric(gateway, 'iotgw_buffer_commit_seconds_sum') };
}

function commitLine(before: { count: number; seconds: number }, after: { count: number; seconds: number }, commands: number): string {
  const count = after.count - before.count;
  const meanMs = count === 0 ? Number.NaN : ((after.seconds - before.seconds) * 1000) / count;
  return `buffer commits (one fsync each) in the phase: ${count}, ${(count / Math.max(1, commands)).toFixed(1)} per command, mean ${meanMs.toFixed(1)} ms`;
}

const ms = (value: number): string => (Number.isFinite(value) ? (value >= 100 ? Math.round(value).toString() : value.toFixed(1)) : 'n/a');

function latencyText(latency: Latency): string {
  const lost = latency.sent - latency.arrived;
  return `p50 ${ms(latency.p50)} ms, p99 ${ms(latency.p99)} ms, max ${ms(latency.max)} ms (${latency.arrived} of ${latency.sent} arrived${lost > 0 ? `; ${lost} NOT within ${ARRIVAL_GRACE_MS / 1000} s` : ''})`;
}

function stepsText(result: Steps, withSent: boolean): string {
  const pair = (list: readonly number[]) => `${ms(percentile(list, 50))}/${ms(percentile(list, 99))}`;
  return withSent
    ? `gateway steps from its receipts, p50/p99 ms: produced -> accepted (fetch wait, parse, turn in the queue) ${pair(result.intake)}; accepted -> sent (intake commit, hand-over begins) ${pair(result.toSent)}; sent -> at the device (hand-over commit, publish) ${pair(result.toDevice)}`
    : `gateway steps from its receipts, p50/p99 ms: produced -> accepted (fetch wait, parse, turn in the queue) ${pair(result.intake)}; accepted -> at the device (commits, send) ${pair(result.toDevice)}`;
}

type Row = readonly [label: string, gateway: number, reference: number];

/** figure | gateway | reference | ratio (gateway / reference; lower is better for every latency). */
function table(rows: readonly Row[]): void {
  say(`   ${'figure'.padEnd(52)} ${'gateway'.padStart(9)} ${'reference'.padStart(10)} ${'ratio'.padStart(7)}`);
  for (const [label, gateway, reference] of rows) {
    const ratio = reference > 0 && Number.isFinite(gateway) ? `${(gateway / reference).toFixed(2)}x` : 'n/a';
    say(`   ${label.padEnd(52)} ${ms(gateway).padStart(9)} ${ms(reference).padStart(10)} ${ratio.padStart(7)} (lower is better)`);
  }
}

function latencyRows(prefix: string, gateway: Latency, reference: Latency): Row[] {
  return [
    [`${prefix} p50, ms`, gateway.p50, reference.p50],
    [`${prefix} p99, ms`, gateway.p99, reference.p99],
    [`${prefix} max, ms`, gateway.max, reference.max],
  ];
}

interface Setup {
  readonly dir: string;
  readonly kafka: KafkaMock;
  readonly standIn: TtsStandIn;
  readonly udpPort: number;
  readonly classC: AbpDevice[];
  readonly classA: AbpDevice[];
  config(fetchWaitMs: number): ConfigInput;
}

async function setUp(): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'iotgw-bench-commands-'));
  const kafka = await startKafkaMock({
    brokers: 3,
    topics: [
      { name: RECORDS, partitions: 3 },
      { name: COMMANDS, partitions: 6 },
      { name: RECEIPTS, partitions: 6 },
      { name: REFERENCE_MQTT, partitions: 6 },
      { name: REFERENCE_TTN, partitions: 6 },
    ],
  });
  const standIn = await startTtsStandIn({ applicationId: TTN_APPLICATION });
  const keyFile = join(dir, 'ttn-api-key');
  writeFileSync(keyFile, `${standIn.apiKey}\n`, { mode: 0o600 });
  const udpPort = await freeUdpPort();
  const classC = abpDevices('class-c', 10, 0x26c00000, 'C');
  const classA = abpDevices('class-a', CLASS_A_DEVICES, 0x26a00000, 'A');
  return {
    dir,
    kafka,
    standIn,
    udpPort,
    classC,
    classA,
    config: (fetchWaitMs) => ({
      gateway_id: 'bench-commands',
      log: { level: 'info' },
      mqtt: { host: '127.0.0.1', port: 0, allow_anonymous: true },
      http: { port: 0 },
      kafka: { brokers: [...kafka.brokers], topic: RECORDS, retry_initial_ms: 100, retry_max_ms: 1000 },
      buffer: { path: join(dir, 'buffer.db') },
      lorawan: {
        enabled: true,
        udp: { host: '127.0.0.1', port: udpPort },
        devices: [...classC, ...classA].map((device) => ({
          dev_eui: device.devEui,
          dev_addr: device.devAddr,
          nwk_s_key: device.nwkSKey.toString('hex'),
          app_s_key: device.appSKey.toString('hex'),
          class: device.deviceClass,
        })),
      },
      ttn: { enabled: true, url: standIn.url, username: standIn.username, password_file: keyFile },
      commands: { enabled: true, topic: COMMANDS, receipts_topic: RECEIPTS, fetch_wait_ms: fetchWaitMs },
    }),
  };
}

async function startGateway(setup: Setup, fetchWaitMs: number, node: UnitNode): Promise<GatewayProcess> {
  const gateway = await launchGateway(writeGatewayConfig(setup.dir, setup.config(fetchWaitMs)), { NODE_OPTIONS: node.options }, node.args);
  const deadline = performance.now() + 30_000;
  while ((await gateway.metric('iotgw_commands_consumer_up')) !== 1) {
    if (performance.now() > deadline) throw new Error('the gateway did not join its command consumer group within 30 s');
    await sleep(100);
  }
  return gateway;
}

/** Class C: each device heard once (so a gateway to reach it is known), then commands at the rate, at once on RX2. */
async function classCRun(
  sender: Sender,
  setup: Setup,
  gateway: GatewayProcess,
  forwarder: SimulatedForwarder,
  arrivals: Arrivals,
  options: CommandLatencyOptions,
) {
  const acceptedBefore = await gateway.metric('iotgw_ingress_accepted_total', ['source="semtech-udp"']);
  for (const device of setup.classC) void uplink(forwarder, device).acked;
  const deadline = performance.now() + 10_000;
  while (
    (await gateway.metric('iotgw_ingress_accepted_total', ['source="semtech-udp"'])) < acceptedBefore + setup.classC.length &&
    performance.now() < deadline
  ) {
    await sleep(50);
  }
  const keys = setup.classC.map((device) => device.devEui);
  const command = (seq: number) => ({
    value: JSON.stringify({ name: 'x', payload_hex: seq.toString(16).padStart(8, '0'), port: 5, ttl_s: 600 }),
    commandId: `class-c-${seq}`,
  });
  const warm = await warmUp(keys, arrivals, (seq, key) => sender.send(COMMANDS, key, command(seq).value, command(seq).commandId));
  const offered = await offer(sender, COMMANDS, keys, options.commands, options.ratePerS, command);
  await awaitArrivals(offered, arrivals);
  return { offered, warm };
}

interface ClassAResult {
  readonly uplinks: number;
  readonly latency: Latency;
  readonly rx2: number;
  readonly marginsMs: number[];
  readonly queued: number;
}

/**
 * Class A: CLASS_A_COMMANDS_PER_DEVICE commands wait for each device; then the devices uplink at the rate (round
 * robin, so each about once a second) and each uplink should carry one of them down. Timed from the PUSH_DATA
 * to the PULL_RESP, paired by the txpk's tmst (the uplink's + 1 s for RX1, + 2 s for RX2).
 */
async function classARun(
  sender: Sender,
  setup: Setup,
  gateway: GatewayProcess,
  forwarder: SimulatedForwarder,
  options: CommandLatencyOptions,
): Promise<ClassAResult> {
  const queuedBefore = await gateway.metric('iotgw_commands_waiting', ['state="queued"']);
  const total = setup.classA.length * CLASS_A_COMMANDS_PER_DEVICE;
  await Promise.all(
    Array.from({ length: total }, (_, index) => {
      const device = setup.classA[index % setup.classA.length] as AbpDevice;
      return sender.send(COMMANDS, device.devEui, JSON.stringify({ name: 'x', payload_hex: '0a28', port: 10, ttl_s: 600 }), `class-a-${nextSeq()}`);
    }),
  );
  const deadline = performance.now() + 15_000;
  let queued = 0;
  while (performance.now() < deadline) {
    queued = (await gateway.metric('iotgw_commands_waiting', ['state="queued"'])) - queuedBefore;
    if (queued >= total) break;
    await sleep(50);
  }
  const sentByTmst = new Map<number, { readonly sentAtMono: number; downAtMono?: number; rx2?: boolean; marginMs?: number }>();
  forwarder.onDownlink((txpk, receivedAtMono, receivedAtTmst) => {
    if (txpk.tmst === undefined) return 'NONE';
    for (const [delayUs, rx2] of [
      [1_000_000, false],
      [2_000_000, true],
    ] as const) {
      const entry = sentByTmst.get((txpk.tmst - delayUs) >>> 0);
      if (entry !== undefined && entry.downAtMono === undefined) {
        entry.downAtMono = receivedAtMono;
        entry.rx2 = rx2;
        // Signed difference of two wrapping 32-bit µs counters.
        entry.marginMs = ((txpk.tmst - receivedAtTmst) | 0) / 1000;
      }
    }
    return 'NONE';
  });
  const uplinks = total;
  const acks: Promise<boolean>[] = [];
  const startedAt = performance.now();
  for (let index = 0; index < uplinks; index++) {
    const dueIn = startedAt + (index * 1000) / options.ratePerS - performance.now();
    if (dueIn > 0) await sleep(dueIn);
    const sent = uplink(forwarder, setup.classA[index % setup.classA.length] as AbpDevice);
    sentByTmst.set(sent.tmst, { sentAtMono: sent.sentAtMono });
    acks.push(sent.acked);
  }
  await Promise.all(acks);
  const until = performance.now() + 5_000;
  while (performance.now() < until && [...sentByTmst.values()].some((entry) => entry.downAtMono === undefined)) await sleep(20);
  const entries = [...sentByTmst.values()];
  const samples = entries
    .filter((entry) => entry.downAtMono !== undefined)
    .map((entry) => (entry.downAtMono as number) - entry.sentAtMono)
    .sort((a, b) => a - b);
  return {
    uplinks,
    latency: { sent: uplinks, arrived: samples.length, p50: percentile(samples, 50), p99: percentile(samples, 99), max: samples.at(-1) ?? Number.NaN },
    rx2: entries.filter((entry) => entry.rx2 === true).length,
    marginsMs: entries.flatMap((entry) => (entry.marginMs === undefined ? [] : [entry.marginMs])).sort((a, b) => a - b),
    queued,
  };
}

/**
 * Subscribes to the stand-in's down/push and down/replace with the application's key, as TTS's own view of what
 * arrived: each seq (from the correlation id iotgw:command:{label}-{seq}, or the bridge's body) into `arrivals`.
 */
async function watchDownPushes(standIn: TtsStandIn, arrivals: Arrivals): Promise<MqttClient> {
  const client = await connectAsync(standIn.url, { clientId: 'bench-down-watcher', username: standIn.username, password: standIn.apiKey, reconnectPeriod: 0 });
  client.on('message', (_topic, payload) => {
    const at = performance.now();
    try {
      const body = JSON.parse(payload.toString('utf8')) as { downlinks?: { correlation_ids?: string[] }[] };
      for (const downlink of body.downlinks ?? []) {
        for (const id of downlink.correlation_ids ?? []) {
          const seq = Number(/-(\d+)$/.exec(id)?.[1]);
          if (Number.isInteger(seq) && !arrivals.has(seq)) arrivals.set(seq, at);
        }
      }
    } catch {
      // Not a downlink body.
    }
  });
  await client.subscribeAsync([`v3/${standIn.username}/devices/+/down/push`, `v3/${standIn.username}/devices/+/down/replace`], { qos: 0 });
  return client;
}

/** The body TTS takes on down/push, as the reference bridge's producer must write it (the gateway builds it itself). */
function ttsBody(seq: number, commandId: string): string {
  return JSON.stringify({
    downlinks: [
      { f_port: 2, frm_payload: Buffer.from(seq.toString(16).padStart(8, '0'), 'hex').toString('base64'), priority: 'NORMAL', correlation_ids: [commandId] },
    ],
  });
}

export async function benchCommandLatency(options: CommandLatencyOptions): Promise<void> {
  const defaultWaitMs = commandsSchema.parse({}).fetch_wait_ms;
  const dedupMs = configSchema.shape.lorawan.parse({}).dedup_window_ms;
  const missing = missingCommandBridgeTools();
  say('');
  say(
    `11. command latency: a command produced to Kafka (kafkajs, acks=all; clock started just before producer.send) -> at the device; ${options.commands} commands per path at ${options.ratePerS}/s over ${options.devices} devices; commands.fetch_wait_ms ${defaultWaitMs} (the default) unless said`,
  );
  say(
    `   NOTE: librdkafka's mock cluster holds an empty Fetch for its full MaxWait, even when a record arrives meanwhile (a real broker answers a long poll as soon as data arrives). On the mock, a command therefore waits 0..fetch_wait_ms (evenly spread) before anything reads it, so that wait dominates the figures at ${defaultWaitMs} ms; the MQTT case runs again at fetch_wait_ms ${REDUCED_FETCH_WAIT_MS} to show it. The reference's kcat gets the same wait (fetch.wait.max.ms; its own default is 500 ms), so the ratio compares the pipelines, not the setting.`,
  );
  if (missing.length > 0) say(`   reference bridge skipped: ${missing.join(', ')} not installed (sudo apt-get install mosquitto mosquitto-clients kcat mawk)`);

  const setup = await setUp();
  const sender = await createSender(setup.kafka.brokers);
  const receipts = tailTopic(setup.kafka.brokers, RECEIPTS);
  const referenceBroker: ReferenceBroker | null = missing.length === 0 ? await startReferenceBroker() : null;
  let gateway: GatewayProcess | null = await startGateway(setup, defaultWaitMs, options.node);
  const forwarder = createSimulatedForwarder({ gatewayEui: GATEWAY_EUI, server: { host: '127.0.0.1', port: setup.udpPort }, keepaliveMs: 1_000 });
  await forwarder.start();
  const bridges: CommandBridge[] = [];
  const startBridge = (bridgeOptions: Parameters<typeof startCommandBridge>[0]): CommandBridge => {
    const bridge = startCommandBridge(bridgeOptions);
    bridges.push(bridge);
    return bridge;
  };
  try {
    // MQTT at the default fetch wait: gateway, then the reference.
    const mqttResults = new Map<
      number,
      { gateway: Latency; reference: Latency | null; offered: Offered[]; arrivals: Arrivals; commits: string; warm: boolean; pipeline: string }
    >();
    const mqttAt = async (waitMs: number, current: GatewayProcess) => {
      const commitsBefore = await commitCounters(current);
      const run = await mqttRun(sender, options, current.mqttPort, COMMANDS, `mqtt-${waitMs}`);
      const commits = commitLine(commitsBefore, await commitCounters(current), run.offered.length);
      let reference: Latency | null = null;
      let pipeline = '';
      if (referenceBroker !== null) {
        const bridge = startBridge({ brokers: setup.kafka.brokers, topic: REFERENCE_MQTT, mqttPort: referenceBroker.mqttPort, fetchWaitMs: waitMs });
        pipeline = bridge.pipeline;
        const referenceRun = await mqttRun(sender, options, referenceBroker.mqttPort, REFERENCE_MQTT, `reference-mqtt-${waitMs}`);
        await bridge.stop();
        reference = referenceRun.warm ? latencyOf(referenceRun.offered, referenceRun.arrivals) : null;
      }
      mqttResults.set(waitMs, {
        gateway: latencyOf(run.offered, run.arrivals),
        reference,
        offered: run.offered,
        arrivals: run.arrivals,
        commits,
        warm: run.warm,
        pipeline,
      });
    };
    await mqttAt(defaultWaitMs, gateway);

    // LoRaWAN Class C and Class A, TTN: same gateway, same fetch wait.
    const classCArrivals: Arrivals = new Map();
    const byAddr = new Map([...setup.classC, ...setup.classA].map((device) => [device.devAddr, device]));
    forwarder.onDownlink((txpk, receivedAtMono) => {
      const found = downlinkSeq(txpk, byAddr);
      if (found !== null && !classCArrivals.has(found.seq)) classCArrivals.set(found.seq, receivedAtMono);
      return 'NONE';
    });
    const classCCommitsBefore = await commitCounters(gateway);
    const classC = await classCRun(sender, setup, gateway, forwarder, classCArrivals, options);
    const classCCommits = commitLine(classCCommitsBefore, await commitCounters(gateway), classC.offered.length);
    const classA = await classARun(sender, setup, gateway, forwarder, options);

    const ttnArrivals: Arrivals = new Map();
    const watcher = await watchDownPushes(setup.standIn, ttnArrivals);
    await setup.standIn.waitForSubscriber();
    const fleet = createTtsFleet(TTN_APPLICATION, { devices: options.devices, seed: 11, prefix: 'cmd-' });
    const ttnBefore = await gateway.metric('iotgw_ingress_accepted_total', ['source="ttn"']);
    await publishTtsTraffic(setup.standIn, fleet, { messagesPerDevice: 1 });
    const learnedBy = performance.now() + 10_000;
    while ((await gateway.metric('iotgw_ingress_accepted_total', ['source="ttn"'])) < ttnBefore + fleet.devices.length && performance.now() < learnedBy)
      await sleep(50);
    const ttnKeys = fleet.devices.map((device) => device.devEui);
    const ttnCommand = (seq: number) => ({
      value: JSON.stringify({ name: 'x', payload_hex: seq.toString(16).padStart(8, '0'), port: 2, ttl_s: 600 }),
      commandId: `ttn-${seq}`,
    });
    const ttnCommitsBefore = await commitCounters(gateway);
    const ttnWarm = await warmUp(ttnKeys, ttnArrivals, (seq, key) => sender.send(COMMANDS, key, ttnCommand(seq).value, ttnCommand(seq).commandId));
    const ttnOffered = await offer(sender, COMMANDS, ttnKeys, options.commands, options.ratePerS, ttnCommand);
    await awaitArrivals(ttnOffered, ttnArrivals);
    const ttnCommits = commitLine(ttnCommitsBefore, await commitCounters(gateway), ttnOffered.length);
    // The reference: the same bridge, publishing each Kafka value (already TTS's body) to the stand-in's down/push.
    let ttnReference: Latency | null = null;
    if (missing.length === 0) {
      const referenceArrivals: Arrivals = new Map();
      const referenceWatcher = await watchDownPushes(setup.standIn, referenceArrivals);
      const bridge = startBridge({
        brokers: setup.kafka.brokers,
        topic: REFERENCE_TTN,
        mqttPort: Number(new URL(setup.standIn.url).port),
        fetchWaitMs: defaultWaitMs,
        mqttTopic: { before: `v3/${setup.standIn.username}/devices/`, after: '/down/push' },
        credentials: { username: setup.standIn.username, password: setup.standIn.apiKey },
        qos: 0,
      });
      const deviceIds = fleet.devices.map((device) => device.deviceId);
      const referenceCommand = (seq: number) => ({ value: ttsBody(seq, `reference-ttn-${seq}`), commandId: `reference-ttn-${seq}` });
      const warm = await warmUp(deviceIds, referenceArrivals, (seq, key) =>
        sender.send(REFERENCE_TTN, key, referenceCommand(seq).value, `reference-ttn-${seq}`),
      );
      const offered = await offer(sender, REFERENCE_TTN, deviceIds, options.commands, options.ratePerS, referenceCommand);
      await awaitArrivals(offered, referenceArrivals);
      await bridge.stop();
      await referenceWatcher.endAsync(true);
      if (warm) ttnReference = latencyOf(offered, referenceArrivals);
    }
    await watcher.endAsync(true);

    // MQTT again with the shorter fetch wait: the same gateway (buffer, consumer group) restarted with it.
    await gateway.kill('SIGTERM');
    gateway = null;
    gateway = await startGateway(setup, REDUCED_FETCH_WAIT_MS, options.node);
    await mqttAt(REDUCED_FETCH_WAIT_MS, gateway);

    // Everything measured: print, once the last receipts are in Kafka and read back.
    await sleep(1_500);
    const ttnSteps = steps(receipts, ttnOffered, ttnArrivals);
    const classCSteps = steps(receipts, classC.offered, classCArrivals);
    const first = mqttResults.get(defaultWaitMs);
    const second = mqttResults.get(REDUCED_FETCH_WAIT_MS);
    say('');
    say(
      `   MQTT: mqtt.js devices subscribed at QoS 1 to devices/{id}/commands/#, on the gateway's broker; reference: a naive bridge (not durable, no receipts):`,
    );
    if (first?.pipeline) say(`     ${first.pipeline.replace(/fetch\.wait\.max\.ms=\d+/, 'fetch.wait.max.ms=<fetch_wait_ms>')}`);
    say('     -> mosquitto (no persistence), one standing mosquitto_pub per device key, QoS 1');
    const rows: Row[] = [];
    for (const [waitMs, result] of mqttResults) {
      const reference = result.reference ?? { sent: 0, arrived: 0, p50: Number.NaN, p99: Number.NaN, max: Number.NaN };
      rows.push(...latencyRows(`fetch_wait_ms ${waitMs}: produced -> device`, result.gateway, reference));
    }
    table(rows);
    for (const [waitMs, result] of mqttResults) {
      say(`   fetch_wait_ms ${waitMs}: gateway ${latencyText(result.gateway)}${result.warm ? '' : ' (warm-up never completed!)'}`);
      if (result.reference !== null) say(`   fetch_wait_ms ${waitMs}: reference ${latencyText(result.reference)}`);
      say(`     ${stepsText(steps(receipts, result.offered, result.arrivals), true)}`);
      say(`     ${result.commits}`);
    }
    if (first !== undefined && second !== undefined) {
      say(
        `   fetch_wait_ms ${defaultWaitMs} -> ${REDUCED_FETCH_WAIT_MS} moved the gateway's p50 by ${ms(first.gateway.p50 - second.gateway.p50)} ms: on the mock that much of the figure is the held Fetch, which a real broker would not add`,
      );
      say(
        `   (each command's share of the held Fetch is random, 0..fetch_wait_ms, so at ${defaultWaitMs} ms a p50 of ${options.commands} commands moves by several ms from run to run in either pipeline; the ${REDUCED_FETCH_WAIT_MS} ms rows show the pipelines' own difference more clearly)`,
      );
    }

    say('');
    say(
      `   LoRaWAN Class C (produced -> PULL_RESP at the simulated packet forwarder, sent at once on RX2): no reference pipeline (none exists for LoRaWAN downlinks)`,
    );
    say(`     ${options.devices} devices: ${latencyText(latencyOf(classC.offered, classCArrivals))}${classC.warm ? '' : ' (warm-up never completed!)'}`);
    say(`     ${stepsText(classCSteps, false)}`);
    say(`     ${classCCommits}`);
    say('');
    say(
      `   LoRaWAN Class A (device's uplink PUSH_DATA sent -> PULL_RESP of a command already waiting; includes lorawan.dedup_window_ms ${dedupMs}, the wait for copies from other gateways): no reference pipeline (none exists for LoRaWAN downlinks)`,
    );
    say(
      `     ${CLASS_A_DEVICES} devices, ${CLASS_A_COMMANDS_PER_DEVICE} commands waiting each (${classA.queued} queued before the uplinks), ${classA.uplinks} uplinks at ${options.ratePerS}/s: ${latencyText(classA.latency).replace('arrived', 'got a downlink')}`,
    );
    const margins = classA.marginsMs;
    const late = margins.filter((margin) => margin < LORA_PKT_FWD_LEAD_MS).length;
    say(
      `     RX1 margin (transmit time - PULL_RESP arrival): min ${ms(margins[0] ?? Number.NaN)} ms, p50 ${ms(percentile(margins, 50))} ms; RX2 used ${classA.rx2} times; ${late} would be TOO_LATE for lora_pkt_fwd (needs ${LORA_PKT_FWD_LEAD_MS} ms ahead, before any backhaul delay)`,
    );
    say('');
    say(
      `   TTN (produced -> down/push at the TTS stand-in); reference: the same bridge publishing each Kafka value (written as TTS's down/push body, keyed by TTS device id) to the stand-in at QoS 0, as the gateway publishes`,
    );
    const ttnLatency = latencyOf(ttnOffered, ttnArrivals);
    if (ttnReference !== null) table(latencyRows(`fetch_wait_ms ${defaultWaitMs}: produced -> down/push`, ttnLatency, ttnReference));
    say(`     gateway ${latencyText(ttnLatency)}${ttnWarm ? '' : ' (warm-up never completed!)'}`);
    if (ttnReference !== null) say(`     reference ${latencyText(ttnReference)}`);
    say(`     ${stepsText(ttnSteps, false)}`);
    say(`     ${ttnCommits}`);
  } finally {
    for (const bridge of bridges) await bridge.stop();
    await forwarder.stop();
    await gateway?.kill('SIGTERM');
    await receipts.stop();
    await sender.stop();
    await referenceBroker?.stop();
    await setup.standIn.stop();
    await setup.kafka.stop();
    rmSync(setup.dir, { recursive: true, force: true });
  }
}
