import { invalid } from "../errors.js";

/** Per-queue limits (the reference's, plus the server's cap on one long-poll). */
export const MAX_ITEM_BYTES = 1024 * 1024;
export const MAX_ITEMS_PER_PARTITION = 5_000;
export const MAX_PARTITION_KEY_BYTES = 64;
/** Longest single wait the server holds a request for; clients loop for longer waits. */
export const MAX_WAIT_MS = 60_000;

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
