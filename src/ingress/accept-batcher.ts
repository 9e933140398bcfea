// Group commit: accepts that arrive within `commitIntervalMs` (or while the previous commit is being
// fsynced, or until `commitMaxRecords` wait) are written in one SQLite transaction, so durability costs
// one fsync per batch instead of one per record. Each caller is answered only after that commit.
// It is the one door into the buffer: records are marked here while the clock is unsynchronized, and
// every commit is announced to its listeners (the forwarder wakes, the status page counts devices).
import { BufferFullError, GatewayError, errorMessage } from '../errors.ts';
import type { AppendOutcome, RecordBuffer, StateWrite } from '../buffer/record-buffer.ts';
import type { Component } from '../core/lifecycle.ts';
import type { Logger } from '../core/log.ts';
import type { Metrics } from '../core/metrics.ts';
import type { NewRecord, RecordSource } from '../record/record.ts';
import type { Accept, AcceptDone, AcceptRefusal, AcceptResult, AcceptThen } from './ingress.ts';

export interface AcceptBatcherOptions {
  /** 0 commits on the next turn of the event loop; more trades latency for bigger batches. */
  readonly commitIntervalMs: number;
  readonly commitMaxRecords: number;
}

export interface AcceptBatcherDeps {
  readonly buffer: RecordBuffer;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Whether the wall clock is NTP-synchronized: until it is, records get meta `clock: unsynchronized` (no RTC on a Pi). */
  readonly clock?: { isTrusted(): boolean };
  /** Told of the records of each accept once they are committed, in commit order. */
  readonly onCommitted?: readonly ((records: readonly NewRecord[]) => void)[];
}

/** A component (start: nothing to open; stop: close) so stopping the ways in also commits what they accepted. */
export interface AcceptBatcher extends Component {
  readonly accept: Accept;
  /** The same door without a promise, for the per-publish path (MQTT). */
  readonly acceptThen: AcceptThen;
  /** Commits everything waiting now, including what arrives while a commit is in flight (used at shutdown). */
  flush(): Promise<void>;
  /** Commits what is waiting, then refuses every later accept with 'shutting-down'. */
  close(): Promise<void>;
}

/**
 * The accepts gathered for one commit, as parallel arrays (index = accept), so an accept adds no object of
 * its own: under load thousands wait at once, and whatever they hold survives young-generation scavenges.
 */
interface Group {
  /** Each accept's records: buffer.append's groups, as they are. */
  readonly records: (readonly NewRecord[])[];
  readonly done: AcceptDone[];
  /** Every accept's state writes, in accept order. */
  readonly state: StateWrite[];
}

const SHUTTING_DOWN: AcceptResult = Object.freeze({ ok: false, reason: 'shutting-down', message: 'the gateway is shutting down' });
const NOTHING_TO_COMMIT: AcceptResult = Object.freeze({ ok: true, seqs: Object.freeze([]) });

function emptyGroup(): Group {
  return { records: [], done: [], state: [] };
}

export function createAcceptBatcher(options: AcceptBatcherOptions, deps: AcceptBatcherDeps): AcceptBatcher {
  const log = deps.log.child({ component: 'buffer.commit' });
  const { metrics } = deps;
  const listeners = deps.onCommitted ?? [];
  let waiting = emptyGroup();
  let waitingRecords = 0;
  let timer: NodeJS.Timeout | NodeJS.Immediate | null = null;
  /** One commit in flight at a time; accepts arriving meanwhile form the next group. */
  let committing: Promise<void> | null = null;
  let closed = false;
  /** The refusal currently in effect, so a full buffer is logged when it starts and ends, not per record. */
  let refusing: AcceptRefusal | null = null;
  /** Records accepted per source in the commit being answered: one map reused, as sources are few. */
  const acceptedBySource = new Map<RecordSource, number>();

  function schedule(): void {
    if (timer !== null || committing !== null) return;
    timer = options.commitIntervalMs === 0 ? setImmediate(startCommit) : setTimeout(startCommit, options.commitIntervalMs);
  }

  function clearTimer(): void {
    if (timer === null) return;
    clearTimeout(timer as NodeJS.Timeout);
    clearImmediate(timer as NodeJS.Immediate);
    timer = null;
  }

  function startCommit(): void {
    clearTimer();
    if (committing !== null || waiting.done.length === 0) return;
    const batch = waiting;
    waiting = emptyGroup();
    waitingRecords = 0;
    committing = commit(batch).finally(() => {
      committing = null;
      // Whatever arrived during the commit has waited long enough: commit it at once.
      if (waiting.done.length > 0) startCommit();
    });
  }

  async function commit(batch: Group): Promise<void> {
    const startedAt = performance.now();
    let outcomes: readonly AppendOutcome[];
    try {
      outcomes = await deps.buffer.append(batch.records, batch.state);
    } catch (error) {
      const reason: AcceptRefusal = error instanceof BufferFullError ? 'disk-full' : 'storage-error';
      metrics.bufferCommitFailures.inc({ code: error instanceof GatewayError ? error.code : 'UNKNOWN' });
      enterRefusal(reason, errorMessage(error));
      const refused: AcceptResult = { ok: false, reason, message: errorMessage(error) };
      answerAll(batch.done, refused);
      return;
    }
    metrics.bufferCommits.inc();
    metrics.bufferCommitSeconds.observe((performance.now() - startedAt) / 1000);

    acceptedBySource.clear();
    let committed = 0;
    let fullMessage: string | null = null;
    /** A callback that threw is a bug that ends the process (the commit's promise rejects), but only after every other accept of the commit was answered. */
    let thrown: { readonly error: unknown } | null = null;
    for (let index = 0; index < batch.done.length; index++) {
      const records = batch.records[index] as readonly NewRecord[];
      const done = batch.done[index] as AcceptDone;
      const outcome = outcomes[index];
      try {
        if (outcome?.ok === true) {
          committed += records.length;
          for (const record of records) acceptedBySource.set(record.source, (acceptedBySource.get(record.source) ?? 0) + 1);
          if (records.length > 0) for (const listener of listeners) listener(records);
          done(outcome); // the buffer's own { ok, seqs } is the result: no copy per accept
        } else {
          fullMessage = outcome?.error.message ?? 'buffer refused the records';
          done({ ok: false, reason: 'buffer-full', message: fullMessage });
        }
      } catch (error) {
        thrown ??= { error };
      }
    }
    metrics.bufferCommitRecords.observe(committed);
    for (const [source, count] of acceptedBySource) metrics.ingressAccepted.inc({ source }, count);
    if (fullMessage !== null) enterRefusal('buffer-full', fullMessage);
    else if (committed > 0) leaveRefusal();
    if (thrown !== null) throw thrown.error;
  }

  /** Answers every callback, even past one that throws; then rethrows the first throw (a bug: the process ends). */
  function answerAll(callbacks: readonly AcceptDone[], result: AcceptResult): void {
    let thrown: { readonly error: unknown } | null = null;
    for (const done of callbacks) {
      try {
        done(result);
      } catch (error) {
        thrown ??= { error };
      }
    }
    if (thrown !== null) throw thrown.error;
  }

  function enterRefusal(reason: AcceptRefusal, message: string): void {
    if (refusing === reason) return;
    refusing = reason;
    log.error({ reason }, `refusing new records: ${message}`);
  }

  function leaveRefusal(): void {
    if (refusing === null) return;
    log.info({ previous: refusing }, 'accepting new records again');
    refusing = null;
  }

  async function flush(): Promise<void> {
    clearTimer();
    while (committing !== null || waiting.done.length > 0) {
      if (committing === null) startCommit();
      await committing;
    }
  }

  const acceptThen: AcceptThen = (records, state, done) => {
    if (closed) {
      done(SHUTTING_DOWN);
      return;
    }
    if (records.length === 0 && (state === undefined || state.length === 0)) {
      done(NOTHING_TO_COMMIT);
      return;
    }
    waiting.records.push(deps.clock === undefined || deps.clock.isTrusted() ? records : records.map(markUnsynchronized));
    waiting.done.push(done);
    if (state !== undefined) for (const write of state) waiting.state.push(write);
    waitingRecords += records.length;
    if (waitingRecords >= options.commitMaxRecords) startCommit();
    else schedule();
  };

  const accept: Accept = (records, state) => new Promise<AcceptResult>((resolve) => acceptThen(records, state, resolve));

  async function close(): Promise<void> {
    closed = true;
    await flush();
  }

  return {
    name: 'ingress.commit',
    accept,
    acceptThen,
    flush,
    close,
    start: async () => {
      closed = false;
    },
    stop: close,
    health: () => ({ status: 'ok' }),
  };
}

function markUnsynchronized(record: NewRecord): NewRecord {
  return { ...record, meta: { ...record.meta, clock: 'unsynchronized' } };
}
