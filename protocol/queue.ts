/**
 * The queue routes' wire contract, stated once: the server validates requests against these
 * schemas (fastify's TypeBox type provider derives the handlers' types from them), and the
 * client's request and reply types are derived from the same definitions.
 */
import { type Static, Type } from "typebox";
import { QUEUE_LIMITS } from "./limits.js";
import { IdSchema } from "./name-schemas.js";

/** Binary data: msgpack bin, or standard base64 in JSON (the server's `x-bytes` keyword checks and decodes it). */
export const Bytes = Type.Unsafe<Uint8Array>({ "x-bytes": true });

/** A partition key: 1–64 bytes of UTF-8 (the byte count is checked by the server; 64 chars bound it first). */
const Partition = Type.String({ minLength: 1, maxLength: QUEUE_LIMITS.maxPartitionKeyBytes, description: "Partition key (1-64 bytes of UTF-8); omitted: the default partition" });
const Block = Type.Boolean({ default: true, description: "Wait while the partition is empty (get) or full (put)" });
const TimeoutMs = Type.Integer({
  minimum: 0,
  maximum: QUEUE_LIMITS.maxWaitMs,
  description: `How long a blocking call may wait, at most ${QUEUE_LIMITS.maxWaitMs} ms (clients loop for longer waits)`,
});
const Count = Type.Integer({ minimum: 1, maximum: QUEUE_LIMITS.maxItemsPerPartition, default: 1 });

export const QueueParams = Type.Object({ id: IdSchema });

export const QueuePutBody = Type.Object({
  // No maxItems: more than a partition holds is TooLarge (never fits), decided by the server; the body limit bounds it.
  items: Type.Array(Bytes, { minItems: 1 }),
  partition: Type.Optional(Partition),
  partitionTtlMs: Type.Optional(Type.Integer({ minimum: 1 })),
  block: Type.Optional(Block),
  timeoutMs: Type.Optional(TimeoutMs),
});

export const QueueGetBody = Type.Object({
  n: Type.Optional(Count),
  partition: Type.Optional(Partition),
  block: Type.Optional(Block),
  timeoutMs: Type.Optional(TimeoutMs),
});

/** A get's answer: the items, and the lease the client library confirms (null when there were none). */
export interface QueueGetReply {
  items: Uint8Array[];
  lease: string | null;
  /** How long the server waits for the confirmation before the items return to their partition. */
  leaseMs: number;
}

export const QueueConfirmBody = Type.Object({
  leases: Type.Array(IdSchema, { maxItems: 10_000 }),
});
export interface QueueConfirmReply {
  confirmed: number;
}

export const QueuePeekBody = Type.Object({
  n: Type.Optional(Count),
  partition: Type.Optional(Partition),
  after: Type.Optional(Type.Integer({ minimum: 0 })),
  timeoutMs: Type.Optional(Type.Integer({ minimum: 0, maximum: QUEUE_LIMITS.maxWaitMs, default: 0, description: "How long to wait for a first item" })),
});
export interface QueuePeekReply {
  items: Uint8Array[];
  positions: number[];
}

export const QueueLenQuery = Type.Object({ partition: Type.Optional(Partition), total: Type.Optional(Type.Boolean()) });
export interface QueueLenReply {
  len: number;
}

export const QueuePartitionsQuery = Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: QUEUE_LIMITS.partitionsPage, default: QUEUE_LIMITS.defaultPartitionsPage })) });

export const QueueClearBody = Type.Object({ partition: Type.Optional(Partition), all: Type.Optional(Type.Boolean()) });

export interface QueueInfoReply {
  id: string;
  name: string | null;
  environment: string;
  createdAt: number;
  totalItems: number;
  partitions: number;
  inFlight: number;
}

export type QueuePutRequest = Static<typeof QueuePutBody>;
export type QueueGetRequest = Static<typeof QueueGetBody>;
export type QueueConfirmRequest = Static<typeof QueueConfirmBody>;
export type QueuePeekRequest = Static<typeof QueuePeekBody>;
export type QueueLenRequest = Static<typeof QueueLenQuery>;
export type QueueClearRequest = Static<typeof QueueClearBody>;
