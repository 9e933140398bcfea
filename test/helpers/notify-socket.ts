// A stand-in for systemd's NOTIFY_SOCKET: a real AF_UNIX datagram socket (Node has none, so a tiny python3
// server owns it) that records every datagram with the time it arrived. BARRIER=1 datagrams (systemd-notify's
// sd_notify_barrier) are dropped without keeping their fd, which releases the barrier as PID 1 would.
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { tempDir } from './temp-dir.ts';

const SERVER = `
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print(json.dumps({"bound": True}), flush=True)
while True:
    data = s.recv(65536).decode("utf-8", "replace")
    if data.strip() == "BARRIER=1":
        continue
    print(json.dumps({"text": data}), flush=True)
`;

export interface NotifyMessage {
  /** The datagram, e.g. "READY=1\\nSTATUS=ready: kafka up, 0 buffered". */
  readonly text: string;
  /** Its assignments: { READY: '1', STATUS: '...' }. */
  readonly fields: Readonly<Record<string, string>>;
  /** performance.now() in this process when it arrived. */
  readonly atMs: number;
}

export interface NotifySocket {
  readonly path: string;
  readonly messages: readonly NotifyMessage[];
  /** Resolves with the first message (already received or later) that matches. */
  waitFor(test: (message: NotifyMessage) => boolean, timeoutMs?: number): Promise<NotifyMessage>;
}

export async function startNotifySocket(t: TestContext): Promise<NotifySocket> {
  const path = join(tempDir(t, 'iotgw-notify-'), 'notify.sock');
  const child: ChildProcess = spawn('python3', ['-c', SERVER, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => {
    child.kill('SIGKILL');
  });
  const messages: NotifyMessage[] = [];
  const waiters = new Set<() => void>();
  let partial = '';
  let bound: () => void = () => undefined;
  const ready = new Promise<void>((resolve, reject) => {
    bound = resolve;
    child.once('exit', (code) => reject(new Error(`notify socket server exited (${code}); is python3 installed?`)));
  });
  child.stdout?.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      const parsed = JSON.parse(line) as { bound?: boolean; text?: string };
      if (parsed.bound === true) bound();
      if (parsed.text === undefined) continue;
      const fields: Record<string, string> = {};
      for (const assignment of parsed.text.split('\n')) {
        const at = assignment.indexOf('=');
        if (at > 0) fields[assignment.slice(0, at)] = assignment.slice(at + 1);
      }
      messages.push({ text: parsed.text, fields, atMs: performance.now() });
    }
    for (const wake of waiters) wake();
  });
  await ready;
  return {
    path,
    messages,
    waitFor(test, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching notify message within ${timeoutMs} ms; got ${JSON.stringify(messages.map((m) => m.text))}`));
        }, timeoutMs);
        function check(): void {
          const found = messages.find(test);
          if (found === undefined) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(found);
        }
        waiters.add(check);
        check();
      });
    },
  };
}
