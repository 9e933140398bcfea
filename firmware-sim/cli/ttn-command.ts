// `firmware-sim ttn`: runs the TTS stand-in (tts-stand-in.ts) on a local port, prints the URL, username and
// API key to put into the gateway's ttn section, waits for the gateway to subscribe, then publishes
// simulated TTS v3 uplinks (tts-traffic.ts) with the faults asked for, and prints what was published and
// how much of it nobody could hear (QoS 0: lost).
import { startTtsStandIn, type TtsStandIn } from '../tts-stand-in.ts';
import { createTtsFleet, publishTtsTraffic, type TtsFleet, type TtsLedger } from '../tts-traffic.ts';
import { defineCommand, EXIT_NO_CONNECTION, EXIT_OK } from './command-runner.ts';
import { durationFlag, type FlagValues, integerFlag, numberFlag, shareFlag, switchFlag, textFlag } from './flags.ts';

const TTN_FLAGS = {
  host: textFlag({ placeholder: 'HOST', default: '127.0.0.1', help: 'address to listen on. Default: 127.0.0.1' }),
  port: integerFlag({ placeholder: 'PORT', min: 0, max: 65_535, default: 1884, help: 'MQTT port. Default: 1884 (0 = a free port)' }),
  application: textFlag({
    placeholder: 'ID',
    default: 'iotgw-sim',
    pattern: /^[a-z0-9](?:-?[a-z0-9])*$/,
    expected: 'a TTS id (lower-case letters, digits, -)',
    help: 'TTS application id. Default: iotgw-sim',
  }),
  tenant: textFlag({ placeholder: 'ID', default: 'ttn', help: 'tenant id (ttn on The Things Network). Default: ttn' }),
  'api-key': textFlag({ placeholder: 'KEY', help: 'the password the gateway must send. Default: a random NNSXS.... key' }),
  devices: integerFlag({ min: 1, default: 10, help: 'simulated end devices. Default: 10' }),
  messages: integerFlag({ min: 1, default: 10, help: 'uplinks per device. Default: 10' }),
  rate: numberFlag({ placeholder: 'R', min: 0, default: 5, help: 'messages per second across the fleet; 0 = as fast as possible. Default: 5' }),
  'decoded-share': shareFlag({ default: 0.5, help: 'share of devices whose messages carry decoded_payload, 0..1. Default: 0.5' }),
  gaps: integerFlag({ min: 0, default: 0, help: 'frame-counter skips (1-3 frames each). Default: 0' }),
  duplicates: integerFlag({ min: 0, default: 0, help: 'messages published twice. Default: 0' }),
  malformed: integerFlag({ min: 0, default: 0, help: 'malformed messages. Default: 0' }),
  'drop-every': durationFlag({ minMs: 100, minText: '100ms', help: "close the gateway's connection every D (e.g. 20s). Default: never" }),
  wait: durationFlag({ minMs: 1_000, minText: '1s', default: 300_000, help: 'how long to wait for the gateway to subscribe. Default: 5m' }),
  seed: integerFlag({ default: 1, help: 'integer seed of devices and readings. Default: 1' }),
  models: switchFlag({ help: 'devices are the fleet models (meters, street lamps, parking sensors) and act on commands' }),
  json: switchFlag({ help: 'print the summary as one JSON object on stdout' }),
};

type TtnFlags = FlagValues<typeof TTN_FLAGS>;

export const TTN_COMMAND = defineCommand({
  name: 'ttn',
  summary: 'a local stand-in for The Things Stack MQTT integration publishing TTS v3 uplinks (QoS 0)',
  about: `firmware-sim ttn: poses as The Things Stack v3 (The Things Network) for iotgw's ttn ingress. It
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

Commands: the stand-in takes iotgw's down/push and answers down/queued, down/sent and (confirmed)
down/ack. With --models the devices are the fleet models (ids like sl-000002, readings as Cayenne LPP
on FPort 1-4 by kind) and act on each downlink sent to them as firmware-sim lorawan's devices do
(FPort 10 lamp: 01 LL dim, 02 00|01 off|on; FPort 11: 10 MM[MM] interval in minutes; FPort 12 water
meter: 20 00|01 valve; or a JSON object like {"level":40}); their next uplinks show the new state.`,
  flags: TTN_FLAGS,
  more: `Ctrl-C stops publishing and still prints the summary. Exit codes: 0 published, 1 the gateway never
subscribed, 2 bad usage.

Example (two terminals):
  firmware-sim ttn --api-key NNSXS.TEST.KEY --devices 20 --messages 30 --gaps 3 --duplicates 2 --malformed 3
  printf '%s' NNSXS.TEST.KEY > /tmp/ttn-api-key
  IOTGW__TTN__ENABLED=true IOTGW__TTN__URL=mqtt://127.0.0.1:1884 IOTGW__TTN__USERNAME=iotgw-sim@ttn \\
    IOTGW__TTN__PASSWORD_FILE=/tmp/ttn-api-key iotgw run
`,
  run: runTtnCommand,
});

async function runTtnCommand(flags: TtnFlags, signal: AbortSignal): Promise<number> {
  const standIn = await startTtsStandIn({
    host: flags.host,
    port: flags.port,
    applicationId: flags.application,
    tenantId: flags.tenant,
    ...(flags['api-key'] === undefined ? {} : { apiKey: flags['api-key'] }),
  });
  let dropTimer: NodeJS.Timeout | undefined;
  let drops = 0;
  try {
    console.error(gatewayConfigNote(standIn, flags.wait));
    try {
      await standIn.waitForSubscriber(flags.wait);
    } catch (error) {
      console.error(`firmware-sim ttn: ${(error as Error).message}`);
      return EXIT_NO_CONNECTION;
    }
    const dropEveryMs = flags['drop-every'];
    if (dropEveryMs !== undefined) {
      dropTimer = setInterval(() => {
        drops += standIn.dropConnections();
      }, dropEveryMs);
    }
    const fleet = createTtsFleet(flags.application, {
      devices: flags.devices,
      seed: flags.seed,
      decodedShare: flags['decoded-share'],
      models: flags.models,
    });
    const ledger = await publishTtsTraffic(standIn, fleet, {
      messagesPerDevice: flags.messages,
      gaps: flags.gaps,
      duplicates: flags.duplicates,
      malformed: flags.malformed,
      ratePerSecond: flags.rate,
      signal,
    });
    const summary = summarize(ledger, fleet, drops);
    if (flags.json) console.log(JSON.stringify({ transport: 'ttn', url: standIn.url, username: standIn.username, ...summary }));
    else console.log(formatSummary(standIn.url, standIn.username, summary));
    return EXIT_OK;
  } finally {
    clearInterval(dropTimer);
    await standIn.stop();
  }
}

function gatewayConfigNote(standIn: TtsStandIn, waitMs: number): string {
  return [
    `firmware-sim ttn: TTS stand-in on ${standIn.url}`,
    `  username  ${standIn.username}`,
    `  API key   ${standIn.apiKey}`,
    'Gateway config (put the API key into the password file):',
    '  ttn:',
    '    enabled: true',
    `    url: ${standIn.url}`,
    `    username: ${standIn.username}`,
    '    password_file: /etc/iotgw/ttn-api-key',
    `Waiting up to ${waitMs / 1_000} s for the gateway to subscribe...`,
  ].join('\n');
}

function summarize(ledger: TtsLedger, fleet: TtsFleet, drops: number) {
  const malformed: Record<string, number> = {};
  for (const entry of ledger.malformed) malformed[entry.kind] = (malformed[entry.kind] ?? 0) + 1;
  const commands = fleet.devices.flatMap((device) => device.commands);
  return {
    uplinks: ledger.uplinks.length,
    heard: ledger.uplinks.filter((entry) => entry.reached > 0).length,
    lost: ledger.uplinks.filter((entry) => entry.reached === 0).length,
    duplicates: ledger.duplicates.length,
    malformed,
    skippedFrames: ledger.skippedFrames,
    expectedGaps: ledger.uplinks.filter((entry) => (entry.expectedGap ?? 0) > 0).length,
    drops,
    commands: {
      received: commands.length,
      applied: commands.filter((command) => command.applied).length,
      refused: commands.filter((command) => !command.applied).length,
    },
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
    `  commands        ${summary.commands.received} received, ${summary.commands.applied} applied, ${summary.commands.refused} refused`,
  ].join('\n');
}
