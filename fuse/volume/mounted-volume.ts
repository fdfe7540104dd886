import type { Listing } from "./listing.js";
import { VersionGoneError } from "../../protocol/errors.js";
import { ancestors, type Change, type Delta, type ManifestEntry, parentOf } from "../../protocol/volume.js";
import { AsyncLock } from "./async-lock.js";
import { CommittedEntries } from "./committed-entries.js";
import type { BlockUploader } from "../../client/block-uploader.js";
import { forEachLimit } from "../../client/limit.js";
import { withRetry } from "./commit-retry.js";
import { blockCount, blockListOf, type ContentStore, FileContent, type FileSnapshot, HOLE, isZeros, sha256, upperName, zeroHash } from "./file-content.js";
import { Extents } from "./extents.js";
import type { ClaimedJournal, Journal, JournalRecord } from "./journal.js";
import { DEFAULT_INODE_CACHE } from "./inode-cache.js";
import { DirLoader, type LoadTarget } from "./lazy-load.js";
import { TreeCache, type TreeCacheHost } from "./tree-cache.js";
import { DirNode, entryOf, FileNode, LinkNode, Namespace, type Node, sameEntry, SpecialNode, statFields, statOf, unlinkOne } from "./namespace.js";
import type { VolumeRemote } from "./remote.js";

/** A reload was refused because files are open (mapped to VolumeBusyError by clients). */
export class VolumeBusy extends Error {
  readonly code = "VOLUME_BUSY";
}

export interface CommitOutcome {
  /** The version that now holds this mount's changes (unchanged if there were none). */
  version: number;
  changes: number;
}

export interface MountStatus {
  volume: string | null;
  volumeId: string;
  version: number;
  dirtyPaths: number;
  openFiles: number;
  inodes: number;
  inodeLimit: number;
  /** Directories whose entries were read from the server so far (the tree loads on demand). */
  loadedDirs: number;
  /** Of those, reads of a directory unloaded before. */
  rereadDirs: number;
  /** A walk's read-ahead (lazy-load.ts): loads started, under way, directories ahead of the walk (kept loaded) and their entries. */
  readAhead: { dirs: number; loading: number; ahead: number; aheadEntries: number };
  /** Entries of loaded directories held in memory (the inode cache: tree-cache.ts), its limit, and directories it unloaded. */
  cachedInodes: number;
  /** The most `cachedInodes` came to since the mount started. */
  cachedInodesPeak: number;
  inodeCacheLimit: number;
  unloadedDirs: number;
  lastCommitError: string | null;
  /** Why the last write of the journal failed (a full local disk), until one succeeds. */
  lastJournalError: string | null;
}

/**
 * Blocks of one file read and hashed at a time; the next batch is read while one uploads
 * (bounded memory: 2 × 4 × 8 MiB besides the uploader's 64 MiB).
 */
const UPLOAD_BATCH = 4;
/** Blocks the server composes at once for one file (each request holds at most 2 MiB of written bytes). */
const COMPOSE_REQUESTS = 8;
const TREE_PAGE = 5_000;
/** Appended journal bytes after which the log is rewritten even without a successful commit. */
export const JOURNAL_COMPACT_BYTES = 32 * 1024 * 1024;

/**
 * One mounted volume: its tree (committed version + local changes), open file handles, and
 * commit/reload. The FUSE layer (fuse-ops.ts) is a thin translation onto this.
 */
export class MountedVolume implements LoadTarget, TreeCacheHost {
  readonly ns = new Namespace(Number.MAX_SAFE_INTEGER);
  /** Reads directories when something first needs their entries (lazy-load.ts). */
  readonly loader = new DirLoader(this);
  /** Unloads the least recently used clean directories past the inode cache limit (tree-cache.ts). */
  readonly tree = new TreeCache(this, DEFAULT_INODE_CACHE);
  /**
   * Directories with entries committed here in a version the view did not move to (another
   * client committed in between): a read at the view would not give those back, so they stay
   * loaded until a catch-up moves the view past them.
   */
  private readonly aheadDirs = new Set<string>();
  /** The committed entries this mount last saw, by path (decides what a commit must send). */
  private readonly base = new CommittedEntries();
  /** The version whose changes the tree fully reflects (a reload asks for the delta from here). */
  viewVersion = 0;
  /**
   * Files pending or open here when the view moved on, with the view they had been seen at: a
   * version naming every committed block they refer to (unchanged blocks, bases of partial
   * blocks), which the server may keep only for as long as the mount's pin holds it
   * (heldVersion). A file not here refers only to blocks the view or a later version names.
   */
  private readonly heldFrom = new Map<FileContent, number>();
  private readonly handles = new Map<number, { node: FileNode; write: boolean }>();
  private nextHandle = 1;
  /** Hard-linked nodes changed since the last commit: every name of theirs must be committed. */
  private readonly linkedChanged = new Set<Node>();
  private readonly commitLock = new AsyncLock();
  /** Paths of the commit under way (pending until it is acknowledged). */
  private readonly inCommit = new Set<string>();
  private journal: Journal | undefined;
  lastCommitError: string | null = null;
  lastJournalError: string | null = null;
  warn: (msg: string) => void = (msg) => process.stderr.write(`${msg}\n`);
  /** Appended journal bytes after which a flush also rewrites the log (`SILO_JOURNAL_COMPACT_BYTES`). */
  journalCompactBytes = JOURNAL_COMPACT_BYTES;
  private compactFailing = false;
  /** Commits that sent changes, and failed ones, since the mount started, with their durations. */
  readonly commitStats = { commits: 0, failures: 0, lastCommitMs: 0, totalCommitMs: 0, lastCommitAt: 0 };

  constructor(
    readonly remote: VolumeRemote,
    readonly store: ContentStore,
  ) {
    // Unloading waits while operations await loads: the last one going on is its next chance.
    this.loader.onIdle = () => this.tree.soon();
  }

  /**
   * Mounts a committed version (the daemon pins it first): reads its root directory; the rest
   * loads as it is needed (lazy-load.ts).
   */
  async load(version: number): Promise<void> {
    const info = await this.remote.info();
    this.ns.inodeLimit = info.inodeLimit;
    // The server's count (of the latest version, which the pin just took): loads add nothing to it.
    this.ns.inodes = info.inodes;
    this.viewVersion = version;
    this.ns.root.loaded = false;
    await this.loader.ensure("");
  }

  committedDir(dir: string, listing: Listing): void {
    this.base.setDir(dir, listing);
    const node = this.ns.lookup(dir);
    if (node?.type === "directory") this.tree.loaded(dir, node, listing.size);
  }

  // ---- the inode cache (TreeCacheHost) ----

  loading(): boolean {
    return this.loader.loading > 0;
  }

  readAhead(dir: DirNode): boolean {
    return this.loader.isAhead(dir);
  }

  inodeCacheLimit(): number {
    return this.tree.cache.limit;
  }

  *pinnedPaths(): Iterable<string> {
    yield* this.ns.dirty;
    yield* this.inCommit;
    yield* this.aheadDirs;
  }

  pristine(c: FileContent): boolean {
    return (
      c.openHandles === 0 &&
      c.snap === null &&
      c.upperPath === null &&
      c.inline === null &&
      c.local.size === 0 &&
      c.partial.size === 0 &&
      c.untrackedWriters === 0 &&
      c.lock.idle &&
      c.clean &&
      !this.heldFrom.has(c)
    );
  }

  unloaded(dir: string): void {
    this.base.dropDir(dir);
  }

  /**
   * Directories that came whole without a load (made here and now committed, or brought by a
   * reload) join the inode cache like loaded ones, so that they too may go once cold.
   */
  private cacheDirs(entries: readonly ManifestEntry[]): void {
    for (const e of entries) {
      if (e.type !== "directory") continue;
      const node = this.ns.lookup(e.path);
      if (node?.type === "directory" && node.loaded && !this.tree.cache.has(node)) this.tree.loaded(e.path, node, node.children.size);
    }
  }

  // ---- handles ----

  openHandle(node: FileNode, write: boolean): number {
    const fd = this.nextHandle++;
    if (this.nextHandle > 0x7fffffff) this.nextHandle = 1;
    this.handles.set(fd, { node, write });
    node.content.openHandles++;
    return fd;
  }

  handle(fd: number): FileNode | undefined {
    return this.handles.get(fd)?.node;
  }

  /**
   * Frees handle `fd`; the last handle of a file closes its upper file. Synchronous when nothing
   * holds the file's lock (nothing can run in between, as under it): a close(2) of a small file
   * is answered without promise jobs.
   */
  closeHandle(fd: number): void | Promise<void> {
    const h = this.handles.get(fd);
    if (!h) return;
    this.handles.delete(fd);
    const c = h.node.content;
    if (--c.openHandles !== 0) return;
    if (h.node.nlink > 0 && c.lock.idle) return this.store.closeUpperNow(c);
    return c.lock.run(() => (h.node.nlink > 0 ? this.store.closeUpper(c) : this.store.discard(c)));
  }

  get openFiles(): number {
    return this.handles.size;
  }

  /** Records that a node's bytes or attributes changed (all its names, if it was ever hard-linked). */
  changed(path: string | undefined, node: Node): void {
    if (path !== undefined) this.ns.touch(path);
    if (node.type !== "directory" && node.linkId !== undefined && node.nlink > 0 && !this.linkedChanged.has(node)) {
      this.linkedChanged.add(node);
      // The journal records every name once (replay joins the names by linkId and takes the newest state).
      for (const [p, n] of this.ns.walkMade()) if (n === node) this.ns.touch(p);
    }
  }

  /** Frees what a node that left the tree held, once nothing uses it any more. */
  async dropped(node: Node | undefined): Promise<void> {
    await this.droppedNow(node);
  }

  /** dropped, synchronously for a file that needs nothing closed or removed at once (an unlinked small file). */
  droppedNow(node: Node | undefined): void | Promise<void> {
    if (node?.type === "file") {
      if (node.nlink <= 0 && node.content.openHandles === 0) return this.store.discardNow(node.content);
      return;
    }
    return this.droppedTree(node);
  }

  private async droppedTree(node: Node | undefined): Promise<void> {
    if (node?.type !== "directory") return;
    for (const child of node.children.values()) {
      unlinkOne(child);
      await this.dropped(child);
    }
  }

  // ---- journal ----

  /** Keeps a local journal of every change until a commit acknowledges it. */
  attachJournal(journal: Journal): void {
    this.journal = journal;
    this.store.deferRemoval = true;
    this.ns.onTouch = (p) => journal.mark(p);
  }

  /**
   * Writes the journal (`write` captures and appends), then removes upper files it no longer
   * names. If it cannot be written (a full local disk), they stay: an older record may name them.
   */
  private async journaled(write: (j: Journal, freesSpace: boolean) => Promise<void>): Promise<void> {
    const j = this.journal;
    if (!j) return;
    const dead = this.store.takeUnreferenced();
    try {
      // With upper files to remove after it, the write frees space: it may use the journal's reserve.
      await write(j, dead.length > 0);
    } catch (err) {
      this.store.stillReferenced(dead);
      this.lastJournalError = (err as Error).message;
      throw err;
    }
    this.lastJournalError = null;
    await this.store.reap(dead);
  }

  /**
   * The journal record of a path's current state; null when an acknowledged commit holds it (a
   * path marked before a commit and flushed after it): replayed, such a record would put the
   * committed state back over a later change by another client.
   */
  recordOf(path: string): JournalRecord | null {
    const node = this.ns.lookup(path);
    if (!this.ns.dirty.has(path) && !this.inCommit.has(path) && !(node && node.type !== "directory" && this.linkedChanged.has(node))) return null;
    if (!node) return { op: "gone", path };
    switch (node.type) {
      case "directory":
        return { op: "dir", path, ...statFields(node) };
      case "symlink":
        return { op: "symlink", path, ...statFields(node), target: node.target };
      case "fifo":
      case "socket":
      case "char":
      case "block":
        return { op: "special", path, ...statFields(node), type: node.type, rdev: node.rdev };
      default: {
        const c = node.content;
        const known: Array<[number, string, number?]> = [];
        for (let i = 0; i < c.hashes.length; i++) {
          const h = c.hashes[i];
          if (!h) continue;
          let run = 1;
          while (c.hashes[i + run] === h) run++;
          known.push(run > 1 ? [i, h, run] : [i, h]);
          i += run - 1;
        }
        const record: JournalRecord = { op: "file", path, ...statFields(node), size: c.size, upper: upperName(c), known, local: [...c.local] };
        if (c.partial.size) record.partial = [...c.partial].map(([i, p]) => [i, p.base, p.baseLen, p.written.toJSON()]);
        // Changed inline bytes travel in the record (committed ones are on the server: `known`).
        // `local: [0]` without an upper file makes a daemon that predates `inline` fail to read
        // the file rather than take it for zeros.
        if (c.inline && c.hashes[0] === null) {
          record.inline = c.inline.toString("base64");
          record.local = [0];
        }
        if (c.refersToCommitted) record.from = this.heldFrom.get(c) ?? this.viewVersion;
        return record;
      }
    }
  }

  /** close(2) of a file on the mount (FUSE flush): everything done so far survives a dead daemon. */
  async flush(): Promise<void> {
    await this.flushNow();
  }

  /**
   * flush, synchronously in the usual case (nothing else holds the log, no upper file waits for
   * removal, no rewrite due): the same append, with no promise jobs before close(2) is answered.
   */
  flushNow(): void | Promise<void> {
    const j = this.journal;
    if (!j) return;
    if (!j.idle || this.store.hasUnreferenced) return this.flushLater();
    try {
      j.flushNow();
    } catch (err) {
      this.lastJournalError = (err as Error).message;
      throw err;
    }
    this.lastJournalError = null;
    if (j.appended > this.journalCompactBytes) return this.compact();
  }

  private async flushLater(): Promise<void> {
    await this.journaled((j, freesSpace) => j.flush(freesSpace));
    await this.compact();
  }

  private async compact(): Promise<void> {
    // Commits failing for long (server away) must not let the log grow without bound: rewrite it
    // to the pending paths' current state, as a successful commit would. The flush above already
    // made everything durable, so a rewrite that fails (no room for the new log) does not fail the
    // close; the old log stands and the next flush tries again.
    if (this.journal && this.journal.appended > this.journalCompactBytes) {
      await this.journaled((j) => j.checkpoint(this.unacknowledged())).then(
        () => (this.compactFailing = false),
        (err: Error) => {
          this.lastJournalError = null;
          // Said once: on a full disk each log line takes space the journal needs.
          if (!this.compactFailing) this.warn(`the journal could not be compacted (it grows until it can): ${err.message}`);
          this.compactFailing = true;
        },
      );
    }
  }

  /** fsync(2)/fsyncdir(2): the file's bytes and every change so far survive a power cut. */
  async fsync(fd?: number): Promise<void> {
    const node = fd === undefined ? undefined : this.handle(fd);
    if (node) await this.store.sync(node.content);
    await this.journaled((j, freesSpace) => j.sync(freesSpace));
  }

  /**
   * Replays orphaned journals (a dead daemon's, or a failed final commit's) onto the loaded tree:
   * their paths become pending changes of this mount, committed by its next commit.
   */
  async replay(claims: ClaimedJournal[]): Promise<number> {
    const journal = this.journal;
    if (!journal) throw new Error("replay needs a journal");
    let n = 0;
    const placed = new Set<FileNode>();
    for (const claim of claims) {
      // Names of one file: by link id (hard links), else by upper file (states of one file's bytes).
      const byUpper = new Map<string, FileNode>();
      // Hard-linked symlinks and special files: one node per link id.
      const byLinkId = new Map<string, LinkNode | SpecialNode>();
      const placeLinked = (path: string, fresh: LinkNode | SpecialNode) => {
        const node = fresh.linkId ? (byLinkId.get(fresh.linkId) ?? fresh) : fresh;
        if (fresh.linkId) byLinkId.set(fresh.linkId, node);
        node.setStat(fresh);
        if (this.ns.lookup(path) === node) return;
        if (node !== fresh) node.nlink++;
        this.ns.applyNode(path, node);
      };
      for (const r of claim.records) {
        n++;
        // The record's directory as the view has it, so a later load cannot undo the record.
        await this.loader.ensure(parentOf(r.path));
        switch (r.op) {
          case "gone":
            this.ns.applyDelete(r.path);
            break;
          case "dir":
            this.ns.applyNode(r.path, new DirNode(statOf(r)));
            break;
          case "symlink":
            placeLinked(r.path, Object.assign(new LinkNode(r.target, statOf(r)), { linkId: r.linkId }));
            break;
          case "special":
            placeLinked(r.path, Object.assign(new SpecialNode(r.type, r.rdev, statOf(r)), { linkId: r.linkId }));
            break;
          case "file": {
            const hashes = new Array<string | null>(blockCount(r.size)).fill(null);
            for (const [i, h, run] of r.known) for (let k = 0; k < (run ?? 1); k++) hashes[i + k] = h;
            const key = r.linkId ?? r.upper;
            let node = key ? byUpper.get(key) : undefined;
            const adopt = async (c: FileContent, upper: string): Promise<boolean> => {
              const adopted = await journal.adoptUpper(claim.upperPath(upper), upper).catch((err: NodeJS.ErrnoException) => {
                if (err.code !== "ENOENT") throw err;
                return undefined;
              });
              // Never expected (upper files outlive every record naming them); skip rather than refuse to mount.
              if (!adopted) this.warn(`journal of ${claim.dir} names a missing local copy of '${r.path}'; skipped`);
              else this.store.adoptUpper(c, adopted);
              return adopted !== undefined;
            };
            if (node) {
              // A hard link, or a later state of the same bytes: the newest record describes them.
              const c = node.content;
              if (r.upper && upperName(c) !== r.upper && !(await adopt(c, r.upper))) continue;
              c.size = r.size;
              c.hashes = hashes;
              c.local.clear();
              c.partial.clear();
              this.store.setInline(c, null);
              node.setStat(statOf(r));
              node.linkId = r.linkId;
              if (this.ns.lookup(r.path) !== node) node.nlink++;
            } else {
              const c = new FileContent(r.size, hashes);
              if (r.upper && !(await adopt(c, r.upper))) continue;
              node = new FileNode(statOf(r), c);
              node.linkId = r.linkId;
              node.nlink = 0;
              if (key) byUpper.set(key, node);
            }
            if (r.inline !== undefined) this.store.setInline(node.content, Buffer.from(r.inline, "base64"));
            else for (const i of r.local) node.content.local.add(i);
            for (const [i, base, baseLen, written] of r.partial ?? []) node.content.partial.set(i, { base, baseLen, written: new Extents(written) });
            // The version the dead mount held for these blocks (the daemon moves its pin back to it if the server still keeps it).
            if (r.from !== undefined) this.heldFrom.set(node.content, r.from);
            else this.heldFrom.delete(node.content);
            if (this.ns.lookup(r.path) !== node) {
              if (node.nlink === 0) node.nlink = 1;
              this.ns.applyNode(r.path, node);
            }
            placed.add(node);
            break;
          }
        }
        this.ns.touch(r.path);
      }
    }
    // Bytes no path names any more (deleted after their last record) go only now: a later record may still have named them.
    for (const node of placed) if (node.nlink <= 0) await this.store.discard(node.content);
    // Names of one node whose records came in several commits' worth: commit every name again.
    for (const [, node] of this.ns.walkMade()) if (node.type !== "directory" && node.linkId !== undefined && node.nlink > 1) this.linkedChanged.add(node);
    return n;
  }

  // ---- commit ----

  /**
   * Uploads changed blocks and commits every changed path as one new version. Transient failures
   * (server restarting, unreachable, 5xx) are retried with backoff for up to `retryForMs`.
   */
  commit(opts: { retryForMs?: number; log?: (msg: string) => void } = {}): Promise<CommitOutcome> {
    return this.commitLock.run(async () => {
      const started = performance.now();
      const recordTime = () => {
        this.commitStats.lastCommitMs = performance.now() - started;
        this.commitStats.totalCommitMs += this.commitStats.lastCommitMs;
      };
      try {
        const outcome = await withRetry(() => this.commitNow(), {
          forMs: opts.retryForMs ?? 0,
          onRetry: (err, ms) => opts.log?.(`commit failed (${err.message}); retrying in ${ms} ms`),
        });
        if (outcome.changes > 0) {
          recordTime();
          this.commitStats.commits++;
          this.commitStats.lastCommitAt = Date.now();
        }
        return outcome;
      } catch (err) {
        recordTime();
        this.commitStats.failures++;
        throw err;
      }
    });
  }

  /** Every path a checkpoint must keep: changed, in a commit not yet acknowledged, or a name of a changed hard-linked file. */
  private unacknowledged(): Set<string> {
    const out = new Set([...this.ns.dirty, ...this.inCommit]);
    if (this.linkedChanged.size) for (const [p, n] of this.ns.walkMade()) if (this.linkedChanged.has(n)) out.add(p);
    return out;
  }

  /** Whether a commit or reload runs or waits (a background commit then skips its turn). */
  get committing(): boolean {
    return !this.commitLock.idle;
  }

  /** Paths with changes no acknowledged commit holds (status, unmount messages). */
  get pendingPaths(): number {
    return this.ns.dirty.size + this.inCommit.size;
  }

  private async commitNow(): Promise<CommitOutcome> {
    if (this.linkedChanged.size) {
      for (const [p, n] of this.ns.walkMade()) if (this.linkedChanged.has(n)) this.ns.touch(p);
      this.linkedChanged.clear();
    }
    // Prefer an instant between file operations: give writes in flight on dirty files a moment to land.
    for (let round = 0; round < 3; round++) {
      const busy: FileContent[] = [];
      for (const p of this.ns.dirty) {
        const node = this.ns.lookup(p);
        if (node?.type === "file" && !node.content.lock.idle) busy.push(node.content);
      }
      if (busy.length === 0) break;
      await Promise.all(busy.map((c) => c.lock.drained()));
    }
    // ---- The snapshot: one synchronous step, so it is one instant of the whole tree. ----
    const paths = [...this.ns.dirty].sort();
    this.ns.dirty.clear();
    const logAt = this.journal?.position();
    if (paths.length === 0) return { version: this.viewVersion, changes: 0 };
    const files = new Map<FileContent, { snap: FileSnapshot; reads: number[]; hashes: string[] }>();
    const items: Array<{ path: string; node: Node | undefined; meta?: ManifestEntry }> = [];
    for (const p of paths) {
      const node = this.ns.lookup(p);
      if (node?.type === "file" && !files.has(node.content)) {
        const snap = this.store.snapshot(node.content);
        files.set(node.content, { snap, reads: [...snap.pending], hashes: [] });
      }
      items.push({ path: p, node, meta: node ? entryOf(p, node) : undefined });
      this.inCommit.add(p);
    }
    // ---- From here on writers go on; they copy aside what this commit still has to read. ----
    try {
      const uploader = this.remote.uploader();
      for (const [c, f] of files) f.hashes = await this.hashSnapshot(c, f.snap, f.reads, uploader);
      await uploader.flush();
      const deletes: string[] = [];
      const puts: ManifestEntry[] = [];
      /** Files whose entry this commit sends: once acknowledged, the new version names every block they refer to. */
      const sent = new Set<FileContent>();
      for (const { path, node, meta } of items) {
        const before = this.base.get(path);
        if (!node || !meta) {
          if (before) deletes.push(path);
          continue;
        }
        const entry = node.type === "file" ? { ...meta, size: files.get(node.content)!.snap.size, blocks: blockListOf(files.get(node.content)!.hashes) } : meta;
        if (before && before.type !== entry.type) deletes.push(path);
        if (!before || !sameEntry(before, entry)) {
          puts.push(entry);
          if (node.type === "file") sent.add(node.content);
        }
      }
      // A delete takes everything below it: drop deletes already covered by an ancestor's.
      const deleted = new Set<string>();
      const changes: Change[] = [];
      for (const p of deletes) {
        if (ancestors(p).some((a) => deleted.has(a))) continue;
        deleted.add(p);
        changes.push({ op: "delete", path: p });
      }
      for (const entry of puts) changes.push({ op: "put", entry });
      let version = this.viewVersion;
      if (changes.length > 0) {
        ({ version } = await this.remote.commitChanges({ baseVersion: this.viewVersion, changes }));
        for (const p of deleted) this.base.delete(p);
        for (const e of puts) this.base.set(e);
        this.cacheDirs(puts);
        // Only if nobody else committed in between does our tree equal the new version.
        // (The new version names every file in the tree: only unlinked open ones may need an older one.)
        if (version === this.viewVersion + 1) this.moveView(version, new Set());
        else for (const c of changes) this.aheadDirs.add(parentOf(c.op === "put" ? c.entry.path : c.path));
        // Their blocks are in the new version now (partial blocks move onto its blocks just
        // below), which is not older than the view: nothing older is held for them.
        for (const c of sent) this.heldFrom.delete(c);
      }
      // Blocks unchanged since the snapshot now hold what the server has.
      for (const [c, f] of files) this.store.acknowledge(c, f.snap, f.hashes);
      // A passthrough writer's mapping may change bytes unseen while it is open (passthrough.ts):
      // its file stays pending, in the journal too, with no hash taken for its blocks.
      for (const { path, node } of items) if (node?.type === "file" && node.content.untrackedWriters > 0) this.ns.touch(path);
      this.lastCommitError = null;
      for (const p of paths) this.inCommit.delete(p);
      // The journal keeps only what no acknowledged commit holds. If it cannot be rewritten (a
      // full local disk), the commit stands all the same (the server has it) and the journal keeps
      // older records too, marked as held by this commit (Journal.acknowledge): a replay skips
      // them, so it never goes back to a state older than this commit's.
      await this.journaled((j) => j.checkpoint(this.unacknowledged())).catch(async (err: Error) => {
        this.warn(`the journal keeps older records until it can be rewritten: ${err.message}`);
        if (logAt) await this.journal?.acknowledge(logAt, this.unacknowledged());
      });
      return { version, changes: changes.length };
    } catch (err) {
      for (const p of paths) {
        this.inCommit.delete(p);
        this.ns.dirty.add(p);
      }
      this.lastCommitError = (err as Error).message;
      throw err;
    } finally {
      for (const c of files.keys()) await this.store.endSnapshot(c);
    }
  }

  /** Every block hash of a file's snapshot: committed ones as they were, local ones read and hashed, holes and blocks of zeros as HOLE (nothing to upload or store). */
  private async hashSnapshot(c: FileContent, snap: FileSnapshot, reads: number[], uploader: BlockUploader): Promise<string[]> {
    const out = new Array<string>(snap.hashes.length);
    const toRead = new Set(reads);
    for (let i = 0; i < snap.hashes.length; i++) {
      const h = snap.hashes[i];
      if (h) out[i] = h;
      else if (!toRead.has(i)) out[i] = HOLE;
    }
    // Blocks the server composes first, several at a time (each holds its written bytes only);
    // the rest, and any the server did not compose, are read and hashed here.
    await forEachLimit(reads, COMPOSE_REQUESTS, async (i) => {
      const stored = await this.composeRemotely(c, snap, i);
      if (stored) out[i] = stored;
    });
    reads = reads.filter((i) => out[i] === undefined);
    const readBatch = (k: number) => {
      const batch = Promise.all(
        reads.slice(k, k + UPLOAD_BATCH).map(async (i) => {
          const data = await this.store.snapshotBlock(c, snap, i);
          const hash = isZeros(data) ? HOLE : sha256(data);
          await this.store.composed(snap, i, hash, data);
          return { i, data, hash };
        }),
      );
      // Awaited below, unless an upload failed first: then its failure is the one reported.
      batch.catch(() => {});
      return batch;
    };
    // Reading a partial block fetches its base: the next batch is read while this one uploads.
    let next = reads.length > 0 ? readBatch(0) : undefined;
    for (let k = 0; k < reads.length; k += UPLOAD_BATCH) {
      const batch = await next!;
      next = k + UPLOAD_BATCH < reads.length ? readBatch(k + UPLOAD_BATCH) : undefined;
      // Taken as fast as memory allows; the engine uploads several at once meanwhile.
      for (const b of batch) if (b.hash !== HOLE) await uploader.add(b.data, b.hash);
      for (const b of batch) out[b.i] = b.hash;
    }
    return out;
  }

  /**
   * Has the server compose partial snapshot block i from its base and written ranges and store
   * it (ContentStore.snapshotPatch says when that pays); its hash, or undefined: the caller
   * composes the block here, also when the request failed (the server never records a block it
   * did not store, so nothing half-done is left to undo).
   */
  private async composeRemotely(c: FileContent, snap: FileSnapshot, i: number): Promise<string | undefined> {
    const req = await this.store.snapshotPatch(c, snap, i);
    if (!req) return undefined;
    try {
      const { hash, size } = await this.remote.composeBlock(req);
      if (size !== req.length) throw new Error(`the server composed ${size} bytes, ${req.length} asked for`);
      await this.store.composedRemotely(c, snap, i);
      return hash === zeroHash(size) ? HOLE : hash;
    } catch (err) {
      this.warn(`block ${i} of a file: the server did not compose it (${(err as Error).message}); composing it here`);
      return undefined;
    }
  }

  // ---- reload ----

  /** Commits pending changes, then switches the tree to the latest version. */
  async reload(): Promise<{ version: number; changed: boolean }> {
    if (this.handles.size > 0) throw new VolumeBusy(`volume busy: ${this.handles.size} file(s) open on the mount`);
    await this.commit();
    return this.commitLock.run(() => this.catchUp(new Set()));
  }

  /**
   * Catches up with the latest version while files are open (close-to-open mounts, fuse/nfs):
   * no commit first, and besides paths changed here, every path whose file is open for writing
   * (or a directory holding one) keeps its local state; its close commits it. A file open for
   * reading that another mount replaced keeps serving the old bytes through its handle, like
   * an unlinked open file, and the next open gets the new ones.
   */
  revalidate(): Promise<{ version: number; changed: boolean }> {
    return this.commitLock.run(() => {
      const writers = new Set<Node>();
      for (const h of this.handles.values()) if (h.write) writers.add(h.node);
      return this.catchUp(writers);
    });
  }

  /** Whether a node is, or (a directory) holds, one of `writers`. */
  private holds(node: Node | undefined, writers: ReadonlySet<Node>): boolean {
    if (!node || writers.size === 0) return false;
    if (writers.has(node)) return true;
    if (node.type !== "directory") return false;
    for (const [, child] of node.children.made()) if (this.holds(child, writers)) return true;
    return false;
  }

  /** Applies the delta from the view version to the latest one; callers hold the commit lock. */
  private async catchUp(writers: ReadonlySet<Node>): Promise<{ version: number; changed: boolean }> {
    const latest = await this.remote.latestVersion();
    if (latest <= this.viewVersion) return { version: this.viewVersion, changed: false };
    let fromTree = false;
    const delta = await this.remote.delta(this.viewVersion, latest).catch(async (err: Error) => {
      // The server no longer keeps our version (retention): diff against the latest full tree.
      if (!(err instanceof VersionGoneError)) throw err;
      fromTree = true;
      return this.deltaFromTree(latest);
    });
    // Every name of a hard link the delta brings must be in memory with it (lazy-load.ts): load
    // their directories at the view first, then the delta applies to them. A view the server no
    // longer keeps cannot be read: those load at the new view, just after the switch.
    const linkIds = new Set<string>();
    for (const ch of delta.changes) if (ch.op === "put" && ch.entry.linkId && this.ns.reachable(ch.entry.path)) linkIds.add(ch.entry.linkId);
    const linkedDirs = linkIds.size ? (await this.remote.links(latest, [...linkIds])).map((e) => parentOf(e.path)) : [];
    if (!fromTree) await this.loader.ensureAll(linkedDirs);
    const freed: Array<Node | undefined> = [];
    /**
     * Files the new version may not name: pending ones (a path the delta did not touch may hold
     * bytes renamed from one it did), and open ones whose local state a path it changed kept, or
     * whose node it replaced.
     */
    const stale = this.pendingContents();
    const open = this.handles.size > 0;
    // Applied in one synchronous pass: no FUSE op sees a half-switched tree.
    for (const ch of delta.changes) {
      const p = ch.op === "put" ? ch.entry.path : ch.path;
      // Changed here since the commit above: the local change wins until it is committed.
      const here = this.ns.lookup(p);
      if (this.ns.dirty.has(p) || this.holds(here, writers)) {
        if (open) filesOf(here, stale);
        continue;
      }
      // Below a directory not loaded yet: its load will read the new version.
      if (!this.ns.reachable(p)) continue;
      if (ch.op === "delete") {
        freed.push(this.ns.applyDelete(p));
        this.base.delete(p);
      } else {
        if (!this.keepIfSame(ch.entry)) freed.push(this.ns.applyPut(ch.entry));
        this.base.set(ch.entry);
      }
    }
    this.cacheDirs(delta.changes.flatMap((ch) => (ch.op === "put" ? [ch.entry] : [])));
    if (open) for (const node of freed) filesOf(node, stale);
    this.moveView(latest, stale);
    if (fromTree) await this.loader.ensureAll(linkedDirs);
    for (const node of freed) await this.dropped(node);
    return { version: latest, changed: delta.changes.length > 0 };
  }

  /**
   * Moves the view to `version`. Files in `stale` (the new version may not name their bytes:
   * another client replaced or deleted them) and unlinked open files may refer to committed
   * blocks only the old view names: they keep it held until they are committed or closed. One
   * synchronous step with the move, so the pin never sees the new view without them.
   */
  private moveView(version: number, stale: Set<FileContent>): void {
    for (const { node } of this.handles.values()) if (node.nlink <= 0) stale.add(node.content);
    for (const c of stale) if (!this.heldFrom.has(c) && c.refersToCommitted) this.heldFrom.set(c, this.viewVersion);
    this.viewVersion = version;
    // Every commit of this mount is at or below the latest version a move goes to.
    this.aheadDirs.clear();
  }

  /** The bytes of pending paths (changed, or in a commit) and of changed hard-linked files. */
  private pendingContents(): Set<FileContent> {
    const out = new Set<FileContent>();
    const add = (node: Node | undefined) => {
      if (node?.type === "file") out.add(node.content);
    };
    for (const p of this.ns.dirty) add(this.ns.lookup(p));
    for (const p of this.inCommit) add(this.ns.lookup(p));
    for (const node of this.linkedChanged) add(node);
    return out;
  }

  /**
   * The oldest version whose blocks this mount may still need: the view, or an older one while
   * a file pending or open here refers to blocks only it names (see moveView). The mount's pin
   * holds this version (mount-pin.ts). It never decreases, but after a journal replay. Files
   * committed, closed or gone since are forgotten here, unless a commit still reads them.
   */
  heldVersion(): number {
    if (this.heldFrom.size === 0) return this.viewVersion;
    const held = this.pendingContents();
    for (const { node } of this.handles.values()) held.add(node.content);
    let version = this.viewVersion;
    for (const [c, from] of this.heldFrom) {
      if (!c.snap && (!held.has(c) || !c.refersToCommitted)) this.heldFrom.delete(c);
      else version = Math.min(version, from);
    }
    return version;
  }

  /** The changes from our tree to the full tree of `version`: a put for every entry, a delete for every path it lacks. */
  private async deltaFromTree(version: number): Promise<Delta> {
    const puts: Change[] = [];
    const present = new Set<string>();
    let after: string | undefined;
    do {
      const page = await this.remote.tree(version, { after, limit: TREE_PAGE });
      for (const entry of page.entries) {
        puts.push({ op: "put", entry });
        present.add(entry.path);
      }
      after = page.next;
    } while (after);
    const deletes: Change[] = [];
    for (const [p] of this.ns.walk()) if (!present.has(p)) deletes.push({ op: "delete", path: p });
    return { from: this.viewVersion, to: version, changes: [...deletes, ...puts] };
  }

  /** A delta put of bytes we already have (our own commit): keep the node and its local copy. */
  private keepIfSame(e: ManifestEntry): boolean {
    const node = this.ns.lookup(e.path);
    if (node?.type !== "file" || e.type !== "file") return false;
    const c: FileContent = node.content;
    if (!c.clean || c.size !== e.size || blockListOf(c.hashes).join() !== (e.blocks ?? []).join()) return false;
    node.setStat(statOf(e));
    return true;
  }

  status(): MountStatus {
    return {
      volume: this.remote.name,
      volumeId: this.remote.id,
      version: this.viewVersion,
      dirtyPaths: this.pendingPaths + this.linkedChanged.size,
      openFiles: this.handles.size,
      inodes: this.ns.inodes,
      inodeLimit: this.ns.inodeLimit,
      loadedDirs: this.loader.loadedDirs,
      rereadDirs: this.loader.rereadDirs,
      readAhead: this.loader.readAheadStatus(),
      cachedInodes: this.tree.cache.size,
      cachedInodesPeak: this.tree.cache.peak,
      inodeCacheLimit: this.tree.cache.limit,
      unloadedDirs: this.tree.unloadedDirs,
      lastCommitError: this.lastCommitError,
      lastJournalError: this.lastJournalError,
    };
  }
}

/** Adds the bytes of every file at or below `node` to `into`. */
function filesOf(node: Node | undefined, into: Set<FileContent>): void {
  if (node?.type === "file") into.add(node.content);
  else if (node?.type === "directory") for (const child of node.children.values()) filesOf(child, into);
}
