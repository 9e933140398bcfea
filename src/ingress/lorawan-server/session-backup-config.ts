// lorawan.session_backup -> the session backup's options, or null when it is off (no path, or LoRaWAN off).
// The key file is read here, when the gateway is built, so a missing, malformed or exposed key stops the start
// with a ConfigError (exit 78) instead of failing an hour later.
import { RAW_CODEC } from '../../codecs/payload-codec.ts';
import { expandVariables } from '../../config/environment.ts';
import type { Config } from '../../config/schema.ts';
import { ConfigError } from '../../errors.ts';
import { deviceProfileFromEntry } from './lorawan-config.ts';
import { type ConfiguredDevice, configuredDevices } from './session-archive.ts';
import type { SessionBackupOptions } from './session-backup.ts';
import { readArchiveKeyFile } from './session-key-file.ts';

export function sessionBackupOptionsFromConfig(config: Config, env: NodeJS.ProcessEnv = process.env): SessionBackupOptions | null {
  const { lorawan } = config;
  const backup = lorawan.session_backup;
  if (!lorawan.enabled || backup.path === '') return null;
  const keyPath = expandVariables(backup.key_file, env);
  const keyFile = readArchiveKeyFile(keyPath);
  if (!keyFile.ok) throw new ConfigError('lorawan.session_backup', [`key_file: ${keyFile.problem}`]);
  if (keyFile.exposed) {
    throw new ConfigError('lorawan.session_backup', [
      `key_file: ${keyPath} has mode ${keyFile.mode.toString(8).padStart(4, '0')}, so other users may read (or replace) the key that opens every session backup: chmod 600 ${keyPath} and make the gateway's user its owner (or hand it over with systemd LoadCredential=)`,
    ]);
  }
  return {
    path: expandVariables(backup.path, env),
    intervalMs: backup.interval_s * 1000,
    key: keyFile.key,
    gatewayId: config.gateway_id,
    devices: sessionBackupDevicesFromConfig(config),
  };
}

/** The configured devices as the backup needs them; again at each reload. */
export function sessionBackupDevicesFromConfig(config: Config): ReadonlyMap<string, ConfiguredDevice> {
  // Only the activation and ABP keys matter here: no formatter is compiled for it.
  return configuredDevices(config.lorawan.devices.map((entry) => deviceProfileFromEntry(entry, () => RAW_CODEC)));
}
