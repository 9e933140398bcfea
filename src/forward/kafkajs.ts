// kafkajs as the gateway uses it: with its produce request replaced by the one-buffer writer in
// kafka-produce-request.ts, its record encoder by the single-buffer one in kafka-record-encoder.ts (both the
// same bytes, a fraction of the CPU and garbage) and its grouping of messages by partition by the linear one
// in kafka-partition-grouping.ts (same groups; kafkajs' is quadratic). kafkajs'
// modules take these when they are first loaded, so the replacements go into the module cache before that:
// import kafkajs from here, never from 'kafkajs', in the gateway's own modules (types may come from
// 'kafkajs'). If kafkajs was loaded earlier in this thread (a test importing it first), kafkajs' own are
// used, with the same results, only slower: `recordEncoder` says which.
import { createRequire } from 'node:module';
import type * as KafkaJs from 'kafkajs';
import { groupMessagesPerPartition } from './kafka-partition-grouping.ts';
import { createProduceRequest, type ProduceRequestFactory } from './kafka-produce-request.ts';
import { createRecordEncoder, type EncodedRecord, type RecordEncoder } from './kafka-record-encoder.ts';

const require = createRequire(import.meta.url);
const RECORD_MODULE = 'kafkajs/src/protocol/recordBatch/record/v0/index.js';
const PRODUCE_REQUEST_MODULE = 'kafkajs/src/protocol/requests/produce/v3/request.js';
const ENCODER_MODULE = 'kafkajs/src/protocol/encoder.js';
const GROUPING_MODULE = 'kafkajs/src/producer/groupMessagesPerPartition.js';
const SEND_MESSAGES_MODULE = 'kafkajs/src/producer/sendMessages.js';

function installReplacements(): 'iotgw' | 'kafkajs' {
  if (require.cache[require.resolve(PRODUCE_REQUEST_MODULE)] !== undefined) return 'kafkajs';
  if (require.cache[require.resolve(SEND_MESSAGES_MODULE)] !== undefined) return 'kafkajs';
  const recordPath = require.resolve(RECORD_MODULE);
  const original = require(recordPath) as RecordEncoder;
  const Encoder = require(ENCODER_MODULE) as { prototype: object };
  const wrap = (buf: Buffer, offset = 0): EncodedRecord => Object.assign(Object.create(Encoder.prototype) as EncodedRecord, { buf, offset });
  const cached = require.cache[recordPath];
  if (cached === undefined) return 'kafkajs';
  const groupingPath = require.resolve(GROUPING_MODULE);
  require(groupingPath);
  const grouping = require.cache[groupingPath];
  if (grouping === undefined) return 'kafkajs';
  cached.exports = createRecordEncoder(original, (buf) => wrap(buf));
  // Loaded after the record encoder is replaced: kafkajs' request (which takes the compressed batches) binds it at load.
  const producePath = require.resolve(PRODUCE_REQUEST_MODULE);
  const originalProduce = require(producePath) as ProduceRequestFactory;
  const produce = require.cache[producePath];
  if (produce === undefined) return 'kafkajs';
  produce.exports = createProduceRequest(originalProduce, wrap);
  grouping.exports = groupMessagesPerPartition;
  return 'iotgw';
}

/** Whose produce request, record encoder and partition grouping this thread's kafkajs uses. */
export const recordEncoder = installReplacements();

const kafkajs = require('kafkajs') as typeof KafkaJs;
export default kafkajs;
