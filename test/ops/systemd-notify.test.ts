// sd_notify through the systemd-notify binary, against a real AF_UNIX datagram socket standing in for PID 1:
// the notifier alone, then the built gateway process (READY=1 only once it listens, WATCHDOG=1 while healthy,
// STOPPING=1 at SIGTERM).
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { createSystemdNotifier } from '../../src/ops/systemd.ts';
import { captureLog } from '../helpers/capture-log.ts';
import { freePort, launchGateway, writeGatewayConfig } from '../helpers/gateway-process.ts';
import { startNotifySocket } from '../helpers/notify-socket.ts';
import { tempDir } from '../helpers/temp-dir.ts';

test('without NOTIFY_SOCKET every call is a no-op and no watchdog is set', async () => {
  const { log, messages } = captureLog();
  const notifier = createSystemdNotifier({ log, env: {}, command: '/nonexistent/systemd-notify' });
  assert.equal(notifier.enabled, false);
  notifier.ready('ready');
  notifier.status('x');
  notifier.watchdogPing();
  notifier.stopping();
  await notifier.flush(1000);
  assert.equal(notifier.watchdogIntervalMs(), null);
  assert.deepEqual(messages(), [], 'nothing was attempted, so nothing failed');
});

test('WATCHDOG_USEC gives the ping interval (half), unless WATCHDOG_PID names another process', () => {
  const { log } = captureLog();
  const ours = createSystemdNotifier({ log, env: { NOTIFY_SOCKET: '/x', WATCHDOG_USEC: '30000000', WATCHDOG_PID: '42' }, pid: 42 });
  assert.equal(ours.watchdogTimeoutMs(), 30_000);
  assert.equal(ours.watchdogIntervalMs(), 15_000);
  const unset = createSystemdNotifier({ log, env: { NOTIFY_SOCKET: '/x', WATCHDOG_USEC: '2000000' }, pid: 42 });
  assert.equal(unset.watchdogIntervalMs(), 1_000);
  const theirs = createSystemdNotifier({ log, env: { NOTIFY_SOCKET: '/x', WATCHDOG_USEC: '30000000', WATCHDOG_PID: '7' }, pid: 42 });
  assert.equal(theirs.watchdogIntervalMs(), null);
});

test('messages reach the socket in order through systemd-notify, newlines in a status flattened', async (t) => {
  const socket = await startNotifySocket(t);
  const { log, messages } = captureLog();
  const notifier = createSystemdNotifier({ log, env: { ...process.env, NOTIFY_SOCKET: socket.path } });
  notifier.ready('ready: kafka up, 0 buffered');
  notifier.watchdogPing();
  notifier.status('two\nlines');
  notifier.stopping();
  notifier.watchdogPing();
  await notifier.flush();
  await socket.waitFor((message) => message.fields.STOPPING === '1');
  assert.deepEqual(
    socket.messages.map((message) => message.text),
    [
      'READY=1\nSTATUS=ready: kafka up, 0 buffered',
      'WATCHDOG=1',
      'STATUS=two lines',
      'STOPPING=1\nSTATUS=stopping: finishing commits and the Kafka batch in flight',
    ],
    'no ping after STOPPING=1',
  );
  assert.deepEqual(messages(), []);
});

test('a missing systemd-notify is logged once, not per message', async () => {
  const { log, lines } = captureLog();
  const notifier = createSystemdNotifier({ log, env: { NOTIFY_SOCKET: '/run/nothing' }, command: '/nonexistent/systemd-notify' });
  notifier.ready('ready');
  notifier.watchdogPing();
  notifier.watchdogPing();
  await notifier.flush();
  const errors = lines().filter((line) => line.level === 'error');
  assert.equal(errors.length, 1);
  assert.match(String(errors[0]?.msg), /not found/);
});

test('gateway process: READY=1 once listening, WATCHDOG=1 periodically with WATCHDOG_USEC, STOPPING=1 on SIGTERM, exit 0', async (t) => {
  const socket = await startNotifySocket(t);
  const dir = tempDir(t);
  // The MQTT port is chosen here, so that it can be probed the moment READY=1 arrives. Another test may take
  // it between freePort() and the gateway's bind: then the start fails with EADDRINUSE and is tried again.
  let mqttPort = 0;
  let launched: ReturnType<typeof launchGateway> | null = null;
  let ready: Awaited<ReturnType<typeof socket.waitFor>> | null = null;
  for (let attempt = 1; ready === null; attempt++) {
    mqttPort = await freePort();
    const configPath = writeGatewayConfig(dir, {
      gateway_id: 'gw-notify',
      mqtt: { host: '127.0.0.1', port: mqttPort },
      http: { host: '127.0.0.1', port: 0 },
      kafka: { brokers: ['127.0.0.1:1'], connection_timeout_ms: 200, retry_initial_ms: 100, retry_max_ms: 500 },
      buffer: { path: join(dir, 'buffer.db') },
    });
    const starting = launchGateway(configPath, { NOTIFY_SOCKET: socket.path, WATCHDOG_USEC: '1000000', IOTGW_CLOCK_TRUSTED: '1' });
    launched = starting;
    // READY=1, or the reason the gateway did not start (never a silent 60 s wait).
    const failedStart = starting.then(() => new Promise<never>(() => undefined));
    try {
      ready = await Promise.race([socket.waitFor((message) => message.fields.READY === '1', 60_000), failedStart]);
    } catch (error) {
      if (attempt < 3 && /EADDRINUSE/.test(String(error))) continue;
      throw error;
    }
  }
  // The moment READY=1 is seen, the MQTT listener must already accept connections.
  await new Promise<void>((resolve, reject) => {
    const probe = connect(mqttPort, '127.0.0.1', () => {
      probe.destroy();
      resolve();
    });
    probe.once('error', (error) => reject(new Error(`READY=1 arrived before MQTT was listening: ${error.message}`)));
  });
  const gateway = await (launched as NonNullable<typeof launched>);
  t.after(() => gateway.kill('SIGKILL'));
  assert.match(ready.fields.STATUS ?? '', /^ready: kafka (starting|buffering|up), 0 buffered/);
  assert.equal(socket.messages.filter((message) => message.fields.READY === '1').length, 1);
  const startedIndex = gateway.logs.findIndex((line) => line.msg === 'iotgw started');
  assert.ok(startedIndex >= 0);

  // A ping every 500 ms (WATCHDOG_USEC/2); waiting is bounded, never a speed assertion (CI machines are loaded).
  const pingCount = (): number => socket.messages.filter((message) => message.fields.WATCHDOG === '1').length;
  await socket.waitFor(() => pingCount() >= 3, 20_000);
  const pings = socket.messages.filter((message) => message.fields.WATCHDOG === '1');
  assert.ok(
    pings.every((ping) => ping.atMs >= ready.atMs),
    'no ping before READY=1',
  );
  assert.ok(gateway.logs.some((line) => line.component === 'watchdog' && String(line.msg).startsWith('systemd watchdog on')));

  const exitCode = gateway.kill('SIGTERM');
  const stopping = await socket.waitFor((message) => message.fields.STOPPING === '1', 10_000);
  assert.match(stopping.fields.STATUS ?? '', /^stopping/);
  assert.equal(await exitCode, 0);
  const afterStop = socket.messages.filter((message) => message.atMs > stopping.atMs && message.fields.WATCHDOG === '1');
  assert.deepEqual(afterStop, [], 'no watchdog ping after STOPPING=1');
});
