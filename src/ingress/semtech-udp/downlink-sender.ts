// Downlinks out of the UDP transport: a PULL_RESP to the gateway's downlink route, then a wait for the
// TX_ACK that carries the same token (PROTOCOL.TXT v1.3+), which says whether the gateway sent it. Waits are
// bounded in number and in time, so a gateway that never answers cannot hold memory or a caller.
import { randomBytes } from 'node:crypto';
import type { Logger } from '../../core/log.ts';
import { checkTxpk, encodePullResp } from './downlink-packets.ts';
import type { DownlinkRoute } from './gateway-registry.ts';
import type { TxAck, Txpk } from './packets.ts';

export type DownlinkResult = { readonly ok: true } | { readonly ok: false; readonly reason: string; readonly txAckError?: string };

export interface DownlinkSenderOptions {
  readonly txAckTimeoutMs: number;
  /** Only for the message when a gateway has no route. */
  readonly gatewayTimeoutMs: number;
}

export interface DownlinkSenderDeps {
  readonly log: Logger;
  readonly downlinkRoute: (gatewayEui: string) => DownlinkRoute | null;
  /** Sends one datagram; resolves with the send error, or null. */
  readonly send: (bytes: Buffer, port: number, address: string) => Promise<Error | null>;
  /** Reports a TX_ACK that matches no waiting downlink. */
  readonly drop: (reason: string, from: string, message: string, gatewayEui: string) => void;
}

export interface DownlinkSender {
  /** See UdpTransport.sendDownlink. */
  send(gatewayEui: string, txpk: Txpk): Promise<DownlinkResult>;
  /** Settles the downlink a TX_ACK answers. */
  matchTxAck(datagram: TxAck, from: string): void;
  /** Settles every waiting downlink with ok: false and `reason`. */
  cancelAll(reason: string): void;
}

/** Downlinks awaiting a TX_ACK at once; one 16-bit token space per gateway makes more pointless. */
const MAX_PENDING_DOWNLINKS = 4_096;

interface PendingDownlink {
  readonly resolve: (result: DownlinkResult) => void;
  readonly timer: NodeJS.Timeout;
}

export function createDownlinkSender(options: DownlinkSenderOptions, deps: DownlinkSenderDeps): DownlinkSender {
  const { txAckTimeoutMs, gatewayTimeoutMs } = options;
  const { log } = deps;
  /** `${gatewayEui}:${token hex}` -> the downlink waiting for that TX_ACK. */
  const pending = new Map<string, PendingDownlink>();

  return {
    async send(gatewayEui, txpk) {
      const eui = gatewayEui.toLowerCase();
      const invalid = checkTxpk(txpk);
      if (invalid !== null) return { ok: false, reason: `downlink not sent: ${invalid}` };
      const route = deps.downlinkRoute(eui);
      if (route === null) {
        return {
          ok: false,
          reason: `no downlink route to gateway ${eui}: no PULL_DATA from it in the last ${gatewayTimeoutMs} ms (is its serv_port_down pointed at this port?)`,
        };
      }
      if (pending.size >= MAX_PENDING_DOWNLINKS) return { ok: false, reason: `${MAX_PENDING_DOWNLINKS} downlinks already await a TX_ACK` };
      let token = randomBytes(2);
      while (pending.has(`${eui}:${token.toString('hex')}`)) token = randomBytes(2);
      const key = `${eui}:${token.toString('hex')}`;
      const version = route.protocolVersion;

      // Protocol v1 has no TX_ACK: sent is all we can know.
      if (version === 1) {
        const error = await deps.send(encodePullResp(version, token, txpk), route.port, route.address);
        return error === null ? { ok: true } : { ok: false, reason: `PULL_RESP not sent to gateway ${eui}: ${error.message}` };
      }
      const acknowledged = new Promise<DownlinkResult>((resolve) => {
        const timer = setTimeout(() => {
          pending.delete(key);
          resolve({ ok: false, reason: `no TX_ACK from gateway ${eui} within ${txAckTimeoutMs} ms` });
        }, txAckTimeoutMs);
        pending.set(key, { resolve, timer });
      });
      const error = await deps.send(encodePullResp(version, token, txpk), route.port, route.address);
      if (error !== null) {
        const waiting = pending.get(key);
        if (waiting !== undefined) {
          clearTimeout(waiting.timer);
          pending.delete(key);
        }
        return { ok: false, reason: `PULL_RESP not sent to gateway ${eui}: ${error.message}` };
      }
      return acknowledged;
    },

    matchTxAck(datagram, from) {
      const key = `${datagram.gatewayEui}:${datagram.token.toString('hex')}`;
      const waiting = pending.get(key);
      if (waiting === undefined) {
        deps.drop(
          'unmatched-tx-ack',
          from,
          `TX_ACK from gateway ${datagram.gatewayEui} matches no downlink awaiting one (late, or a duplicate)`,
          datagram.gatewayEui,
        );
        return;
      }
      pending.delete(key);
      clearTimeout(waiting.timer);
      if (datagram.warn !== null) log.debug({ gatewayEui: datagram.gatewayEui, warn: datagram.warn }, 'downlink sent with a warning');
      if (datagram.error === null) waiting.resolve({ ok: true });
      else {
        waiting.resolve({
          ok: false,
          reason: `gateway ${datagram.gatewayEui} did not send the downlink: TX_ACK error ${datagram.error}`,
          txAckError: datagram.error,
        });
      }
    },

    cancelAll(reason) {
      for (const [key, waiting] of pending) {
        clearTimeout(waiting.timer);
        waiting.resolve({ ok: false, reason });
        pending.delete(key);
      }
    },
  };
}
