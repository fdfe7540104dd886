/**
 * Limits of dicts and queues, enforced by the server and checked first by the client so that most
 * bad input never leaves the caller.
 */

/** The Dict's limits. */
export const DICT_LIMITS = {
  /** Encoded key size (LMDB keys are at most 1978 bytes; this leaves room for the dict id and index prefix). */
  keyBytes: 1024,
  /** Encoded value size, as in the reference. */
  valueBytes: 100 * 1024 * 1024,
  /** Entries per `update`, as in the reference. */
  updateEntries: 10_000,
  /** `len()` counts at most this many, as in the reference. */
  lenCap: 100_000,
  /** Operations per batched request. */
  opsPerRequest: 1_000,
  /** Entries per scan page (most, and when the caller names none), and the page's rough byte budget. */
  scanPage: 10_000,
  defaultScanPage: 1000,
  scanPageBytes: 4 * 1024 * 1024,
} as const;

/** Per-queue limits (the reference's, plus the server's cap on one long-poll). */
export const QUEUE_LIMITS = {
  maxItemBytes: 1024 * 1024,
  maxItemsPerPartition: 5_000,
  maxPartitionKeyBytes: 64,
  /** Partitions in one listing (most, and when the caller names none). */
  partitionsPage: 10_000,
  defaultPartitionsPage: 1000,
  /** Longest single wait the server holds a request for; clients loop for longer waits. */
  maxWaitMs: 60_000,
} as const;
