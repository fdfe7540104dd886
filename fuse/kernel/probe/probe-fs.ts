import { constants } from "node:os";
import { FUSE_ROOT_ID } from "../abi.js";
import type { Filesystem } from "../filesystem.js";
import { Errno, type Attr, type DirEntry, type Entry, type Opened, type RequestContext } from "../types.js";

const E = constants.errno;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

interface PNode {
  ino: number;
  mode: number;
  data: Buffer;
  target?: string;
  children?: Map<string, PNode>;
  nlink: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  uid: number;
  gid: number;
}

/**
 * A small in-memory file system for protocol-level tests of the FUSE session: every op the
 * session serves, owners taken from the caller, and one deliberately slow file (`slow`): its
 * reads (direct I/O, so each reaches us) wait until `releaseSlow()` or until interrupted.
 * TTLs are long, so only notifications make outside changes visible.
 */
export class ProbeFs implements Filesystem {
  private readonly nodes = new Map<number, PNode>();
  private nextIno = FUSE_ROOT_ID + 1;
  private slowWaiters: Array<() => void> = [];
  readonly events = { interrupted: 0, slowStarted: 0, forgets: 0, abandoned: 0 };
  readonly ttlMs: number;

  constructor(opts: { ttlMs?: number } = {}) {
    this.ttlMs = opts.ttlMs ?? 3_600_000;
    const now = Date.now();
    this.nodes.set(FUSE_ROOT_ID, { ino: FUSE_ROOT_ID, mode: S_IFDIR | 0o777, data: Buffer.alloc(0), children: new Map(), nlink: 2, atimeMs: now, mtimeMs: now, ctimeMs: now, uid: 0, gid: 0 });
    this.add(FUSE_ROOT_ID, "slow", S_IFREG | 0o644, Buffer.from("slow bytes\n"), 0, 0);
    this.add(FUSE_ROOT_ID, "slow-open", S_IFREG | 0o644, Buffer.from("late\n"), 0, 0);
  }

  /** Sets a file's content from outside the kernel's view (as a reload would); returns parent and inode. */
  setContent(name: string, data: Buffer): { parent: number; ino: number } {
    const root = this.nodes.get(FUSE_ROOT_ID)!;
    let n = root.children!.get(name);
    if (!n) n = this.add(FUSE_ROOT_ID, name, S_IFREG | 0o644, data, 0, 0);
    n.data = data;
    n.mtimeMs = n.ctimeMs = Date.now();
    return { parent: FUSE_ROOT_ID, ino: n.ino };
  }

  /** Removes a name from outside the kernel's view. */
  removeName(name: string): void {
    this.nodes.get(FUSE_ROOT_ID)!.children!.delete(name);
  }

  releaseSlow(): void {
    const w = this.slowWaiters;
    this.slowWaiters = [];
    for (const f of w) f();
  }

  get slowPending(): number {
    return this.slowWaiters.length;
  }

  private add(parent: number, name: string, mode: number, data: Buffer, uid: number, gid: number, target?: string): PNode {
    const now = Date.now();
    const n: PNode = { ino: this.nextIno++, mode, data, nlink: 1, atimeMs: now, mtimeMs: now, ctimeMs: now, uid, gid, target };
    if ((mode & 0o170000) === S_IFDIR) {
      n.children = new Map();
      n.nlink = 2;
    }
    this.nodes.set(n.ino, n);
    this.dir(parent).children!.set(name, n);
    return n;
  }

  private node(ino: number): PNode {
    const n = this.nodes.get(ino);
    if (!n) throw new Errno(E.ESTALE);
    return n;
  }

  private dir(ino: number): PNode {
    const n = this.node(ino);
    if (!n.children) throw new Errno(E.ENOTDIR);
    return n;
  }

  private attr(n: PNode): Attr {
    return { ino: n.ino, size: n.target ? Buffer.byteLength(n.target) : n.data.length, mode: n.mode, nlink: n.nlink, uid: n.uid, gid: n.gid, atimeMs: n.atimeMs, mtimeMs: n.mtimeMs, ctimeMs: n.ctimeMs };
  }

  private entry(n: PNode): Entry {
    return { ino: n.ino, attr: this.attr(n), entryTtlMs: this.ttlMs, attrTtlMs: this.ttlMs };
  }

  /** A missing name is returned as ENOENT, as the volume does (filesystem.ts), not thrown. */
  lookup(_ctx: RequestContext, parent: number, name: string): Entry | Errno {
    const n = this.dir(parent).children!.get(name);
    if (!n) return new Errno(E.ENOENT);
    return this.entry(n);
  }

  forget(): void {
    this.events.forgets++;
  }

  getattr(_ctx: RequestContext, ino: number) {
    return { attr: this.attr(this.node(ino)), ttlMs: this.ttlMs };
  }

  setattr(_ctx: RequestContext, ino: number, set: import("../types.js").SetattrRequest) {
    const n = this.node(ino);
    const now = Date.now();
    if (set.size !== undefined) {
      const d = Buffer.alloc(set.size);
      n.data.copy(d, 0, 0, Math.min(set.size, n.data.length));
      n.data = d;
      n.mtimeMs = now;
    }
    if (set.mode !== undefined) n.mode = (n.mode & 0o170000) | (set.mode & 0o7777);
    if (set.uid !== undefined) n.uid = set.uid;
    if (set.gid !== undefined) n.gid = set.gid;
    if (set.atime !== undefined) n.atimeMs = set.atime === "now" ? now : set.atime;
    if (set.mtime !== undefined) n.mtimeMs = set.mtime === "now" ? now : set.mtime;
    n.ctimeMs = now;
    return { attr: this.attr(n), ttlMs: this.ttlMs };
  }

  readlink(_ctx: RequestContext, ino: number): string {
    const n = this.node(ino);
    if (n.target === undefined) throw new Errno(E.EINVAL);
    return n.target;
  }

  private fresh(parent: number, name: string): void {
    if (this.dir(parent).children!.has(name)) throw new Errno(E.EEXIST);
  }

  mkdir(ctx: RequestContext, parent: number, name: string, mode: number): Entry {
    this.fresh(parent, name);
    return this.entry(this.add(parent, name, S_IFDIR | (mode & 0o7777), Buffer.alloc(0), ctx.uid, ctx.gid));
  }

  mknod(ctx: RequestContext, parent: number, name: string, mode: number): Entry {
    if ((mode & 0o170000) !== S_IFREG) throw new Errno(E.EPERM);
    this.fresh(parent, name);
    return this.entry(this.add(parent, name, mode, Buffer.alloc(0), ctx.uid, ctx.gid));
  }

  symlink(ctx: RequestContext, parent: number, name: string, target: string): Entry {
    this.fresh(parent, name);
    return this.entry(this.add(parent, name, S_IFLNK | 0o777, Buffer.alloc(0), ctx.uid, ctx.gid, target));
  }

  link(_ctx: RequestContext, ino: number, newParent: number, newName: string): Entry {
    this.fresh(newParent, newName);
    const n = this.node(ino);
    this.dir(newParent).children!.set(newName, n);
    n.nlink++;
    return this.entry(n);
  }

  unlink(_ctx: RequestContext, parent: number, name: string): void {
    const d = this.dir(parent);
    const n = d.children!.get(name);
    if (!n) throw new Errno(E.ENOENT);
    if (n.children) throw new Errno(E.EISDIR);
    d.children!.delete(name);
    n.nlink--;
  }

  rmdir(_ctx: RequestContext, parent: number, name: string): void {
    const d = this.dir(parent);
    const n = d.children!.get(name);
    if (!n) throw new Errno(E.ENOENT);
    if (!n.children) throw new Errno(E.ENOTDIR);
    if (n.children.size) throw new Errno(E.ENOTEMPTY);
    d.children!.delete(name);
  }

  rename(_ctx: RequestContext, parent: number, name: string, newParent: number, newName: string, flags: number): void {
    const from = this.dir(parent);
    const n = from.children!.get(name);
    if (!n) throw new Errno(E.ENOENT);
    const to = this.dir(newParent);
    if (flags & 1 && to.children!.has(newName)) throw new Errno(E.EEXIST);
    if (flags & ~1) throw new Errno(E.EINVAL);
    from.children!.delete(name);
    to.children!.set(newName, n);
  }

  open(_ctx: RequestContext, ino: number): Opened | Promise<Opened> {
    const n = this.node(ino);
    if (n.children) throw new Errno(E.EISDIR);
    // Answered only on releaseSlow(), whatever happens meanwhile (a file system that answers late).
    if (this.nodes.get(FUSE_ROOT_ID)!.children!.get("slow-open") === n) return new Promise((res) => this.slowWaiters.push(() => res({ fh: ino })));
    // The slow file bypasses the page cache: every read is a request we hold.
    const slow = this.nodes.get(FUSE_ROOT_ID)!.children!.get("slow") === n;
    return { fh: ino, directIo: slow, keepCache: !slow };
  }

  create(ctx: RequestContext, parent: number, name: string, mode: number) {
    this.fresh(parent, name);
    const n = this.add(parent, name, S_IFREG | (mode & 0o7777), Buffer.alloc(0), ctx.uid, ctx.gid);
    return { entry: this.entry(n), opened: { fh: n.ino } };
  }

  async read(ctx: RequestContext, ino: number, _fh: number, offset: number, size: number): Promise<Buffer> {
    const n = this.node(ino);
    // Only reads of bytes are held: the read at the end of the file answers at once.
    if (this.nodes.get(FUSE_ROOT_ID)!.children!.get("slow") === n && offset < n.data.length) {
      this.events.slowStarted++;
      await new Promise<void>((res, rej) => {
        const signal = ctx.signal;
        const onAbort = () => {
          this.events.interrupted++;
          this.slowWaiters = this.slowWaiters.filter((w) => w !== done);
          rej(Object.assign(new Error("interrupted"), { name: "AbortError" }));
        };
        const done = () => {
          signal.removeEventListener("abort", onAbort);
          res();
        };
        if (signal.aborted) return onAbort();
        signal.addEventListener("abort", onAbort, { once: true });
        this.slowWaiters.push(done);
      });
    }
    return n.data.subarray(offset, offset + size);
  }

  write(_ctx: RequestContext, ino: number, _fh: number, offset: number, data: Buffer): number {
    const n = this.node(ino);
    const end = offset + data.length;
    if (end > n.data.length) {
      const grown = Buffer.alloc(end);
      n.data.copy(grown);
      n.data = grown;
    }
    data.copy(n.data, offset);
    n.mtimeMs = Date.now();
    return data.length;
  }

  flush(): void {}
  release(): void {}
  abandon(): void {
    this.events.abandoned++;
  }
  fsync(): void {}

  readdir(_ctx: RequestContext, ino: number, _fh: number, offset: number, max: number, plus: boolean): DirEntry[] {
    const d = this.dir(ino);
    const all: Array<[string, PNode]> = [[".", d], ["..", d], ...d.children!];
    return all.slice(offset, offset + max).map(([name, n], i) => ({
      name,
      ino: n.ino,
      type: (n.mode & 0o170000) >> 12,
      nextOffset: offset + i + 1,
      entry: plus && name !== "." && name !== ".." ? this.entry(n) : undefined,
    }));
  }

  statfs() {
    return { blocks: 1 << 20, bfree: 1 << 20, bavail: 1 << 20, files: 1 << 20, ffree: 1 << 20, bsize: 4096, namelen: 255, frsize: 4096 };
  }

  getxattr(): Buffer | Errno {
    return new Errno(E.ENODATA);
  }

  listxattr(): string[] {
    return [];
  }
}
