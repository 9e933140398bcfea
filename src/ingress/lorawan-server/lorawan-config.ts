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
  macChecks(lorawan, region);
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
    devices: lorawan.devices.map((entry, index) => {
      if (entry.rx_windows !== undefined) checkRxWindows(entry.rx_windows, region, `lorawan.devices.${index}.rx_windows`);
      return deviceProfileFromEntry(entry, codecFor);
    }),
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
    ...(entry.rx_windows === undefined ? {} : { rxWindows: rxSettingsOf(entry.rx_windows) }),
    ...(entry.f_cnt_up_hint === undefined ? {} : { fCntUpHint: entry.f_cnt_up_hint }),
    ...(entry.mac_version === undefined ? {} : { macVersion: entry.mac_version }),
    deviceClass: entry.class ?? 'A',
    activation:
      entry.app_key !== undefined
        ? { mode: 'otaa', joinEui: entry.join_eui ?? '', appKey: key(entry.app_key) }
        : { mode: 'abp', devAddr: entry.dev_addr ?? '', nwkSKey: key(entry.nwk_s_key), appSKey: key(entry.app_s_key) },
  };
}

/** Where a region's downlinks may go, MHz (RP002-1.0.3 band edges): an RX2 frequency outside is a config error. */
const DOWNLINK_BANDS_MHZ: Readonly<Record<string, readonly [number, number]>> = {
  EU868: [863, 870],
  US915: [923.3, 927.5],
  AU915: [923.3, 927.5],
  AS923: [915, 928],
  IN865: [865, 867],
  KR920: [920.9, 923.3],
};

/** lorawan.adr and dev_status_interval_s, checked against the region and each other. */
function macChecks(lorawan: Config['lorawan'], region: Region): void {
  const problems: string[] = [];
  const { min_data_rate: min, max_data_rate: max } = lorawan.adr;
  if (min > max) problems.push(`adr.min_data_rate ${min} is above adr.max_data_rate ${max}`);
  const fastest = Math.max(...region.uplinkDataRates);
  if (min > fastest) problems.push(`adr.min_data_rate ${min}: ${region.name}'s uplink data rates end at DR${fastest}`);
  const interval = lorawan.dev_status_interval_s;
  if (interval > 0 && interval < 600) {
    problems.push(
      `dev_status_interval_s ${interval}: each DevStatusReq is a downlink that costs airtime; ask at most every 600 s (a day, 86400, is usual), or 0 for never`,
    );
  }
  if (problems.length > 0) throw new ConfigError('lorawan', problems);
}

/** lorawan.rx_windows, checked against the region: a data rate it lacks or an offset past its table is a config error. */
function rxWindowsOf(windows: Config['lorawan']['rx_windows'], region: Region): Partial<RxSettings> {
  checkRxWindows(windows, region, 'lorawan.rx_windows');
  return rxSettingsOf(windows);
}

interface RxWindowsEntry {
  readonly rx1_delay_s?: number | undefined;
  readonly rx1_dr_offset?: number | undefined;
  readonly rx2_data_rate?: number | undefined;
  readonly rx2_frequency_hz?: number | undefined;
}

function rxSettingsOf(windows: RxWindowsEntry): Partial<RxSettings> {
  return {
    ...(windows.rx1_delay_s === undefined ? {} : { rx1DelayS: windows.rx1_delay_s }),
    ...(windows.rx1_dr_offset === undefined ? {} : { rx1DrOffset: windows.rx1_dr_offset }),
    ...(windows.rx2_data_rate === undefined ? {} : { rx2DataRate: windows.rx2_data_rate }),
    ...(windows.rx2_frequency_hz === undefined ? {} : { rx2FrequencyHz: windows.rx2_frequency_hz }),
  };
}

/** Receive windows checked against the region: a data rate it lacks, an offset past its table, an RX2 outside its band. */
function checkRxWindows(windows: RxWindowsEntry, region: Region, key: string): void {
  const problems: string[] = [];
  if (windows.rx1_dr_offset !== undefined && windows.rx1_dr_offset > region.maxRx1DrOffset) {
    problems.push(`rx1_dr_offset ${windows.rx1_dr_offset}: ${region.name} has offsets 0..${region.maxRx1DrOffset}`);
  }
  const rx2 = windows.rx2_data_rate;
  if (rx2 !== undefined && region.dataRates.get(rx2)?.downlink !== true) {
    const rates = [...region.dataRates].filter(([, rate]) => rate.downlink).map(([index]) => index);
    problems.push(`rx2_data_rate ${rx2}: ${region.name}'s downlink data rates are ${rates.join(', ')}`);
  }
  const frequency = windows.rx2_frequency_hz;
  const band = DOWNLINK_BANDS_MHZ[region.name.startsWith('AS923') ? 'AS923' : region.name];
  if (frequency !== undefined && band !== undefined && (frequency < band[0] * 1e6 || frequency > band[1] * 1e6)) {
    problems.push(`rx2_frequency_hz ${frequency}: outside ${region.name}'s ${band[0]}-${band[1]} MHz; a gateway must not transmit there`);
  }
  if (problems.length > 0) throw new ConfigError(key, problems);
}
