// The status page in a real headless browser (Debian's chromium driven by playwright-core): it loads from
// the gateway's ops endpoint, shows live figures that change as firmware-sim devices publish and as Kafka
// goes down and up, lists every way in with its state, renders untrusted device text as text, and fits a
// phone screen. Screenshots are kept
// in test-artifacts/ for a person to look at.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connectAsync } from 'mqtt';
import { type Browser, chromium, type Page } from 'playwright-core';
import { runMqttFleet } from '../../firmware-sim/mqtt-fleet.ts';
import type { StatusSnapshot } from '../../src/ops/status.ts';
import { startOpsGateway } from '../helpers/ops-gateway.ts';
import { waitFor } from '../helpers/wait-for.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run does), or set CHROMIUM_PATH`);
  // --no-sandbox: CI runs as root, where Chromium refuses its sandbox.
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
}

async function text(page: Page, selector: string): Promise<string> {
  return ((await page.textContent(selector)) ?? '').trim();
}

// Generous bounds: on a loaded 2-core CI machine Chromium alone may take many seconds to start and render.
async function waitForText(page: Page, selector: string, expected: string | RegExp, timeoutMs = 60_000): Promise<void> {
  await waitFor(
    async () => {
      const actual = await text(page, selector);
      return typeof expected === 'string' ? actual === expected : expected.test(actual);
    },
    `${selector} to show ${expected} (shows ${JSON.stringify(await text(page, selector))})`,
    timeoutMs,
    250,
  );
}

interface LinkRow {
  readonly name: string;
  readonly state: string;
  readonly stateClass: string;
  readonly color: string;
  readonly detail: string;
}

const MISSING_TTY = '/dev/iotgw-test-no-such-tty';

test('the status page shows live Kafka, buffer, ways in, ingress, device and rejection figures, and fits a phone', async (t) => {
  // Three ways in: the MQTT broker and the Semtech UDP listener come up; the serial radio's adapter is missing.
  const { kafka, baseUrl, mqttUrl } = await startOpsGateway(t, {
    lorawan: { enabled: true, udp: { host: '127.0.0.1', port: 0 } },
    serial: { enabled: true, path: MISSING_TTY },
  });
  const startedAt = Date.now();
  const step = (what: string): void => t.diagnostic(`${((Date.now() - startedAt) / 1000).toFixed(1)} s: ${what}`);
  const browser = await launchBrowser();
  step('browser started');
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });

  const response = await page.goto(`${baseUrl}/`);
  assert.equal(response?.status(), 200);
  await waitForText(page, '#gateway-id', 'gw-ops-test');
  assert.match(await text(page, '#version'), /^\d+\.\d+\.\d+/);
  await waitForText(page, '#buffer-depth', '0');
  await waitForText(page, '#kafka-state', /^(up|starting)$/);
  await waitForText(page, '#conn', /^live/);
  step('page live');

  // The ways in, read from one render (the serial ingress is briefly 'degraded' while it retries the open).
  let links: LinkRow[] = [];
  await waitFor(
    async () => {
      links = (await page.evaluate(
        `[...document.querySelectorAll("#links tbody tr")].map((tr) => ({ name: tr.cells[0].textContent, state: tr.cells[1]?.textContent,
          stateClass: tr.cells[1]?.className, color: tr.cells[1] && getComputedStyle(tr.cells[1]).color, detail: tr.cells[2]?.textContent }))`,
      )) as LinkRow[];
      return links.length === 3 && links[2]?.state === 'down';
    },
    `the ways in panel to list three links, the serial radio down (shows ${JSON.stringify(links)})`,
    60_000,
    250,
  );
  assert.deepEqual(
    links.map((link) => [link.name, link.state, link.stateClass]),
    [
      ['ingress.mqtt', 'ok', 'state ok'],
      ['ingress.semtech-udp', 'ok', 'state ok'],
      ['ingress.serial-radio', 'down', 'state down'],
    ],
  );
  assert.notEqual(links[0]?.color, links[2]?.color, 'ok and down are drawn in different colours');
  assert.ok(links[2]?.detail.includes(MISSING_TTY), `the serial radio's detail names its port (${links[2]?.detail})`);

  // Kafka down, then devices publish: the page must show the backlog and the link state.
  await kafka.down('all');
  const published = 30;
  const report = await runMqttFleet({
    url: mqttUrl,
    devices: 3,
    ratePerSecond: 0,
    durationMs: 0,
    messages: published,
    qos: 1,
    seed: 5,
    prefix: 'sim-',
    connectDeadlineMs: 120_000,
  });
  assert.equal(report.acked, published, JSON.stringify({ ...report, ledger: undefined }));
  step('fleet published');
  await waitForText(page, '#kafka-state', 'buffering', 30_000);
  await waitForText(page, '#buffer-depth', String(published));
  await waitForText(page, '#ingress-accepted', String(published));
  assert.equal(await page.getAttribute('#kafka-state', 'class'), 'pill buffering');
  assert.notEqual(await text(page, '#buffer-age'), 'empty');
  const deviceIds = [...report.ledger.keys()];
  assert.equal(deviceIds.length, 3);
  await waitFor(
    async () => {
      const listed = await text(page, '#devices');
      return deviceIds.every((id) => listed.includes(id));
    },
    `every device (${deviceIds.join(', ')}) in the recently seen list`,
    60_000,
    250,
  );

  // A client publishes to a topic made of markup, where it may not: a rejection row, shown as text, not HTML.
  const rogueTopic = '<img src=x onerror=window.pwned=1>';
  const rogue = await connectAsync(mqttUrl, { clientId: 'rogue-1', reconnectPeriod: 0 });
  rogue.on('error', () => undefined);
  // MQTT 3.1.1 has no negative PUBACK: the broker closes the connection [MQTT-3.3.5-2], and mqtt.js would
  // keep the publish for a reconnect that never comes, so wait for the close rather than the publish.
  const closed = new Promise<void>((resolve) => rogue.once('close', () => resolve()));
  rogue.publish(rogueTopic, '{}', { qos: 1 }, () => undefined);
  await closed;
  rogue.end(true);
  await waitForText(page, '#rejections', /not-authorized/);
  step('rejection shown');
  assert.ok((await text(page, '#rejections')).includes(rogueTopic), 'the untrusted topic is shown literally');
  assert.equal(await page.locator('#rejections img').count(), 0, 'no element was made from device input');
  // (Expressions as strings: the test compiles without the DOM lib.)
  assert.equal(await page.evaluate('window.pwned'), undefined);

  // History is kept server side: a fresh load draws the charts at once, and the rate was seen.
  await waitFor(async () => (await page.locator('#chart-depth polyline').count()) === 1, 'the depth chart to be drawn', 60_000, 250);
  const snapshot = (await (await fetch(`${baseUrl}/api/status`)).json()) as StatusSnapshot;
  assert.ok(
    snapshot.history.samples.some((sample) => (sample.ingressPerSecond.mqtt ?? 0) > 0),
    'a history sample saw records/s from mqtt',
  );
  assert.ok(snapshot.history.samples.some((sample) => sample.depthRecords === published));
  assert.deepEqual(
    snapshot.links.map((link) => link.name),
    ['ingress.mqtt', 'ingress.semtech-udp', 'ingress.serial-radio'],
    '/api/status lists the ways in in start order',
  );
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: `${ARTIFACTS}status-page-buffering.png`, fullPage: true });

  // Kafka back: the backlog drains and the page follows without a reload.
  await kafka.up('all');
  step('Kafka up');
  await waitForText(page, '#kafka-state', 'up', 60_000);
  await waitForText(page, '#buffer-depth', '0', 60_000);
  await waitForText(page, '#buffer-age', 'empty');
  await page.screenshot({ path: `${ARTIFACTS}status-page.png`, fullPage: true });

  // A phone: nothing wider than the screen.
  const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  await phone.goto(`${baseUrl}/`);
  await waitForText(phone, '#buffer-depth', '0');
  const overflow = (await phone.evaluate('document.documentElement.scrollWidth - window.innerWidth')) as number;
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than a 390px screen`);
  await phone.screenshot({ path: `${ARTIFACTS}status-page-phone.png`, fullPage: true });

  assert.deepEqual(errors, [], 'no script errors in the page');
});
