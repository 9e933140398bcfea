// The checks the gateway makes when it starts beyond the schema's (payload formatters compile, the LoRaWAN
// settings fit the region, the session backup's key file is there and private), so that `iotgw config check`
// finds what `iotgw run` would refuse with exit 78, before a restart takes a box in a meter room down.
import { RAW_CODEC } from '../codecs/payload-codec.ts';
import type { Logger } from '../core/log.ts';
import { ConfigError } from '../errors.ts';
import { lorawanNetworkOptionsFromConfig } from '../ingress/lorawan-server/lorawan-config.ts';
import { sessionBackupOptionsFromConfig } from '../ingress/lorawan-server/session-backup-config.ts';
import { checkFormatters } from './formatter-check.ts';
import type { Config } from './schema.ts';

/** Every problem the start would refuse the config for, each naming its key. */
export function startTimeIssues(config: Config, log: Logger, env: NodeJS.ProcessEnv = process.env): string[] {
  const issues = checkFormatters(config, log);
  const collect = (check: () => unknown): void => {
    try {
      check();
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      issues.push(...error.issues.map((issue) => (issue.startsWith(`${error.source}`) ? issue : `${error.source}: ${issue}`)));
    }
  };
  // Formatters were checked above; here the region and what depends on it.
  if (config.lorawan.enabled) collect(() => lorawanNetworkOptionsFromConfig(config, () => RAW_CODEC));
  collect(() => sessionBackupOptionsFromConfig(config, env));
  return issues;
}
