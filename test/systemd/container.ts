// A real systemd for the tests: a minimal Debian bookworm tree (debootstrap, cached outside the repository)
// booted with systemd-nspawn, systemd as PID 1, no network but its own loopback. The host's PID 1 is not
// systemd here, so there is no machined: the container runs with --register=no --keep-unit and commands go
// in with nsenter. Each container gets a copy-on-write overlay of the cached tree, kept across its reboots,
// and sees the checkout at /src through a second overlay, so an install that builds writes nothing into it.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../helpers/wait-for.ts';

export const CHECKOUT = fileURLToPath(new URL('../../', import.meta.url)).replace(/\/$/, '');
const CACHE_DIR = process.env.IOTGW_TEST_CACHE ?? '/var/cache/iotgw-test';
const MIRROR = process.env.IOTGW_TEST_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';
/** What the tree holds; a change here builds a new tree (the name carries its hash). */
const PACKAGES = ['systemd', 'systemd-sysv', 'dbus', 'mosquitto-clients', 'ca-certificates'];
/** Node.js comes from the host, bound read-only: the unit runs `/usr/bin/env node`, install.sh runs npm. */
const NODE_BINARY = '/usr/bin/node';
const NPM_DIR = '/usr/lib/node_modules/npm';
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface ExecResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface Container {
  /** The container's root as the host sees it (the overlay): read and edit its files from the test. */
  readonly root: string;
  /** Host pid of the container's PID 1, for nsenter; changes at each boot. */
  initPid(): number;
  /** Runs a command inside (all namespaces), as root, with a clean environment; never rejects on exit status. */
  exec(command: readonly string[], options?: { readonly input?: string; readonly timeoutMs?: number; readonly cwd?: string }): Promise<ExecResult>;
  /** `sh -c script` inside. */
  sh(script: string, options?: { readonly timeoutMs?: number; readonly cwd?: string }): Promise<ExecResult>;
  /** Prefix that runs a host binary in the container's network namespace only (its loopback, the host's files). */
  inNetwork(): string[];
  /** `systemctl reboot` inside; resolves once the new boot is up. */
  reboot(): Promise<void>;
  /** Powers off (SIGTERM to nspawn), unmounts the overlays, removes the copy. Idempotent. */
  destroy(): Promise<void>;
}

/** Builds the cached Debian tree once (about a minute), then returns its path. */
export function ensureImage(progress: (line: string) => void = () => undefined): string {
  const recipe = JSON.stringify({ suite: 'bookworm', variant: 'minbase', packages: PACKAGES, mirror: MIRROR, layout: 2 });
  const image = join(CACHE_DIR, `bookworm-${createHash('sha256').update(recipe).digest('hex').slice(0, 12)}`);
  if (existsSync(join(image, '.iotgw-image-complete'))) return image;
  for (const tool of ['debootstrap', 'systemd-nspawn', 'nsenter']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
      throw new Error(`${tool} is missing: the systemd tests need it (Debian: apt-get install -y debootstrap systemd-container util-linux)`);
    }
  }
  mkdirSync(CACHE_DIR, { recursive: true });
  const building = mkdtempSync(join(CACHE_DIR, 'building-'));
  progress(`building a Debian bookworm tree for systemd-nspawn in ${image} (debootstrap from ${MIRROR}; once, then cached)`);
  const result = spawnSync('debootstrap', ['--variant=minbase', `--include=${PACKAGES.join(',')}`, 'bookworm', building, MIRROR], {
    encoding: 'utf8',
    timeout: 15 * 60_000,
  });
  if (result.status !== 0) {
    rmSync(building, { recursive: true, force: true });
    throw new Error(`debootstrap failed (exit ${result.status}): ${(result.stderr || result.stdout).slice(-3000)}`);
  }
  // npm lives in the host's /usr/lib/node_modules/npm (bound at boot); its command is a relative symlink.
  rmSync(join(building, 'usr/bin/npm'), { force: true });
  symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', join(building, 'usr/bin/npm'));
  // No getty on the console: the test reads nothing there, and it would hold the console.
  rmSync(join(building, 'etc/systemd/system/getty.target.wants'), { recursive: true, force: true });
  writeFileSync(join(building, '.iotgw-image-complete'), `${recipe}\n`);
  try {
    renameSync(building, image);
  } catch (error) {
    rmSync(building, { recursive: true, force: true });
    if (!existsSync(join(image, '.iotgw-image-complete'))) throw error; // else another run finished first
  }
  return image;
}

/** Boots a container from the cached tree; `binds` are host paths bound read-write at the same path. */
export async function bootContainer(options: { readonly image: string; readonly name: string; readonly log?: (line: string) => void }): Promise<Container> {
  const log = options.log ?? (() => undefined);
  const work = mkdtempSync(join(tmpdir(), `iotgw-${options.name}-`));
  const root = join(work, 'root');
  const src = join(work, 'src');
  for (const dir of ['root', 'root-upper', 'root-work', 'src', 'src-upper', 'src-work']) mkdirSync(join(work, dir));
  mountOverlay(options.image, join(work, 'root-upper'), join(work, 'root-work'), root);
  mountOverlay(CHECKOUT, join(work, 'src-upper'), join(work, 'src-work'), src);

  let nspawn: ChildProcess | null = null;
  let nspawnExit: Promise<number | null> = Promise.resolve(null);
  let consoleTail = '';
  let pid = 0;
  let destroyed = false;

  async function boot(): Promise<void> {
    const child = spawn(
      'systemd-nspawn',
      [
        `--directory=${root}`,
        `--machine=${options.name}`,
        '--boot',
        '--register=no',
        '--keep-unit',
        '--private-network',
        '--console=read-only',
        `--bind-ro=${NODE_BINARY}`,
        `--bind-ro=${NPM_DIR}`,
        `--bind=${src}:/src`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY: '1' } },
    );
    const keep = (chunk: Buffer) => {
      consoleTail = (consoleTail + chunk.toString('utf8')).slice(-6000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    nspawn = child;
    nspawnExit = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    let exited = false;
    void nspawnExit.then(() => {
      exited = true;
    });
    await waitFor(
      () => {
        if (exited) throw new Error(`systemd-nspawn exited while booting:\n${consoleTail}`);
        const found = findInit(child.pid ?? -1);
        if (found !== null) pid = found;
        return found !== null;
      },
      'the container to start systemd',
      30_000,
      50,
    );
    // 'degraded' is still a booted system: the test names failed units itself when it matters.
    let state = '';
    let lastProblem = '';
    await waitFor(
      async () => {
        const answer = await exec(['systemctl', 'is-system-running'], { timeoutMs: 10_000 });
        state = answer.stdout.trim();
        lastProblem = answer.stderr.trim();
        return state === 'running' || state === 'degraded';
      },
      `systemctl is-system-running to say running (last: ${state || lastProblem})`,
      60_000,
      200,
    );
    log(`container ${options.name} booted (systemd pid ${pid} on the host, system ${state})`);
  }

  function exec(command: readonly string[], execOptions: { input?: string; timeoutMs?: number; cwd?: string } = {}): Promise<ExecResult> {
    const args = ['-t', String(pid), '-a', '--', 'env', '-i', '-C', execOptions.cwd ?? '/root', `PATH=${PATH}`, 'HOME=/root', 'LANG=C.UTF-8', ...command];
    return new Promise((resolve) => {
      const child = spawn('nsenter', args, { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString('utf8');
      });
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString('utf8');
      });
      const timer = setTimeout(() => {
        stderr += `\n[killed after ${execOptions.timeoutMs ?? 120_000} ms]`;
        child.kill('SIGKILL');
      }, execOptions.timeoutMs ?? 120_000);
      child.once('close', (status) => {
        clearTimeout(timer);
        resolve({ status, stdout, stderr });
      });
      child.stdin.on('error', () => undefined);
      child.stdin.end(execOptions.input ?? '');
    });
  }

  async function powerOff(): Promise<void> {
    const child = nspawn;
    if (child === null) return;
    nspawn = null;
    child.kill('SIGTERM'); // nspawn asks the container's systemd to power off cleanly
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await nspawnExit;
    clearTimeout(timer);
  }

  try {
    await boot();
  } catch (error) {
    await powerOff();
    unmount(root);
    unmount(src);
    rmSync(work, { recursive: true, force: true });
    throw error;
  }

  return {
    root,
    initPid: () => pid,
    exec,
    sh: (script, shOptions = {}) => exec(['sh', '-c', script], shOptions),
    inNetwork: () => ['nsenter', '-t', String(pid), '-n', '--'],
    async reboot() {
      await exec(['systemctl', 'reboot']);
      const code = await Promise.race([nspawnExit, sleep(60_000).then(() => 'timeout' as const)]);
      // systemd-nspawn exits 133 when the container asked for a reboot.
      if (code !== 133) throw new Error(`systemd-nspawn exited with ${String(code)} after systemctl reboot (expected 133):\n${consoleTail}`);
      nspawn = null;
      await boot();
    },
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      await powerOff();
      unmount(root);
      unmount(src);
      rmSync(work, { recursive: true, force: true });
    },
  };
}

function mountOverlay(lower: string, upper: string, workDir: string, target: string): void {
  const result = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${workDir}`, target], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`cannot mount an overlay of ${lower} on ${target} (needs root): ${result.stderr}`);
}

function unmount(target: string): void {
  for (let attempt = 0; attempt < 20; attempt++) {
    if (
      !readFileSync('/proc/self/mountinfo', 'utf8')
        .split('\n')
        .some((line) => line.split(' ')[4] === target)
    )
      return;
    if (spawnSync('umount', [target]).status === 0) return;
    spawnSync('sleep', ['0.2']);
  }
  spawnSync('umount', ['-l', target]);
}

/** The container's systemd: the first process named systemd below the nspawn process. */
function findInit(nspawnPid: number): number | null {
  const children = new Map<number, number[]>();
  const names = new Map<number, string>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const name = stat.slice(stat.indexOf('(') + 1, close);
      const parent = Number(stat.slice(close + 2).split(' ')[1]);
      names.set(Number(entry), name);
      children.set(parent, [...(children.get(parent) ?? []), Number(entry)]);
    } catch {
      // the process ended while we looked
    }
  }
  const queue = [...(children.get(nspawnPid) ?? [])];
  while (queue.length > 0) {
    const candidate = queue.shift() as number;
    if (names.get(candidate) === 'systemd') return candidate;
    queue.push(...(children.get(candidate) ?? []));
  }
  return null;
}
