// The ops endpoint on its own (createOpsServer on a free port): the status page and its feed, and basic auth
// when http.auth is set: every path but /healthz needs the password, read from its file at start.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { createOpsServer, type OpsServerOptions } from '../../src/ops/health.ts';
import { createMetrics } from '../../src/core/metrics.ts';
import { createActivity } from '../../src/ops/activity.ts';
import { createStatus, type StatusSnapshot } from '../../src/ops/status.ts';
import { captureLog } from '../helpers/capture-log.ts';
import { tempDir } from '../helpers/temp-dir.ts';

async function startOps(t: TestContext, auth: OpsServerOptions['auth'] = null, allowedHosts: readonly string[] = []) {
  const metrics = createMetrics({ processMetrics: false });
  const status = createStatus(
    { gatewayId: 'gw-h', version: '0.0.0', maxRecords: 100, maxBytes: 1000 },
    {
      metrics,
      live: () => ({ kafka: 'up', buffer: null }),
      // Ways in as the status model sees them: a name and a health report (one long, one whose health() throws).
      activity: createActivity(),
      waysIn: [
        { name: 'ingress.mqtt', health: () => ({ status: 'ok', detail: '2 clients' }) },
        { name: 'ingress.serial-radio', health: () => ({ status: 'down', detail: `/dev/ttyUSB0: ${'x'.repeat(500)}` }) },
        { name: 'ingress.ttn.city@ttn', health: () => ({ status: 'degraded', detail: 'TTN city@ttn: subscribing' }) },
        {
          name: 'ingress.semtech-udp',
          health: () => {
            throw new Error('socket gone');
          },
        },
      ],
    },
  );
  const logs = captureLog();
  const server = createOpsServer(
    { host: '127.0.0.1', port: 0, auth, allowedHosts },
    {
      metrics,
      log: logs.log,
      refreshMetrics: () => undefined,
      readiness: () => ({ ready: true, kafka: 'up', components: {}, buffer: { depthRecords: 0, depthBytes: 0, oldestAgeSeconds: 0 } }),
      status: () => status.snapshot(),
    },
  );
  await server.start();
  t.after(() => server.stop());
  return { base: `http://127.0.0.1:${server.address().port}`, logs };
}

const basic = (user: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });

test('/ serves the status page and /api/status its JSON; unknown paths list the known ones', async (t) => {
  const { base } = await startOps(t);
  const page = await fetch(`${base}/`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
  assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'/);
  assert.match(await page.text(), /<title>iotgw status<\/title>/);
  const feed = (await (await fetch(`${base}/api/status`)).json()) as StatusSnapshot;
  assert.equal(feed.gatewayId, 'gw-h');
  assert.equal(feed.kafka.state, 'up');
  assert.deepEqual(
    feed.links.map((link) => [link.name, link.status]),
    [
      ['ingress.mqtt', 'ok'],
      ['ingress.serial-radio', 'down'],
      ['ingress.ttn.city@ttn', 'degraded'],
      ['ingress.semtech-udp', 'down'],
    ],
    'every way in, in the order given',
  );
  assert.equal(feed.links[0]?.detail, '2 clients');
  assert.equal(feed.links[1]?.detail?.length, 240, 'a long detail is shortened');
  assert.equal(feed.links[3]?.detail, 'health check failed: socket gone', 'a throwing health() shows as down, not as a failed status read');
  const missing = await fetch(`${base}/nope`);
  assert.equal(missing.status, 404);
  assert.match(await missing.text(), /\/api\/status/);
});

test('with http.auth every path but /healthz asks for the password; a wrong one is refused', async (t) => {
  const passwordFile = join(tempDir(t), 'http-password');
  writeFileSync(passwordFile, 'correct horse battery\n');
  const { base, logs } = await startOps(t, { username: 'ops', passwordFile });
  assert.equal((await fetch(`${base}/healthz`)).status, 200, '/healthz stays open for liveness probes');
  for (const path of ['/', '/api/status', '/metrics', '/readyz']) {
    const anonymous = await fetch(`${base}${path}`);
    assert.equal(anonymous.status, 401, path);
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Basic realm="iotgw"/);
    assert.equal((await fetch(`${base}${path}`, { headers: basic('ops', 'correct horse battery!') })).status, 401, `${path} wrong password`);
    assert.equal((await fetch(`${base}${path}`, { headers: basic('admin', 'correct horse battery') })).status, 401, `${path} wrong user`);
    assert.equal((await fetch(`${base}${path}`, { headers: basic('ops', 'correct horse battery') })).status, 200, `${path} right password`);
  }
  assert.equal((await fetch(`${base}/metrics`, { headers: { authorization: 'Bearer x' } })).status, 401);
  assert.equal(logs.messages().filter((message) => message.includes('basic-auth')).length, 1, 'one warning per address per minute');
});

test('an unreadable or empty http.auth.password_file stops the start with the key named', async (t) => {
  const dir = tempDir(t);
  await assert.rejects(startOps(t, { username: 'ops', passwordFile: join(dir, 'missing') }), /http\.auth\.password_file: cannot read .*missing/);
  writeFileSync(join(dir, 'empty'), '\n');
  await assert.rejects(startOps(t, { username: 'ops', passwordFile: join(dir, 'empty') }), /http\.auth\.password_file: .*empty is empty/);
});

/** A GET with a Host header of our choosing (fetch sets Host itself). */
function getWithHost(base: string, path: string, host: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const url = new URL(path, base);
  return new Promise((resolve, reject) => {
    const request = httpRequest({ host: url.hostname, port: url.port, path: url.pathname, headers: { host, ...headers } }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        body += chunk;
      });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on('error', reject);
    request.end();
  });
}

test('without auth, only requests for IP addresses, localhost and http.allowed_hosts are answered (DNS rebinding)', async (t) => {
  const { base } = await startOps(t, null, ['gateway-7.local']);
  const port = new URL(base).port;
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, `192.168.1.20:${port}`, `GATEWAY-7.local:${port}`]) {
    assert.equal((await getWithHost(base, '/api/status', host)).status, 200, host);
  }
  const rebound = await getWithHost(base, '/api/status', `attacker.example:${port}`);
  assert.equal(rebound.status, 421);
  assert.match(rebound.body, /not to "attacker\.example".*http\.allowed_hosts/);
  assert.equal((await getWithHost(base, '/metrics', 'attacker.example')).status, 421);
  assert.equal((await getWithHost(base, '/healthz', 'attacker.example')).status, 200, '/healthz says nothing');
});

test('with auth on, any host name is served to a client with the password (a foreign page has none)', async (t) => {
  const dir = tempDir(t);
  const passwordFile = join(dir, 'pw');
  writeFileSync(passwordFile, 'ops-pass\n');
  const { base } = await startOps(t, { username: 'ops', passwordFile });
  assert.equal((await getWithHost(base, '/api/status', 'attacker.example')).status, 401);
  assert.equal((await getWithHost(base, '/api/status', 'gateway.example', basic('ops', 'ops-pass'))).status, 200);
});
