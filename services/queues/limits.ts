import { QUEUE_LIMITS } from "../../protocol/limits.js";
import { invalid } from "../errors.js";

export const { maxItemBytes: MAX_ITEM_BYTES, maxItemsPerPartition: MAX_ITEMS_PER_PARTITION, maxWaitMs: MAX_WAIT_MS } = QUEUE_LIMITS;
const MAX_PARTITION_KEY_BYTES = QUEUE_LIMITS.maxPartitionKeyBytes;

/** The default partition's key: named partitions are 1–64 bytes, so "" can never collide. */
export const DEFAULT_PARTITION = "";

/** Checks a caller's partition key; undefined means the default partition. */
export function partitionKey(partition: string | undefined): string {
  if (partition === undefined) return DEFAULT_PARTITION;
  const bytes = Buffer.byteLength(partition, "utf8");
  if (bytes < 1 || bytes > MAX_PARTITION_KEY_BYTES) {
    throw invalid(`Invalid partition key ${JSON.stringify(partition)}: it must be 1-${MAX_PARTITION_KEY_BYTES} bytes (UTF-8)`);
  }
  return partition;
}

export const describePartition = (key: string) => (key === DEFAULT_PARTITION ? "the default partition" : `partition '${key}'`);
