import { BLOCK_SIZE, type Change, type ManifestEntry } from "../../protocol/volume.js";
import { HASH_RE } from "../blobs/index.js";
import { siloError, invalid } from "../errors.js";
import { packHashes } from "./block-index.js";
import type { ManifestStore, Row, VolumeState } from "./manifest-store.js";
import { MAX_PATH_BYTES, ancestors, normalizePath, parentOf } from "./paths.js";

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
 * Applies one commit to a volume's latest version in ONE SQLite transaction: the changed
 * paths' rows are closed (valid_to = new version) and new rows inserted; parents are created
 * as needed. Any failed check (inode limit, directory size, bad entry) rolls everything back.
 */
export function applyCommit(
  store: ManifestStore,
  st: VolumeState,
  changes: readonly Change[],
  limits: VolumeLimits,
  overwrite: Overwrite = "replace",
  now = Date.now(),
): number {
  if (changes.length === 0) return st.latest;
  return store.db.transaction(() => new CommitRun(store, st, limits, overwrite, now).run(changes))();
}

class CommitRun {
  private readonly version: number;
  private inodes: number;
  /** Live child counts of directories this commit added entries to. */
  private readonly dirCounts = new Map<string, number>();
  /** Paths known to be live directories in the new version. */
  private readonly dirs = new Set<string>([""]);

  constructor(
    private readonly store: ManifestStore,
    private readonly st: VolumeState,
    private readonly limits: VolumeLimits,
    private readonly overwrite: Overwrite,
    private readonly now: number,
  ) {
    this.version = st.latest + 1;
    this.inodes = st.inodes;
  }

  run(changes: readonly Change[]): number {
    for (const change of changes) {
      if (change.op === "delete") this.remove(normalizePath(change.path));
      else if (change.op === "put") this.put(change.entry);
      else throw invalid(`Unknown change op ${JSON.stringify((change as { op: unknown }).op)}`);
    }
    if (this.inodes > this.st.inodes && this.inodes > this.limits.inodeLimit) {
      throw siloError(
        "NO_SPACE",
        `ENOSPC: the volume's inode limit of ${this.limits.inodeLimit} files, directories and symlinks would be exceeded (${this.inodes}); nothing was committed`,
      );
    }
    const s = this.store.s;
    s.addVersion.run(this.st.volume, this.version, this.now);
    s.setState.run(this.version, this.inodes, this.st.volume);
    return this.version;
  }

  private live(path: string): Row | undefined {
    return this.store.s.live.get(this.st.volume, path) as Row | undefined;
  }

  /** Ends a live row at this version (or drops it if this very commit created it). */
  private end(row: Row): void {
    const s = this.store.s;
    if (row.valid_from === this.version) {
      s.drop.run(this.st.volume, row.path, row.valid_from);
      this.store.blocks.dropRefs(this.st.workspace, row.blocks);
    } else {
      s.close.run(this.version, this.st.volume, row.path);
    }
    this.inodes--;
    this.dirs.delete(row.path);
    const count = this.dirCounts.get(row.parent);
    if (count !== undefined) this.dirCounts.set(row.parent, count - 1);
  }

  /** Removes a path and, for a directory, everything below it. A missing path is no change. */
  private remove(path: string): void {
    if (path === "") throw invalid("The volume root can not be deleted (delete its contents instead)");
    const row = this.live(path);
    if (!row) return;
    if (row.kind === "directory") {
      for (const child of this.store.liveSubtree(this.st.volume, path)) this.end(child);
      this.dirCounts.clear();
    }
    this.end(row);
  }

  private put(raw: ManifestEntry): void {
    const entry = checkEntry(raw, this.limits);
    const path = entry.path;
    if (path === "") throw invalid("The volume root can not be replaced");
    for (const dir of ancestors(path)) this.ensureDir(dir);
    const existing = this.live(path);
    if (existing) {
      this.checkOverwrite(existing, entry);
      if (existing.kind === "directory" && entry.type === "directory") {
        // Same directory, new attributes: children stay.
        this.end(existing);
      } else {
        this.remove(path);
      }
    }
    this.insert(entry);
  }

  private checkOverwrite(existing: Row, entry: ManifestEntry): void {
    if (this.overwrite === "replace") return;
    const dirOld = existing.kind === "directory";
    const dirNew = entry.type === "directory";
    if (dirOld && dirNew) return;
    if (dirOld) throw invalid(`Can not overwrite directory '${existing.path}' with a ${entry.type}`);
    if (dirNew) throw invalid(`Can not replace ${existing.kind} '${existing.path}' with a directory`);
    if (this.overwrite === "none") {
      throw siloError("ALREADY_EXISTS", `${existing.kind === "file" ? "File" : "Symlink"} '/${existing.path}' already exists (use force to overwrite)`);
    }
  }

  private ensureDir(dir: string): void {
    if (this.dirs.has(dir)) return;
    const row = this.live(dir);
    if (row?.kind === "directory") {
      this.dirs.add(dir);
      return;
    }
    if (row) {
      if (this.overwrite !== "replace") throw invalid(`'${dir}' is a ${row.kind}, not a directory`);
      this.end(row);
    }
    this.insert({ path: dir, type: "directory", mode: DIR_MODE, size: 0, mtimeMs: this.now });
  }

  /** Inserts a row; a replaced row was ended first, so every insert counts as one more child. */
  private insert(entry: ManifestEntry): void {
    const parent = parentOf(entry.path);
    let count = this.dirCounts.get(parent);
    if (count === undefined) count = this.store.s.countChildren.get(this.st.volume, parent) as number;
    if (count + 1 > this.limits.maxDirEntries) {
      throw siloError(
        "NO_SPACE",
        `ENOSPC: directory '${parent || "/"}' would hold more than ${this.limits.maxDirEntries} entries; nothing was committed`,
      );
    }
    this.dirCounts.set(parent, count + 1);
    const blocks = entry.type === "file" ? packHashes(entry.blocks ?? []) : null;
    this.store.blocks.addRefs(this.st.workspace, blocks);
    this.store.s.insert.run(
      this.st.volume,
      entry.path,
      this.version,
      parent,
      entry.type,
      entry.mode,
      entry.size,
      Math.trunc(entry.mtimeMs),
      blocks,
      entry.type === "symlink" ? entry.target : null,
    );
    this.inodes++;
    if (entry.type === "directory") this.dirs.add(entry.path);
  }
}

/** Validates and normalises one put entry. */
function checkEntry(raw: ManifestEntry, limits: VolumeLimits): ManifestEntry {
  const path = normalizePath(raw.path);
  const { type } = raw;
  const mode = raw.mode ?? (type === "directory" ? DIR_MODE : 0o644);
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw invalid(`Invalid mode ${raw.mode} for '${path}'`);
  const mtimeMs = Number.isFinite(raw.mtimeMs) ? raw.mtimeMs : Date.now();
  switch (type) {
    case "directory":
      return { path, type, mode, size: 0, mtimeMs };
    case "symlink": {
      const target = raw.target;
      if (typeof target !== "string" || target === "" || target.includes("\0") || Buffer.byteLength(target) > MAX_PATH_BYTES) {
        throw invalid(`Symlink '${path}' needs a target of 1-${MAX_PATH_BYTES} bytes without NUL`);
      }
      return { path, type, mode, size: Buffer.byteLength(target), mtimeMs, target };
    }
    case "file": {
      const size = raw.size;
      if (!Number.isSafeInteger(size) || size < 0) throw invalid(`Invalid size ${size} for '${path}'`);
      if (size >= limits.maxFileBytes) {
        throw siloError("TOO_LARGE", `File '${path}' is ${size} bytes; files must be smaller than ${limits.maxFileBytes} bytes`);
      }
      const blocks = raw.blocks ?? [];
      if (blocks.length !== Math.ceil(size / BLOCK_SIZE)) {
        throw invalid(`File '${path}' of ${size} bytes needs ${Math.ceil(size / BLOCK_SIZE)} blocks, got ${blocks.length}`);
      }
      for (const h of blocks) if (typeof h !== "string" || !HASH_RE.test(h)) throw invalid(`Invalid block hash ${JSON.stringify(h)}`);
      return { path, type, mode, size, mtimeMs, blocks };
    }
    default:
      throw invalid(`Invalid entry type ${JSON.stringify(type)} for '${path}'`);
  }
}
