// OTAA joins for the LoRaWAN server (LoRaWAN 1.0.x §6.2): a join-request is checked (DevEUI of an OTAA device,
// its JoinEUI, the MIC with the AppKey, a gateway that can answer, a DevNonce not seen before), then a new
// session is derived and committed, and only then is the join-accept sent in RX1 (tmst + the region's
// JOIN_ACCEPT_DELAY1), RX2 (JOIN_ACCEPT_DELAY2, one second later) as fallback. The join-accept carries the
// region's CFList: the extra channels (type 0) or the sub-band's channel mask (type 1, US915/AU915).
// Refusals go through the server's per-device rejections.
import type { Logger } from '../../core/log.ts';
import type { Metrics } from '../../core/metrics.ts';
import type { RecordSource } from '../../record/record.ts';
import type { Accept } from '../ingress.ts';
import { deriveSessionKeys, encodeJoinAccept, verifyJoinRequestMic } from '../lorawan/frame-crypto.ts';
import type { JoinRequestFrame } from '../lorawan/phy-payload.ts';
import type { Region } from '../lorawan/region.ts';
import { type ClassASender, type DownlinkPath, type DownlinkRejectReason, defaultRxSettings, type RxSettings } from './class-a-downlink.ts';
import { admitDevNonce, type DeviceSessions } from './device-sessions.ts';
import type { Reception } from './reception.ts';

/** The reasons a join-request is refused for. */
export type JoinRejectReason = 'unknown-deveui' | 'join-eui-mismatch' | 'join-mic-mismatch' | 'devnonce-reused' | DownlinkRejectReason;

/** MACPayload of a join-accept with a CFList: JoinNonce 3, NetID 3, DevAddr 4, DLSettings 1, RxDelay 1, CFList 16. */
const JOIN_ACCEPT_WITH_CF_LIST_MAC_BYTES = 28;

export interface JoinHandlerOptions {
  readonly region: Region;
  /** 6 hex digits. */
  readonly netId: string;
  /** What the join-accept tells the device (RxDelay, DLSettings); the region's defaults when absent. */
  readonly rx?: Pick<RxSettings, 'rx1DelayS' | 'rx1DrOffset' | 'rx2DataRate'>;
}

export interface JoinHandlerDeps {
  readonly accept: Accept;
  readonly sessions: DeviceSessions;
  /** null for a receive-only radio: every join-request is refused (no-downlink-path). */
  readonly downlink: DownlinkPath | null;
  readonly classA: ClassASender;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly reject: (source: RecordSource, reason: JoinRejectReason, device: string, message: string) => void;
}

export interface JoinHandler {
  /** `receptions` best first. Resolves when the join-accept is sent, or the request refused. */
  handleJoinRequest(frame: JoinRequestFrame, receptions: readonly Reception[], source: RecordSource): Promise<void>;
}

/**
 * The CFList of the region's plan, when RX2 (the fallback every join-accept must fit) can carry the 33-byte
 * join-accept: AS923 under the dwell time answers at DR2 (M = 19), and its devices then keep the default channels.
 */
export function joinAcceptCfList(region: Region): Buffer | undefined {
  const cfList = region.cfList();
  const rx2 = region.maxPayloadSize(region.rx2DataRate, 'down');
  return cfList !== null && rx2 !== null && JOIN_ACCEPT_WITH_CF_LIST_MAC_BYTES <= rx2.m ? cfList : undefined;
}

export function createJoinHandler(options: JoinHandlerOptions, deps: JoinHandlerDeps): JoinHandler {
  const { region } = options;
  const { sessions, metrics, log } = deps;
  const cfList = joinAcceptCfList(region);

  /** Counted as a rejected join, and as a rejection of the frame. */
  function refuse(source: RecordSource, reason: JoinRejectReason, devEui: string, message: string): void {
    metrics.lorawanJoins.inc({ result: 'rejected' });
    deps.reject(source, reason, devEui, message);
  }

  async function handleJoinRequest(frame: JoinRequestFrame, receptions: readonly Reception[], source: RecordSource): Promise<void> {
    const devEui = frame.devEui;
    const device = sessions.byDevEui(devEui);
    if (device === undefined || device.profile.activation.mode !== 'otaa') {
      return refuse(source, 'unknown-deveui', devEui, `join-request from DevEUI ${devEui}, which is not an OTAA device in lorawan.devices`);
    }
    const { activation } = device.profile;
    if (activation.joinEui !== frame.joinEui) {
      return refuse(source, 'join-eui-mismatch', devEui, `join-request from ${devEui} names JoinEUI ${frame.joinEui}, the config says ${activation.joinEui}`);
    }
    if (!verifyJoinRequestMic(activation.appKey, frame.micInput, frame.mic)) {
      return refuse(source, 'join-mic-mismatch', devEui, `join-request MIC check failed for ${devEui}: wrong app_key in the config, or a forged request`);
    }
    // Checked before a session is made: a session the device can never hear about would only shadow the old one.
    if (!receptions.some((reception) => reception.timestampUs !== null && deps.downlink?.canReach(reception.gatewayEui))) {
      return refuse(
        source,
        'no-downlink-path',
        devEui,
        `join-request from ${devEui} heard only on receive-only paths (a serial radio, or a packet forwarder that has not sent PULL_DATA yet): OTAA needs a gateway that can transmit the join-accept`,
      );
    }
    const devNonceRefusal = admitDevNonce(device, frame.devNonce);
    if (devNonceRefusal !== null) return refuse(source, 'devnonce-reused', devEui, `join-request from ${devEui}: ${devNonceRefusal}`);

    const joinNonce = (device.lastJoinNonce + 1) % 0x1000000;
    device.lastJoinNonce = joinNonce;
    const devAddr = sessions.allocateDevAddr(options.netId);
    const keys = deriveSessionKeys(activation.appKey, joinNonce, options.netId, frame.devNonce);
    sessions.activate(device, {
      devAddr,
      nwkSKey: keys.nwkSKey,
      appSKey: keys.appSKey,
      id: `otaa-${joinNonce}-${frame.devNonce}`,
      fcntUpNext: 0,
      fcntDown: 0,
      lastUplink: null,
    });
    // The session must be durable before the device can use it: otherwise a restart would forget keys the device holds.
    const committed = await deps.accept([], [sessions.stateWrite(device)]);
    if (!committed.ok) {
      metrics.lorawanJoins.inc({ result: 'not-stored' });
      log.error({ devEui, reason: committed.reason }, `OTAA join of ${devEui} not answered: its session could not be stored (${committed.message})`);
      return;
    }
    const joinAccept = encodeJoinAccept(activation.appKey, {
      joinNonce,
      netId: options.netId,
      devAddr,
      rx1DrOffset: options.rx?.rx1DrOffset ?? 0,
      rx2DataRate: options.rx?.rx2DataRate ?? region.rx2DataRate,
      rxDelay: options.rx?.rx1DelayS ?? region.rx1DelaySeconds,
      cfList,
    });
    // The join-accept itself goes in the join windows: JOIN_ACCEPT_DELAY1/2 with the region's RX1 and RX2 defaults.
    const joinWindows = { ...defaultRxSettings(region), rx1DelayS: region.joinAcceptDelay1Seconds };
    const sent = await deps.classA.send('join-accept', device, receptions, joinAccept, joinWindows, source);
    metrics.lorawanJoins.inc({ result: sent ? 'accepted' : 'accept-not-sent' });
    log.info(
      { devEui, devAddr: devAddr.toUpperCase(), sent },
      sent ? `OTAA device ${devEui} joined as ${devAddr.toUpperCase()}` : `OTAA device ${devEui}: join-accept could not be sent`,
    );
  }

  return { handleJoinRequest };
}
