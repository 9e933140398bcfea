// The periodic LoRaWAN session backup (lorawan.session_backup): shortly after start and then every interval,
// the committed device state (the buffer's readState, i.e. what survived the last commit) goes into a sealed
// session archive (session-archive.ts) written atomically with mode 0600, best on another medium than the SD
// card. `iotgw lorawan sessions import FILE --key-file K` puts it into a new buffer file.
// Failures (disk full, the stick unplugged) are counted and logged once per cause with what to do, never fatal.
// A backup never replaces one that holds sessions of configured devices the buffer has no state for: after the
// card is swapped, the gateway starting on an empty buffer must not overwrite the only copy before it is imported.
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Component, HealthReport } from '../../core/lifecycle.ts';
import type { Logger } from '../../core/log.ts';
import type { Metrics } from '../../core/metrics.ts';
import { errorMessage } from '../../errors.ts';
import { writeFileAtomically } from '../../shared/atomic-file.ts';
import { STATE_SCOPE } from './device-sessions.ts';
import { buildSessionArchive, type ConfiguredDevice, openSessionArchive, sealSessionArchive } from './session-archive.ts';

export interface SessionBackupOptions {
  /** Where the sealed archive goes; replaced at each backup. */
  readonly path: string;
  readonly intervalMs: number;
  /** 32 bytes (AES-256-GCM). */
  readonly key: Buffer;
  readonly gatewayId: string;
  /** The configured devices: ABP keys for the archive, and which devices a backup must not lose. */
  readonly devices: ReadonlyMap<string, ConfiguredDevice>;
  /** The first backup this long after start; default 5,000 ms. */
  readonly firstDelayMs?: number;
}

export interface SessionBackupDeps {
  /** The committed state of a scope (the buffer's readState). */
  readonly readState: (scope: string) => Promise<ReadonlyMap<string, string>>;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Wall clock for exported_at; Date.now when absent. */
  readonly nowMs?: () => number;
}

export type BackupOutcome =
  | { readonly ok: true; readonly devices: number }
  | {
      readonly ok: false;
      /** Bounded: an errno code, read-state, previous-unreadable, would-lose-sessions or other (the metric's reason). */
      readonly cause: string;
      readonly message: string;
    };

export interface SessionBackup extends Component {
  /** One backup now (the timer calls it too); never rejects. */
  backupNow(): Promise<BackupOutcome>;
  /** A reload (SIGHUP): the configured devices from now on (ABP keys in the archive; which sessions a backup must keep). */
  replaceDevices(devices: ReadonlyMap<string, ConfiguredDevice>): void;
}

const DEFAULT_FIRST_DELAY_MS = 5_000;
const KNOWN_CODES = new Set(['ENOSPC', 'ENOENT', 'EACCES', 'EPERM', 'EROFS', 'EIO', 'EDQUOT', 'ENOTDIR']);

export function createSessionBackup(options: SessionBackupOptions, deps: SessionBackupDeps): SessionBackup {
  const log = deps.log.child({ component: 'lorawan.session-backup' });
  const { metrics } = deps;
  const nowMs = deps.nowMs ?? Date.now;
  let devices = options.devices;
  const directory = dirname(options.path);
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<BackupOutcome> | null = null;
  let stopped = true;
  /** The cause last logged; a failure is logged again only when its cause changes (or after a success). */
  let loggedCause: string | null = null;
  let last: BackupOutcome | null = null;
  let written = 0;

  function advice(code: string, error: unknown): string {
    switch (code) {
      case 'ENOSPC':
      case 'EDQUOT':
        return `the file system of ${options.path} is full: free space there`;
      case 'ENOENT':
      case 'ENOTDIR':
        return `${directory} does not exist (a USB stick or network share not mounted?): mount it, or fix lorawan.session_backup.path`;
      case 'EACCES':
      case 'EPERM':
        return `the gateway may not write in ${directory}: give its user write access there (under systemd also ReadWritePaths=${directory} in a drop-in: systemctl edit iotgw)`;
      case 'EROFS':
        return `${directory} is read-only (under systemd, ProtectSystem=strict: add ReadWritePaths=${directory} in a drop-in, systemctl edit iotgw; or the medium is mounted read-only)`;
      case 'EIO':
        return `I/O error on the medium of ${options.path}: check or replace it`;
      default:
        return errorMessage(error);
    }
  }

  async function attempt(): Promise<BackupOutcome> {
    let rows: ReadonlyMap<string, string>;
    try {
      rows = await deps.readState(STATE_SCOPE);
    } catch (error) {
      return { ok: false, cause: 'read-state', message: `the committed LoRaWAN state could not be read from the buffer: ${errorMessage(error)}` };
    }
    const refusal = await checkPrevious(rows);
    if (refusal !== null) return refusal;
    const { archive } = buildSessionArchive(rows, devices, { exportedAtMs: nowMs(), gatewayId: options.gatewayId });
    try {
      await writeFileAtomically(options.path, sealSessionArchive(archive, options.key), { mode: 0o600, replace: true });
    } catch (error) {
      const code = String((error as { code?: unknown }).code ?? '');
      return { ok: false, cause: KNOWN_CODES.has(code) ? code : 'other', message: `cannot write ${options.path}: ${advice(code, error)}` };
    }
    return { ok: true, devices: archive.devices.length };
  }

  /** Refuses to replace a backup holding sessions of configured devices that have no state in the buffer now. */
  async function checkPrevious(rows: ReadonlyMap<string, string>): Promise<BackupOutcome | null> {
    let bytes: Buffer;
    try {
      bytes = await readFile(options.path);
    } catch (error) {
      const code = String((error as { code?: unknown }).code ?? '');
      if (code === 'ENOENT') return null;
      return { ok: false, cause: KNOWN_CODES.has(code) ? code : 'other', message: `cannot read the last backup ${options.path}: ${advice(code, error)}` };
    }
    const previous = openSessionArchive(bytes, options.key);
    if (!previous.ok) {
      return {
        ok: false,
        cause: 'previous-unreadable',
        message: `the last backup ${options.path} cannot be read with lorawan.session_backup.key_file (${previous.problems[0]}), so it is not replaced: it may be the only copy of these sessions. Move it aside to let backups go on`,
      };
    }
    const lost = previous.archive.devices.filter((device) => device.session !== null && devices.has(device.dev_eui) && !rows.has(device.dev_eui));
    if (lost.length === 0) return null;
    return {
      ok: false,
      cause: 'would-lose-sessions',
      message: `the last backup ${options.path} (of ${previous.archive.exported_at}) holds sessions of ${lost.length} configured devices that this buffer has no state for (${lost
        .slice(0, 3)
        .map((device) => device.dev_eui)
        .join(
          ', ',
        )}${lost.length > 3 ? ', ...' : ''}): a new or replaced buffer file? Not replaced. Import it (sudo systemctl stop iotgw; iotgw lorawan sessions import ${options.path} --key-file KEY --config FILE), or move it aside to back up this buffer from now on`,
    };
  }

  function record(outcome: BackupOutcome): void {
    last = outcome;
    if (outcome.ok) {
      metrics.lorawanSessionBackupLastSuccess.set(Math.floor(nowMs() / 1000));
      if (loggedCause !== null) log.info({ path: options.path, devices: outcome.devices }, 'LoRaWAN session backup written again');
      else if (written === 0) log.info({ path: options.path, devices: outcome.devices }, 'LoRaWAN session backup written');
      else log.debug({ path: options.path, devices: outcome.devices }, 'LoRaWAN session backup written');
      written += 1;
      loggedCause = null;
      return;
    }
    metrics.lorawanSessionBackupFailures.inc({ reason: outcome.cause });
    if (outcome.cause === loggedCause) return;
    loggedCause = outcome.cause;
    log.error(
      { path: options.path, reason: outcome.cause },
      `LoRaWAN session backup failed (logged once until it works or fails otherwise): ${outcome.message}`,
    );
  }

  function backupNow(): Promise<BackupOutcome> {
    running ??= attempt()
      .catch((error: unknown): BackupOutcome => ({ ok: false, cause: 'other', message: errorMessage(error) }))
      .then((outcome) => {
        record(outcome);
        running = null;
        return outcome;
      });
    return running;
  }

  function schedule(delayMs: number): void {
    if (stopped) return;
    timer = setTimeout(() => {
      timer = null;
      void backupNow().then(() => schedule(options.intervalMs));
    }, delayMs);
    timer.unref();
  }

  return {
    name: 'lorawan.session-backup',
    backupNow,
    replaceDevices(next) {
      devices = next;
    },
    async start() {
      if (!stopped) return;
      stopped = false;
      schedule(options.firstDelayMs ?? DEFAULT_FIRST_DELAY_MS);
    },
    async stop() {
      stopped = true;
      if (timer !== null) clearTimeout(timer);
      timer = null;
      // A backup under way finishes (its temp file is renamed or removed) before the buffer closes.
      await running;
    },
    health(): HealthReport {
      if (last === null || last.ok) return { status: 'ok' };
      return { status: 'degraded', detail: `session backup failed: ${last.message}` };
    },
  };
}
