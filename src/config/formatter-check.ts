// `iotgw config check` goes one step past the schema for payload formatters: it compiles every javascript
// formatter the gateway would compile at start (the same cache, the same errors), so a missing file, a syntax
// error or a file without decodeUplink is reported before a restart instead of by a gateway that will not start.
import { ConfigError } from '../errors.ts';
import { createFormatterCache } from '../codecs/javascript-formatter.ts';
import type { CodecChoice } from '../codecs/payload-codec.ts';
import type { Logger } from '../core/log.ts';
import type { Config } from './schema.ts';

interface ConfiguredCodec {
  /** The config key the choice comes from, e.g. lorawan.devices.3. */
  readonly key: string;
  readonly choice: CodecChoice;
}

/** The codec choices of the enabled ingresses, as main.ts resolves them at start. */
export function configuredCodecs(config: Config): ConfiguredCodec[] {
  const codecs: ConfiguredCodec[] = [];
  if (config.lorawan.enabled) {
    for (const [index, device] of config.lorawan.devices.entries()) codecs.push({ key: `lorawan.devices.${index}`, choice: device });
  }
  if (config.ttn.enabled) {
    codecs.push({ key: 'ttn', choice: config.ttn });
    for (const [index, application] of config.ttn.applications.entries()) codecs.push({ key: `ttn.applications.${index}`, choice: application });
  }
  if (config.serial.enabled) codecs.push({ key: 'serial.raw', choice: config.serial.raw });
  return codecs;
}

/** One issue per broken formatter file ("<key>.formatter_file: <problem>"); [] when every formatter compiles. */
export function checkFormatters(config: Config, log: Logger): string[] {
  const cache = createFormatterCache({ timeoutMs: config.formatters.timeout_ms, maxOutputBytes: config.formatters.max_output_bytes }, { log });
  const issues: string[] = [];
  const failedFiles = new Set<string>();
  for (const { key, choice } of configuredCodecs(config)) {
    if (choice.codec !== 'javascript' || failedFiles.has(choice.formatter_file ?? '')) continue;
    try {
      cache.codecFor(choice);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      failedFiles.add(choice.formatter_file ?? '');
      issues.push(...error.issues.map((issue) => `${key}.formatter_file: ${choice.formatter_file}: ${issue}`));
    }
  }
  return issues;
}
