import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hashPassword, verifyPassword } from '../../src/ingress/mqtt-broker/password-hash.ts';

test('a scrypt hash verifies its password only, and never contains it', async () => {
  const hash = await hashPassword('correct horse battery', { ln: 10, r: 8, p: 1 });
  assert.match(hash, /^\$scrypt\$ln=10,r=8,p=1\$/);
  assert.ok(!hash.includes('correct horse'));
  assert.equal(await verifyPassword('correct horse battery', hash), true);
  assert.equal(await verifyPassword('correct horse battery!', hash), false);
  assert.equal(await verifyPassword('', hash), false);
});

test('two hashes of one password differ (random salt); a malformed hash never verifies', async () => {
  const cost = { ln: 10, r: 8, p: 1 };
  assert.notEqual(await hashPassword('secret-secret', cost), await hashPassword('secret-secret', cost));
  assert.equal(await verifyPassword('x', 'plaintext'), false);
  assert.equal(await verifyPassword('x', '$scrypt$ln=99,r=8,p=1$AAAA$AAAA'), false);
});
