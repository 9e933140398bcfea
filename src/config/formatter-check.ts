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

/** A codec as a config entry names it (codec, formatter_file), as the codecs take it. */
export function codecChoice(entry: { readonly codec: CodecChoice['codec']; readonly formatter_file?: string | undefined }): CodecChoice {
  return entry.formatter_file === undefined ? { codec: entry.codec } : { codec: entry.codec, formatterFile: entry.formatter_file };
}

/** The codec choices of the enabled ingresses, as the gateway resolves them at start. */
export function configuredCodecs(config: Config): ConfiguredCodec[] {
  const codecs: ConfiguredCodec[] = [];
  if (config.lorawan.enabled) {
    for (const [index, device] of config.lorawan.devices.entries()) codecs.push({ key: `lorawan.devices.${index}`, choice: codecChoice(device) });
  }
  if (config.ttn.enabled) {
    codecs.push({ key: 'ttn', choice: codecChoice(config.ttn) });
    for (const [index, application] of config.ttn.applications.entries()) codecs.push({ key: `ttn.applications.${index}`, choice: codecChoice(application) });
  }
  if (config.serial.enabled) codecs.push({ key: 'serial.raw', choice: codecChoice(config.serial.raw) });
  return codecs;
}

/** One issue per broken formatter file ("<key>.formatter_file: <problem>"); [] when every formatter compiles. */
export function checkFormatters(config: Config, log: Logger): string[] {
  const cache = createFormatterCache({ timeoutMs: config.formatters.timeout_ms, maxOutputBytes: config.formatters.max_output_bytes }, { log });
  const issues: string[] = [];
  const failedFiles = new Set<string>();
  for (const { key, choice } of configuredCodecs(config)) {
    if (choice.codec !== 'javascript' || failedFiles.has(choice.formatterFile ?? '')) continue;
    try {
      cache.codecFor(choice);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      failedFiles.add(choice.formatterFile ?? '');
      issues.push(...error.issues.map((issue) => `${key}.formatter_file: ${choice.formatterFile}: ${issue}`));
    }
  }
  return issues;
}
