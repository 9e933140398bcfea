// Receipts: every step of a command, as a record to commands.receipts_topic keyed by the device. They go
// through the same buffer and forwarder as uplinks, so none is lost while Kafka is away, and each carries the
// command-id header (and field) the command came with.
import type { NewRecord } from '../record/record.ts';
import { COMMAND_RECEIPT_STREAM } from '../record/streams.ts';

export type ReceiptStatus = 'accepted' | 'sent' | 'delivered' | 'acked' | 'expired' | 'failed' | 'rejected' | 'cancelled';

/** The stream receipts travel on; routed to commands.receipts_topic, refused as a device's stream. */
export const RECEIPT_STREAM = COMMAND_RECEIPT_STREAM;
/** Key of a rejected command that named no valid device. */
export const UNKNOWN_DEVICE_KEY = 'unknown-device';

export interface Receipt {
  readonly commandId: string | null;
  readonly deviceId: string | null;
  readonly status: ReceiptStatus;
  /** Why (failed, expired, rejected, cancelled): a text a person can act on. */
  readonly reason?: string;
  /** How the command travels: mqtt, lorawan, ttn. */
  readonly path?: string;
  /** Times the command was handed to its path so far. */
  readonly attempts?: number;
}

export function receiptRecord(receipt: Receipt, nowMs: number): NewRecord {
  const value = {
    command_id: receipt.commandId,
    device_id: receipt.deviceId,
    status: receipt.status,
    at: new Date(nowMs).toISOString(),
    ...(receipt.reason === undefined ? {} : { reason: receipt.reason }),
    ...(receipt.path === undefined ? {} : { path: receipt.path }),
    ...(receipt.attempts === undefined ? {} : { attempts: receipt.attempts }),
  };
  return {
    key: receipt.deviceId ?? UNKNOWN_DEVICE_KEY,
    stream: RECEIPT_STREAM,
    source: 'commands',
    receivedAtMs: nowMs,
    eventTimeMs: nowMs,
    payload: Buffer.from(JSON.stringify(value), 'utf8'),
    meta: { 'receipt-status': receipt.status, ...(receipt.commandId === null ? {} : { 'command-id': receipt.commandId }) },
  };
}
