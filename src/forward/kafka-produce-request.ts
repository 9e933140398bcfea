// kafkajs' Produce request v3 (the version it speaks to Kafka 0.11 and later) written in one pass into one
// buffer of its exact size. kafkajs builds it from an Encoder per record (fed a spread copy of each message),
// an Encoder for the batch body, one for the batch, one per partition and one per topic, each copied into the
// next, and a byte-at-a-time CRC: about a quarter of the forwarding thread's time. The bytes are kafkajs'
// own for every request this writes (a contract test compares them); a request it does not write (compressed
// or transactional batches, record shapes the record writer leaves to kafkajs) is handed to kafkajs' request
// unchanged, so even its errors stay kafkajs'.
import { crc32c } from './crc32c.ts';
import { recordBodySize, varIntSize, writeRecord } from './kafka-record-encoder.ts';

/** A message as kafkajs' producer hands it to the request (the fields the record batch reads). */
interface ProduceMessage {
  readonly key?: unknown;
  readonly value?: unknown;
  readonly timestamp?: unknown;
  readonly headers?: unknown;
}

interface PartitionData {
  readonly partition: number;
  readonly firstSequence?: number;
  readonly messages: readonly ProduceMessage[];
}

/** What kafkajs' producer passes to the produce request (protocol/requests/produce/v3/request.js). */
export interface ProduceRequestArgs {
  readonly acks: number;
  readonly timeout: number;
  readonly transactionalId?: string | null | undefined;
  /** A number (kafkajs' producer passes -1) or kafkajs' Long. */
  readonly producerId?: number | { readonly value: bigint } | undefined;
  readonly producerEpoch?: number;
  readonly compression?: number;
  readonly topicData: readonly { readonly topic: string; readonly partitions: readonly PartitionData[] }[];
}

export interface ProduceRequest {
  readonly apiKey: number;
  readonly apiVersion: number;
  readonly apiName: string;
  expectResponse(): boolean;
  encode(): Promise<unknown>;
}

export type ProduceRequestFactory = (args: ProduceRequestArgs) => ProduceRequest;

const NO_COMPRESSION = 0;
const MAGIC_BYTE = 2;
/** firstOffset (int64) + length (int32): the record set's bytes before the batch proper. */
const BATCH_PREFIX = 12;
/** partitionLeaderEpoch, magic, crc. */
const BATCH_HEAD = 4 + 1 + 4;
/** attributes, lastOffsetDelta, firstTimestamp, maxTimestamp, producerId, producerEpoch, firstSequence, record count. */
const BATCH_BODY_HEAD = 2 + 4 + 8 + 8 + 8 + 2 + 4 + 4;

/** One partition's batch as planned: its timestamps and the body size of each record. */
interface PlannedBatch {
  readonly data: PartitionData;
  readonly firstTimestamp: bigint;
  readonly maxTimestamp: bigint;
  readonly deltas: Float64Array;
  readonly bodySizes: Int32Array;
  /** Bytes of the records together. */
  readonly recordsSize: number;
}

/**
 * Returns kafkajs' produce request factory with the one-buffer writer in front of `original` (kafkajs' own);
 * `wrap` turns the written buffer into the Encoder instance kafkajs' connection expects.
 */
export function createProduceRequest(original: ProduceRequestFactory, wrap: (buf: Buffer, size: number) => unknown): ProduceRequestFactory {
  return (args) => {
    const request = original(args);
    const { transactionalId = null, compression = NO_COMPRESSION } = args;
    if (transactionalId !== null || compression !== NO_COMPRESSION) return request;
    return {
      apiKey: request.apiKey,
      apiVersion: request.apiVersion,
      apiName: request.apiName,
      expectResponse: request.expectResponse,
      encode: async () => {
        const written = writeRequest(args);
        return written === null ? request.encode() : wrap(written, written.length);
      },
    };
  };
}

/** The whole request, or null when some part of it is not a shape this writer handles. */
function writeRequest(args: ProduceRequestArgs): Buffer | null {
  const producerId = args.producerId === undefined ? -1n : typeof args.producerId === 'number' ? int64Of(args.producerId) : args.producerId.value;
  if (typeof producerId !== 'bigint') return null;
  const producerEpoch = args.producerEpoch ?? 0;
  if (!Number.isInteger(args.acks) || !Number.isInteger(args.timeout) || !Number.isInteger(producerEpoch)) return null;
  let size = 2 + 2 + 4 + 4; // transactional_id (null), acks, timeout, topic count
  const plans: PlannedBatch[][] = [];
  for (const { topic, partitions } of args.topicData) {
    if (typeof topic !== 'string') return null;
    size += 2 + Buffer.byteLength(topic, 'utf8') + 4;
    const planned: PlannedBatch[] = [];
    for (const data of partitions) {
      const plan = planBatch(data);
      if (plan === null) return null;
      planned.push(plan);
      size += 4 + 4 + BATCH_PREFIX + BATCH_HEAD + BATCH_BODY_HEAD + plan.recordsSize;
    }
    plans.push(planned);
  }
  const buf = Buffer.allocUnsafe(size);
  let at = buf.writeInt16BE(-1, 0); // transactional_id: null
  at = buf.writeInt16BE(args.acks, at);
  at = buf.writeInt32BE(args.timeout, at);
  at = buf.writeInt32BE(args.topicData.length, at);
  args.topicData.forEach(({ topic }, topicIndex) => {
    const topicBytes = Buffer.byteLength(topic, 'utf8');
    at = buf.writeInt16BE(topicBytes, at);
    at += buf.write(topic, at, topicBytes, 'utf8');
    const planned = plans[topicIndex] as PlannedBatch[];
    at = buf.writeInt32BE(planned.length, at);
    for (const plan of planned) at = writeBatch(buf, at, plan, producerId, producerEpoch);
  });
  // The plan and the writing disagreeing would send uninitialised bytes: a bug, which ends the process.
  if (at !== size) throw new RangeError(`produce request: planned ${size} bytes, wrote ${at}`);
  return buf;
}

function planBatch(data: PartitionData): PlannedBatch | null {
  const { messages } = data;
  if (!Number.isInteger(data.partition) || !(data.firstSequence === undefined || Number.isInteger(data.firstSequence))) return null;
  // kafkajs sorts the timestamps as text (Array.prototype.sort without a comparator) and takes the ends.
  let first: unknown = null;
  let firstText = '';
  let max: unknown = null;
  let maxText = '';
  for (const message of messages) {
    const timestamp = message.timestamp;
    if (timestamp === null || timestamp === undefined) continue;
    const text = String(timestamp);
    if (first === null || text < firstText) {
      first = timestamp;
      firstText = text;
    }
    if (max === null || text >= maxText) {
      max = timestamp;
      maxText = text;
    }
  }
  const dateNow = Date.now();
  if (first === null) {
    first = dateNow;
    max = dateNow;
  }
  const firstTimestamp = int64Of(first);
  const maxTimestamp = int64Of(max);
  if (firstTimestamp === null || maxTimestamp === null) return null;
  const deltas = new Float64Array(messages.length);
  const bodySizes = new Int32Array(messages.length);
  let recordsSize = 0;
  for (let index = 0; index < messages.length; index++) {
    const message = messages[index] as ProduceMessage;
    // As kafkajs computes it: (message.timestamp || dateNow) - firstTimestamp, in JavaScript numbers.
    const delta = ((message.timestamp || dateNow) as number) - (first as number);
    const bodySize = recordBodySize(index, delta, message.key, message.value, message.headers === undefined ? {} : message.headers);
    if (bodySize < 0) return null;
    deltas[index] = delta;
    bodySizes[index] = bodySize;
    recordsSize += varIntSize(bodySize) + bodySize;
  }
  return { data, firstTimestamp, maxTimestamp, deltas, bodySizes, recordsSize };
}

/** A timestamp as kafkajs' Encoder writes it (Long.fromValue), or null for what it would not take the same way. */
function int64Of(value: unknown): bigint | null {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? BigInt(value) : null;
  if (typeof value !== 'string' || value.length === 0 || value === 'NaN' || value.endsWith('Infinity')) return null;
  try {
    return BigInt.asIntN(64, BigInt(value));
  } catch {
    return null;
  }
}

function writeBatch(buf: Buffer, start: number, plan: PlannedBatch, producerId: bigint, producerEpoch: number): number {
  const { data, bodySizes, deltas } = plan;
  const { messages } = data;
  const batchSize = BATCH_HEAD + BATCH_BODY_HEAD + plan.recordsSize;
  let at = buf.writeInt32BE(data.partition, start);
  at = buf.writeInt32BE(BATCH_PREFIX + batchSize, at);
  at = buf.writeBigInt64BE(0n, at); // firstOffset
  at = buf.writeInt32BE(batchSize, at);
  at = buf.writeInt32BE(0, at); // partitionLeaderEpoch
  at = buf.writeInt8(MAGIC_BYTE, at);
  const crcAt = at;
  at += 4;
  const bodyStart = at;
  at = buf.writeInt16BE(NO_COMPRESSION, at); // attributes: no compression, no timestamp type, not transactional
  at = buf.writeInt32BE(messages.length - 1, at); // lastOffsetDelta
  at = buf.writeBigInt64BE(plan.firstTimestamp, at);
  at = buf.writeBigInt64BE(plan.maxTimestamp, at);
  at = buf.writeBigInt64BE(BigInt.asIntN(64, producerId), at);
  at = buf.writeInt16BE(producerEpoch, at);
  at = buf.writeInt32BE(data.firstSequence ?? 0, at);
  at = buf.writeInt32BE(messages.length, at);
  for (let index = 0; index < messages.length; index++) {
    const message = messages[index] as ProduceMessage;
    at = writeRecord(
      buf,
      at,
      bodySizes[index] as number,
      index,
      deltas[index] as number,
      message.key,
      message.value,
      message.headers === undefined ? {} : message.headers,
    );
  }
  buf.writeUInt32BE(crc32c(buf, bodyStart, at), crcAt);
  return at;
}
