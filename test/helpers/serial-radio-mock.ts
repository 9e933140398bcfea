// An RN2483 emulator (firmware-sim) on the far side of serialport's mock binding: the real SerialPortStream
// and its binding contract, with the module answering every command the gateway writes. The adapter can be
// unplugged (the stream closes with a disconnect error, and opens fail) and plugged back in (a fresh,
// power-cycled module).
import { SerialPortMock } from 'serialport';
import { createRn2483Emulator, type Rn2483Emulator, type Rn2483EmulatorOptions } from '../../firmware-sim/transports/rn2483-emulator.ts';
import type { SerialPortStream } from '../../src/ingress/serial-radio/serial-radio-ingress.ts';

export interface MockRadio {
  readonly path: string;
  /** The module on the currently open port (a new one after every replug). */
  emulator(): Rn2483Emulator;
  /** The stream the gateway has open now, or null. */
  stream(): SerialPortMock | null;
  /** For the ingress's createPort dependency. */
  createPort(path: string, baudRate: number): SerialPortStream;
  /** Opens a port on the mock path with the emulator attached (for driver tests). */
  openStream(): Promise<SerialPortMock>;
  /** Pulls the adapter: the open stream closes as disconnected; opens fail with ENOENT until plug(). */
  unplug(): Promise<void>;
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
  let emulator = createRn2483Emulator(options, () => undefined);
  let opens = 0;

  /** Joins a freshly opened binding port to a new emulator: what the gateway writes, the module reads. */
  function attach(stream: SerialPortMock): void {
    const binding = stream.port as NonNullable<SerialPortMock['port']>;
    emulator = createRn2483Emulator(options, (text) => {
      if (binding.isOpen) binding.emitData(text);
    });
    const module = emulator;
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
    plug() {
      plugged = true;
    },
    opens: () => opens,
  };
}
