// `iotgw status` against a live ops endpoint (the real server and status model, in this process; the CLI as a
// child process): the human summary, --json, basic auth taken from the config, and a clear exit 1 when
// nothing answers.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { createOpsServer } from '../../src/ops/health.ts';
import { createMetrics } from '../../src/core/metrics.ts';
import { createActivity } from '../../src/ops/activity.ts';
import { createStatus, type StatusSnapshot } from '../../src/ops/status.ts';
import { captureLog } from '../helpers/capture-log.ts';
import { freePort } from '../helpers/gateway-process.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));
const run = promisify(execFile);

async function iotgw(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { env: { ...process.env, IOTGW_CONFIG: undefined }, timeout: 60_000 });
    return { status: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { status: failed.code ?? -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

test('iotgw status prints the Kafka link, buffer, ways in, ingress, devices and rejections; --json; basic auth from the config', async (t) => {
  const dir = tempDir(t);
  const passwordFile = join(dir, 'http-password');
  writeFileSync(passwordFile, 's3cret-ops\n');
  const metrics = createMetrics({ processMetrics: false });
  const activity = createActivity();
  const status = createStatus(
    { gatewayId: 'gw-status', version: '9.9.9', maxRecords: 1000, maxBytes: 1_000_000 },
    {
      metrics,
      live: () => ({
        kafka: 'buffering',
        buffer: { depthRecords: 42, depthBytes: 4200, oldestReceivedAtMs: Date.now() - 75_000, deadLetters: 1, droppedRecords: 0 },
      }),
      waysIn: [
        { name: 'ingress.mqtt', health: () => ({ status: 'ok', detail: '1 clients' }) },
        { name: 'ingress.ttn.city@ttn', health: () => ({ status: 'degraded', detail: 'TTN city@ttn: subscribing' }) },
      ],
      activity,
    },
  );
  metrics.ingressAccepted.inc({ source: 'mqtt' }, 42);
  metrics.ingressRejected.inc({ source: 'mqtt', reason: 'not-authorized' });
  activity.noteAccepted([{ key: 'em-000007', source: 'mqtt' }]);
  activity.noteRejection('mqtt', 'not-authorized', 'em-9: publish refused: device em-9 may not publish as em-10');
  // A topic that would clear the operator's screen and retitle the terminal, as a device can send it.
  activity.noteRejection('mqtt', 'bad-topic', 'em-8: publish refused: topic devices/em-8/\u001b[2J\u001b]0;pwned\u0007');
  const server = createOpsServer(
    { host: '127.0.0.1', port: 0, auth: { username: 'ops', passwordFile } },
    {
      metrics,
      log: captureLog().log,
      refreshMetrics: () => undefined,
      readiness: () => ({ ready: true, kafka: 'buffering', components: {}, buffer: { depthRecords: 42, depthBytes: 4200, oldestAgeSeconds: 75 } }),
      status: () => status.snapshot(),
    },
  );
  await server.start();
  t.after(() => server.stop());
  const port = server.address().port;
  const config = join(dir, 'iotgw.yaml');
  writeFileSync(config, stringify({ http: { host: '0.0.0.0', port, auth: { username: 'ops', password_file: passwordFile } } }));

  const summary = await iotgw(['status', '--config', config]);
  assert.equal(summary.status, 0, summary.stderr);
  assert.match(summary.stdout, new RegExp(`^iotgw gw-status 9\\.9\\.9, up .* \\(http://127\\.0\\.0\\.1:${port}\\)`));
  assert.match(summary.stdout, /Kafka link: {3}BUFFERING/);
  assert.match(summary.stdout, /buffer: {7}42 records, 4\.2 kB \(4\.20 % of the bound\), oldest 1 min 1[45] s; dead letters 1/);
  assert.match(
    summary.stdout,
    /\nways in: {6}1 ok, 1 DEGRADED\n {2}ingress\.mqtt {9}ok {7}1 clients\n {2}ingress\.ttn\.city@ttn DEGRADED TTN city@ttn: subscribing\n/,
  );
  assert.match(summary.stdout, /mqtt .*accepted 42, rejected 1/);
  assert.match(summary.stdout, /em-000007 \(mqtt\)/);
  assert.match(summary.stdout, /not-authorized: em-9: publish refused/);
  const controls = [...summary.stdout].filter((character) => character !== '\n' && (character.charCodeAt(0) < 0x20 || character.charCodeAt(0) === 0x7f));
  assert.deepEqual(controls, [], 'no control character reaches the terminal');
  assert.ok(summary.stdout.includes('devices/em-8/\\u001b[2J\\u001b]0;pwned\\u0007'), 'they are shown escaped');

  const json = await iotgw(['status', '--json', '--config', config]);
  assert.equal(json.status, 0, json.stderr);
  const parsed = JSON.parse(json.stdout) as { readiness: { kafka: string }; status: StatusSnapshot };
  assert.equal(parsed.readiness.kafka, 'buffering');
  assert.equal(parsed.status.buffer.depthRecords, 42);
  assert.deepEqual(parsed.status.links, [
    { name: 'ingress.mqtt', status: 'ok', detail: '1 clients' },
    { name: 'ingress.ttn.city@ttn', status: 'degraded', detail: 'TTN city@ttn: subscribing' },
  ]);

  const noAuth = await iotgw(['status', '--url', `http://127.0.0.1:${port}`]);
  assert.equal(noAuth.status, 1);
  assert.match(noAuth.stderr, /asks for basic auth/);
});

test('iotgw status exits 1 with a hint when nothing answers, without a stack trace', async () => {
  const port = await freePort();
  const result = await iotgw(['status', '--url', `http://127.0.0.1:${port}`]);
  assert.equal(result.status, 1);
  assert.match(
    result.stderr,
    new RegExp(`cannot reach the iotgw ops endpoint at http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\): is the service running\\? systemctl status iotgw`),
  );
  assert.doesNotMatch(result.stderr, /\n\s+at /);
});
