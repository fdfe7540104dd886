import { BLOCK_SIZE, type Change, type ManifestEntry, blocksForSize } from "../../protocol/volume.js";
import { HASH_RE } from "../blobs/index.js";
import { siloError, invalid } from "../errors.js";
import { HOLE_LOOKALIKE } from "./block-list.js";
import { MAX_PATH_BYTES, ancestors, normalizePath, parentOf } from "./paths.js";
import { LinkGroups, checkPosixMeta, isSpecial, mtimeMsOf } from "./posix-meta.js";

export interface VolumeLimits {
  inodeLimit: number;
  /** Entries in one directory. */
  maxDirEntries: number;
  /** Bytes in one file (exclusive). */
  maxFileBytes: number;
}

/**
 * What a put may replace. `replace` (mounts, the default): anything, last commit wins; a
 * non-directory put over a directory replaces its subtree. `files`: only files and symlinks
 * (`batchUpload({force: true})`). `none`: nothing but existing directories (`batchUpload()`).
 */
export type Overwrite = "replace" | "files" | "none";

const DIR_MODE = 0o755;

/**
 * What the commit rules need from an engine, inside the engine's transaction (synchronous: an
 * engine runs the whole commit as one atomic step). Reads see this commit's own writes.
 */
export interface CommitTxn {
  /** The version this commit creates (the latest + 1, read inside the transaction). */
  readonly version: number;
  /** Files, directories and symlinks live in the latest version before this commit. */
  readonly inodes: number;
  /** The live entry at a path (including entries this commit wrote). */
  live(path: string): ManifestEntry | undefined;
  /** Live entries strictly below directory `dir`, in path order. */
  liveBelow(dir: string): ManifestEntry[];
  /** Live entries directly in `dir`. */
  childCount(dir: string): number;
  /** Ends the live entry at `path` with this version (its block references go with it). */
  end(path: string): void;
  /**
   * Adds a live entry at its path (nothing is live there) and references its blocks. Returns the
   * stored size of each block the entry names by hash, in order; a block never uploaded → INVALID.
   */
  insert(entry: ManifestEntry): number[];
}

/**
 * Applies one commit's changes through `txn`: the changed paths' entries are ended and new ones
 * inserted; parents are created as needed. Every entry is validated here, inside the transaction
 * (including that a file's size is what its blocks hold); any failed check throws, and the engine
 * rolls everything back. Returns the volume's inode count after the commit.
 */
export function applyCommit(txn: CommitTxn, changes: readonly Change[], limits: VolumeLimits, overwrite: Overwrite, now: number): number {
  return new CommitRun(txn, limits, overwrite, now).run(changes);
}

class CommitRun {
  private inodes: number;
  /** Live child counts of directories this commit added entries to. */
  private readonly dirCounts = new Map<string, number>();
  /** Paths known to be live directories in the new version. */
  private readonly dirs = new Set<string>([""]);
  private readonly links = new LinkGroups();

  constructor(
    private readonly txn: CommitTxn,
    private readonly limits: VolumeLimits,
    private readonly overwrite: Overwrite,
    private readonly now: number,
  ) {
    this.inodes = txn.inodes;
  }

  run(changes: readonly Change[]): number {
    for (const change of changes) {
      if (change?.op === "delete") this.remove(normalizePath(change.path));
      else if (change?.op === "put") this.put(change.entry);
      else throw invalid(`Unknown change op ${JSON.stringify((change as { op?: unknown } | null)?.op)}`);
    }
    if (this.inodes > this.txn.inodes && this.inodes > this.limits.inodeLimit) {
      throw siloError(
        "NO_SPACE",
        `ENOSPC: the volume's inode limit of ${this.limits.inodeLimit} files, directories and symlinks would be exceeded (${this.inodes}); nothing was committed`,
      );
    }
    return this.inodes;
  }

  /** Ends a live entry at this version. */
  private end(entry: ManifestEntry): void {
    this.txn.end(entry.path);
    this.inodes--;
    this.dirs.delete(entry.path);
    const parent = parentOf(entry.path);
    const count = this.dirCounts.get(parent);
    if (count !== undefined) this.dirCounts.set(parent, count - 1);
  }

  /** Removes a path and, for a directory, everything below it. A missing path is no change. */
  private remove(path: string): void {
    if (path === "") throw invalid("The volume root can not be deleted (delete its contents instead)");
    const entry = this.txn.live(path);
    if (!entry) return;
    if (entry.type === "directory") {
      for (const child of this.txn.liveBelow(path)) this.end(child);
      this.dirCounts.clear();
    }
    this.end(entry);
  }

  private put(raw: ManifestEntry): void {
    const entry = checkEntry(raw, this.limits, this.now);
    this.links.add(entry);
    const path = entry.path;
    if (path === "") throw invalid("The volume root can not be replaced");
    for (const dir of ancestors(path)) this.ensureDir(dir);
    const existing = this.txn.live(path);
    if (existing) {
      this.checkOverwrite(existing, entry);
      if (existing.type === "directory" && entry.type === "directory") {
        // Same directory, new attributes: children stay.
        this.end(existing);
      } else {
        this.remove(path);
      }
    }
    this.insert(entry);
  }

  private checkOverwrite(existing: ManifestEntry, entry: ManifestEntry): void {
    if (this.overwrite === "replace") return;
    const dirOld = existing.type === "directory";
    const dirNew = entry.type === "directory";
    if (dirOld && dirNew) return;
    if (dirOld) throw invalid(`Can not overwrite directory '${existing.path}' with a ${entry.type}`);
    if (dirNew) throw invalid(`Can not replace ${existing.type} '${existing.path}' with a directory`);
    if (this.overwrite === "none") {
      throw siloError("ALREADY_EXISTS", `${existing.type === "file" ? "File" : "Symlink"} '/${existing.path}' already exists (use force to overwrite)`);
    }
  }

  private ensureDir(dir: string): void {
    if (this.dirs.has(dir)) return;
    const entry = this.txn.live(dir);
    if (entry?.type === "directory") {
      this.dirs.add(dir);
      return;
    }
    if (entry) {
      if (this.overwrite !== "replace") throw invalid(`'${dir}' is a ${entry.type}, not a directory`);
      this.end(entry);
    }
    this.insert({ path: dir, type: "directory", mode: DIR_MODE, size: 0, mtimeMs: this.now });
  }

  /** Inserts an entry; a replaced one was ended first, so every insert counts as one more child. */
  private insert(entry: ManifestEntry): void {
    const parent = parentOf(entry.path);
    let count = this.dirCounts.get(parent);
    if (count === undefined) count = this.txn.childCount(parent);
    if (count + 1 > this.limits.maxDirEntries) {
      throw siloError(
        "NO_SPACE",
        `ENOSPC: directory '${parent || "/"}' would hold more than ${this.limits.maxDirEntries} entries; nothing was committed`,
      );
    }
    this.dirCounts.set(parent, count + 1);
    const sizes = this.txn.insert(entry);
    if (entry.type === "file") checkBlockSizes(entry, sizes);
    this.inodes++;
    if (entry.type === "directory") this.dirs.add(entry.path);
  }
}

/**
 * A file's size must be what its blocks hold: every block but the last is BLOCK_SIZE bytes, the
 * last holds the rest (holes are as long as their place). Otherwise a reader would be promised
 * bytes that are not there (and wait for them).
 */
function checkBlockSizes(entry: ManifestEntry, sizes: readonly number[]): void {
  const n = blocksForSize(entry.size);
  let i = 0;
  let k = 0;
  for (const b of entry.blocks ?? []) {
    if (typeof b === "number") {
      i += b;
      continue;
    }
    const expected = i < n - 1 ? BLOCK_SIZE : entry.size - (n - 1) * BLOCK_SIZE;
    const actual = sizes[k++]!;
    if (actual !== expected) {
      throw invalid(
        `File '${entry.path}' of ${entry.size} bytes needs block ${i} (${b}) to hold ${expected} bytes, but it holds ${actual}; nothing was committed`,
      );
    }
    i++;
  }
}

/** Validates and normalises one put entry. */
function checkEntry(raw: ManifestEntry, limits: VolumeLimits, now: number): ManifestEntry {
  if (typeof raw !== "object" || raw === null) throw invalid("A put needs an entry");
  const path = normalizePath(raw.path);
  const { type } = raw;
  const mode = raw.mode ?? (type === "directory" ? DIR_MODE : 0o644);
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw invalid(`Invalid mode ${raw.mode} for '${path}'`);
  const meta = checkPosixMeta(raw, path);
  // mtimeMs restates mtimeNs for readers that do not know it, so it follows it.
  const mtimeMs = mtimeMsOf(meta.mtimeNs, Number.isFinite(raw.mtimeMs) ? raw.mtimeMs : now);
  if (isSpecial(type)) {
    if ((raw.size ?? 0) !== 0 || (raw.blocks !== undefined && (!Array.isArray(raw.blocks) || raw.blocks.length > 0)) || raw.target !== undefined) {
      throw invalid(`'${path}' is a ${type}: special files carry no bytes (size 0, no blocks, no target)`);
    }
    return { path, type, mode, size: 0, mtimeMs, ...meta };
  }
  switch (type) {
    case "directory":
      return { path, type, mode, size: 0, mtimeMs, ...meta };
    case "symlink": {
      const target = raw.target;
      if (typeof target !== "string" || target === "" || target.includes("\0") || Buffer.byteLength(target) > MAX_PATH_BYTES) {
        throw invalid(`Symlink '${path}' needs a target of 1-${MAX_PATH_BYTES} bytes without NUL`);
      }
      return { path, type, mode, size: Buffer.byteLength(target), mtimeMs, target, ...meta };
    }
    case "file": {
      const size = raw.size;
      if (!Number.isSafeInteger(size) || size < 0) throw invalid(`Invalid size ${size} for '${path}'`);
      if (size >= limits.maxFileBytes) {
        throw siloError("TOO_LARGE", `File '${path}' is ${size} bytes; files must be smaller than ${limits.maxFileBytes} bytes`);
      }
      const blocks = raw.blocks ?? [];
      if (!Array.isArray(blocks)) throw invalid(`Blocks of '${path}' must be a list`);
      const needed = blocksForSize(size);
      let covered = 0;
      for (const b of blocks) {
        if (typeof b === "number") {
          if (!Number.isSafeInteger(b) || b < 1) throw invalid(`Invalid hole ${b} in '${path}': a hole is a whole number of blocks ≥ 1`);
          covered += b;
        } else {
          if (typeof b !== "string" || !HASH_RE.test(b) || b.startsWith(HOLE_LOOKALIKE)) throw invalid(`Invalid block hash ${JSON.stringify(b)} in '${path}'`);
          covered++;
        }
        if (covered > needed) break;
      }
      if (covered !== needed) {
        throw invalid(`File '${path}' of ${size} bytes needs ${needed} blocks (hashes or holes), its list covers ${covered}`);
      }
      return { path, type, mode, size, mtimeMs, blocks, ...meta };
    }
    default:
      throw invalid(`Invalid entry type ${JSON.stringify(type)} for '${path}'`);
  }
}
