// Starts a worker thread on one of our modules. Built (`tsc`), the module is the .js beside its caller. Run
// from source under tsx (development, tests), it is .ts: Node 20 does not pass --import loader hooks on to
// worker threads (22 does), so the worker registers tsx itself before loading the module.
import { Worker, type WorkerOptions } from 'node:worker_threads';

/** `name` (without extension) beside `callerUrl` (the caller's import.meta.url), as .ts from source and .js when built. */
export function siblingModule(callerUrl: string, name: string): URL {
  return new URL(callerUrl.endsWith('.ts') ? `./${name}.ts` : `./${name}.js`, callerUrl);
}

export function startModuleWorker(module: URL, options: WorkerOptions): Worker {
  if (!module.pathname.endsWith('.ts')) return new Worker(module, options);
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const bootstrap = `import(${JSON.stringify(tsxApi)}).then(({ register }) => { register(); return import(${JSON.stringify(module.href)}); });`;
  return new Worker(bootstrap, { ...options, eval: true });
}
