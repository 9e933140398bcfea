// Polls a condition until it holds; fails with what was awaited. For state that changes in another
// process or thread (the gateway, the Kafka cluster): a bound on waiting, never a speed assertion.
import { setTimeout as sleep } from 'node:timers/promises';

export async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000, pollMs = 10): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(pollMs);
  }
}
