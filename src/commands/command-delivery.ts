// Commands out: each device's waiting commands, oldest first, one at a time, over the device's path (the
// first of `paths` that serves it). The hand-over is committed before it happens (with the `sent` receipt
// where the hand-over is the sending), the outcome after it. A device
// that is away gets the command when its path says it is ready again (at least once: the command id lets it
// recognise a repeat); one that never acknowledges gets it up to maxAttempts times, then the command fails
// with a receipt. Every expiryCheckMs, commands whose time is up expire, with a receipt.
import type { Component, HealthReport } from '../core/lifecycle.ts';
import type { Logger } from '../core/log.ts';
import { deviceKey } from './command.ts';
import type { CommandPath } from './command-path.ts';
import type { CommandQueue, FinalStatus } from './command-queue.ts';

export interface CommandDeliveryOptions {
  readonly maxAttempts: number;
  readonly expiryCheckMs: number;
  /** How long a device waits after a commit the buffer refused before it is served again. */
  readonly commitRetryMs: number;
}

export interface CommandDeliveryDeps {
  readonly queue: CommandQueue;
  /** In order of preference; the last should serve every device (MQTT). */
  readonly paths: readonly CommandPath[];
  readonly log: Logger;
}

export const MAX_ATTEMPTS = 5;

export function createCommandDelivery(options: CommandDeliveryOptions, deps: CommandDeliveryDeps): Component {
  const log = deps.log.child({ component: 'commands.delivery' });
  const { queue, paths } = deps;
  let stopping = true;
  let expiryTimer: NodeJS.Timeout | null = null;
  /** Devices being served now, and those asked for again meanwhile. */
  const serving = new Set<string>();
  const again = new Set<string>();
  /** Devices with a retry after a refused commit pending: one timer per device, however often it is asked for. */
  const retrying = new Set<string>();
  /** Outcomes known but not yet committed (the buffer refused): command id -> the final receipt to commit. */
  const unfinished = new Map<string, { readonly status: FinalStatus; readonly detail: { readonly reason?: string; readonly path: string } }>();

  function serve(asked: string): void {
    if (stopping) return;
    // One drain per device, whichever case a DevEUI was asked for in.
    const deviceId = deviceKey(asked);
    if (serving.has(deviceId)) {
      again.add(deviceId);
      return;
    }
    serving.add(deviceId);
    void drain(deviceId)
      .catch((error: unknown) => log.error({ err: error, deviceId }, 'command delivery failed unexpectedly (a bug); retried when the device is next ready'))
      .finally(() => {
        serving.delete(deviceId);
        if (again.delete(deviceId)) serve(deviceId);
      });
  }

  /** A commit the buffer refused (full, disk full): the device is served again later, not in a tight loop. */
  function retryLater(deviceId: string): void {
    if (retrying.has(deviceId)) return;
    retrying.add(deviceId);
    const timer = setTimeout(() => {
      retrying.delete(deviceId);
      serve(deviceId);
    }, options.commitRetryMs);
    timer.unref();
  }

  /** Ends a command; false when the commit failed and the command still waits (its outcome is kept for the retry). */
  async function finish(id: string, status: FinalStatus, detail: { readonly reason?: string; readonly path: string }): Promise<boolean> {
    if (await queue.finish(id, status, detail)) {
      unfinished.delete(id);
      return true;
    }
    if (queue.get(id) === undefined) return true; // gone meanwhile (expired, cancelled): nothing to end
    unfinished.set(id, { status, detail });
    return false;
  }

  async function drain(deviceId: string): Promise<void> {
    const path = paths.find((candidate) => candidate.serves(deviceId));
    if (path === undefined) return;
    while (!stopping) {
      const head = queue.head(deviceId);
      if (head === undefined) return;
      // An outcome whose commit failed is committed first: the device must not get the command again.
      const known = unfinished.get(head.id);
      if (known !== undefined) {
        if (!(await finish(head.id, known.status, known.detail))) return retryLater(deviceId);
        continue;
      }
      if (!path.ready(head)) return;
      const sent = await queue.markSent(head.id, path.name, path.sentOnHandOver);
      if (stopping) return;
      if (sent === null) {
        if (queue.get(head.id) !== undefined) return retryLater(deviceId);
        continue;
      }
      // Expired or cancelled while its hand-over was being committed: it must not go.
      if (queue.get(sent.id) === undefined) continue;
      const outcome = await path.send(sent, (status, detail = {}) => void queue.note(sent.id, status, { ...detail, path: path.name }));
      // Stopping: the command stays sent, and goes again after the restart.
      if (stopping) return;
      let ended = true;
      switch (outcome.kind) {
        case 'done':
          ended = await finish(sent.id, outcome.status, { path: path.name, ...(outcome.detail === undefined ? {} : { reason: outcome.detail }) });
          break;
        case 'away':
          if (outcome.afterSending === true && sent.attempts >= options.maxAttempts) {
            ended = await finish(sent.id, 'failed', {
              path: path.name,
              reason: `the device went away without acknowledging it ${sent.attempts} times (does it fail on this command?)`,
            });
            break;
          }
          return;
        case 'unanswered':
          if (sent.attempts >= options.maxAttempts) {
            ended = await finish(sent.id, 'failed', { path: path.name, reason: `no acknowledgement after ${sent.attempts} sends (${outcome.detail})` });
          }
          break;
        case 'failed':
          ended = await finish(sent.id, 'failed', { path: path.name, reason: outcome.reason });
          break;
      }
      if (!ended) return retryLater(deviceId);
    }
  }

  return {
    name: 'commands.delivery',
    async start() {
      stopping = false;
      await queue.load();
      queue.onQueued(serve);
      for (const path of paths) path.onReady(serve);
      expiryTimer = setInterval(() => {
        void queue.expireDue().catch((error: unknown) => log.error({ err: error }, 'expiring commands failed unexpectedly (a bug)'));
      }, options.expiryCheckMs);
      expiryTimer.unref();
      log.info({ waiting: queue.list().length, devices: queue.devices().length, paths: paths.map((path) => path.name) }, 'command delivery started');
      for (const deviceId of queue.devices()) serve(deviceId);
    },
    async stop() {
      stopping = true;
      if (expiryTimer !== null) clearInterval(expiryTimer);
      expiryTimer = null;
      // A commit under way finishes while the buffer is still open; none starts after this.
      await queue.idle();
    },
    health(): HealthReport {
      const waiting = queue.list();
      const sent = waiting.filter((command) => command.state === 'sent').length;
      return { status: 'ok', detail: `${waiting.length - sent} commands queued, ${sent} sent and waiting for an acknowledgement` };
    },
  };
}
