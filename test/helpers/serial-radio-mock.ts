// An RN2483 emulator (firmware-sim) on the far side of serialport's mock binding: the real SerialPortStream
// and its binding contract, with the module answering every command the gateway writes. The module keeps
// power, and so its state, across a port close and reopen, as the real one does. The adapter can be
// unplugged (the stream closes with a disconnect error, and opens fail) and plugged back in (a fresh,
// power-cycled module).
import { SerialPortMock } from 'serialport';
import { createRn2483Emulator, type Rn2483Emulator, type Rn2483EmulatorOptions } from '../../firmware-sim/transports/rn2483-emulator.ts';
import type { SerialPortStream } from '../../src/ingress/serial-radio/serial-radio-ingress.ts';

export interface MockRadio {
  readonly path: string;
  /** The module behind the port: the same across reopens, a new (power-cycled) one after unplug() and plug(). */
  emulator(): Rn2483Emulator;
  /** The stream the gateway has open now, or null. */
  stream(): SerialPortMock | null;
  /** For the ingress's createPort dependency. */
  createPort(path: string, baudRate: number): SerialPortStream;
  /** Opens a port on the mock path with the emulator attached (for driver tests). */
  openStream(): Promise<SerialPortMock>;
  /** Pulls the adapter: the open stream closes as disconnected; opens fail with ENOENT until plug(). */
  unplug(): Promise<void>;
  /** Pulls the adapter, but the open stream never hears of it (a hung-up pty the bindings read 0 bytes from). */
  vanish(): void;
  /** For the ingress's deviceIdentity dependency: the node's identity, new after each plug(); null when unplugged. */
  deviceIdentity(path: string): Promise<string | null>;
  plug(): void;
  /** Open attempts made (also failed ones). */
  opens(): number;
}

let nextPort = 0;

export function mockRadio(options: Rn2483EmulatorOptions & { readonly plugged?: boolean } = {}): MockRadio {
  nextPort += 1;
  const path = `/dev/ttyMOCK${nextPort}`;
  SerialPortMock.binding.createPort(path, { echo: false, record: true });
  let plugged = options.plugged ?? true;
  let current: SerialPortMock | null = null;
  /** Where the module's lines go: the binding of the open port; nowhere while it is closed. */
  let output: ((text: string) => void) | null = null;
  const powerOn = (): Rn2483Emulator => createRn2483Emulator(options, (text) => output?.(text));
  let emulator = powerOn();
  let opens = 0;
  let generation = 0;

  /** Joins a freshly opened binding port to the module: what the gateway writes, the module reads. */
  function attach(stream: SerialPortMock): void {
    const binding = stream.port as NonNullable<SerialPortMock['port']>;
    const module = emulator;
    output = (text) => {
      if (binding.isOpen) binding.emitData(text);
    };
    const write = binding.write.bind(binding);
    binding.write = async (buffer: Buffer) => {
      await write(buffer);
      module.receive(buffer);
    };
    current = stream;
  }

  function createPort(portPath: string, baudRate: number): SerialPortStream {
    opens += 1;
    // An unplugged adapter: its device node is gone.
    const stream = new SerialPortMock({ path: plugged ? portPath : `${portPath}-unplugged`, baudRate, autoOpen: false });
    stream.once('open', () => attach(stream));
    return stream;
  }

  return {
    path,
    emulator: () => emulator,
    stream: () => current,
    createPort,
    async openStream() {
      const stream = createPort(path, 57_600) as SerialPortMock;
      await new Promise<void>((resolve, reject) => stream.open((error) => (error === null ? resolve() : reject(error))));
      return stream;
    },
    async unplug() {
      plugged = false;
      const stream = current;
      current = null;
      if (stream?.isOpen !== true) return;
      // What the stream itself does when a read fails with ENXIO/EIO: close with a DisconnectedError.
      await new Promise<void>((resolve) => {
        stream.once('close', () => resolve());
        stream.close(undefined, Object.assign(new Error('device disconnected'), { disconnected: true }));
      });
    },
    vanish() {
      plugged = false;
    },
    deviceIdentity: async (asked) => (plugged && asked === path ? `mock:${generation}` : null),
    plug() {
      if (!plugged) {
        emulator = powerOn();
        generation += 1;
      }
      plugged = true;
    },
    opens: () => opens,
  };
}
