// How systemd/iotgw.service starts node, read from the unit itself, so benchmarks and the memory bounds of the
// hostile tests run the gateway with the deployed flags rather than a copy of them that can drift.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const UNIT = fileURLToPath(new URL('../../systemd/iotgw.service', import.meta.url));

/** How the systemd unit starts node: its NODE_OPTIONS, and the flags on its command line that NODE_OPTIONS may not hold. */
export interface UnitNode {
  readonly options: string;
  readonly args: readonly string[];
}

/** The node flags of systemd/iotgw.service. */
export function unitNode(): UnitNode {
  const lines = readFileSync(UNIT, 'utf8').split('\n');
  const prefix = 'Environment="NODE_OPTIONS=';
  const environment = lines.find((line) => line.startsWith(prefix));
  // Without them the hostile tests' memory bounds and the benchmarks would silently measure an uncapped heap.
  if (environment === undefined) throw new Error(`${UNIT} has no ${prefix}...": update test/helpers/unit-node.ts to how it sets node's flags`);
  const options = environment.slice(prefix.length, environment.lastIndexOf('"'));
  // ExecStart=/usr/bin/env node --flag ... /opt/iotgw/dist/src/cli.js run ...: the flags between node and the script.
  const words = (lines.find((line) => line.startsWith('ExecStart=')) ?? '').split(/\s+/);
  const args: string[] = [];
  for (const word of words.slice(words.indexOf('node') + 1)) {
    if (!word.startsWith('--')) break;
    args.push(word);
  }
  return { options, args };
}
