// `iotgw buffer stats` and `iotgw buffer export`: read the buffer file beside the running gateway (read-only
// connection, WAL) and print what waits for Kafka, or write it out as JSON lines for a manual replay.
import { once } from 'node:events';
import { createWriteStream, openSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { type BufferInspector, type BufferReport, openBufferInspector } from '../../buffer/buffer-inspect.ts';
import { errorMessage, GatewayError } from '../../errors.ts';
import { CommandError } from './command-error.ts';
import { printable } from '../../shared/input-text.ts';

export interface BufferLimits {
  readonly maxRecords: number;
  readonly maxBytes: number;
}

function open(path: string): BufferInspector {
  try {
    return openBufferInspector(path);
  } catch (error) {
    if (error instanceof GatewayError) throw new CommandError(error.message);
    throw error;
  }
}

export function bufferStats(path: string, limits: BufferLimits, options: { readonly json: boolean; readonly nowMs?: number }): string {
  const inspector = open(path);
  let report: BufferReport;
  try {
    report = inspector.report();
  } finally {
    inspector.close();
  }
  if (options.json) return `${JSON.stringify({ ...report, maxRecords: limits.maxRecords, maxBytes: limits.maxBytes })}\n`;
  return formatReport(report, limits, options.nowMs ?? Date.now());
}

export function formatReport(report: BufferReport, limits: BufferLimits, nowMs: number): string {
  const fill = Math.max(report.depthRecords / limits.maxRecords, report.depthBytes / limits.maxBytes) * 100;
  const when = (ms: number | null): string => (ms === null ? '-' : `${new Date(ms).toISOString()} (${formatDuration((nowMs - ms) / 1000)} ago)`);
  const lines = [
    `buffer ${report.path}: ${formatBytes(report.fileBytes)} on disk + ${formatBytes(report.walBytes)} write-ahead log, schema ${report.schemaVersion}, instance ${report.instanceId ?? '-'}`,
    `waiting for Kafka: ${formatCount(report.depthRecords)} records, ${formatBytes(report.depthBytes)} (${fill.toFixed(fill < 10 ? 2 : 0)} % of the bound: buffer.max_records ${formatCount(limits.maxRecords)}, buffer.max_bytes ${formatBytes(limits.maxBytes)})`,
    `oldest received:   ${when(report.oldestReceivedAtMs)}`,
    `newest received:   ${when(report.newestReceivedAtMs)}`,
    `retried at least once: ${formatCount(report.retriedRecords)}`,
    `dead letters:      ${formatCount(report.deadLetters)} records, ${formatBytes(report.deadLetterBytes)}${report.deadLetters > 0 ? ' (see them with: iotgw buffer export --dead-letters)' : ''}`,
    // Streams and reasons come from devices and Kafka: printed with control characters escaped (a terminal acts on them).
    ...report.deadLetterReasons.map((entry) => `  ${printable(entry.reason, 200)}: ${formatCount(entry.records)}`),
  ];
  if (report.groups.length > 0) {
    lines.push('by source and stream:');
    const label = (group: (typeof report.groups)[number]): string => `${group.source} ${printable(group.stream, 64)}`;
    const width = Math.max(...report.groups.map((group) => label(group).length));
    for (const group of report.groups) {
      lines.push(`  ${label(group).padEnd(width)}  ${formatCount(group.records).padStart(12)} records  ${formatBytes(group.bytes).padStart(10)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

export interface ExportOptions {
  /** null = stdout. */
  readonly outPath: string | null;
  readonly deadLetters: boolean;
  readonly stdout: Writable;
  readonly stderr: Writable;
  readonly progressIntervalMs?: number;
  readonly pageSize?: number;
}

/** Streams every buffered (or dead-lettered) record as a JSON line; progress on stderr about once a second. */
export async function bufferExport(path: string, options: ExportOptions): Promise<number> {
  const inspector = open(path);
  const table = options.deadLetters ? 'dead_letters' : 'records';
  let out: Writable = options.stdout;
  if (options.outPath !== null) {
    try {
      // wx: never overwrite an earlier export; 0600: payloads may be personal data.
      out = createWriteStream('', { fd: openSync(options.outPath, 'wx', 0o600) });
    } catch (error) {
      inspector.close();
      throw new CommandError(`cannot create ${options.outPath}: ${errorMessage(error)}`);
    }
  }
  const failed = new Promise<never>((_resolve, reject) => {
    out.once('error', (error) => reject(new CommandError(`cannot write ${options.outPath ?? 'stdout'}: ${errorMessage(error)}`)));
  });
  failed.catch(() => undefined);
  const interval = options.progressIntervalMs ?? 1000;
  let done = 0;
  try {
    const total = inspector.count(table);
    let lastProgress = performance.now();
    for (const record of inspector.records(table, options.pageSize)) {
      if (!out.write(`${JSON.stringify(record)}\n`)) await Promise.race([once(out, 'drain'), failed]);
      done++;
      if (performance.now() - lastProgress >= interval) {
        lastProgress = performance.now();
        options.stderr.write(`exported ${done} / ${total} records\n`);
      }
    }
    if (out !== options.stdout) {
      out.end();
      await Promise.race([once(out, 'finish'), failed]);
    }
  } finally {
    inspector.close();
  }
  options.stderr.write(`exported ${done} ${options.deadLetters ? 'dead-lettered ' : ''}records${options.outPath === null ? '' : ` to ${options.outPath}`}\n`);
  return done;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

export function formatCount(count: number): string {
  return Math.round(count).toLocaleString('en-US');
}

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}
