import type { FileHandle } from "node:fs/promises";
import type { Readable } from "node:stream";
import type { ByteRange } from "../../protocol/volume.js";
import { BLOCK_HASH_PATTERN } from "../../protocol/volume-limits.js";

export type { ByteRange };

export interface BlobInfo {
  hash: string;
  size: number;
  /** When the blob was last written (GC keeps fresh blobs for a grace period). */
  mtimeMs: number;
}

/**
 * A content-addressed block store, partitioned by namespace (a workspace: dedup happens
 * within one, never across). One file per backend (local.ts, s3.ts), like JuiceFS's
 * pkg/object. Blobs are immutable: a second `put` of the same hash may simply replace it.
 */
export interface BlobStore {
  has(ns: string, hash: string): Promise<boolean>;
  /**
   * Stores `body` under `hash` durably (on return it survives a crash). If `body` errors, e.g.
   * because a verifying stream found a wrong hash, nothing is stored and the error is thrown.
   * Returns the number of bytes stored.
   */
  put(ns: string, hash: string, body: AsyncIterable<Uint8Array>): Promise<number>;
  /** The blob's bytes (or a range of them); NotFound if absent. */
  get(ns: string, hash: string, range?: ByteRange): Promise<Readable>;
  /** The blob as an open file (a store on local disk), which a response reads through reused buffers; NotFound if absent. */
  open?(ns: string, hash: string): Promise<FileHandle>;
  /** Removes a blob; a no-op if it is absent. */
  delete(ns: string, hash: string): Promise<void>;
  /** Removes many blobs (an object store does it in batches); absent ones are skipped. */
  deleteMany(ns: string, hashes: readonly string[]): Promise<void>;
  /** Every blob of a namespace, in no particular order (for garbage collection). */
  list(ns: string): AsyncIterable<BlobInfo>;
  /** Set when clients can move blob bytes to and from the store themselves (an object store). */
  readonly direct?: DirectBlobAccess;
  /** Set when blobs can be written as a group made durable together (a store on local disk). */
  readonly group?: GroupBlobWrites;
}

/** A blob written but not yet durable nor visible under its hash (GroupBlobWrites.stage). */
export interface StagedBlob {
  readonly ns: string;
  readonly hash: string;
  readonly size: number;
  /** Of its bytes, how many the disk read straight from the caller's memory (O_DIRECT). */
  readonly directBytes: number;
}

/**
 * Blobs written as a group (local block writes, services/volumes/local-put.ts): each is staged
 * (written to a temp file, nothing synced), then the whole group published at once: the files'
 * fdatasyncs run together, then the renames, then one fsync per distinct directory. A blob of
 * the group exists under its hash, whole and durable, once `publish` resolved; on any failure
 * the group's staged files are removed (a blob already renamed is whole and synced: it stays,
 * unrecorded, until GC's sweep).
 */
export interface GroupBlobWrites {
  /**
   * `pageAligned`: `data` starts on a page boundary and the caller leaves it untouched until
   * `stage` resolves, so the store may have the disk read it in place (O_DIRECT).
   */
  stage(ns: string, hash: string, data: Uint8Array, pageAligned?: boolean): Promise<StagedBlob>;
  publish(group: readonly StagedBlob[]): Promise<void>;
  /** Removes staged blobs that will not be published (idempotent; never throws). */
  discard(group: readonly StagedBlob[]): Promise<void>;
}

/** An HTTP request a client sends as given (URL and headers signed by the server). */
export interface SignedRequest {
  method: "PUT";
  url: string;
  headers: Record<string, string>;
}

/**
 * Client-side data paths: the server signs, the client moves the bytes. A signed PUT must
 * make the store itself check the body against `hash` (its SHA-256).
 */
export interface DirectBlobAccess {
  /** A presigned GET URL of the blob (Range requests allowed). */
  signGet(ns: string, hash: string): Promise<string>;
  /** A signed PUT of the blob whose body the store accepts only if its SHA-256 is `hash`. */
  signPut(ns: string, hash: string): Promise<SignedRequest>;
  /** The stored blob's size, or undefined if it is absent. */
  size(ns: string, hash: string): Promise<number | undefined>;
}

/** Block hashes are lowercase hex SHA-256. */
export const HASH_RE = new RegExp(BLOCK_HASH_PATTERN);
