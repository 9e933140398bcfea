// The waiting commands for the ops endpoint (/api/commands) and `iotgw commands list|cancel`.
import type { CommandQueue } from '../commands/command-queue.ts';
import type { CommandsApi, CommandView } from './health.ts';

export function createCommandsApi(queue: Pick<CommandQueue, 'list' | 'finish'>): CommandsApi {
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
          accepted_at: new Date(command.acceptedAtMs).toISOString(),
          expires_at: new Date(command.expiresAtMs).toISOString(),
        }),
      ),
    cancel: (commandId) => queue.finish(commandId, 'cancelled', { reason: 'cancelled by an operator (iotgw commands cancel)' }),
  };
}
