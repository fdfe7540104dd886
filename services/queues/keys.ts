/**
 * LMDB keys of the queue store, as plain bytes so ranges are exact:
 *   partition prefix = queueId 0x00 len(partition) partition-bytes
 *   item key         = prefix seq (6 bytes, big-endian: byte order is FIFO order)
 * The length byte keeps one partition's prefix from being a prefix of another's.
 */
const SEQ_BYTES = 6;
/** First seq of a new partition; items handed back by a vanished getter go below the head. */
export const FIRST_SEQ = 2 ** 40;

export function partitionPrefix(queueId: string, partition: string): Buffer {
  const id = Buffer.from(queueId, "latin1");
  const part = Buffer.from(partition, "utf8");
  const out = Buffer.allocUnsafe(id.length + 2 + part.length);
  id.copy(out, 0);
  out[id.length] = 0;
  out[id.length + 1] = part.length;
  part.copy(out, id.length + 2);
  return out;
}

/** Every key of one queue starts with this. */
export const queuePrefix = (queueId: string) => Buffer.from(`${queueId}\0`, "latin1");

export function itemKey(prefix: Buffer, seq: number): Buffer {
  const out = Buffer.allocUnsafe(prefix.length + SEQ_BYTES);
  prefix.copy(out, 0);
  out.writeUIntBE(seq, prefix.length, SEQ_BYTES);
  return out;
}

export const seqOf = (key: Buffer) => key.readUIntBE(key.length - SEQ_BYTES, SEQ_BYTES);

/** End of a prefix's key range (exclusive): above every key that starts with it. */
export const rangeEnd = (prefix: Buffer) => Buffer.concat([prefix, Buffer.alloc(SEQ_BYTES + 1, 0xff)]);

/** Splits a partition-prefix key back into its queue id and partition key. */
export function parsePartitionPrefix(key: Buffer): { queueId: string; partition: string } {
  const zero = key.indexOf(0);
  return { queueId: key.toString("latin1", 0, zero), partition: key.toString("utf8", zero + 2) };
}
