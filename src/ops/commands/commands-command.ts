// `iotgw commands list|cancel`: the commands waiting in the running gateway for their devices, through its
// ops endpoint (/api/commands, POST /api/commands/{id}/cancel). A cancelled command gets a `cancelled`
// receipt in Kafka; one already handed to a device's path may still arrive there.
import { errorMessage } from '../../errors.ts';
import { printable } from '../../shared/input-text.ts';
import type { CommandView } from '../health.ts';
import { formatCount } from './buffer-commands.ts';
import { CommandError } from './command-error.ts';
import type { StatusTarget } from './status-command.ts';

async function request(target: StatusTarget, path: string, init: { method: 'GET' | 'POST'; headers?: Record<string, string> }): Promise<Response> {
  const base = target.url.replace(/\/+$/, '');
  const auth: Record<string, string> =
    target.auth === null ? {} : { authorization: `Basic ${Buffer.from(`${target.auth.username}:${target.auth.password}`).toString('base64')}` };
  let response: Response;
  try {
    response = await fetch(`${base}${path}`, { method: init.method, headers: { ...auth, ...init.headers }, signal: AbortSignal.timeout(5_000) });
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? errorMessage(error);
    throw new CommandError(`cannot reach the iotgw ops endpoint at ${base} (${cause}): is the service running? systemctl status iotgw`);
  }
  if (response.status === 401) throw new CommandError(`${base}${path} asks for basic auth: give --config with the gateway's http.auth`);
  return response;
}

export async function fetchCommands(target: StatusTarget): Promise<readonly CommandView[]> {
  const response = await request(target, '/api/commands', { method: 'GET' });
  if (response.status === 404) throw new CommandError('the gateway has no command delivery: set commands.enabled: true and restart it');
  if (response.status !== 200) throw new CommandError(`/api/commands answered HTTP ${response.status}: is ${target.url} an iotgw ops endpoint?`);
  return ((await response.json()) as { commands: CommandView[] }).commands;
}

export function formatCommands(commands: readonly CommandView[], nowMs: number): string {
  if (commands.length === 0) return 'no commands waiting\n';
  const queued = commands.filter((command) => command.state === 'queued').length;
  const lines = [
    `${formatCount(commands.length)} commands waiting (${formatCount(queued)} queued, ${formatCount(commands.length - queued)} sent, waiting for an acknowledgement)`,
    `${'COMMAND'.padEnd(24)} ${'DEVICE'.padEnd(20)} ${'NAME'.padEnd(12)} ${'STATE'.padEnd(7)} TRIES  BYTES  EXPIRES IN`,
    ...commands.map((command) => {
      const expiresInS = Math.max(0, Math.round((Date.parse(command.expires_at) - nowMs) / 1000));
      return [
        printable(command.command_id, 64).padEnd(24),
        printable(command.device_id, 64).padEnd(20),
        printable(command.name, 64).padEnd(12),
        command.state.padEnd(7),
        String(command.attempts).padStart(5),
        String(command.payload_bytes).padStart(6),
        ` ${expiresInS} s`,
      ].join(' ');
    }),
  ];
  return `${lines.join('\n')}\n`;
}

export async function cancelCommand(target: StatusTarget, commandId: string): Promise<string> {
  const response = await request(target, `/api/commands/${encodeURIComponent(commandId)}/cancel`, { method: 'POST', headers: { 'x-iotgw-request': 'cancel' } });
  const body = (await response.json().catch(() => ({}))) as { error?: string };
  if (response.status === 200) return `cancelled ${commandId}: a cancelled receipt goes to Kafka\n`;
  if ((response.status === 404 || response.status === 409) && body.error !== undefined) throw new CommandError(body.error);
  if (response.status === 404) throw new CommandError('the gateway has no command delivery: set commands.enabled: true and restart it');
  throw new CommandError(`cancel answered HTTP ${response.status}: ${body.error ?? 'is this an iotgw ops endpoint?'}`);
}
