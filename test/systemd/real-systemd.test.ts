// The gateway as its users run it: installed with systemd/install.sh under a real systemd (PID 1 in a
// systemd-nspawn container on a Debian bookworm tree, no network but its loopback and no NTP), then driven
// with exactly what the README tells an operator to type: iotgw device add, edit kafka.brokers, systemctl
// restart iotgw, the printed mosquitto_pub line. Kafka is librdkafka's mock cluster in the container's network
// namespace; what reached it is read there with a kafkajs consumer.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseDocument } from 'yaml';
import { type KafkaMock, startKafkaMock } from '../helpers/kafka-mock.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { bootContainer, CHECKOUT, type Container, type ExecResult, ensureImage } from './container.ts';
import type { ReadMessage } from './read-topic.ts';

const CONFIG = '/etc/iotgw/iotgw.yaml';
const TOPIC = 'iotgw.records';
const DEVICE = 'em-000001';
/** The exposure score must not get worse than this (`systemd-analyze security`: 0 = locked down, 10 = exposed). */
const MAX_EXPOSURE = 2.0;

function output(result: ExecResult): string {
  return `exit ${result.status}\n--- stdout\n${result.stdout.slice(-4000)}\n--- stderr\n${result.stderr.slice(-4000)}`;
}

test('installed under a real systemd as the README says: closed by default, first reading to Kafka, watchdog, bad config, restarts, reboot, upgrade, uninstall', {
  timeout: 1_200_000,
}, async (t) => {
  const startedAt = Date.now();
  const step = (text: string) => t.diagnostic(`${((Date.now() - startedAt) / 1000).toFixed(0)} s: ${text}`);
  const image = ensureImage(step);
  const container = await bootContainer({ image, name: 'iotgw-systemd-test', log: step });
  let kafka: KafkaMock | null = null;
  t.after(async () => {
    await kafka?.stop();
    await container.destroy();
  });

  const run = async (command: readonly string[], options: { input?: string; timeoutMs?: number; cwd?: string } = {}): Promise<ExecResult> => {
    const result = await container.exec(command, options);
    assert.equal(result.status, 0, `${command.join(' ')}\n${output(result)}`);
    return result;
  };
  const unit = async (property: string): Promise<string> => (await run(['systemctl', 'show', '-p', property, '--value', 'iotgw'])).stdout.trim();
  const bufferDepth = async (): Promise<number> =>
    (JSON.parse((await run(['iotgw', 'buffer', 'stats', '--json', '--config', CONFIG])).stdout) as { depthRecords: number }).depthRecords;
  const editConfig = (edit: (document: ReturnType<typeof parseDocument>) => void): void => {
    const path = join(container.root, CONFIG);
    const document = parseDocument(readFileSync(path, 'utf8'));
    edit(document);
    writeFileSync(path, document.toString()); // in place: owner root:iotgw and mode 0640 stay
  };
  const restart = async (): Promise<void> => {
    await run(['systemctl', 'restart', 'iotgw'], { timeoutMs: 120_000 });
    assert.equal(await unit('ActiveState'), 'active');
  };
  const startKafka = async (): Promise<KafkaMock> => {
    const started = await startKafkaMock({ brokers: 1, topics: [{ name: TOPIC, partitions: 2 }], commandPrefix: container.inNetwork() });
    editConfig((document) => document.setIn(['kafka', 'brokers'], [...started.brokers]));
    return started;
  };
  const readKafka = (brokers: readonly string[], count: number): Promise<ReadMessage[]> => readTopicInContainer(container, brokers, count);

  // --- sudo systemd/install.sh, from the checkout, as the README says ------------------------------------------------
  step('systemd/install.sh');
  const install = await run(['systemd/install.sh'], { cwd: '/src', timeoutMs: 600_000 });
  assert.match(install.stdout, /installed the commented example config as \/etc\/iotgw\/iotgw\.yaml/);
  assert.match(install.stdout, /note: no MQTT devices are listed and anonymous access is off/, 'the config check says what to do next');
  assert.match(install.stdout, /iotgw is active/);
  assert.equal(await unit('Type'), 'notify');
  assert.equal(await unit('ActiveState'), 'active');
  assert.equal(await unit('UnitFileState'), 'enabled');
  assert.equal(await unit('NRestarts'), '0', 'it started once and stayed up');

  // READY=1 (systemd's "Started" line) only after the MQTT listener is up.
  const journal = await unitJournal(container);
  const listening = journal.find((entry) => entry.gateway?.msg === 'MQTT broker listening');
  const ready = journal.find((entry) => entry.MESSAGE_ID === '39f53479d3a045ac8e11786248231fbf' && entry.JOB_TYPE === 'start');
  assert.ok(listening !== undefined && ready !== undefined, `journal lines for listening and start: ${JSON.stringify(journal.slice(-20))}`);
  assert.ok(
    Date.parse(String(listening.gateway?.time)) <= Number(ready.__REALTIME_TIMESTAMP) / 1000,
    `MQTT listened (${listening.gateway?.time}) before systemd saw READY=1 (${ready.__REALTIME_TIMESTAMP})`,
  );

  // --- Closed by default -----------------------------------------------------------------------------------------
  step('an anonymous client is refused');
  const anonymous = await container.exec([
    'mosquitto_pub',
    '-h',
    '127.0.0.1',
    '-p',
    '1883',
    '-V',
    'mqttv311',
    '-q',
    '1',
    '-i',
    'em-anon',
    '-t',
    'devices/em-anon/telemetry',
    '-m',
    'x',
  ]);
  assert.notEqual(anonymous.status, 0, output(anonymous));
  assert.match(anonymous.stderr, /not authori[sz]ed/i);

  // --- iotgw device add, systemctl reload iotgw, the printed mosquitto_pub line: with no Kafka and no network -----
  step('iotgw device add; systemctl reload iotgw; a first reading with no network and no NTP');
  const added = await run(['iotgw', 'device', 'add', DEVICE, '--config', CONFIG]);
  const password = /password \(shown only this once[^)]*\): (\S+)/.exec(added.stdout)?.[1];
  const tryLine = /^ {2}(mosquitto_pub .*)$/m.exec(added.stdout)?.[1];
  assert.ok(password !== undefined && tryLine !== undefined, added.stdout);
  assert.match(added.stdout, /systemctl reload iotgw/, 'device add says how to apply it');
  const pidBeforeReload = await unit('MainPID');
  await run(['systemctl', 'reload', 'iotgw'], { timeoutMs: 60_000 });
  await waitFor(
    async () => (await unitJournal(container)).some((entry) => entry.gateway?.msg?.startsWith('reload applied: MQTT devices and accounts 1 added') === true),
    'the reload applied',
    30_000,
    500,
  );
  assert.equal(await unit('MainPID'), pidBeforeReload, 'a reload, not a restart');
  assert.equal(await unit('ActiveState'), 'active');
  await run(['sh', '-c', tryLine]);
  assert.equal(await bufferDepth(), 1, 'acknowledged and buffered while Kafka is unreachable');
  const publish = (payload: string) =>
    run([
      'mosquitto_pub',
      '-h',
      '127.0.0.1',
      '-p',
      '1883',
      '-V',
      'mqttv311',
      '-q',
      '1',
      '-i',
      DEVICE,
      '-u',
      DEVICE,
      '-P',
      password,
      '-t',
      `devices/${DEVICE}/telemetry`,
      '-m',
      payload,
    ]);

  // --- Point kafka.brokers at a cluster, restart: the reading arrives, marked as taken before NTP sync -------------
  step('kafka.brokers -> the mock cluster; systemctl restart iotgw');
  kafka = await startKafka();
  await restart();
  const [first] = await readKafka(kafka.brokers, 1);
  assert.ok(first !== undefined, 'the first reading reached Kafka');
  assert.equal(first.key, DEVICE);
  assert.equal(first.value, '{"hello":"iotgw"}');
  assert.equal(first.headers.clock, 'unsynchronized', 'the container has no NTP: the reading says so');
  await waitFor(async () => (await bufferDepth()) === 0, 'the buffer to drain', 30_000, 500);

  // --- A hung process: the watchdog kills it, systemd restarts it, the buffered reading stays -----------------------
  step('SIGSTOP: the watchdog (WatchdogSec=30s) must kill and restart it');
  await kafka.down('all');
  await publish('{"seq":2}');
  assert.equal(await bufferDepth(), 1);
  const hungPid = await unit('MainPID');
  await run(['sh', '-c', `kill -STOP ${hungPid}`]); // the shell's kill: minbase has no procps
  await waitFor(async () => (await unit('NRestarts')) === '1' && (await unit('ActiveState')) === 'active', 'a watchdog restart', 120_000, 1_000);
  assert.notEqual(await unit('MainPID'), hungPid);
  assert.match((await run(['journalctl', '-u', 'iotgw', '--no-pager'])).stdout, /Watchdog timeout/);
  assert.equal(await bufferDepth(), 1, 'the buffered reading survived the watchdog kill');

  // --- A bad config: exit 78, no restart loop ----------------------------------------------------------------------
  step('a bad config stops with 78 and is not restarted');
  const configPath = join(container.root, CONFIG);
  const goodConfig = readFileSync(configPath, 'utf8');
  editConfig((document) => document.setIn(['mqtt', 'port'], 'eighteen-eighty-three'));
  const failed = await container.exec(['systemctl', 'restart', 'iotgw'], { timeoutMs: 120_000 });
  assert.notEqual(failed.status, 0);
  await sleep(8_000); // past RestartSec=5s: a restart loop would have begun
  assert.equal(await unit('ExecMainStatus'), '78');
  assert.equal(await unit('ActiveState'), 'failed');
  assert.equal(await unit('NRestarts'), '0', 'systemd did not restart it (RestartPreventExitStatus=78)');
  assert.match((await run(['journalctl', '-u', 'iotgw', '--no-pager'])).stdout, /mqtt\.port/);
  writeFileSync(configPath, goodConfig);
  await restart();

  // --- Buffered readings survive restart, reboot, upgrade, uninstall ------------------------------------------------
  step('readings buffered across systemctl restart, a reboot, an upgrade, an uninstall');
  for (const seq of [3, 4, 5]) await publish(`{"seq":${seq}}`);
  assert.equal(await bufferDepth(), 4);
  await restart();
  assert.equal(await bufferDepth(), 4, 'after systemctl restart');
  await kafka.stop(); // its network namespace goes with the reboot
  kafka = null;
  await container.reboot();
  await waitFor(async () => (await unit('ActiveState')) === 'active', 'iotgw to start at boot', 60_000, 500);
  assert.equal(await bufferDepth(), 4, 'after a reboot');
  const upgrade = await run(['systemd/install.sh'], { cwd: '/src', timeoutMs: 600_000 });
  assert.match(upgrade.stdout, /kept the existing \/etc\/iotgw\/iotgw\.yaml/);
  assert.match(upgrade.stdout, /restarting iotgw \(upgrade\)/);
  assert.equal(await unit('ActiveState'), 'active');
  assert.equal(await bufferDepth(), 4, 'after an upgrade (install.sh again)');

  const security = await run(['systemd-analyze', 'security', 'iotgw', '--no-pager']);
  const exposure = Number(/Overall exposure level for iotgw\.service: ([\d.]+)/.exec(security.stdout)?.[1]);
  step(`systemd-analyze security iotgw: exposure ${exposure}`);
  assert.ok(exposure <= MAX_EXPOSURE, `exposure ${exposure} > ${MAX_EXPOSURE}:\n${security.stdout}`);

  const uninstall = await run(['systemd/uninstall.sh'], { cwd: '/src' });
  assert.match(uninstall.stdout, /kept \/var\/lib\/iotgw/);
  assert.notEqual(await container.exec(['systemctl', 'is-active', 'iotgw']).then((result) => result.stdout.trim()), 'active');
  await run(['systemd/install.sh'], { cwd: '/src', timeoutMs: 600_000 });
  assert.equal(await bufferDepth(), 4, 'after uninstall.sh and install.sh');

  // --- Kafka back: the buffered readings arrive, in order -----------------------------------------------------------
  step('Kafka back: the buffered readings arrive in order');
  kafka = await startKafka();
  await restart();
  const later = await readKafka(kafka.brokers, 4);
  assert.deepEqual(
    later.map((message) => `${message.key} ${message.value}`),
    [2, 3, 4, 5].map((seq) => `${DEVICE} {"seq":${seq}}`),
  );
  await waitFor(async () => (await bufferDepth()) === 0, 'the buffer to drain', 30_000, 500);

  // --- uninstall.sh --purge removes the buffer, the config and the user ----------------------------------------------
  step('uninstall.sh --purge');
  await run(['systemd/uninstall.sh', '--purge'], { cwd: '/src' });
  for (const path of ['/var/lib/iotgw', '/etc/iotgw', '/opt/iotgw', '/etc/systemd/system/iotgw.service']) {
    assert.notEqual((await container.exec(['test', '-e', path])).status, 0, `${path} is gone`);
  }
  assert.notEqual((await container.exec(['getent', 'passwd', 'iotgw'])).status, 0, 'the iotgw user is gone');
});

interface JournalEntry {
  readonly MESSAGE?: string;
  readonly MESSAGE_ID?: string;
  readonly JOB_TYPE?: string;
  readonly __REALTIME_TIMESTAMP?: string;
  /** The gateway's own JSON log line, when MESSAGE is one. */
  readonly gateway?: { readonly msg?: string; readonly time?: string };
}

async function unitJournal(container: Container): Promise<JournalEntry[]> {
  const result = await container.exec(['journalctl', '-u', 'iotgw', '-o', 'json', '--no-pager']);
  return result.stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const entry = JSON.parse(line) as JournalEntry;
      if (typeof entry.MESSAGE !== 'string' || !entry.MESSAGE.startsWith('{')) return entry;
      try {
        return { ...entry, gateway: JSON.parse(entry.MESSAGE) as NonNullable<JournalEntry['gateway']> };
      } catch {
        return entry;
      }
    });
}

/** Runs read-topic.ts with the host's node in the container's network namespace, where the mock listens. */
function readTopicInContainer(container: Container, brokers: readonly string[], count: number): Promise<ReadMessage[]> {
  const [command, ...args] = [
    ...container.inNetwork(),
    process.execPath,
    '--import',
    'tsx',
    'test/systemd/read-topic.ts',
    brokers.join(','),
    TOPIC,
    String(count),
    '60000',
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(command as string, args, { cwd: CHECKOUT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    child.once('close', (status) => {
      if (status !== 0) reject(new Error(`read-topic exited ${status}: ${stderr}`));
      else resolve(JSON.parse(stdout) as ReadMessage[]);
    });
  });
}
