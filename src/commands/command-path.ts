// How a command reaches a device: one path per transport (MQTT, LoRaWAN, TTN). The delivery asks each path,
// in order, whether it serves a device, and hands that device's commands to it one at a time.
import type { Command } from './command.ts';
import type { ReceiptStatus } from './receipt.ts';

/**
 * What became of one hand-over:
 * - done: the command reached its last step on this path (delivered: MQTT PUBACK; acked: a LoRaWAN confirmed
 *   downlink or a TTN ack; sent: an unconfirmed LoRaWAN downlink on air, nothing more can be known);
 * - away: the device is not reachable now; the path calls onReady when it may be. `afterSending`: it went away
 *   after the command was put on its connection (it may have crashed on it), which counts toward the attempt limit;
 * - unanswered: it went, but no acknowledgement came in time: sent again, up to the attempt limit;
 * - failed: it can never go (too large for the data rate, no downlink route), with the reason.
 */
export type PathOutcome =
  | { readonly kind: 'done'; readonly status: Extract<ReceiptStatus, 'delivered' | 'acked' | 'sent'>; readonly detail?: string }
  | { readonly kind: 'away'; readonly afterSending?: boolean }
  | { readonly kind: 'unanswered'; readonly detail: string }
  | { readonly kind: 'failed'; readonly reason: string };

/** A receipt for a step between hand-over and the outcome (e.g. TTN's "queued" or a LoRaWAN TX_ACK). */
export type ProgressNote = (status: Extract<ReceiptStatus, 'sent'>, detail?: { readonly reason?: string }) => void;

export interface CommandPath {
  /** mqtt, lorawan, ttn: the receipts' `path`. */
  readonly name: string;
  /**
   * true: the hand-over itself is the `sent` receipt (MQTT: published on the device's connection); false: the
   * path reports `sent` through `progress` when it knows (LoRaWAN: TX_ACK of the packet forwarder; TTN: down/sent).
   */
  readonly sentOnHandOver: boolean;
  /** Whether this path is the device's (a configured LoRaWAN DevEUI, a TTN device); MQTT is the fallback. */
  serves(deviceId: string): boolean;
  /** Whether a hand-over can start now (the MQTT device is connected and subscribed, ...). */
  ready(command: Command): boolean;
  /** Hands the command over (its `sent` is committed already) and resolves with the outcome. */
  send(command: Command, progress: ProgressNote): Promise<PathOutcome>;
  /** Registers the listener told when a device may have become ready. */
  onReady(listener: (deviceId: string) => void): void;
}
