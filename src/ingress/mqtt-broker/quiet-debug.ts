// The broker's packet parser (mqtt-packet, inside aedes) logs through `debug` at every parser state and every
// packet written: ~60 calls per PUBLISH and PUBACK. Disabled, each call still collects its arguments into an
// array and reads a getter: 2.3 % of the main thread at 25,000 publishes/s, and garbage. So a `debug` logger
// that the environment (DEBUG=...) does not enable when it is created is a no-op function. DEBUG=mqtt-packet:*
// at start still logs as before; enabling namespaces later through debug.enable() does not reach these.
// Imported first by broker.ts: it must be in the module cache before aedes loads mqtt-packet.
import { createRequire } from 'node:module';

type Debugger = ((...args: unknown[]) => void) & { enabled: boolean; namespace: string; extend(sub: string, delimiter?: string): Debugger };
type CreateDebug = ((namespace: string) => Debugger) & Record<string, unknown>;

const require = createRequire(import.meta.url);

function installQuietDebug(): void {
  const path = require.resolve('debug');
  const createDebug = require(path) as CreateDebug;
  const cached = require.cache[path];
  if (cached === undefined || (createDebug as { quiet?: boolean }).quiet === true) return;
  const quiet = Object.assign((namespace: string): Debugger => {
    const logger = createDebug(namespace);
    return logger.enabled ? logger : silent(namespace);
  }, createDebug);
  const silent = (namespace: string): Debugger =>
    Object.assign(() => undefined, {
      enabled: false,
      namespace,
      extend: (sub: string, delimiter = ':') => quiet(`${namespace}${delimiter}${sub}`),
    });
  Object.defineProperty(quiet, 'quiet', { value: true });
  cached.exports = quiet;
}

installQuietDebug();
