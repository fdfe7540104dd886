import { baseName, type BlockRef, type EntryType, type ManifestEntry, parentOf, type TimeNs, timeNsOf } from "../../protocol/volume.js";
import { FsError } from "../common/errno.js";
import { FileContent, blockListOf, hashesOf } from "./file-content.js";
import type { Listing } from "./listing.js";
import { checkDirEntries, checkPathLength, checkSymlinkTarget } from "./limits.js";
import { sameXattrs, type Xattrs, xattrsFromWire, xattrsToWire } from "./xattrs.js";

/** Permission bits, owner and nanosecond times: what every node has (as a POSIX inode). */
export interface NodeStat {
  /** Permission bits with setuid/setgid/sticky (never the type bits). */
  mode: number;
  uid: number;
  gid: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  /** Extended attributes (xattrs.ts); absent when none. */
  xattrs?: Xattrs;
}

/** Wall-clock ns (performance's origin plus its ns-resolution offset: Date.now() has only ms). */
const originNs = BigInt(Math.round(performance.timeOrigin * 1000)) * 1000n;
export const nowNs = (): bigint => originNs + BigInt(Math.round(performance.now() * 1e6));

/** A new node's stat: all three times now. */
export function newStat(mode: number, uid = 0, gid = 0, t = nowNs()): NodeStat {
  return { mode: mode & 0o7777, uid, gid, atimeNs: t, mtimeNs: t, ctimeNs: t };
}

/** ns → ms, rounded down (also before 1970), as ManifestEntry.mtimeMs. */
export const msOf = (ns: bigint): number => Number((ns - (((ns % 1_000_000n) + 1_000_000n) % 1_000_000n)) / 1_000_000n);

abstract class BaseNode implements NodeStat {
  // Set by setStat, which the constructor calls.
  mode!: number;
  uid!: number;
  gid!: number;
  atimeNs!: bigint;
  mtimeNs!: bigint;
  ctimeNs!: bigint;
  xattrs!: Xattrs | undefined;
  /** The inode number the mount's FUSE file system gave this node (fuse/kernel/inode-map.ts), while it has one. */
  ino: number | undefined = undefined;
  constructor(s: NodeStat) {
    this.setStat(s);
  }
  get mtimeMs(): number {
    return msOf(this.mtimeNs);
  }
  /** Attributes changed (chmod, chown, link, rename…): ctime moves. */
  changedNow(t = nowNs()): void {
    this.ctimeNs = t;
  }
  /** Contents changed (write, truncate, a name added or removed): mtime and ctime move. */
  modifiedNow(t = nowNs()): void {
    this.mtimeNs = this.ctimeNs = t;
  }
  setStat(s: NodeStat): void {
    this.mode = s.mode & 0o7777;
    this.uid = s.uid;
    this.gid = s.gid;
    this.atimeNs = s.atimeNs;
    this.mtimeNs = s.mtimeNs;
    this.ctimeNs = s.ctimeNs;
    this.xattrs = s.xattrs;
  }
}

/** A node that may have several names (anything but a directory). */
abstract class LinkableNode extends BaseNode {
  /** Names this node has (>1 after a hard link; 0 once the last is gone). */
  nlink = 1;
  /** Shared by every name of a hard-linked node in the manifest (set by the first link()). */
  linkId: string | undefined;
}

/**
 * A directory's entries, counting the subdirectories among them as they change: a directory's
 * link count (2 + subdirectories, as ext4) is in every GETATTR of it, which the kernel sends
 * after each create or unlink in it; counting them there cost O(entries) per request.
 *
 * A loaded directory keeps its listing (listing.ts: the server's bytes, no object per entry)
 * and makes a file's (or symlink's, or special file's) node only when something first asks for
 * it by name or walks every node: a `find` lists and never looks most files up, and building a
 * node per listed file was most of a fresh mount's `find` (docs/benchmarks.md). Directories and
 * hard-linked entries get their nodes at load (walks of the tree and link counts need them). The
 * listing is never changed here: a name changed locally gets a node (`nodes`), a listed name
 * removed is noted in `gone`.
 */
export class Children {
  subdirs = 0;
  /** Nodes by name: made ones and those added since the load. A name here hides the listing's. */
  private readonly nodes = new Map<string, Node>();
  /** The listing of the last load (shared with the committed entries), while names of it may still be without a node. */
  private listing: Listing | undefined;
  /** Listed names removed since (they would otherwise show through from the listing). */
  private gone: Set<string> | undefined;
  /** Listed names without a node, not removed. */
  private pending = 0;
  private make: ((entry: ManifestEntry) => Node) | undefined;
  /**
   * First of the inode numbers reserved for the listing (fuse-ops.ts, when a listing of the
   * directory first shows them): the listed name at position i has number base + i, so a plain
   * READDIR can give a name its number without making its node, and the node made later agrees.
   */
  inoBase: number | undefined;

  get size(): number {
    return this.nodes.size + this.pending;
  }

  get(name: string): Node | undefined {
    const node = this.nodes.get(name);
    if (node !== undefined || this.pending === 0) return node;
    return this.made(name, undefined);
  }

  has(name: string): boolean {
    return this.nodes.has(name) || this.isPending(name);
  }

  set(name: string, node: Node): this {
    const old = this.nodes.get(name);
    if (old?.type === "directory") this.subdirs--;
    else if (old === undefined && this.isPending(name)) this.pending--;
    if (node.type === "directory") this.subdirs++;
    this.nodes.set(name, node);
    return this;
  }

  delete(name: string): boolean {
    const old = this.nodes.get(name);
    const pending = old === undefined && this.isPending(name);
    if (old === undefined && !pending) return false;
    if (old?.type === "directory") this.subdirs--;
    if (pending) this.pending--;
    this.nodes.delete(name);
    if (this.listing?.has(name)) (this.gone ??= new Set()).add(name);
    return true;
  }

  clear(): void {
    this.nodes.clear();
    this.subdirs = 0;
    this.listing = this.gone = this.make = this.inoBase = undefined;
    this.pending = 0;
  }

  /**
   * Takes `listing` (kept, immutable) as the directory's committed entries: names it already has
   * keep their nodes; `make` makes a listed entry's node when first needed.
   */
  load(listing: Listing, make: (entry: ManifestEntry) => Node): void {
    this.makeAll();
    this.listing = listing;
    this.make = make;
    this.gone = this.inoBase = undefined;
    this.pending = 0;
    const some = this.nodes.size > 0;
    for (let i = 0; i < listing.size; i++) {
      const early = listing.typeAt(i) === "directory" || listing.linkedAt(i);
      // A name is made a string only where needed: a node to make now, or names to check against.
      if (!early && !some) {
        this.pending++;
        continue;
      }
      const name = listing.nameAt(i);
      if (some && this.nodes.has(name)) continue;
      if (!early) {
        this.pending++;
        continue;
      }
      const node = make(listing.entryAt(i));
      if (node.type === "directory") this.subdirs++;
      this.nodes.set(name, node);
    }
    if (this.pending === 0) this.listing = this.make = undefined;
  }

  /** Every name and node (made now where still to make). */
  [Symbol.iterator](): IterableIterator<[string, Node]> {
    this.makeAll();
    return this.nodes.entries();
  }

  entries(): IterableIterator<[string, Node]> {
    return this[Symbol.iterator]();
  }

  keys(): IterableIterator<string> {
    this.makeAll();
    return this.nodes.keys();
  }

  values(): IterableIterator<Node> {
    this.makeAll();
    return this.nodes.values();
  }

  /**
   * The names that have a node, without making any: every directory and hard link, and whatever
   * was used or changed. Given a name (and, if known, its position in the listing), that name's
   * node, made now if it is a listed name without one.
   */
  made(): IterableIterator<[string, Node]>;
  made(name: string, position: number | undefined): Node | undefined;
  made(name?: string, position?: number): IterableIterator<[string, Node]> | Node | undefined {
    if (name === undefined) return this.nodes.entries();
    const node = this.nodes.get(name);
    if (node !== undefined || this.pending === 0 || this.gone?.has(name)) return node;
    const listing = this.listing!;
    // A position from an older listing (a handle opened before a reload) is looked up again.
    const i = position !== undefined && position < listing.size && listing.nameAt(position) === name ? position : listing.indexOf(name);
    if (i < 0) return undefined;
    const made = this.make!(listing.entryAt(i));
    if (this.inoBase !== undefined) made.ino = this.inoBase + i;
    this.nodes.set(name, made);
    if (--this.pending === 0) this.listing = this.gone = this.make = undefined;
    return made;
  }

  /**
   * Calls `each` for every name in listing order, then those added since: with its node if it
   * has one, else with its listed type and its position in the listing (no node made).
   */
  list(each: (name: string, node: Node | undefined, type: EntryType | undefined, position: number) => void): void {
    const listing = this.listing;
    if (listing === undefined) {
      for (const [name, node] of this.nodes) each(name, node, undefined, -1);
      return;
    }
    // Nodes met in the listing: the rest were added since (only those ask the listing by name).
    let met = 0;
    for (let i = 0; i < listing.size; i++) {
      const name = listing.nameAt(i);
      const node = this.nodes.get(name);
      if (node !== undefined) {
        met++;
        each(name, node, undefined, -1);
      } else if (!this.gone?.has(name)) each(name, undefined, listing.typeAt(i), i);
    }
    if (met < this.nodes.size) for (const [name, node] of this.nodes) if (!listing.has(name)) each(name, node, undefined, -1);
  }

  /** Names listed at the last load (inode numbers reserved for a listing cover them all). */
  get listed(): number {
    return this.listing?.size ?? 0;
  }

  private isPending(name: string): boolean {
    return this.pending > 0 && !this.nodes.has(name) && this.listing!.has(name) && !this.gone?.has(name);
  }

  private makeAll(): void {
    if (this.pending === 0) return;
    const listing = this.listing!;
    for (let i = 0; i < listing.size && this.pending > 0; i++) this.made(listing.nameAt(i), i);
  }
}

export class DirNode extends BaseNode {
  readonly type = "directory";
  readonly children = new Children();
  /**
   * Whether `children` holds the view version's entries (plus local changes). A directory read
   * from the server starts unloaded and empty until something needs its entries (lazy-load.ts);
   * one made here has all its entries from the start.
   */
  loaded = true;
}

/** A committed file's size and block list, as a load reads it (its ManifestEntry, which the mount keeps anyway). */
export interface CommittedBytes {
  readonly size: number;
  readonly blocks?: readonly BlockRef[];
}

export class FileNode extends LinkableNode {
  readonly type = "file";
  private bytes: FileContent | CommittedBytes;
  /**
   * `bytes` may be a loaded file's committed size and blocks: its FileContent (a few Maps, Sets
   * and a lock, ~1/3 of what a loaded entry held) is made when something first needs it, so a
   * walk that only lists or stats files makes none.
   */
  constructor(stat: NodeStat, bytes: FileContent | CommittedBytes) {
    super(stat);
    this.bytes = bytes;
  }

  get content(): FileContent {
    const b = this.bytes;
    if (b instanceof FileContent) return b;
    const c = new FileContent(b.size, hashesOf(b.blocks ?? []));
    this.bytes = c;
    return c;
  }

  /** The FileContent, if something made it (else the file holds only its committed entry). */
  get loadedContent(): FileContent | undefined {
    return this.bytes instanceof FileContent ? this.bytes : undefined;
  }

  /** The file's size, without making its FileContent. */
  get size(): number {
    return this.bytes.size;
  }
}

export class LinkNode extends LinkableNode {
  readonly type = "symlink";
  constructor(
    readonly target: string,
    stat: NodeStat,
  ) {
    super(stat);
  }
}

export type SpecialType = "fifo" | "socket" | "char" | "block";

/** A fifo, socket or device: metadata only (the kernel serves them; devices are not opened on a nodev mount). */
export class SpecialNode extends LinkableNode {
  constructor(
    readonly type: SpecialType,
    /** Device number (char and block), as st_rdev. */
    readonly rdev: number,
    stat: NodeStat,
  ) {
    super(stat);
  }
}

export type Node = DirNode | FileNode | LinkNode | SpecialNode;

/** Drops one name of a node that left the tree (hard links keep the node alive under the others). */
export function unlinkOne(node: Node | undefined): void {
  if (node && node.type !== "directory") node.nlink--;
}

/** `/a/b` (FUSE) → `a/b` (manifest); the root is "". */
export const relPath = (fusePath: string) => fusePath.replace(/^\/+/, "").replace(/\/+$/, "");

/**
 * The mounted tree: the committed version's entries plus local changes, all in memory.
 * Every path whose entry may differ from the last commit is recorded in `dirty`.
 */
export class Namespace {
  readonly root = new DirNode(newStat(0o755));
  /** The newest node of each hard-link id seen in committed entries (load and reload rejoin names into one node). */
  private readonly linked = new Map<string, Node>();
  readonly dirty = new Set<string>();
  /** Called with every path that changed (the journal records their new state). */
  onTouch: ((path: string) => void) | undefined;
  /** Files + directories + symlinks, as the volume's inode limit counts them. */
  inodes = 0;

  constructor(public inodeLimit: number) {}

  lookup(path: string): Node | undefined {
    if (path === "") return this.root;
    let node: Node | undefined = this.root;
    for (const name of path.split("/")) {
      if (node?.type !== "directory") return undefined;
      node = node.children.get(name);
    }
    return node;
  }

  /** Parent directory and last name of `path`, for operations that add or remove it. */
  parent(path: string): { dir: DirNode; name: string } {
    const dir = this.lookup(parentOf(path));
    if (!dir) throw new FsError("ENOENT");
    if (dir.type !== "directory") throw new FsError("ENOTDIR");
    return { dir, name: baseName(path) };
  }

  /**
   * Adds a new name (creat, mkdir, symlink, link). Refuses what a commit would refuse:
   * ENAMETOOLONG, ENOSPC past the inode limit or a full directory.
   */
  add(path: string, node: Node): void {
    checkPathLength(path);
    if (node.type === "symlink") checkSymlinkTarget(node.target);
    const { dir, name } = this.parent(path);
    if (dir.children.has(name)) throw new FsError("EEXIST");
    if (this.inodes >= this.inodeLimit) throw new FsError("ENOSPC");
    checkDirEntries(dir.children.size);
    dir.children.set(name, node);
    this.inodes++;
    dir.modifiedNow();
    this.touchParent(path);
    this.touch(path);
  }

  /** Removes a name (unlink, rmdir); returns the node so the caller can release its content. */
  remove(path: string): Node {
    const { dir, name } = this.parent(path);
    const node = dir.children.get(name);
    if (!node) throw new FsError("ENOENT");
    dir.children.delete(name);
    this.inodes -= this.count(path, node);
    unlinkOne(node);
    dir.modifiedNow();
    if (node.type !== "directory" && node.nlink > 0) node.changedNow();
    this.touchParent(path);
    this.touch(path);
    return node;
  }

  /** rename(2): replaces an existing target of a compatible type; returns the replaced node. */
  rename(from: string, to: string): Node | undefined {
    if (from === to) return undefined;
    if (to.startsWith(`${from}/`)) throw new FsError("EINVAL");
    const src = this.parent(from);
    const node = src.dir.children.get(src.name);
    if (!node) throw new FsError("ENOENT");
    const dst = this.parent(to);
    const old = dst.dir.children.get(dst.name);
    if (old === node) return undefined;
    checkPathLength(to);
    // Every path below a moved directory gets longer or shorter with it.
    if (node.type === "directory") checkPathLength(to + longestSuffix(node));
    if (!old && dst.dir !== src.dir) checkDirEntries(dst.dir.children.size);
    if (old) {
      if (node.type === "directory" && old.type !== "directory") throw new FsError("ENOTDIR");
      if (node.type !== "directory" && old.type === "directory") throw new FsError("EISDIR");
      if (old.type === "directory" && old.children.size > 0) throw new FsError("ENOTEMPTY");
      this.inodes -= this.count(to, old);
      unlinkOne(old);
      if (old.type !== "directory" && old.nlink > 0) old.changedNow();
    }
    // Every path below both names changes.
    this.touchTree(from, node);
    src.dir.children.delete(src.name);
    dst.dir.children.set(dst.name, node);
    this.inodes += this.count(to, node) - this.count(from, node);
    const t = nowNs();
    src.dir.modifiedNow(t);
    dst.dir.modifiedNow(t);
    // As ext4: a renamed inode's ctime moves too.
    node.changedNow(t);
    this.touchParent(from);
    this.touchParent(to);
    this.touchTree(to, node);
    return old;
  }

  /** renameat2(RENAME_EXCHANGE): swaps what two existing names point to, in one step. */
  exchange(a: string, b: string): void {
    if (a === b) return;
    // The kernel refuses an ancestor with EINVAL before asking, but not every caller is the kernel.
    if (b.startsWith(`${a}/`) || a.startsWith(`${b}/`)) throw new FsError("EINVAL");
    const pa = this.parent(a);
    const pb = this.parent(b);
    const na = pa.dir.children.get(pa.name);
    const nb = pb.dir.children.get(pb.name);
    if (!na || !nb) throw new FsError("ENOENT");
    if (na === nb) return;
    if (na.type === "directory") checkPathLength(b + longestSuffix(na));
    if (nb.type === "directory") checkPathLength(a + longestSuffix(nb));
    this.touchTree(a, na);
    this.touchTree(b, nb);
    this.inodes += this.count(b, na) + this.count(a, nb) - this.count(a, na) - this.count(b, nb);
    pa.dir.children.set(pa.name, nb);
    pb.dir.children.set(pb.name, na);
    const t = nowNs();
    pa.dir.modifiedNow(t);
    pb.dir.modifiedNow(t);
    na.changedNow(t);
    nb.changedNow(t);
    this.touchParent(a);
    this.touchParent(b);
    this.touchTree(a, nb);
    this.touchTree(b, na);
  }

  /** Marks a path as changed since the last commit. */
  touch(path: string): void {
    this.dirty.add(path);
    this.onTouch?.(path);
  }

  /** A name was added or removed: the directory's new mtime is a change too (the root has no entry). */
  private touchParent(path: string): void {
    const dir = parentOf(path);
    if (dir) this.touch(dir);
  }

  touchTree(path: string, node: Node): void {
    this.touch(path);
    if (node.type === "directory") for (const [name, child] of node.children) this.touchTree(`${path}/${name}`, child);
  }

  /** Inodes a subtree counts for. */
  count(path: string, node: Node): number {
    let n = 1;
    if (node.type === "directory") for (const [name, child] of node.children) n += this.count(`${path}/${name}`, child);
    return n;
  }

  /** Whether every directory on the way to `path` that exists is loaded (else a reload leaves `path` to that directory's later load). */
  reachable(path: string): boolean {
    if (path === "") return true;
    let node: Node | undefined = this.root;
    for (const name of path.split("/")) {
      if (node?.type !== "directory") return true;
      if (!node.loaded) return false;
      node = node.children.get(name);
    }
    return true;
  }

  /**
   * Fills unloaded directory `dir` (at `path`) with its committed entries, as a load reads them:
   * subdirectories start unloaded, names of a hard link already loaded join its node. The
   * entries were counted in `inodes` already (the server's count). `listing` is kept as it is
   * (the committed entries share it).
   */
  loadChildren(dir: DirNode, listing: Listing): void {
    dir.children.load(listing, this.loadedNode);
    dir.loaded = true;
  }

  /** A listed entry's node when first needed (Children): a hard link's other names join its node. */
  private readonly loadedNode = (entry: ManifestEntry): Node => {
    const linked = this.linkedNode(entry);
    if (linked) {
      linked.nlink++;
      return linked;
    }
    const node = nodeFromEntry(entry);
    if (node.type === "directory") node.loaded = false;
    if (entry.linkId) this.linked.set(entry.linkId, node);
    return node;
  };

  /** Walks every (path, node) below `path` (not including it), parents first. */
  *walk(path = "", node: Node = this.root): Generator<[string, Node]> {
    if (node.type !== "directory") return;
    for (const [name, child] of node.children) {
      const p = path ? `${path}/${name}` : name;
      yield [p, child];
      yield* this.walk(p, child);
    }
  }

  /**
   * Walks the (path, node) of every node made so far, parents first: what a search for nodes
   * already in hand needs (a listed name without a node is none of them), without making a
   * node for every listed name of the loaded tree.
   */
  *walkMade(path = "", node: Node = this.root): Generator<[string, Node]> {
    if (node.type !== "directory") return;
    for (const [name, child] of node.children.made()) {
      const p = path ? `${path}/${name}` : name;
      yield [p, child];
      yield* this.walkMade(p, child);
    }
  }

  /**
   * Sets `path` to a committed entry (tree load, reload), creating missing parents. A directory
   * stays the same node (its children survive); anything else is replaced.
   */
  applyPut(entry: ManifestEntry): Node | undefined {
    const same = this.linkedNode(entry);
    if (same) {
      if (this.lookup(entry.path) === same) return undefined;
      same.nlink++;
      return this.applyNode(entry.path, same);
    }
    const node = nodeFromEntry(entry);
    if (entry.linkId) this.linked.set(entry.linkId, node);
    return this.applyNode(entry.path, node);
  }

  /** The node already holding another name of `entry`'s hard link, if it matches it (else it is a separate file). */
  private linkedNode(entry: ManifestEntry): Exclude<Node, DirNode> | undefined {
    const node = entry.linkId ? this.linked.get(entry.linkId) : undefined;
    if (!node || node.type === "directory" || node.nlink <= 0 || node.type !== entry.type) return undefined;
    if (node.type === "file" && !node.content.clean) return undefined;
    return sameEntry(entryOf(entry.path, node), entry) ? node : undefined;
  }

  /** applyPut with a node of our own (journal replay: hard links share one FileNode). */
  applyNode(path: string, node: Node): Node | undefined {
    const segments = path.split("/");
    let dir = this.root;
    for (let k = 0; k < segments.length - 1; k++) {
      let next = dir.children.get(segments[k]!);
      if (next?.type !== "directory") {
        if (next) this.inodes -= this.count(segments.slice(0, k + 1).join("/"), next);
        unlinkOne(next);
        next = new DirNode({ ...newStat(0o755), atimeNs: node.mtimeNs, mtimeNs: node.mtimeNs, ctimeNs: node.mtimeNs });
        dir.children.set(segments[k]!, next);
        this.inodes++;
      }
      dir = next;
    }
    const name = segments[segments.length - 1]!;
    const old = dir.children.get(name);
    if (old === node) return undefined;
    if (node.type === "directory" && old?.type === "directory") {
      old.setStat(node);
      return undefined;
    }
    if (old) this.inodes -= this.count(path, old);
    unlinkOne(old);
    dir.children.set(name, node);
    this.inodes += this.count(path, node);
    return old;
  }

  /** Removes `path` and everything below it, if present (reload); returns the removed node. */
  applyDelete(path: string): Node | undefined {
    const dir = this.lookup(parentOf(path));
    if (dir?.type !== "directory") return undefined;
    const name = baseName(path);
    const old = dir.children.get(name);
    if (!old) return undefined;
    dir.children.delete(name);
    this.inodes -= this.count(path, old);
    unlinkOne(old);
    return old;
  }
}

/** The longest `/a/b…` below a directory, so a rename can tell the longest path it would create. */
function longestSuffix(dir: DirNode): string {
  let best = "";
  for (const [name, child] of dir.children) {
    const s = `/${name}${child.type === "directory" ? longestSuffix(child) : ""}`;
    if (Buffer.byteLength(s) > Buffer.byteLength(best)) best = s;
  }
  return best;
}

/** A node's stat as manifest entries and journal records carry it. */
export type StatFields = Pick<ManifestEntry, "mode" | "mtimeMs" | "uid" | "gid" | "atimeNs" | "mtimeNs" | "ctimeNs" | "linkId" | "xattrs">;

/** The last mtime statOf converted, and its bigint. */
let lastMtime: { ns: TimeNs | undefined; ms: number; value: bigint } = { ns: undefined, ms: Number.NaN, value: 0n };

/** A committed entry's or journal record's stat (those written before POSIX metadata: root's, mtimeMs for every time). */
export function statOf(e: StatFields): NodeStat {
  // Times that are equal share one bigint (immutable): a loaded tree holds ~1/3 of them. Entries
  // in a row often have the same mtime (a copy, an unpacked archive): those share one too.
  if (e.mtimeNs !== lastMtime.ns || e.mtimeMs !== lastMtime.ms) lastMtime = { ns: e.mtimeNs, ms: e.mtimeMs, value: timeNsOf(e.mtimeNs, e.mtimeMs) };
  const mtimeNs = lastMtime.value;
  return {
    mode: e.mode,
    uid: e.uid ?? 0,
    gid: e.gid ?? 0,
    atimeNs: e.atimeNs === e.mtimeNs ? mtimeNs : timeNsOf(e.atimeNs, e.mtimeMs),
    mtimeNs,
    ctimeNs: e.ctimeNs === e.mtimeNs ? mtimeNs : timeNsOf(e.ctimeNs, e.mtimeMs),
    xattrs: xattrsFromWire(e.xattrs),
  };
}

export function nodeFromEntry(e: ManifestEntry): Node {
  const stat = statOf(e);
  let node: Node;
  switch (e.type) {
    case "directory":
      return new DirNode(stat);
    case "symlink":
      node = new LinkNode(e.target ?? "", stat);
      break;
    case "file":
      node = new FileNode(stat, e);
      break;
    default:
      node = new SpecialNode(e.type, e.rdev ?? 0, stat);
  }
  node.linkId = e.linkId;
  return node;
}

/** The stat fields of an entry or journal record for `node`. */
export function statFields(node: Node): StatFields {
  const xattrs = xattrsToWire(node.xattrs);
  return {
    mode: node.mode & 0o7777,
    mtimeMs: node.mtimeMs,
    uid: node.uid,
    gid: node.gid,
    mtimeNs: node.mtimeNs.toString(),
    atimeNs: node.atimeNs.toString(),
    ctimeNs: node.ctimeNs.toString(),
    ...(node.type !== "directory" && node.linkId !== undefined ? { linkId: node.linkId } : {}),
    ...(xattrs ? { xattrs } : {}),
  };
}

/** The manifest entry a node commits as; files must have every block hashed (FileContent.clean). */
export function entryOf(path: string, node: Node): ManifestEntry {
  const base = { path, ...statFields(node) };
  switch (node.type) {
    case "directory":
      return { ...base, type: "directory", size: 0 };
    case "symlink":
      return { ...base, type: "symlink", size: Buffer.byteLength(node.target), target: node.target };
    case "file":
      return { ...base, type: "file", size: node.content.size, blocks: blockListOf(node.content.hashes) };
    default:
      return { ...base, type: node.type, size: 0, ...(node.type === "char" || node.type === "block" ? { rdev: node.rdev } : {}) };
  }
}

export function sameEntry(a: ManifestEntry, b: ManifestEntry): boolean {
  const sa = statOf(a);
  const sb = statOf(b);
  return (
    a.type === b.type &&
    a.mode === b.mode &&
    a.size === b.size &&
    sa.uid === sb.uid &&
    sa.gid === sb.gid &&
    sa.mtimeNs === sb.mtimeNs &&
    sa.atimeNs === sb.atimeNs &&
    sa.ctimeNs === sb.ctimeNs &&
    (a.rdev ?? 0) === (b.rdev ?? 0) &&
    a.linkId === b.linkId &&
    a.target === b.target &&
    sameXattrs(a.xattrs, b.xattrs) &&
    (a.blocks ?? []).join() === (b.blocks ?? []).join()
  );
}
