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
  /** Each part has `data`, a `url`, or `zeros: true` (a hole: `end - start` zero bytes, nothing to fetch). */
  parts: Array<{ data?: Uint8Array; url?: string; zeros?: true; start: number; end: number }>;
  /** File offset to ask for next (one answer covers a bounded number of blocks); absent when done. */
  next?: number;
}

/**
 * What a path names. `fifo`, `socket`, `char` and `block` are special files: metadata only (no
 * bytes, size 0); devices carry their device number in `rdev`.
 */
export type EntryType = "file" | "directory" | "symlink" | "fifo" | "socket" | "char" | "block";

/** Entry types that are metadata only (no blocks, no target, size 0). */
export const SPECIAL_TYPES: readonly EntryType[] = ["fifo", "socket", "char", "block"];

/**
 * A point in time in nanoseconds since the epoch, as a decimal string (integer, may be negative):
 * nanosecond times pass 2^53, so a JSON number cannot hold them. `BigInt(t)` reads one.
 */
export type TimeNs = string;

/** The ns time an entry carries, or its ms time widened (entries written before ns times). */
export function timeNsOf(ns: TimeNs | undefined, ms: number): bigint {
  return ns !== undefined ? BigInt(ns) : BigInt(Math.round(ms)) * 1_000_000n;
}

/**
 * One item of a file's block list: a block's hex SHA-256, or a whole number n ≥ 1 standing for
 * n blocks of zeros (a hole). Holes are stored and sent as one number however long they are,
 * so a huge sparse file costs what its data costs. A hole block is as long as its place in the
 * file says (BLOCK_SIZE, or less at the end of the file); it names no stored block.
 */
export type BlockRef = string | number;

/** How many BLOCK_SIZE blocks a block list covers (hole runs count their length). */
export function blockListLength(blocks: readonly BlockRef[]): number {
  let n = 0;
  for (const b of blocks) n += typeof b === "number" ? b : 1;
  return n;
}

/** Block i of a file after the other: its hash, or null for a block of zeros. */
export function* expandBlocks(blocks: readonly BlockRef[]): Generator<string | null> {
  for (const b of blocks) {
    if (typeof b === "string") yield b;
    else for (let i = 0; i < b; i++) yield null;
  }
}

/** The block list of per-block hashes (null = zeros): runs of zero blocks become one hole item. */
export function compactBlocks(hashes: Iterable<string | null>): BlockRef[] {
  const out: BlockRef[] = [];
  for (const h of hashes) {
    if (h !== null) out.push(h);
    else if (typeof out[out.length - 1] === "number") (out[out.length - 1] as number)++;
    else out.push(1);
  }
  return out;
}

/** Blocks a file of `size` bytes is cut into. */
export const blocksForSize = (size: number): number => Math.ceil(size / BLOCK_SIZE);

// Paths in a volume (ManifestEntry.path): relative, `/`-separated, the root "".

/** The directory holding `path` ("" for a name in the root). */
export function parentOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "" : path.slice(0, i);
}

/** The last name of `path`. */
export function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

export function joinPath(dir: string, name: string): string {
  return dir === "" ? name : `${dir}/${name}`;
}

/** Every proper ancestor of a path, outermost first, excluding the root. */
export function ancestors(path: string): string[] {
  const out: string[] = [];
  for (let i = path.indexOf("/"); i >= 0; i = path.indexOf("/", i + 1)) out.push(path.slice(0, i));
  return out;
}

/** One path in one version of a volume. */
export interface ManifestEntry {
  /** Normalised relative path: no leading `/`, no `.`/`..` segments, `/`-separated. The root is implicit. */
  path: string;
  type: EntryType;
  /** Permission bits with setuid/setgid/sticky (`mode & 0o7777`, e.g. 0o644, 0o2775); never the type bits. */
  mode: number;
  /** Bytes (files); 0 for directories and special files; target length for symlinks. */
  size: number;
  /** Modification time in epoch ms (kept for readers that do not know `mtimeNs`; equal to it rounded down). */
  mtimeMs: number;
  /** Owner and group; absent means 0 (root), as every entry written before POSIX metadata. */
  uid?: number;
  gid?: number;
  /** Nanosecond times. Absent: `mtimeMs` stands for all three (entries written before ns times). */
  mtimeNs?: TimeNs;
  atimeNs?: TimeNs;
  ctimeNs?: TimeNs;
  /** Device number of `char` and `block` entries (Linux's encoding, as `st_rdev`). */
  rdev?: number;
  /**
   * Hard links: entries of one version with the same `linkId` are one inode with several names
   * (nlink = their count); they carry identical content and metadata. An opaque id the committer
   * makes up (random, so two mounts never pick the same one). A reader that finds entries of one
   * `linkId` differing (concurrent commits merged per path) treats them as separate files.
   */
  linkId?: string;
  /** Extended attributes: full name (`user.x`, `trusted.x`, `security.x`) → value, base64. */
  xattrs?: Record<string, string>;
  /**
   * Files: the blocks in order (empty for an empty file): each a hex SHA-256, or a number n for n
   * blocks of zeros (see BlockRef). The server refuses a commit unless the list covers exactly
   * `size` bytes: every block but the last holds BLOCK_SIZE bytes, the last the rest.
   */
  blocks?: BlockRef[];
  /** Symlinks: the link target, stored verbatim. */
  target?: string;
}

/**
 * One change in a commit or delta. A `put` creates or replaces the entry at its path (each name
 * of a hard-linked file is put with the same `linkId`); a `delete` removes a path,
 * and everything below it when it is a directory.
 */
export type Change = { op: "put"; entry: ManifestEntry } | { op: "delete"; path: string };

export interface CommitRequest {
  /** The version the committer's view was based on (concurrent commits merge per path: last wins). */
  baseVersion: number;
  changes: Change[];
}

/** A block the server composed from a base and written ranges (ComposeBlockBody): stored, as an upload is. */
export interface ComposedBlock {
  hash: string;
  size: number;
}

export interface CommitResult {
  version: number;
}

/** One retained version of a volume, as `history` lists it. */
export interface VersionInfo {
  version: number;
  /** Epoch ms of the commit. */
  createdAt: number;
  /** Id of the token that committed it (absent for version 0 and versions committed before silo recorded it). */
  tokenId?: string;
  /** Set by the server for versions it made itself: "restore of /p from version 3", "fork of vo-… at version 5". */
  note?: string;
  /** Paths this version created or replaced: how many, and the first (in path order) of them. */
  put: { count: number; paths: string[] };
  /** Paths this version removed (and did not put again). */
  removed: { count: number; paths: string[] };
  /** The oldest retained version: what it removed was dropped with the versions before it, so `removed` is empty. */
  partial?: boolean;
}

/** A page of a volume's history, newest first. */
export interface HistoryPage {
  versions: VersionInfo[];
  /** Pass as `before` to get the next (older) page; absent on the last page. */
  next?: number;
}

/** What `restore` did: the new version, or the latest unchanged when the path already was as in that version. */
export interface RestoreResult {
  version: number;
  /** Paths put back or removed. */
  changes: number;
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
  defaultInodeLimit: 10_000_000,
  /** Bytes of an extended attribute's name, namespace prefix included (ERANGE beyond, as XATTR_NAME_MAX). */
  maxXattrNameBytes: 255,
  /** Bytes of one extended attribute's value (a mount answers ENOSPC beyond, as ext4 with 4 KiB blocks does when its attribute block is full). */
  maxXattrValueBytes: 4000,
  /** Bytes of all of one inode's attribute names and values together (ENOSPC beyond, as ext4's one xattr block). */
  maxXattrTotalBytes: 4000,
  /** Names of one inode (EMLINK beyond, as ext4's EXT4_LINK_MAX). */
  maxLinks: 65_000,
} as const;
