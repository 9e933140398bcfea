// The worker thread of load-isolated.ts: loads the config once, answers with it (or why it is invalid) and ends.
import { parentPort, workerData } from 'node:worker_threads';
import { ConfigError, errorMessage } from '../errors.ts';
import { loadConfig } from './load.ts';
import type { LoadAnswer } from './load-isolated.ts';

const { path } = workerData as { readonly path: string | undefined };
let answer: LoadAnswer;
try {
  answer = { ok: true, config: loadConfig({ path }) };
} catch (error) {
  answer =
    error instanceof ConfigError
      ? { ok: false, source: error.source, issues: error.issues }
      : { ok: false, message: error instanceof Error ? (error.stack ?? error.message) : errorMessage(error) };
}
parentPort?.postMessage(answer);
