// Splits a serial byte stream into text lines ending in \n (a trailing \r is dropped), with a cap on the
// line length. serialport's ReadlineParser keeps every byte until the next \n, so a radio (or a noisy
// line) that never sends one would grow memory without bound; here an over-long line is cut off,
// reported once, and everything up to the next \n is discarded.

export interface LineSplitter {
  /** Feeds bytes as they arrive; calls onLine for every complete line. */
  push(chunk: Buffer): void;
}

export interface LineSplitterHandlers {
  onLine(line: string): void;
  /** A line reached maxLineBytes before its \n: its first bytes (for the log) and the rest is skipped. */
  onOverlong(head: string): void;
}

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;

export function createLineSplitter(maxLineBytes: number, handlers: LineSplitterHandlers): LineSplitter {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  /** True while skipping the rest of an over-long line. */
  let discarding = false;

  function keep(part: Buffer): void {
    if (discarding || part.length === 0) return;
    if (pendingBytes + part.length > maxLineBytes) {
      const head = Buffer.concat([...pending, part])
        .subarray(0, 40)
        .toString('latin1');
      pending = [];
      pendingBytes = 0;
      discarding = true;
      handlers.onOverlong(head);
      return;
    }
    pending.push(part);
    pendingBytes += part.length;
  }

  return {
    push(chunk) {
      let start = 0;
      for (let end = chunk.indexOf(NEWLINE); end !== -1; end = chunk.indexOf(NEWLINE, start)) {
        keep(chunk.subarray(start, end));
        start = end + 1;
        if (discarding) {
          discarding = false;
          continue;
        }
        let line = pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending);
        pending = [];
        pendingBytes = 0;
        if (line.at(-1) === CARRIAGE_RETURN) line = line.subarray(0, -1);
        // latin1 maps every byte to one character, so binary noise cannot turn into multi-byte surprises.
        handlers.onLine(line.toString('latin1'));
      }
      keep(chunk.subarray(start));
    },
  };
}
