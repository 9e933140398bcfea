// A Sink whose answers a test scripts: each send() asks the script whether the batch fails (and how), and
// connect() asks its own script. It keeps what it acknowledged, and reports health as the Kafka sink does
// (degraded with the last failure until a call succeeds), so test/contracts/sink.contract.ts holds for it
// (test/forward/scripted-sink.contract.test.ts); the forwarder tests drive it.
import type { Sink } from '../../src/forward/sink.ts';
import type { HealthReport } from '../../src/core/lifecycle.ts';
import type { StoredRecord } from '../../src/record/record.ts';

/** Whether a batch fails: null delivers it; an error is thrown as is (a SinkError, or a bug's TypeError). */
export type Script = (batch: readonly StoredRecord[]) => Error | null;

export interface ScriptedSinkOptions {
  /** Whether connect() fails; default: it never does. */
  readonly connect?: () => Error | null;
}

export interface ScriptedSink extends Sink {
  /** meta.n of the records of every send() with records, failed ones included, in call order. */
  readonly attempts: (readonly string[])[];
  /** meta.n of the records acknowledged, in order. */
  readonly delivered: string[];
  /** The records acknowledged, in order. */
  readonly records: StoredRecord[];
}

export function scriptedSink(script: Script, options: ScriptedSinkOptions = {}): ScriptedSink {
  const attempts: (readonly string[])[] = [];
  const delivered: string[] = [];
  const records: StoredRecord[] = [];
  let connected = false;
  let lastError: string | null = null;

  function outcome(failure: Error | null): void {
    if (failure !== null) {
      lastError = failure.message;
      throw failure;
    }
    lastError = null;
    connected = true;
  }

  return {
    name: 'sink.scripted',
    attempts,
    delivered,
    records,
    async start() {},
    async stop() {
      connected = false;
    },
    async connect() {
      outcome(options.connect?.() ?? null);
    },
    health(): HealthReport {
      if (lastError !== null) return { status: 'degraded', detail: lastError };
      return connected ? { status: 'ok', detail: 'connected' } : { status: 'degraded', detail: 'not connected' };
    },
    async send(batch) {
      if (batch.length === 0) return;
      attempts.push(batch.map((r) => String(r.meta.n)));
      outcome(script(batch));
      delivered.push(...batch.map((r) => String(r.meta.n)));
      records.push(...batch);
    },
  };
}
