// Where the forwarder delivers records. The Kafka sink is the real one; the contract lets tests and
// benchmarks use a recording sink in its place.
import { GatewayError } from '../errors.ts';
import type { Component } from '../core/lifecycle.ts';
import type { StoredRecord } from '../record/record.ts';

export interface Sink extends Component {
  /** Reaches the destination (idempotent); rejects with SinkError while it is unreachable. */
  connect(): Promise<void>;
  /** Resolves when every record is acknowledged (Kafka: by all in-sync replicas); rejects with SinkError. */
  send(records: readonly StoredRecord[]): Promise<void>;
}

/**
 * A failed send. `retriable`: try the same records again later (network, leader change, timeout).
 * Not retriable: the destination refuses these records for good (e.g. MESSAGE_TOO_LARGE).
 */
export class SinkError extends GatewayError {
  constructor(code: string, message: string, retriable: boolean, cause?: unknown) {
    super(code, message, { retriable, cause });
    this.name = 'SinkError';
  }
}
