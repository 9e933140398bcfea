// The command queue over a real SQLite buffer (worker thread, group-commit batcher): what it commits is read
// back from the store, never assumed. Intake commits receipts and state rows together; duplicates, commands
// expired on arrival and the three bounds each end as their receipts say; per-device order, hand-over,
// finish, note and expiry; a new queue over the same file after a restart sees the same commands in the
// same order; and a commit the buffer refuses changes nothing, neither in memory nor in the store.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import type { WhenFull } from '../../src/buffer/record-buffer.ts';
import { openWorkerBuffer, type WorkerBuffer } from '../../src/buffer/worker-buffer.ts';
import { COMMAND_DONE_SCOPE, COMMAND_SCOPE, type Command, decodeCommand } from '../../src/commands/command.ts';
import { type ParsedCommand, type ParseResult, parseCommandMessage } from '../../src/commands/command-message.ts';
import { type CommandQueue, type CommandQueueOptions, createCommandQueue } from '../../src/commands/command-queue.ts';
import { RECEIPT_STREAM, UNKNOWN_DEVICE_KEY } from '../../src/commands/receipt.ts';
import { createMetrics, type Metrics } from '../../src/core/metrics.ts';
import { type AcceptBatcher, createAcceptBatcher } from '../../src/ingress/accept-batcher.ts';
import type { NewRecord } from '../../src/record/record.ts';
import { type CapturedLog, captureLog } from '../helpers/capture-log.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const NOW = Date.parse('2025-03-01T12:00:00Z');
const ROOMY: CommandQueueOptions = { maxPerDevice: 100, maxTotal: 1000, maxBytes: 1_000_000 };

interface StoreLimits {
  readonly maxRecords: number;
  readonly whenFull: WhenFull;
}

/** A real buffer file with its batcher: what the gateway's main.ts hands the queue. */
interface Store {
  readonly path: string;
  readonly buffer: WorkerBuffer;
  readonly batcher: AcceptBatcher;
  close(): Promise<void>;
}

async function openStore(t: TestContext, path: string, logs: CapturedLog, metrics: Metrics, limits: StoreLimits = { maxRecords: 100_000, whenFull: 'reject' }) {
  const buffer = await openWorkerBuffer({ path, maxRecords: limits.maxRecords, maxBytes: 100_000_000, whenFull: limits.whenFull }, { log: logs.log, metrics });
  const batcher = createAcceptBatcher({ commitIntervalMs: 0, commitMaxRecords: 1000 }, { buffer, log: logs.log, metrics });
  const store: Store = {
    path,
    buffer,
    batcher,
    async close() {
      await batcher.close();
      await buffer.close();
    },
  };
  t.after(() => store.close());
  return store;
}

interface ReceiptRow {
  readonly key: string;
  readonly stream: string;
  readonly source: string;
  readonly meta: Readonly<Record<string, string>>;
  readonly value: Record<string, unknown>;
}

interface Harness {
  readonly store: Store;
  readonly queue: CommandQueue;
  readonly metrics: Metrics;
  readonly logs: CapturedLog;
  readonly clock: { ms: number };
  /** Devices the queue announced, in order. */
  readonly queued: string[];
  /** A queue over the same store and clock: what a restart, or a reload, would read. */
  reopen(store?: Store): Promise<CommandQueue>;
  /** The records committed since the last call (leased and acknowledged, as the forwarder would). */
  committed(): Promise<ReceiptRow[]>;
  /** The committed state rows of a scope. */
  state(scope: string): Promise<ReadonlyMap<string, string>>;
  metric(name: string, labels: Record<string, string>): Promise<number>;
}

async function setup(t: TestContext, options: CommandQueueOptions = ROOMY, limits?: StoreLimits): Promise<Harness> {
  const logs = captureLog();
  const metrics = createMetrics({ processMetrics: false });
  const store = await openStore(t, join(tempDir(t), 'buffer.db'), logs, metrics, limits);
  const clock = { ms: NOW };
  const queued: string[] = [];
  const make = (over: Store): CommandQueue =>
    createCommandQueue(options, {
      accept: over.batcher.accept,
      loadState: (scope) => over.buffer.readState(scope),
      log: logs.log,
      metrics,
      nowMs: () => clock.ms,
    });
  const queue = make(store);
  queue.onQueued((deviceId) => queued.push(deviceId));
  await queue.load();
  return {
    store,
    queue,
    metrics,
    logs,
    clock,
    queued,
    async reopen(over = store) {
      const again = make(over);
      await again.load();
      return again;
    },
    async committed() {
      const records = await store.buffer.lease(10_000, 100_000_000);
      await store.buffer.ack(records.map((record) => record.seq));
      return records.map((record) => ({
        key: record.key,
        stream: record.stream,
        source: record.source,
        meta: record.meta,
        value: record.stream === RECEIPT_STREAM ? (JSON.parse(Buffer.from(record.payload).toString('utf8')) as Record<string, unknown>) : {},
      }));
    },
    state: (scope) => store.buffer.readState(scope),
    async metric(name, labels) {
      const metric = metrics.registry.getSingleMetric(name);
      if (metric === undefined) throw new Error(`no metric ${name}`);
      const { values } = await metric.get();
      return values.find((value) => Object.entries(labels).every(([key, expected]) => String(value.labels[key]) === expected))?.value ?? 0;
    },
  };
}

function parsed(id: string, deviceId: string, fields: Partial<ParsedCommand> = {}): ParseResult {
  return {
    ok: true,
    command: {
      id,
      deviceId,
      name: 'dim',
      payload: Buffer.from(`{"${id}":1}`),
      structured: false,
      fport: null,
      confirmed: false,
      expiresAtMs: NOW + 60_000,
      ...fields,
    },
  };
}

/** [command id, status] of each receipt, in commit order. */
const statuses = (rows: readonly ReceiptRow[]): [unknown, unknown][] => rows.map((row) => [row.value.command_id, row.value.status]);
const ids = (queue: CommandQueue): string[] => queue.list().map((command) => command.id);

function filler(n: number): NewRecord {
  return { key: 'meter-1', stream: 'telemetry', source: 'mqtt', receivedAtMs: NOW, eventTimeMs: NOW, payload: Buffer.from(`{"n":${n}}`), meta: {} };
}

test('intake commits an accepted receipt and a state row per command, and a rejected receipt per refusal, then announces the devices', async (t) => {
  const h = await setup(t);
  const limits = { maxPayloadBytes: 64, defaultTtlMs: 60_000 };
  const badKey = parseCommandMessage({ key: Buffer.from('lamp/3'), value: Buffer.from('on'), headers: { 'command-id': 'c-3' } }, limits, NOW);
  const noIds = parseCommandMessage({ key: null, value: Buffer.from('on') }, limits, NOW);
  const outcome = await h.queue.intake([parsed('c-1', 'lamp-1'), badKey, parsed('c-2', 'lamp-2', { fport: 7, confirmed: true }), noIds]);

  assert.deepEqual([outcome.result.ok, outcome.accepted, outcome.duplicates, outcome.rejected], [true, 2, 0, 2]);
  const rows = await h.committed();
  assert.deepEqual(statuses(rows), [
    ['c-1', 'accepted'],
    ['c-3', 'rejected'],
    ['c-2', 'accepted'],
    [null, 'rejected'],
  ]);
  const [accepted, rejected, , anonymous] = rows;
  assert.deepEqual(accepted, {
    key: 'lamp-1',
    stream: RECEIPT_STREAM,
    source: 'commands',
    meta: { 'receipt-status': 'accepted', 'command-id': 'c-1' },
    value: { command_id: 'c-1', device_id: 'lamp-1', status: 'accepted', at: new Date(NOW).toISOString() },
  });
  assert.equal(rejected?.key, UNKNOWN_DEVICE_KEY);
  assert.equal(rejected?.meta['command-id'], 'c-3');
  assert.match(String(rejected?.value.reason), /^bad-device-id: device id "lamp\/3" is not valid/);
  assert.equal(anonymous?.key, UNKNOWN_DEVICE_KEY);
  assert.deepEqual(anonymous?.meta, { 'receipt-status': 'rejected' });
  assert.match(String(anonymous?.value.reason), /^missing-command-id: /);

  const stored = await h.state(COMMAND_SCOPE);
  assert.deepEqual([...stored.keys()].sort(), ['c-1', 'c-2']);
  for (const [id, text] of stored) assert.deepEqual(decodeCommand(id, text), h.queue.get(id));
  assert.deepEqual(h.queue.get('c-2'), {
    id: 'c-2',
    deviceId: 'lamp-2',
    name: 'dim',
    payload: Buffer.from('{"c-2":1}'),
    structured: false,
    fport: 7,
    confirmed: true,
    acceptedAtMs: NOW,
    expiresAtMs: NOW + 60_000,
    seq: 2,
    state: 'queued',
    attempts: 0,
  });
  assert.deepEqual(h.queued, ['lamp-1', 'lamp-2']);
  assert.equal(await h.metric('iotgw_commands_total', { status: 'accepted' }), 2);
  assert.equal(await h.metric('iotgw_commands_total', { status: 'rejected' }), 2);
  assert.equal(await h.metric('iotgw_commands_waiting', { state: 'queued' }), 2);
});

test('a duplicate id (in one batch, in a later batch, after it finished) is counted, not queued again, and commits nothing', async (t) => {
  const h = await setup(t);
  const first = await h.queue.intake([parsed('c-1', 'lamp-1'), parsed('c-1', 'lamp-1', { payload: Buffer.from('other') })]);
  assert.deepEqual([first.accepted, first.duplicates], [1, 1]);
  assert.deepEqual(h.queue.get('c-1')?.payload, Buffer.from('{"c-1":1}'));

  const again = await h.queue.intake([parsed('c-1', 'lamp-1')]);
  assert.deepEqual(again, { result: { ok: true, seqs: [] }, accepted: 0, duplicates: 1, rejected: 0 });
  assert.ok(await h.queue.finish('c-1', 'delivered', { path: 'mqtt' }));
  const afterFinish = await h.queue.intake([parsed('c-1', 'lamp-1'), parsed('c-2', 'lamp-1')]);
  assert.deepEqual([afterFinish.accepted, afterFinish.duplicates], [1, 1]);

  assert.deepEqual(ids(h.queue), ['c-2']);
  assert.deepEqual(statuses(await h.committed()), [
    ['c-1', 'accepted'],
    ['c-1', 'delivered'],
    ['c-2', 'accepted'],
  ]);
  assert.deepEqual(h.queued, ['lamp-1', 'lamp-1']);
  assert.equal(await h.metric('iotgw_commands_total', { status: 'duplicate' }), 3);
  assert.equal(await h.metric('iotgw_commands_total', { status: 'accepted' }), 2);
});

test('a command already expired when read gets an expired receipt, is not queued, and its id is remembered', async (t) => {
  const h = await setup(t);
  const outcome = await h.queue.intake([parsed('c-1', 'lamp-1', { expiresAtMs: NOW }), parsed('c-2', 'lamp-2', { expiresAtMs: NOW - 1 })]);
  assert.deepEqual([outcome.accepted, outcome.duplicates], [0, 0]);
  assert.deepEqual(ids(h.queue), []);
  assert.deepEqual(h.queued, []);
  const rows = await h.committed();
  assert.deepEqual(statuses(rows), [
    ['c-1', 'expired'],
    ['c-2', 'expired'],
  ]);
  assert.equal(rows[1]?.key, 'lamp-2');
  assert.match(String(rows[0]?.value.reason), /expired before the gateway read it/);
  assert.deepEqual((await h.state(COMMAND_SCOPE)).size, 0);
  assert.deepEqual([...(await h.state(COMMAND_DONE_SCOPE))].sort(), [
    ['c-1', String(NOW)],
    ['c-2', String(NOW)],
  ]);
  assert.equal((await h.queue.intake([parsed('c-1', 'lamp-1', { expiresAtMs: NOW + 1000 })])).duplicates, 1);
  assert.equal(await h.metric('iotgw_commands_total', { status: 'expired' }), 2);
});

test("past commands.max_queued_per_device the device's oldest command expires, with a receipt naming the bound", async (t) => {
  const h = await setup(t, { ...ROOMY, maxPerDevice: 2 });
  await h.queue.intake([parsed('a-1', 'lamp-1'), parsed('a-2', 'lamp-1'), parsed('b-1', 'lamp-2')]);
  await h.committed();
  await h.queue.intake([parsed('a-3', 'lamp-1')]);
  const rows = await h.committed();
  assert.deepEqual(statuses(rows), [
    ['a-3', 'accepted'],
    ['a-1', 'expired'],
  ]);
  assert.equal(rows[1]?.key, 'lamp-1');
  assert.match(String(rows[1]?.value.reason), /more than commands\.max_queued_per_device \(2\) commands waited for the device; the oldest expired/);
  assert.deepEqual(ids(h.queue), ['a-2', 'b-1', 'a-3']);
  assert.equal(h.queue.head('lamp-1')?.id, 'a-2');
  assert.equal(h.queue.head('lamp-2')?.id, 'b-1');
  assert.deepEqual([...(await h.state(COMMAND_SCOPE)).keys()].sort(), ['a-2', 'a-3', 'b-1']);
  assert.ok((await h.state(COMMAND_DONE_SCOPE)).has('a-1'));

  // Within one batch: the command accepted first in it is the one that goes.
  await h.queue.intake([parsed('x-1', 'lamp-3'), parsed('x-2', 'lamp-3'), parsed('x-3', 'lamp-3')]);
  assert.deepEqual(statuses(await h.committed()), [
    ['x-1', 'accepted'],
    ['x-2', 'accepted'],
    ['x-3', 'accepted'],
    ['x-1', 'expired'],
  ]);
  assert.equal((await h.state(COMMAND_SCOPE)).has('x-1'), false);
  assert.deepEqual((await h.reopen()).list(), h.queue.list());
});

test('past commands.max_queued the oldest command of all expires, whichever device it is for', async (t) => {
  const h = await setup(t, { ...ROOMY, maxTotal: 3 });
  await h.queue.intake([parsed('a-1', 'lamp-1'), parsed('b-1', 'lamp-2'), parsed('a-2', 'lamp-1')]);
  await h.committed();
  await h.queue.intake([parsed('c-1', 'lamp-3')]);
  const rows = await h.committed();
  assert.deepEqual(statuses(rows), [
    ['c-1', 'accepted'],
    ['a-1', 'expired'],
  ]);
  assert.match(String(rows[1]?.value.reason), /commands\.max_queued 3/);
  assert.deepEqual(ids(h.queue), ['b-1', 'a-2', 'c-1']);
  assert.deepEqual((await h.reopen()).list(), h.queue.list());
});

test('past commands.max_queued_bytes the oldest commands expire until the payloads fit', async (t) => {
  const h = await setup(t, { ...ROOMY, maxBytes: 10 });
  const bytes = (n: number) => ({ payload: Buffer.alloc(n, 1) });
  await h.queue.intake([parsed('a-1', 'lamp-1', bytes(4)), parsed('b-1', 'lamp-2', bytes(4))]);
  await h.committed();
  await h.queue.intake([parsed('c-1', 'lamp-3', bytes(4))]);
  const rows = await h.committed();
  assert.deepEqual(statuses(rows), [
    ['c-1', 'accepted'],
    ['a-1', 'expired'],
  ]);
  assert.match(String(rows[1]?.value.reason), /max_queued_bytes 10/);
  await h.queue.intake([parsed('d-1', 'lamp-4', bytes(9))]);
  assert.deepEqual(statuses(await h.committed()), [
    ['d-1', 'accepted'],
    ['b-1', 'expired'],
    ['c-1', 'expired'],
  ]);
  assert.deepEqual(ids(h.queue), ['d-1']);
});

test("a device's commands come out in intake order, across batches and devices", async (t) => {
  const h = await setup(t);
  await h.queue.intake([parsed('c-1', 'lamp-1'), parsed('x-1', 'lamp-2'), parsed('c-2', 'lamp-1')]);
  await h.queue.intake([parsed('c-3', 'lamp-1'), parsed('x-2', 'lamp-2')]);
  assert.deepEqual(h.queue.devices(), ['lamp-1', 'lamp-2']);
  const order: string[] = [];
  for (let head = h.queue.head('lamp-1'); head !== undefined; head = h.queue.head('lamp-1')) {
    order.push(head.id);
    assert.ok(await h.queue.finish(head.id, 'acked'));
  }
  assert.deepEqual(order, ['c-1', 'c-2', 'c-3']);
  assert.equal(h.queue.head('lamp-1'), undefined);
  assert.deepEqual(h.queue.devices(), ['lamp-2']);
  assert.equal(h.queue.head('lamp-2')?.id, 'x-1');
});

test('markSent commits the hand-over (state sent, attempts + 1), with a sent receipt unless told not to', async (t) => {
  const h = await setup(t);
  await h.queue.intake([parsed('c-1', 'lamp-1'), parsed('c-2', 'lamp-1')]);
  await h.committed();

  const sent = await h.queue.markSent('c-1', 'mqtt');
  assert.deepEqual([sent?.state, sent?.attempts], ['sent', 1]);
  assert.deepEqual(h.queue.get('c-1'), sent);
  const rows = await h.committed();
  assert.deepEqual(rows, [
    {
      key: 'lamp-1',
      stream: RECEIPT_STREAM,
      source: 'commands',
      meta: { 'receipt-status': 'sent', 'command-id': 'c-1' },
      value: { command_id: 'c-1', device_id: 'lamp-1', status: 'sent', at: new Date(NOW).toISOString(), path: 'mqtt', attempts: 1 },
    },
  ]);
  assert.deepEqual(decodeCommand('c-1', (await h.state(COMMAND_SCOPE)).get('c-1') ?? ''), sent);
  assert.equal(await h.metric('iotgw_commands_waiting', { state: 'sent' }), 1);
  assert.equal(await h.metric('iotgw_commands_waiting', { state: 'queued' }), 1);

  const quiet = await h.queue.markSent('c-1', 'lorawan', false);
  assert.deepEqual([quiet?.state, quiet?.attempts], ['sent', 2]);
  assert.deepEqual(await h.committed(), []);
  assert.equal(decodeCommand('c-1', (await h.state(COMMAND_SCOPE)).get('c-1') ?? '')?.attempts, 2);
  assert.equal(h.queue.head('lamp-1')?.id, 'c-1', 'a sent command stays the head until it ends');

  assert.equal(await h.queue.markSent('nope', 'mqtt'), null);
  assert.equal(await h.metric('iotgw_commands_total', { status: 'sent' }), 1);
});

test('finish removes the command with its final receipt and remembers the id; a second finish is refused', async (t) => {
  const h = await setup(t);
  await h.queue.intake([parsed('c-1', 'lamp-1'), parsed('c-2', 'lamp-2')]);
  await h.queue.markSent('c-1', 'mqtt', false);
  await h.committed();
  h.clock.ms = NOW + 500;

  assert.equal(await h.queue.finish('c-1', 'delivered', { path: 'mqtt' }), true);
  assert.equal(await h.queue.finish('c-2', 'failed', { path: 'mqtt', reason: 'the device refused it' }), true);
  const rows = await h.committed();
  assert.deepEqual(
    rows.map((row) => row.value),
    [
      { command_id: 'c-1', device_id: 'lamp-1', status: 'delivered', at: new Date(NOW + 500).toISOString(), path: 'mqtt', attempts: 1 },
      {
        command_id: 'c-2',
        device_id: 'lamp-2',
        status: 'failed',
        at: new Date(NOW + 500).toISOString(),
        reason: 'the device refused it',
        path: 'mqtt',
        attempts: 0,
      },
    ],
  );
  assert.deepEqual(ids(h.queue), []);
  assert.equal((await h.state(COMMAND_SCOPE)).size, 0);
  assert.deepEqual([...(await h.state(COMMAND_DONE_SCOPE))].sort(), [
    ['c-1', String(NOW + 500)],
    ['c-2', String(NOW + 500)],
  ]);
  assert.equal(await h.queue.finish('c-1', 'delivered'), false);
  assert.deepEqual(await h.committed(), []);
  assert.equal(await h.metric('iotgw_commands_total', { status: 'delivered' }), 1);
  assert.equal(await h.metric('iotgw_commands_total', { status: 'failed' }), 1);
  assert.equal(await h.metric('iotgw_commands_waiting', { state: 'sent' }), 0);
});

test('note commits a receipt for a step on the way and leaves the command as it was', async (t) => {
  const h = await setup(t);
  await h.queue.intake([parsed('c-1', 'lamp-1')]);
  await h.queue.markSent('c-1', 'lorawan', false);
  await h.committed();
  const before = h.queue.get('c-1');
  const storedBefore = (await h.state(COMMAND_SCOPE)).get('c-1');

  assert.equal(await h.queue.note('c-1', 'sent', { path: 'lorawan', reason: 'in the network server queue' }), true);
  assert.deepEqual(
    (await h.committed()).map((row) => row.value),
    [
      {
        command_id: 'c-1',
        device_id: 'lamp-1',
        status: 'sent',
        at: new Date(NOW).toISOString(),
        reason: 'in the network server queue',
        path: 'lorawan',
        attempts: 1,
      },
    ],
  );
  assert.deepEqual(h.queue.get('c-1'), before);
  assert.equal((await h.state(COMMAND_SCOPE)).get('c-1'), storedBefore);
  assert.equal(await h.queue.note('nope', 'sent'), false);
  assert.deepEqual(await h.committed(), []);
});

test('expireDue ends every command whose time is up, saying whether it had been sent', async (t) => {
  const h = await setup(t);
  await h.queue.intake([
    parsed('c-1', 'lamp-1', { expiresAtMs: NOW + 1000 }),
    parsed('c-2', 'lamp-2', { expiresAtMs: NOW + 1000 }),
    parsed('c-3', 'lamp-1', { expiresAtMs: NOW + 5000 }),
  ]);
  await h.queue.markSent('c-2', 'mqtt', false);
  await h.committed();

  h.clock.ms = NOW + 999;
  await h.queue.expireDue();
  assert.deepEqual(await h.committed(), []);
  h.clock.ms = NOW + 1000;
  await h.queue.expireDue();
  const rows = await h.committed();
  assert.deepEqual(
    rows.map((row) => [row.key, row.value.command_id, row.value.status, row.value.attempts]),
    [
      ['lamp-1', 'c-1', 'expired', 0],
      ['lamp-2', 'c-2', 'expired', 1],
    ],
  );
  assert.match(String(rows[0]?.value.reason), /before the device could be reached/);
  assert.match(String(rows[1]?.value.reason), /before the device acknowledged it/);
  assert.deepEqual(ids(h.queue), ['c-3']);
  assert.deepEqual([...(await h.state(COMMAND_SCOPE)).keys()], ['c-3']);
  assert.deepEqual([...(await h.state(COMMAND_DONE_SCOPE)).keys()].sort(), ['c-1', 'c-2']);
  await h.queue.expireDue();
  assert.deepEqual(await h.committed(), []);
});

test('after a restart a new queue over the same file has the same commands in the same order and remembers finished ids', async (t) => {
  const h = await setup(t);
  await h.queue.intake([parsed('c-1', 'lamp-1'), parsed('x-1', 'lamp-2'), parsed('c-2', 'lamp-1', { fport: 3, confirmed: true })]);
  await h.queue.intake([parsed('c-3', 'lamp-1'), parsed('x-2', 'lamp-2')]);
  await h.queue.markSent('c-1', 'mqtt');
  assert.ok(await h.queue.finish('x-1', 'delivered'));
  const before = h.queue.list();
  await h.store.close();

  const reopened = await openStore(t, h.store.path, h.logs, h.metrics);
  const queue = await h.reopen(reopened);
  assert.deepEqual(queue.list(), before);
  assert.deepEqual(queue.devices(), ['lamp-1', 'lamp-2']);
  assert.deepEqual([queue.head('lamp-1')?.id, queue.head('lamp-1')?.state, queue.head('lamp-2')?.id], ['c-1', 'sent', 'x-2']);
  assert.equal(await h.metric('iotgw_commands_waiting', { state: 'queued' }), 3);

  const outcome = await queue.intake([parsed('x-1', 'lamp-2'), parsed('c-1', 'lamp-1'), parsed('c-4', 'lamp-1')]);
  assert.deepEqual([outcome.accepted, outcome.duplicates], [1, 2]);
  const newest = queue.get('c-4');
  assert.ok(newest !== undefined && newest.seq > Math.max(...before.map((command) => command.seq)), 'seq goes on from the stored commands');
  assert.deepEqual(ids(queue), ['c-1', 'c-2', 'c-3', 'x-2', 'c-4']);
});

test('a stored command this version cannot read is skipped at load, with an error naming it', async (t) => {
  const h = await setup(t);
  await h.queue.intake([parsed('c-1', 'lamp-1')]);
  const written = await h.store.batcher.accept([], [{ scope: COMMAND_SCOPE, key: 'c-0', value: '{"device":' }]);
  assert.ok(written.ok);
  const queue = await h.reopen();
  assert.deepEqual(
    queue.list().map((command) => command.id),
    ['c-1'],
  );
  assert.ok(h.logs.lines().some((line) => line.level === 'error' && line.commandId === 'c-0' && /could not be read/.test(String(line.msg))));
});

test('a commit the buffer refuses (full) changes nothing: memory and store stay as they were, and the retry works', async (t) => {
  const h = await setup(t, ROOMY, { maxRecords: 3, whenFull: 'reject' });
  await h.queue.intake([parsed('c-1', 'lamp-1')]);
  assert.deepEqual(statuses(await h.committed()), [['c-1', 'accepted']]);
  const fill = await h.store.batcher.accept([filler(1), filler(2), filler(3)]);
  assert.ok(fill.ok, 'the buffer is now full');
  const listBefore = h.queue.list();
  const stateBefore = [...(await h.state(COMMAND_SCOPE))];
  const doneBefore = [...(await h.state(COMMAND_DONE_SCOPE))];
  const unchanged = async (what: string) => {
    assert.deepEqual(h.queue.list(), listBefore, `${what}: memory`);
    assert.deepEqual([...(await h.state(COMMAND_SCOPE))], stateBefore, `${what}: stored commands`);
    assert.deepEqual([...(await h.state(COMMAND_DONE_SCOPE))], doneBefore, `${what}: stored finished ids`);
    assert.deepEqual((await h.reopen()).list(), h.queue.list(), `${what}: memory equals the store`);
  };

  const refused = await h.queue.intake([parsed('c-2', 'lamp-1'), parsed('c-3', 'lamp-2', { expiresAtMs: NOW - 1 }), parsed('c-1', 'lamp-1')]);
  assert.equal(refused.result.ok, false);
  assert.equal(!refused.result.ok && refused.result.reason, 'buffer-full');
  assert.equal(refused.accepted, 0);
  await unchanged('intake');
  assert.deepEqual(h.queued, ['lamp-1'], 'no device is told of a command that was not committed');
  assert.equal(await h.queue.markSent('c-1', 'mqtt'), null);
  await unchanged('markSent');
  assert.equal(await h.queue.finish('c-1', 'delivered'), false);
  await unchanged('finish');
  assert.equal(await h.queue.note('c-1', 'sent'), false);
  h.clock.ms = NOW + 120_000;
  await h.queue.expireDue();
  await unchanged('expireDue');
  h.clock.ms = NOW;
  assert.ok(h.logs.messages().some((message) => /command change not committed: buffer full/.test(message)));
  assert.equal(await h.metric('iotgw_commands_total', { status: 'duplicate' }), 0, 'a batch that is read again is not counted twice');

  // Kafka hands the batch over again once the forwarder has made room: now it all happens, receipts included.
  const rows = await h.committed();
  assert.deepEqual(
    rows.map((row) => row.stream),
    ['telemetry', 'telemetry', 'telemetry'],
  );
  const retried = await h.queue.intake([parsed('c-2', 'lamp-1'), parsed('c-3', 'lamp-2', { expiresAtMs: NOW - 1 }), parsed('c-1', 'lamp-1')]);
  assert.deepEqual([retried.result.ok, retried.accepted, retried.duplicates], [true, 1, 1]);
  assert.deepEqual(statuses(await h.committed()), [
    ['c-2', 'accepted'],
    ['c-3', 'expired'],
  ]);
  assert.deepEqual(h.queued, ['lamp-1', 'lamp-1']);
  assert.ok(await h.queue.finish('c-1', 'delivered'));
  assert.deepEqual(statuses(await h.committed()), [['c-1', 'delivered']]);
  assert.deepEqual(ids(h.queue), ['c-2']);
});

test('a refused intake that would have evicted commands leaves every one of them waiting, as stored before', async (t) => {
  const h = await setup(t, { ...ROOMY, maxPerDevice: 1 }, { maxRecords: 2, whenFull: 'reject' });
  await h.queue.intake([parsed('c-1', 'lamp-1')]);
  await h.queue.markSent('c-1', 'mqtt');
  await h.committed();
  assert.ok((await h.store.batcher.accept([filler(1), filler(2)])).ok, 'the buffer is now full');
  const listBefore = h.queue.list();
  const stateBefore = [...(await h.state(COMMAND_SCOPE))];

  // c-2 evicts c-1, then c-3 evicts c-2 (added in the same batch): taking it back must end with c-2 gone again.
  const refused = await h.queue.intake([parsed('c-2', 'lamp-1'), parsed('c-3', 'lamp-1')]);
  assert.equal(!refused.result.ok && refused.result.reason, 'buffer-full');
  assert.deepEqual(h.queue.list(), listBefore);
  assert.deepEqual([...(await h.state(COMMAND_SCOPE))], stateBefore);
  assert.equal((await h.state(COMMAND_DONE_SCOPE)).size, 0);
  assert.deepEqual([h.queue.get('c-1')?.state, h.queue.get('c-1')?.attempts], ['sent', 1]);
});

test('a commit refused because the gateway is shutting down changes nothing either', async (t) => {
  const h = await setup(t);
  await h.queue.intake([parsed('c-1', 'lamp-1')]);
  await h.committed();
  await h.store.batcher.close();
  const refused = await h.queue.intake([parsed('c-2', 'lamp-1')]);
  assert.equal(!refused.result.ok && refused.result.reason, 'shutting-down');
  assert.equal(await h.queue.finish('c-1', 'delivered'), false);
  assert.deepEqual(ids(h.queue), ['c-1']);
  assert.deepEqual([...(await h.state(COMMAND_SCOPE)).keys()], ['c-1']);
  assert.equal((await h.state(COMMAND_DONE_SCOPE)).size, 0);
  assert.deepEqual(await h.committed(), []);
});

test('commands finished before a restart stay duplicates after it', async (t) => {
  const h = await setup(t);
  await h.queue.intake([parsed('c-1', 'lamp-1', { expiresAtMs: NOW - 1 }), parsed('c-2', 'lamp-1')]);
  assert.ok(await h.queue.finish('c-2', 'cancelled', { reason: 'replaced' }));
  await h.store.close();
  const queue = await h.reopen(await openStore(t, h.store.path, h.logs, h.metrics));
  const outcome = await queue.intake([parsed('c-1', 'lamp-1'), parsed('c-2', 'lamp-1')]);
  assert.deepEqual([outcome.accepted, outcome.duplicates], [0, 2]);
  assert.deepEqual(queue.list(), [] as Command[]);
});

test('on a full disk (a real 256 KiB tmpfs) an intake commits nothing and changes nothing; it works again once there is space', async (t) => {
  const mountPoint = mkdtempSync(join(tmpdir(), 'iotgw-commands-full-disk-'));
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mountPoint], { encoding: 'utf8' });
  assert.equal(mount.status, 0, `this test mounts a 256 KiB tmpfs to fill a real disk and needs root (CAP_SYS_ADMIN): ${mount.stderr}`);
  t.after(() => {
    spawnSync('umount', ['-l', mountPoint]);
    rmSync(mountPoint, { recursive: true, force: true });
  });
  const logs = captureLog();
  const metrics = createMetrics({ processMetrics: false });
  const store = await openStore(t, join(mountPoint, 'buffer.db'), logs, metrics);
  const make = (): CommandQueue =>
    createCommandQueue(ROOMY, { accept: store.batcher.accept, loadState: (scope) => store.buffer.readState(scope), log: logs.log, metrics, nowMs: () => NOW });
  const queue = make();
  await queue.load();

  let accepted = 0;
  let refused: Awaited<ReturnType<CommandQueue['intake']>> | null = null;
  for (let round = 0; round < 500 && refused === null; round += 1) {
    const outcome = await queue.intake([parsed(`c-${round}`, `lamp-${round % 5}`, { payload: Buffer.alloc(2000, 0x61) })]);
    if (outcome.result.ok) accepted += 1;
    else refused = outcome;
  }
  assert.ok(refused !== null && !refused.result.ok, 'the disk filled up');
  assert.equal(refused.result.ok ? '' : refused.result.reason, 'disk-full');
  const failedId = `c-${accepted}`;
  assert.equal(queue.get(failedId), undefined, 'the refused command is not waiting in memory');
  assert.equal(queue.list().length, accepted);
  const stored = await store.buffer.readState(COMMAND_SCOPE);
  assert.equal(stored.size, accepted, 'nor in the store');
  assert.equal(stored.has(failedId), false);

  assert.equal(spawnSync('mount', ['-o', 'remount,size=8m', mountPoint]).status, 0);
  const again = await queue.intake([parsed(failedId, 'lamp-0', { payload: Buffer.alloc(2000, 0x61) })]);
  assert.ok(again.result.ok, 'the same command is taken once there is space (Kafka hands it over again)');
  assert.equal((await queue.markSent(failedId, 'mqtt'))?.state, 'sent');
  const reread = make();
  await reread.load();
  assert.deepEqual(
    reread.list().map((command) => [command.id, command.state]),
    queue.list().map((command) => [command.id, command.state]),
    'memory and store agree',
  );
});
