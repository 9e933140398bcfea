// Frame-counter recovery for ABP devices the gateway has no counter for (a new install, a lost buffer file, a
// migration from another network server). Only the counter's low 16 bits are on air; the MIC covers all 32
// (LoRaWAN 1.0.2 §4.3.1.5, §4.4). Without state the server reads the upper bits as 0, so a device past 65,535
// fails every MIC. This module tries further values of the upper bits, bounded per search and searched at
// most once per device per interval: garbage sent to a known DevAddr costs one MIC check per frame (three for a
// device with f_cnt_up_hint, whose own upper bits are always tried), not a search.
import type { Logger } from '../../core/log.ts';
import type { Metrics } from '../../core/metrics.ts';
import type { LorawanDevice, Session } from './device-sessions.ts';

export interface FCntRecoveryOptions {
  /** MIC checks per search, one per value of the counter's upper 16 bits (65,536 counters each); 0 turns searching off. */
  readonly maxTries: number;
  /** A device is searched at most once per this many ms. */
  readonly intervalMs: number;
}

/** 64 tries reach counter 4,259,839 (a frame a minute for eight years) for a few hundred µs of CPU per search. */
export const DEFAULT_FCNT_RECOVERY: FCntRecoveryOptions = { maxTries: 64, intervalMs: 300_000 };

const EPOCH = 0x1_0000;
const MAX_EPOCH = 0xffff;

/** The session whose MIC verified and the full counter it verified with; `notes` complete a mic-mismatch message. */
export type SessionMatch =
  | { readonly ok: true; readonly device: LorawanDevice; readonly session: Session; readonly fcnt: number; readonly searchTries: number | null }
  | { readonly ok: false; readonly notes: readonly string[] };

type CounterSearch = { readonly found: true; readonly fcnt: number; readonly tries: number } | { readonly found: false; readonly why: string };

export interface FCntRecovery {
  /**
   * Searches the candidates' sessions that are ABP and have no counter state (OTAA sessions start at 0 with
   * each join; a stored counter is never searched past), in searchRange() order; the first counter whose MIC
   * verifies wins. `notes` say what was searched, or why not, and what to set.
   */
  search(candidates: readonly LorawanDevice[], fcnt16: number, verifies: (session: Session, fcnt: number) => boolean): SessionMatch;
  /** Why the first counter of a session without state is refused as a replay (at or below f_cnt_up_hint), else null. */
  belowHint(device: LorawanDevice, session: Session, fcnt: number, fcnt16: number, searched: boolean): string | null;
  /** Counts and logs a recovered counter, once it is accepted. */
  recovered(device: LorawanDevice, fcnt: number, tries: number): void;
  /** A device removed by a reload: its rate-limit entry goes (the map stays bounded by the configured devices). */
  forget(devEui: string): void;
}

/**
 * The upper-16-bit values a search tries, lowest first: from the hint's (a device goes on from its last known
 * counter; below it are replays) or else from 1 (a counter is more likely low than high), never 0 (the server's
 * own first try), at most `maxTries`, never past 0xFFFF. Null when nothing is left to try.
 */
export function searchRange(hint: number | undefined, maxTries: number): { readonly first: number; readonly last: number } | null {
  const first = Math.max(1, Math.floor((hint ?? 0) / EPOCH));
  const last = Math.min(MAX_EPOCH, first + maxTries - 1);
  return maxTries > 0 && first <= last ? { first, last } : null;
}

export function createFCntRecovery(
  options: FCntRecoveryOptions,
  deps: { readonly log: Logger; readonly metrics: Metrics; readonly nowMs: () => number },
): FCntRecovery {
  const { metrics } = deps;
  /** When each device was last searched; keyed by configured devices only, so bounded by the config. */
  const lastSearchMs = new Map<string, number>();
  const intervalS = Math.round(options.intervalMs / 1000);

  function searchDevice(device: LorawanDevice, fcnt16: number, verifies: (fcnt: number) => boolean): CounterSearch {
    const { devEui, fCntUpHint: hint } = device.profile;
    const noCounter = `device ${devEui} has no stored frame counter`;
    const range = searchRange(hint, options.maxTries);
    if (range === null) {
      return { found: false, why: `${noCounter} and the counter search is off (lorawan.f_cnt_recovery_max_tries ${options.maxTries}): raise it` };
    }
    // A hinted device's own epoch (and the next) is tried on every frame, outside the rate limit: two MIC checks,
    // so that frames forged for its DevAddr cannot keep using up its one search per interval.
    const pinned = hint === undefined ? range.first - 1 : Math.min(range.last, range.first + 1);
    for (let epoch = range.first; epoch <= pinned; epoch++) {
      metrics.lorawanFCntRecoveryMicChecks.inc();
      const fcnt = epoch * EPOCH + fcnt16;
      if (verifies(fcnt)) return { found: true, fcnt, tries: epoch - range.first + 1 };
    }
    const nowMs = deps.nowMs();
    const previous = lastSearchMs.get(devEui);
    if (previous !== undefined && nowMs - previous < options.intervalMs) {
      metrics.lorawanFCntRecoveries.inc({ result: 'skipped' });
      const waitS = Math.ceil((options.intervalMs - (nowMs - previous)) / 1000);
      return {
        found: false,
        why: `${noCounter}; it was searched for within lorawan.f_cnt_recovery_interval_s (${intervalS} s), so this frame was not: a frame in ${waitS} s will be`,
      };
    }
    lastSearchMs.set(devEui, nowMs);
    for (let epoch = pinned + 1; epoch <= range.last; epoch++) {
      metrics.lorawanFCntRecoveryMicChecks.inc();
      const fcnt = epoch * EPOCH + fcnt16;
      if (verifies(fcnt)) return { found: true, fcnt, tries: epoch - range.first + 1 };
    }
    metrics.lorawanFCntRecoveries.inc({ result: 'not-found' });
    const searched = `upper 16 bits ${range.first}..${range.last}, counters ${number(range.first * EPOCH)}..${number(range.last * EPOCH + EPOCH - 1)}`;
    const from = hint === undefined ? '' : ` from its f_cnt_up_hint ${number(hint)}`;
    return {
      found: false,
      why:
        `${noCounter}, and its counter may be above the range searched${from} (${searched}): ` +
        `set f_cnt_up_hint in its lorawan.devices entry to the last counter it is known to have used, or raise lorawan.f_cnt_recovery_max_tries`,
    };
  }

  return {
    forget: (devEui) => {
      lastSearchMs.delete(devEui);
    },
    search(candidates, fcnt16, verifies) {
      const notes: string[] = [];
      for (const device of candidates) {
        const session = device.session;
        if (session === null || session.fcntUpNext !== null || device.profile.activation.mode !== 'abp') continue;
        const search = searchDevice(device, fcnt16, (fcnt) => verifies(session, fcnt));
        if (search.found) return { ok: true, device, session, fcnt: search.fcnt, searchTries: search.tries };
        notes.push(search.why);
      }
      return { ok: false, notes };
    },
    belowHint(device, session, fcnt, fcnt16, searched) {
      const { devEui, fCntUpHint: hint, resetsFCnt } = device.profile;
      if (session.fcntUpNext !== null || hint === undefined || fcnt > hint) return null;
      // A resets_f_cnt device that rebooted is back in the first 2^16, below any hint: that is its design.
      if (resetsFCnt === true && fcnt === fcnt16) return null;
      if (searched) metrics.lorawanFCntRecoveries.inc({ result: 'below-hint' });
      return `device ${devEui} has no stored frame counter and sent ${number(fcnt)}, at or below its f_cnt_up_hint ${number(hint)}: a replayed old frame, or the hint is above the device's counter (lower or remove f_cnt_up_hint)`;
    },
    recovered(device, fcnt, tries) {
      const { devEui } = device.profile;
      metrics.lorawanFCntRecoveries.inc({ result: 'recovered' });
      lastSearchMs.delete(devEui);
      deps.log.warn(
        { devEui, fcnt, tries },
        `LoRaWAN device ${devEui}: no stored frame counter; recovered its counter ${number(fcnt)} (upper 16 bits ${Math.floor(fcnt / EPOCH)}) ` +
          `from the MIC after ${tries} ${tries === 1 ? 'try' : 'tries'}; frames below it are now refused as replays`,
      );
    },
  };
}

function number(value: number): string {
  return value.toLocaleString('en-US');
}
