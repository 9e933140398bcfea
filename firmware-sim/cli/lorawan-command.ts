// `firmware-sim lorawan`: the LoRaWAN fleet (lorawan-fleet.ts) from the command line, and the devices file
// the gateway needs for it (--write-devices). Progress once per second to stderr, then a summary (or the
// whole report as one JSON object) to stdout. --region and --sub-band pick the regional parameters; --adr,
// --path-loss and --data-rate the devices' ADR and radio links.
import { DEFAULT_SUB_BAND, MAX_SUB_BAND, MIN_SUB_BAND, REGION_NAMES, type Region, regionFor, regionHasSubBands } from '../../src/ingress/lorawan/region.ts';
import { type LorawanFleetOptions, type LorawanFleetProgress, type LorawanFleetReport, lorawanDevicesConfig, runLorawanFleet } from '../lorawan-fleet.ts';
import type { PathLossSpread } from '../transports/radio-link.ts';
import { defineCommand, EXIT_NO_CONNECTION, EXIT_OK, QUIET_FLAG } from './command-runner.ts';
import { choiceFlag, durationFlag, type FlagValues, integerFlag, numberFlag, shareFlag, switchFlag, textFlag, UsageError, valueFlag } from './flags.ts';

const LORAWAN_FLAGS = {
  server: valueFlag({
    placeholder: 'HOST:PORT',
    default: { host: '127.0.0.1', port: 1700 },
    expected: 'HOST:PORT',
    parse: parseHostPort,
    help: "iotgw's Semtech UDP listener. Default: 127.0.0.1:1700",
  }),
  region: choiceFlag({
    placeholder: 'R',
    choices: REGION_NAMES,
    default: 'EU868',
    help: `regional parameters, as iotgw's lorawan.region: ${REGION_NAMES.join(', ')}.\nDevices use its channels, data rates and receive windows. Default: EU868`,
  }),
  'sub-band': integerFlag({
    placeholder: 'S',
    min: MIN_SUB_BAND,
    max: MAX_SUB_BAND,
    help: `US915/AU915: the sub-band devices join on, as iotgw's lorawan.sub_band. Default: ${DEFAULT_SUB_BAND}`,
  }),
  gateways: integerFlag({ placeholder: 'G', min: 1, default: 2, help: 'simulated packet forwarders (each its own up and down socket). Default: 2' }),
  devices: integerFlag({ min: 1, default: 50, help: 'simulated devices. Default: 50' }),
  'otaa-share': shareFlag({ default: 0.5, help: 'share of OTAA devices, 0..1 (the rest are ABP). Default: 0.5' }),
  codec: choiceFlag({
    placeholder: 'C',
    choices: ['mixed', 'raw', 'cayenne-lpp'],
    default: 'mixed',
    help: 'mixed, cayenne-lpp or raw (the codec of every device). Default: mixed',
  }),
  prefix: textFlag({ placeholder: 'TEXT', help: 'put before every device name. Default: none' }),
  seed: integerFlag({ default: 1, help: 'integer seed of keys, devices and readings. Default: 1' }),
  rate: numberFlag({
    placeholder: 'R',
    min: 0,
    default: 20,
    help: 'transmissions per second across the fleet (join-requests, uplinks, replays,\nforgeries; retransmissions come on top); 0 = no limit. Default: 20',
  }),
  duration: durationFlag({
    help: 'stop starting uplinks after D (60s, 5m, 1h, 500ms; a bare number is seconds).\nDefault: 60s, or none when --messages is given',
  }),
  messages: integerFlag({ min: 1, help: 'each device sends N new uplinks, then stops' }),
  'confirmed-share': shareFlag({ default: 0, help: 'share of uplinks sent confirmed (the device waits for the ACK). Default: 0' }),
  'two-gateway-share': shareFlag({ default: 0, help: "share of frames heard by two forwarders (within iotgw's dedup window). Default: 0" }),
  'missed-ack-share': shareFlag({ default: 0, help: 'share of ACKs the devices fail to hear, so they retransmit. Default: 0' }),
  retransmissions: integerFlag({ min: 0, default: 3, help: 'retransmissions of an unacknowledged confirmed uplink. Default: 3' }),
  'ack-timeout': durationFlag({ default: 3_000, help: 'wait for an ACK this long before retransmitting. Default: 3s' }),
  adr: switchFlag({ help: 'devices set the ADR bit and follow the LinkADRReq iotgw sends (the default)' }),
  'no-adr': switchFlag({ help: 'devices keep their data rate and TX power, and leave the ADR bit clear' }),
  'path-loss': valueFlag({
    placeholder: 'DB|A..B',
    expected: 'a number of dB or a range A..B (e.g. 130 or 120..140)',
    parse: parsePathLoss,
    help: "path loss from each device to its forwarder, or a range each device draws from\n(seeded); with the TX power it sets the SNR the forwarders report, and a frame\nbelow its data rate's demodulation floor is lost. Default: 115..142",
  }),
  'link-jitter': numberFlag({ placeholder: 'DB', min: 0, default: 0.5, help: "+/- dB of random variation on each frame's signal. Default: 0.5" }),
  'data-rate': integerFlag({
    placeholder: 'DR',
    min: 0,
    max: 15,
    help: 'the data rate every device starts at (e.g. 0 for SF12 in EU868). Default: the\nfastest its link carries at full power with 8 dB to spare',
  }),
  'device-time': switchFlag({ help: 'each device asks for the time (DeviceTimeReq) in its first uplink' }),
  'link-check': integerFlag({ min: 0, default: 0, help: 'each device asks LinkCheckReq every N uplinks; 0 = never. Default: 0' }),
  replays: integerFlag({ min: 0, default: 0, help: 'old frames sent again, as an attacker would; iotgw must refuse them. Default: 0' }),
  corrupt: integerFlag({ min: 0, default: 0, help: 'uplinks sent with a forged MIC (one bit flipped); iotgw must refuse them. Default: 0' }),
  state: textFlag({ placeholder: 'FILE', help: 'device counters and sessions: read at the start if present, written at the end' }),
  rejoin: switchFlag({ help: 'OTAA devices join again even when --state holds their session' }),
  json: switchFlag({ help: 'print the report as one JSON object on stdout (every frame of every device)' }),
  quiet: QUIET_FLAG,
};

type LorawanFlags = FlagValues<typeof LORAWAN_FLAGS>;

export const LORAWAN_COMMAND = defineCommand({
  name: 'lorawan',
  summary: 'LoRaWAN devices (ABP, OTAA) behind simulated Semtech UDP packet forwarders, real crypto',
  about: `firmware-sim lorawan: simulated LoRaWAN 1.0.x Class-A devices (ABP and OTAA) behind G
simulated Semtech UDP packet forwarders, talking to iotgw's LoRaWAN listener (lorawan.udp) with
real crypto: OTAA join-request / join-accept, encrypted FRMPayload, MICs, confirmed uplinks and ACKs.

Devices are the fleet models (electricity and water meters, parking sensors, street lamps). In the
default mixed fleet meters and parking sensors send Cayenne LPP (iotgw decodes it into
decoded_payload), water meters and street lamps a packed binary payload. DevEUIs and keys follow
from --seed, so the devices file written once matches every later run with the same seed.

How to use it with iotgw:
  1. Write the devices file (keys are secrets: the file is created readable by you only):
       firmware-sim lorawan --devices 50 --otaa-share 0.5 --seed 1 --write-devices /etc/iotgw/sim-devices.yaml
  2. Point iotgw at it, in iotgw.yaml:
       lorawan:
         enabled: true
         udp: { host: 0.0.0.0, port: 1700 }
         devices_file: /etc/iotgw/sim-devices.yaml
     and (re)start iotgw.
  3. Run the simulator with the same --devices, --otaa-share, --codec, --prefix and --seed:
       firmware-sim lorawan --server 127.0.0.1:1700 --devices 50 --otaa-share 0.5 --seed 1 --rate 20 --duration 60s
     Uplinks arrive in Kafka as The Things Stack v3 uplink messages keyed by DevEUI. Outside Europe give
     --region (and --sub-band for US915/AU915) as iotgw's lorawan.region and lorawan.sub_band say.
  4. Use --state FILE on every run: ABP devices then keep their frame counters, and OTAA devices their
     sessions, from one run to the next, as real devices do. Without it a second run starts counting at
     0 again and iotgw refuses those frames as replays (OTAA devices re-join, which is fine).`,
  flags: LORAWAN_FLAGS,
  more: `OTAA devices first send a join-request (random DevNonce) and take the join-accept if it reaches
the forwarder before its RX1/RX2 time, on the frequency and data rate the region gives that window;
they retry with a new DevNonce after 7 s. A device takes a downlink as soon as it arrives rather than
at its window time, so runs stay fast.

Radio: devices hop over their channels. ABP devices know the region's whole plan; OTAA devices
start with its default channels (US915/AU915: the sub-band) and take the rest from the join-accept's
CFList. Each device has a path loss to its forwarder (--path-loss); the forwarder reports
RSSI = TX power - path loss and SNR = RSSI - noise floor (-117 dBm at 125 kHz), with a little jitter,
and does not hear a frame below its spreading factor's demodulation floor (SF7 -7.5 dB ... SF12
-20 dB): the summary counts those as lost. A device starts at the fastest data rate its link carries
(between SF7 and SF10, or --data-rate).

MAC commands and ADR: devices answer iotgw's MAC commands in their next uplink (FOpts, or FPort 0
when they do not fit beside the reading): LinkADRReq (data rate, TX power, channel mask and NbTrans,
checked against the region and applied all or nothing), DevStatusReq (battery: 0 for mains-powered
lamps and meters; margin: the SNR the device heard the request at), DutyCycleReq, RXParamSetupReq,
RXTimingSetupReq, NewChannelReq, TxParamSetupReq, DlChannelReq. With ADR on (the default) devices set
the ADR bit; after 64 uplinks without a downlink they set ADRACKReq, and every 32 more they go back to
full power and one data rate down. Unconfirmed uplinks go NbTrans times. A device does not transmit
again until its RX1 has passed (or its downlink came). The summary lists the data rates and TX powers
at the end, MAC commands received and answered, and ADR changes.

Commands (iotgw's commands from Kafka, as application downlinks): a device acts on what its downlink
says and its next readings show it. FPort 10, street lamp: 01 LL dim to LL % (0 = off), 02 00|01
off|on; FPort 11, any device: 10 MM[MM] reporting interval in minutes (1..1440); FPort 12, water
meter: 20 00|01 valve closed|open; on any FPort a JSON object, as iotgw sends an object payload:
{"level":40}, {"on":false}, {"open":true}, {"interval_s":600}. A confirmed downlink is acknowledged
by the ACK bit of the next uplink. The summary counts commands received, applied and refused.

Progress goes to stderr once per second; the summary (sent, valid, PUSH_ACKs, confirmed ACKed,
joins, replays, forgeries, commands) to stdout. Ctrl-C stops new transmissions and still prints the summary.
Exit codes: 0 run finished or stopped by a signal, 1 no PUSH_DATA was acknowledged (is iotgw
listening with lorawan.enabled: true?), 2 bad usage.

Examples:
  firmware-sim lorawan --write-devices sim-devices.yaml --devices 10 --seed 1
  firmware-sim lorawan --devices 10 --seed 1 --messages 5 --confirmed-share 0.2 --state sim-state.json
  firmware-sim lorawan --gateways 3 --devices 200 --rate 50 --duration 5m --two-gateway-share 0.3 \\
    --replays 3 --corrupt 3 --state sim-state.json --json > report.json
  firmware-sim lorawan --devices 20 --seed 1 --data-rate 0 --path-loss 120..135 --messages 30 --device-time
`,
  devicesFile: (flags) => {
    const shape = fleetShape(flags);
    const prefix = shape.prefix === undefined ? '' : ` --prefix ${shape.prefix}`;
    return {
      flags: `--devices ${shape.devices} --otaa-share ${shape.otaaShare} --codec ${shape.codec} --seed ${shape.seed}${prefix}`,
      devices: lorawanDevicesConfig(shape),
    };
  },
  run: runLorawanCommand,
});

/** The flags that decide which devices exist (and so their keys): a devices file and a run must agree on them. */
function fleetShape(flags: LorawanFlags) {
  return {
    devices: flags.devices,
    otaaShare: flags['otaa-share'],
    codec: flags.codec,
    seed: flags.seed,
    ...(flags.prefix === undefined ? {} : { prefix: flags.prefix }),
  };
}

/** The region of --region and --sub-band; a sub-band for a region without sub-bands is a usage error. */
function regionOf(flags: LorawanFlags): Region {
  const subBand = flags['sub-band'];
  if (subBand !== undefined && !regionHasSubBands(flags.region)) {
    throw new UsageError(`--sub-band: ${flags.region} has no sub-bands (only US915 and AU915 do)`);
  }
  const region = regionFor(flags.region, subBand === undefined ? {} : { subBand });
  if (region === null) throw new UsageError(`--region: unknown region '${flags.region}'`);
  return region;
}

async function runLorawanCommand(flags: LorawanFlags, signal: AbortSignal): Promise<number> {
  if (flags.adr && flags['no-adr']) throw new UsageError('--adr and --no-adr contradict each other: give one');
  const region = regionOf(flags);
  const dataRate = flags['data-rate'];
  if (dataRate !== undefined && !region.uplinkDataRates.includes(dataRate)) {
    throw new UsageError(
      `--data-rate: ${region.name} has no uplink data rate DR${dataRate} (it has ${region.uplinkDataRates.map((dr) => `DR${dr}`).join(', ')})`,
    );
  }
  const options: LorawanFleetOptions = {
    ...fleetShape(flags),
    region,
    server: flags.server,
    gateways: flags.gateways,
    ratePerSecond: flags.rate,
    durationMs: flags.duration ?? (flags.messages === undefined ? 60_000 : 0),
    confirmedShare: flags['confirmed-share'],
    twoGatewayShare: flags['two-gateway-share'],
    missedAckShare: flags['missed-ack-share'],
    maxRetransmissions: flags.retransmissions,
    ackTimeoutMs: flags['ack-timeout'],
    replays: flags.replays,
    corruptMics: flags.corrupt,
    rejoin: flags.rejoin,
    adr: !flags['no-adr'],
    linkJitterDb: flags['link-jitter'],
    deviceTime: flags['device-time'],
    linkCheckEveryUplinks: flags['link-check'],
    signal,
    ...(flags['path-loss'] === undefined ? {} : { pathLossDb: flags['path-loss'] }),
    ...(dataRate === undefined ? {} : { initialDataRate: dataRate }),
    ...(flags.messages === undefined ? {} : { messagesPerDevice: flags.messages }),
    ...(flags.state === undefined ? {} : { stateFile: flags.state }),
  };
  const report = await runLorawanFleet(options, {
    onProgress: (progress) => {
      if (!flags.quiet) console.error(formatProgress(progress));
    },
  });
  if (flags.json) {
    const { devicesConfig: _devicesConfig, ...summary } = report;
    console.log(JSON.stringify({ transport: 'lorawan', ...summary }));
  } else {
    console.log(formatSummary(report, options));
  }
  return report.totals.pushAcked === 0 ? EXIT_NO_CONNECTION : EXIT_OK;
}

/** '130' (every device) or '120..140' (a range each device draws from). */
function parsePathLoss(text: string): number | PathLossSpread | undefined {
  const number = (part: string): number | undefined => (/^-?\d+(\.\d+)?$/.test(part.trim()) ? Number(part) : undefined);
  const [first, second, ...rest] = text.split('..');
  if (first === undefined || rest.length > 0) return undefined;
  const minDb = number(first);
  if (second === undefined) return minDb;
  const maxDb = number(second);
  return minDb === undefined || maxDb === undefined || minDb > maxDb ? undefined : { minDb, maxDb };
}

/** 'host:port' or '[v6 address]:port'. */
function parseHostPort(text: string): { host: string; port: number } | undefined {
  const match = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  if (match === null || !(port >= 1 && port <= 65_535)) return undefined;
  return { host: (match[1] ?? '').replace(/^\[|\]$/g, ''), port };
}

function formatProgress(progress: LorawanFleetProgress): string {
  const seconds = (progress.elapsedMs / 1_000).toFixed(1).padStart(6);
  return (
    `[${seconds}s] sent ${progress.sent}  uplinks ${progress.uplinks}  PUSH_ACK ${progress.pushAcked}` +
    `  confirmed ACKed ${progress.confirmedAcked}  joined ${progress.joinsAccepted}  joining ${progress.joining}`
  );
}

function formatSummary(report: LorawanFleetReport, options: LorawanFleetOptions): string {
  const { totals } = report;
  const otaa = report.devices.filter((device) => device.activation === 'otaa').length;
  const stopped = {
    messages: `every device sent its ${options.messagesPerDevice ?? 0} messages`,
    duration: `after ${((options.durationMs ?? 0) / 1_000).toFixed(1)} s`,
    aborted: 'interrupted',
  }[report.stoppedBy];
  const lines = [
    `firmware-sim lorawan: ${report.devices.length} devices (${otaa} OTAA), ${report.gateways.length} forwarders -> ${report.server} (${report.region}, seed ${report.seed})`,
    `  stopped         ${stopped}, ${(report.durationMs / 1_000).toFixed(1)} s`,
    `  sent            ${totals.sent} frames: ${totals.uplinks} uplinks, ${totals.retransmissions} retransmissions, ${totals.replays} replays, ${totals.corrupt} forged MICs`,
    `  valid MIC       ${totals.valid} (replays included: iotgw must still refuse them)`,
    `  acknowledged    ${totals.pushAcked} of ${totals.pushSent} PUSH_DATA got their PUSH_ACK`,
    `  confirmed       ${totals.confirmed} uplinks, ${totals.confirmedAcked} ACKed (${totals.acksMissed} ACKs missed on purpose)`,
    `  joins           ${totals.joinsAccepted} accepted of ${totals.joinAttempts} join-requests`,
    `  two gateways    ${totals.twoGatewayFrames} frames heard by two forwarders`,
    `  downlinks       ${totals.downlinks} received, ${totals.lateDownlinks} too late, ${totals.unmatchedDownlinks} for no listening device`,
    `  commands        ${totals.commandsReceived} received, ${totals.commandsApplied} applied, ${totals.commandsRefused} refused`,
    `  lost            ${totals.lost} frames below the demodulation floor (no forwarder heard them)`,
    `  ADR             ${totals.adrChanges.linkAdrReq} changes by LinkADRReq, ${totals.adrChanges.backoff} by the devices' backoff; ${totals.repetitions} NbTrans repetitions`,
    `  data rates      ${distribution(totals.dataRates)} (devices at the end)`,
    `  TX powers       ${distribution(totals.txPowers)}`,
    `  MAC received    ${distribution(totals.macCommandsReceived)}${totals.macCommandsUnknown > 0 ? `; ${totals.macCommandsUnknown} stopped at an unknown CID` : ''}`,
    `  MAC answered    ${distribution(totals.macCommandsAnswered)} (${totals.macFrames} frames of MAC commands alone)`,
    `  failed          ${totals.failedDevices} devices`,
  ];
  if (totals.replaysSkipped > 0) lines.push(`  (${totals.replaysSkipped} replays skipped: those devices had no old frame to replay)`);
  return lines.join('\n');
}

/** 'DR5 x3, DR4 x1', by name; 'none' when empty. */
function distribution(counts: Readonly<Record<string, number>>): string {
  const entries = Object.entries(counts).sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }));
  return entries.length === 0 ? 'none' : entries.map(([name, count]) => `${name} x${count}`).join(', ');
}
