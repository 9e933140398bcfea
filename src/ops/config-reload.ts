// `systemctl reload iotgw` (SIGHUP): the config file is read again and its device lists (mqtt.devices,
// mqtt.clients, lorawan.devices and lorawan.devices_file) are applied to the running gateway; connections and
// records in flight are untouched. A config that does not load changes nothing: the running one stays and the
// log says why. Every other key needs a restart: one that differs from what the process started with is named
// in the log at every reload until a restart applies it.
// Reloads run one at a time; SIGHUPs during one are folded into one more reload after it.
import type { Config } from '../config/schema.ts';
import type { Logger } from '../core/log.ts';
import type { Metrics } from '../core/metrics.ts';
import { ConfigError } from '../errors.ts';
import type { DeviceChanges } from '../ingress/lorawan-server/device-sessions.ts';
import type { AccountChanges } from '../ingress/mqtt-broker/broker.ts';
import type { SystemdNotifier } from './systemd.ts';

/** What a reload changed in the running gateway. */
export interface DeviceReload {
  readonly mqtt: AccountChanges;
  /** null when LoRaWAN is off. */
  readonly lorawan: DeviceChanges | null;
}

export interface ConfigReloadDeps {
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly notifier: Pick<SystemdNotifier, 'reloading' | 'ready'>;
  /** Reads and validates the config file as at start; throws (or rejects with) ConfigError. */
  readonly readConfig: () => Config | Promise<Config>;
  readonly reloadDevices: (next: Config) => Promise<DeviceReload>;
  /** The STATUS= line for READY=1 after the reload. */
  readonly statusLine: () => string;
}

export interface ConfigReload {
  /** A SIGHUP. Resolves when this reload (and any it was folded into) is done; never rejects. */
  reload(): Promise<void>;
}

/** The keys a reload applies; the rest of the config is read at start only. */
export const RELOADABLE_KEYS: readonly string[] = ['mqtt.devices', 'mqtt.clients', 'lorawan.devices', 'lorawan.devices_file'];

/** How many ids a log line lists before it only counts. */
const LISTED_IDS = 20;

export function createConfigReload(initial: Config, deps: ConfigReloadDeps): ConfigReload {
  const { log, metrics } = deps;
  for (const result of ['applied', 'refused']) metrics.configReloads.inc({ result }, 0);
  let running: Promise<void> | null = null;
  let again = false;

  async function reloadOnce(): Promise<void> {
    deps.notifier.reloading('reloading the device lists');
    try {
      let next: Config;
      try {
        next = await deps.readConfig();
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        metrics.configReloads.inc({ result: 'refused' });
        log.error({ err: error }, `reload refused, the running config stays: ${error.message}`);
        return;
      }
      // Compared with the start: those keys are still what the process started with, whatever reloads came between.
      const needRestart = changedKeys(initial, next).filter((key) => !RELOADABLE_KEYS.some((reloadable) => isAtOrBelow(key, reloadable)));
      let applied: DeviceReload;
      try {
        applied = await deps.reloadDevices(next);
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        metrics.configReloads.inc({ result: 'refused' });
        log.error({ err: error }, `reload refused, the running config stays: ${error.message}`);
        return;
      }
      metrics.configReloads.inc({ result: 'applied' });
      log.info(summaryFields(applied), `reload applied: ${summaryText(applied)}`);
      if (needRestart.length > 0) {
        log.warn(
          { keys: needRestart.slice(0, LISTED_IDS) },
          `reload: ${needRestart.length} changed key(s) apply only at a restart (sudo systemctl restart iotgw): ${listed(needRestart)}`,
        );
      }
    } catch (error) {
      // A bug in applying: logged loud; the gateway goes on with what it had.
      metrics.configReloads.inc({ result: 'refused' });
      log.error({ err: error }, 'reload failed unexpectedly (a bug); the gateway goes on');
    } finally {
      deps.notifier.ready(deps.statusLine());
    }
  }

  async function loop(): Promise<void> {
    do {
      again = false;
      await reloadOnce();
    } while (again);
    running = null;
  }

  return {
    reload() {
      if (running !== null) {
        again = true;
        return running;
      }
      running = loop();
      return running;
    },
  };
}

function summaryText(applied: DeviceReload): string {
  const part = (name: string, changes: { added: readonly string[]; removed: readonly string[]; changed: readonly string[] }): string =>
    `${name} ${changes.added.length} added, ${changes.removed.length} removed, ${changes.changed.length} changed`;
  const parts = [part('MQTT devices and accounts', applied.mqtt)];
  if (applied.mqtt.disconnected.length > 0) parts.push(`${applied.mqtt.disconnected.length} connection(s) of removed ones closed`);
  if (applied.lorawan !== null) parts.push(part('LoRaWAN devices', applied.lorawan));
  return parts.join('; ');
}

function summaryFields(applied: DeviceReload): Record<string, unknown> {
  const ids = (list: readonly string[]) => list.slice(0, LISTED_IDS);
  return {
    mqtt: {
      added: ids(applied.mqtt.added),
      removed: ids(applied.mqtt.removed),
      changed: ids(applied.mqtt.changed),
      disconnected: ids(applied.mqtt.disconnected),
    },
    ...(applied.lorawan === null
      ? {}
      : { lorawan: { added: ids(applied.lorawan.added), removed: ids(applied.lorawan.removed), changed: ids(applied.lorawan.changed) } }),
  };
}

function listed(keys: readonly string[]): string {
  return keys.length <= LISTED_IDS ? keys.join(', ') : `${keys.slice(0, LISTED_IDS).join(', ')} and ${keys.length - LISTED_IDS} more`;
}

function isAtOrBelow(key: string, prefix: string): boolean {
  return key === prefix || key.startsWith(`${prefix}.`) || key.startsWith(`${prefix}[`);
}

/** The dotted paths whose values differ (arrays as a whole, by index where both are arrays of one length). */
export function changedKeys(before: unknown, after: unknown, path = ''): string[] {
  if (Object.is(before, after)) return [];
  const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
  if (isObject(before) && isObject(after)) {
    const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
    return [...keys].flatMap((key) => changedKeys(before[key], after[key], path === '' ? key : `${path}.${key}`));
  }
  if (Array.isArray(before) && Array.isArray(after)) return JSON.stringify(before) === JSON.stringify(after) ? [] : [path];
  return [path];
}
