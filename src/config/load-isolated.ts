// The running gateway loads its config (at start and at each reload) in a short-lived worker thread: the
// schema (zod and the config's ~500 rules) holds ~9 MB of live heap and ~13 MB of RSS in the isolate that
// loads it, for a check made once. Commands that run and exit use load.ts directly. The answer is the same
// Config, frozen again here (a structured clone is not), or the same ConfigError.
import { ConfigError } from '../errors.ts';
import { siblingModule, startModuleWorker } from '../shared/module-worker.ts';
import { deepFreeze } from './environment.ts';
import type { LoadConfigOptions } from './load.ts';
import type { Config } from './schema.ts';

/** What the worker answers: the config, or the issues of an invalid one, or an unexpected error's text. */
export type LoadAnswer =
  | { readonly ok: true; readonly config: Config }
  | { readonly ok: false; readonly source: string; readonly issues: readonly string[] }
  | { readonly ok: false; readonly message: string };

const WORKER_URL = siblingModule(import.meta.url, 'load-worker');

/** loadConfig in a worker thread, with the calling process's environment; rejects with its ConfigError. */
export function loadConfigIsolated(options: Pick<LoadConfigOptions, 'path'> = {}): Promise<Config> {
  return new Promise<Config>((resolve, reject) => {
    // The worker's process.env is a copy of this one's as it is now (the Worker default).
    const worker = startModuleWorker(WORKER_URL, { workerData: { path: options.path } });
    let answered = false;
    worker.once('message', (answer: LoadAnswer) => {
      answered = true;
      if (answer.ok) resolve(deepFreeze(answer.config));
      else if ('issues' in answer) reject(new ConfigError(answer.source, answer.issues));
      else reject(new Error(`loading the config failed: ${answer.message}`));
    });
    worker.once('error', (error) => {
      answered = true;
      reject(error);
    });
    worker.once('exit', (code) => {
      if (!answered) reject(new Error(`the config loader thread exited with code ${code} without an answer`));
    });
  });
}
