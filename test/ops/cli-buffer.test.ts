// `iotgw buffer stats` and `iotgw buffer export` on a real buffer file, also while a writer holds it open (as
// the running gateway does): the figures match what was appended, the export round-trips every payload, and
// a missing buffer or an existing --out file is a clear error.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { createSqliteStore, type SqliteStore } from '../../src/buffer/sqlite-store.ts';
import type { NewRecord } from '../../src/record/record.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));
const run = promisify(execFile);

async function iotgw(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], {
      env: { ...process.env, IOTGW_CONFIG: undefined },
      timeout: 60_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    return { status: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { status: failed.code ?? -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

const T0 = Date.parse('2024-05-01T10:00:00.000Z');

function record(index: number, overrides: Partial<NewRecord> = {}): NewRecord {
  return {
    key: `em-${index % 3}`,
    stream: index % 2 === 0 ? 'telemetry' : 'status',
    source: 'mqtt',
    receivedAtMs: T0 + index * 1000,
    eventTimeMs: T0 + index * 1000 - 500,
    payload: Buffer.from(JSON.stringify({ n: index })),
    meta: { n: String(index) },
    ...overrides,
  };
}

function setup(t: TestContext): { config: string; bufferPath: string; store: SqliteStore } {
  const dir = tempDir(t);
  const bufferPath = join(dir, 'buffer.db');
  const store = createSqliteStore({ path: bufferPath, maxRecords: 1_000_000, maxBytes: 100_000_000, whenFull: 'reject' });
  t.after(() => store.close());
  const config = join(dir, 'iotgw.yaml');
  writeFileSync(config, stringify({ buffer: { path: bufferPath, max_records: 1_000_000, max_bytes: 100_000_000 } }));
  return { config, bufferPath, store };
}

test('buffer stats reads a buffer the writer still holds open; --json has the same figures', async (t) => {
  const { config, bufferPath, store } = setup(t);
  store.append([[record(0), record(1), record(2), record(3)], [record(4, { source: 'semtech-udp', stream: 'uplink' })]]);
  const [binary] = store.append([[record(5, { payload: Buffer.from([0xff, 0xfe, 0x00]) })]]);
  assert.ok(binary?.ok);
  store.deadLetter([binary.seqs[0] as number], 'INVALID_RECORD');

  const text = await iotgw(['buffer', 'stats', '--config', config]);
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, new RegExp(`buffer ${bufferPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  assert.match(text.stdout, /waiting for Kafka: 5 records/);
  assert.match(text.stdout, /oldest received: {3}2024-05-01T10:00:00\.000Z/);
  assert.match(text.stdout, /newest received: {3}2024-05-01T10:00:04\.000Z/);
  assert.match(text.stdout, /dead letters: {6}1 records/);
  assert.match(text.stdout, /INVALID_RECORD: 1/);
  assert.match(text.stdout, /mqtt telemetry +2 records/);
  assert.match(text.stdout, /semtech-udp uplink +1 records/);

  const json = await iotgw(['buffer', 'stats', '--json', '--config', config]);
  assert.equal(json.status, 0, json.stderr);
  const report = JSON.parse(json.stdout) as {
    depthRecords: number;
    deadLetters: number;
    groups: { source: string; stream: string; records: number }[];
    fileBytes: number;
  };
  assert.equal(report.depthRecords, 5);
  assert.equal(report.deadLetters, 1);
  assert.ok(report.fileBytes > 0);
  assert.deepEqual(report.groups.map((group) => `${group.source}/${group.stream}=${group.records}`).sort(), [
    'mqtt/status=2',
    'mqtt/telemetry=2',
    'semtech-udp/uplink=1',
  ]);
});

test('buffer export writes every record as a JSON line in seq order, in pages, to stdout or a new --out file', async (t) => {
  const { config, bufferPath, store } = setup(t);
  const total = 2500;
  for (let start = 0; start < total; start += 500) store.append([Array.from({ length: 500 }, (_, offset) => record(start + offset))]);
  const [binary] = store.append([[record(total, { payload: Buffer.from([0xc3, 0x28, 0x01]) })]]);
  assert.ok(binary?.ok);

  const out = await iotgw(['buffer', 'export', '--config', config]);
  assert.equal(out.status, 0, out.stderr);
  const lines = out.stdout
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.equal(lines.length, total + 1);
  assert.deepEqual(
    lines.map((line) => line.seq),
    [...lines.map((line) => line.seq as number)].sort((a, b) => a - b),
  );
  const first = lines[0] as Record<string, unknown>;
  assert.equal(first.key, 'em-0');
  assert.equal(first.stream, 'telemetry');
  assert.equal(first.source, 'mqtt');
  assert.equal(first.received_at, '2024-05-01T10:00:00.000Z');
  assert.equal(first.event_time, '2024-05-01T09:59:59.500Z');
  assert.deepEqual(first.meta, { n: '0' });
  assert.equal(first.payload_utf8, '{"n":0}');
  assert.equal(Buffer.from(first.payload_base64 as string, 'base64').toString(), '{"n":0}');
  assert.match(first.id as string, /^[0-9a-f]{12}-\d+$/);
  const last = lines.at(-1) as Record<string, unknown>;
  assert.equal(last.payload_utf8, undefined, 'invalid UTF-8 is exported as base64 only');
  assert.deepEqual([...Buffer.from(last.payload_base64 as string, 'base64')], [0xc3, 0x28, 0x01]);
  assert.match(out.stderr, new RegExp(`exported ${total + 1} records`));

  const file = join(bufferPath, '..', 'backlog.jsonl');
  const toFile = await iotgw(['buffer', 'export', '--out', file, '--config', config]);
  assert.equal(toFile.status, 0, toFile.stderr);
  assert.equal(toFile.stdout, '');
  assert.equal(readFileSync(file, 'utf8'), out.stdout);
  assert.match(toFile.stderr, /exported 2501 records to .*backlog\.jsonl/);

  const again = await iotgw(['buffer', 'export', '--out', file, '--config', config]);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /cannot create .*backlog\.jsonl: .*EEXIST/);

  store.deadLetter([binary.seqs[0] as number], 'INVALID_RECORD');
  const dead = await iotgw(['buffer', 'export', '--dead-letters', '--config', config]);
  assert.equal(dead.status, 0, dead.stderr);
  const deadLines = dead.stdout
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.equal(deadLines.length, 1);
  assert.equal(deadLines[0]?.dead_letter_reason, 'INVALID_RECORD');
  assert.match(String(deadLines[0]?.dead_at), /^\d{4}-\d\d-\d\dT/);
});

test('buffer stats and export name a missing buffer file and exit 1 without a stack trace', async (t) => {
  const dir = tempDir(t);
  const config = join(dir, 'iotgw.yaml');
  writeFileSync(config, stringify({ buffer: { path: join(dir, 'missing', 'buffer.db') } }));
  for (const command of [
    ['buffer', 'stats'],
    ['buffer', 'export'],
  ]) {
    const result = await iotgw([...command, '--config', config]);
    assert.equal(result.status, 1, command.join(' '));
    assert.match(result.stderr, /no buffer file at .*missing\/buffer\.db: check buffer\.path/);
    assert.doesNotMatch(result.stderr, /\n\s+at /);
  }
});
