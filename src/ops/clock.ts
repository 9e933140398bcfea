// Whether the wall clock can be trusted yet. A Raspberry Pi has no RTC: it boots with the time fake-hwclock
// saved at the last shutdown (or 1970) and jumps when NTP syncs. Records accepted before that carry a wrong
// received-at, so main.ts marks them `clock: unsynchronized` (a Kafka header). Nothing else depends on the wall
// clock: the buffer orders by seq and never expires by time, and durations use performance.now().
//
// Trusted, checked in this order (cheap first), every few seconds until true, then never again:
//   1. IOTGW_CLOCK_TRUSTED=1 in the environment (an RTC, GPS time, or a site without NTP where the operator vouches);
//   2. /run/systemd/timesync/synchronized exists (systemd-timesyncd touches it at its first sync);
//   3. `timedatectl show -p NTPSynchronized --value` says yes: the kernel's "synchronized" flag, set by whatever
//      NTP client runs (timesyncd, chrony, ntpd);
//   4. only when timedatectl cannot answer (no systemd, no D-Bus: containers, other inits): the wall clock is
//      later than this package's build, the best floor we have.
import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../core/log.ts';

export const TIMESYNC_FLAG_PATH = '/run/systemd/timesync/synchronized';

export type ClockTrustSource = 'IOTGW_CLOCK_TRUSTED' | 'systemd-timesyncd' | 'ntp' | 'after-build-time';

export interface ClockTrust {
  /** Cheap; false until a check found the clock synchronized. */
  isTrusted(): boolean;
  /** Runs one check now (logging the transition); resolves with the result. */
  check(): Promise<boolean>;
  /** Checks now, logs once if untrusted, then re-checks every `recheckMs` until trusted. */
  start(): Promise<void>;
  stop(): void;
}

export interface ClockTrustOptions {
  readonly recheckMs: number;
}

export interface ClockTrustDeps {
  readonly log: Logger;
  readonly env?: NodeJS.ProcessEnv;
  readonly nowMs?: () => number;
  readonly fileExists?: (path: string) => boolean;
  /** true/false from timedatectl, null when it cannot tell. */
  readonly ntpSynchronized?: () => Promise<boolean | null>;
  /** A lower bound for the real time: when this package was built. */
  readonly buildTimeMs?: number;
}

/** The build time of this module (tsc's output file keeps it when installed with `cp -a`). */
export function packageBuildTimeMs(): number {
  try {
    return statSync(fileURLToPath(import.meta.url)).mtimeMs;
  } catch {
    return 0;
  }
}

/** Asks timedatectl (works with timesyncd, chrony and ntpd); null when it is missing or cannot answer. */
export function timedatectlNtpSynchronized(timeoutMs = 2_000): Promise<boolean | null> {
  return new Promise((resolve) => {
    execFile('timedatectl', ['show', '-p', 'NTPSynchronized', '--value'], { timeout: timeoutMs }, (error, stdout) => {
      if (error !== null) return resolve(null);
      const answer = String(stdout).trim();
      resolve(answer === 'yes' ? true : answer === 'no' ? false : null);
    });
  });
}

export function createClockTrust(options: ClockTrustOptions, deps: ClockTrustDeps): ClockTrust {
  const log = deps.log.child({ component: 'clock' });
  const env = deps.env ?? process.env;
  const nowMs = deps.nowMs ?? Date.now;
  const fileExists = deps.fileExists ?? existsSync;
  const ntpSynchronized = deps.ntpSynchronized ?? (() => timedatectlNtpSynchronized());
  const buildTimeMs = deps.buildTimeMs ?? packageBuildTimeMs();
  let trusted = false;
  let timer: NodeJS.Timeout | null = null;
  let checking: Promise<boolean> | null = null;

  async function source(): Promise<ClockTrustSource | null> {
    if (/^(1|true|yes)$/i.test(env.IOTGW_CLOCK_TRUSTED ?? '')) return 'IOTGW_CLOCK_TRUSTED';
    if (fileExists(TIMESYNC_FLAG_PATH)) return 'systemd-timesyncd';
    const ntp = await ntpSynchronized();
    if (ntp === true) return 'ntp';
    if (ntp === null && nowMs() > buildTimeMs) return 'after-build-time';
    return null;
  }

  async function runCheck(): Promise<boolean> {
    if (trusted) return true;
    const found = await source();
    if (found !== null && !trusted) {
      trusted = true;
      log.info({ source: found, now: new Date(nowMs()).toISOString() }, `clock synchronized (${found}): records are no longer marked clock=unsynchronized`);
      if (timer !== null) clearInterval(timer);
      timer = null;
    }
    return trusted;
  }

  const check = (): Promise<boolean> => {
    checking ??= runCheck().finally(() => {
      checking = null;
    });
    return checking;
  };

  return {
    isTrusted: () => trusted,
    check,
    async start() {
      if (await check()) return;
      log.warn(
        { now: new Date(nowMs()).toISOString() },
        'clock not synchronized yet (no NTP sync seen): accepting records, marked clock=unsynchronized, until it is',
      );
      if (timer !== null) return;
      timer = setInterval(() => void check(), options.recheckMs);
      timer.unref();
    },
    stop() {
      if (timer !== null) clearInterval(timer);
      timer = null;
    },
  };
}
