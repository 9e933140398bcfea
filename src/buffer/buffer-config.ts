// buffer.* -> the buffer's options.
import type { Config } from '../config/schema.ts';
import type { SqliteStoreOptions } from './sqlite-store.ts';

export function bufferOptionsFromConfig(config: Config): SqliteStoreOptions {
  const { buffer } = config;
  return { path: buffer.path, maxRecords: buffer.max_records, maxBytes: buffer.max_bytes, whenFull: buffer.when_full };
}
