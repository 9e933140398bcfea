// Buffer high-water logging: one warn line when the buffer crosses 80 % of buffer.max_records or max_bytes,
// one info line when it falls back under 50 % of both. The gap keeps a buffer hovering at the mark from
// logging on every check; the gauges in /metrics carry the detail.

export interface BufferWatermarkOptions {
  readonly maxRecords: number;
  readonly maxBytes: number;
  readonly highFraction?: number;
  readonly lowFraction?: number;
}

export interface BufferWatermarkLog {
  warn(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
}

export interface BufferWatermark {
  /** Feed the current depth; logs only when the state changes. Returns whether the buffer is above the high mark. */
  observe(stats: { readonly depthRecords: number; readonly depthBytes: number }): boolean;
}

export function createBufferWatermark(options: BufferWatermarkOptions, log: BufferWatermarkLog): BufferWatermark {
  const high = options.highFraction ?? 0.8;
  const low = options.lowFraction ?? 0.5;
  let above = false;
  return {
    observe({ depthRecords, depthBytes }) {
      const recordsFraction = depthRecords / options.maxRecords;
      const bytesFraction = depthBytes / options.maxBytes;
      const fraction = Math.max(recordsFraction, bytesFraction);
      const percent = Math.floor(fraction * 100);
      const fields = { depthRecords, depthBytes, maxRecords: options.maxRecords, maxBytes: options.maxBytes };
      if (!above && fraction >= high) {
        above = true;
        const which = recordsFraction >= bytesFraction ? 'buffer.max_records' : 'buffer.max_bytes';
        log.warn(fields, `buffer ${percent}% full (${which}): Kafka is not keeping up; at 100% buffer.when_full applies`);
      } else if (above && fraction < low) {
        above = false;
        log.info(fields, `buffer back under ${Math.round(low * 100)}% (${percent}%)`);
      }
      return above;
    },
  };
}
