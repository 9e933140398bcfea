// sd_notify for Type=notify: READY=1 once every listener is up, STATUS= summaries, WATCHDOG=1 pings and
// STOPPING=1, sent to $NOTIFY_SOCKET. Without NOTIFY_SOCKET (a terminal, a test, another supervisor) every
// call is a no-op.
//
// How, without a native module: NOTIFY_SOCKET is an AF_UNIX SOCK_DGRAM socket, and Node has no unix datagram
// sockets (node:dgram is udp4/udp6 only; node:net is stream only, and a stream connect to a datagram socket
// fails with EPROTOTYPE). The options were:
//   - a native addon (sd-notify, unix-dgram): a second compiled dependency next to better-sqlite3, with
//     libsystemd-dev at build time; the maintained ones are few and stale.
//   - a helper interpreter (python3, socat): not on a minimal Raspberry Pi OS / Debian image.
//   - the `systemd-notify` binary, which ships with systemd itself, so it is present wherever NOTIFY_SOCKET is.
// We spawn `systemd-notify VAR=VALUE...` (asynchronously, one at a time, in order). It is a child process, so
// the unit needs NotifyAccess=all. Its historical race: systemd attributes a datagram to a unit by looking up
// the sender's cgroup in /proc/PID; a sender that already exited cannot be attributed, and the message is
// dropped ("Cannot find unit for notify message of PID", systemd#2737/#2739). systemd 246 fixed it with
// sd_notify_barrier(): systemd-notify now sends the message, then BARRIER=1 with a pipe fd, and stays alive
// until the manager has processed both (it closes the fd). Debian bookworm and Raspberry Pi OS ship systemd
// 252, trixie 257, so the blocking default is race-free there; we never pass --no-block. We do not pass
// --pid either: faking the sender's credentials needs CAP_SYS_ADMIN, which the unit does not grant, and it
// would add MAINPID= to every message. The cost, one short-lived process per message (a watchdog ping every
// WatchdogSec/2, a status now and then), is negligible even on a Pi.
import { execFile } from 'node:child_process';
import type { Logger } from '../core/log.ts';

export interface SystemdNotifier {
  /** True when NOTIFY_SOCKET is set, i.e. messages go somewhere. */
  readonly enabled: boolean;
  /** READY=1 with a STATUS= line: send only after every listener is up. */
  ready(status: string): void;
  /** STATUS= line shown by `systemctl status iotgw`. */
  status(text: string): void;
  /** A reload began (SIGHUP); `ready` ends it. */
  reloading(status: string): void;
  /** STOPPING=1 (with a status): systemd then knows the exit that follows is a stop, not a crash. */
  stopping(status?: string): void;
  /** The watchdog timeout in ms from WATCHDOG_USEC (when WATCHDOG_PID is ours or unset), or null without a watchdog. */
  watchdogTimeoutMs(): number | null;
  /** How often to ping: half the watchdog timeout (sd_watchdog_enabled(3) advice), or null without a watchdog. */
  watchdogIntervalMs(): number | null;
  /** WATCHDOG=1, with an optional STATUS= line in the same message. */
  watchdogPing(status?: string): void;
  /** Resolves when every message queued so far was handed to the manager (or failed); bounded by timeoutMs. */
  flush(timeoutMs?: number): Promise<void>;
}

export interface SystemdNotifierDeps {
  readonly log: Logger;
  /** Defaults to process.env. */
  readonly env?: NodeJS.ProcessEnv;
  /** Defaults to process.pid (compared with WATCHDOG_PID). */
  readonly pid?: number;
  /** The binary to run; defaults to systemd-notify from PATH. */
  readonly command?: string;
}

/** systemd-notify waits up to 5 s for the barrier; a hung child must not stall the queue forever. */
const SEND_TIMEOUT_MS = 10_000;

export function createSystemdNotifier(deps: SystemdNotifierDeps): SystemdNotifier {
  const env = deps.env ?? process.env;
  const log = deps.log.child({ component: 'systemd' });
  const socket = env.NOTIFY_SOCKET ?? '';
  const enabled = socket !== '';
  const command = deps.command ?? 'systemd-notify';
  const watchdogMs = parseWatchdog(env, deps.pid ?? process.pid);

  let chain: Promise<void> = Promise.resolve();
  let queued = 0;
  let lastFailure = '';
  let stopped = false;

  function send(assignments: readonly string[]): void {
    if (!enabled) return;
    // A backlog means systemd-notify is slow or failing; pings and statuses are worth nothing late.
    if (queued >= 8 && !assignments.some((line) => line === 'READY=1' || line === 'STOPPING=1')) return;
    queued += 1;
    chain = chain
      .then(() => run(assignments))
      .finally(() => {
        queued -= 1;
      });
  }

  function run(assignments: readonly string[]): Promise<void> {
    return new Promise((resolve) => {
      execFile(command, [...assignments], { env: { ...env, NOTIFY_SOCKET: socket }, timeout: SEND_TIMEOUT_MS }, (error, _stdout, stderr) => {
        if (error === null) {
          if (lastFailure !== '') log.info('systemd notifications work again');
          lastFailure = '';
        } else {
          const code = (error as NodeJS.ErrnoException).code;
          const reason =
            code === 'ENOENT'
              ? `${command} not found: it ships with systemd (apt-get install systemd); Type=notify needs it`
              : `${command} failed: ${String(stderr).trim() || error.message}`;
          // Logged when the failure starts or changes, not per message (a ping every 15 s would flood the journal).
          if (reason !== lastFailure) log.error({ message: assignments.join(' ') }, `cannot notify systemd: ${reason}`);
          lastFailure = reason;
        }
        resolve();
      });
    });
  }

  const statusLine = (text: string): string => `STATUS=${text.replace(/\n/g, ' ')}`;

  return {
    enabled,
    ready(status) {
      send(['READY=1', statusLine(status)]);
    },
    status(text) {
      if (!stopped) send([statusLine(text)]);
    },
    reloading(status) {
      // MONOTONIC_USEC lets systemd 253+ tell this reload from an older one; older versions ignore it.
      if (!stopped) send(['RELOADING=1', `MONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`, statusLine(status)]);
    },
    stopping(status = 'stopping: finishing commits and the Kafka batch in flight') {
      stopped = true;
      send(['STOPPING=1', statusLine(status)]);
    },
    watchdogTimeoutMs: () => watchdogMs,
    watchdogIntervalMs: () => (watchdogMs === null ? null : Math.max(1, Math.floor(watchdogMs / 2))),
    watchdogPing(status) {
      if (stopped) return;
      send(status === undefined ? ['WATCHDOG=1'] : ['WATCHDOG=1', statusLine(status)]);
    },
    async flush(timeoutMs = SEND_TIMEOUT_MS) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      });
      await Promise.race([chain, timeout]);
      clearTimeout(timer);
    },
  };
}

/** WATCHDOG_USEC applies to us only when WATCHDOG_PID is unset or our pid (sd_watchdog_enabled(3)). */
function parseWatchdog(env: NodeJS.ProcessEnv, pid: number): number | null {
  const usec = Number(env.WATCHDOG_USEC ?? '');
  if (!Number.isFinite(usec) || usec <= 0) return null;
  const watchdogPid = env.WATCHDOG_PID;
  if (watchdogPid !== undefined && watchdogPid !== '' && Number(watchdogPid) !== pid) return null;
  return Math.max(1, Math.floor(usec / 1000));
}
