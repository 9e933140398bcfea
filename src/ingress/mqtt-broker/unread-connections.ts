// A device that stops reading what the gateway sends (its PUBACKs, commands) fills its connection's write
// buffer. aedes then stops reading that client (puback-writes.ts answers false past the high-water mark), and
// when the buffer has not drained after drainTimeout it closes the connection with 'drain timeout', failing
// each publish still waiting with the same error. This reports such a close once per connection, as a
// refused connection with a reason a person can act on; the publishes it did not acknowledge stay the
// device's to resend.
import type { Aedes, Client } from 'aedes';
import { printable } from '../../shared/input-text.ts';
import type { RefuseConnection } from './listeners.ts';

/** How long a connection may go without taking anything the gateway sent, with more waiting (aedes' default). */
export const DRAIN_TIMEOUT_MS = 60_000;

export function reportUnreadConnections(broker: Aedes, drainTimeoutMs: number, refuse: RefuseConnection): void {
  const reported = new WeakSet<Client>();
  broker.on('clientError', (client, error) => {
    if (error.message !== 'drain timeout' || reported.has(client)) return;
    reported.add(client);
    refuse(
      'not-reading',
      client.id,
      `${printable(client.id, 64)}: connection closed: what the gateway sent it (PUBACKs, commands) did not drain for ${drainTimeoutMs / 1000} s; it may resend what was not acknowledged when it reconnects; check the device's firmware and link`,
    );
  });
}
