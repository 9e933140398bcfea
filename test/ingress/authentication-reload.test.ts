// A reload (SIGHUP) that lands while a login's password is being checked (scrypt takes milliseconds, and waits
// its turn behind other logins after a restart): the login is judged by the accounts as they are when the check
// ends. A password changed or a name removed meanwhile refuses it and is not remembered for the next CONNECT;
// an account's grant comes from the reloaded list.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Client } from 'aedes';
import { createMetrics } from '../../src/core/metrics.ts';
import { type Authentication, createAuthentication } from '../../src/ingress/mqtt-broker/authentication.ts';
import { hashPassword } from '../../src/ingress/mqtt-broker/password-hash.ts';

const COST = { ln: 10, r: 8, p: 1 };

function client(id: string): Client {
  return { id, conn: { remoteAddress: '10.0.0.7' } } as unknown as Client;
}

async function setup() {
  const [oldHash, newHash] = await Promise.all([hashPassword('old-secret', COST), hashPassword('new-secret', COST)]);
  const accounts = {
    devices: [{ id: 'em-1', passwordHash: oldHash }],
    clients: [{ username: 'ops', passwordHash: oldHash, publish: ['devices/#'], subscribe: [] }],
  };
  const authentication = createAuthentication(
    { allowAnonymous: false, keepaliveLimitS: 0, ...accounts },
    { metrics: createMetrics({ processMetrics: false }), monotonicMs: () => performance.now() },
  );
  return { authentication, oldHash, newHash };
}

function login(authentication: Authentication, id: string, username: string, password: string) {
  return authentication.authenticate(client(id), username, Buffer.from(password));
}

test('a password changed while a login with the old one was checked: refused, and the old one is not remembered', async () => {
  const { authentication, oldHash, newHash } = await setup();
  const inFlight = login(authentication, 'em-1', 'em-1', 'old-secret');
  // The check is under way (scrypt runs off the thread): the reload comes now.
  authentication.replaceAccounts({
    devices: [{ id: 'em-1', passwordHash: newHash }],
    clients: [{ username: 'ops', passwordHash: oldHash, publish: [], subscribe: [] }],
  });
  await assert.rejects(inFlight, (error: Error & { returnCode?: number }) => error.returnCode === 4 && /changed or the name removed/.test(error.message));
  await assert.rejects(login(authentication, 'em-1', 'em-1', 'old-secret'), /wrong username or password/, 'the old password is not accepted later');
  assert.deepEqual(await login(authentication, 'em-1', 'em-1', 'new-secret'), { kind: 'device', deviceId: 'em-1' });
});

test('a name removed while its login was checked is refused; an account gets the grant of the reloaded list', async () => {
  const { authentication, oldHash } = await setup();
  const removed = login(authentication, 'em-1', 'em-1', 'old-secret');
  const account = login(authentication, 'ops-2', 'ops', 'old-secret');
  authentication.replaceAccounts({
    devices: [],
    clients: [{ username: 'ops', passwordHash: oldHash, publish: ['devices/em-9/#'], subscribe: ['devices/em-9/#'] }],
  });
  await assert.rejects(removed, /changed or the name removed/);
  assert.deepEqual(await account, { kind: 'client', username: 'ops', publish: ['devices/em-9/#'], subscribe: ['devices/em-9/#'] });
  await assert.rejects(login(authentication, 'em-1', 'em-1', 'old-secret'), /wrong username or password/);
});
