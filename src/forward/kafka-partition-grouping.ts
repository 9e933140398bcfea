// Messages of one topic grouped by partition, as kafkajs' producer does before building a produce request:
// an object from partition number to that partition's messages, in send order. kafkajs 2.2.4 copies the
// partition's whole array for every message it adds (`[...current, message]`), which is quadratic in the batch:
// a 2,000-record batch over 6 partitions copied about 330,000 array slots. This builds the same object in one
// pass (a contract test compares the two).

export interface PartitionGroupingInput<M> {
  readonly topic: string;
  readonly partitionMetadata: readonly unknown[];
  readonly messages: readonly M[];
  readonly partitioner: (args: { topic: string; partitionMetadata: readonly unknown[]; message: M }) => number;
}

export type PartitionGrouping = <M>(input: PartitionGroupingInput<M>) => Record<number, M[]>;

export const groupMessagesPerPartition: PartitionGrouping = ({ topic, partitionMetadata, messages, partitioner }) => {
  const groups: Record<number, (typeof messages)[number][]> = {};
  if (partitionMetadata.length === 0) return groups;
  for (const message of messages) {
    const partition = partitioner({ topic, partitionMetadata, message });
    const group = groups[partition];
    if (group === undefined) groups[partition] = [message];
    else group.push(message);
  }
  return groups;
};
