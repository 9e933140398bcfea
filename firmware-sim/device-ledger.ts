// What one simulated device knows at the end of a run: which of its readings the gateway
// acknowledged, in the order the acks came, and which it never did. Tests compare this with what
// reached Kafka. Acked seqs are stored as runs (first, last) because they are almost always
// consecutive: 100,000 acks of one device cost two numbers, not 100,000.

export interface DeviceLedger {
  readonly deviceId: string;
  /**
   * Acknowledged seqs in ack order, run-length encoded as [first0, last0, first1, last1, ...]; each run
   * covers first..last ascending by 1. Use `ackedSeqs()` to expand it. Empty for QoS 0.
   */
  readonly ackedRuns: readonly number[];
  /** Readings acknowledged (PUBACK received); each seq counts once. For QoS 0: 0. */
  readonly acked: number;
  /** Readings published but never acknowledged when the run ended (QoS 0 has no acks: all of them). */
  readonly unacked: number;
  /** Distinct readings published, i.e. the highest seq used. */
  readonly published: number;
  /** Re-sends of unacknowledged readings after a reconnect (same seq, same payload). */
  readonly resent: number;
  /** Why the device gave up (refused CONNACK, publishes repeatedly closed without PUBACK). */
  readonly failure?: string;
}

/** Appends `seq` to run-length encoded `runs`, extending the last run when `seq` follows it. */
export function appendSeqRun(runs: number[], seq: number): void {
  const last = runs.length - 1;
  if (last > 0 && runs[last] === seq - 1) {
    runs[last] = seq;
  } else {
    runs.push(seq, seq);
  }
}

/** The acknowledged seqs of one device, in ack order. */
export function ackedSeqs(ledger: Pick<DeviceLedger, 'ackedRuns'>): number[] {
  const seqs: number[] = [];
  const runs = ledger.ackedRuns;
  for (let i = 0; i + 1 < runs.length; i += 2) {
    const last = runs[i + 1] ?? 0;
    for (let seq = runs[i] ?? 0; seq <= last; seq++) seqs.push(seq);
  }
  return seqs;
}
