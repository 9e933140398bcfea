// The simulator's RN2483 answers like the module: invalid_param for unknown commands and bad values, busy
// for radio commands before `mac pause` or while armed, radio_rx only while a receive is armed; state kept
// until a power cycle; rxstop ends a receive (unknown to older firmware); `mac pause` 0 while the stack is busy.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRn2483Emulator } from '../../firmware-sim/transports/rn2483-emulator.ts';

function module(options: Parameters<typeof createRn2483Emulator>[0] = {}) {
  const lines: string[] = [];
  const emulator = createRn2483Emulator(options, (text) => lines.push(text));
  const ask = (command: string): string => {
    const before = lines.length;
    emulator.receive(Buffer.from(`${command}\r\n`));
    return lines.slice(before).join('');
  };
  return { emulator, lines, ask };
}

test('answers the command set, one \\r\\n-terminated line each', () => {
  const { ask } = module();
  assert.equal(ask('sys get ver'), 'RN2483 1.0.5 Oct 31 2018 15:06:52\r\n');
  assert.equal(ask('radio set sf sf7'), 'busy\r\n', 'radio commands need mac pause first');
  assert.equal(ask('mac pause'), '4294967245\r\n');
  assert.equal(ask('radio set sf sf7'), 'ok\r\n');
  assert.equal(ask('radio set sf sf13'), 'invalid_param\r\n');
  assert.equal(ask('radio set freq 915000000'), 'invalid_param\r\n', 'not an EU868 frequency on an RN2483');
  assert.equal(ask('radio set bw 125'), 'ok\r\n');
  assert.equal(ask('radio get sf'), 'sf7\r\n');
  assert.equal(ask('radio fly away'), 'invalid_param\r\n');
  assert.equal(ask('hello'), 'invalid_param\r\n');
  assert.equal(ask('radio get pktrssi'), '-128\r\n');
  assert.equal(module({ pktRssi: false }).ask('radio get pktrssi'), 'invalid_param\r\n');
  assert.equal(module({ model: 'RN2903' }).ask('sys get ver').startsWith('RN2903 '), true);
});

test('radio_rx only while armed, then idle; busy when armed twice; radio_err likewise', () => {
  const { emulator, ask, lines } = module();
  ask('mac pause');
  assert.equal(emulator.transmit(Buffer.from([1, 2])), false, 'nobody listening');
  assert.equal(ask('radio rx 0'), 'ok\r\n');
  assert.equal(ask('radio rx 0'), 'busy\r\n');
  assert.equal(ask('radio set sf sf8'), 'busy\r\n', 'no settings while receiving');
  assert.equal(emulator.transmit(Buffer.from([0xab, 0x01]), { snr: -4, rssi: -99 }), true);
  assert.equal(lines.at(-1), 'radio_rx  AB01\r\n');
  assert.equal(emulator.isArmed(), false);
  assert.equal(emulator.transmit(Buffer.from([3])), false);
  assert.equal(ask('radio get snr'), '-4\r\n');
  assert.equal(ask('radio get pktrssi'), '-99\r\n');
  assert.equal(emulator.failReception(), false);
  ask('radio rx 0');
  assert.equal(emulator.failReception(), true);
  assert.equal(lines.at(-1), 'radio_err\r\n');
  emulator.reset();
  assert.equal(ask('radio rx 0'), 'busy\r\n', 'after a power cycle the LoRaWAN stack runs again');
});

test('rxstop ends an armed receive so settings are accepted again; older firmware answers invalid_param', () => {
  const { emulator, ask } = module();
  ask('mac pause');
  ask('radio rx 0');
  assert.equal(ask('radio set mod lora'), 'busy\r\n', 'still receiving');
  assert.equal(ask('radio rxstop'), 'ok\r\n');
  assert.equal(emulator.isArmed(), false);
  assert.equal(ask('radio set mod lora'), 'ok\r\n');

  const old = module({ rxStop: false });
  old.ask('mac pause');
  old.ask('radio rx 0');
  assert.equal(old.ask('radio rxstop'), 'invalid_param\r\n');
  assert.equal(old.emulator.isArmed(), true, 'only a power cycle ends it');
  old.emulator.reset();
  assert.equal(old.emulator.isArmed(), false);
});

test('mac pause answers 0 while the LoRaWAN stack is busy, and radio commands stay refused', () => {
  const { emulator, ask } = module();
  emulator.setMacBusy(true);
  assert.equal(ask('mac pause'), '0\r\n');
  assert.equal(ask('radio set sf sf7'), 'busy\r\n');
  emulator.setMacBusy(false);
  assert.equal(ask('mac pause'), '4294967245\r\n');
  assert.equal(ask('radio set sf sf7'), 'ok\r\n');
});
