// How a UDP peer is written in logs and drop reports: host:port, with IPv6 hosts in brackets so the port
// stays readable. Shared by the transport and the gateway registry so both name a peer the same way.
import { isIPv6 } from 'node:net';

export function formatAddress(address: string, port: number): string {
  return isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
}
