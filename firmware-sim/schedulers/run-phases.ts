// The phases of a fleet run and the timers between them: ramp-up (until every device has connected or
// failed, or the connect deadline), publishing (until the duration, a message limit, every device failing or
// an abort), draining (until the readings in flight are acknowledged or the drain timeout) and finished.
// The fleet says what happens at each step through the callbacks; this module only decides when.

export type RunStopReason = 'messages' | 'duration' | 'aborted' | 'all-failed' | 'no-connection';

export interface RunPhasesOptions {
  /** 'together': publishing starts when the ramp-up is over; 'staggered': at once, each device when connected. */
  readonly start: 'together' | 'staggered';
  /** Publishing time, counted from when publishing starts; 0 = no limit. */
  readonly durationMs: number;
  /** After a stop for 'messages' or 'duration', how long to wait for the readings in flight. */
  readonly drainTimeoutMs: number;
  /** No device connected by then: the run ends ('no-connection'); some did: publishing starts. */
  readonly connectDeadlineMs: number;
  /** Aborting stops at once, without draining. */
  readonly signal?: AbortSignal;
  hasConnected(): boolean;
  isDrained(): boolean;
  /** Publishing starts: start pacing, let every device publish. */
  onPublishing(): void;
  /** New readings stop. */
  onStopping(reason: RunStopReason): void;
  /** The run is over: end the connections. Called once. */
  onFinished(reason: RunStopReason): void;
}

export interface RunStatus {
  readonly isPublishing: boolean;
  /** Set from the stop on: no new readings. */
  readonly stoppedBy: RunStopReason | undefined;
  readonly isFinished: boolean;
  /** From the start of the run to the start of publishing with start 'together'; else 0. */
  readonly rampUpMs: number;
}

export interface RunPhases {
  /** Live: read it when needed, do not keep a copy. */
  readonly status: RunStatus;
  /** Arms the abort and the connect deadline (and with start 'staggered' starts publishing). */
  begin(): void;
  startPublishing(): void;
  /** A device connected for the first time: with publishing under way, the deadline no longer matters. */
  deviceConnected(): void;
  stop(reason: RunStopReason): void;
  /** Finishes if the run has stopped and nothing is in flight. */
  checkDrained(): void;
  finish(): void;
}

export function createRunPhases(options: RunPhasesOptions): RunPhases {
  const startedAt = performance.now();
  const timers: { duration?: NodeJS.Timeout; drain?: NodeJS.Timeout; deadline?: NodeJS.Timeout } = {};
  const state: { -readonly [K in keyof RunStatus]: RunStatus[K] } = { isPublishing: false, stoppedBy: undefined, isFinished: false, rampUpMs: 0 };

  const phases: RunPhases = {
    status: state,
    begin() {
      if (options.signal?.aborted) {
        state.stoppedBy = 'aborted';
        phases.finish();
        return;
      }
      options.signal?.addEventListener('abort', onAbort, { once: true });
      timers.deadline = setTimeout(onDeadline, options.connectDeadlineMs);
      if (options.start === 'staggered') phases.startPublishing();
    },
    startPublishing() {
      if (state.isPublishing || state.stoppedBy !== undefined) return;
      state.isPublishing = true;
      if (options.hasConnected()) clearTimeout(timers.deadline);
      state.rampUpMs = options.start === 'together' ? performance.now() - startedAt : 0;
      if (options.durationMs > 0) timers.duration = setTimeout(() => phases.stop('duration'), options.durationMs);
      options.onPublishing();
    },
    deviceConnected() {
      if (state.isPublishing) clearTimeout(timers.deadline);
    },
    stop(reason) {
      if (state.stoppedBy !== undefined) return;
      state.stoppedBy = reason;
      clearTimeout(timers.duration);
      clearTimeout(timers.deadline);
      options.onStopping(reason);
      if (reason === 'messages' || reason === 'duration') {
        timers.drain = setTimeout(phases.finish, options.drainTimeoutMs);
        // Deferred: a stop can come from inside a publish, before that reading's bookkeeping is complete.
        setImmediate(phases.checkDrained);
      }
    },
    checkDrained() {
      if (state.stoppedBy !== undefined && options.isDrained()) phases.finish();
    },
    finish() {
      if (state.isFinished) return;
      state.isFinished = true;
      state.stoppedBy ??= 'aborted';
      for (const timer of Object.values(timers)) clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      options.onFinished(state.stoppedBy);
    },
  };

  function onAbort(): void {
    phases.stop('aborted');
    phases.finish();
  }

  function onDeadline(): void {
    if (options.hasConnected()) {
      phases.startPublishing();
    } else {
      phases.stop('no-connection');
      phases.finish();
    }
  }

  return phases;
}
