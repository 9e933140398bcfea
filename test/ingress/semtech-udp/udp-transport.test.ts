// The Semtech UDP transport against real sockets on 127.0.0.1: the simulated packet forwarder (two sockets,
// like lora_pkt_fwd) and raw dgram peers that send exactly the bytes a test needs, vectors included.
import assert from 'node:assert/strict';
import { type Socket, createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { type TestContext, test } from 'node:test';
import { type SimulatedForwarder, createSimulatedForwarder } from '../../../firmware-sim/transports/packet-forwarder.ts';
import { encodePullData, encodePushData } from '../../../src/ingress/semtech-udp/packet-encoders.ts';
import type { GatewayStat, Rxpk, Txpk } from '../../../src/ingress/semtech-udp/packets.ts';
import { parseDatagram } from '../../../src/ingress/semtech-udp/parse-datagram.ts';
import { type UdpTransport, type UdpTransportOptions, createUdpTransport } from '../../../src/ingress/semtech-udp/udp-transport.ts';
import { captureLog } from '../../helpers/capture-log.ts';
import { waitFor } from '../../helpers/wait-for.ts';

const EUI = 'aa555a0000000000';
const PHY_PAYLOAD = Buffer.from('40f17dbe4900020001954378762b11ff0d', 'hex');

interface Vector {
  readonly id: string;
  readonly request_hex?: string;
  readonly expected_reply_hex?: string | null;
}
const vectors = JSON.parse(readFileSync(new URL('../../fixtures/lorawan/lorawan-vectors.json', import.meta.url), 'utf8')) as Vector[];
function vectorBytes(id: string): { request: Buffer; reply: Buffer } {
  const found = vectors.find((candidate) => candidate.id === id);
  assert.ok(found?.request_hex !== undefined && typeof found.expected_reply_hex === 'string', `vector ${id}`);
  return { request: Buffer.from(found.request_hex, 'hex'), reply: Buffer.from(found.expected_reply_hex, 'hex') };
}

interface Recorded {
  readonly rxpk: { gatewayEui: string; rxpk: Rxpk; receivedAtMs: number; receivedAtMono: number }[];
  readonly stats: { gatewayEui: string; stat: GatewayStat }[];
  readonly drops: { reason: string; from: string; gatewayEui?: string; message: string }[];
  readonly connected: { gatewayEui: string; address: string }[];
  readonly lost: string[];
}

async function startTransport(
  t: TestContext,
  options: Partial<UdpTransportOptions> = {},
  onRxpk?: () => void,
): Promise<{ transport: UdpTransport; port: number; recorded: Recorded; messages: () => readonly string[] }> {
  const { log, messages } = captureLog();
  const recorded: Recorded = { rxpk: [], stats: [], drops: [], connected: [], lost: [] };
  const transport = createUdpTransport(
    { host: '127.0.0.1', port: 0, ...options },
    {
      onRxpk(gatewayEui, rxpk, receivedAtMs, receivedAtMono) {
        recorded.rxpk.push({ gatewayEui, rxpk, receivedAtMs, receivedAtMono });
        onRxpk?.();
      },
      onStat: (gatewayEui, stat) => recorded.stats.push({ gatewayEui, stat }),
      onDrop: (reason, detail) => recorded.drops.push({ reason, ...detail }),
      onGatewayConnected: (gatewayEui, address) => recorded.connected.push({ gatewayEui, address }),
      onGatewayLost: (gatewayEui) => recorded.lost.push(gatewayEui),
    },
    { log },
  );
  await transport.start();
  t.after(() => transport.stop());
  return { transport, port: transport.address().port, recorded, messages };
}

async function startForwarder(
  t: TestContext,
  port: number,
  options: { version?: 1 | 2; gatewayEui?: string; keepaliveMs?: number } = {},
): Promise<SimulatedForwarder> {
  const forwarder = createSimulatedForwarder({ gatewayEui: options.gatewayEui ?? EUI, server: { host: '127.0.0.1', port }, ...options });
  await forwarder.start();
  t.after(() => forwarder.stop());
  return forwarder;
}

/** A raw UDP peer: sends exact bytes, reads replies in order. */
interface RawPeer {
  readonly socket: Socket;
  send(bytes: Uint8Array, port: number): Promise<void>;
  next(timeoutMs?: number): Promise<Buffer>;
}

async function rawPeer(t: TestContext): Promise<RawPeer> {
  const socket = createSocket('udp4');
  const inbox: Buffer[] = [];
  const waiting: ((message: Buffer) => void)[] = [];
  socket.on('message', (message) => {
    const resolve = waiting.shift();
    if (resolve === undefined) inbox.push(message);
    else resolve(message);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  return {
    socket,
    send: (bytes, port) => new Promise((resolve, reject) => socket.send(bytes, port, '127.0.0.1', (error) => (error ? reject(error) : resolve()))),
    next(timeoutMs = 2_000) {
      const queued = inbox.shift();
      if (queued !== undefined) return Promise.resolve(queued);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no datagram within ${timeoutMs} ms`)), timeoutMs);
        waiting.push((message) => {
          clearTimeout(timer);
          resolve(message);
        });
      });
    },
  };
}

const downlink: Txpk = { tmst: 0, freq: 869.525, rfch: 0, powe: 14, modu: 'LORA', datr: 'SF12BW125', codr: '4/5', ipol: true, size: 3, data: 'AQID' };

test('vectors over the wire: PULL_DATA and PUSH_DATA get the exact PULL_ACK and PUSH_ACK bytes', async (t) => {
  const { port, recorded } = await startTransport(t);
  const peer = await rawPeer(t);
  for (const id of ['cs-udp-pull', 'cs-udp-push', 'syn-udp-push-lp-frame']) {
    const { request, reply } = vectorBytes(id);
    await peer.send(request, port);
    assert.deepEqual(await peer.next(), reply, id);
  }
  await waitFor(() => recorded.rxpk.length === 2 && recorded.stats.length === 1, 'two rxpk and a stat');
  assert.deepEqual(
    recorded.rxpk.map(({ gatewayEui, rxpk }) => [gatewayEui, rxpk.data.toString('hex')]),
    [
      ['0102030405060708', '010203'],
      [EUI, PHY_PAYLOAD.toString('hex')],
    ],
  );
});

test('the simulated forwarder gets PULL_ACK and PUSH_ACK with its tokens; rxpk and stat reach the events', async (t) => {
  const { transport, port, recorded, messages } = await startTransport(t);
  const forwarder = await startForwarder(t, port);
  await waitFor(() => forwarder.counters().pullAcked === 1, 'PULL_ACK for the first PULL_DATA');

  const before = Date.now();
  assert.equal(
    await forwarder.pushRxpk([
      { phyPayload: PHY_PAYLOAD, freqMhz: 866.349812, rssi: -35, lsnr: 5.1, tmst: 3_512_348_611 },
      { phyPayload: Buffer.from([1, 2, 3]) },
    ]),
    true,
  );
  assert.equal(await forwarder.pushStat(), true);
  assert.equal(forwarder.counters().pushAcked, 2);
  assert.equal(forwarder.counters().ignored, 0, 'every reply carried the expected version and token');

  await waitFor(() => recorded.stats.length === 1, 'the stat');
  assert.equal(recorded.rxpk.length, 2);
  const [first, second] = recorded.rxpk;
  assert.equal(first?.gatewayEui, EUI);
  assert.deepEqual(first?.rxpk.data, PHY_PAYLOAD);
  assert.equal(first?.rxpk.frequencyHz, 866_349_812);
  assert.equal(first?.rxpk.tmst, 3_512_348_611);
  assert.equal(first?.rxpk.crcStatus, 1);
  assert.ok((first?.receivedAtMs ?? 0) >= before && (first?.receivedAtMs ?? 0) <= Date.now());
  assert.ok((first?.receivedAtMono ?? 0) > 0);
  assert.deepEqual(second?.rxpk.data, Buffer.from([1, 2, 3]));
  assert.equal(recorded.stats[0]?.gatewayEui, EUI);
  assert.equal(recorded.stats[0]?.stat.rxnb, 2);

  const [gateway] = transport.gateways();
  assert.equal(gateway?.gatewayEui, EUI);
  assert.equal(gateway?.protocolVersion, 2);
  assert.deepEqual(gateway?.pullRoute, { address: '127.0.0.1', port: forwarder.downAddress().port }, 'the route is the down socket');
  assert.notEqual(forwarder.upAddress().port, forwarder.downAddress().port);
  assert.equal(gateway?.lastStat?.rxnb, 2);
  assert.ok(gateway?.lastPullAtMs !== null && gateway?.lastPushAtMs !== null);

  assert.deepEqual(recorded.connected, [{ gatewayEui: EUI, address: `127.0.0.1:${forwarder.downAddress().port}` }]);
  assert.equal(
    messages().filter((message) => message === `packet forwarder AA555A0000000000 connected from 127.0.0.1:${forwarder.downAddress().port}`).length,
    1,
  );
  assert.deepEqual(transport.health().status, 'ok');
});

test('garbage is dropped with reasons (not acknowledged), one bad rxpk costs only itself, and the socket keeps serving', async (t) => {
  const { port, recorded } = await startTransport(t);
  const peer = await rawPeer(t);
  const push = (json: string) => Buffer.concat([Buffer.from([2, 0xbe, 0xef, 0x00]), Buffer.from(EUI, 'hex'), Buffer.from(json)]);
  await peer.send(Buffer.from('hello'), port);
  await peer.send(Buffer.from([2, 1]), port);
  await peer.send(Buffer.from([9, 0, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8]), port);
  await peer.send(Buffer.from([2, 0, 0, 7]), port);
  await peer.send(push('{"rxpk":[{"tmst":'), port);
  await peer.send(Buffer.from([2, 0, 0, 0x01]), port); // a PUSH_ACK sent to the server
  // The first reply must be the ack of this valid datagram: none of the above was acknowledged.
  const rxpk = { tmst: 7, chan: 0, rfch: 0, freq: 868.1, stat: 1, modu: 'LORA', datr: 'SF7BW125', codr: '4/5', rssi: -40, lsnr: 9, size: 3, data: 'AQID' };
  await peer.send(push(JSON.stringify({ rxpk: [rxpk, { ...rxpk, size: 9 }, { ...rxpk, tmst: 8 }] })), port);
  assert.deepEqual(await peer.next(), Buffer.from([2, 0xbe, 0xef, 0x01]));

  await waitFor(() => recorded.rxpk.length === 2, 'the two good rxpk');
  assert.deepEqual(
    recorded.rxpk.map((entry) => entry.rxpk.tmst),
    [7, 8],
  );
  assert.deepEqual(
    recorded.drops.map((drop) => drop.reason),
    ['unknown-version', 'too-short', 'unknown-version', 'unknown-identifier', 'bad-json', 'wrong-direction', 'size-mismatch'],
  );
  const from = `127.0.0.1:${peer.socket.address().port}`;
  assert.ok(recorded.drops.every((drop) => drop.from === from));
  assert.equal(recorded.drops.at(-1)?.gatewayEui, EUI);
  assert.match(recorded.drops.at(-1)?.message ?? '', /rxpk\[1\]/);
  assert.match(recorded.drops[0]?.message ?? '', /^protocol version 104 is not supported/);

  // Still serving, now for a well-behaved forwarder.
  const forwarder = await startForwarder(t, port, { gatewayEui: '0102030405060708' });
  assert.equal(await forwarder.pushRxpk([{ phyPayload: PHY_PAYLOAD }]), true);
});

test('an event handler that throws is logged and does not stop the socket', async (t) => {
  const { port, recorded, messages } = await startTransport(t, {}, () => {
    throw new Error('handler bug');
  });
  const forwarder = await startForwarder(t, port);
  assert.equal(await forwarder.pushRxpk([{ phyPayload: PHY_PAYLOAD }]), true);
  assert.equal(await forwarder.pushRxpk([{ phyPayload: PHY_PAYLOAD }]), true);
  await waitFor(() => recorded.rxpk.length === 2, 'both rxpk reached the handler');
  assert.equal(messages().filter((message) => message.includes('onRxpk handler threw')).length, 1, 'logged once, not per packet');
});

test('sendDownlink reaches the down socket (not the up socket) and resolves on TX_ACK; join-accept timing is checkable', async (t) => {
  const { transport, port, recorded } = await startTransport(t);
  const forwarder = await startForwarder(t, port);
  const received: { txpk: Txpk; receivedAtTmst: number }[] = [];
  forwarder.onDownlink((txpk, _receivedAtMono, receivedAtTmst) => {
    received.push({ txpk, receivedAtTmst });
    return 'NONE';
  });
  await waitFor(() => forwarder.counters().pullAcked === 1, 'the downlink route');
  await forwarder.pushRxpk([{ phyPayload: PHY_PAYLOAD }]);
  await waitFor(() => recorded.rxpk.length === 1, 'the uplink');
  const uplinkTmst = recorded.rxpk[0]?.rxpk.tmst ?? 0;

  // A join-accept goes out in RX1 of the join-request: uplink tmst + 5 s, modulo the 32-bit counter.
  const joinAccept: Txpk = { ...downlink, tmst: (uplinkTmst + 5_000_000) % 2 ** 32 };
  assert.deepEqual(await transport.sendDownlink(EUI.toUpperCase(), joinAccept), { ok: true });
  assert.deepEqual(
    received.map((entry) => entry.txpk),
    [joinAccept],
  );
  const counters = forwarder.counters();
  assert.equal(counters.downlinks, 1);
  assert.equal(counters.misroutedDownlinks, 0, 'nothing arrived on the up socket');
  assert.equal(counters.txAckSent, 1);
  const earlyByUs = ((joinAccept.tmst ?? 0) - (received[0]?.receivedAtTmst ?? 0) + 2 ** 32) % 2 ** 32;
  assert.ok(earlyByUs > 4_000_000 && earlyByUs <= 5_000_000, `the downlink reached the gateway ${earlyByUs} µs before its tmst`);
});

test('a TX_ACK error surfaces as ok: false with the gateway error code', async (t) => {
  const { transport, port } = await startTransport(t);
  const forwarder = await startForwarder(t, port);
  forwarder.onDownlink(() => 'TOO_LATE');
  await waitFor(() => forwarder.counters().pullAcked === 1, 'the downlink route');
  const result = await transport.sendDownlink(EUI, downlink);
  assert.equal(result.ok, false);
  assert.equal(!result.ok && result.txAckError, 'TOO_LATE');
  assert.match(!result.ok ? result.reason : '', /aa555a0000000000.*TOO_LATE/);
});

test('sendDownlink fails clearly for an unknown gateway, an invalid txpk, and a gateway that never answers', async (t) => {
  const { transport, port, recorded } = await startTransport(t, { txAckTimeoutMs: 200 });
  const unknown = await transport.sendDownlink('0000000000000001', downlink);
  assert.equal(unknown.ok, false);
  assert.match(!unknown.ok ? unknown.reason : '', /no downlink route to gateway 0000000000000001: no PULL_DATA/);

  const silent = await rawPeer(t);
  await silent.send(encodePullData(2, Buffer.from([0, 1]), EUI), port);
  assert.deepEqual(await silent.next(), Buffer.from([2, 0, 1, 4]));

  const invalid = await transport.sendDownlink(EUI, { ...downlink, size: 9 });
  assert.match(!invalid.ok ? invalid.reason : '', /size/);

  const pending = transport.sendDownlink(EUI, downlink);
  const pullResp = parseDatagram(await silent.next());
  assert.ok(pullResp.ok && pullResp.datagram.type === 'PULL_RESP', 'the PULL_RESP went to the PULL_DATA source');
  assert.deepEqual(pullResp.datagram.txpk, downlink);
  assert.equal(pullResp.datagram.version, 2);
  const result = await pending;
  assert.match(!result.ok ? result.reason : '', /no TX_ACK from gateway aa555a0000000000 within 200 ms/);

  // A TX_ACK that arrives too late matches nothing and is dropped, not mistaken for another downlink's.
  await silent.send(Buffer.concat([Buffer.from([2]), pullResp.datagram.token, Buffer.from([5]), Buffer.from(EUI, 'hex')]), port);
  await waitFor(() => recorded.drops.some((drop) => drop.reason === 'unmatched-tx-ack'), 'the late TX_ACK dropped');
});

test('protocol v1: acks in version 1, and a downlink resolves once sent (v1 has no TX_ACK)', async (t) => {
  const { transport, port } = await startTransport(t);
  const forwarder = await startForwarder(t, port, { version: 1 });
  await waitFor(() => forwarder.counters().pullAcked === 1, 'PULL_ACK in version 1');
  assert.equal(await forwarder.pushRxpk([{ phyPayload: PHY_PAYLOAD }]), true);
  assert.equal(transport.gateways()[0]?.protocolVersion, 1);
  assert.deepEqual(await transport.sendDownlink(EUI, downlink), { ok: true });
  await waitFor(() => forwarder.counters().downlinks === 1, 'the downlink');
  assert.equal(forwarder.counters().txAckSent, 0);
});

test('a silent gateway loses its downlink route and is reported lost after gatewayTimeoutMs', async (t) => {
  const { transport, port, recorded, messages } = await startTransport(t, { gatewayTimeoutMs: 200 });
  const forwarder = await startForwarder(t, port, { keepaliveMs: 60_000 });
  await waitFor(() => forwarder.counters().pullAcked === 1, 'the downlink route');
  await forwarder.stop();
  await waitFor(() => recorded.lost.length === 1, 'onGatewayLost', 5_000);
  assert.deepEqual(recorded.lost, [EUI]);
  assert.deepEqual(transport.gateways(), []);
  assert.match((await transport.sendDownlink(EUI, downlink)).ok ? '' : 'no route', /no route/);
  assert.ok(messages().some((message) => message.includes('AA555A0000000000 lost')));
});

test('start() on a port in use rejects, naming host:port and what to do', async (t) => {
  const holder = createSocket('udp4');
  await new Promise<void>((resolve) => holder.bind(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => holder.close(() => resolve())));
  const { port } = holder.address() as AddressInfo;
  const { log } = captureLog();
  const transport = createUdpTransport({ host: '127.0.0.1', port }, { onRxpk() {}, onStat() {}, onDrop() {} }, { log });
  assert.equal(transport.health().status, 'down');
  await assert.rejects(transport.start(), (error: Error) => {
    assert.match(error.message, new RegExp(`cannot bind Semtech UDP on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE.*another process is using that port`));
    return true;
  });
  assert.equal(transport.health().status, 'down');
  await transport.stop(); // idempotent, harmless after a failed start
});

test('stop() resolves downlinks still waiting for their TX_ACK', async (t) => {
  const { transport, port } = await startTransport(t, { txAckTimeoutMs: 10_000 });
  const silent = await rawPeer(t);
  await silent.send(encodePullData(2, Buffer.from([0, 1]), EUI), port);
  await silent.next();
  const pending = transport.sendDownlink(EUI, downlink);
  await silent.next();
  await transport.stop();
  assert.deepEqual(await pending, { ok: false, reason: 'Semtech UDP transport stopping' });
  assert.equal(transport.health().status, 'down');
});

test('PUSH_DATA encoded by the shared codec round-trips through the transport unchanged', async (t) => {
  const { port, recorded } = await startTransport(t);
  const peer = await rawPeer(t);
  const rxpk: Rxpk = {
    time: '2013-03-31T16:21:17.528002Z',
    tmms: null,
    tmst: 0xffff_fff0,
    frequencyHz: 923_300_000,
    chan: 7,
    rfch: 1,
    crcStatus: 1,
    modulation: 'LORA',
    datr: 'SF10BW500',
    codr: '4/5',
    rssi: -120,
    rssis: -125,
    lsnr: -17.5,
    size: PHY_PAYLOAD.length,
    data: PHY_PAYLOAD,
  };
  await peer.send(encodePushData(2, Buffer.from([9, 9]), EUI, { rxpk: [rxpk] }), port);
  await peer.next();
  await waitFor(() => recorded.rxpk.length === 1, 'the rxpk');
  assert.deepEqual(recorded.rxpk[0]?.rxpk, rxpk);
});

/** A raw peer bound to another loopback address, as a second machine on the network. */
async function rawPeerAt(t: TestContext, address: string): Promise<Socket> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, address, resolve));
  t.after(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  return socket;
}

const stat: GatewayStat = { time: '2026-12-06 08:00:00 GMT', rxnb: 1, rxok: 1, rxfw: 1, ackr: 100, dwnb: 0, txnb: 0 };

test('with lorawan.gateways set, other gateways and pinned gateways from other addresses are dropped unanswered; a spoofed PULL_DATA moves no route', async (t) => {
  const pinned = 'b827ebfffe000001';
  const { transport, port, recorded } = await startTransport(t, {
    allowedGateways: new Map([
      [EUI, []],
      [pinned, ['127.0.0.1']],
    ]),
  });
  const peer = await rawPeer(t);
  await peer.send(encodePullData(2, Buffer.from([0, 1]), pinned), port);
  assert.equal(parseDatagram(await peer.next()).ok, true, 'the pinned gateway from its address is answered');
  const routeBefore = transport.gateways().find((gateway) => gateway.gatewayEui === pinned)?.pullRoute;

  const spoofer = await rawPeerAt(t, '127.0.0.2');
  const replies: Buffer[] = [];
  spoofer.on('message', (message) => replies.push(message));
  const send = (bytes: Buffer) => new Promise<void>((resolve) => spoofer.send(bytes, port, '127.0.0.1', () => resolve()));
  await send(encodePullData(2, Buffer.from([0, 2]), pinned));
  await send(encodePushData(2, Buffer.from([0, 3]), 'ffffffffffff0001', { stat }));
  await send(encodePushData(2, Buffer.from([0, 4]), EUI, { stat })); // listed without addresses: taken from anywhere
  await waitFor(() => recorded.drops.length >= 2 && recorded.stats.length === 1, 'two drops and one stat');
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.deepEqual(recorded.drops.map((drop) => drop.reason).sort(), ['address-mismatch', 'unknown-gateway']);
  assert.equal(replies.length, 1, 'only the listed gateway got its PUSH_ACK');
  assert.deepEqual(transport.gateways().find((gateway) => gateway.gatewayEui === pinned)?.pullRoute, routeBefore, 'the downlink route did not move');
  assert.equal(transport.gatewayCount(), 2);
});

test('without an allow-list at most max_gateways are tracked; a flood of new EUIs is dropped and counted', async (t) => {
  const { transport, port, recorded } = await startTransport(t, { maxGateways: 3 });
  const peer = await rawPeer(t);
  for (let index = 0; index < 50; index++) {
    await peer.send(encodePushData(2, Buffer.from([0, index]), `ffff00000000${index.toString(16).padStart(4, '0')}`, { stat }), port);
  }
  await waitFor(() => recorded.stats.length + recorded.drops.length === 50, 'every datagram handled');
  assert.equal(recorded.stats.length, 3);
  assert.equal(recorded.drops.filter((drop) => drop.reason === 'gateway-limit').length, 47);
  assert.equal(transport.gatewayCount(), 3);
});

test('one source may send max_datagrams_per_second (bursts of twice that); the rest is dropped as rate-limited', async (t) => {
  const { port, recorded } = await startTransport(t, { maxDatagramsPerSecondPerSource: 50 });
  const peer = await rawPeer(t);
  for (let index = 0; index < 300; index++) await peer.send(encodePullData(2, Buffer.from([index >> 8, index & 0xff]), EUI), port);
  await waitFor(() => recorded.drops.length >= 150, 'the flood to be cut off', 5_000, 20);
  const limited = recorded.drops.filter((drop) => drop.reason === 'rate-limited').length;
  assert.ok(limited >= 150 && limited <= 300 - 100, `about 100 of 300 got through (${300 - limited})`);
});

test('a gateway status time longer than any real one is refused as bad-stat', async (t) => {
  const { port, recorded } = await startTransport(t);
  const peer = await rawPeer(t);
  await peer.send(encodePushData(2, Buffer.from([0, 9]), EUI, { stat: { ...stat, time: 'x'.repeat(5000) } }), port);
  await waitFor(() => recorded.drops.length === 1, 'the drop');
  assert.equal(recorded.drops[0]?.reason, 'bad-stat');
  assert.equal(recorded.stats.length, 0);
});
