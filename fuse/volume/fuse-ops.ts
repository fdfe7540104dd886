import { randomUUID } from "node:crypto";
import { constants as fsConstants } from "node:fs";
import { constants } from "node:os";
import { FUSE_ROOT_ID, FUSE_WRITE_KILL_SUIDGID, RENAME_EXCHANGE, RENAME_NOREPLACE } from "../kernel/abi.js";
import type { FileSlice, Filesystem } from "../kernel/filesystem.js";
import { InodeMap, inoFieldSlots } from "../kernel/inode-map.js";
import { type Attr, type AttrReply, type DirEntry, type Entry, Errno, type FileLock, type Notifier, type Opened, type RequestContext, type SetattrRequest } from "../kernel/types.js";
import { FileContent } from "./file-content.js";
import { MountLocks } from "./file-locks.js";
import { markUntracked, type OpenMode, Passthrough } from "./passthrough.js";
import { checkTruncateSize } from "./limits.js";
import { listXattrs, removeXattr, setXattr, xattrValue } from "./xattrs.js";
import type { MountedVolume } from "./mounted-volume.js";
import type { KernelRefs } from "./tree-cache.js";
import { FsError } from "../common/errno.js";
import { type EntryType, VOLUME_LIMITS } from "../../protocol/volume.js";
import { DirNode, FileNode, LinkNode, type Node, newStat, nowNs, SpecialNode, type SpecialType } from "./namespace.js";

const E = constants.errno;
/** The usual answers of lookup and getxattr, returned rather than thrown (one instance each: an Errno is never changed). */
const NO_ENTRY = new Errno(E.ENOENT);
const NO_DATA = new Errno(E.ENODATA);
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
const S_IXGRP = 0o010;
/** Type bits of each node type, and readdir's DT_* of each. */
const S_IF: Record<Node["type"], number> = { file: S_IFREG, directory: S_IFDIR, symlink: S_IFLNK, fifo: 0o010000, char: 0o020000, block: 0o060000, socket: 0o140000 };
const SPECIAL_OF = new Map<number, SpecialType>([
  [0o010000, "fifo"],
  [0o020000, "char"],
  [0o060000, "block"],
  [0o140000, "socket"],
]);
const O_ACCMODE = 3;
const O_DIRECT = fsConstants.O_DIRECT;
const SEEK_DATA = 3;
const SEEK_HOLE = 4;
const FALLOC_FL_KEEP_SIZE = 0x01;
const FALLOC_FL_PUNCH_HOLE = 0x02;
const FALLOC_FL_ZERO_RANGE = 0x10;

/**
 * The errno an op's error answers with (for the session's `errno` option): a volume FsError's,
 * and ENOSPC/EDQUOT when the local disk (upper files, journal) is full: the caller's answer, as
 * on a local file system, not an EIO.
 */
export function volumeErrno(err: unknown): number | undefined {
  if (err instanceof FsError) return -err.errno;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === "ENOSPC" || code === "EDQUOT" ? E[code] : undefined;
}

export interface VolumeFsOptions {
  readOnly: boolean;
  /**
   * How long the kernel may trust names and attributes. Only a reload changes the tree behind
   * the kernel's back, and it invalidates what changed, so this can be long.
   */
  cacheTtlMs: number;
  log: (msg: string) => void;
}

/**
 * The mounted volume as an inode-based FUSE file system. Inode numbers name tree nodes (a
 * hard-linked file is one node, so one inode); the tree itself is path-based, so each inode
 * remembers the parent and name it was last reached by and paths are derived from those.
 */
export class VolumeFs implements Filesystem, KernelRefs {
  private readonly inodes: InodeMap<Node>;
  /** Where each inode was last named. Directories' entries make their children's paths follow a rename. */
  private readonly names = new Map<number, { parent: number; name: string }>();
  private readonly dirHandles = new Map<number, DirSnapshot>();
  private nextDirHandle = 1;
  private readonly locks = new MountLocks();
  /**
   * A daemon that is not root cannot hand files to other users (and only its user reaches the
   * mount): everything shows as its own, as before ownership was stored.
   */
  private readonly squash = (process.getuid?.() ?? 0) !== 0 ? { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 } : undefined;
  /** The kernel connection, for invalidating what it caches of a node this file system changed on its own (set once mounted). */
  kernel: Notifier | undefined;
  /** How opens are answered: passthrough where the kernel may read a file's upper file itself (its `backing` is set once mounted, if INIT agreed). */
  readonly passthrough: Passthrough;

  constructor(
    private readonly mv: MountedVolume,
    private readonly opts: VolumeFsOptions,
  ) {
    this.inodes = new InodeMap<Node>(mv.ns.root, inoFieldSlots);
    this.passthrough = new Passthrough(opts.log);
    // The inode cache may unload only what the kernel does not name: it asks us.
    mv.tree.refs = this;
  }

  // ---- what the inode cache asks (KernelRefs) ----

  held(node: Node): number | undefined {
    return this.inodes.peek(node);
  }

  listing(dir: DirNode): boolean {
    for (const snap of this.dirHandles.values()) if (snap.dir === dir) return true;
    return false;
  }

  askForget(dir: DirNode, names: readonly string[]): boolean {
    const ino = this.inodes.peek(dir);
    const kernel = this.kernel;
    if (ino === undefined || !kernel) return false;
    const at = this.names.get(ino);
    if (at) void kernel.invalEntry(at.parent, at.name);
    else for (const name of names) void kernel.invalEntry(ino, name);
    return true;
  }

  destroy(): void {
    this.passthrough.destroy();
  }

  /** Inode numbers the kernel may hold now (given in an answer it takes a reference to, not yet forgotten). */
  get inodeNumbers(): number {
    return this.inodes.size;
  }

  // ---- helpers ----

  private writable(): void {
    if (this.opts.readOnly) throw new FsError("EROFS");
  }

  private node(ino: number): Node {
    const n = this.inodes.get(ino);
    if (!n) throw new Errno(E.ESTALE);
    return n;
  }

  private dir(ino: number): DirNode {
    const n = this.node(ino);
    if (n.type !== "directory") throw new FsError("ENOTDIR");
    return n;
  }

  /**
   * Directory `ino` with its entries loaded (lazy-load.ts): what every operation on names needs
   * first. Synchronously when they are loaded already (no promise jobs for a create or unlink).
   */
  private loadedDir(ino: number): DirNode | Promise<DirNode> {
    const dir = this.dir(ino);
    if (dir.loaded) return dir;
    const p = this.pathOf(ino, dir);
    return p === undefined ? dir : this.mv.loader.ensure(p).then(() => dir);
  }

  private file(n: Node): FileNode {
    if (n.type === "directory") throw new FsError("EISDIR");
    if (n.type !== "file") throw new FsError("EINVAL");
    return n;
  }

  private handle(fh: number): FileNode {
    const node = this.mv.handle(fh);
    if (!node) throw new FsError("EBADF");
    return node;
  }

  /** The path `ino` was last reached by, as recorded (may be stale after another name's rename or unlink). */
  private recordedPath(ino: number, depth = 0): string | undefined {
    if (ino === FUSE_ROOT_ID) return "";
    const at = this.names.get(ino);
    if (!at || depth > 4096) return undefined;
    const parent = this.recordedPath(at.parent, depth + 1);
    if (parent === undefined) return undefined;
    return parent ? `${parent}/${at.name}` : at.name;
  }

  /** A path that names `node` now (undefined if no name does: unlinked while open). */
  private pathOf(ino: number, node: Node): string | undefined {
    const p = this.recordedPath(ino);
    if (p !== undefined && this.mv.ns.lookup(p) === node) return p;
    if (node.type === "file" && node.nlink <= 0) return undefined;
    // The name we knew is gone but another remains (a hard link's other name): find it.
    for (const [q, n] of this.mv.ns.walkMade()) if (n === node) return q;
    return undefined;
  }

  /** The path of a name inside directory `parent`. */
  private childPath(parent: number, name: string): string {
    checkName(name);
    if (name.includes("/") || name === "." || name === "..") throw new FsError("EINVAL");
    const dir = this.dir(parent);
    const p = this.pathOf(parent, dir);
    if (p === undefined) throw new FsError("ENOENT");
    return p ? `${p}/${name}` : name;
  }

  /** Records a change of `node`'s bytes or attributes for the next commit. */
  private changed(ino: number, node: Node): void {
    this.mv.changed(this.pathOf(ino, node), node);
  }

  /** One object literal, no spread: a spread of this object cost ~3 µs per reply (measured). */
  private attr(node: Node, ino: number): Attr {
    let size = 0;
    let nlink: number;
    let rdev = 0;
    switch (node.type) {
      case "directory":
        // As ext4: "." and ".." of every subdirectory count (only loaded directories are
        // answered for: lookup loads, readdirplus leaves the others to a lookup).
        size = 4096;
        nlink = 2 + node.children.subdirs;
        break;
      case "symlink":
        size = Buffer.byteLength(node.target);
        nlink = Math.max(0, node.nlink);
        break;
      case "file":
        size = node.size;
        nlink = Math.max(0, node.nlink);
        break;
      default:
        nlink = Math.max(0, node.nlink);
        rdev = node.rdev;
    }
    return {
      ino,
      size,
      nlink,
      rdev,
      mode: S_IF[node.type] | node.mode,
      uid: this.squash?.uid ?? node.uid,
      gid: this.squash?.gid ?? node.gid,
      atimeNs: node.atimeNs,
      mtimeNs: node.mtimeNs,
      ctimeNs: node.ctimeNs,
    };
  }

  /**
   * A new node's stat: the caller's, as Linux's inode_init_owner. In a setgid directory it gets
   * the directory's group, and a new directory there is setgid too.
   */
  private ownedStat(ctx: RequestContext, parent: number, mode: number, dir = false): ReturnType<typeof newStat> {
    const p = this.dir(parent);
    const inherit = (p.mode & S_ISGID) !== 0;
    return newStat(inherit && dir ? mode | S_ISGID : mode, ctx.uid, inherit ? p.gid : ctx.gid);
  }

  /** The answer naming `node` as `name` in `parent`; allocates its inode number (last step before replying). */
  private entry(parent: number, name: string, node: Node): Entry {
    const ino = this.inodes.ino(node);
    this.names.set(ino, { parent, name });
    return { ino, attr: this.attr(node, ino), entryTtlMs: this.opts.cacheTtlMs, attrTtlMs: this.opts.cacheTtlMs };
  }

  private attrReply(ino: number, node: Node) {
    return { attr: this.attr(node, ino), ttlMs: this.opts.cacheTtlMs };
  }

  // ---- names ----

  /** A missing name is returned as ENOENT, not thrown (filesystem.ts: a function that mostly throws is never optimized). */
  lookup(_ctx: RequestContext, parent: number, name: string): Entry | Errno | Promise<Entry> {
    checkName(name);
    // Both the directory and the name's node loaded (the usual case): answered at once, no promise per request.
    const dir = this.dir(parent);
    const node = dir.loaded ? dir.children.get(name) : undefined;
    if (dir.loaded && !(node?.type === "directory" && !node.loaded)) {
      this.mv.tree.used(dir);
      if (!node) return NO_ENTRY;
      return this.entry(parent, name, node);
    }
    return this.lookupLoading(parent, name);
  }

  /** lookup once the directory, or a subdirectory it names, is still to be read. */
  private async lookupLoading(parent: number, name: string): Promise<Entry> {
    const dir = await this.loadedDir(parent);
    let node = dir.children.get(name);
    if (!node) throw new FsError("ENOENT");
    // A directory's attributes count its subdirectories: it is loaded before it is answered for.
    if (node.type === "directory" && !node.loaded) {
      await this.mv.loader.ensure(this.childPath(parent, name));
      node = dir.children.get(name);
      if (!node) throw new FsError("ENOENT");
    }
    return this.entry(parent, name, node);
  }

  forget(ino: number): void {
    const at = this.names.get(ino);
    this.inodes.forget(ino);
    this.names.delete(ino);
    // What the kernel let go of may now be unloaded, if the cache is over its limit.
    const parent = at && this.inodes.get(at.parent);
    this.mv.tree.forgotten(parent?.type === "directory" ? parent : undefined);
  }

  getattr(_ctx: RequestContext, ino: number) {
    return this.attrReply(ino, this.node(ino));
  }

  /** Synchronous but for a truncate (a chmod, chown or utimes of `tar x` has no promise jobs). */
  setattr(_ctx: RequestContext, ino: number, set: SetattrRequest): AttrReply | Promise<AttrReply> {
    const node = set.fh !== undefined && this.mv.handle(set.fh) ? this.handle(set.fh) : this.node(ino);
    this.writable();
    // The kernel checked permissions (default_permissions) and folds the setuid/setgid clearing
    // of chown and truncate into `mode`; this applies what it asks, and ctime moves with any of it.
    const t = nowNs();
    if (set.size === undefined) return this.setAttrs(ino, node, set, t);
    return this.truncated(this.file(node), set.size, t).then(() => this.setAttrs(ino, node, set, t));
  }

  private async truncated(file: FileNode, size: number, t: bigint): Promise<void> {
    await this.mv.store.truncate(file.content, size);
    await this.passthrough.grown(file.content);
    file.modifiedNow(t);
  }

  private setAttrs(ino: number, node: Node, set: SetattrRequest, t: bigint): AttrReply {
    if (set.mode !== undefined) node.mode = set.mode & 0o7777;
    if (set.uid !== undefined) node.uid = set.uid;
    if (set.gid !== undefined) node.gid = set.gid;
    if (set.mtime !== undefined) node.mtimeNs = set.mtimeNs ?? t;
    if (set.atime !== undefined) node.atimeNs = set.atimeNs ?? t;
    if (set.killSuidgid && node.type !== "directory") killSuidgid(node);
    node.changedNow(t);
    this.changed(ino, node);
    return this.attrReply(ino, node);
  }

  readlink(_ctx: RequestContext, ino: number): string {
    const node = this.node(ino);
    if (node.type !== "symlink") throw new FsError("EINVAL");
    return node.target;
  }

  private addNode(parent: number, name: string, node: Node): Entry {
    this.writable();
    const p = this.childPath(parent, name);
    this.mv.ns.add(p, node);
    if (node.type === "file") this.mv.changed(p, node);
    return this.entry(parent, name, node);
  }

  async mknod(ctx: RequestContext, parent: number, name: string, mode: number, rdev: number): Promise<Entry> {
    await this.loadedDir(parent);
    const type = mode & S_IFMT;
    const stat = this.ownedStat(ctx, parent, mode);
    if (type === S_IFREG || type === 0) return this.addNode(parent, name, new FileNode(stat, new FileContent(0, [])));
    const special = SPECIAL_OF.get(type);
    if (!special) throw new FsError("EINVAL");
    return this.addNode(parent, name, new SpecialNode(special, special === "char" || special === "block" ? rdev : 0, stat));
  }

  async mkdir(ctx: RequestContext, parent: number, name: string, mode: number): Promise<Entry> {
    await this.loadedDir(parent);
    return this.addNode(parent, name, new DirNode(this.ownedStat(ctx, parent, mode, true)));
  }

  async symlink(ctx: RequestContext, parent: number, name: string, target: string): Promise<Entry> {
    await this.loadedDir(parent);
    return this.addNode(parent, name, new LinkNode(target, this.ownedStat(ctx, parent, 0o777)));
  }

  async link(_ctx: RequestContext, ino: number, newParent: number, newName: string): Promise<Entry> {
    this.writable();
    await this.loadedDir(newParent);
    const node = this.node(ino);
    if (node.type === "directory") throw new FsError("EPERM");
    if (node.nlink >= VOLUME_LIMITS.maxLinks) throw new Errno(E.EMLINK);
    const p = this.childPath(newParent, newName);
    this.mv.ns.add(p, node);
    node.nlink++;
    node.linkId ??= randomUUID();
    node.changedNow();
    this.mv.changed(p, node);
    return this.entry(newParent, newName, node);
  }

  unlink(_ctx: RequestContext, parent: number, name: string): void | Promise<void> {
    this.writable();
    const dir = this.loadedDir(parent);
    if (dir instanceof Promise) return dir.then(() => this.unlinkLoaded(parent, name));
    this.unlinkLoaded(parent, name);
  }

  private unlinkLoaded(parent: number, name: string): void {
    const p = this.childPath(parent, name);
    const node = this.mv.ns.lookup(p);
    if (!node) throw new FsError("ENOENT");
    if (node.type === "directory") throw new FsError("EISDIR");
    this.mv.ns.remove(p);
    // The other names of a hard link: their nlink and ctime changed.
    this.mv.changed(undefined, node);
    this.release_(node);
  }

  /** Frees a node's local bytes after answering: the name is gone already, the upper file's removal need not hold up the caller. */
  private release_(node: Node | undefined): void {
    try {
      const freed = this.mv.droppedNow(node);
      if (freed instanceof Promise) freed.catch((err: Error) => this.opts.log(`could not free local data: ${err.message}`));
    } catch (err) {
      this.opts.log(`could not free local data: ${(err as Error).message}`);
    }
  }

  async rmdir(_ctx: RequestContext, parent: number, name: string): Promise<void> {
    this.writable();
    await this.loadedDir(parent);
    // Whether it is empty is known once its own entries are.
    await this.mv.loader.ensure(this.childPath(parent, name));
    const p = this.childPath(parent, name);
    const node = this.mv.ns.lookup(p);
    if (!node) throw new FsError("ENOENT");
    if (node.type !== "directory") throw new FsError("ENOTDIR");
    if (node.children.size > 0) throw new FsError("ENOTEMPTY");
    this.mv.ns.remove(p);
  }

  async rename(_ctx: RequestContext, parent: number, name: string, newParent: number, newName: string, flags: number): Promise<void> {
    this.writable();
    if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) throw new FsError("EINVAL"); // RENAME_WHITEOUT (overlayfs only)
    await this.loadedDir(parent);
    await this.loadedDir(newParent);
    // Every path below a moved directory changes, so all of it must be loaded; a replaced
    // directory must be known to be empty.
    await this.mv.loader.ensureTree(this.childPath(parent, name));
    if (flags & RENAME_EXCHANGE) await this.mv.loader.ensureTree(this.childPath(newParent, newName));
    else await this.mv.loader.ensure(this.childPath(newParent, newName));
    const from = this.childPath(parent, name);
    const to = this.childPath(newParent, newName);
    const node = this.mv.ns.lookup(from);
    if (flags & RENAME_EXCHANGE) {
      if (flags & RENAME_NOREPLACE) throw new FsError("EINVAL");
      const other = this.mv.ns.lookup(to);
      this.mv.ns.exchange(from, to);
      const ino = node && this.inodes.peek(node);
      const otherIno = other && this.inodes.peek(other);
      if (ino !== undefined) this.names.set(ino, { parent: newParent, name: newName });
      if (otherIno !== undefined) this.names.set(otherIno, { parent, name });
      return;
    }
    if (flags & RENAME_NOREPLACE && this.mv.ns.lookup(to)) throw new FsError("EEXIST");
    const replaced = this.mv.ns.rename(from, to);
    if (replaced) this.mv.changed(undefined, replaced);
    const ino = node && this.inodes.peek(node);
    if (ino !== undefined) this.names.set(ino, { parent: newParent, name: newName });
    this.release_(replaced);
  }

  // ---- files ----

  open(_ctx: RequestContext, ino: number, flags: number): Opened | Promise<Opened> {
    const write = (flags & O_ACCMODE) !== 0;
    if (write) this.writable();
    const node = this.file(this.node(ino));
    const fh = this.mv.openHandle(node, write);
    const mode = this.passthrough.opened(ino, fh, node.content, write, (flags & O_DIRECT) !== 0);
    if (!(mode instanceof Promise)) return this.openedAs(ino, fh, node, mode);
    return mode.then(
      (m) => this.openedAs(ino, fh, node, m),
      async (err: unknown) => {
        await this.dropHandle(ino, fh);
        throw err;
      },
    );
  }

  create(ctx: RequestContext, parent: number, name: string, mode: number): { entry: Entry; opened: Opened } | Promise<{ entry: Entry; opened: Opened }> {
    const dir = this.loadedDir(parent);
    return dir instanceof Promise ? dir.then(() => this.createLoaded(ctx, parent, name, mode)) : this.createLoaded(ctx, parent, name, mode);
  }

  private createLoaded(ctx: RequestContext, parent: number, name: string, mode: number): { entry: Entry; opened: Opened } | Promise<{ entry: Entry; opened: Opened }> {
    const node = new FileNode(this.ownedStat(ctx, parent, mode), new FileContent(0, []));
    const entry = this.addNode(parent, name, node);
    const fh = this.mv.openHandle(node, true);
    const opened = this.openedAs(entry.ino, fh, node, this.passthrough.openedForWrite(entry.ino, fh, node.content));
    return opened instanceof Promise ? opened.then((o) => ({ entry, opened: o })) : { entry, opened };
  }

  /**
   * The answer to an open. A writer whose mmap the kernel serves from the upper file
   * (passthrough.ts) may change any block unseen: all are marked changed, and journaled before
   * it can map anything, so a crash never leaves the journal trusting a hash of them.
   */
  private openedAs(ino: number, fh: number, node: FileNode, m: OpenMode): Opened | Promise<Opened> {
    const opened: Opened = { fh, keepCache: m.keepCache, directIo: m.directIo, backingId: m.backingId };
    if (!m.untracked) return opened;
    markUntracked(node.content);
    this.changed(ino, node);
    // A failed journal write fails the open: no release will come, so the handle goes here.
    return this.mv.flush().then(
      () => opened,
      async (err: unknown) => {
        await this.dropHandle(ino, fh);
        throw err;
      },
    );
  }

  /** Frees open `fh` (release, or an open the kernel never saw answered). */
  private async dropHandle(ino: number, fh: number): Promise<void> {
    await this.dropHandleNow(ino, fh);
  }

  private dropHandleNow(ino: number, fh: number): void | Promise<void> {
    const node = this.mv.handle(fh);
    // A writer with the upper file mapped is gone: what it stored is seen now.
    if (this.passthrough.released(fh) && node) {
      markUntracked(node.content);
      this.changed(ino, node);
    }
    return this.mv.closeHandle(fh);
  }

  abandon(ino: number, opened: Opened): void {
    this.dropHandle(ino, opened.fh).catch((err: Error) => this.opts.log(`closing abandoned handle ${opened.fh} failed: ${err.message}`));
  }

  read(_ctx: RequestContext, _ino: number, fh: number, offset: number, size: number): Buffer | Promise<Buffer | FileSlice> {
    const node = this.handle(fh);
    // A block fetched lately is answered at once from its bytes in memory, without a copy.
    return this.mv.store.view(node.content, size, offset) ?? this.readLater(node.content, offset, size);
  }

  private async readLater(content: FileContent, offset: number, size: number): Promise<Buffer | FileSlice> {
    // A block in a file on this host (cache file, server's blob) is answered as a slice of it: spliced.
    const slice = await this.mv.store.fileSlice(content, size, offset);
    if (slice) return slice;
    // A block on its way is answered from its fetched bytes too, once they are there (no copy).
    const fetched = await this.mv.store.fetchedView(content, size, offset);
    if (fetched) return fetched;
    const buf = Buffer.allocUnsafe(size);
    const n = await this.mv.store.read(content, buf, size, offset);
    return n === size ? buf : buf.subarray(0, n);
  }

  /** Answered synchronously when the bytes land synchronously (inline, or the upper file open and idle): no promise jobs per 4 KiB write. */
  write(_ctx: RequestContext, ino: number, fh: number, offset: number, data: Buffer, writeFlags = 0): number | Promise<number> {
    this.writable();
    const node = this.handle(fh);
    const n = this.mv.store.write(node.content, data, data.length, offset);
    return n instanceof Promise ? n.then((k) => this.wrote(ino, node, k, writeFlags)) : this.wrote(ino, node, n, writeFlags);
  }

  private wrote(ino: number, node: FileNode, n: number, writeFlags: number): number | Promise<number> {
    node.modifiedNow();
    // A write by a caller without CAP_FSETID (HANDLE_KILLPRIV_V2). The kernel's cached mode would
    // keep the bits (a write invalidates only size and times): drop it before answering, so no
    // exec in between sees them. Notifying with the write's inode lock held is safe for attributes.
    const killed = (writeFlags & FUSE_WRITE_KILL_SUIDGID) !== 0 && killSuidgid(node);
    this.changed(ino, node);
    return killed ? (this.kernel?.invalInode(ino, -1, 0) ?? Promise.resolve()).then(() => n) : n;
  }

  // close(2) (FUSE flush) and fsync(2)/fsyncdir(2): the mount's local journal holds everything
  // done so far when they return (docs/mounts.md, "The local journal"). Never leave them out:
  // the kernel would stop sending them and that guarantee would be gone.
  flush(_ctx: RequestContext, ino: number, fh: number, lockOwner: bigint): void | Promise<void> {
    this.locks.closed(this.lockedFile(ino, fh), lockOwner);
    return this.mv.flushNow();
  }

  async fsync(_ctx: RequestContext, _ino: number, fh: number): Promise<void> {
    await this.mv.fsync(fh);
  }

  async fsyncdir(): Promise<void> {
    await this.mv.fsync();
  }

  release(_ctx: RequestContext, ino: number, fh: number): void | Promise<void> {
    this.locks.released(this.lockedFile(ino, fh), fh);
    return this.dropHandleNow(ino, fh);
  }

  // ---- locks (held in this daemon: docs/mounts.md) ----

  /** The node locks of `fh` are kept on (a hard link's names share it). */
  private lockedFile(ino: number, fh: number): Node {
    return this.mv.handle(fh) ?? this.node(ino);
  }

  getlk(_ctx: RequestContext, ino: number, fh: number, owner: bigint, lock: FileLock): FileLock | undefined {
    return this.locks.getlk(this.lockedFile(ino, fh), fh, owner, lock);
  }

  setlk(ctx: RequestContext, ino: number, fh: number, owner: bigint, lock: FileLock, opts: { wait: boolean; flock: boolean }): Promise<void> {
    return this.locks.setlk(ctx, this.lockedFile(ino, fh), fh, owner, lock, opts);
  }

  /**
   * fallocate(2): mode 0 grows the file (space is the server's, nothing to reserve), KEEP_SIZE
   * changes nothing, PUNCH_HOLE and ZERO_RANGE zero a range (whole blocks commit as holes).
   */
  async fallocate(ctx: RequestContext, ino: number, fh: number, offset: number, length: number, mode: number): Promise<void> {
    if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) throw new Errno(E.EOPNOTSUPP);
    const zero = (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) !== 0;
    if ((mode & FALLOC_FL_PUNCH_HOLE && !(mode & FALLOC_FL_KEEP_SIZE)) || (mode & FALLOC_FL_PUNCH_HOLE && mode & FALLOC_FL_ZERO_RANGE) || length <= 0) throw new FsError("EINVAL");
    this.writable();
    const node = this.handle(fh);
    checkTruncateSize(offset + length);
    const c = node.content;
    const grow = !(mode & FALLOC_FL_KEEP_SIZE) && offset + length > c.size;
    if (!zero && !grow) return;
    if (zero) await this.mv.store.zeroRange(c, offset, offset + length);
    if (grow) {
      await this.mv.store.truncate(c, offset + length);
      await this.passthrough.grown(c);
    }
    node.modifiedNow();
    await this.killedByUnprivileged(ctx, ino, node);
    this.changed(ino, node);
  }

  lseek(_ctx: RequestContext, _ino: number, fh: number, offset: number, whence: number): number {
    const size = this.handle(fh).content.size;
    if (whence !== SEEK_DATA && whence !== SEEK_HOLE) throw new FsError("EINVAL");
    if (offset >= size) throw new Errno(E.ENXIO);
    // No holes are tracked: all data up to the end.
    return whence === SEEK_DATA ? offset : size;
  }

  async copyFileRange(ctx: RequestContext, src: { ino: number; fh: number; offset: number }, dst: { ino: number; fh: number; offset: number }, len: number): Promise<number> {
    this.writable();
    const from = this.handle(src.fh);
    const to = this.handle(dst.fh);
    const chunk = Buffer.allocUnsafe(Math.min(len, 1 << 20));
    let done = 0;
    try {
      while (done < len) {
        const n = await this.mv.store.read(from.content, chunk, Math.min(chunk.length, len - done), src.offset + done);
        if (n === 0) break;
        const w = await this.mv.store.write(to.content, chunk, n, dst.offset + done);
        done += w;
        if (w < n) break;
      }
    } catch (err) {
      // A failure after some bytes were copied (a full local disk) makes a short copy of them, which must be recorded.
      if (done === 0) throw err;
    }
    if (done > 0) {
      to.modifiedNow();
      await this.killedByUnprivileged(ctx, dst.ino, to);
      this.changed(dst.ino, to);
    }
    return done;
  }

  /**
   * fallocate(2) and copy_file_range(2) change bytes without a WRITE, so no kill flag comes with
   * them; with HANDLE_KILLPRIV_V2 the kernel leaves setuid/setgid to us. As ext4: a caller other
   * than root (CAP_FSETID) clears them.
   */
  private async killedByUnprivileged(ctx: RequestContext, ino: number, node: Node): Promise<void> {
    if (ctx.uid !== 0 && killSuidgid(node)) await this.kernel?.invalInode(ino, -1, 0);
  }

  /**
   * Points `ino` at the node now at the path it was reached by, if the tree replaced that node
   * (a catch-up with the server: fuse/nfs/close-to-open.ts). The kernel then sees the new bytes
   * under the inode it holds, as an NFS client sees a file handle's new contents. False if
   * that path names nothing (of its type) any more.
   */
  refresh(ino: number): boolean {
    if (ino === FUSE_ROOT_ID) return true;
    const node = this.inodes.get(ino);
    const p = this.recordedPath(ino);
    if (!node || p === undefined) return false;
    const now = this.mv.ns.lookup(p);
    if (!now || now.type !== node.type) return false;
    if (now !== node) this.inodes.rekey(ino, now);
    return true;
  }

  // ---- directories ----

  async opendir(_ctx: RequestContext, ino: number) {
    const dir = await this.loadedDir(ino);
    const parentIno = this.names.get(ino)?.parent ?? FUSE_ROOT_ID;
    const parent = this.inodes.get(parentIno) ?? dir;
    // Reading ahead is a hint: a directory whose recorded name is stale gets none (no search for its path).
    const path = this.recordedPath(ino);
    if (path !== undefined && parent.type === "directory" && this.mv.ns.lookup(path) === dir) this.mv.loader.opened(path, dir, parent);
    // A snapshot: entries added or removed while listing neither repeat nor vanish mid-way.
    const fh = this.nextDirHandle++;
    this.dirHandles.set(fh, this.snapshotOf(dir, parent));
    this.mv.tree.used(dir);
    return { fh };
  }

  readdir(_ctx: RequestContext, ino: number, fh: number, offset: number, max: number, plus: boolean): DirEntry[] {
    let list = this.dirHandles.get(fh);
    if (!list) {
      const dir = this.dir(ino);
      list = this.snapshotOf(dir, dir);
    }
    const { names, items, positions } = list;
    const out: DirEntry[] = [];
    for (let i = offset; i < names.length && out.length < max; i++) {
      const name = names[i]!;
      const position = positions[i]!;
      let node = position < 0 ? (items[i] as Node) : undefined;
      // A listed name without a node gets one only for a lookup answer (READDIRPLUS): the node
      // the name has now, if it still has one (a READDIR of it needs only its type and number).
      if (plus && node === undefined) node = list.dir.children.made(name, position);
      if (node === undefined) {
        out.push({ name, ino: list.inoBase + position, type: S_IF[items[i] as EntryType] >> 12, nextOffset: i + 1 });
        continue;
      }
      const dot = name === "." || name === "..";
      // An unloaded directory gets no lookup answer (its nlink is not known yet): the kernel looks it up when it needs it.
      const entry = plus && !dot && !(node.type === "directory" && !node.loaded) ? this.entry(ino, name, node) : undefined;
      // A plain listing's d_ino: the number a lookup will give, not registered (the kernel takes no reference).
      out.push({ name, ino: entry?.ino ?? (dot ? (this.inodes.peek(node) ?? FUSE_ROOT_ID) : this.inodes.reserve(node)), type: typeOf(node), nextOffset: i + 1, entry });
    }
    return out;
  }

  /** A directory's entries as an open handle lists them ("." and ".." first), making no node for a listed name (Children). */
  private snapshotOf(dir: DirNode, parent: Node): DirSnapshot {
    const c = dir.children;
    // The listing's names get their numbers in one step (a node made later takes its name's).
    if (c.inoBase === undefined && c.listed > 0) c.inoBase = this.inodes.reserveRange(c.listed);
    const names = [".", ".."];
    const items: Array<Node | EntryType> = [dir, parent];
    const positions = [-1, -1];
    c.list((name, node, type, position) => {
      names.push(name);
      items.push(node ?? type!);
      positions.push(position);
    });
    return { dir, names, items, positions, inoBase: c.inoBase ?? 0 };
  }

  releasedir(_ctx: RequestContext, _ino: number, fh: number): void {
    this.dirHandles.delete(fh);
  }

  statfs() {
    const ns = this.mv.ns;
    const total = 2 ** 30; // 4 TiB of 4 KiB blocks: space is the server's concern
    const limit = Math.min(ns.inodeLimit, 2 ** 32 - 1);
    return { bsize: 4096, frsize: 4096, blocks: total, bfree: total, bavail: total, files: limit, ffree: Math.max(0, limit - ns.inodes), namelen: 255 };
  }

  // ---- extended attributes (committed with the node: xattrs.ts) ----
  // Always answered (never ENOSYS, which the kernel would remember for the whole mount): a
  // getxattr("security.capability") before every write is the price, answered from memory.

  /** The node whose attributes may change: not the root, which the manifest has no entry for. */
  private xattrNode(ino: number): Node {
    this.writable();
    if (ino === FUSE_ROOT_ID) throw new Errno(E.EOPNOTSUPP);
    return this.node(ino);
  }

  setxattr(ctx: RequestContext, ino: number, name: string, value: Buffer, flags: number): void {
    const node = this.xattrNode(ino);
    setXattr(node, name, value, flags, ctx.uid);
    node.changedNow();
    this.changed(ino, node);
  }

  /** ENODATA is returned, not thrown: asked before the first write to every file (filesystem.ts). */
  getxattr(ctx: RequestContext, ino: number, name: string): Buffer | Errno {
    return xattrValue(this.node(ino), name, ctx.uid) ?? NO_DATA;
  }

  listxattr(ctx: RequestContext, ino: number): string[] {
    return listXattrs(this.node(ino), ctx.uid);
  }

  removexattr(ctx: RequestContext, ino: number, name: string): void {
    const node = this.xattrNode(ino);
    removeXattr(node, name, ctx.uid);
    node.changedNow();
    this.changed(ino, node);
  }

  /**
   * After a reload switched the tree: every name the kernel may cache that now leads elsewhere
   * (or nowhere) is invalidated, and every directory's attributes, so the new version is
   * visible at once. Nodes a reload replaces get new inode numbers, so no stale page survives.
   */
  async invalidateAfterReload(kernel: Notifier): Promise<number> {
    const jobs: Array<Promise<void>> = [];
    for (const [ino, node] of this.inodes.entries()) {
      if (node.type === "directory") jobs.push(kernel.invalInode(ino, 0, 0));
      if (ino === FUSE_ROOT_ID) continue;
      const at = this.names.get(ino);
      const p = this.recordedPath(ino);
      if (at && (p === undefined || this.mv.ns.lookup(p) !== node)) jobs.push(kernel.invalEntry(at.parent, at.name));
      else if (node.type !== "directory") jobs.push(kernel.invalInode(ino, -1, 0));
    }
    await Promise.all(jobs);
    return jobs.length;
  }
}

/**
 * Clears setuid, and setgid if group-executable (otherwise it marks mandatory locking), as
 * Linux does for a write, truncate or chown; true if the mode changed (ctime moves with it).
 */
function killSuidgid(node: Node): boolean {
  const kill = S_ISUID | (node.mode & S_IXGRP ? S_ISGID : 0);
  if ((node.mode & kill) === 0) return false;
  node.mode &= ~kill;
  node.changedNow();
  return true;
}

function typeOf(node: Node): number {
  return S_IF[node.type] >> 12;
}

/** ENAMETOOLONG for a name over NAME_MAX bytes (the kernel lets FUSE names up to 1024 through). */
function checkName(name: string): void {
  if (Buffer.byteLength(name) > VOLUME_LIMITS.maxNameBytes) throw new FsError("ENAMETOOLONG");
}

/**
 * A directory's entries as an open handle lists them: names and what they name side by side, no
 * pair per entry. A listed name without a node has its listed type and its position in the
 * listing (its number is `inoBase` + position); every other has its node and position -1.
 */
interface DirSnapshot {
  dir: DirNode;
  names: string[];
  items: Array<Node | EntryType>;
  positions: number[];
  inoBase: number;
}
