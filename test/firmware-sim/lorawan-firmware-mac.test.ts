// The firmware's side of the MAC layer on air, with an air of the test's own (the LorawanAir interface: it records
// each transmission and plays the network by answering in the receive windows with real frames): unconfirmed
// uplinks go NbTrans times with the same FCnt and stop at a downlink; answers that do not fit in FOpts go first, on
// FPort 0 under the NwkSKey; uplinks carry the ADR bit. The gateway's own ADR and MAC round trips are in
// lorawan-adr.test.ts and lorawan-mac-round-trips.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type LorawanFleetRun, runDevice } from '../../firmware-sim/firmware/lorawan-firmware.ts';
import { createPacer } from '../../firmware-sim/schedulers/pacer.ts';
import { createMembers, type Member } from '../../firmware-sim/state/lorawan-fleet-state.ts';
import type { DownlinkWindows, LorawanAir, TransmitSettings } from '../../firmware-sim/transports/lorawan-air.ts';
import { cryptFrmPayload, encodeDataFrame } from '../../src/ingress/lorawan/frame-crypto.ts';
import { encodeDownlinkMacCommands, parseUplinkMacCommands } from '../../src/ingress/lorawan/mac-commands.ts';
import { type DataFrame, parsePhyPayload } from '../../src/ingress/lorawan/phy-payload.ts';
import { EU868 } from '../../src/ingress/lorawan/region.ts';

interface OnAir {
  readonly frame: DataFrame;
  readonly radio: TransmitSettings;
}

/**
 * An air that hears everything and answers the n-th transmission (0-based) with the downlink `answers` gives for
 * it, offered in the device's first receive window as a forwarder would.
 */
function scriptedAir(answers: (index: number, frame: DataFrame) => Buffer | null): LorawanAir & { readonly sent: OnAir[] } {
  const sent: OnAir[] = [];
  return {
    sent,
    gatewayEuis: ['aa555a0000000001'],
    start: async () => undefined,
    stop: async () => undefined,
    counters: () => ({ pushSent: sent.length, pushAcked: sent.length, downlinks: 0, lateDownlinks: 0, unmatchedDownlinks: 0 }),
    async transmit(_from, phy, radio, listen?: DownlinkWindows) {
      const parsed = parsePhyPayload(phy);
      assert.ok(parsed.ok && parsed.frame.kind === 'data');
      sent.push({ frame: parsed.frame, radio });
      const downlink = answers(sent.length - 1, parsed.frame);
      const window = listen?.windows[0];
      if (downlink !== null && listen !== undefined && window !== undefined)
        listen.offer(downlink, { powerDbm: 14, datr: window.datr, frequencyHz: window.frequencyHz });
      return {
        gateways: ['aa555a0000000001'],
        heardBy: [{ gatewayEui: 'aa555a0000000001', rssiDbm: -90, snrDb: 5 }],
        pushAcked: 1,
        stopListening: () => undefined,
      };
    },
  };
}

function oneDevice(): Member {
  const [member] = createMembers({ devices: 1, otaaShare: 0, seed: 81, region: EU868, gateways: 1, initialDataRate: 5, pathLossDb: 110 }, new Map());
  assert.ok(member !== undefined);
  return member;
}

function runOf(air: LorawanAir, messages: number): LorawanFleetRun {
  const signal = new AbortController().signal;
  return {
    settings: {
      confirmedShare: 0,
      missedAckShare: 0,
      maxRetransmissions: 0,
      ackTimeoutMs: 2_000,
      joinTimeoutMs: 2_000,
      maxJoinAttempts: 1,
      messagesPerDevice: messages,
    },
    region: EU868,
    air,
    tally: { startedAtMs: performance.now(), acksMissed: 0, joining: 0 },
    signal,
    deadlineMs: Number.POSITIVE_INFINITY,
    pacer: createPacer(0, signal),
  };
}

/** A downlink of the device's session with these MAC commands (in FOpts up to 15 bytes, else on FPort 0). */
function macDownlink(member: Member, fcntDown: number, macHex: string): Buffer {
  const session = member.device.session();
  assert.ok(session !== null);
  const bytes = Buffer.from(macHex, 'hex');
  const onPort0 = bytes.length > 15;
  return encodeDataFrame({
    mtype: 'UnconfirmedDataDown',
    devAddr: session.devAddr,
    fcnt32: fcntDown,
    ...(onPort0 ? { fport: 0, payload: bytes } : { fopts: bytes }),
    nwkSKey: session.nwkSKey,
    appSKey: session.appSKey,
  });
}

test('NbTrans 3: each unconfirmed uplink goes three times with the same FCnt, unless a downlink comes in its windows', async () => {
  const member = oneDevice();
  // The first transmission gets LinkADRReq DR5, TXPower 0, channels 0-7, NbTrans 3; the sixth (FCnt 2's second)
  // an empty downlink, which ends FCnt 2's repetitions.
  const air = scriptedAir((index) => {
    if (index === 0) return macDownlink(member, 0, '0350ff0003');
    if (index === 5) return macDownlink(member, 1, '');
    return null;
  });
  await runDevice(runOf(air, 3), member);
  assert.deepEqual(
    member.frames.map((frame) => [frame.kind, frame.fcnt]),
    [
      ['uplink', 0],
      ['uplink', 1],
      ['repetition', 1],
      ['repetition', 1],
      ['uplink', 2],
      ['repetition', 2],
    ],
  );
  // A repetition is the same frame (the LinkADRAns rode in FCnt 1's FOpts, in all three).
  assert.equal(new Set(air.sent.slice(1, 4).map(({ frame }) => frame.micInput.toString('hex'))).size, 1);
  assert.deepEqual(member.frames[1]?.macCommands, ['LinkADRAns']);
  assert.ok(
    air.sent.every(({ frame }) => frame.fctrl.adr),
    'every uplink sets the ADR bit',
  );
  assert.deepEqual(
    member.macActivity.adrChanges.map((change) => change.nbTrans),
    [3],
  );
});

test('answers longer than FOpts holds go first in a frame of their own, on FPort 0 under the NwkSKey; the reading follows', async () => {
  const member = oneDevice();
  // Eight NewChannelReq for the free channel slots 8..15 -> eight NewChannelAns, 16 bytes.
  const requests = Array.from(
    { length: 8 },
    (_, index) => ({ command: 'NewChannelReq', chIndex: 8 + index, frequencyHz: 867_100_000, minDr: 0, maxDr: 5 }) as const,
  );
  const air = scriptedAir((index) => (index === 0 ? macDownlink(member, 0, encodeDownlinkMacCommands(requests).toString('hex')) : null));
  await runDevice(runOf(air, 2), member);
  assert.deepEqual(
    member.frames.map((frame) => [frame.kind, frame.fcnt, frame.fport]),
    [
      ['uplink', 0, member.device.identity.fport],
      ['mac', 1, 0],
      ['uplink', 2, member.device.identity.fport],
    ],
  );
  const macFrame = air.sent[1]?.frame;
  assert.ok(macFrame !== undefined && macFrame.fport === 0 && macFrame.fopts.length === 0);
  const session = member.device.session();
  assert.ok(session !== null);
  const answers = parseUplinkMacCommands(cryptFrmPayload(session.nwkSKey, 'up', macFrame.devAddr, 1, macFrame.frmPayload));
  assert.equal(answers.stop, null);
  assert.deepEqual(
    answers.commands,
    Array.from({ length: 8 }, () => ({ command: 'NewChannelAns', dataRateRangeOk: true, channelFrequencyOk: true })),
  );
  assert.equal(air.sent[2]?.frame.fopts.length, 0, 'the reading carries nothing more');
  assert.deepEqual(member.macActivity.applied, { NewChannelReq: 8 });
  assert.deepEqual(member.macActivity.answered, { NewChannelAns: 8 });
});
