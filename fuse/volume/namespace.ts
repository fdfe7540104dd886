import type { ManifestEntry } from "../../protocol/volume.js";
import { FsError } from "../common/errno.js";
import { FileContent, blockListOf, hashesOf } from "./file-content.js";
import { checkDirEntries, checkPathLength, checkSymlinkTarget } from "./limits.js";
import { sameXattrs, type Xattrs, xattrsFromWire, xattrsToWire } from "./xattrs.js";

export class DirNode {
  readonly type = "directory";
  readonly children = new Map<string, Node>();
  xattrs?: Xattrs;
  constructor(
    public mode: number,
    public mtimeMs: number,
  ) {}
}

export class FileNode {
  readonly type = "file";
  /** Paths naming this node (>1 after a hard link). */
  nlink = 1;
  xattrs?: Xattrs;
  constructor(
    public mode: number,
    public mtimeMs: number,
    readonly content: FileContent,
  ) {}
}

export class LinkNode {
  readonly type = "symlink";
  xattrs?: Xattrs;
  constructor(
    readonly target: string,
    public mode: number,
    public mtimeMs: number,
  ) {}
}

export type Node = DirNode | FileNode | LinkNode;

/** `/a/b` (FUSE) → `a/b` (manifest); the root is "". */
export const relPath = (fusePath: string) => fusePath.replace(/^\/+/, "").replace(/\/+$/, "");

/**
 * libfuse renames a file that is unlinked while open to `.fuse_hidden…` until it is released;
 * such names are local bookkeeping, never committed nor counted against the inode limit.
 */
export const isHidden = (path: string) => /(^|\/)\.fuse_hidden[^/]*$/.test(path);

/**
 * The mounted tree: the committed version's entries plus local changes, all in memory.
 * Every path whose entry may differ from the last commit is recorded in `dirty`.
 */
export class Namespace {
  readonly root = new DirNode(0o755, Date.now());
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
    const slash = path.lastIndexOf("/");
    const dir = this.lookup(slash < 0 ? "" : path.slice(0, slash));
    if (!dir) throw new FsError("ENOENT");
    if (dir.type !== "directory") throw new FsError("ENOTDIR");
    return { dir, name: path.slice(slash + 1) };
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
    const counted = !isHidden(path);
    if (counted && this.inodes >= this.inodeLimit) throw new FsError("ENOSPC");
    if (counted) checkDirEntries(dir.children.size);
    dir.children.set(name, node);
    if (counted) this.inodes++;
    dir.mtimeMs = Date.now();
    this.touch(path);
  }

  /** Removes a name (unlink, rmdir); returns the node so the caller can release its content. */
  remove(path: string): Node {
    const { dir, name } = this.parent(path);
    const node = dir.children.get(name);
    if (!node) throw new FsError("ENOENT");
    dir.children.delete(name);
    this.inodes -= this.count(path, node);
    if (node.type === "file") node.nlink--;
    dir.mtimeMs = Date.now();
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
    if (!isHidden(to)) {
      checkPathLength(to);
      // Every path below a moved directory gets longer or shorter with it.
      if (node.type === "directory") checkPathLength(to + longestSuffix(node));
      if (!old && dst.dir !== src.dir) checkDirEntries(dst.dir.children.size);
    }
    if (old) {
      if (node.type === "directory" && old.type !== "directory") throw new FsError("ENOTDIR");
      if (node.type !== "directory" && old.type === "directory") throw new FsError("EISDIR");
      if (old.type === "directory" && old.children.size > 0) throw new FsError("ENOTEMPTY");
      this.inodes -= this.count(to, old);
      if (old.type === "file") old.nlink--;
    }
    // Every path below both names changes.
    this.touchTree(from, node);
    src.dir.children.delete(src.name);
    dst.dir.children.set(dst.name, node);
    this.inodes += this.count(to, node) - this.count(from, node);
    src.dir.mtimeMs = dst.dir.mtimeMs = Date.now();
    this.touchTree(to, node);
    return old;
  }

  /** Marks a path as changed since the last commit. */
  touch(path: string): void {
    this.dirty.add(path);
    this.onTouch?.(path);
  }

  touchTree(path: string, node: Node): void {
    this.touch(path);
    if (node.type === "directory") for (const [name, child] of node.children) this.touchTree(`${path}/${name}`, child);
  }

  /** Inodes a subtree counts for (hidden names count for nothing). */
  count(path: string, node: Node): number {
    let n = isHidden(path) ? 0 : 1;
    if (node.type === "directory") for (const [name, child] of node.children) n += this.count(`${path}/${name}`, child);
    return n;
  }

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
   * Sets `path` to a committed entry (tree load, reload), creating missing parents. A directory
   * stays the same node (its children survive); anything else is replaced.
   */
  applyPut(entry: ManifestEntry): Node | undefined {
    return this.applyNode(entry.path, nodeFromEntry(entry));
  }

  /** applyPut with a node of our own (journal replay: hard links share one FileNode). */
  applyNode(path: string, node: Node): Node | undefined {
    const segments = path.split("/");
    let dir = this.root;
    for (let k = 0; k < segments.length - 1; k++) {
      let next = dir.children.get(segments[k]!);
      if (next?.type !== "directory") {
        if (next) this.inodes -= this.count(segments.slice(0, k + 1).join("/"), next);
        if (next?.type === "file") next.nlink--;
        next = new DirNode(0o755, node.mtimeMs);
        dir.children.set(segments[k]!, next);
        this.inodes++;
      }
      dir = next;
    }
    const name = segments[segments.length - 1]!;
    const old = dir.children.get(name);
    if (old === node) return undefined;
    if (node.type === "directory" && old?.type === "directory") {
      old.mode = node.mode;
      old.mtimeMs = node.mtimeMs;
      old.xattrs = node.xattrs;
      return undefined;
    }
    if (old) this.inodes -= this.count(path, old);
    if (old?.type === "file") old.nlink--;
    dir.children.set(name, node);
    this.inodes += this.count(path, node);
    return old;
  }

  /** Removes `path` and everything below it, if present (reload); returns the removed node. */
  applyDelete(path: string): Node | undefined {
    const slash = path.lastIndexOf("/");
    const dir = this.lookup(slash < 0 ? "" : path.slice(0, slash));
    if (dir?.type !== "directory") return undefined;
    const name = path.slice(slash + 1);
    const old = dir.children.get(name);
    if (!old) return undefined;
    dir.children.delete(name);
    this.inodes -= this.count(path, old);
    if (old.type === "file") old.nlink--;
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

export function nodeFromEntry(e: ManifestEntry): Node {
  const node = nodeOfType(e);
  node.xattrs = xattrsFromWire(e.xattrs);
  return node;
}

function nodeOfType(e: ManifestEntry): Node {
  switch (e.type) {
    case "directory":
      return new DirNode(e.mode, e.mtimeMs);
    case "symlink":
      return new LinkNode(e.target ?? "", e.mode, e.mtimeMs);
    default:
      return new FileNode(e.mode, e.mtimeMs, new FileContent(e.size, hashesOf(e.blocks ?? [])));
  }
}

/** The manifest entry a node commits as; files must have every block hashed (FileContent.clean). */
export function entryOf(path: string, node: Node): ManifestEntry {
  const entry = entryOfType(path, node);
  const xattrs = xattrsToWire(node.xattrs);
  return xattrs ? { ...entry, xattrs } : entry;
}

function entryOfType(path: string, node: Node): ManifestEntry {
  switch (node.type) {
    case "directory":
      return { path, type: "directory", mode: node.mode & 0o7777, size: 0, mtimeMs: node.mtimeMs };
    case "symlink":
      return { path, type: "symlink", mode: node.mode & 0o7777, size: Buffer.byteLength(node.target), mtimeMs: node.mtimeMs, target: node.target };
    default:
      return { path, type: "file", mode: node.mode & 0o7777, size: node.content.size, mtimeMs: node.mtimeMs, blocks: blockListOf(node.content.hashes) };
  }
}

export function sameEntry(a: ManifestEntry, b: ManifestEntry): boolean {
  return (
    a.type === b.type &&
    a.mode === b.mode &&
    a.size === b.size &&
    a.mtimeMs === b.mtimeMs &&
    a.target === b.target &&
    sameXattrs(a.xattrs, b.xattrs) &&
    (a.blocks ?? []).join() === (b.blocks ?? []).join()
  );
}
