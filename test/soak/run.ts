// `npm run soak -- <scenario> [options]`: the long versions of the suite's fault tests, run by hand (they take
// minutes to hours). Each prints its progress and a summary, and exits 1 if a guarantee was broken.
//   npm run soak -- power-cut --cuts 200
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runPowerCutScenario } from '../power-cut/power-cut-scenario.ts';

const USAGE = `npm run soak -- power-cut [options]

power-cut: the gateway's buffer on power-cut-fs (a FUSE file system that keeps only fsynced data when the
power fails) under QoS 1 load; the power is cut at random moments, the gateway restarted on what the disk
kept; at the end every acknowledged reading must be in Kafka, in order per device. Needs root (FUSE mount),
libfuse3-dev and librdkafka-dev.

Options:
  --cuts N        power cuts (default 200)
  --devices N     simulated MQTT devices (default 100)
  --rate N        readings per second offered by the fleet (default 400; the mock Kafka cluster keeps
                  only ~5 MiB per partition, so much more over 200 cuts outruns what it can hold)
  --min-load-ms N, --max-load-ms N
                  load between a restart and the next cut, uniform (default 300..2000)
  --seed N        random seed for the fleet and the cut moments (default: the time)
  --control       a disk that ignores fsync: shows what the test reports when data is lost
  -h, --help`;

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      cuts: { type: 'string' },
      devices: { type: 'string' },
      rate: { type: 'string' },
      'min-load-ms': { type: 'string' },
      'max-load-ms': { type: 'string' },
      seed: { type: 'string' },
      control: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true || positionals[0] !== 'power-cut') {
    process.stdout.write(`${USAGE}\n`);
    process.exitCode = values.help === true ? 0 : 2;
    return;
  }
  const number = (name: string, value: string | undefined, fallback: number): number => {
    if (value === undefined) return fallback;
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < 0) throw new Error(`--${name} takes a whole number, got '${value}'`);
    return parsed;
  };
  const options = {
    cuts: number('cuts', values.cuts, 200),
    devices: number('devices', values.devices, 100),
    ratePerSecond: number('rate', values.rate, 400),
    minLoadMs: number('min-load-ms', values['min-load-ms'], 300),
    maxLoadMs: number('max-load-ms', values['max-load-ms'], 2000),
    seed: number('seed', values.seed, Date.now() % 2 ** 31),
    ignoreFsync: values.control === true,
  };
  const workDir = mkdtempSync(join(tmpdir(), 'iotgw-soak-power-cut-'));
  const startedAt = Date.now();
  process.stdout.write(
    `power-cut soak: ${options.cuts} cuts, ${options.devices} devices at ${options.ratePerSecond}/s, seed ${options.seed}${options.ignoreFsync ? ', CONTROL (fsync ignored)' : ''}\n`,
  );
  try {
    const report = await runPowerCutScenario(workDir, {
      ...options,
      onProgress: (line) => process.stdout.write(`  ${new Date().toISOString().slice(11, 19)} ${line}\n`),
    });
    const minutes = ((Date.now() - startedAt) / 60_000).toFixed(1);
    process.stdout.write(
      [
        '',
        `cuts survived:          ${report.cuts} (${minutes} min)`,
        `records acknowledged:   ${report.acked}`,
        `lost (must be 0):       ${report.lost.length}${report.lost.length > 0 ? `  e.g. ${report.lost.slice(0, 5).join(', ')}` : ''}`,
        `devices out of order:   ${report.outOfOrder.length}`,
        `duplicated:             ${report.gatewayDuplicates} re-sent with the same record id, ${report.deviceDuplicates} device re-sends stored twice`,
        `messages in Kafka:      ${report.messagesInKafka}`,
        '',
      ].join('\n'),
    );
    if (report.lost.length > 0 || report.outOfOrder.length > 0) process.exitCode = 1;
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`soak failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
