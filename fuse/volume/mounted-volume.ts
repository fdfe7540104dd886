import { VersionGoneError } from "../../protocol/errors.js";
import type { Change, Delta, ManifestEntry } from "../../protocol/volume.js";
import { AsyncLock } from "./async-lock.js";
import type { BlockUploader } from "../../client/block-uploader.js";
import { type ContentStore, type FileContent, sha256 } from "./file-content.js";
import { entryOf, type FileNode, isHidden, Namespace, type Node, sameEntry } from "./namespace.js";
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
  lastCommitError: string | null;
}

/** Blocks of one file read and hashed at a time (bounded memory: 8 × 8 MiB). */
const UPLOAD_BATCH = 8;
const TREE_PAGE = 5_000;

/**
 * One mounted volume: its tree (committed version + local changes), open file handles, and
 * commit/reload. The FUSE layer (fuse-ops.ts) is a thin translation onto this.
 */
export class MountedVolume {
  readonly ns = new Namespace(Number.MAX_SAFE_INTEGER);
  /** The committed entries this mount last saw, by path (decides what a commit must send). */
  private readonly base = new Map<string, ManifestEntry>();
  /** The version whose changes the tree fully reflects (a reload asks for the delta from here). */
  viewVersion = 0;
  private readonly handles = new Map<number, { node: FileNode; write: boolean }>();
  private nextHandle = 1;
  /** Hard-linked files changed since the last commit: every name of theirs must be committed. */
  private readonly linkedChanged = new Set<FileNode>();
  private readonly commitLock = new AsyncLock();
  lastCommitError: string | null = null;
  /** Commits that sent changes, and failed ones, since the mount started, with their durations. */
  readonly commitStats = { commits: 0, failures: 0, lastCommitMs: 0, totalCommitMs: 0, lastCommitAt: 0 };

  constructor(
    readonly remote: VolumeRemote,
    readonly store: ContentStore,
  ) {}

  /** Loads a committed version's tree (the daemon pins it first), page by page. */
  async load(version: number): Promise<void> {
    const info = await this.remote.info();
    this.ns.inodeLimit = info.inodeLimit;
    this.viewVersion = version;
    let after: string | undefined;
    do {
      const page = await this.remote.tree(this.viewVersion, { after, limit: TREE_PAGE });
      for (const e of page.entries) {
        this.ns.applyPut(e);
        this.base.set(e.path, e);
      }
      after = page.next;
    } while (after);
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

  async closeHandle(fd: number): Promise<void> {
    const h = this.handles.get(fd);
    if (!h) return;
    this.handles.delete(fd);
    const c = h.node.content;
    if (--c.openHandles === 0) {
      await c.lock.run(() => (h.node.nlink > 0 ? this.store.closeUpper(c) : this.store.discard(c)));
    }
  }

  get openFiles(): number {
    return this.handles.size;
  }

  /** Records that a file's bytes or attributes changed (all its names, if hard-linked). */
  changed(path: string, node: Node): void {
    this.ns.touch(path);
    if (node.type === "file" && node.nlink > 1) this.linkedChanged.add(node);
  }

  /** Frees what a node that left the tree held, once nothing uses it any more. */
  async dropped(node: Node | undefined): Promise<void> {
    if (!node) return;
    if (node.type === "file") {
      if (node.nlink <= 0 && node.content.openHandles === 0) await this.store.discard(node.content);
    } else if (node.type === "directory") {
      for (const child of node.children.values()) {
        if (child.type === "file") child.nlink--;
        await this.dropped(child);
      }
    }
  }

  // ---- commit ----

  /** Uploads changed blocks and commits every changed path as one new version. */
  commit(): Promise<CommitOutcome> {
    return this.commitLock.run(async () => {
      const started = performance.now();
      const recordTime = () => {
        this.commitStats.lastCommitMs = performance.now() - started;
        this.commitStats.totalCommitMs += this.commitStats.lastCommitMs;
      };
      try {
        const outcome = await this.commitNow();
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

  private async commitNow(): Promise<CommitOutcome> {
    if (this.linkedChanged.size) {
      for (const [p, n] of this.ns.walk()) if (n.type === "file" && this.linkedChanged.has(n)) this.ns.touch(p);
      this.linkedChanged.clear();
    }
    const paths = [...this.ns.dirty].filter((p) => !isHidden(p)).sort();
    this.ns.dirty.clear();
    if (paths.length === 0) return { version: this.viewVersion, changes: 0 };
    // Blocks hashed by this commit: if it fails, they are hashed (and uploaded) again next time.
    const hashed: Array<[FileContent, number, string]> = [];
    try {
      const deletes: string[] = [];
      const puts: ManifestEntry[] = [];
      const uploader = this.remote.uploader();
      for (const p of paths) {
        const node = this.ns.lookup(p);
        const before = this.base.get(p);
        if (!node) {
          if (before) deletes.push(p);
          continue;
        }
        const entry = node.type === "file" ? await this.sealFile(p, node, uploader, hashed) : entryOf(p, node);
        if (before && before.type !== entry.type) deletes.push(p);
        if (!before || !sameEntry(before, entry)) puts.push(entry);
      }
      await uploader.flush();
      // A delete takes everything below it: drop deletes already covered by an ancestor's.
      const deleted = new Set<string>();
      const changes: Change[] = [];
      for (const p of deletes) {
        if (ancestors(p).some((a) => deleted.has(a))) continue;
        deleted.add(p);
        changes.push({ op: "delete", path: p });
      }
      for (const entry of puts) changes.push({ op: "put", entry });
      if (changes.length === 0) return { version: this.viewVersion, changes: 0 };
      const { version } = await this.remote.commitChanges({ baseVersion: this.viewVersion, changes });
      for (const p of deleted) this.forgetBase(p);
      for (const e of puts) this.base.set(e.path, e);
      // Only if nobody else committed in between does our tree equal the new version.
      if (version === this.viewVersion + 1) this.viewVersion = version;
      this.lastCommitError = null;
      return { version, changes: changes.length };
    } catch (err) {
      for (const [c, i, hash] of hashed) if (c.hashes[i] === hash) c.hashes[i] = null;
      for (const p of paths) this.ns.dirty.add(p);
      this.lastCommitError = (err as Error).message;
      throw err;
    }
  }

  /** Drops a deleted path (and, for a directory, everything below it) from the committed entries. */
  private forgetBase(path: string): void {
    const entry = this.base.get(path);
    this.base.delete(path);
    if (entry?.type !== "directory") return;
    const prefix = `${path}/`;
    for (const k of this.base.keys()) if (k.startsWith(prefix)) this.base.delete(k);
  }

  /** Hashes a file's changed blocks, uploads those the server lacks, and returns its entry. */
  private sealFile(path: string, node: FileNode, uploader: BlockUploader, hashed: Array<[FileContent, number, string]>): Promise<ManifestEntry> {
    const c = node.content;
    return c.lock.run(async () => {
      const todo = [];
      for (let i = 0; i < c.hashes.length; i++) if (c.hashes[i] === null) todo.push(i);
      for (let k = 0; k < todo.length; k += UPLOAD_BATCH) {
        const batch = await Promise.all(
          todo.slice(k, k + UPLOAD_BATCH).map(async (i) => {
            const data = await this.store.blockBytes(c, i);
            return { i, data, hash: sha256(data) };
          }),
        );
        // Taken as fast as memory allows; the engine uploads several at once meanwhile.
        for (const b of batch) await uploader.add(b.data, b.hash);
        for (const b of batch) {
          c.hashes[b.i] = b.hash;
          hashed.push([c, b.i, b.hash]);
        }
      }
      return entryOf(path, node);
    });
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
    for (const child of node.children.values()) if (this.holds(child, writers)) return true;
    return false;
  }

  /** Applies the delta from the view version to the latest one; callers hold the commit lock. */
  private async catchUp(writers: ReadonlySet<Node>): Promise<{ version: number; changed: boolean }> {
    const latest = await this.remote.latestVersion();
    if (latest <= this.viewVersion) return { version: this.viewVersion, changed: false };
    const delta = await this.remote.delta(this.viewVersion, latest).catch(async (err: Error) => {
      // The server no longer keeps our version (retention): diff against the latest full tree.
      if (!(err instanceof VersionGoneError)) throw err;
      return this.deltaFromTree(latest);
    });
    const freed: Array<Node | undefined> = [];
    // Applied in one synchronous pass: no FUSE op sees a half-switched tree.
    for (const ch of delta.changes) {
      const p = ch.op === "put" ? ch.entry.path : ch.path;
      // Changed here since the commit above: the local change wins until it is committed.
      if (this.ns.dirty.has(p) || this.holds(this.ns.lookup(p), writers)) continue;
      if (ch.op === "delete") {
        freed.push(this.ns.applyDelete(p));
        this.forgetBase(p);
      } else {
        if (!this.keepIfSame(ch.entry)) freed.push(this.ns.applyPut(ch.entry));
        this.base.set(p, ch.entry);
      }
    }
    this.viewVersion = latest;
    for (const node of freed) await this.dropped(node);
    return { version: latest, changed: delta.changes.length > 0 };
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
    for (const [p] of this.ns.walk()) if (!present.has(p) && !isHidden(p)) deletes.push({ op: "delete", path: p });
    return { from: this.viewVersion, to: version, changes: [...deletes, ...puts] };
  }

  /** A delta put of bytes we already have (our own commit): keep the node and its local copy. */
  private keepIfSame(e: ManifestEntry): boolean {
    const node = this.ns.lookup(e.path);
    if (node?.type !== "file" || e.type !== "file") return false;
    const c: FileContent = node.content;
    if (!c.clean || c.size !== e.size || c.hashes.join() !== (e.blocks ?? []).join()) return false;
    node.mode = e.mode;
    node.mtimeMs = e.mtimeMs;
    return true;
  }

  status(): MountStatus {
    return {
      volume: this.remote.name,
      volumeId: this.remote.id,
      version: this.viewVersion,
      dirtyPaths: this.ns.dirty.size + this.linkedChanged.size,
      openFiles: this.handles.size,
      inodes: this.ns.inodes,
      inodeLimit: this.ns.inodeLimit,
      lastCommitError: this.lastCommitError,
    };
  }
}

function ancestors(path: string): string[] {
  const out: string[] = [];
  for (let i = path.indexOf("/"); i >= 0; i = path.indexOf("/", i + 1)) out.push(path.slice(0, i));
  return out;
}
