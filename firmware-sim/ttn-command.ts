// `firmware-sim ttn`: runs the TTS stand-in (tts-stand-in.ts) on a local port, prints the URL, username and
// API key to put into the gateway's ttn section, waits for the gateway to subscribe, then publishes
// simulated TTS v3 uplinks (tts-traffic.ts) with the faults asked for, and prints what was published and
// how much of it nobody could hear (QoS 0: lost). Usage errors are thrown as RangeError (cli.ts: exit 2).
import { parseArgs } from 'node:util';
import { startTtsStandIn } from './tts-stand-in.ts';
import { createTtsFleet, publishTtsTraffic, type TtsLedger } from './tts-traffic.ts';

export const TTN_SUMMARY = 'a local stand-in for The Things Stack MQTT integration publishing TTS v3 uplinks (QoS 0)';

export const TTN_HELP = `firmware-sim ttn: poses as The Things Stack v3 (The Things Network) for iotgw's ttn ingress. It
starts a local MQTT server that accepts one application ({application}@{tenant}, password = an API key)
and lets it subscribe only under v3/{application}@{tenant}/, prints the values for iotgw's ttn section,
waits for the gateway to subscribe, then publishes TTS v3 uplink messages for N devices at QoS 0, as TTS
does: Cayenne LPP payloads on f_ports 1-3, decoded_payload for a share of the devices (the others get it
from iotgw's ttn.codec), rx_metadata from 1-3 gateways, settings, consumed_airtime.

Faults: --gaps skips frame counters (uplinks TTS never delivered: iotgw marks iotgw.f_cnt_gap),
--duplicates publishes messages twice (stored once), --malformed publishes broken JSON and messages
without end_device_ids or dev_eui (refused and counted in iotgw_ingress_rejected_total{source="ttn"}),
--drop-every cuts the gateway's connection periodically (it reconnects with backoff; what is published
meanwhile is lost, as with the real TTS, and shows as a gap).

Usage:
  firmware-sim ttn [flags]

Flags:
  --host HOST            address to listen on. Default: 127.0.0.1
  --port PORT            MQTT port. Default: 1884 (0 = a free port)
  --application ID       TTS application id. Default: iotgw-sim
  --tenant ID            tenant id (ttn on The Things Network). Default: ttn
  --api-key KEY          the password the gateway must send. Default: a random NNSXS.... key
  --devices N            simulated end devices. Default: 10
  --messages N           uplinks per device. Default: 10
  --rate R               messages per second across the fleet; 0 = as fast as possible. Default: 5
  --decoded-share S      share of devices whose messages carry decoded_payload, 0..1. Default: 0.5
  --gaps N               frame-counter skips (1-3 frames each). Default: 0
  --duplicates N         messages published twice. Default: 0
  --malformed N          malformed messages. Default: 0
  --drop-every S         close the gateway's connection every S seconds (decimals allowed). Default: never
  --wait S               seconds to wait for the gateway to subscribe. Default: 300
  --seed N               integer seed of devices and readings. Default: 1
  --json                 print the summary as one JSON object on stdout
  -h, --help             this help

Exit codes: 0 published, 1 the gateway never subscribed, 2 bad usage.

Example (two terminals):
  firmware-sim ttn --api-key NNSXS.TEST.KEY --devices 20 --messages 30 --gaps 3 --duplicates 2 --malformed 3
  printf '%s' NNSXS.TEST.KEY > /tmp/ttn-api-key
  IOTGW__TTN__ENABLED=true IOTGW__TTN__URL=mqtt://127.0.0.1:1884 IOTGW__TTN__USERNAME=iotgw-sim@ttn \\
    IOTGW__TTN__PASSWORD_FILE=/tmp/ttn-api-key iotgw run
`;

export async function runTtnCommand(argv: readonly string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      options: {
        host: { type: 'string' },
        port: { type: 'string' },
        application: { type: 'string' },
        tenant: { type: 'string' },
        'api-key': { type: 'string' },
        devices: { type: 'string' },
        messages: { type: 'string' },
        rate: { type: 'string' },
        'decoded-share': { type: 'string' },
        gaps: { type: 'string' },
        duplicates: { type: 'string' },
        malformed: { type: 'string' },
        'drop-every': { type: 'string' },
        wait: { type: 'string' },
        seed: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    throw new RangeError(`${(error as Error).message.split('\n')[0]} (see firmware-sim ttn --help)`);
  }
  if (values.help === true) {
    process.stdout.write(TTN_HELP);
    return 0;
  }
  const text = (name: string, fallback: string): string => (typeof values[name] === 'string' ? (values[name] as string) : fallback);
  const number = (name: string, fallback: string, min: number, max = Number.MAX_SAFE_INTEGER, integer = true): number => {
    const raw = text(name, fallback);
    const value = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
      throw new RangeError(
        `--${name} must be ${integer ? 'an integer' : 'a number'} from ${min}${max === Number.MAX_SAFE_INTEGER ? '' : ` to ${max}`}, got '${raw}'`,
      );
    }
    return value;
  };
  const application = text('application', 'iotgw-sim');
  if (!/^[a-z0-9](?:-?[a-z0-9])*$/.test(application))
    throw new RangeError(`--application must be a TTS id (lower-case letters, digits, -), got '${application}'`);
  const tenant = text('tenant', 'ttn');
  const port = number('port', '1884', 0, 65_535);
  const devices = number('devices', '10', 1);
  const messages = number('messages', '10', 1);
  const rate = number('rate', '5', 0, Number.MAX_SAFE_INTEGER, false);
  const decodedShare = number('decoded-share', '0.5', 0, 1, false);
  const dropEveryS = values['drop-every'] === undefined ? null : number('drop-every', '0', 0.1, Number.MAX_SAFE_INTEGER, false);
  const waitS = number('wait', '300', 1, Number.MAX_SAFE_INTEGER, false);
  const seed = number('seed', '1', Number.MIN_SAFE_INTEGER);

  const standIn = await startTtsStandIn({
    host: text('host', '127.0.0.1'),
    port,
    applicationId: application,
    tenantId: tenant,
    ...(typeof values['api-key'] === 'string' ? { apiKey: values['api-key'] } : {}),
  });
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let dropTimer: NodeJS.Timeout | null = null;
  let drops = 0;
  try {
    console.error(
      [
        `firmware-sim ttn: TTS stand-in on ${standIn.url}`,
        `  username  ${standIn.username}`,
        `  API key   ${standIn.apiKey}`,
        'Gateway config (put the API key into the password file):',
        '  ttn:',
        '    enabled: true',
        `    url: ${standIn.url}`,
        `    username: ${standIn.username}`,
        '    password_file: /etc/iotgw/ttn-api-key',
        `Waiting up to ${waitS} s for the gateway to subscribe...`,
      ].join('\n'),
    );
    try {
      await standIn.waitForSubscriber(waitS * 1_000);
    } catch (error) {
      console.error(`firmware-sim ttn: ${(error as Error).message}`);
      return 1;
    }
    if (dropEveryS !== null) {
      dropTimer = setInterval(() => {
        drops += standIn.dropConnections();
      }, dropEveryS * 1_000);
    }
    const fleet = createTtsFleet(application, { devices, seed, decodedShare });
    const ledger = await publishTtsTraffic(standIn, fleet, {
      messagesPerDevice: messages,
      gaps: number('gaps', '0', 0),
      duplicates: number('duplicates', '0', 0),
      malformed: number('malformed', '0', 0),
      ratePerSecond: rate,
      signal: controller.signal,
    });
    const summary = summarize(ledger, drops);
    if (values.json === true) console.log(JSON.stringify({ transport: 'ttn', url: standIn.url, username: standIn.username, ...summary }));
    else console.log(formatSummary(standIn.url, standIn.username, summary));
    return 0;
  } finally {
    if (dropTimer !== null) clearInterval(dropTimer);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await standIn.stop();
  }
}

function summarize(ledger: TtsLedger, drops: number) {
  const malformed: Record<string, number> = {};
  for (const entry of ledger.malformed) malformed[entry.kind] = (malformed[entry.kind] ?? 0) + 1;
  return {
    uplinks: ledger.uplinks.length,
    heard: ledger.uplinks.filter((entry) => entry.reached > 0).length,
    lost: ledger.uplinks.filter((entry) => entry.reached === 0).length,
    duplicates: ledger.duplicates.length,
    malformed,
    skippedFrames: ledger.skippedFrames,
    expectedGaps: ledger.uplinks.filter((entry) => (entry.expectedGap ?? 0) > 0).length,
    drops,
  };
}

function formatSummary(url: string, username: string, summary: ReturnType<typeof summarize>): string {
  const malformed = Object.entries(summary.malformed).map(([kind, count]) => `${count} ${kind}`);
  return [
    `firmware-sim ttn: ${url} as ${username}`,
    `  uplinks         ${summary.uplinks} published, ${summary.heard} with the gateway subscribed, ${summary.lost} while it was not (lost: QoS 0)`,
    `  duplicates      ${summary.duplicates} published twice (the gateway stores them once)`,
    `  malformed       ${malformed.length === 0 ? 'none' : malformed.join(', ')}`,
    `  gaps            ${summary.skippedFrames} frame counters skipped; ${summary.expectedGaps} records should carry iotgw.f_cnt_gap > 0`,
    `  drops           ${summary.drops} connections cut`,
  ].join('\n');
}
