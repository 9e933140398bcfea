// The LoRaWAN session archive format: state rows as device-sessions.ts writes them -> the archive (ABP keys from
// the config only for the session they belong to, fields of later state versions kept) -> plain or sealed bytes
// -> back, and every way a file can be wrong refused with a message naming the device and field. The sealed
// layout is opened here by hand with node:crypto, so the format comment is checked, not only the round trip.
import assert from 'node:assert/strict';
import { createDecipheriv } from 'node:crypto';
import { test } from 'node:test';
import { RAW_CODEC } from '../../../src/codecs/payload-codec.ts';
import { createDeviceSessions, type LorawanDeviceProfile } from '../../../src/ingress/lorawan-server/device-sessions.ts';
import {
  archiveKeyId,
  buildSessionArchive,
  configuredDevices,
  encodeSessionArchive,
  openSessionArchive,
  type SessionArchive,
  sealSessionArchive,
} from '../../../src/ingress/lorawan-server/session-archive.ts';
import { captureLog } from '../../helpers/capture-log.ts';

const KEY = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex');
const OTHER_KEY = Buffer.alloc(32, 7);
const NWK_S_KEY = '2b7e151628aed2a6abf7158809cf4f3c';
const APP_S_KEY = '000102030405060708090a0b0c0d0e0f';

const ABP: LorawanDeviceProfile = {
  devEui: '0004a30b001c0530',
  name: 'water-meter-17',
  codec: RAW_CODEC,
  activation: { mode: 'abp', devAddr: '26011bda', nwkSKey: Buffer.from(NWK_S_KEY, 'hex'), appSKey: Buffer.from(APP_S_KEY, 'hex') },
};
const OTAA: LorawanDeviceProfile = {
  devEui: '70b3d57ed0000001',
  name: 'lamp-1',
  codec: RAW_CODEC,
  activation: { mode: 'otaa', joinEui: '70b3d57ed0000000', appKey: Buffer.from('98929b92c49edba9676d646d3b612456', 'hex') },
};

/** State rows exactly as the gateway commits them: an ABP device after uplinks, an OTAA device after a join. */
function committedRows(): Map<string, string> {
  const sessions = createDeviceSessions([ABP, OTAA], new Map(), { log: captureLog().log });
  const abp = sessions.byDevEui(ABP.devEui);
  const otaa = sessions.byDevEui(OTAA.devEui);
  assert.ok(abp?.session && otaa);
  abp.session.fcntUpNext = 1201;
  abp.session.fcntDown = 7;
  otaa.usedDevNonces.push(771, 4242);
  otaa.lastJoinNonce = 3;
  sessions.activate(otaa, {
    devAddr: '26a1b2c3',
    nwkSKey: Buffer.from('aa'.repeat(16), 'hex'),
    appSKey: Buffer.from('bb'.repeat(16), 'hex'),
    id: 'join-771-3',
    fcntUpNext: 42,
    fcntDown: 2,
    lastUplink: null,
  });
  const rows = new Map<string, string>();
  for (const device of [abp, otaa]) {
    const write = sessions.stateWrite(device);
    rows.set(write.key, write.value as string);
  }
  return rows;
}

function archiveOf(rows: ReadonlyMap<string, string>, profiles: readonly LorawanDeviceProfile[] = [ABP, OTAA]): SessionArchive {
  return buildSessionArchive(rows, configuredDevices(profiles), { exportedAtMs: Date.parse('2025-03-01T12:00:00Z'), gatewayId: 'meter-room-01' }).archive;
}

function problemsOf(bytes: Uint8Array, key: Buffer | null = null): { reason: string; problems: readonly string[] } {
  const opened = openSessionArchive(bytes, key);
  assert.equal(opened.ok, false, 'expected the archive to be refused');
  return opened.ok ? { reason: '', problems: [] } : opened;
}

test('an archive spells out every session with both keys and keeps the state rows as committed', () => {
  const rows = committedRows();
  const archive = archiveOf(rows);
  assert.equal(archive.format, 'iotgw-lorawan-sessions');
  assert.equal(archive.version, 1);
  assert.equal(archive.exported_at, '2025-03-01T12:00:00.000Z');
  assert.equal(archive.gateway_id, 'meter-room-01');
  assert.deepEqual(
    archive.devices.map((device) => device.dev_eui),
    [ABP.devEui, OTAA.devEui],
    'in DevEUI order',
  );
  const [abp, otaa] = archive.devices;
  assert.equal(abp?.activation, 'abp');
  assert.deepEqual(abp?.session, {
    dev_addr: '26011bda',
    nwk_s_key: NWK_S_KEY,
    app_s_key: APP_S_KEY,
    id: JSON.parse(rows.get(ABP.devEui) ?? '').session.id,
    f_cnt_up_next: 1201,
    f_cnt_down: 7,
  });
  assert.equal(JSON.parse(rows.get(ABP.devEui) ?? '').session.nwk_s_key, undefined, 'the ABP keys come from the config, not the state row');
  assert.equal(otaa?.activation, 'otaa');
  assert.deepEqual(otaa?.session, {
    dev_addr: '26a1b2c3',
    nwk_s_key: 'aa'.repeat(16),
    app_s_key: 'bb'.repeat(16),
    id: 'join-771-3',
    f_cnt_up_next: 42,
    f_cnt_down: 2,
  });
  assert.deepEqual(otaa?.dev_nonces, [771, 4242]);
  assert.equal(otaa?.join_nonce, 3);
  for (const device of archive.devices) assert.equal(JSON.stringify(device.state), rows.get(device.dev_eui), 'the raw row, byte for byte');
});

test('state fields of a later version travel through export and import untouched', () => {
  const rows = committedRows();
  const withMac = { ...JSON.parse(rows.get(OTAA.devEui) ?? ''), mac: { adr: true, data_rate: 5, channels: [868_100_000] } };
  rows.set(OTAA.devEui, JSON.stringify(withMac));
  const opened = openSessionArchive(sealSessionArchive(archiveOf(rows), KEY), KEY);
  assert.ok(opened.ok);
  assert.deepEqual(opened.archive.devices[1]?.state, withMac);
});

test('ABP keys are given only to the session they belong to; rows without a configured device are kept', () => {
  const rows = committedRows();
  const rekeyed: LorawanDeviceProfile = { ...ABP, activation: { ...ABP.activation, appSKey: Buffer.alloc(16, 9) } as LorawanDeviceProfile['activation'] };
  const changed = archiveOf(rows, [rekeyed, OTAA]).devices[0];
  assert.equal(changed?.session?.nwk_s_key, null, 'the config has other keys now: these counters belong to keys it forgot');
  assert.equal(changed?.session?.app_s_key, null);
  assert.equal(changed?.session?.f_cnt_up_next, 1201);

  const unconfigured = archiveOf(rows, []);
  assert.deepEqual(
    unconfigured.devices.map((device) => [device.dev_eui, device.activation]),
    [
      [ABP.devEui, 'abp'],
      [OTAA.devEui, 'otaa'],
    ],
    'activation read from the row: only OTAA rows hold keys',
  );
  assert.equal(unconfigured.devices[1]?.session?.nwk_s_key, 'aa'.repeat(16));
});

test('a row this version cannot read is left out and named', () => {
  const rows = committedRows();
  rows.set('0000000000000bad', '{"v":9}');
  rows.set('0000000000000bae', JSON.stringify({ v: 1, session: null, dev_nonces: [70000], join_nonce: 0 }));
  const built = buildSessionArchive(rows, configuredDevices([ABP, OTAA]), { exportedAtMs: 0, gatewayId: 'gw' });
  assert.equal(built.archive.devices.length, 2);
  assert.deepEqual(
    built.unreadable.map((row) => row.devEui),
    ['0000000000000bad', '0000000000000bae'],
  );
  assert.match(built.unreadable[1]?.problem ?? '', /dev_nonces/);
});

test('plain and sealed archives open to the same document', () => {
  const archive = archiveOf(committedRows());
  const plain = openSessionArchive(encodeSessionArchive(archive), null);
  assert.ok(plain.ok);
  assert.equal(plain.sealed, false);
  assert.deepEqual(plain.archive, archive);
  const sealedBytes = sealSessionArchive(archive, KEY);
  assert.equal(sealedBytes.includes(Buffer.from('aa'.repeat(16))), false, 'no session key in clear');
  assert.equal(sealedBytes.includes(Buffer.from(NWK_S_KEY)), false);
  const sealed = openSessionArchive(sealedBytes, KEY);
  assert.ok(sealed.ok);
  assert.equal(sealed.sealed, true);
  assert.deepEqual(sealed.archive, archive);
  assert.notDeepEqual(sealSessionArchive(archive, KEY), sealedBytes, 'a fresh IV each time');
});

test('the sealed layout is the documented one: header | IV | AES-256-GCM ciphertext | tag, header authenticated', () => {
  const archive = archiveOf(committedRows());
  const sealed = sealSessionArchive(archive, KEY);
  const newline = sealed.indexOf(0x0a);
  const header = sealed.subarray(0, newline + 1);
  assert.equal(header.toString('ascii'), `iotgw-lorawan-sessions+aes-256-gcm;v=1;key=${archiveKeyId(KEY)}\n`);
  assert.match(archiveKeyId(KEY), /^[0-9a-f]{16}$/);
  const decipher = createDecipheriv('aes-256-gcm', KEY, sealed.subarray(header.length, header.length + 12));
  decipher.setAAD(header);
  decipher.setAuthTag(sealed.subarray(sealed.length - 16));
  const plaintext = Buffer.concat([decipher.update(sealed.subarray(header.length + 12, sealed.length - 16)), decipher.final()]);
  assert.deepEqual(JSON.parse(plaintext.toString('utf8')), archive);
});

test('a sealed archive is refused without its key, with another key, cut off, or altered anywhere', () => {
  const sealed = sealSessionArchive(archiveOf(committedRows()), KEY);
  const needsKey = problemsOf(sealed);
  assert.equal(needsKey.reason, 'needs-key');
  assert.match(needsKey.problems[0] ?? '', /encrypted .*give --key-file/);

  const wrong = problemsOf(sealed, OTHER_KEY);
  assert.equal(wrong.reason, 'wrong-key');
  assert.match(wrong.problems[0] ?? '', new RegExp(`another key \\(key id ${archiveKeyId(KEY)}; the key given has id ${archiveKeyId(OTHER_KEY)}\\)`));

  for (const length of [sealed.length - 1, sealed.length - 17, 70, 20]) {
    const cut = problemsOf(sealed.subarray(0, length), KEY);
    assert.equal(cut.reason, 'damaged', `cut to ${length} bytes`);
  }
  const header = sealed.indexOf(0x0a) + 1;
  for (const offset of [header + 3, header + 12 + 5, sealed.length - 3]) {
    const altered = Buffer.from(sealed);
    altered[offset] = (altered[offset] as number) ^ 0x01;
    const refused = problemsOf(altered, KEY);
    assert.equal(refused.reason, 'damaged', `a bit flipped at ${offset}`);
    assert.match(refused.problems[0] ?? '', /does not authenticate.*cut off or was altered/);
  }
  const newer = Buffer.from(sealed);
  newer.write('v=2', sealed.indexOf('v=1'), 'ascii');
  assert.equal(problemsOf(newer, KEY).reason, 'invalid');
  assert.match(problemsOf(newer, KEY).problems[0] ?? '', /version 2 of the format/);
});

test('a file that is no archive, or a document with bad devices, is refused naming each device and field', () => {
  assert.equal(problemsOf(Buffer.from('SQLite format 3\0')).reason, 'not-archive');
  assert.equal(problemsOf(Buffer.from('{"format":"iotgw-lorawan-sessions","version":1,"devi')).reason, 'damaged');
  assert.match(problemsOf(Buffer.from('{"format":"other"}')).problems[0] ?? '', /"format" must be "iotgw-lorawan-sessions"/);
  assert.match(
    problemsOf(Buffer.from('{"format":"iotgw-lorawan-sessions","version":2}')).problems[0] ?? '',
    /version 2 of the format, newer than this iotgw knows/,
  );

  const archive = archiveOf(committedRows());
  const [abp, otaa] = archive.devices;
  assert.ok(abp?.session && otaa?.session);
  const broken = {
    ...archive,
    devices: [
      { ...abp, session: { ...abp.session, nwk_s_key: 'not-a-key' } },
      { ...otaa, session: { ...otaa.session, f_cnt_up_next: 99 } },
      { ...otaa, dev_eui: 'zz' },
      abp,
      { ...otaa, state: { ...otaa.state, join_nonce: -1 }, join_nonce: -1 },
    ],
  };
  const { reason, problems } = problemsOf(Buffer.from(JSON.stringify(broken)));
  assert.equal(reason, 'invalid');
  assert.deepEqual(problems, [
    `devices[0] (${ABP.devEui}).session.nwk_s_key: expected 32 hex digits, or null when unknown`,
    `devices[1] (${OTAA.devEui}).session.f_cnt_up_next: 99 differs from state.session.f_cnt_up_next (edit both or neither)`,
    'devices[2].dev_eui: expected 16 hex digits',
    `devices[3] (${ABP.devEui}): DevEUI ${ABP.devEui} is listed twice`,
    `devices[4] (${OTAA.devEui}): DevEUI ${OTAA.devEui} is listed twice`,
    `devices[4] (${OTAA.devEui}).state.join_nonce: expected a whole number from 0 to 16777215`,
  ]);
});
