// The LoRaWAN 1.0.x network-server work done at the edge, for one deduplicated frame at a time:
//   data uplink:  DevAddr -> candidate sessions -> MIC with the reconstructed 32-bit FCnt -> counter check
//                 -> decrypt -> codec -> TTS-shaped record + the session's new counters, committed together
//                 -> for a confirmed uplink, the ACK downlink in RX1 (RX2 if RX1 fails), sent only after
//                 the commit, because the ACK is the device's "ok".
//   join-request: DevEUI -> MIC with the AppKey -> DevNonce not seen before -> new session committed ->
//                 join-accept in RX1, RX2 as fallback (join-handler.ts).
// Both downlinks go out through class-a-downlink.ts. An ABP device with no stored counter whose MIC fails has
// its counter searched for (counter-recovery.ts).
// Everything refused is counted by reason and logged at most once per device and reason per interval.
// Session state is only ever changed synchronously before the first await of a frame, so two frames of one
// device never interleave their counter checks.
import type { StateWrite } from '../../buffer/record-buffer.ts';
import { createOnceLogger } from '../../core/log.ts';
import type { NewRecord, RecordSource } from '../../record/record.ts';
import type { AcceptRefusal, IngressDeps } from '../ingress.ts';
import { classifyFrameCounter, fullFrameCounter } from '../lorawan/frame-counter.ts';
import { cryptFrmPayload, encodeDataFrame, verifyDataFrameMic } from '../lorawan/frame-crypto.ts';
import { carriedMacCommands, MAX_FOPTS_BYTES, placeMacCommands, takeMacCommandsThatFit } from '../lorawan/mac-command-rules.ts';
import { type DownlinkMacCommand, encodeDownlinkMacCommands } from '../lorawan/mac-commands.ts';
import { type DataFrame, parsePhyPayload } from '../lorawan/phy-payload.ts';
import type { Region } from '../lorawan/region.ts';
import { createRejections } from '../rejections.ts';
import { createClassASender, type DownlinkPath, defaultRxSettings, type RxSettings } from './class-a-downlink.ts';
import { createFCntRecovery, DEFAULT_FCNT_RECOVERY, type FCntRecoveryOptions, type SessionMatch } from './counter-recovery.ts';
import type { DeviceSessions, LorawanDevice, Session } from './device-sessions.ts';
import type { DeduplicatedFrame } from './frame-deduplicator.ts';
import { createJoinHandler, type JoinRejectReason } from './join-handler.ts';
import { type AdrChange, createMacLayer, initialMacState, type MacLayerOptions, type MacState, readMacState, type UplinkMac } from './mac-layer.ts';
import { decodePayload } from '../../codecs/payload-codec.ts';
import { byReceptionQuality, type Reception } from './reception.ts';
import { buildUplinkValue, gatewayEventTime } from './uplink-record.ts';

// The downlink types are part of the server's deps; transports (semtech-udp) import them from here.
export type { ClassADownlink, DownlinkPath } from './class-a-downlink.ts';

export interface LorawanServerOptions {
  readonly region: Region;
  /** 6 hex digits. */
  readonly netId: string;
  readonly stream: string;
  readonly rejectLogIntervalMs: number;
  /** The counter search for ABP devices with no stored counter; DEFAULT_FCNT_RECOVERY when absent. */
  readonly fCntRecovery?: FCntRecoveryOptions;
  /** ADR and DevStatusReq; DEFAULT_MAC when absent. */
  readonly mac?: MacOptions;
}

export type MacOptions = Pick<MacLayerOptions, 'adr' | 'devStatusIntervalMs' | 'announceChannels'> & {
  /** The receive windows devices should have; each absent one is the region's default. */
  readonly rx?: Partial<RxSettings>;
  /** DutyCycleReq MaxDutyCycle devices should have; 0 (none beyond the region's) when absent. */
  readonly maxDutyCycle?: number;
};

/** ADR on as ChirpStack's defaults (10 dB installation margin, every data rate), a DevStatusReq a day. */
export const DEFAULT_MAC: MacOptions = {
  adr: { enabled: true, installationMarginDb: 10, minDataRate: 0, maxDataRate: 15 },
  devStatusIntervalMs: 86_400_000,
  announceChannels: false,
};

export interface LorawanServerDeps extends IngressDeps {
  readonly sessions: DeviceSessions;
  /** null for a receive-only radio: no join-accepts, no ACKs. */
  readonly downlink: DownlinkPath | null;
  /** Application downlinks (commands) that ride in a device's receive windows; none when absent. */
  readonly applicationDownlinks?: ApplicationDownlinks;
  /** Monotonic ms for the counter search's rate limit; performance.now() when absent. */
  readonly nowMs?: () => number;
  /** Wall-clock ms for the MAC layer (DevStatusReq interval, DeviceTimeAns); Date.now when absent. */
  readonly wallNowMs?: () => number;
  /** Whether this box's clock is NTP-synchronized (DeviceTimeAns from it only then); false when absent. */
  readonly clockTrusted?: () => boolean;
}

/** A device's Class-A receive window after one of its uplinks, offered to the application downlinks. */
export interface ReceiveWindow {
  readonly devEui: string;
  /** The uplink's ACK bit: it acknowledges the last confirmed downlink. */
  readonly uplinkAck: boolean;
  /** Sends one downlink in this window (RX1, else RX2) with the FCntDown reserved for it; the uplink's ACK rides along when it was confirmed. Resolves after the gateway's TX_ACK. */
  send(
    payload: Buffer,
    fport: number,
    confirmed: boolean,
  ): Promise<{ readonly ok: true; readonly fcntDown: number } | { readonly ok: false; readonly reason: string }>;
}

export interface ApplicationDownlinks {
  /** Asked at an uplink before its commit: whether the window after it may be used (an FCntDown is then reserved and committed with the uplink). */
  wants(devEui: string): boolean;
  /** After the uplink's commit: resolves true if a downlink went (or is going) in the window, false if the window was left unused. */
  windowOpened(window: ReceiveWindow): Promise<boolean>;
}

export type LorawanRejectReason = 'malformed-frame' | 'not-uplink' | 'unknown-devaddr' | 'mic-mismatch' | 'replay' | 'retransmission' | JoinRejectReason;

export type DownlinkResult = { readonly ok: true; readonly fcntDown: number } | { readonly ok: false; readonly reason: string };

export interface LorawanServer {
  /** Never rejects. Resolves when the frame's record is committed (and its downlink, if any, scheduled). */
  handleFrame(frame: DeduplicatedFrame): Promise<void>;
  /**
   * A Class C downlink now: its FCntDown is committed first, then it goes on RX2 through a gateway that heard the
   * device's last uplink. Resolves after the gateway's TX_ACK.
   */
  sendClassC(devEui: string, payload: Buffer, fport: number, confirmed: boolean): Promise<DownlinkResult>;
  /** Devices a reload removed: what the server keeps per device goes with them. */
  forgetDevices(devEuis: readonly string[]): void;
  /** Where the devices' radios stand: data rates, TX power, recent ADR changes. */
  radioStatus(): LorawanRadioStatus;
}

/** The devices by the data rate of their last uplink and by the TX power index they confirmed, and the ADR changes they applied lately. */
export interface LorawanRadioStatus {
  readonly region: string;
  readonly devices: number;
  /** Devices with a session that sent an uplink, by data rate index. */
  readonly byDataRate: Readonly<Record<string, number>>;
  readonly byTxPowerIndex: Readonly<Record<string, number>>;
  readonly recentAdrChanges: readonly AdrChange[];
}

/** Where a source-less downlink (Class C) is counted. */
const CLASS_C_SOURCE: RecordSource = 'semtech-udp';

const FCNT32 = 2 ** 32;

export function createLorawanServer(options: LorawanServerOptions, deps: LorawanServerDeps): LorawanServer {
  const { region } = options;
  const { sessions, metrics } = deps;
  const log = deps.log.child({ component: 'ingress.lorawan' });
  const rejections = createRejections({ what: 'LoRaWAN frame', per: 'device and reason', intervalMs: options.rejectLogIntervalMs }, { ...deps, log });
  const resetLog = createOnceLogger(options.rejectLogIntervalMs, undefined, deps.logBudget === undefined ? {} : { budget: deps.logBudget });

  /** Logged per device: one broken device must not hide another's rejections of the same reason. */
  function reject(source: RecordSource, reason: LorawanRejectReason | AcceptRefusal, device: string, message: string): void {
    rejections.reject(reason, message, { source, logKey: `${device}|${reason}`, fields: { device } });
  }
  const classA = createClassASender({ region, downlink: deps.downlink, log, metrics, reject });
  /** The receptions of each device's last stored uplink: where a Class C downlink can go (bounded by the configured devices). */
  const lastHeard = new Map<string, readonly Reception[]>();
  const fcntRecovery = createFCntRecovery(options.fCntRecovery ?? DEFAULT_FCNT_RECOVERY, { log, metrics, nowMs: deps.nowMs ?? (() => performance.now()) });
  const mac = options.mac ?? DEFAULT_MAC;
  /** The receive windows OTAA devices get in their join-accept, and all devices are asked to take. */
  const wantedRx: RxSettings = { ...defaultRxSettings(region), ...mac.rx };
  const joins = createJoinHandler(
    { ...options, rx: { rx1DelayS: wantedRx.rx1DelayS, rx1DrOffset: wantedRx.rx1DrOffset, rx2DataRate: wantedRx.rx2DataRate } },
    { accept: deps.accept, sessions, downlink: deps.downlink, classA, log, metrics, reject },
  );
  const macLayer = createMacLayer(
    {
      region,
      adr: mac.adr,
      devStatusIntervalMs: mac.devStatusIntervalMs,
      announceChannels: mac.announceChannels,
      rx: wantedRx,
      maxDutyCycle: mac.maxDutyCycle ?? 0,
      rejectLogIntervalMs: options.rejectLogIntervalMs,
    },
    {
      log,
      metrics,
      nowMs: deps.wallNowMs ?? Date.now,
      clockTrusted: deps.clockTrusted ?? (() => false),
      ...(deps.logBudget === undefined ? {} : { logBudget: deps.logBudget }),
    },
  );

  function macStateOf(device: LorawanDevice, session: Session): MacState {
    // An OTAA session took the join-accept's RX1 delay, RX1DROffset and RX2 data rate; ABP starts where its entry says (the region's by default).
    if (session.mac != null) return session.mac;
    const joined = device.profile.activation.mode === 'otaa';
    const rx = joined
      ? { ...defaultRxSettings(region), rx1DelayS: wantedRx.rx1DelayS, rx1DrOffset: wantedRx.rx1DrOffset, rx2DataRate: wantedRx.rx2DataRate }
      : { ...defaultRxSettings(region), ...device.profile.rxWindows };
    session.mac = readMacState(session.savedMac, initialMacState(region, joined, rx));
    return session.mac;
  }

  const planHz = new Set(region.uplinkChannels.map((channel) => channel.frequencyHz));
  const offPlanLog = createOnceLogger(options.rejectLogIntervalMs, undefined, deps.logBudget === undefined ? {} : { budget: deps.logBudget });

  /**
   * US915/AU915: a frame on a channel outside lorawan.sub_band is still handled (a device may roam channels
   * before its join), but it says the device, or the packet forwarder's radios, are set up for another sub-band:
   * then joins and downlinks go wrong. Logged once per frequency and interval.
   */
  function noteOffPlan(receptions: readonly Reception[]): void {
    if (region.subBand === null) return;
    for (const { frequencyHz, gatewayEui } of receptions) {
      if (planHz.has(frequencyHz) || !offPlanLog.shouldLog(String(frequencyHz))) continue;
      log.warn(
        { frequencyHz, gatewayEui, subBand: region.subBand },
        `a frame on ${frequencyHz / 1e6} MHz, outside ${region.name} sub-band ${region.subBand} (lorawan.sub_band): the device or the packet forwarder's radios are set up for another sub-band; set both to the same one (README: LoRaWAN network server)`,
      );
    }
  }

  /** Whether a gateway that heard the uplink can send in its receive windows (a serial radio cannot). */
  function canAnswer(receptions: readonly Reception[]): boolean {
    return receptions.some((reception) => reception.timestampUs !== null && deps.downlink?.canReach(reception.gatewayEui) === true);
  }

  async function handleFrame(frame: DeduplicatedFrame): Promise<void> {
    const { source } = frame;
    try {
      const parsed = parsePhyPayload(frame.phyPayload);
      if (!parsed.ok)
        return reject(
          source,
          'malformed-frame',
          'unknown',
          `${parsed.message} (${frame.phyPayload.length} bytes from gateway ${frame.receptions[0]?.gatewayEui})`,
        );
      const receptions = [...frame.receptions].sort(byReceptionQuality);
      noteOffPlan(receptions);
      const phy = parsed.frame;
      if (phy.kind === 'join-request') return await joins.handleJoinRequest(phy, receptions, source);
      if (phy.kind === 'data' && phy.direction === 'up') return await handleUplink(phy, receptions, source);
      return reject(
        source,
        'not-uplink',
        'unknown',
        `a ${phy.kind === 'data' ? phy.mtype : 'JoinAccept'} frame on the uplink path (another network server's downlink heard by a gateway?)`,
      );
    } catch (error) {
      // A bug must not take the listener down with it: log it loud, count it, go on with the next frame.
      rejections.reject('internal-error', 'handling the frame failed unexpectedly (a bug); it was not stored', {
        source,
        level: 'error',
        fields: { err: error },
      });
    }
  }

  /**
   * Finds the device whose session's MIC verifies, and the full counter it verified with. The counter the
   * session expects comes first; then the two readings of a counter that went backwards (the same 2^16
   * epoch, or a device that restarted from 0), so a replay is reported as a replay and not as a bad MIC
   * (ChirpStack does the same). Those cost CMACs only for frames that fail the first check. Last, an ABP
   * session with no counter yet is searched (bounded, rate-limited); `notes` say what that found.
   */
  function matchSession(frame: DataFrame): SessionMatch {
    const candidates = sessions.byDevAddr(frame.devAddr);
    const verifies = (session: Session, fcnt: number): boolean => verifyDataFrameMic(session.nwkSKey, 'up', frame.devAddr, fcnt, frame.micInput, frame.mic);
    for (const device of candidates) {
      const session = device.session;
      if (session === null) continue;
      const fcnt = fullFrameCounter(session.fcntUpNext ?? 0, frame.fcnt16);
      if (verifies(session, fcnt)) return { ok: true, device, session, fcnt, searchTries: null };
    }
    for (const device of candidates) {
      const session = device.session;
      if (session === null || session.fcntUpNext === null) continue;
      const expected = fullFrameCounter(session.fcntUpNext, frame.fcnt16);
      const sameEpoch = (session.fcntUpNext - (session.fcntUpNext % 0x10000) + frame.fcnt16) % FCNT32;
      for (const fcnt of new Set([sameEpoch, frame.fcnt16])) {
        if (fcnt !== expected && verifies(session, fcnt)) return { ok: true, device, session, fcnt, searchTries: null };
      }
    }
    return fcntRecovery.search(candidates, frame.fcnt16, verifies);
  }

  async function handleUplink(frame: DataFrame, receptions: readonly Reception[], source: RecordSource): Promise<void> {
    const devAddr = frame.devAddr.toUpperCase();
    if (sessions.byDevAddr(frame.devAddr).length === 0) {
      return reject(source, 'unknown-devaddr', devAddr, `no device with DevAddr ${devAddr} (add it to lorawan.devices, or it belongs to another network)`);
    }
    const match = matchSession(frame);
    if (!match.ok) {
      const notes = match.notes.map((note) => `; ${note}`).join('');
      return reject(
        source,
        'mic-mismatch',
        devAddr,
        `MIC check failed for DevAddr ${devAddr} (FCnt ${frame.fcnt16}): wrong NwkSKey in the config, or a forged frame${notes}`,
      );
    }
    const { device, session, fcnt } = match;
    const devEui = device.profile.devEui;
    const admitted = admitCounter(frame, match, receptions, source);
    if (admitted === null) return;
    const { gap, restarted } = admitted;

    session.fcntUpNext = (fcnt + 1) % FCNT32;
    const lastUplink: NonNullable<Session['lastUplink']> = { fcnt, commit: 'pending' };
    session.lastUplink = lastUplink;
    if (gap > 0) metrics.lorawanFrameGaps.inc(gap);

    const key = frame.fport === 0 ? session.nwkSKey : session.appSKey;
    const plaintext = frame.fport === null ? Buffer.alloc(0) : cryptFrmPayload(key, 'up', frame.devAddr, fcnt, frame.frmPayload);
    // The MAC layer reads the device's commands and decides what the window after this uplink carries; its
    // state changes are committed with the uplink.
    const mac = macLayer.uplink({
      devEui,
      state: macStateOf(device, session),
      frame,
      fcnt,
      receptions,
      macBytes: carriedMacCommands(frame, plaintext).bytes,
      adrAllowed: device.profile.adr !== false,
    });
    const answerable = canAnswer(receptions);
    const appDownlinks = deps.applicationDownlinks;
    // An FCntDown for the window, committed with the uplink: a downlink never reuses a counter after a crash.
    const windowWanted = appDownlinks?.wants(devEui) ?? false;
    const macWanted = answerable && (mac.mustAnswer || mac.downlink.length > 0);
    const ackFcntDown = frame.confirmed || windowWanted || macWanted ? nextFcntDown(session) : null;
    const state: StateWrite[] = [sessions.stateWrite(device)];
    // FPort 0 and port-less frames carry MAC commands or nothing: no application record, but the counter moves.
    const records: NewRecord[] =
      frame.fport === null || frame.fport === 0
        ? []
        : [uplinkRecord(device, session, frame, fcnt, gap, restarted, plaintext, receptions, source, mac.recordFields)];
    const result = await deps.accept(records, state);
    if (!result.ok) {
      lastUplink.commit = 'failed';
      reject(source, result.reason, devEui, `uplink ${fcnt} of ${devEui} not stored: ${result.message}`);
      return;
    }
    lastUplink.commit = 'committed';
    lastHeard.set(devEui, receptions);
    if (records.length === 0) metrics.lorawanMacOnlyFrames.inc();
    if (mac.dataRate !== null) metrics.lorawanUplinkDataRates.inc({ dr: String(mac.dataRate) });
    const macCommands = macWanted ? mac.downlink : [];
    if (appDownlinks !== undefined && windowWanted && ackFcntDown !== null) {
      const fcntDown = ackFcntDown;
      const used = await appDownlinks.windowOpened({
        devEui,
        uplinkAck: frame.fctrl.ack,
        send: async (payload, fport, confirmed) => {
          // MAC commands ride in FOpts beside the payload, as many as fit; the rest wait for a later window.
          const riding = takeMacCommandsThatFit(macCommands, MAX_FOPTS_BYTES).now;
          const fopts = encodeDownlinkMacCommands(riding);
          const phyPayload = dataDown(session, fcntDown, { confirmed, ack: frame.confirmed, fport, payload, fopts });
          const sent = await classA.send('command', device, receptions, phyPayload, macStateOf(device, session).rx, source);
          if (sent && riding.length > 0) await commitSent(device, mac, riding);
          return sent ? { ok: true, fcntDown } : { ok: false, reason: 'no gateway that heard the uplink could send in RX1 or RX2' };
        },
      });
      if (used) return;
    }
    if (ackFcntDown !== null && (frame.confirmed || macWanted)) await sendAckOrMac(device, session, receptions, ackFcntDown, frame.confirmed, mac, source);
  }

  /**
   * The counter rules for a frame whose MIC verified: null when it is refused (a replay) or was a retransmission
   * (handled here); else the frames skipped before it and whether a resets_f_cnt device started over.
   */
  function admitCounter(
    frame: DataFrame,
    match: Extract<SessionMatch, { ok: true }>,
    receptions: readonly Reception[],
    source: RecordSource,
  ): { readonly gap: number; readonly restarted: boolean } | null {
    const { device, session, fcnt } = match;
    const devEui = device.profile.devEui;
    const belowHint = fcntRecovery.belowHint(device, session, fcnt, frame.fcnt16, match.searchTries !== null);
    if (belowHint !== null) {
      reject(source, 'replay', devEui, belowHint);
      return null;
    }
    const verdict = classifyFrameCounter(session.fcntUpNext, fcnt);
    // A resets_f_cnt device that rebooted: its counter is back in the first 2^16 and the MIC verified with it.
    const restarted = verdict.verdict === 'replay' && device.profile.resetsFCnt === true && fcnt === frame.fcnt16;
    if (verdict.verdict === 'replay' && !restarted) {
      reject(
        source,
        'replay',
        devEui,
        `device ${devEui} sent frame counter ${fcnt}, expected ${session.fcntUpNext} or a little more: a replayed frame, or the device reset its counter (an ABP device must keep counters across reboots; re-join OTAA devices)`,
      );
      return null;
    }
    if (verdict.verdict === 'retransmission') {
      const previous = session.lastUplink;
      if (previous?.fcnt !== fcnt || previous.commit !== 'failed') {
        rejections.reject('retransmission', `frame ${fcnt} of ${devEui} again (already stored)`, { source, level: 'none' });
        // Stored (or being stored, and then ACKed by that frame): nothing is stored twice. A device that
        // did not hear our ACK hears it again.
        // Its FCntDown is committed first, as every downlink's is: after a crash it is never used again.
        if (frame.confirmed && previous?.commit === 'committed') void ackRetransmission(device, session, receptions, source);
        return null;
      }
      // Heard before but never stored (its commit failed): store it now.
      return { gap: 0, restarted: false };
    }
    if (restarted) {
      metrics.lorawanFCntResets.inc();
      if (resetLog.shouldLog(devEui)) {
        log.info(
          { devEui, fcnt, expected: session.fcntUpNext },
          `LoRaWAN device ${devEui} restarted its frame counter at ${fcnt} (resets_f_cnt): counting anew`,
        );
      }
      return { gap: 0, restarted: true };
    }
    if (match.searchTries !== null) fcntRecovery.recovered(device, fcnt, match.searchTries);
    return { gap: verdict.verdict === 'new' ? verdict.gap : 0, restarted: false };
  }

  async function ackRetransmission(device: LorawanDevice, session: Session, receptions: readonly Reception[], source: RecordSource): Promise<void> {
    const fcntDown = nextFcntDown(session);
    const committed = await deps.accept([], [sessions.stateWrite(device)]);
    if (!committed.ok) {
      reject(
        source,
        committed.reason,
        device.profile.devEui,
        `ACK of a retransmitted frame of ${device.profile.devEui} not sent: its FCntDown was not committed (${committed.message})`,
      );
      return;
    }
    await sendAckOrMac(device, session, receptions, fcntDown, true, null, source);
  }

  function nextFcntDown(session: Session): number {
    const fcntDown = session.fcntDown;
    session.fcntDown = (fcntDown + 1) % FCNT32;
    return fcntDown;
  }

  function uplinkRecord(
    device: LorawanDevice,
    session: Session,
    frame: DataFrame,
    fcnt: number,
    gap: number,
    reset: boolean,
    plaintext: Buffer,
    receptions: readonly Reception[],
    source: RecordSource,
    macFields: Readonly<Record<string, unknown>> = {},
  ): NewRecord {
    const { profile } = device;
    const receivedAtMs = Math.min(...receptions.map((reception) => reception.receivedAtMs));
    const value = buildUplinkValue({
      devEui: profile.devEui,
      deviceName: profile.name,
      devAddr: frame.devAddr,
      joinEui: profile.activation.mode === 'otaa' ? profile.activation.joinEui : null,
      sessionId: session.id,
      fport: frame.fport,
      fcnt,
      fcntGap: gap,
      fcntReset: reset,
      confirmed: frame.confirmed,
      adr: frame.fctrl.adr,
      fopts: frame.fopts,
      plaintext,
      codec: profile.codec.name,
      decoded: decodePayload(profile.codec, frame.fport, plaintext, new Date(receivedAtMs)),
      receptions,
      receivedAtMs,
      mac: macFields,
    });
    return {
      key: profile.devEui,
      stream: options.stream,
      source,
      receivedAtMs,
      eventTimeMs: gatewayEventTime(receptions, receivedAtMs),
      payload: Buffer.from(JSON.stringify(value)),
      // The frame's identity: a duplicate after a crash carries the same one (record-id differs).
      meta: { 'lorawan-frame': `${profile.devEui}:${session.id}:${fcnt}` },
    };
  }

  /**
   * MAC requests that went out become pending, and that is committed at once: the answer comes with the device's
   * next uplink, and a restart in between must not read it as unasked. A failed commit costs one request asked again.
   */
  async function commitSent(device: LorawanDevice, mac: UplinkMac, commands: readonly DownlinkMacCommand[]): Promise<void> {
    if (!mac.sent(commands)) return;
    const committed = await deps.accept([], [sessions.stateWrite(device)]);
    if (!committed.ok) log.debug({ devEui: device.profile.devEui, reason: committed.reason }, 'the pending MAC requests were not committed');
  }

  /** The window's downlink without an application payload: the ACK of a confirmed uplink, MAC commands, or both. */
  async function sendAckOrMac(
    device: LorawanDevice,
    session: Session,
    receptions: readonly Reception[],
    fcntDown: number,
    ack: boolean,
    mac: UplinkMac | null,
    source: RecordSource,
  ): Promise<void> {
    const commands: readonly DownlinkMacCommand[] = mac?.downlink ?? [];
    const bytes = encodeDownlinkMacCommands(commands);
    const place = placeMacCommands(bytes, false);
    const frame =
      place === 'port0' ? { confirmed: false, ack, fport: 0, payload: bytes } : { confirmed: false, ack, fport: null, payload: Buffer.alloc(0), fopts: bytes };
    const phyPayload = dataDown(session, fcntDown, frame);
    const sent = await classA.send(commands.length === 0 ? 'ack' : 'mac', device, receptions, phyPayload, macStateOf(device, session).rx, source);
    if (sent && mac !== null && commands.length > 0) await commitSent(device, mac, commands);
  }

  async function sendClassC(devEui: string, payload: Buffer, fport: number, confirmed: boolean): Promise<DownlinkResult> {
    const device = sessions.byDevEui(devEui);
    const session = device?.session ?? null;
    if (device === undefined || session === null) return { ok: false, reason: `${devEui} has no session yet (an OTAA device joins first)` };
    const heard = lastHeard.get(devEui);
    if (heard === undefined) return { ok: false, reason: `no gateway has heard ${devEui} since the gateway started, so none is known to reach it` };
    const fcntDown = nextFcntDown(session);
    const committed = await deps.accept([], [sessions.stateWrite(device)]);
    if (!committed.ok) return { ok: false, reason: `its FCntDown could not be committed first: ${committed.message}` };
    const phyPayload = dataDown(session, fcntDown, { confirmed, ack: false, fport, payload });
    const sent = await classA.sendNow('command', device, heard, phyPayload, macStateOf(device, session).rx, CLASS_C_SOURCE);
    return sent ? { ok: true, fcntDown } : { ok: false, reason: 'no gateway that heard the device could send on RX2' };
  }

  function forgetDevices(devEuis: readonly string[]): void {
    for (const devEui of devEuis) {
      lastHeard.delete(devEui);
      fcntRecovery.forget(devEui);
    }
  }

  function radioStatus(): LorawanRadioStatus {
    const byDataRate: Record<string, number> = {};
    const byTxPowerIndex: Record<string, number> = {};
    for (const device of sessions.all()) {
      const state = device.session?.mac;
      if (state == null || state.dataRate === null) continue;
      byDataRate[state.dataRate] = (byDataRate[state.dataRate] ?? 0) + 1;
      byTxPowerIndex[state.txPowerIndex] = (byTxPowerIndex[state.txPowerIndex] ?? 0) + 1;
    }
    return { region: region.name, devices: sessions.size, byDataRate, byTxPowerIndex, recentAdrChanges: macLayer.recentAdrChanges() };
  }

  return { handleFrame, sendClassC, forgetDevices, radioStatus };
}

/** A data downlink of `session` with counter `fcntDown`: an ACK (no FPort), or an application payload. */
function dataDown(
  session: Session,
  fcntDown: number,
  frame: { readonly confirmed: boolean; readonly ack: boolean; readonly fport: number | null; readonly payload: Buffer; readonly fopts?: Buffer },
): Buffer {
  return encodeDataFrame({
    mtype: frame.confirmed ? 'ConfirmedDataDown' : 'UnconfirmedDataDown',
    devAddr: session.devAddr,
    fcnt32: fcntDown,
    ack: frame.ack,
    fport: frame.fport,
    payload: frame.payload,
    ...(frame.fopts === undefined || frame.fopts.length === 0 ? {} : { fopts: frame.fopts }),
    nwkSKey: session.nwkSKey,
    appSKey: session.appSKey,
  });
}
