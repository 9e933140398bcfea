// A real pino logger whose JSON lines are kept in memory, so tests can assert on what was logged.
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/core/log.ts';

export interface CapturedLog {
  readonly log: Logger;
  readonly lines: () => readonly Record<string, unknown>[];
  readonly messages: () => readonly string[];
}

export function captureLog(level = 'debug'): CapturedLog {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  const log = createLogger({ level, gatewayId: 'test-gw' }, destination);
  return { log, lines: () => lines, messages: () => lines.map((line) => String(line.msg)) };
}
