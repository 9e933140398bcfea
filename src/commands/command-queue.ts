// The commands waiting for their devices: in memory for the delivery, and in the buffer's state table for
// restarts. Every change is committed together with its receipt (one accept: the state row and the receipt
// record in one transaction), and a failed commit reloads memory from the store, so a crash leaves the queue
// and the receipts agreeing. Changes run one at a time (exclusive): a command is never sent before its intake
// committed. The hand-overs, outcomes and notes of many devices asked for meanwhile share one commit (batched).
// Bounded: per device, in total and in payload bytes; past a bound the oldest command expires, with a receipt.
// Finished command ids are remembered (DONE_* bounds) so a Kafka message read again is not sent twice.
import type { StateWrite } from '../buffer/record-store.ts';
import { createOnceLogger, type Logger } from '../core/log.ts';
import type { Metrics } from '../core/metrics.ts';
import type { Accept, AcceptResult, LoadState } from '../ingress/ingress.ts';
import type { NewRecord } from '../record/record.ts';
import { COMMAND_DONE_SCOPE, COMMAND_SCOPE, type Command, decodeCommand, deviceKey, encodeCommand } from './command.ts';
import type { ParseResult } from './command-message.ts';
import { type Receipt, type ReceiptStatus, receiptRecord } from './receipt.ts';

export interface CommandQueueOptions {
  readonly maxPerDevice: number;
  readonly maxTotal: number;
  readonly maxBytes: number;
}

export interface CommandQueueDeps {
  readonly accept: Accept;
  readonly loadState: LoadState;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly nowMs?: () => number;
}

export type FinalStatus = Extract<ReceiptStatus, 'delivered' | 'acked' | 'sent' | 'expired' | 'failed' | 'cancelled'>;

export interface IntakeOutcome {
  readonly result: AcceptResult;
  readonly accepted: number;
  readonly duplicates: number;
  readonly rejected: number;
}

export interface CommandQueue {
  /** Reads the waiting commands and finished ids back from the store (at start). */
  load(): Promise<void>;
  /** Commits the commands (and receipts) of one fetched batch; nothing is applied when the commit fails. */
  intake(results: readonly ParseResult[]): Promise<IntakeOutcome>;
  /** The device's next command (oldest first), or undefined. */
  head(deviceId: string): Command | undefined;
  /** Devices with waiting commands. */
  devices(): readonly string[];
  /**
   * Commits a hand-over to `path` (state sent, attempts + 1), with a `sent` receipt when `receipt`; null when
   * the command is gone (expired, cancelled).
   */
  markSent(id: string, path: string, receipt?: boolean): Promise<Command | null>;
  /** Ends a command with its final receipt; false when it was already gone. */
  finish(id: string, status: FinalStatus, detail?: { readonly reason?: string; readonly path?: string }): Promise<boolean>;
  /** Commits a receipt for a step on the way (the command is unchanged); false when it is gone. */
  note(id: string, status: Extract<ReceiptStatus, 'sent'>, detail?: { readonly reason?: string; readonly path?: string }): Promise<boolean>;
  /** Ends every command whose time is up. */
  expireDue(): Promise<void>;
  list(): readonly Command[];
  get(id: string): Command | undefined;
  /** Told of each device that got a new command (after its commit). */
  onQueued(listener: (deviceId: string) => void): void;
  /** Resolves when the changes asked for so far are done (stop). */
  idle(): Promise<void>;
}

/** Finished ids remembered for duplicate detection: at most this many, and at most this long. */
export const DONE_MAX_ENTRIES = 100_000;
export const DONE_MAX_AGE_MS = 7 * 24 * 3600 * 1000;

/**
 * A change's state writes and, for each, the write that puts back what it replaced. A commit whose receipts the
 * buffer refused (full) still writes its state (see RecordStore.append): committing `undo`, last first, takes
 * the change back, so no command is queued, sent or ended without its receipt.
 */
interface Change {
  readonly writes: StateWrite[];
  readonly undo: StateWrite[];
}

function write(change: Change, scope: string, key: string, value: string | null, before: string | null): void {
  change.writes.push({ scope, key, value });
  change.undo.push({ scope, key, value: before });
}

/** The receipt of a step of `command`, with its attempts so far and the path and reason when given. */
function receiptFor(command: Command, status: ReceiptStatus, detail: { readonly reason?: string; readonly path?: string }): Receipt {
  return {
    commandId: command.id,
    deviceId: command.deviceId,
    status,
    attempts: command.attempts,
    ...(detail.reason === undefined ? {} : { reason: detail.reason }),
    ...(detail.path === undefined ? {} : { path: detail.path }),
  };
}

interface BatchedStep {
  readonly prepare: (now: number, change: Change) => { readonly receipts: readonly Receipt[]; readonly value: unknown } | null;
  readonly resolve: (value: unknown) => void;
  readonly gone: unknown;
}

export function createCommandQueue(options: CommandQueueOptions, deps: CommandQueueDeps): CommandQueue {
  const log = deps.log.child({ component: 'commands.queue' });
  /** A full buffer refuses every change: one line per reason a minute. */
  const refusedLog = createOnceLogger(60_000);
  const { metrics } = deps;
  const nowMs = deps.nowMs ?? Date.now;
  /** Every waiting command, in seq order (insertion order: seq only grows). */
  const byId = new Map<string, Command>();
  const byDevice = new Map<string, Command[]>();
  /** Finished command id -> when, oldest first. */
  const done = new Map<string, number>();
  let bytes = 0;
  let nextSeq = 1;
  let chain: Promise<unknown> = Promise.resolve();
  const queuedListeners: ((deviceId: string) => void)[] = [];

  function exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = chain.then(work, work);
    chain = run.catch(() => undefined);
    return run;
  }

  /** Steps of single commands (hand-over, outcome, note) waiting for the next shared commit. */
  const steps: BatchedStep[] = [];
  let flushQueued = false;

  /**
   * A change of one command, committed together with the others asked for meanwhile: one commit (one fsync)
   * for the hand-overs and outcomes of many devices, instead of one each. `prepare` runs when the batch is
   * built, against memory as the earlier steps left it, applies its change to memory and says what to commit
   * (null: the command is gone, resolve `gone`); a failed commit reloads memory from the store and resolves
   * every step of the batch with `gone` too (the caller tells the two apart by whether the command still waits).
   */
  function batched<T>(gone: T, prepare: (now: number, change: Change) => { readonly receipts: readonly Receipt[]; readonly value: T } | null): Promise<T> {
    return new Promise<T>((resolve) => {
      steps.push({ prepare, resolve: resolve as (value: unknown) => void, gone });
      if (flushQueued) return;
      flushQueued = true;
      void exclusive(flush);
    });
  }

  async function flush(): Promise<void> {
    flushQueued = false;
    const batch = steps.splice(0);
    const now = nowMs();
    const change: Change = { writes: [], undo: [] };
    const receipts: Receipt[] = [];
    const values = batch.map((step) => {
      const prepared = step.prepare(now, change);
      if (prepared === null) return step.gone;
      receipts.push(...prepared.receipts);
      return prepared.value;
    });
    if (receipts.length > 0 || change.writes.length > 0) {
      const result = await commit(
        receipts.map((receipt) => receiptRecord(receipt, now)),
        change,
      );
      if (!result.ok) {
        await reload();
        for (const step of batch) step.resolve(step.gone);
        return;
      }
      count(receipts);
      gauges();
    }
    for (const [index, step] of batch.entries()) step.resolve(values[index]);
  }

  function gauges(): void {
    let sent = 0;
    for (const command of byId.values()) if (command.state === 'sent') sent += 1;
    metrics.commandsWaiting.set({ state: 'queued' }, byId.size - sent);
    metrics.commandsWaiting.set({ state: 'sent' }, sent);
  }

  function add(command: Command): void {
    byId.set(command.id, command);
    const queue = byDevice.get(deviceKey(command.deviceId));
    if (queue === undefined) byDevice.set(deviceKey(command.deviceId), [command]);
    else queue.push(command);
    bytes += command.payload.length;
  }

  function remove(id: string): Command | undefined {
    const command = byId.get(id);
    if (command === undefined) return undefined;
    byId.delete(id);
    bytes -= command.payload.length;
    const queue = byDevice.get(deviceKey(command.deviceId)) ?? [];
    const index = queue.findIndex((waiting) => waiting.id === id);
    if (index !== -1) queue.splice(index, 1);
    if (queue.length === 0) byDevice.delete(deviceKey(command.deviceId));
    return command;
  }

  function replace(command: Command): void {
    byId.set(command.id, command);
    const queue = byDevice.get(deviceKey(command.deviceId)) ?? [];
    const index = queue.findIndex((waiting) => waiting.id === command.id);
    if (index !== -1) queue[index] = command;
  }

  /** State writes that remember `id` as finished, and forget the oldest finished ids past the bounds. */
  function rememberDone(id: string, at: number, change: Change): void {
    const before = done.get(id);
    done.set(id, at);
    write(change, COMMAND_DONE_SCOPE, id, String(at), before === undefined ? null : String(before));
    for (const [oldId, when] of done) {
      if (done.size <= DONE_MAX_ENTRIES && when > at - DONE_MAX_AGE_MS) break;
      done.delete(oldId);
      write(change, COMMAND_DONE_SCOPE, oldId, null, String(when));
    }
  }

  async function commit(records: readonly NewRecord[], change: Change): Promise<AcceptResult> {
    const result = await deps.accept(records, change.writes);
    if (result.ok) return result;
    if (refusedLog.shouldLog(result.reason)) log.warn({ reason: result.reason }, `command change not committed: ${result.message}; it is retried`);
    // Only buffer-full (the receipts refused, the commit made) leaves the state written; the other refusals wrote nothing.
    if (result.reason === 'buffer-full' && change.undo.length > 0) {
      const undone = await deps.accept([], [...change.undo].reverse());
      if (!undone.ok) log.error({ reason: undone.reason }, `a command change whose receipts were refused could not be taken back: ${undone.message}`);
    }
    return result;
  }

  function count(receipts: readonly Receipt[]): void {
    for (const receipt of receipts) metrics.commands.inc({ status: receipt.status });
  }

  /**
   * Reads the store into memory: at start, and after a failed commit, so memory never disagrees with the
   * store (a refused commit may still have written its state rows: see RecordStore.append).
   */
  async function reload(): Promise<void> {
    byId.clear();
    byDevice.clear();
    done.clear();
    bytes = 0;
    const [waiting, finished] = await Promise.all([deps.loadState(COMMAND_SCOPE), deps.loadState(COMMAND_DONE_SCOPE)]);
    const commands: Command[] = [];
    for (const [id, text] of waiting) {
      const command = decodeCommand(id, text);
      if (command === null) log.error({ commandId: id }, 'a stored command could not be read; it is skipped (no receipt)');
      else commands.push(command);
    }
    commands.sort((a, b) => a.seq - b.seq);
    for (const command of commands) add(command);
    nextSeq = Math.max(nextSeq, (commands.at(-1)?.seq ?? 0) + 1);
    for (const [id, when] of [...finished].sort((a, b) => Number(a[1]) - Number(b[1]))) done.set(id, Number(when));
    gauges();
  }

  return {
    load: () => exclusive(reload),

    intake(results) {
      return exclusive(async () => {
        const now = nowMs();
        const receipts: Receipt[] = [];
        const change: Change = { writes: [], undo: [] };
        const added: Command[] = [];
        const seen = new Set<string>();
        let duplicates = 0;
        let rejected = 0;
        for (const parsed of results) {
          if (!parsed.ok) {
            rejected += 1;
            receipts.push({ commandId: parsed.commandId, deviceId: parsed.deviceId, status: 'rejected', reason: `${parsed.reason}: ${parsed.message}` });
            continue;
          }
          const { command: incoming } = parsed;
          if (byId.has(incoming.id) || done.has(incoming.id) || seen.has(incoming.id)) {
            duplicates += 1;
            continue;
          }
          seen.add(incoming.id);
          if (incoming.expiresAtMs <= now) {
            receipts.push({ commandId: incoming.id, deviceId: incoming.deviceId, status: 'expired', reason: 'it had expired before the gateway read it' });
            rememberDone(incoming.id, now, change);
            continue;
          }
          const command: Command = { ...incoming, acceptedAtMs: now, seq: nextSeq++, state: 'queued', attempts: 0 };
          add(command);
          added.push(command);
          receipts.push({ commandId: command.id, deviceId: command.deviceId, status: 'accepted' });
          write(change, COMMAND_SCOPE, command.id, encodeCommand(command), null);
          // Bounds: the device's oldest first, then the oldest of all.
          const evict = (victim: Command, why: string): void => {
            remove(victim.id);
            receipts.push({ commandId: victim.id, deviceId: victim.deviceId, status: 'expired', reason: why });
            write(change, COMMAND_SCOPE, victim.id, null, encodeCommand(victim));
            rememberDone(victim.id, now, change);
          };
          const mine = byDevice.get(deviceKey(command.deviceId)) ?? [];
          while (mine.length > options.maxPerDevice) {
            evict(mine[0] as Command, `more than commands.max_queued_per_device (${options.maxPerDevice}) commands waited for the device; the oldest expired`);
          }
          while (byId.size > options.maxTotal || bytes > options.maxBytes) {
            const oldest = byId.values().next().value as Command;
            evict(
              oldest,
              `the gateway's command queue was full (commands.max_queued ${options.maxTotal}, max_queued_bytes ${options.maxBytes}); the oldest expired`,
            );
          }
        }
        // A duplicate needs no commit: it changes nothing. Counted once the batch is done with (a refused batch is read again).
        const countDuplicates = () => {
          if (duplicates > 0) metrics.commands.inc({ status: 'duplicate' }, duplicates);
        };
        if (receipts.length === 0) {
          countDuplicates();
          return { result: { ok: true, seqs: [] }, accepted: 0, duplicates, rejected };
        }
        const result = await commit(
          receipts.map((receipt) => receiptRecord(receipt, now)),
          change,
        );
        if (!result.ok) {
          await reload();
          return { result, accepted: 0, duplicates: 0, rejected: 0 };
        }
        countDuplicates();
        count(receipts);
        gauges();
        const devices = new Set(added.filter((command) => byId.has(command.id)).map((command) => deviceKey(command.deviceId)));
        for (const deviceId of devices) for (const listener of queuedListeners) listener(deviceId);
        return { result, accepted: added.length, duplicates, rejected };
      });
    },

    head: (deviceId) => byDevice.get(deviceKey(deviceId))?.[0],
    devices: () => [...byDevice.keys()],
    list: () => [...byId.values()],
    get: (id) => byId.get(id),

    markSent(id, path, withReceipt = true) {
      return batched<Command | null>(null, (_now, change) => {
        const current = byId.get(id);
        if (current === undefined) return null;
        const sent: Command = { ...current, state: 'sent', attempts: current.attempts + 1 };
        write(change, COMMAND_SCOPE, id, encodeCommand(sent), encodeCommand(current));
        replace(sent);
        const receipts: Receipt[] = withReceipt ? [{ commandId: id, deviceId: sent.deviceId, status: 'sent', path, attempts: sent.attempts }] : [];
        return { receipts, value: sent };
      });
    },

    finish(id, status, detail = {}) {
      return batched(false, (now, change) => {
        const current = byId.get(id);
        if (current === undefined) return null;
        write(change, COMMAND_SCOPE, id, null, encodeCommand(current));
        rememberDone(id, now, change);
        remove(id);
        return { receipts: [receiptFor(current, status, detail)], value: true };
      });
    },

    note(id, status, detail = {}) {
      return batched(false, () => {
        const current = byId.get(id);
        return current === undefined ? null : { receipts: [receiptFor(current, status, detail)], value: true };
      });
    },

    expireDue() {
      return exclusive(async () => {
        const now = nowMs();
        const due = [...byId.values()].filter((command) => command.expiresAtMs <= now);
        if (due.length === 0) return;
        const change: Change = { writes: [], undo: [] };
        const receipts: Receipt[] = due.map((command) => {
          write(change, COMMAND_SCOPE, command.id, null, encodeCommand(command));
          rememberDone(command.id, now, change);
          const reason =
            command.state === 'sent' ? 'its time ran out before the device acknowledged it' : 'its time ran out before the device could be reached';
          return { commandId: command.id, deviceId: command.deviceId, status: 'expired', reason, attempts: command.attempts };
        });
        const result = await commit(
          receipts.map((receipt) => receiptRecord(receipt, now)),
          change,
        );
        if (!result.ok) {
          await reload();
          return;
        }
        for (const command of due) remove(command.id);
        count(receipts);
        gauges();
      });
    },

    onQueued(listener) {
      queuedListeners.push(listener);
    },

    idle: () => chain.then(() => undefined),
  };
}
