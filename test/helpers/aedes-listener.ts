// A real aedes broker on a TCP port for firmware-sim's tests, keeping its sockets so a test can drop every
// connection (a broker restart or a network cut) and listen again on the same port.
import net from 'node:net';
import type { Aedes } from 'aedes';

/** Listens on `port` (0: any) on 127.0.0.1; every socket is added to `sockets` until it closes. */
export async function listenAedes(broker: Aedes, sockets: Set<net.Socket>, port: number): Promise<net.Server> {
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    broker.handle(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return server;
}
