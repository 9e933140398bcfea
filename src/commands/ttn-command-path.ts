// Commands over The Things Stack v3: pushed to v3/{app}@{tenant}/devices/{device id}/down/push on the TTN
// link of the device's application, followed by the correlation id the push carries (iotgw:command:{id}),
// which TTS repeats on every event of that downlink. TTS queues a downlink until it can send it (a class A
// device: after its next uplink, maybe hours later), so the outcome comes from the events:
//   down/queued  TTS took it (only ends the "did TTS take it" wait)
//   down/sent    on air: `sent`; for an unconfirmed downlink that is the outcome (done sent)
//   down/ack     the device confirmed it: done acked
//   down/nack    the device did not get it: unanswered (the delivery sends it again, up to its attempt limit)
//   down/failed  TTS gave up on it (no downlink path, too long for the data rate...): failed, with TTS's error
//   link down    the events may be missed: away; sent again (replace, not push) when the link is back
// TTS itself sends a nacked downlink again; this path withdraws that copy (down/replace with an empty list)
// so the delivery's attempt limit holds and a command that failed or expired is not delivered later. A hand-over
// after the first (attempts > 1) uses down/replace, so an earlier copy left in TTS's queue (link lost, gateway
// restarted) is not sent twice. Both replace the whole TTS queue of that device: iotgw assumes it is the only
// application client queueing downlinks for the devices it commands (the delivery sends one command per
// device at a time, so nothing else of iotgw's is in that queue).
import { createHash } from 'node:crypto';
import type { Logger } from '../core/log.ts';
import type { TtnDownlink } from '../ingress/ttn/ttn-ingress.ts';
import { MAX_CORRELATION_ID_CHARS, MAX_FRM_PAYLOAD_BYTES, type TtsDownlink, type TtsDownlinkEvent } from '../ingress/ttn/tts-downlink.ts';
import type { Command } from './command.ts';
import type { CommandPath, PathOutcome, ProgressNote } from './command-path.ts';

export interface TtnCommandPathOptions {
  /**
   * FPort of a command that names none (the envelope's `port`; raw-bytes commands never do); null: such a
   * command fails with a reason instead. TTS requires an FPort 1..223 on every application downlink.
   */
  readonly defaultFPort: number | null;
  /**
   * How long TTS has to answer a push with down/queued. TTS answers at once when it takes a downlink; silence
   * means it did not (an API key without "Write downlink application traffic", a device no longer registered):
   * the hand-over is unanswered, and sent again up to the delivery's attempt limit.
   */
  readonly queuedTimeoutMs: number;
  /**
   * How long a queued downlink may wait for its outcome before the hand-over is unanswered (and sent again,
   * with replace, so TTS still holds one copy). TTS holds a class A downlink until the device's next uplink,
   * and its ack comes with the uplink after that: hours for a meter that reports a few times a day. A short
   * timeout would only spend the command's attempts while TTS still holds it; the command's own expiry
   * (ttl_s / expires_at) bounds the wait anyway, so this is the bound for long-lived commands.
   */
  readonly outcomeTimeoutMs: number;
}

export const TTN_COMMAND_PATH_DEFAULTS: TtnCommandPathOptions = {
  defaultFPort: 1,
  queuedTimeoutMs: 60_000,
  outcomeTimeoutMs: 24 * 3600 * 1000,
};

export interface TtnCommandPathDeps {
  /** One per TTS application (the TTN ingresses' `downlink`). */
  readonly links: readonly TtnDownlink[];
  readonly log: Logger;
  /** Default Date.now. */
  readonly nowMs?: () => number;
  /** Schedules a timer and returns its cancel; default an unref'd setTimeout. */
  readonly schedule?: (callback: () => void, delayMs: number) => () => void;
}

/** Correlation ids of iotgw's downlinks start with this; the rest is the command id (or its hash, when long). */
export const COMMAND_CORRELATION_PREFIX = 'iotgw:command:';
/** After a command's expiry the wait goes on this long, so the queue's expiry check ends it first (expired, not unanswered). */
const EXPIRY_GRACE_MS = 5_000;
/** Devices remembered for a later "ready" (link back, device learned); the delivery asks only about devices with commands. */
const MAX_REMEMBERED_DEVICES = 100_000;
/** Spellings of one DevEUI remembered (its case in the Kafka key): a producer uses one, maybe two. */
const MAX_SPELLINGS = 4;
const DEVEUI = /^[0-9A-Fa-f]{16}$/;

/** The correlation id of a command's downlinks: TTS takes at most 100 characters, so a long command id goes as its hash. */
export function commandCorrelationId(commandId: string): string {
  const plain = `${COMMAND_CORRELATION_PREFIX}${commandId}`;
  if (plain.length <= MAX_CORRELATION_ID_CHARS) return plain;
  return `${COMMAND_CORRELATION_PREFIX}sha256:${createHash('sha256').update(commandId).digest('hex').slice(0, 32)}`;
}

interface Target {
  readonly link: TtnDownlink;
  /** The TTS device id. */
  readonly deviceId: string;
}

/** A hand-over waiting for its outcome. */
interface Waiting {
  readonly command: Command;
  readonly target: Target;
  readonly progress: ProgressNote;
  queued: boolean;
  sentNoted: boolean;
  readonly cancelTimers: (() => void)[];
  readonly resolve: (outcome: PathOutcome) => void;
}

export function createTtnCommandPath(options: TtnCommandPathOptions, deps: TtnCommandPathDeps): CommandPath {
  const log = deps.log.child({ component: 'commands.ttn' });
  const nowMs = deps.nowMs ?? Date.now;
  const schedule =
    deps.schedule ??
    ((callback: () => void, delayMs: number) => {
      const timer = setTimeout(callback, delayMs);
      timer.unref();
      return () => clearTimeout(timer);
    });
  const readyListeners: ((deviceId: string) => void)[] = [];
  /** Correlation id -> the hand-over waiting for it (one per device at a time: bounded by the command queue). */
  const waiting = new Map<string, Waiting>();
  /** Per link: the delivery's device ids found not ready (link down, or away), told when the link is back. */
  const parked = new Map<TtnDownlink, Set<string>>(deps.links.map((link) => [link, new Set<string>()]));
  /** Lower-case DevEUI -> the delivery's device ids asked about before any link knew it, told when one learns it. */
  const unknown = new Map<string, Set<string>>();

  function notify(deviceId: string): void {
    for (const listener of readyListeners) listener(deviceId);
  }

  /** Remembers `deviceId` in a bounded set, the oldest forgotten first (it is told again by its next command). */
  function remember(set: Set<string>, deviceId: string): void {
    set.delete(deviceId);
    set.add(deviceId);
    if (set.size > MAX_REMEMBERED_DEVICES) set.delete(set.values().next().value as string);
  }

  function targetOf(deviceId: string): Target | undefined {
    if (!DEVEUI.test(deviceId)) return undefined;
    const devEui = deviceId.toLowerCase();
    for (const link of deps.links) {
      const id = link.deviceIdOf(devEui);
      if (id !== undefined) return { link, deviceId: id };
    }
    return undefined;
  }

  function park(target: Target, deviceId: string): void {
    const set = parked.get(target.link);
    if (set !== undefined) remember(set, deviceId);
  }

  function settle(entry: Waiting, outcome: PathOutcome, withdraw: boolean): void {
    const correlationId = commandCorrelationId(entry.command.id);
    if (waiting.get(correlationId) !== entry) return;
    waiting.delete(correlationId);
    for (const cancel of entry.cancelTimers) cancel();
    if (outcome.kind === 'away') park(entry.target, entry.command.deviceId);
    // The downlink may still sit in TTS's queue (TTS re-queues a nacked one itself): take it out, so what the
    // receipt says (sent again, failed, expired) is what happens. A later hand-over queues it anew.
    if (withdraw) void entry.target.link.queue('replace', entry.target.deviceId, []);
    log.debug({ commandId: entry.command.id, deviceId: entry.command.deviceId, outcome }, 'TTN command hand-over ended');
    entry.resolve(outcome);
  }

  function onEvent(link: TtnDownlink, event: TtsDownlinkEvent): void {
    let entry: Waiting | undefined;
    for (const id of event.correlationIds) {
      if (!id.startsWith(COMMAND_CORRELATION_PREFIX)) continue;
      const candidate = waiting.get(id);
      if (candidate !== undefined && candidate.target.link === link) entry = candidate;
    }
    // Another client's downlink, or one of ours whose hand-over already ended (a late ack after a timeout).
    if (entry === undefined) return;
    switch (event.kind) {
      case 'queued':
        entry.queued = true;
        return;
      case 'sent':
        entry.queued = true;
        // Unconfirmed: on air is all that can be known; its `sent` receipt is the final one.
        if (!entry.command.confirmed) {
          settle(entry, { kind: 'done', status: 'sent' }, false);
        } else if (!entry.sentNoted) {
          entry.sentNoted = true;
          entry.progress('sent');
        }
        return;
      case 'ack':
        settle(entry, { kind: 'done', status: 'acked' }, false);
        return;
      case 'nack':
        settle(entry, { kind: 'unanswered', detail: `the device answered TTS with a nack (downlink f_cnt ${event.fCnt ?? 0})` }, true);
        return;
      case 'failed':
        settle(entry, { kind: 'failed', reason: `TTS could not deliver the downlink: ${event.error ?? 'no error given'}` }, false);
        return;
    }
  }

  for (const link of deps.links) {
    link.onEvent((event) => onEvent(link, event));
    link.onLink((up) => {
      if (!up) {
        // The events of what is waiting may be published while nobody listens (QoS 0): away, sent again later.
        for (const entry of [...waiting.values()]) if (entry.target.link === link) settle(entry, { kind: 'away' }, false);
        return;
      }
      const set = parked.get(link);
      if (set === undefined || set.size === 0) return;
      const devices = [...set];
      set.clear();
      for (const deviceId of devices) notify(deviceId);
    });
    link.onDevice((devEui) => {
      const asked = unknown.get(devEui);
      if (asked === undefined) return;
      unknown.delete(devEui);
      for (const deviceId of asked) notify(deviceId);
    });
  }

  function failed(reason: string): PathOutcome {
    return { kind: 'failed', reason };
  }

  return {
    name: 'ttn',
    sentOnHandOver: false,

    serves(deviceId) {
      if (targetOf(deviceId) !== undefined) return true;
      // Not (yet) a TTN device: the next path serves it; told again when a link hears of the DevEUI.
      if (DEVEUI.test(deviceId)) {
        const devEui = deviceId.toLowerCase();
        const asked = unknown.get(devEui) ?? new Set<string>();
        if (asked.size < MAX_SPELLINGS) asked.add(deviceId);
        unknown.set(devEui, asked);
        while (unknown.size > MAX_REMEMBERED_DEVICES) unknown.delete(unknown.keys().next().value as string);
      }
      return false;
    },

    ready(command) {
      const target = targetOf(command.deviceId);
      if (target === undefined) return false;
      if (target.link.isUp()) return true;
      park(target, command.deviceId);
      return false;
    },

    async send(command, progress) {
      const target = targetOf(command.deviceId);
      if (target === undefined) return { kind: 'away' };
      const fPort = command.fport ?? options.defaultFPort;
      if (fPort === null) {
        return failed('the command names no LoRaWAN FPort and this gateway sends none by default: give `port` (1..223) in the command envelope');
      }
      if (command.payload.length > MAX_FRM_PAYLOAD_BYTES) {
        return failed(
          `a payload of ${command.payload.length} bytes does not fit a LoRaWAN downlink (at most ${MAX_FRM_PAYLOAD_BYTES} bytes, fewer at low data rates)`,
        );
      }
      if (!target.link.isUp()) {
        park(target, command.deviceId);
        return { kind: 'away' };
      }
      if (command.expiresAtMs <= nowMs()) {
        // The queue's expiry check ends it in a moment (with an `expired` receipt); until then, nothing goes out.
        await new Promise<void>((resolve) => schedule(resolve, EXPIRY_GRACE_MS));
        return { kind: 'unanswered', detail: 'it expired before it could be queued at TTS' };
      }
      const correlationId = commandCorrelationId(command.id);
      const downlink: TtsDownlink = { fPort, frmPayload: command.payload, confirmed: command.confirmed, correlationIds: [correlationId] };
      // A later hand-over may find an earlier copy still in TTS's queue (the link dropped, the gateway restarted):
      // replace it, never queue a second one.
      const operation = command.attempts > 1 ? 'replace' : 'push';
      const outcome = new Promise<PathOutcome>((resolve) => {
        const entry: Waiting = { command, target, progress, queued: false, sentNoted: false, cancelTimers: [], resolve };
        const stale = waiting.get(correlationId);
        if (stale !== undefined) settle(stale, { kind: 'away' }, false);
        waiting.set(correlationId, entry);
        const where = `${target.link.application} device ${target.deviceId}`;
        entry.cancelTimers.push(
          schedule(() => {
            if (entry.queued) return;
            log.warn(
              { commandId: command.id, deviceId: command.deviceId, application: target.link.application },
              `TTS did not answer the downlink for ${where} with down/queued within ${options.queuedTimeoutMs / 1000} s: does the API key have the right "Write downlink application traffic", and is the device still registered?`,
            );
            settle(entry, { kind: 'unanswered', detail: `TTS did not queue the downlink (no down/queued within ${options.queuedTimeoutMs / 1000} s)` }, true);
          }, options.queuedTimeoutMs),
        );
        const untilExpiryMs = Math.max(0, command.expiresAtMs - nowMs()) + EXPIRY_GRACE_MS;
        const waitMs = Math.min(options.outcomeTimeoutMs, untilExpiryMs);
        entry.cancelTimers.push(
          schedule(() => {
            const step = entry.sentNoted ? 'down/ack' : 'down/sent';
            settle(entry, { kind: 'unanswered', detail: `no ${step} from TTS within ${Math.round(waitMs / 1000)} s` }, true);
          }, waitMs),
        );
      });
      const published = await target.link.queue(operation, target.deviceId, [downlink]);
      if (!published) {
        const entry = waiting.get(correlationId);
        if (entry !== undefined && entry.command === command) settle(entry, { kind: 'away' }, false);
      }
      return outcome;
    },

    onReady(listener) {
      readyListeners.push(listener);
    },
  };
}
