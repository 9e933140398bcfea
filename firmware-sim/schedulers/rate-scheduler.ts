// Paces new readings to one rate across a fleet: a token bucket refilled on a 10 ms tick, and a ring of the
// devices that have a free in-flight slot and wait for a token, each at most once, served first come first
// served. Devices are indices; whether one may publish and how it does are the caller's.

export interface RateSchedulerOptions {
  /** New readings per second across the fleet; 0 = every device publishes as fast as its slots free up. */
  readonly ratePerSecond: number;
  readonly devices: number;
  /** Whether device `index` may publish a new reading now (online, a free slot, the run still publishing). */
  canPublish(index: number): boolean;
  publish(index: number): void;
}

export interface RateScheduler {
  /** Starts the tick (publishing begins). */
  start(): void;
  /**
   * Device `index` has a free slot. Without a rate it fills its slots at once. With one, it takes a token now
   * if one is left and nobody waits before it (so pacing does not hinge on timer resolution, which is poor
   * on a loaded box), and otherwise waits for a tick.
   */
  offer(index: number): void;
  /** Stops the tick and forgets the waiting devices. */
  stop(): void;
}

const TICK_MS = 10;
// A stalled scheduler (busy or descheduled process) catches up at most 1 s worth of tokens, so the rate
// holds on a loaded box; the catch-up burst is bounded anyway by the devices' free in-flight slots.
const MAX_CATCH_UP_S = 1;

export function createRateScheduler(options: RateSchedulerOptions): RateScheduler {
  const rate = options.ratePerSecond;
  const waiting = createWaitingRing(options.devices);
  let tokens = 0;
  let lastTickAt = performance.now();
  let tickTimer: NodeJS.Timeout | undefined;

  const replenish = (): void => {
    const now = performance.now();
    tokens = Math.min(tokens + ((now - lastTickAt) / 1_000) * rate, Math.max(1, rate * MAX_CATCH_UP_S));
    lastTickAt = now;
  };

  const tick = (): void => {
    replenish();
    while (tokens >= 1) {
      const index = waiting.take();
      if (index === undefined) break;
      if (!options.canPublish(index)) continue;
      options.publish(index);
      tokens -= 1;
      if (options.canPublish(index)) waiting.add(index);
    }
  };

  return {
    start() {
      lastTickAt = performance.now();
      if (rate > 0) tickTimer = setInterval(tick, TICK_MS);
    },
    offer(index) {
      if (!options.canPublish(index)) return;
      if (rate === 0) {
        while (options.canPublish(index)) options.publish(index);
        return;
      }
      if (waiting.size() === 0) {
        replenish();
        while (tokens >= 1 && options.canPublish(index)) {
          tokens -= 1;
          options.publish(index);
        }
      }
      if (options.canPublish(index)) waiting.add(index);
    },
    stop() {
      clearInterval(tickTimer);
      waiting.clear();
    },
  };
}

/** A FIFO of device indices, each in it at most once, in fixed memory. */
function createWaitingRing(capacity: number) {
  const ring = new Int32Array(Math.max(1, capacity));
  const queued = new Uint8Array(Math.max(1, capacity));
  let head = 0;
  let size = 0;
  return {
    size: () => size,
    add(index: number): void {
      if (queued[index] === 1) return;
      queued[index] = 1;
      ring[(head + size) % ring.length] = index;
      size += 1;
    },
    take(): number | undefined {
      if (size === 0) return undefined;
      const index = ring[head] ?? 0;
      head = (head + 1) % ring.length;
      size -= 1;
      queued[index] = 0;
      return index;
    },
    clear(): void {
      size = 0;
      queued.fill(0);
    },
  };
}
