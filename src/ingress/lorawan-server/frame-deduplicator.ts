// Several gateways (or antennas) hear the same transmission: within a short window the copies are
// collected under the frame's bytes and handed on once, with every reception (as ChirpStack does with its
// deduplication_delay). A retransmission or a replay comes later than the window, and the frame counter
// check catches it.
import type { RecordSource } from '../../record/record.ts';
import type { Reception } from './reception.ts';

export interface DeduplicatedFrame {
  readonly phyPayload: Buffer;
  /** In arrival order. */
  readonly receptions: readonly Reception[];
  /** The ingress that heard the first copy ('semtech-udp', 'serial-radio'): the record's source. */
  readonly source: RecordSource;
  /** performance.now() of the first copy: downlink timing is measured from here. */
  readonly firstSeenMono: number;
}

export interface FrameDeduplicator {
  add(phyPayload: Buffer, reception: Reception, source: RecordSource): void;
  /** Hands on every frame still collecting (at shutdown). */
  flush(): void;
  /** Frames collecting now. */
  readonly pending: number;
}

export function createFrameDeduplicator(options: { readonly windowMs: number }, onFrame: (frame: DeduplicatedFrame) => void): FrameDeduplicator {
  interface Collecting {
    readonly frame: { phyPayload: Buffer; receptions: Reception[]; source: RecordSource; firstSeenMono: number };
    readonly timer: NodeJS.Timeout;
  }
  const collecting = new Map<string, Collecting>();

  function close(key: string): void {
    const entry = collecting.get(key);
    if (entry === undefined) return;
    collecting.delete(key);
    clearTimeout(entry.timer);
    onFrame(entry.frame);
  }

  return {
    add(phyPayload, reception, source) {
      if (options.windowMs === 0) {
        onFrame({ phyPayload, receptions: [reception], source, firstSeenMono: performance.now() });
        return;
      }
      const key = phyPayload.toString('base64');
      const entry = collecting.get(key);
      if (entry !== undefined) {
        entry.frame.receptions.push(reception);
        return;
      }
      collecting.set(key, {
        frame: { phyPayload, receptions: [reception], source, firstSeenMono: performance.now() },
        timer: setTimeout(() => close(key), options.windowMs),
      });
    },
    flush() {
      for (const key of [...collecting.keys()]) close(key);
    },
    get pending() {
      return collecting.size;
    },
  };
}
