// kafkajs as the gateway uses it: with its record encoder replaced by the single-buffer one in
// kafka-record-encoder.ts (same bytes, a fraction of the CPU and garbage). kafkajs' produce request takes
// its record encoder when it is first loaded, so the replacement goes into the module cache before that:
// import kafkajs from here, never from 'kafkajs', in the gateway's own modules (types may come from
// 'kafkajs'). If kafkajs was loaded earlier in this thread (a test importing it first), records are
// encoded by kafkajs itself, byte for byte the same, only slower: `recordEncoder` says which.
import { createRequire } from 'node:module';
import type * as KafkaJs from 'kafkajs';
import { createRecordEncoder, type EncodedRecord, type RecordEncoder } from './kafka-record-encoder.ts';

const require = createRequire(import.meta.url);
const RECORD_MODULE = 'kafkajs/src/protocol/recordBatch/record/v0/index.js';
const PRODUCE_REQUEST_MODULE = 'kafkajs/src/protocol/requests/produce/v3/request.js';
const ENCODER_MODULE = 'kafkajs/src/protocol/encoder.js';

function installRecordEncoder(): 'iotgw' | 'kafkajs' {
  if (require.cache[require.resolve(PRODUCE_REQUEST_MODULE)] !== undefined) return 'kafkajs';
  const recordPath = require.resolve(RECORD_MODULE);
  const original = require(recordPath) as RecordEncoder;
  const Encoder = require(ENCODER_MODULE) as { prototype: object };
  const wrap = (buf: Buffer): EncodedRecord => Object.assign(Object.create(Encoder.prototype) as EncodedRecord, { buf, offset: 0 });
  const cached = require.cache[recordPath];
  if (cached === undefined) return 'kafkajs';
  cached.exports = createRecordEncoder(original, wrap);
  return 'iotgw';
}

/** Whose record encoder this thread's kafkajs uses. */
export const recordEncoder = installRecordEncoder();

const kafkajs = require('kafkajs') as typeof KafkaJs;
export default kafkajs;
