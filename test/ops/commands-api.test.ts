// The ops view of the waiting commands: a queued command can be cancelled, one already handed to its device's
// path cannot (its outcome will tell what happened), an unknown one is reported as such; times a Date cannot
// hold do not break the listing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Command } from '../../src/commands/command.ts';
import type { FinalStatus } from '../../src/commands/command-queue.ts';
import { createCommandsApi } from '../../src/ops/commands-api.ts';

function command(id: string, state: Command['state'], expiresAtMs = Date.parse('2026-12-06T12:00:00Z')): Command {
  return {
    id,
    deviceId: 'lamp-1',
    name: 'dim',
    payload: Buffer.from('{}'),
    structured: true,
    fport: null,
    confirmed: false,
    acceptedAtMs: Date.parse('2026-12-06T11:00:00Z'),
    expiresAtMs,
    seq: 1,
    state,
    attempts: state === 'sent' ? 1 : 0,
  };
}

function queueOf(commands: Command[]) {
  const finished: { id: string; status: FinalStatus }[] = [];
  const byId = new Map(commands.map((entry) => [entry.id, entry]));
  return {
    finished,
    list: () => [...byId.values()],
    get: (id: string) => byId.get(id),
    async finish(id: string, status: FinalStatus) {
      finished.push({ id, status });
      return byId.delete(id);
    },
  };
}

test('cancel: queued -> cancelled with a receipt; sent -> refused; unknown -> unknown', async () => {
  const queue = queueOf([command('c-queued', 'queued'), command('c-sent', 'sent')]);
  const api = createCommandsApi(queue);
  assert.equal(await api.cancel('c-sent'), 'sent');
  assert.equal(await api.cancel('c-nope'), 'unknown');
  assert.equal(await api.cancel('c-queued'), 'cancelled');
  assert.deepEqual(queue.finished, [{ id: 'c-queued', status: 'cancelled' }], 'only the queued command was ended');
  assert.equal(await api.cancel('c-queued'), 'unknown');
});

test('list: ISO times, and a time no Date holds is shown as its number instead of breaking the listing', () => {
  const api = createCommandsApi(queueOf([command('c-1', 'queued'), command('c-2', 'queued', 1e20)]));
  const [first, second] = api.list();
  assert.equal(first?.expires_at, '2026-12-06T12:00:00.000Z');
  assert.equal(first?.accepted_at, '2026-12-06T11:00:00.000Z');
  assert.equal(second?.expires_at, '100000000000000000000');
});
