// What loading the config takes from the process environment, and the freeze it ends with, apart from the
// schema: the running gateway validates its config in a worker thread (load-isolated.ts) and must not load
// the schema (zod) itself, yet its components expand ${VAR} in paths and find systemd's state directory.

/** `${NAME}` -> the variable's value ('' when unset), as systemd's ${CREDENTIALS_DIRECTORY} and ${STATE_DIRECTORY}. */
export function expandVariables(text: string, env: NodeJS.ProcessEnv = process.env): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_match, name: string) => env[name] ?? '');
}

/** The service's state directory (systemd StateDirectory=; the first one when several are listed), or null outside systemd. */
export function stateDirectory(env: NodeJS.ProcessEnv): string | null {
  const first = env.STATE_DIRECTORY?.split(':')[0];
  return first === undefined || first === '' ? null : first;
}

/** Freezes `value` and everything in it: a loaded Config is never changed. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
