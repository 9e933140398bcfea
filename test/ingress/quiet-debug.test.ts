// The broker's packet parser logs nothing, and costs nothing, unless DEBUG names it at start; then it logs as before.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

/** Parses one PINGREQ with mqtt-packet loaded after quiet-debug.ts, as the broker loads it. */
function parseWith(debug: string | undefined): { readonly result: unknown; readonly stderr: string } {
  const script = `
    await import(${JSON.stringify(new URL('../../src/ingress/mqtt-broker/quiet-debug.ts', import.meta.url).href)});
    const { createRequire } = await import('node:module');
    const require = createRequire(${JSON.stringify(import.meta.url)});
    const parser = require('mqtt-packet').parser({ protocolVersion: 4 });
    let packets = 0;
    parser.on('packet', () => packets++);
    parser.parse(Buffer.from([0xc0, 0x00]));
    const logger = require('debug')('mqtt-packet:parser');
    // debug's own loggers carry useColors; the no-op does not.
    console.log(JSON.stringify({ packets, enabled: logger.enabled, debugsOwn: 'useColors' in logger }));
  `;
  const env: NodeJS.ProcessEnv = { ...process.env, DEBUG_COLORS: 'no' };
  delete env.DEBUG;
  if (debug !== undefined) env.DEBUG = debug;
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env, encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  return { result: JSON.parse(run.stdout), stderr: run.stderr };
}

test('without DEBUG the parser works, its loggers are no-ops and it writes nothing', () => {
  const { result, stderr } = parseWith(undefined);
  assert.deepEqual(result, { packets: 1, enabled: false, debugsOwn: false });
  assert.equal(stderr, '');
});

test('DEBUG=mqtt-packet:* at start still logs the parser through debug', () => {
  const { result, stderr } = parseWith('mqtt-packet:*');
  assert.deepEqual(result, { packets: 1, enabled: true, debugsOwn: true });
  assert.match(stderr, /mqtt-packet:parser parse: current state/);
});
