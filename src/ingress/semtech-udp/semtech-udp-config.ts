// lorawan.udp, lorawan.gateways -> the Semtech UDP ingress's options.
import type { Config } from '../../config/schema.ts';
import type { SemtechUdpIngressOptions } from './semtech-udp-ingress.ts';

export function semtechUdpOptionsFromConfig(config: Config): SemtechUdpIngressOptions {
  const { lorawan } = config;
  return {
    host: lorawan.udp.host,
    port: lorawan.udp.port,
    gatewayStatusStream: lorawan.gateway_status_stream === '' ? null : lorawan.gateway_status_stream,
    allowedGateways: lorawan.gateways.length === 0 ? null : new Map(lorawan.gateways.map((gateway) => [gateway.eui, gateway.addresses])),
    maxGateways: lorawan.max_gateways,
    maxDatagramsPerSecondPerSource: lorawan.udp.max_datagrams_per_second,
    rejectLogIntervalMs: lorawan.reject_log_interval_s * 1000,
  };
}
