// Compares what devices were told (the simulator's PUBACK ledger) with what Kafka holds: every
// acknowledged reading must be there, each device's readings must first appear in order, and a
// record id must never name two different records (duplicates are allowed, but identifiable).
import { ackedSeqs } from '../../firmware-sim/device-ledger.ts';
import type { MqttFleetReport } from '../../firmware-sim/mqtt-fleet.ts';
import type { ConsumedMessage } from './kafka-mock.ts';

export interface DeliveryCheck {
  readonly acked: number;
  /** `device:seq` acknowledged to the device but absent from Kafka. */
  readonly missing: readonly string[];
  /** Devices whose readings first appear out of acceptance order. */
  readonly outOfOrder: readonly string[];
  /** Devices found on more than one partition (the key must pin a device to one). */
  readonly splitDevices: readonly string[];
  /** Messages whose key is not the device id in their payload. */
  readonly wrongKeys: number;
  /** Record ids that name two different payloads. */
  readonly conflictingIds: readonly string[];
  /** Messages beyond the first with the same record id (re-sent after a crash or a lost Kafka ack). */
  readonly gatewayDuplicates: number;
  /** Extra copies of one reading with different record ids (the device re-sent it after a lost PUBACK). */
  readonly deviceDuplicates: number;
}

interface Reading {
  readonly device_id: string;
  readonly seq: number;
}

function readingOf(message: ConsumedMessage): Reading | null {
  try {
    const value = JSON.parse(message.value?.toString('utf8') ?? '') as Partial<Reading>;
    return typeof value.device_id === 'string' && typeof value.seq === 'number' ? { device_id: value.device_id, seq: value.seq } : null;
  } catch {
    return null;
  }
}

/** A `readTopic` stop condition: true once every acknowledged reading of the report has been read. */
export function allAckedRead(report: MqttFleetReport): (messages: readonly ConsumedMessage[]) => boolean {
  const wanted = new Set<string>();
  for (const [deviceId, ledger] of report.ledger) for (const seq of ackedSeqs(ledger)) wanted.add(`${deviceId}:${seq}`);
  let scanned = 0;
  return (messages) => {
    for (; scanned < messages.length; scanned++) {
      const reading = readingOf(messages[scanned] as ConsumedMessage);
      if (reading !== null) wanted.delete(`${reading.device_id}:${reading.seq}`);
    }
    return wanted.size === 0;
  };
}

export function checkDelivery(report: MqttFleetReport, messages: readonly ConsumedMessage[]): DeliveryCheck {
  const seqsByDevice = new Map<string, number[]>();
  const partitionsByDevice = new Map<string, Set<number>>();
  const payloadById = new Map<string, string>();
  const conflictingIds = new Set<string>();
  const copies = new Map<string, Set<string>>(); // device:seq -> record ids
  let wrongKeys = 0;
  let gatewayDuplicates = 0;

  for (const message of messages) {
    const reading = readingOf(message);
    if (reading === null) continue;
    if (message.key !== reading.device_id) wrongKeys += 1;
    const list = seqsByDevice.get(reading.device_id) ?? [];
    list.push(reading.seq);
    seqsByDevice.set(reading.device_id, list);
    const partitions = partitionsByDevice.get(reading.device_id) ?? new Set<number>();
    partitions.add(message.partition);
    partitionsByDevice.set(reading.device_id, partitions);

    const id = message.headers['record-id'] ?? '';
    const payload = message.value?.toString('base64') ?? '';
    const seen = payloadById.get(id);
    if (seen === undefined) payloadById.set(id, payload);
    else {
      gatewayDuplicates += 1;
      if (seen !== payload) conflictingIds.add(id);
    }
    const reading_ = `${reading.device_id}:${reading.seq}`;
    const ids = copies.get(reading_) ?? new Set<string>();
    ids.add(id);
    copies.set(reading_, ids);
  }

  const missing: string[] = [];
  const outOfOrder: string[] = [];
  let acked = 0;
  for (const [deviceId, ledger] of report.ledger) {
    const inKafka = seqsByDevice.get(deviceId) ?? [];
    const present = new Set(inKafka);
    for (const seq of ackedSeqs(ledger)) {
      acked += 1;
      if (!present.has(seq)) missing.push(`${deviceId}:${seq}`);
    }
    // First occurrences must be in the order the device produced (and the gateway accepted) them.
    const firsts: number[] = [];
    const seen = new Set<number>();
    for (const seq of inKafka) {
      if (!seen.has(seq)) firsts.push(seq);
      seen.add(seq);
    }
    if (firsts.some((seq, index) => index > 0 && seq <= (firsts[index - 1] as number))) outOfOrder.push(deviceId);
  }
  let deviceDuplicates = 0;
  for (const ids of copies.values()) deviceDuplicates += ids.size - 1;

  return {
    acked,
    missing,
    outOfOrder,
    splitDevices: [...partitionsByDevice].filter(([, partitions]) => partitions.size > 1).map(([device]) => device),
    wrongKeys,
    conflictingIds: [...conflictingIds],
    gatewayDuplicates,
    deviceDuplicates,
  };
}
