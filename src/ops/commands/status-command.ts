// `iotgw status`: asks the running gateway's ops endpoint (/readyz and /api/status) and prints a summary for
// a person: Kafka link, buffer depth and age, the state of each way in, ingress rates, devices, recent
// rejections. The URL and basic auth come from the config's http section unless --url is given.
import { readFileSync } from 'node:fs';
import { errorMessage } from '../../errors.ts';
import type { ReadinessReport } from '../health.ts';
import type { StatusSnapshot } from '../status.ts';
import { CommandError } from './command-error.ts';
import { formatBytes, formatCount, formatDuration } from './buffer-commands.ts';
import { printable } from '../../shared/input-text.ts';

export interface StatusTarget {
  readonly url: string;
  readonly auth: { readonly username: string; readonly password: string } | null;
}

/** http.host/port -> a URL this machine can reach (a wildcard bind is reached over loopback). */
export function statusUrl(host: string, port: number): string {
  const reachable = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}`;
}

export function readAuth(username: string, passwordFile: string): StatusTarget['auth'] {
  if (username === '') return null;
  try {
    return { username, password: readFileSync(passwordFile, 'utf8').replace(/\r?\n$/, '') };
  } catch (error) {
    throw new CommandError(`http.auth.password_file: cannot read ${passwordFile}: ${errorMessage(error)} (run as a user that may read it, or pass --url)`);
  }
}

export interface GatewayStatus {
  readonly readiness: ReadinessReport;
  readonly status: StatusSnapshot;
}

export async function fetchStatus(target: StatusTarget, timeoutMs = 5000): Promise<GatewayStatus> {
  const base = target.url.replace(/\/+$/, '');
  const headers: Record<string, string> =
    target.auth === null ? {} : { authorization: `Basic ${Buffer.from(`${target.auth.username}:${target.auth.password}`).toString('base64')}` };
  const get = async <T>(path: string, okStatuses: readonly number[]): Promise<T> => {
    let response: Response;
    try {
      response = await fetch(`${base}${path}`, { headers, signal: AbortSignal.timeout(timeoutMs) });
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code ?? errorMessage(error);
      throw new CommandError(`cannot reach the iotgw ops endpoint at ${base} (${cause}): is the service running? systemctl status iotgw`);
    }
    if (response.status === 401) {
      throw new CommandError(
        `${base}${path} asks for basic auth: give --config with the gateway's http.auth, or check the password in http.auth.password_file`,
      );
    }
    if (!okStatuses.includes(response.status)) {
      throw new CommandError(`${base}${path} answered HTTP ${response.status}: is ${base} an iotgw ops endpoint (http.host/http.port)?`);
    }
    try {
      return (await response.json()) as T;
    } catch {
      throw new CommandError(`${base}${path} did not answer JSON: is ${base} an iotgw ops endpoint (http.host/http.port)?`);
    }
  };
  const readiness = await get<ReadinessReport>('/readyz', [200, 503]);
  const status = await get<StatusSnapshot>('/api/status', [200]);
  return { readiness, status };
}

export function formatStatus({ readiness, status }: GatewayStatus, url: string): string {
  const { buffer, kafka, ingress, devices } = status;
  const linkText =
    kafka.state === 'up'
      ? 'up: records flow to Kafka'
      : kafka.state === 'buffering'
        ? 'BUFFERING: Kafka unreachable, records are kept in the buffer'
        : 'starting: no batch sent yet';
  const fill = Math.max(buffer.depthRecords / buffer.maxRecords, buffer.depthBytes / buffer.maxBytes) * 100;
  // A gateway still running an older iotgw (upgraded, not yet restarted) has no links in its answer.
  const links = (status as Partial<StatusSnapshot>).links;
  const nameWidth = Math.max(12, ...(links ?? []).map((link) => link.name.length));
  const lines = [
    `iotgw ${status.gatewayId} ${status.version}, up ${formatDuration(status.uptimeSeconds)} (${url})`,
    `ready:        ${readiness.ready ? 'yes' : 'NO'}${Object.entries(readiness.components)
      .filter(([, report]) => report.status !== 'ok')
      .map(([name, report]) => `; ${name} ${report.status}${report.detail === undefined ? '' : ` (${printable(report.detail, 200)})`}`)
      .join('')}`,
    `Kafka link:   ${linkText}; ${formatCount(kafka.sentRecords)} sent (${kafka.sentPerSecond}/s), ${formatCount(kafka.sendErrors)} failed batches`,
    `buffer:       ${formatCount(buffer.depthRecords)} records, ${formatBytes(buffer.depthBytes)} (${fill.toFixed(fill < 10 ? 2 : 0)} % of the bound), oldest ${buffer.depthRecords === 0 ? '-' : formatDuration(buffer.oldestAgeSeconds)}; dead letters ${formatCount(buffer.deadLetters)}, dropped ${formatCount(buffer.droppedRecords)}`,
    `ways in:      ${links === undefined ? 'not reported (the gateway runs an older iotgw: restart it)' : waysInSummary(links)}`,
    ...(links ?? []).map((link) =>
      `  ${link.name.padEnd(nameWidth)} ${(link.status === 'ok' ? 'ok' : link.status.toUpperCase()).padEnd(8)}${link.detail === undefined ? '' : ` ${printable(link.detail, 200)}`}`.trimEnd(),
    ),
    `ingress:      ${ingress.perSecond} records/s${ingress.sources.length === 0 ? ', nothing received yet' : ''}`,
    ...ingress.sources.map(
      (source) =>
        `  ${source.source.padEnd(12)} ${String(source.perSecond).padStart(8)}/s  accepted ${formatCount(source.accepted)}, rejected ${formatCount(source.rejected)}`,
    ),
    `devices:      ${formatCount(devices.connected)} connected (MQTT), ${formatCount(devices.seenRecently)} seen in the last 10 minutes`,
    ...devices.recent
      .slice(0, 5)
      .map(
        (device) =>
          `  ${printable(device.id, 64)} (${device.source}) ${formatDuration((status.nowMs - device.lastSeenMs) / 1000)} ago, ${formatCount(device.count)} records`,
      ),
    ...commandsLine(status),
    `rejections:   ${status.rejections.length === 0 ? 'none recently' : `last ${Math.min(10, status.rejections.length)} of ${status.rejections.length}`}`,
    ...status.rejections
      .slice(0, 10)
      // Device ids, topics and details come from outside: control characters escaped, as a terminal would act on them.
      .map(
        (rejection) =>
          `  ${new Date(rejection.atMs).toISOString()} ${rejection.source} ${printable(rejection.reason, 64)}: ${printable(rejection.detail, 300)}`,
      ),
  ];
  return `${lines.join('\n')}\n`;
}

/** 'all 3 ok', or the count in each state with the bad ones in capitals: '2 ok, 1 DEGRADED, 1 DOWN'. */
function waysInSummary(links: StatusSnapshot['links']): string {
  if (links.length === 0) return 'none enabled';
  const ok = links.filter((link) => link.status === 'ok').length;
  if (ok === links.length) return `all ${ok} ok`;
  const degraded = links.filter((link) => link.status === 'degraded').length;
  const down = links.filter((link) => link.status === 'down').length;
  return [`${ok} ok`, ...(degraded === 0 ? [] : [`${degraded} DEGRADED`]), ...(down === 0 ? [] : [`${down} DOWN`])].join(', ');
}

/** 'commands:     2 queued, 1 sent; accepted 10, delivered 8, expired 1', or nothing when there are none. */
function commandsLine(status: StatusSnapshot): string[] {
  // A gateway running an older iotgw has no commands in its answer.
  const commands = (status as Partial<StatusSnapshot>).commands;
  if (commands === undefined) return [];
  const waiting = Object.entries(commands.waiting);
  const totals = Object.entries(commands.byStatus);
  if (waiting.length === 0 && totals.length === 0) return [];
  const waitingText = waiting.map(([state, count]) => `${formatCount(count)} ${state}`).join(', ') || 'none waiting';
  return [`commands:     ${waitingText}; ${totals.map(([state, count]) => `${state} ${formatCount(count)}`).join(', ') || 'no receipts yet'}`];
}
