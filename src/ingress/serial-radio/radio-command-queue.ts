// The RN2483's command/answer exchange: the module takes one ASCII command at a time, so commands queue and
// each is written only after the one before it was answered. A command without an answer within the timeout
// means the module is gone or wedged: onTimeout is told, and the driver closes the queue. Lines that answer
// no command are the driver's to handle (radio_rx, radio_err, noise).
import type { Logger } from '../../core/log.ts';
import { RadioError } from './radio-error.ts';

export interface RadioCommandQueue {
  /** Queues `text`; resolves with the first line `isAnswer` accepts. Rejects with RadioError (STOPPED, or the close reason). */
  send(text: string, isAnswer: (line: string) => boolean): Promise<string>;
  /** If `line` answers the command waiting: resolves it, sends the next and returns true. */
  answer(line: string): boolean;
  /** Accepts commands (start). */
  open(): void;
  /** Rejects the command waiting and every queued one with `reason`; nothing is sent until open() again. */
  close(reason: RadioError): void;
}

export interface RadioCommandQueueDeps {
  readonly log: Logger;
  /** The command waiting got no answer in time; still waiting until close(). */
  readonly onTimeout: (error: RadioError) => void;
}

interface PendingCommand {
  readonly text: string;
  /** Whether a line is this command's answer; other lines are counted and ignored. */
  readonly isAnswer: (line: string) => boolean;
  readonly resolve: (answer: string) => void;
  readonly reject: (error: RadioError) => void;
}

export function createRadioCommandQueue(port: { write(text: string): unknown }, commandTimeoutMs: number, deps: RadioCommandQueueDeps): RadioCommandQueue {
  const { log } = deps;
  const queue: PendingCommand[] = [];
  let current: PendingCommand | null = null;
  let currentTimer: NodeJS.Timeout | null = null;
  let isOpen = false;

  function finishCurrent(): void {
    if (currentTimer !== null) clearTimeout(currentTimer);
    currentTimer = null;
    current = null;
    sendNext();
  }

  function sendNext(): void {
    if (current !== null || !isOpen) return;
    const next = queue.shift();
    if (next === undefined) return;
    current = next;
    currentTimer = setTimeout(() => {
      const timedOut = current;
      if (timedOut === null) return;
      currentTimer = null;
      // The driver's close() rejects the command still waiting (and everything queued behind it).
      deps.onTimeout(
        new RadioError(
          'COMMAND_TIMEOUT',
          `the radio did not answer '${timedOut.text}' within ${commandTimeoutMs} ms: is it an RN2483/RN2903 at the configured baud rate, powered, and not held in reset?`,
        ),
      );
    }, commandTimeoutMs);
    log.debug({ command: next.text }, 'serial radio: command');
    port.write(`${next.text}\r\n`);
  }

  return {
    send(text, isAnswer) {
      if (!isOpen) return Promise.reject(new RadioError('STOPPED', `radio stopped before '${text}'`));
      return new Promise((resolve, reject) => {
        queue.push({ text, isAnswer, resolve, reject });
        sendNext();
      });
    },

    answer(line) {
      if (!current?.isAnswer(line)) return false;
      const answered = current;
      finishCurrent();
      answered.resolve(line);
      return true;
    },

    open() {
      isOpen = true;
    },

    close(reason) {
      isOpen = false;
      if (currentTimer !== null) clearTimeout(currentTimer);
      currentTimer = null;
      const waiting = [...(current === null ? [] : [current]), ...queue.splice(0)];
      current = null;
      for (const pending of waiting) pending.reject(reason);
    },
  };
}
