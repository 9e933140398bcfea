// lorawan.* -> the LoRaWAN network's options: the region by name, and each lorawan.devices entry as a device
// profile (OTAA when it has an app_key, else ABP) with its codec compiled.
import type { PayloadCodec, CodecChoice } from '../../codecs/payload-codec.ts';
import { codecChoice } from '../../config/formatter-check.ts';
import type { Config } from '../../config/schema.ts';
import { ConfigError } from '../../errors.ts';
import { type Region, regionFor, regionHasSubBands } from '../lorawan/region.ts';
import type { RxSettings } from './class-a-downlink.ts';
import type { LorawanDeviceProfile } from './device-sessions.ts';
import type { LorawanNetworkOptions } from './lorawan-network.ts';

export type LorawanDeviceEntry = Config['lorawan']['devices'][number];
type CodecFor = (choice: CodecChoice) => PayloadCodec;

export function lorawanNetworkOptionsFromConfig(config: Config, codecFor: CodecFor): LorawanNetworkOptions {
  const { lorawan } = config;
  const region = regionFor(lorawan.region, {
    ...(regionHasSubBands(lorawan.region) ? { subBand: lorawan.sub_band } : {}),
    dwellTime400ms: lorawan.dwell_time_400ms,
  });
  if (region === null) throw new ConfigError('lorawan.region', [`${lorawan.region} is not implemented`]);
  return {
    region,
    netId: lorawan.net_id,
    dedupWindowMs: lorawan.dedup_window_ms,
    maxFramesInFlight: lorawan.max_frames_in_flight,
    stream: lorawan.stream,
    rejectLogIntervalMs: lorawan.reject_log_interval_s * 1000,
    fCntRecovery: { maxTries: lorawan.f_cnt_recovery_max_tries, intervalMs: lorawan.f_cnt_recovery_interval_s * 1000 },
    mac: {
      adr: {
        enabled: lorawan.adr.enabled,
        installationMarginDb: lorawan.adr.installation_margin_db,
        minDataRate: lorawan.adr.min_data_rate,
        maxDataRate: lorawan.adr.max_data_rate,
      },
      devStatusIntervalMs: lorawan.dev_status_interval_s * 1000,
      announceChannels: lorawan.adr.announce_channels,
      rx: rxWindowsOf(lorawan.rx_windows, region),
      maxDutyCycle: lorawan.max_duty_cycle,
    },
    devices: lorawan.devices.map((entry) => deviceProfileFromEntry(entry, codecFor)),
  };
}

/** `codecFor` compiles (and caches) formatters. */
export function deviceProfileFromEntry(entry: Omit<LorawanDeviceEntry, 'class'> & { readonly class?: 'A' | 'C' }, codecFor: CodecFor): LorawanDeviceProfile {
  const key = (hex: string | undefined): Buffer => Buffer.from(hex ?? '', 'hex');
  return {
    devEui: entry.dev_eui,
    name: entry.name ?? `eui-${entry.dev_eui}`,
    codec: codecFor(codecChoice(entry)),
    resetsFCnt: entry.resets_f_cnt === true,
    ...(entry.adr === undefined ? {} : { adr: entry.adr }),
    ...(entry.f_cnt_up_hint === undefined ? {} : { fCntUpHint: entry.f_cnt_up_hint }),
    ...(entry.mac_version === undefined ? {} : { macVersion: entry.mac_version }),
    deviceClass: entry.class ?? 'A',
    activation:
      entry.app_key !== undefined
        ? { mode: 'otaa', joinEui: entry.join_eui ?? '', appKey: key(entry.app_key) }
        : { mode: 'abp', devAddr: entry.dev_addr ?? '', nwkSKey: key(entry.nwk_s_key), appSKey: key(entry.app_s_key) },
  };
}

/** lorawan.rx_windows, checked against the region: a data rate it lacks or an offset past its table is a config error. */
function rxWindowsOf(windows: Config['lorawan']['rx_windows'], region: Region): Partial<RxSettings> {
  const problems: string[] = [];
  if (windows.rx1_dr_offset > region.maxRx1DrOffset)
    problems.push(`rx1_dr_offset ${windows.rx1_dr_offset}: ${region.name} has offsets 0..${region.maxRx1DrOffset}`);
  const rx2 = windows.rx2_data_rate;
  if (rx2 !== undefined && region.dataRates.get(rx2)?.downlink !== true) {
    const rates = [...region.dataRates].filter(([, rate]) => rate.downlink).map(([index]) => index);
    problems.push(`rx2_data_rate ${rx2}: ${region.name}'s downlink data rates are ${rates.join(', ')}`);
  }
  if (problems.length > 0) throw new ConfigError('lorawan.rx_windows', problems);
  return {
    rx1DelayS: windows.rx1_delay_s,
    rx1DrOffset: windows.rx1_dr_offset,
    ...(rx2 === undefined ? {} : { rx2DataRate: rx2 }),
    ...(windows.rx2_frequency_hz === undefined ? {} : { rx2FrequencyHz: windows.rx2_frequency_hz }),
  };
}
