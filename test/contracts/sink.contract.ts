// The Sink contract: what the forwarder relies on from whatever it delivers to, checked against each
// implementation (after aedes-persistence abstract.js): the Kafka sink over the mock cluster, and the scripted
// sink the forwarder tests use in its place. A destination's failure modes are capabilities of the harness
// (outage, silence, refusal), declared with the suite: a check needing one the harness does not declare is not
// part of that suite (no skipped tests), and a declared one it then lacks fails. A check an implementation is
// known to fail runs as a todo with the reason, so the gap shows in every run without failing it.
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Sink, SinkError } from '../../src/forward/sink.ts';
import { HEADER } from '../../src/record/kafka-envelope.ts';
import type { StoredRecord } from '../../src/record/record.ts';

/** What the contract asks of the factory: every record the contract sends goes to `topic`. */
export interface SinkSetup {
  readonly gatewayId: string;
  readonly topic: string;
}

/** A record as a consumer of the destination reads it. */
export interface DeliveredRecord {
  readonly key: string | null;
  readonly value: Buffer | null;
  readonly timestampMs: number;
  readonly headers: Readonly<Record<string, string>>;
  /** Where the destination has partitions: the record's. */
  readonly partition?: number;
}

export interface SinkUnderTest {
  readonly sink: Sink;
  /** What the destination holds in the topic, in arrival order, waiting up to timeoutMs for at least `count`. */
  read(count: number, timeoutMs: number): Promise<readonly DeliveredRecord[]>;
  /** How many records a consumer could read from the topic now, without waiting (Kafka: the high watermarks). */
  heldNow(): Promise<number>;
  /** The destination refuses connections (Kafka: every broker down), then takes them again. */
  readonly outage?: { down(): Promise<void>; up(): Promise<void> };
  /** The destination takes connections and requests but answers none (Kafka: responses held back), then answers again. */
  readonly silence?: { begin(): Promise<void>; end(): Promise<void> };
  /**
   * The destination will refuse the next batch for good, as Kafka refuses a record over message.max.bytes
   * (1048588 by default). For destinations that do not check the size themselves (the mock cluster).
   */
  readonly refusal?: { arm(): Promise<void> };
}

export type OpenSink = (t: TestContext, setup: SinkSetup) => Promise<SinkUnderTest>;

export type SinkCheck =
  | 'empty-send'
  | 'envelope'
  | 'order-per-key'
  | 'held-on-resolve'
  | 'start-while-unreachable'
  | 'connect-unreachable'
  | 'connect-unreachable-after-connected'
  | 'send-unreachable'
  | 'connect-clears-degraded'
  | 'send-silent'
  | 'connect-silent'
  | 'recover-after-silent-connect'
  | 'refused-for-good'
  | 'stop-and-restart';

export interface SinkContractOptions {
  /** A call while the destination refuses or ignores it must settle within this (the factory sets small timeouts). */
  readonly callBudgetMs: number;
  /** Once the destination is back, sends retried as the forwarder does must succeed within this. */
  readonly recoveryBudgetMs: number;
  /** The destination's failure modes this harness can stage; the checks that need others are left out. */
  readonly capabilities: readonly Capability[];
  /** Checks this implementation is known to fail, with why: they run as todo. */
  readonly knownGaps?: Readonly<Partial<Record<SinkCheck, string>>>;
}

type Capability = 'outage' | 'silence' | 'refusal';

const SETUP: SinkSetup = { gatewayId: 'gw-contract', topic: 'contract.records' };
/** Over Kafka's default message.max.bytes (1048588), so a real cluster refuses it too. */
const OVERSIZED_PAYLOAD_BYTES = 1_100_000;
const READ_TIMEOUT_MS = 30_000;
const RECEIVED_AT_MS = Date.parse('2026-11-23T10:00:00.000Z');

export function contractRecord(seq: number, key: string, payload: Uint8Array = Buffer.from(`{"seq":${seq}}`)): StoredRecord {
  return {
    seq,
    id: `0123456789ab-${seq}`,
    key,
    stream: 'telemetry',
    source: 'mqtt',
    receivedAtMs: RECEIVED_AT_MS + seq,
    // Distinct from the receive time, so a sink that stamps the wrong one is caught.
    eventTimeMs: RECEIVED_AT_MS - 60_000 + seq,
    payload,
    meta: { n: String(seq), 'mqtt-topic': `devices/${key}/up` },
    attempts: 0,
  };
}

/** The error a sink call must reject with: a SinkError (anything else ends the process), with a stable code. */
function assertSinkError(error: unknown, retriable: boolean, what: string): asserts error is SinkError {
  assert.ok(error instanceof SinkError, `${what}: rejects with a SinkError, got ${String(error)}`);
  assert.equal(error.retriable, retriable, `${what}: retriable is ${retriable} (${error.code}: ${error.message})`);
  assert.match(error.code, /^[A-Z][A-Z0-9_]*$/, `${what}: code is UPPER_SNAKE`);
  assert.notEqual(error.message, '', `${what}: the message says what failed`);
}

type Settled = { readonly ok: true } | { readonly ok: false; readonly error: unknown };

/** Waits for a call to resolve or reject; a call still pending after budgetMs fails the check (it would stall the forwarder). */
async function settled(call: Promise<void>, budgetMs: number, what: string): Promise<Settled> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), budgetMs);
  });
  try {
    const outcome = await Promise.race([
      call.then(
        (): Settled => ({ ok: true }),
        (error: unknown): Settled => ({ ok: false, error }),
      ),
      timedOut,
    ]);
    assert.notEqual(outcome, 'timeout', `${what} still pending after ${budgetMs} ms`);
    return outcome as Settled;
  } finally {
    clearTimeout(timer);
  }
}

async function rejectsWithin(call: Promise<void>, budgetMs: number, retriable: boolean, what: string): Promise<SinkError> {
  const outcome = await settled(call, budgetMs, what);
  assert.ok(!outcome.ok, `${what} resolved; it must reject`);
  assertSinkError(outcome.error, retriable, what);
  return outcome.error;
}

/** Sends as the forwarder retries a batch: again after each retriable failure, until it goes through. */
async function sendEventually(sink: Sink, records: readonly StoredRecord[], budgetMs: number, what: string): Promise<void> {
  const deadline = Date.now() + budgetMs;
  let last: SinkError | null = null;
  while (Date.now() < deadline) {
    const outcome = await settled(sink.send(records), budgetMs, what);
    if (outcome.ok) return;
    assertSinkError(outcome.error, true, `${what} (a failure before recovery)`);
    last = outcome.error;
    await sleep(100);
  }
  assert.fail(`${what}: still failing after ${budgetMs} ms: ${last?.code}: ${last?.message}`);
}

function assertDegraded(sink: Sink, what: string): void {
  const health = sink.health();
  assert.equal(health.status, 'degraded', `${what}: health is degraded, got ${JSON.stringify(health)}`);
  assert.ok(health.detail !== undefined && health.detail !== '', `${what}: health says why`);
}

export function sinkContract(name: string, open: OpenSink, options: SinkContractOptions): void {
  const check = (id: SinkCheck, title: string, needs: readonly Capability[], body: (under: SinkUnderTest) => Promise<void>): void => {
    if (!needs.every((capability) => options.capabilities.includes(capability))) return;
    const gap = options.knownGaps?.[id];
    test(`${name}: ${title}`, gap === undefined ? {} : { todo: gap }, async (t) => {
      const under = await open(t, SETUP);
      const missing = needs.filter((capability) => under[capability] === undefined);
      assert.deepEqual(missing, [], `the harness declares ${missing.join(', ')} but does not provide it`);
      await body(under);
    });
  };
  const outageOf = (under: SinkUnderTest) => under.outage as NonNullable<SinkUnderTest['outage']>;
  const silenceOf = (under: SinkUnderTest) => under.silence as NonNullable<SinkUnderTest['silence']>;

  check('empty-send', 'send of no records resolves and writes nothing', [], async ({ sink, heldNow }) => {
    await sink.start();
    await sink.send([]);
    assert.equal(await heldNow(), 0);
  });

  check('envelope', 'a record arrives keyed by device id, bytes unchanged, stamped with event time, with the gateway headers', [], async ({ sink, read }) => {
    const binary = contractRecord(1, 'meter-1', Buffer.from([0x00, 0xff, 0x80, 0x7f, 0x0d, 0x0a]));
    // An empty value must stay empty: a null value is a tombstone on a compacted topic.
    const empty = contractRecord(2, 'meter-1', new Uint8Array(0));
    await sink.start();
    await sink.send([binary, empty]);
    const delivered = await read(2, READ_TIMEOUT_MS);
    assert.equal(delivered.length, 2);
    const [first, second] = delivered as [DeliveredRecord, DeliveredRecord];
    assert.equal(first.key, 'meter-1');
    assert.deepEqual(first.value, Buffer.from([0x00, 0xff, 0x80, 0x7f, 0x0d, 0x0a]));
    assert.equal(first.timestampMs, binary.eventTimeMs);
    assert.deepEqual(first.headers, {
      n: '1',
      'mqtt-topic': 'devices/meter-1/up',
      [HEADER.recordId]: '0123456789ab-1',
      [HEADER.source]: 'mqtt',
      [HEADER.gatewayId]: SETUP.gatewayId,
      [HEADER.stream]: 'telemetry',
      [HEADER.receivedAt]: '2026-11-23T10:00:00.001Z',
      [HEADER.eventTime]: '2026-11-23T09:59:00.001Z',
    });
    assert.equal(second.headers[HEADER.recordId], '0123456789ab-2');
    assert.deepEqual(second.value, Buffer.alloc(0), 'an empty payload arrives as an empty value, not null');
  });

  check('order-per-key', 'records of one key arrive once each, in send order, over several sends (and on one partition)', [], async ({ sink, read }) => {
    const keys = ['meter-1', 'meter-2', 'lamp-7', 'parking-3'];
    const records = Array.from({ length: 60 }, (_, index) => contractRecord(index + 1, keys[index % keys.length] as string));
    await sink.start();
    for (const batch of [records.slice(0, 20), records.slice(20, 40), records.slice(40)]) await sink.send(batch);
    const delivered = await read(records.length, READ_TIMEOUT_MS);
    assert.equal(delivered.length, records.length);
    assert.equal(new Set(delivered.map((record) => record.headers[HEADER.recordId])).size, records.length, 'each record once');
    for (const key of keys) {
      const ofKey = delivered.filter((record) => record.key === key);
      assert.deepEqual(
        ofKey.map((record) => record.headers[HEADER.recordId]),
        records.filter((record) => record.key === key).map((record) => record.id),
        `order of ${key}`,
      );
      if (ofKey[0]?.partition !== undefined) assert.equal(new Set(ofKey.map((record) => record.partition)).size, 1, `${key} stays on one partition`);
    }
  });

  check('held-on-resolve', 'when send resolves, a consumer can already read every record (acks from all in-sync replicas)', [], async ({ sink, heldNow }) => {
    // Kafka's high watermark moves only once every in-sync replica has a record. The mock replicates at once, so
    // here this cannot tell acks=1 from acks=all; 'send-silent' shows that send waits for the broker's answer.
    await sink.start();
    await sink.send([contractRecord(1, 'meter-1')]);
    await sink.send([2, 3, 4, 5, 6].map((seq) => contractRecord(seq, `meter-${seq % 2}`)));
    assert.equal(await heldNow(), 6);
  });

  check('start-while-unreachable', 'start() resolves while the destination is down (the gateway boots during an outage)', ['outage'], async (under) => {
    await outageOf(under).down();
    const outcome = await settled(under.sink.start(), options.callBudgetMs, 'start() during an outage');
    assert.ok(outcome.ok, `start() during an outage rejected: ${String(!outcome.ok && outcome.error)}`);
  });

  check(
    'connect-unreachable',
    'connect() and send() of a sink that never reached the destination reject, retriable, while it is down',
    ['outage'],
    async (under) => {
      const { sink } = under;
      await outageOf(under).down();
      await sink.start();
      await rejectsWithin(sink.connect(), options.callBudgetMs, true, 'connect() while down');
      assertDegraded(sink, 'after a failed connect');
      await rejectsWithin(sink.send([contractRecord(1, 'meter-1')]), options.callBudgetMs, true, 'send() while down');
      await outageOf(under).up();
      await sendEventually(sink, [contractRecord(2, 'meter-1')], options.recoveryBudgetMs, 'send() after the destination returned');
      assert.equal(sink.health().status, 'ok');
    },
  );

  check(
    'connect-unreachable-after-connected',
    'connect() of a sink that was connected rejects, retriable, once the destination is down',
    ['outage'],
    async (under) => {
      const { sink } = under;
      await sink.start();
      await sink.connect();
      await outageOf(under).down();
      await rejectsWithin(sink.connect(), options.callBudgetMs, true, 'connect() while down');
    },
  );

  check(
    'send-unreachable',
    'send() rejects, retriable, while the destination is down; health is degraded with a detail, and ok after the next send goes through',
    ['outage'],
    async (under) => {
      const { sink, heldNow } = under;
      await sink.start();
      await sink.send([contractRecord(1, 'meter-1')]);
      assert.equal(sink.health().status, 'ok');
      await outageOf(under).down();
      await rejectsWithin(sink.send([contractRecord(2, 'meter-1')]), options.callBudgetMs, true, 'send() while down');
      assertDegraded(sink, 'while down');
      await outageOf(under).up();
      await sendEventually(sink, [contractRecord(3, 'meter-1')], options.recoveryBudgetMs, 'send() after the destination returned');
      assert.equal(sink.health().status, 'ok');
      assert.ok((await heldNow()) >= 2);
    },
  );

  check('connect-clears-degraded', 'once the destination is back, a successful connect() makes health ok again', ['outage'], async (under) => {
    const { sink } = under;
    await sink.start();
    await outageOf(under).down();
    await rejectsWithin(sink.connect(), options.callBudgetMs, true, 'connect() while down');
    assertDegraded(sink, 'while down');
    await outageOf(under).up();
    await sink.connect();
    assert.deepEqual(sink.health().status, 'ok', `health after a successful connect(): ${JSON.stringify(sink.health())}`);
  });

  check(
    'send-silent',
    'send() to a destination that does not answer rejects, retriable, within its timeouts (never resolves unacknowledged, never hangs)',
    ['silence'],
    async (under) => {
      const { sink, heldNow } = under;
      await sink.start();
      await sink.send([contractRecord(1, 'meter-1')]);
      await silenceOf(under).begin();
      await rejectsWithin(sink.send([contractRecord(2, 'meter-1')]), options.callBudgetMs, true, 'send() while the destination is silent');
      assertDegraded(sink, 'while silent');
      await silenceOf(under).end();
      await sendEventually(sink, [contractRecord(3, 'meter-1')], options.recoveryBudgetMs, 'send() after the destination answers again');
      assert.ok((await heldNow()) >= 2);
    },
  );

  check('connect-silent', 'connect() to a destination that does not answer rejects, retriable, within its timeouts', ['silence'], async (under) => {
    await silenceOf(under).begin();
    await under.sink.start();
    await rejectsWithin(under.sink.connect(), options.callBudgetMs, true, 'connect() while the destination is silent');
  });

  check(
    'recover-after-silent-connect',
    'a sink that first tried to connect while the destination was silent sends once it answers',
    ['silence'],
    async (under) => {
      const { sink, heldNow } = under;
      await silenceOf(under).begin();
      await sink.start();
      // Either outcome is the other checks' business; it must settle.
      await settled(sink.connect(), options.callBudgetMs, 'connect() while the destination is silent');
      await silenceOf(under).end();
      await sendEventually(sink, [contractRecord(1, 'meter-1')], options.recoveryBudgetMs, 'send() after the destination answers again');
      assert.equal(await heldNow(), 1);
    },
  );

  check(
    'refused-for-good',
    'a record the destination refuses for good (over its size limit) rejects as not retriable; the sink goes on',
    ['refusal'],
    async (under) => {
      const { sink, heldNow } = under;
      await sink.start();
      await sink.send([contractRecord(1, 'meter-1')]);
      await (under.refusal as NonNullable<SinkUnderTest['refusal']>).arm();
      await rejectsWithin(
        sink.send([contractRecord(2, 'meter-1', Buffer.alloc(OVERSIZED_PAYLOAD_BYTES, 0x61))]),
        options.callBudgetMs,
        false,
        'send() of an oversized record',
      );
      assert.equal(await heldNow(), 1, 'the refused record is not held');
      await sink.send([contractRecord(3, 'meter-1')]);
      assert.equal(await heldNow(), 2);
    },
  );

  check(
    'stop-and-restart',
    'stop() is idempotent, even before start(); a stopped sink is not ok; start and connect make it send again',
    [],
    async ({ sink, heldNow }) => {
      await sink.stop();
      await sink.start();
      await sink.connect();
      assert.equal(sink.health().status, 'ok');
      await sink.send([contractRecord(1, 'meter-1')]);
      await sink.stop();
      await sink.stop();
      assert.notEqual(sink.health().status, 'ok', 'a stopped sink does not report ok');
      await sink.start();
      await sink.connect();
      assert.equal(sink.health().status, 'ok');
      await sink.send([contractRecord(2, 'meter-1')]);
      assert.equal(await heldNow(), 2);
    },
  );
}
