// The waiting commands for the ops endpoint (/api/commands) and `iotgw commands list|cancel`.
import type { CommandQueue } from '../commands/command-queue.ts';
import type { CommandsApi, CommandView } from './health.ts';

export function createCommandsApi(queue: Pick<CommandQueue, 'list' | 'finish' | 'get'>): CommandsApi {
  return {
    list: () =>
      queue.list().map(
        (command): CommandView => ({
          command_id: command.id,
          device_id: command.deviceId,
          name: command.name,
          state: command.state,
          attempts: command.attempts,
          payload_bytes: command.payload.length,
          accepted_at: isoTime(command.acceptedAtMs),
          expires_at: isoTime(command.expiresAtMs),
        }),
      ),
    async cancel(commandId) {
      const command = queue.get(commandId);
      if (command === undefined) return 'unknown';
      // A command handed to its path may be on the device already: its outcome, not a cancel, is the truth.
      if (command.state === 'sent') return 'sent';
      return (await queue.finish(commandId, 'cancelled', { reason: 'cancelled by an operator (iotgw commands cancel)' })) ? 'cancelled' : 'unknown';
    },
  };
}

/** A stored time as ISO-8601; a value no Date holds (a row written by a bug) must not break the listing. */
function isoTime(ms: number): string {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? String(ms) : date.toISOString();
}
