// serial.* -> the serial radio ingress's options.
import type { Config } from '../../config/schema.ts';
import type { SerialRadioIngressOptions } from './serial-radio-ingress.ts';

export function serialRadioOptionsFromConfig(config: Config): SerialRadioIngressOptions {
  const { serial } = config;
  return {
    path: serial.path,
    baudRate: serial.baud_rate,
    radioId: serial.radio_id,
    radio: {
      frequencyHz: serial.frequency_hz,
      spreadingFactor: serial.spreading_factor,
      bandwidthKhz: serial.bandwidth_khz,
      codingRate: serial.coding_rate,
      syncWord: serial.sync_word,
    },
    frames: serial.frames,
    raw: { stream: serial.raw.stream, keyOffset: serial.raw.key_offset, keyLength: serial.raw.key_length, keyPrefix: serial.raw.key_prefix },
    commandTimeoutMs: serial.command_timeout_ms,
    reopenInitialMs: 1_000,
    reopenMaxMs: serial.reopen_max_delay_ms,
    rejectLogIntervalMs: serial.reject_log_interval_s * 1000,
    presenceCheckMs: 1_000,
  };
}
