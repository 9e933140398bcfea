// End to end over The Things Network's MQTT integration with real parts: the TTS stand-in (aedes posing as
// The Things Stack, QoS 0 like the real one) publishing simulated v3 uplinks -> the gateway process (mqtt.js
// client, gap tracker, SQLite) -> librdkafka's mock cluster, read back with kafkajs. Every valid uplink the
// gateway could hear reaches Kafka once, keyed by lower-case DevEUI, with the TTS message intact plus
// `iotgw`; duplicates are stored once, malformed messages never (counted by reason), f_cnt gaps are marked.
// Then the stand-in cuts the connection and refuses new ones for a while (bad key, then unavailable): the
// gateway backs off and reconnects, uplinks published meanwhile are lost (QoS 0) and show up as gaps,
// uplinks published after the reconnect arrive, and nothing delivered before the cut is lost.
// A second test commits uplinks with Kafka down, kills the gateway with SIGKILL and restarts it: everything
// committed reaches Kafka, and the per-device counters (committed with the records) continue without false gaps.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { startTtsStandIn } from '../../firmware-sim/tts-stand-in.ts';
import { createTtsFleet, type LedgerUplink, publishTtsTraffic } from '../../firmware-sim/tts-traffic.ts';
import { decodeCayenneLpp } from '../../src/codecs/cayenne-lpp.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { type GatewayProcess, startGatewayProcess, writeGatewayConfig } from '../helpers/gateway-process.ts';
import { type ConsumedMessage, kafkaMockFor, readTopic } from '../helpers/kafka-mock.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait-for.ts';

const TOPIC = 'city.ttn';
const APPLICATION = 'city-sensors';
/** The `application` label and iotgw.application: the whole username, unique across tenants. */
const USERNAME = `${APPLICATION}@ttn`;

const accepted = (gateway: GatewayProcess): Promise<number> => gateway.metric('iotgw_ingress_accepted_total', ['source="ttn"']);
const rejected = (gateway: GatewayProcess, reason: string): Promise<number> =>
  gateway.metric('iotgw_ingress_rejected_total', ['source="ttn"', `reason="${reason}"`]);
const reconnects = (gateway: GatewayProcess): Promise<number> => gateway.metric('iotgw_ttn_reconnects_total', [`application="${USERNAME}"`]);

interface RecordValue extends Record<string, unknown> {
  uplink_message: Record<string, unknown> & { f_cnt?: number; frm_payload: string };
  iotgw: { f_cnt_gap: number; application: string; codec?: string };
}

test('TTS (MQTT, QoS 0) -> gateway -> Kafka: each heard uplink once and intact, faults refused, gaps marked, reconnect with backoff', async (t) => {
  const kafka = await kafkaMockFor(t, { brokers: 1, topics: [{ name: TOPIC, partitions: 3 }] });
  const dir = tempDir(t);
  const standIn = await startTtsStandIn({ applicationId: APPLICATION, tenantId: 'ttn' });
  t.after(() => standIn.stop());
  const keyFile = join(dir, 'ttn-api-key');
  writeFileSync(keyFile, `${standIn.apiKey}\n`, { mode: 0o600 });
  const config: ConfigInput = {
    gateway_id: 'gw-ttn-e2e',
    log: { level: 'info' },
    mqtt: { host: '127.0.0.1', port: 0 },
    http: { host: '127.0.0.1', port: 0 },
    kafka: { brokers: [...kafka.brokers], topic: TOPIC, retry_initial_ms: 100, retry_max_ms: 1000, request_timeout_ms: 5000, connection_timeout_ms: 1000 },
    buffer: { path: join(dir, 'buffer.db') },
    ttn: {
      enabled: true,
      url: standIn.url,
      username: standIn.username,
      password_file: keyFile,
      codec: 'cayenne-lpp',
      events: { join: 'ttn-joins' },
      reconnect_max_ms: 2000,
    },
  };
  const gateway = await startGatewayProcess(t, writeGatewayConfig(dir, config));
  await standIn.waitForSubscriber();
  assert.ok(!JSON.stringify(gateway.logs).includes(standIn.apiKey), 'the API key is never logged');

  // Phase 1: uplinks with gaps, duplicates and malformed messages; one join event.
  const fleet = createTtsFleet(APPLICATION, { devices: 8, seed: 5, decodedShare: 0.5 });
  const first = await publishTtsTraffic(standIn, fleet, { messagesPerDevice: 5, gaps: 4, duplicates: 3, malformed: 6 });
  assert.ok(first.skippedFrames >= 4);
  assert.ok([...first.uplinks, ...first.duplicates].every((entry) => entry.reached === 1) && first.malformed.every((entry) => entry.reached === 1));
  const joinDevice = fleet.devices[0];
  assert.ok(joinDevice !== undefined);
  const joinEvent = JSON.stringify({
    end_device_ids: { device_id: joinDevice.deviceId, application_ids: { application_id: APPLICATION }, dev_eui: joinDevice.devEui.toUpperCase() },
    received_at: new Date().toISOString(),
    join_accept: { session_key_id: 'AZQxyz==', received_at: new Date().toISOString() },
  });
  assert.equal(await standIn.publish(`v3/${standIn.username}/devices/${joinDevice.deviceId}/join`, joinEvent), 1);
  await waitFor(async () => (await accepted(gateway)) >= first.uplinks.length + 1, 'phase 1 to be committed', 30_000, 100);
  for (const reason of ['malformed-json', 'missing-device-id', 'missing-dev-eui'] as const) {
    assert.equal(await rejected(gateway, reason), first.malformed.filter((entry) => entry.kind === reason).length, `rejected ${reason}`);
  }
  assert.equal(await rejected(gateway, 'duplicate'), first.duplicates.length);
  assert.equal(await accepted(gateway), first.uplinks.length + 1, 'duplicates and malformed messages were not stored');
  assert.equal(await gateway.metric('iotgw_ttn_connected', [`application="${USERNAME}"`]), 1);

  // The cut: TTS refuses the key for a while, then is unavailable; the gateway keeps retrying with backoff.
  standIn.setConnectPolicy('not-authorized');
  assert.equal(standIn.dropConnections(), 1);
  await waitFor(() => standIn.subscribers() === 0, 'the stand-in to see the gateway gone');
  await gateway.waitForLog((line) => String(line.msg).startsWith('TTN refused the connection: not authorized; check ttn.username'));
  standIn.setConnectPolicy('unavailable');
  await waitFor(async () => (await reconnects(gateway)) >= 3, 'three reconnect attempts', 30_000, 100);
  assert.equal(await gateway.metric('iotgw_ttn_connected', [`application="${USERNAME}"`]), 0);
  const lost = await publishTtsTraffic(standIn, fleet, { messagesPerDevice: 1 });
  assert.ok(
    lost.uplinks.every((entry) => entry.reached === 0),
    'published while the gateway was cut off: nobody heard them',
  );

  // Back: accepted again, subscribed again; later uplinks arrive and carry the gap of the lost ones.
  standIn.setConnectPolicy('accept');
  await standIn.waitForSubscriber(30_000);
  const third = await publishTtsTraffic(standIn, fleet, { messagesPerDevice: 3, duplicates: 1 });
  assert.ok(third.uplinks.every((entry) => entry.reached === 1));
  const expected: LedgerUplink[] = [...first.uplinks, ...third.uplinks];
  await waitFor(async () => (await accepted(gateway)) >= expected.length + 1, 'phase 3 to be committed', 30_000, 100);
  assert.equal(gateway.logs.filter((line) => String(line.msg).startsWith('TTN: connection lost')).length, 1, 'the drop is logged once');

  // Kafka: every heard uplink exactly once, intact; none of the lost ones; the join event as sent.
  const wanted = new Set(expected.map((entry) => `${entry.devEui}:${entry.fCnt}`));
  const frameOf = (message: ConsumedMessage): string => {
    const value = JSON.parse(message.value?.toString('utf8') ?? '{}') as Partial<RecordValue>;
    return `${message.key}:${value.uplink_message?.f_cnt ?? 0}`;
  };
  const messages = await readTopic(kafka.brokers, TOPIC, {
    until: (read) => {
      const seen = new Set(read.map(frameOf));
      return [...wanted].every((key) => seen.has(key)) && read.some((message) => message.headers['ttn-event'] === 'join');
    },
    timeoutMs: 45_000,
  });
  const uplinkMessages = messages.filter((message) => message.headers['ttn-event'] === undefined);
  const byFrame = new Map<string, ConsumedMessage[]>();
  for (const message of uplinkMessages) byFrame.set(frameOf(message), [...(byFrame.get(frameOf(message)) ?? []), message]);
  assert.deepEqual(
    [...byFrame.keys()].filter((key) => !wanted.has(key)),
    [],
    'nothing but the heard uplinks (no lost, duplicate or malformed ones)',
  );
  let gaps = 0;
  for (const entry of expected) {
    const where = `${entry.deviceId} f_cnt ${entry.fCnt}`;
    const copies = byFrame.get(`${entry.devEui}:${entry.fCnt}`) ?? [];
    assert.equal(copies.length, 1, `${where}: exactly once in Kafka`);
    const message = copies[0] as ConsumedMessage;
    assert.equal(message.key, entry.devEui);
    assert.match(message.key ?? '', /^[0-9a-f]{16}$/);
    assert.equal(message.headers['ttn-uplink'], `${entry.devEui}:${(entry.message.uplink_message as { session_key_id: string }).session_key_id}:${entry.fCnt}`);
    const { iotgw, ...rest } = JSON.parse(message.value?.toString('utf8') ?? '{}') as RecordValue;
    const original = structuredClone(entry.message) as RecordValue;
    if (original.uplink_message.decoded_payload === undefined) {
      // No TTS formatter on this device: the gateway's cayenne-lpp codec filled decoded_payload.
      original.uplink_message.decoded_payload = decodeCayenneLpp(Buffer.from(original.uplink_message.frm_payload, 'base64')).data;
      assert.equal(iotgw.codec, 'cayenne-lpp', where);
    } else {
      assert.equal(iotgw.codec, 'tts', `${where}: decoded by TTS, not again`);
    }
    assert.deepEqual(rest, original, `${where}: the TTS message intact`);
    assert.equal(iotgw.application, USERNAME);
    assert.equal(iotgw.f_cnt_gap, entry.expectedGap, `${where}: f_cnt_gap`);
    gaps += iotgw.f_cnt_gap;
  }
  assert.ok(
    third.uplinks.slice(0, fleet.devices.length).every((entry) => (entry.expectedGap ?? 0) >= 1),
    'the first uplink after the reconnect marks the lost one',
  );
  assert.equal(await gateway.metric('iotgw_ttn_missed_frames_total', [`application="${USERNAME}"`]), gaps);
  const joins = messages.filter((message) => message.headers['ttn-event'] === 'join');
  assert.equal(joins.length, 1);
  assert.equal(joins[0]?.key, joinDevice.devEui);
  assert.equal(joins[0]?.value?.toString('utf8'), joinEvent, 'events are stored exactly as sent');
  t.diagnostic(
    `uplinks ${expected.length} stored, ${lost.uplinks.length} lost while cut off, ${first.duplicates.length + third.duplicates.length} duplicates, ` +
      `${first.malformed.length} malformed, ${gaps} missed frames marked, ${await reconnects(gateway)} reconnects, stand-in refused ${standIn.stats().refused}`,
  );
});

test('TTN with Kafka down, then kill -9: the restarted gateway delivers every committed uplink, and the device counters continue (gaps right after the restart are marked)', async (t) => {
  const kafka = await kafkaMockFor(t, { brokers: 1, topics: [{ name: TOPIC, partitions: 3 }] });
  const dir = tempDir(t);
  const standIn = await startTtsStandIn({ applicationId: APPLICATION, tenantId: 'ttn' });
  t.after(() => standIn.stop());
  const keyFile = join(dir, 'ttn-api-key');
  writeFileSync(keyFile, `${standIn.apiKey}\n`, { mode: 0o600 });
  const configPath = writeGatewayConfig(dir, {
    gateway_id: 'gw-ttn-kill',
    mqtt: { host: '127.0.0.1', port: 0 },
    http: { host: '127.0.0.1', port: 0 },
    kafka: { brokers: [...kafka.brokers], topic: TOPIC, retry_initial_ms: 100, retry_max_ms: 1000, request_timeout_ms: 5000, connection_timeout_ms: 1000 },
    buffer: { path: join(dir, 'buffer.db') },
    ttn: { enabled: true, url: standIn.url, username: standIn.username, password_file: keyFile, reconnect_max_ms: 2000 },
  });
  const fleet = createTtsFleet(APPLICATION, { devices: 6, seed: 9, decodedShare: 0.5 });

  // Kafka down: everything heard is committed to the buffer only; then the process dies without a word.
  await kafka.down('all');
  const first = await startGatewayProcess(t, configPath);
  await standIn.waitForSubscriber();
  const before = await publishTtsTraffic(standIn, fleet, { messagesPerDevice: 4, gaps: 2 });
  assert.ok(before.uplinks.every((entry) => entry.reached === 1));
  await waitFor(async () => (await accepted(first)) === before.uplinks.length, 'every uplink committed while Kafka is down', 30_000, 100);
  await first.kill('SIGKILL');
  await waitFor(() => standIn.subscribers() === 0, 'the stand-in to see the killed gateway gone');

  // Restarted on the same buffer file, Kafka back: the counters come from the committed state.
  const second = await startGatewayProcess(t, configPath);
  await standIn.waitForSubscriber();
  await kafka.up('all');
  // Skipped counters right after the restart: only a gateway that kept each device's last counter can mark them.
  const after = await publishTtsTraffic(standIn, fleet, { messagesPerDevice: 2, gaps: 3 });
  assert.ok(after.uplinks.every((entry) => entry.reached === 1));
  assert.ok(
    after.uplinks.some((entry) => (entry.expectedGap ?? 0) > 0),
    'some gaps fall after the restart',
  );
  await waitFor(async () => (await accepted(second)) === after.uplinks.length, 'the uplinks after the restart committed', 30_000, 100);
  assert.equal(await rejected(second, 'duplicate'), 0, 'nothing after the restart taken for a copy of what came before');

  const expected = [...before.uplinks, ...after.uplinks];
  const frameOf = (message: ConsumedMessage): string =>
    `${message.key}:${(JSON.parse(message.value?.toString('utf8') ?? '{}') as Partial<RecordValue>).uplink_message?.f_cnt ?? 0}`;
  const messages = await readTopic(kafka.brokers, TOPIC, {
    until: (read) => {
      const seen = new Set(read.map(frameOf));
      return expected.every((entry) => seen.has(`${entry.devEui}:${entry.fCnt}`));
    },
    timeoutMs: 45_000,
  });
  const byFrame = new Map(messages.map((message) => [frameOf(message), message]));
  for (const entry of expected) {
    const message = byFrame.get(`${entry.devEui}:${entry.fCnt}`);
    assert.ok(message !== undefined, `${entry.deviceId} f_cnt ${entry.fCnt} in Kafka`);
    const { iotgw } = JSON.parse(message.value?.toString('utf8') ?? '{}') as RecordValue;
    assert.equal(iotgw.f_cnt_gap, entry.expectedGap, `${entry.deviceId} f_cnt ${entry.fCnt}: f_cnt_gap`);
  }
  t.diagnostic(
    `${before.uplinks.length} uplinks committed before the kill -9 (${before.skippedFrames} frames skipped), ${after.uplinks.length} after; all in Kafka`,
  );
});
