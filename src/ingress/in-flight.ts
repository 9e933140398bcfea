// The commits an ingress has started and not yet seen finish: stop() waits for them, so nothing handed to
// the buffer is abandoned half-way. A commit that fails in a way nobody handled (a bug below accept(),
// which itself never rejects) goes to onError to be counted and logged, never to an unhandled rejection.
export interface InFlight<Context> {
  /** Keeps `work` until it settles; `context` (what the work is) goes to onError if it fails. */
  track(work: Promise<unknown>, context: Context): void;
  /** Works not yet settled. */
  readonly size: number;
  /** Resolves when every work tracked so far has settled (and been removed). */
  settled(): Promise<void>;
}

/** `onSettled` runs after each work is removed (e.g. to resume a paused reader once there is room). */
export function createInFlight<Context = void>(onError: (error: unknown, context: Context) => void, onSettled?: () => void): InFlight<Context> {
  const pending = new Set<Promise<void>>();
  return {
    track(work, context) {
      const entry: Promise<void> = work
        .then(
          () => undefined,
          (error: unknown) => onError(error, context),
        )
        .finally(() => {
          pending.delete(entry);
          onSettled?.();
        });
      pending.add(entry);
    },
    get size() {
      return pending.size;
    },
    async settled() {
      await Promise.allSettled([...pending]);
    },
  };
}
