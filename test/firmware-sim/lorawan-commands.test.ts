// How the simulated LoRaWAN and TTN devices read a command from a downlink (device-commands.ts
// parseLorawanCommand): the binary format by FPort (10 lamp, 11 interval, 12 valve) and JSON objects on any
// FPort, refusals for what a model does not have or cannot use; the device side of the frame
// (lorawan-device.ts): a downlink's FRMPayload decrypted with the AppSKey, ConfirmedDataDown noticed, and
// FCtrl.ACK set in the next uplink; and a model acting on the result, so its next reading shows it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyDeviceCommand, LORAWAN_COMMAND_PORTS, parseLorawanCommand } from '../../firmware-sim/device-commands.ts';
import { createFleet, type DeviceKind, type StreetLampReading, type WaterMeterReading } from '../../firmware-sim/fleet.ts';
import { createSimLorawanDevice, decodeDownlink, deriveIdentity, type DeviceSession } from '../../firmware-sim/transports/lorawan-device.ts';
import { encodeDataFrame } from '../../src/ingress/lorawan/frame-crypto.ts';
import { parsePhyPayload } from '../../src/ingress/lorawan/phy-payload.ts';

const { lamp: LAMP, config: CONFIG, valve: VALVE } = LORAWAN_COMMAND_PORTS;
const hex = (text: string): Buffer => Buffer.from(text, 'hex');
const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));
const parse = (kind: DeviceKind, fport: number, payload: Buffer) => parseLorawanCommand(kind, fport, payload);

test('binary commands: lamp dim and on/off on FPort 10, interval on FPort 11, valve on FPort 12', () => {
  assert.deepEqual(parse('street-lamp', LAMP, hex('0128')), { name: 'dim', command: { action: 'actuate', actuation: { kind: 'lamp', on: true, dimPct: 40 } } });
  assert.deepEqual(parse('street-lamp', LAMP, hex('0100')), { name: 'dim', command: { action: 'actuate', actuation: { kind: 'lamp', on: false, dimPct: 0 } } });
  assert.deepEqual(parse('street-lamp', LAMP, hex('0200')), { name: 'off', command: { action: 'actuate', actuation: { kind: 'lamp', on: false } } });
  assert.deepEqual(parse('street-lamp', LAMP, hex('0201')), { name: 'on', command: { action: 'actuate', actuation: { kind: 'lamp', on: true } } });
  assert.deepEqual(parse('parking-sensor', CONFIG, hex('100f')), { name: 'config', command: { action: 'config', intervalS: 900 } });
  assert.deepEqual(parse('electricity-meter', CONFIG, hex('1005a0')), { name: 'config', command: { action: 'config', intervalS: 86_400 } });
  assert.deepEqual(parse('water-meter', VALVE, hex('2000')), { name: 'valve', command: { action: 'actuate', actuation: { kind: 'valve', open: false } } });
  assert.deepEqual(parse('water-meter', VALVE, hex('2001')), { name: 'valve', command: { action: 'actuate', actuation: { kind: 'valve', open: true } } });
});

test('binary commands: refused when the model lacks the actuator, the opcode is unknown, or the arguments do not fit', () => {
  const refusal = (kind: DeviceKind, fport: number, payload: string) => {
    const { command } = parse(kind, fport, hex(payload));
    assert.equal(command.action, 'refuse', `${kind} FPort ${fport} ${payload}`);
    return command.action === 'refuse' ? command.error : '';
  };
  assert.equal(refusal('water-meter', LAMP, '0128'), 'unknown command', 'a lamp command to a water meter');
  assert.equal(refusal('street-lamp', VALVE, '2000'), 'unknown command', 'a valve command to a lamp');
  assert.equal(refusal('street-lamp', LAMP, '0a28'), 'unknown command', 'unknown opcode');
  assert.equal(refusal('street-lamp', 1, '0128'), 'unknown command', 'the lamp opcode on another FPort');
  assert.equal(refusal('street-lamp', LAMP, ''), 'unknown command', 'an empty payload');
  assert.match(refusal('street-lamp', LAMP, '0165'), /^bad payload: dim needs 01 LL, LL 0\.\.100$/, 'level 101');
  assert.match(refusal('street-lamp', LAMP, '012800'), /^bad payload: dim/, 'a trailing byte');
  assert.match(refusal('street-lamp', LAMP, '0202'), /^bad payload: on\/off/);
  assert.match(refusal('street-lamp', CONFIG, '1000'), /^bad payload: config needs .*1\.\.1440 minutes/, '0 minutes');
  assert.match(refusal('street-lamp', CONFIG, '1005a1'), /^bad payload: config/, '1441 minutes');
  assert.match(refusal('water-meter', VALVE, '20'), /^bad payload: valve/);
});

test('JSON commands on any FPort, as the gateway sends an object payload without a formatter', () => {
  assert.deepEqual(parse('street-lamp', 1, json({ level: 40 })), {
    name: 'dim',
    command: { action: 'actuate', actuation: { kind: 'lamp', on: true, dimPct: 40 } },
  });
  assert.deepEqual(parse('street-lamp', 7, json({ on: false })), { name: 'off', command: { action: 'actuate', actuation: { kind: 'lamp', on: false } } });
  assert.deepEqual(parse('water-meter', 1, json({ open: false })), {
    name: 'valve',
    command: { action: 'actuate', actuation: { kind: 'valve', open: false } },
  });
  assert.deepEqual(parse('parking-sensor', LAMP, json({ interval_s: 600 })), { name: 'config', command: { action: 'config', intervalS: 600 } });
  assert.deepEqual(parse('street-lamp', 1, json({ level: 400 })), {
    name: 'dim',
    command: { action: 'refuse', error: 'bad payload: dim needs {"level": 0..100}' },
  });
  assert.deepEqual(parse('street-lamp', 1, json({ on: 'yes' })), {
    name: 'on',
    command: { action: 'refuse', error: 'bad payload: on needs {"on": true|false}' },
  });
  assert.deepEqual(parse('electricity-meter', 1, json({ level: 40 })), { name: 'dim', command: { action: 'refuse', error: 'unknown command' } });
  assert.deepEqual(parse('street-lamp', 1, json({ reboot: true })), { name: 'unknown', command: { action: 'refuse', error: 'unknown command' } });
  assert.deepEqual(
    parse('street-lamp', 1, Buffer.from('{"level":')),
    { name: 'unknown', command: { action: 'refuse', error: 'unknown command' } },
    'broken JSON',
  );
});

test('applyDeviceCommand: the model acts and its next reading shows it; a config command gives the interval', () => {
  const [meter, lamp, water] = createFleet({ devices: 3, seed: 5 });
  assert.ok(meter !== undefined && lamp?.kind === 'street-lamp' && water?.kind === 'water-meter');
  const t0 = Date.UTC(2026, 0, 1, 12);
  assert.deepEqual(applyDeviceCommand(lamp, parse('street-lamp', LAMP, hex('0128')).command), { result: { on: true, dim_pct: 40 }, applied: true });
  const reading = lamp.nextReading(t0) as StreetLampReading;
  assert.equal(reading.on, true, 'on at noon: the command overrides the schedule');
  assert.equal(reading.dim_pct, 40);
  assert.deepEqual(applyDeviceCommand(water, parse('water-meter', VALVE, hex('2000')).command), { result: { valve: 'closed' }, applied: true });
  water.nextReading(t0);
  assert.equal((water.nextReading(t0 + 60_000) as WaterMeterReading).flow_lpm, 0, 'a closed valve stops the flow');
  assert.deepEqual(applyDeviceCommand(meter, parse('electricity-meter', CONFIG, hex('1001')).command), {
    result: { interval_s: 60 },
    applied: true,
    intervalS: 60,
  });
  assert.deepEqual(applyDeviceCommand(meter, parse('electricity-meter', LAMP, hex('0128')).command), { result: { error: 'unknown command' }, applied: false });
});

const SESSION: DeviceSession = {
  devAddr: '01020304',
  nwkSKey: hex('2b7e151628aed2a6abf7158809cf4f3c'),
  appSKey: hex('000102030405060708090a0b0c0d0e0f'),
  fcntUp: 0,
  fcntDownNext: 3,
};

function downlink(fields: { confirmed?: boolean; ack?: boolean; fport?: number | null; payload?: Buffer; fcnt?: number; nwkSKey?: Buffer }): Buffer {
  return encodeDataFrame({
    mtype: fields.confirmed === true ? 'ConfirmedDataDown' : 'UnconfirmedDataDown',
    devAddr: SESSION.devAddr,
    fcnt32: fields.fcnt ?? 3,
    ack: fields.ack,
    fport: fields.fport === undefined ? 10 : fields.fport,
    payload: fields.payload,
    nwkSKey: fields.nwkSKey ?? SESSION.nwkSKey,
    appSKey: SESSION.appSKey,
  });
}

test('decodeDownlink: FRMPayload decrypted with the AppSKey, confirmed noticed, FCntDown moved on; foreign or forged frames refused', () => {
  const received = decodeDownlink(SESSION, downlink({ confirmed: true, payload: hex('0128') }));
  assert.ok(received !== null);
  assert.deepEqual(received.downlink, { ack: false, confirmed: true, fcntDown: 3, fport: 10, payload: hex('0128') });
  assert.equal(received.session.fcntDownNext, 4);
  const ackOnly = decodeDownlink(SESSION, downlink({ ack: true, fport: null }));
  assert.deepEqual(ackOnly?.downlink, { ack: true, confirmed: false, fcntDown: 3, fport: null, payload: Buffer.alloc(0) });
  assert.equal(decodeDownlink(SESSION, downlink({ payload: hex('0128'), nwkSKey: hex('00'.repeat(16)) })), null, 'bad MIC');
  assert.equal(decodeDownlink({ ...SESSION, devAddr: '01020305' }, downlink({ payload: hex('0128') })), null, 'another DevAddr');
  assert.equal(decodeDownlink(SESSION, Buffer.from('not a frame')), null);
});

test('a simulated device decrypts a command downlink and sets FCtrl.ACK in the uplink after a confirmed one', () => {
  const identity = deriveIdentity(9, 1, 'sl-000002', 'street-lamp', false, 'mixed');
  assert.equal(identity.activation.mode, 'abp');
  if (identity.activation.mode !== 'abp') return;
  const { devAddr, nwkSKey, appSKey } = identity.activation;
  const device = createSimLorawanDevice(identity, undefined);
  device.uplink(Buffer.from([1]), identity.fport, false);
  const phy = encodeDataFrame({ mtype: 'ConfirmedDataDown', devAddr, fcnt32: 0, fport: 1, payload: json({ level: 25 }), nwkSKey, appSKey });
  const received = device.receiveDownlink(phy);
  assert.deepEqual(received, { ack: false, confirmed: true, fcntDown: 0, fport: 1, payload: json({ level: 25 }) });
  assert.equal(device.receiveDownlink(phy), null, 'the same FCntDown again is a replay');
  const next = parsePhyPayload(device.uplink(Buffer.from([1]), identity.fport, false, true).phy);
  assert.ok(next.ok && next.frame.kind === 'data');
  assert.equal(next.frame.fctrl.ack, true);
  const after = parsePhyPayload(device.uplink(Buffer.from([1]), identity.fport, false).phy);
  assert.ok(after.ok && after.frame.kind === 'data' && !after.frame.fctrl.ack);
});
