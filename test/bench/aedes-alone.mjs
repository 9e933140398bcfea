// The memory yardstick for scenario 10: aedes alone, as the gateway embeds it (same version, default
// persistence), with no storage and no Kafka: what any Node MQTT broker for these devices costs. Run as its
// own process, `node test/bench/aedes-alone.mjs PORT`: plain JavaScript, so no TypeScript loader sits in its
// memory. Prints "listening" once it accepts.
import { createServer } from 'node:net';
import { Aedes } from 'aedes';

const port = Number(process.argv[2] ?? 0);
const broker = await Aedes.createBroker();
const server = createServer((socket) => broker.handle(socket));
server.listen(port, '127.0.0.1', () => process.stdout.write('listening\n'));
process.on('SIGTERM', () => {
  server.close();
  broker.close(() => process.exit(0));
});
