// /metrics as a Prometheus server reads it (a strict text-format parser below), with figures that match what
// devices published; /readyz flips to "buffering" while the Kafka mock cluster is down and back to "up".
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runMqttFleet } from '../../firmware-sim/mqtt-fleet.ts';
import { startOpsGateway } from '../helpers/ops-gateway.ts';
import { waitFor } from '../helpers/wait-for.ts';

interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

interface Family {
  readonly name: string;
  help: string | null;
  type: string | null;
  readonly samples: Sample[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL_NAME = '[a-zA-Z_][a-zA-Z0-9_]*';
const LABEL_VALUE = '"(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
const SAMPLE = new RegExp(`^(${NAME})(?:\\{((?:${LABEL_NAME}=${LABEL_VALUE})(?:,${LABEL_NAME}=${LABEL_VALUE})*,?)?\\})? (\\S+)(?: (-?\\d+))?$`);
const LABEL = new RegExp(`(${LABEL_NAME})=(${LABEL_VALUE})`, 'g');
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
const SUFFIXES: Readonly<Record<string, readonly string[]>> = {
  counter: ['', '_total', '_created'],
  gauge: [''],
  untyped: [''],
  histogram: ['_bucket', '_sum', '_count', '_created'],
  summary: ['', '_sum', '_count', '_created'],
};

/** Prometheus text exposition format 0.0.4, strictly: every sample belongs to a family declared by TYPE before it. */
function parsePrometheusText(text: string): Map<string, Family> {
  assert.ok(text.endsWith('\n'), 'the exposition ends with a line feed');
  const families = new Map<string, Family>();
  const family = (name: string): Family => {
    let found = families.get(name);
    if (found === undefined) {
      found = { name, help: null, type: null, samples: [] };
      families.set(name, found);
    }
    return found;
  };
  for (const [index, line] of text.slice(0, -1).split('\n').entries()) {
    const where = `line ${index + 1}: ${JSON.stringify(line)}`;
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta !== null) {
      const [, kind, name = '', rest = ''] = meta;
      assert.match(name, new RegExp(`^${NAME}$`), where);
      const entry = family(name);
      if (kind === 'HELP') {
        assert.equal(entry.help, null, `second HELP for ${name}`);
        assert.equal(entry.samples.length, 0, `HELP after samples, ${where}`);
        entry.help = rest;
      } else {
        assert.equal(entry.type, null, `second TYPE for ${name}`);
        assert.equal(entry.samples.length, 0, `TYPE after samples, ${where}`);
        assert.ok(TYPES.has(rest), `unknown type, ${where}`);
        entry.type = rest;
      }
      continue;
    }
    assert.ok(!line.startsWith('#') || line.startsWith('# '), where);
    if (line.startsWith('# ')) continue;
    const match = SAMPLE.exec(line);
    assert.ok(match !== null, `not a sample, ${where}`);
    const [, name = '', labelText = '', valueText = ''] = match;
    const value = valueText === '+Inf' ? Number.POSITIVE_INFINITY : valueText === '-Inf' ? Number.NEGATIVE_INFINITY : Number(valueText);
    // Prometheus reads values with Go's ParseFloat, which takes NaN in any case (prom-client writes "Nan").
    assert.ok(/^nan$/i.test(valueText) || !Number.isNaN(value), `bad value, ${where}`);
    const labels: Record<string, string> = {};
    for (const [, labelName = '', quoted = ''] of labelText.matchAll(LABEL)) {
      assert.ok(!(labelName in labels), `duplicate label ${labelName}, ${where}`);
      labels[labelName] = JSON.parse(quoted) as string; // the format's escapes (\\ \" \n) are JSON's too
    }
    const owner = [...families.values()].find(
      (entry) => entry.type !== null && (SUFFIXES[entry.type] ?? []).some((suffix) => `${entry.name}${suffix}` === name),
    );
    assert.ok(owner !== undefined, `sample without a TYPE line before it, ${where}`);
    owner.samples.push({ name, labels, value });
  }
  for (const entry of families.values()) assert.ok(entry.type !== null && entry.help !== null, `${entry.name} has HELP and TYPE`);
  return families;
}

function value(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const entry of families.values()) {
    const sample = entry.samples.find(
      (candidate) => candidate.name === name && Object.entries(labels).every(([key, expected]) => candidate.labels[key] === expected),
    );
    if (sample !== undefined) return sample.value;
  }
  return undefined;
}

test('the parser refuses what Prometheus would', () => {
  assert.throws(() => parsePrometheusText('iotgw_x 1\n'), /without a TYPE/);
  assert.throws(() => parsePrometheusText('# HELP a x\n# TYPE a gauge\na{b="c} 1\n'), /not a sample/);
  assert.throws(() => parsePrometheusText('# HELP a x\n# TYPE a gauge\na 1'), /line feed/);
  assert.equal(value(parsePrometheusText('# HELP a x\n# TYPE a histogram\na_bucket{le="+Inf"} 3\na_sum 1.5\na_count 3\n'), 'a_count'), 3);
});

test('/metrics parses and counts what devices published; /readyz says buffering while Kafka is down, up after', async (t) => {
  const { gateway, kafka, baseUrl, mqttUrl } = await startOpsGateway(t);
  const scrape = async () => {
    const response = await fetch(`${baseUrl}/metrics`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    return parsePrometheusText(await response.text());
  };
  const readyz = async () => (await (await fetch(`${baseUrl}/readyz`)).json()) as { kafka: string; buffer: { depthRecords: number; oldestAgeSeconds: number } };

  const before = await scrape();
  for (const name of [
    'iotgw_ingress_accepted_total',
    'iotgw_ingress_rejected_total',
    'iotgw_mqtt_connected_clients',
    'iotgw_buffer_depth_records',
    'iotgw_buffer_depth_bytes',
    'iotgw_buffer_oldest_age_seconds',
    'iotgw_buffer_dropped_total',
    'iotgw_buffer_dead_letter_records',
    'iotgw_kafka_sent_records_total',
    'iotgw_kafka_send_errors_total',
    'iotgw_kafka_send_seconds',
    'iotgw_forwarder_kafka_up',
    'iotgw_forwarder_link_state',
    // prom-client's default metrics with the iotgw_ prefix: memory and event-loop lag.
    'iotgw_process_resident_memory_bytes',
    'iotgw_nodejs_heap_size_used_bytes',
    'iotgw_nodejs_eventloop_lag_seconds',
    'iotgw_nodejs_eventloop_lag_p99_seconds',
  ]) {
    assert.ok(before.has(name), `/metrics has ${name}`);
  }
  assert.equal(before.get('iotgw_kafka_send_seconds')?.type, 'histogram');
  assert.equal(value(before, 'iotgw_buffer_depth_records'), 0);

  await kafka.down('all');
  const published = 40;
  const report = await runMqttFleet({ url: mqttUrl, devices: 4, ratePerSecond: 0, durationMs: 0, messages: published, qos: 1, seed: 3 });
  assert.equal(report.acked, published, JSON.stringify(report.failures));

  await waitFor(async () => (await readyz()).kafka === 'buffering', '/readyz to say buffering', 30_000, 100);
  const down = await readyz();
  assert.equal(down.buffer.depthRecords, published);
  const during = await scrape();
  assert.equal(value(during, 'iotgw_ingress_accepted_total', { source: 'mqtt' }), published);
  assert.equal(value(during, 'iotgw_buffer_depth_records'), published);
  assert.ok((value(during, 'iotgw_buffer_depth_bytes') ?? 0) > 0);
  assert.ok((value(during, 'iotgw_buffer_oldest_age_seconds') ?? -1) >= 0);
  assert.equal(value(during, 'iotgw_forwarder_link_state', { state: 'buffering' }), 1);
  assert.equal(value(during, 'iotgw_forwarder_link_state', { state: 'up' }), 0);
  assert.equal(value(during, 'iotgw_forwarder_kafka_up'), 0);
  // The link can be judged down before the first produce attempt fails: wait for that failure to be counted.
  await waitFor(
    async () => (await scrape()).get('iotgw_kafka_send_errors_total')?.samples.some((sample) => sample.value > 0) === true,
    'failed batches to be counted',
    30_000,
    100,
  );
  assert.equal(gateway.readiness().kafka, 'buffering');

  await kafka.up('all');
  await waitFor(async () => (await readyz()).kafka === 'up' && (await readyz()).buffer.depthRecords === 0, '/readyz up with the buffer drained', 60_000, 100);
  const after = await scrape();
  assert.equal(value(after, 'iotgw_buffer_depth_records'), 0);
  assert.equal(value(after, 'iotgw_buffer_oldest_age_seconds'), 0);
  assert.ok((value(after, 'iotgw_kafka_sent_records_total', { topic: 'ops.records' }) ?? 0) >= published, 'every record was sent (at least once)');
  assert.equal(value(after, 'iotgw_forwarder_link_state', { state: 'up' }), 1);
  const sendSeconds = after.get('iotgw_kafka_send_seconds')?.samples.find((sample) => sample.name === 'iotgw_kafka_send_seconds_count');
  assert.ok((sendSeconds?.value ?? 0) >= 1, 'send latency observed');
});
