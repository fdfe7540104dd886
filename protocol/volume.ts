/**
 * The wire types of a volume: manifest entries, commits and deltas. Shared by the server's
 * volume routes, the client's `Volume`, and the FUSE mount daemon (fuse/volume).
 */

/** Files are cut into blocks of this size (the last one shorter); each is stored once by SHA-256. */
export const BLOCK_SIZE = 8 * 1024 * 1024;

/**
 * Blocks up to this size go to the server (kept inline in its block index); with an object-store
 * backend larger ones go straight to the store.
 */
export const INLINE_BLOCK_MAX = 64 * 1024;

/** Largest file the many-small-files read (`readSmallFiles`, `POST …/files`) returns. */
export const SMALL_FILE_MAX = 1024 * 1024;

/** A byte range of a file or block: `start` inclusive, `end` exclusive. */
export interface ByteRange {
  start: number;
  end: number;
}

/** A block upload straight to the object store: send the block as the body of this signed request. */
export interface DirectUpload {
  hash: string;
  method: "PUT";
  url: string;
  headers: Record<string, string>;
}

/** The server's answer to "where do these blocks go?": `direct: false` means "send them to me". */
export interface DirectUploadPlan {
  direct: boolean;
  uploads: DirectUpload[];
}

/**
 * A file range to read straight from the object store: each part is a slice of one block, as
 * bytes (inline blocks) or as a presigned URL to GET with `Range: bytes=start-(end-1)`.
 */
export interface DirectFileRead {
  version: number;
  parts: Array<{ data?: Uint8Array; url?: string; start: number; end: number }>;
  /** File offset to ask for next (one answer covers a bounded number of blocks); absent when done. */
  next?: number;
}

export type EntryType = "file" | "directory" | "symlink";

/** One path in one version of a volume. */
export interface ManifestEntry {
  /** Normalised relative path: no leading `/`, no `.`/`..` segments, `/`-separated. The root is implicit. */
  path: string;
  type: EntryType;
  /** Permission bits (e.g. 0o644). */
  mode: number;
  /** Bytes (files); 0 for directories; target length for symlinks. */
  size: number;
  mtimeMs: number;
  /** Files: hex SHA-256 of each block, in order (empty for an empty file). */
  blocks?: string[];
  /** Symlinks: the link target, stored verbatim. */
  target?: string;
}

/**
 * One change in a commit or delta. A `put` creates or replaces the entry at its path (a hard
 * link is committed as a second file entry with the same blocks); a `delete` removes a path,
 * and everything below it when it is a directory.
 */
export type Change = { op: "put"; entry: ManifestEntry } | { op: "delete"; path: string };

export interface CommitRequest {
  /** The version the committer's view was based on (concurrent commits merge per path: last wins). */
  baseVersion: number;
  changes: Change[];
}

export interface CommitResult {
  version: number;
}

/** Changes that turn version `from` into version `to`. */
export interface Delta {
  from: number;
  to: number;
  changes: Change[];
}

/** A page of a version's full tree, in path order. */
export interface TreePage {
  version: number;
  entries: ManifestEntry[];
  /** Pass as `after` to get the next page; absent on the last page. */
  next?: string;
}

/**
 * A reader's hold on one version of a volume: garbage collection keeps that version (and every
 * later one) readable while the pin lives. It lapses at `expiresAt` unless renewed; renew well
 * inside `ttlMs`.
 */
export interface VersionPin {
  pinId: string;
  version: number;
  /** Epoch ms. */
  expiresAt: number;
  ttlMs: number;
}

/** Limits of a volume, checked by the server at commit and by a mount at the system call. */
export const VOLUME_LIMITS = {
  /** Bytes in one path component (ENAMETOOLONG beyond, as on ext4). */
  maxNameBytes: 255,
  /** Bytes in a whole path (ENAMETOOLONG beyond, as Linux's PATH_MAX). */
  maxPathBytes: 4096,
  /** Bytes in one file, exclusive (EFBIG at or beyond). */
  maxFileBytes: 2 ** 40,
  /** Entries in one directory (ENOSPC beyond). */
  maxDirEntries: 32_768,
  /** Files, directories and symlinks in a volume unless it was created with another `inodeLimit`. */
  defaultInodeLimit: 500_000,
} as const;
