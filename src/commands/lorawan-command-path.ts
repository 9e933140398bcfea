// Commands over the gateway's own LoRaWAN network server, Class A: a device can only hear a downlink in the
// receive windows right after one of its uplinks. So at each uplink of a device with a command waiting, the
// server reserves an FCntDown (committed with the uplink) and offers the window here; the delivery takes it
// (ready), commits the hand-over, and the command goes in RX1 (RX2 as fallback) with the uplink's ACK riding
// along. The packet forwarder's TX_ACK is the `sent` receipt. An unconfirmed command ends there (nothing more
// can be known); a confirmed one is `acked` when the device's next uplink carries the ACK bit, and sent again
// in that uplink's window when it does not (up to the attempt limit). A window the delivery leaves unused for
// windowGraceMs goes back to the server, which then sends its plain ACK if the uplink asked for one.
// A command whose payload is an object goes through the device's formatter's encodeDownlink (TTN style) when
// it has one, which gives the bytes and may choose the FPort; without one, its JSON text is sent.
// Class C devices (lorawan.devices[].class: C) listen all the time: their commands go at once on RX2 through
// a gateway that heard them last, the FCntDown committed first; with no such gateway yet, at the next uplink.
import type { ApplicationDownlinks, DownlinkResult, ReceiveWindow } from '../ingress/lorawan-server/lorawan-server.ts';
import type { PayloadCodec } from '../codecs/payload-codec.ts';
import { type Command, deviceKey } from './command.ts';
import type { CommandPath, PathOutcome } from './command-path.ts';

export interface LorawanCommandPathOptions {
  /** FPort of a command that names none. */
  readonly defaultFport: number;
  /** How long an offered window waits to be taken; well inside RX1 (1 s after the uplink in most regions). */
  readonly windowGraceMs: number;
  /** Largest payload sent: what every data rate of the region carries (EU868 DR0-2: 51 bytes). */
  readonly maxPayloadBytes: number;
}

export interface LorawanCommandPathDeps {
  readonly network: {
    knows(devEui: string): boolean;
    deviceClass(devEui: string): 'A' | 'C';
    payloadCodec(devEui: string): PayloadCodec | undefined;
    sendClassC(devEui: string, payload: Buffer, fport: number, confirmed: boolean): Promise<DownlinkResult>;
    attachApplicationDownlinks(downlinks: ApplicationDownlinks): void;
  };
  /** Whether a command waits for the device (the queue's head). */
  readonly hasWaiting: (devEui: string) => boolean;
}

export const DEFAULT_COMMAND_FPORT = 1;
/** setTimeout's longest delay (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface OfferedWindow {
  readonly window: ReceiveWindow;
  readonly take: (used: boolean) => void;
}

export function createLorawanCommandPath(options: LorawanCommandPathOptions, deps: LorawanCommandPathDeps): CommandPath {
  /** The open window of each device (at most one: the last uplink's). */
  const windows = new Map<string, OfferedWindow>();
  /** Confirmed commands on air, waiting for the device's next uplink to say whether it heard them. */
  const awaitingAck = new Map<string, (acked: boolean) => void>();
  const listeners: ((deviceId: string) => void)[] = [];

  deps.network.attachApplicationDownlinks({
    wants: (devEui) => awaitingAck.has(devEui) || deps.hasWaiting(devEui),
    windowOpened(window) {
      const { devEui } = window;
      const answer = awaitingAck.get(devEui);
      awaitingAck.delete(devEui);
      answer?.(window.uplinkAck);
      return new Promise<boolean>((resolve) => {
        const offered: OfferedWindow = {
          window,
          take(used) {
            clearTimeout(timer);
            if (windows.get(devEui) === offered) windows.delete(devEui);
            resolve(used);
          },
        };
        const timer = setTimeout(() => offered.take(false), options.windowGraceMs);
        windows.set(devEui, offered);
        for (const listener of listeners) listener(devEui);
      });
    },
  });

  return {
    name: 'lorawan',
    sentOnHandOver: false,
    serves: (deviceId) => deps.network.knows(deviceKey(deviceId)),
    ready: (command) => windows.has(deviceKey(command.deviceId)) || deps.network.deviceClass(deviceKey(command.deviceId)) === 'C',

    async send(command, progress): Promise<PathOutcome> {
      const devEui = deviceKey(command.deviceId);
      const offered = windows.get(devEui);
      const classC = deps.network.deviceClass(devEui) === 'C';
      if (offered === undefined && !classC) return { kind: 'away' };
      const frame = downlinkPayload(command, deps.network.payloadCodec(devEui));
      if (!frame.ok || frame.payload.length > options.maxPayloadBytes) {
        offered?.take(false);
        return {
          kind: 'failed',
          reason: frame.ok
            ? `a payload of ${frame.payload.length} bytes is more than the ${options.maxPayloadBytes} every data rate of the region carries`
            : frame.reason,
        };
      }
      const fport = frame.fport ?? options.defaultFport;
      let sent: DownlinkResult;
      if (offered !== undefined) {
        // Taken at once: the server must not send its own ACK in this window.
        offered.take(true);
        sent = await offered.window.send(frame.payload, fport, command.confirmed);
        if (!sent.ok) return { kind: 'unanswered', detail: sent.reason };
      } else {
        sent = await deps.network.sendClassC(devEui, frame.payload, fport, command.confirmed);
        // No gateway known to reach it yet, or it refused: again at the device's next uplink.
        if (!sent.ok) return { kind: 'away' };
      }
      const detail = `FCntDown ${sent.fcntDown}, FPort ${fport}`;
      // Unconfirmed: on air is the last that can be known, so `sent` is the final receipt.
      if (!command.confirmed) return { kind: 'done', status: 'sent', detail };
      progress('sent', { reason: detail });
      // Until the device's next uplink says, but not past the command's time: a device that never uplinks again
      // must not hold its later commands (and this promise) forever.
      const acked = await new Promise<boolean | null>((resolve) => {
        const timer = setTimeout(
          () => {
            if (awaitingAck.get(devEui) === answer) awaitingAck.delete(devEui);
            resolve(null);
          },
          Math.min(MAX_TIMER_MS, Math.max(0, command.expiresAtMs - Date.now())),
        );
        timer.unref();
        const answer = (ack: boolean): void => {
          clearTimeout(timer);
          resolve(ack);
        };
        awaitingAck.set(devEui, answer);
      });
      if (acked === null) return { kind: 'unanswered', detail: 'no uplink from the device before the command expired' };
      return acked ? { kind: 'done', status: 'acked' } : { kind: 'unanswered', detail: 'the next uplink did not acknowledge the confirmed downlink' };
    },

    onReady(listener) {
      listeners.push(listener);
    },
  };
}

type DownlinkPayload = { readonly ok: true; readonly payload: Buffer; readonly fport: number | null } | { readonly ok: false; readonly reason: string };

/** The bytes and FPort to send: an object payload through the codec's encodeDownlink when it has one. */
function downlinkPayload(command: Command, codec: PayloadCodec | undefined): DownlinkPayload {
  if (!command.structured || codec?.encodeDownlink === undefined) return { ok: true, payload: command.payload, fport: command.fport };
  const encoded = codec.encodeDownlink(JSON.parse(command.payload.toString('utf8')) as unknown, command.fport);
  if (!encoded.ok) return { ok: false, reason: `the formatter ${codec.name} could not encode it: ${encoded.error}` };
  return { ok: true, payload: encoded.bytes, fport: encoded.fport ?? command.fport };
}
