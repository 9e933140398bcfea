// The ramp-up of a fleet's connections: at most `concurrency` first connection attempts in progress at once,
// the next device starting as soon as one attempt ends (connected, refused or closed), so a thousand devices
// do not all knock on the broker in the same millisecond.

export interface ConnectRampOptions {
  readonly devices: number;
  readonly concurrency: number;
  /** True once the run stops: no more devices are started. */
  isStopped(): boolean;
  /** Starts device `index` connecting; it reports back through attemptEnded(index). */
  connect(index: number): void;
}

export interface ConnectRamp {
  /** Starts devices until `concurrency` attempts are in progress. */
  fill(): void;
  /** Device `index`'s first attempt ended; later calls for it change nothing. */
  attemptEnded(index: number): void;
}

export function createConnectRamp(options: ConnectRampOptions): ConnectRamp {
  const attempting = new Uint8Array(options.devices);
  let next = 0;
  let inProgress = 0;

  const fill = (): void => {
    while (inProgress < options.concurrency && next < options.devices && !options.isStopped()) {
      const index = next;
      next += 1;
      attempting[index] = 1;
      inProgress += 1;
      options.connect(index);
    }
  };

  return {
    fill,
    attemptEnded(index) {
      if (attempting[index] !== 1) return;
      attempting[index] = 0;
      inProgress -= 1;
      fill();
    },
  };
}
