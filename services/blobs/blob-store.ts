import type { Readable } from "node:stream";

/** A byte range of a blob: `start` inclusive, `end` exclusive. */
export interface ByteRange {
  start: number;
  end: number;
}

export interface BlobInfo {
  hash: string;
  size: number;
  /** When the blob was last written (GC keeps fresh blobs for a grace period). */
  mtimeMs: number;
}

/**
 * A content-addressed block store, partitioned by namespace (a workspace: dedup happens
 * within one, never across). One file per backend (local.ts, later s3.ts), like JuiceFS's
 * pkg/object. Blobs are immutable: a second `put` of the same hash may simply replace it.
 */
export interface BlobStore {
  has(ns: string, hash: string): Promise<boolean>;
  /**
   * Stores `body` under `hash` durably (on return it survives a crash). If `body` errors, e.g.
   * because a verifying stream found a wrong hash, nothing is stored and the error is thrown.
   * Returns the number of bytes stored.
   */
  put(ns: string, hash: string, body: Readable): Promise<number>;
  /** The blob's bytes (or a range of them); NotFound if absent. */
  get(ns: string, hash: string, range?: ByteRange): Promise<Readable>;
  /** Removes a blob; a no-op if it is absent. */
  delete(ns: string, hash: string): Promise<void>;
  /** Every blob of a namespace, in no particular order (for garbage collection). */
  list(ns: string): AsyncIterable<BlobInfo>;
}

/** Block hashes are lowercase hex SHA-256. */
export const HASH_RE = /^[0-9a-f]{64}$/;
