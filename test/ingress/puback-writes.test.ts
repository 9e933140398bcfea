// The single-write PUBACK (puback-writes.ts) against mqtt-packet's own writeToStream: the same bytes, return
// value and stream errors for every packet id and for packets it leaves to mqtt-packet; PUBACKs written to one
// socket in the same turn leave in one write, in order with its other packets; and aedes, with real clients,
// acknowledges through it.
import assert from 'node:assert/strict';
import { type AddressInfo, connect } from 'node:net';
import { PassThrough, Writable } from 'node:stream';
import { type TestContext, test } from 'node:test';
import { Aedes } from 'aedes';
import mqtt from 'mqtt';
import { installSingleWritePuback, mqttPacketExports } from '../../src/ingress/mqtt-broker/puback-writes.ts';
import { listenAedes } from '../helpers/aedes-listener.ts';
import { connectPacket, mqttPacket, mqttString, publishPacket } from '../helpers/mqtt-wire.ts';
import { connectUnread, drivenConnection } from '../helpers/unread-connection.ts';
import { waitFor } from '../helpers/wait-for.ts';

const exportsOfMqttPacket = mqttPacketExports();
const generic = installSingleWritePuback(exportsOfMqttPacket);
const patched = exportsOfMqttPacket.writeToStream;

/** Writes one packet to a fresh stream; resolves with the bytes, the return value and any destroy error. */
async function written(write: typeof generic, packet: object, options?: unknown): Promise<unknown> {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  let error: string | null = null;
  stream.on('error', (cause) => {
    error = cause.message;
  });
  let returned: unknown;
  try {
    returned = write(packet, stream, options);
  } catch (cause) {
    returned = `threw ${(cause as Error).message}`;
  }
  await new Promise((resolve) => setImmediate(resolve));
  return { bytes: Buffer.concat(chunks).toString('hex'), returned, error };
}

test("a PUBACK is mqtt-packet's bytes and return value for every packet id", async () => {
  for (let id = 0; id <= 0xffff; id += id < 300 ? 1 : 251) {
    const packet = { cmd: 'puback', messageId: id };
    assert.deepEqual(await written(patched, packet), await written(generic, packet), `messageId ${id}`);
  }
  const last = { cmd: 'puback', messageId: 0xffff };
  assert.deepEqual(await written(patched, last), await written(generic, last));
});

test('odd packet ids, MQTT 5 options and other packets go to mqtt-packet, with its results', async () => {
  const cases: [object, unknown][] = [
    [{ cmd: 'puback' }, undefined],
    [{ cmd: 'puback', messageId: -1 }, undefined],
    [{ cmd: 'puback', messageId: 1.5 }, undefined],
    [{ cmd: 'puback', messageId: '7' }, undefined],
    [{ cmd: 'puback', messageId: 7, reasonCode: 16 }, { protocolVersion: 5 }],
    [{ cmd: 'puback', messageId: 7, reasonCode: 16 }, undefined],
    [{ cmd: 'pubrec', messageId: 7 }, undefined],
    [{ cmd: 'pingresp' }, undefined],
    [{ cmd: 'publish', topic: 'devices/m-1/commands/dim', payload: Buffer.from('50'), qos: 1, messageId: 9 }, undefined],
  ];
  for (const [packet, options] of cases) {
    assert.deepEqual(await written(patched, packet, options), await written(generic, packet, options), JSON.stringify(packet));
  }
});

/** A socket stand-in that records each write request's bytes (a writev's chunks joined). */
function recordingStream(): { stream: Writable; writes: string[] } {
  const writes: string[] = [];
  const stream = new Writable({
    writev(chunks, callback) {
      writes.push(Buffer.concat(chunks.map(({ chunk }) => chunk as Buffer)).toString('hex'));
      callback();
    },
    write(chunk: Buffer, _encoding, callback) {
      writes.push(chunk.toString('hex'));
      callback();
    },
  });
  return { stream, writes };
}

const pubackHex = (id: number) => `4002${id.toString(16).padStart(4, '0')}`;

test('PUBACKs to one socket in the same turn leave in one write, in order, each socket its own', async () => {
  const one = recordingStream();
  const two = recordingStream();
  for (let id = 1; id <= 8; id++) {
    patched({ cmd: 'puback', messageId: id }, one.stream);
    patched({ cmd: 'puback', messageId: 0x100 + id }, two.stream);
  }
  assert.deepEqual(one.writes, [], 'nothing written before the end of the turn');
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(one.writes, [[1, 2, 3, 4, 5, 6, 7, 8].map(pubackHex).join('')]);
  assert.deepEqual(two.writes, [[1, 2, 3, 4, 5, 6, 7, 8].map((id) => pubackHex(0x100 + id)).join('')]);

  patched({ cmd: 'puback', messageId: 9 }, one.stream);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(one.writes.at(-1), pubackHex(9), 'the next turn writes again');
});

test('another packet for the socket leaves after the PUBACKs written before it and before those after it', async () => {
  const { stream, writes } = recordingStream();
  patched({ cmd: 'puback', messageId: 1 }, stream);
  patched({ cmd: 'puback', messageId: 2 }, stream);
  patched({ cmd: 'pingresp' }, stream);
  patched({ cmd: 'puback', messageId: 3 }, stream);
  const command = { cmd: 'publish', topic: 'd/c', payload: Buffer.from('x'), qos: 0 };
  patched(command, stream);
  patched({ cmd: 'puback', messageId: 4 }, stream);
  await new Promise((resolve) => setImmediate(resolve));
  const expected = await written(generic, command);
  assert.equal(writes.join(''), pubackHex(1) + pubackHex(2) + 'd000' + pubackHex(3) + (expected as { bytes: string }).bytes + pubackHex(4));
});

test('PUBACKs noted for a socket destroyed or ended before the end of the turn are dropped (aedes destroys client sockets, dropping corked writes)', async () => {
  const destroyed = recordingStream();
  const ended = recordingStream();
  const errors: Error[] = [];
  for (const { stream } of [destroyed, ended]) stream.on('error', (error) => errors.push(error));
  patched({ cmd: 'puback', messageId: 1 }, destroyed.stream);
  patched({ cmd: 'puback', messageId: 1 }, ended.stream);
  destroyed.stream.destroy();
  ended.stream.end();
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual([destroyed.writes, ended.writes, errors], [[], [], []]);
});

test('a stream whose write writes again, as an in-memory pair may, gets every PUBACK once and in order', async () => {
  const writes: string[] = [];
  let reentered = false;
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      writes.push(chunk.toString('hex'));
      callback();
    },
  });
  const write = stream.write.bind(stream);
  stream.write = ((chunk: Buffer) => {
    const result = write(chunk);
    if (!reentered) {
      reentered = true;
      patched({ cmd: 'puback', messageId: 2 }, stream);
      patched({ cmd: 'pingresp' }, stream);
      patched({ cmd: 'puback', messageId: 3 }, stream);
    }
    return result;
  }) as typeof stream.write;
  patched({ cmd: 'puback', messageId: 1 }, stream);
  for (let turn = 0; turn < 3; turn++) await new Promise((resolve) => setImmediate(resolve));
  assert.equal(writes.join(''), pubackHex(1) + pubackHex(2) + 'd000' + pubackHex(3));
});

test("a socket whose write throws is destroyed with the error; the turn's other sockets still get theirs, and it is not stuck", async () => {
  const good = recordingStream();
  const bad = recordingStream();
  const failure = new Error('write failed');
  bad.stream.write = () => {
    throw failure;
  };
  const errors: Error[] = [];
  bad.stream.on('error', (error) => errors.push(error));
  patched({ cmd: 'puback', messageId: 1 }, bad.stream);
  patched({ cmd: 'puback', messageId: 1 }, good.stream);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(good.writes, [pubackHex(1)]);
  assert.deepEqual([bad.stream.destroyed, errors], [true, [failure]]);
  patched({ cmd: 'puback', messageId: 2 }, good.stream);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(good.writes, [pubackHex(1), pubackHex(2)]);
});

test("a PUBACK noted while the socket waits for drain answers false and leaves at 'drain', in order", async () => {
  const writes: string[] = [];
  let complete: (() => void) | null = null;
  const stream = new Writable({
    highWaterMark: 8,
    write(chunk: Buffer, _encoding, callback) {
      writes.push(chunk.toString('hex'));
      complete = callback;
    },
  });
  stream.on('readable', () => undefined); // as a connection aedes reads
  const takeWrite = () => (complete as unknown as () => void)();
  assert.equal(patched({ cmd: 'puback', messageId: 1 }, stream), true);
  assert.equal(patched({ cmd: 'puback', messageId: 2 }, stream), true);
  await new Promise((resolve) => setImmediate(resolve)); // 8 bytes written, not yet taken: past the mark
  assert.equal(stream.writableNeedDrain, true);
  assert.equal(patched({ cmd: 'puback', messageId: 3 }, stream), false, 'the socket is backed up');
  assert.equal(patched({ cmd: 'puback', messageId: 4 }, stream), false);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(writes, [pubackHex(1) + pubackHex(2)], 'held until the socket drains');
  assert.equal(stream.writableLength, 8, "PUBACKs 3 and 4 are not even in the stream's buffer");
  takeWrite();
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(writes, [pubackHex(1) + pubackHex(2), pubackHex(3) + pubackHex(4)]);
  takeWrite();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(patched({ cmd: 'puback', messageId: 5 }, stream), true, 'drained');
});

/** aedes answering publishes as the gateway's group commit does: all that arrived meanwhile at once, a little later. */
async function relayingBroker(t: TestContext, drainTimeout: number): Promise<{ broker: Aedes; relayed: number[] }> {
  let committing: ((error: null) => void)[] = [];
  const broker = await Aedes.createBroker({
    drainTimeout,
    authorizePublish(_client, _packet, callback) {
      if (committing.length === 0) {
        setTimeout(() => {
          const answered = committing;
          committing = [];
          for (const answer of answered) answer(null);
        }, 5);
      }
      committing.push(callback);
    },
  });
  t.after(() => new Promise((resolve) => broker.close(() => resolve(undefined))));
  const relayed: number[] = [];
  broker.subscribe(
    'lab/+',
    (packet, callback) => {
      relayed.push(Number(packet.payload.toString()));
      callback();
    },
    () => undefined,
  );
  return { broker, relayed };
}

/** Ten QoS 1 publishes, ids and payloads `first` to `first + 9`, each to its own topic under lab/. */
function tenPublishes(first: number): Buffer {
  return Buffer.concat(Array.from({ length: 10 }, (_, n) => publishPacket(`lab/${first + n}`, Buffer.from(String(first + n)), 1, first + n)));
}

/** PUBACKs 1-10 reach the device but are slow to leave its socket (past the mark); 11-20 are committed meanwhile, their PUBACKs held. */
async function backUp(device: ReturnType<typeof drivenConnection>): Promise<void> {
  device.slow();
  device.connection.push(tenPublishes(1));
  await waitFor(() => device.ackedIds().length === 10, 'PUBACKs 1-10');
  device.connection.push(tenPublishes(11));
  await new Promise((resolve) => setTimeout(resolve, 50));
}

function assertEveryAckRelayed(acked: readonly number[], relayed: readonly number[]): void {
  assert.deepEqual(
    acked.filter((ackedId) => !relayed.includes(ackedId)),
    [],
    `acknowledged ${acked.join(',')}; relayed ${[...relayed].sort((a, b) => a - b).join(',')}`,
  );
}

for (const ending of ['the drain timeout closes it', 'the device drops']) {
  test(`every PUBACK a device received is for a publish aedes relayed, when the link stalls and ${ending}`, async (t) => {
    const { broker, relayed } = await relayingBroker(t, 300);
    const device = drivenConnection();
    broker.handle(device.connection);
    device.connection.push(connectPacket({ clientId: 'lte-1' }));
    await waitFor(() => broker.connectedClients === 1, 'the connection');
    await backUp(device);
    // The first write is taken, and the link stalls.
    device.stall();
    device.take();
    // 21-30 arrive and are acknowledged by the commit while nothing leaves the socket any more.
    device.connection.push(tenPublishes(21));
    await new Promise((resolve) => setTimeout(resolve, 20));
    if (ending === 'the device drops') device.connection.destroy();
    await waitFor(() => device.connection.destroyed, 'the close', 5000);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const acked = device.ackedIds();
    assertEveryAckRelayed(acked, relayed);
    assert.ok(acked.length >= 10, `the device got PUBACKs ${acked.join(',')}`);
  });
}

test('a client aedes closes while PUBACKs are held (takeover, revoke, stop) gets none of them: their publishes were not relayed', async (t) => {
  const { broker, relayed } = await relayingBroker(t, 60_000);
  const device = drivenConnection();
  broker.handle(device.connection);
  device.connection.push(connectPacket({ clientId: 'lte-2' }));
  // A subscription (a device on its commands topic) makes aedes destroy the socket a turn after close().
  device.connection.push(mqttPacket(0x82, Buffer.from([0, 1]), mqttString('devices/lte-2/commands'), Buffer.from([1])));
  await waitFor(() => broker.connectedClients === 1, 'the connection');
  await new Promise((resolve) => setTimeout(resolve, 20));
  await backUp(device);
  const client = Object.values((broker as unknown as { clients: Record<string, { close(): void }> }).clients)[0];
  client?.close();
  device.take(); // the link takes the first write in the same turn: 'drain' before the socket is destroyed
  await waitFor(() => device.connection.destroyed, 'the close');
  await new Promise((resolve) => setTimeout(resolve, 50));
  assertEveryAckRelayed(device.ackedIds(), relayed);
});

test('a client that never reads its PUBACKs: aedes stops reading it past the high-water mark and closes it after drainTimeout', async (t) => {
  const broker = await Aedes.createBroker({ drainTimeout: 300 });
  t.after(() => new Promise((resolve) => broker.close(() => resolve(undefined))));
  const clientErrors: string[] = [];
  broker.on('clientError', (_client, error) => clientErrors.push(error.message));
  const { connection, publish } = await connectUnread(broker, 'deaf');
  const closedWith = new Promise<string>((resolve) => connection.once('error', (error) => resolve(error.message)));
  await publish('devices/deaf/telemetry', 20, 50);
  // The CONNACK's first byte is written and never taken, so everything after it is buffered: the second
  // chunk's PUBACKs see the connection backed up, and aedes reads nothing after them.
  const buffered = connection.writableLength;
  assert.ok(buffered <= 4 + 2 * 50 * 4, `${buffered} bytes (the CONNACK and PUBACKs) buffered for 1,000 publishes`);
  assert.ok(connection.readableLength > 15 * 50 * 10, `${connection.readableLength} bytes left unread`);
  assert.equal(await closedWith, 'drain timeout');
  // aedes fails each publish still waiting with the same error.
  assert.deepEqual(new Set(clientErrors), new Set(['drain timeout']));
});

test('aedes acknowledges QoS 1 publishes through it, to mqtt.js and to a raw socket', async (t) => {
  const broker = await Aedes.createBroker();
  const server = await listenAedes(broker, new Set(), 0);
  const { port } = server.address() as AddressInfo;
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { protocolVersion: 4, clientId: 'm-1', reconnectPeriod: 0 });
  t.after(async () => {
    await client.endAsync(true);
    await new Promise((resolve) => broker.close(() => resolve(undefined)));
    await new Promise((resolve) => server.close(() => resolve(undefined)));
  });
  await Promise.all(Array.from({ length: 50 }, (_, n) => client.publishAsync('devices/m-1/telemetry', String(n), { qos: 1 })));

  // CONNECT, then PUBLISH QoS 1 with packet id 0x1234: the broker answers CONNACK, PUBACK 1234.
  const raw = connect(port, '127.0.0.1');
  const received: Buffer[] = [];
  raw.on('data', (chunk: Buffer) => received.push(chunk));
  raw.write(Buffer.concat([connectPacket({ clientId: 'raw' }), publishPacket('devices/x', Buffer.from('hello'), 1, 0x1234)]));
  for (let waited = 0; Buffer.concat(received).length < 8 && waited < 5000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
  raw.destroy();
  assert.equal(Buffer.concat(received).toString('hex'), '20020000' + '40021234');
});
