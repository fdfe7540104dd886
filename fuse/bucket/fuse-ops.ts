import { constants } from "node:fs";
import { constants as os } from "node:os";
import { FUSE_ROOT_ID } from "../kernel/abi.js";
import type { Filesystem } from "../kernel/filesystem.js";
import { InodeMap } from "../kernel/inode-map.js";
import { type DirEntry, type Entry, Errno, type RequestContext, type SetattrRequest } from "../kernel/types.js";
import { FsError, NegativeErrno } from "../common/errno.js";
import type { BucketFs, Stat } from "./bucket-fs.js";

const E = os.errno;

/** The errno of a bucket FsError (for the session's `errno` option); logs all but ENOENT. */
export function bucketErrno(log: (msg: string) => void): (err: unknown) => number | undefined {
  return (err) => {
    if (!(err instanceof FsError)) return undefined;
    if (err.errno !== NegativeErrno.ENOENT) log(err.message);
    return -err.errno;
  };
}

/**
 * A bucket mount as an inode-based FUSE file system: inode numbers name paths (S3 keys have
 * no identity of their own, and a bucket mount never renames), BucketFs does the work.
 */
export class BucketFuseOps implements Filesystem {
  private readonly inodes = new InodeMap<string>("/");
  private readonly dirHandles = new Map<number, string[]>();
  private nextDirHandle = 1;

  constructor(
    private readonly fs: BucketFs,
    private readonly opts: { readOnly: boolean; ttlMs: number; log: (msg: string) => void },
  ) {}

  private path(ino: number): string {
    const p = this.inodes.get(ino);
    if (p === undefined) throw new Errno(E.ESTALE);
    return p;
  }

  private child(parent: number, name: string): string {
    const p = this.path(parent);
    return p === "/" ? `/${name}` : `${p}/${name}`;
  }

  /** Allocates the inode number: call it after the last await. */
  private entry(path: string, st: Stat): Entry {
    const ino = this.inodes.ino(path);
    return { ino, attr: { ...st, ino }, entryTtlMs: this.opts.ttlMs, attrTtlMs: this.opts.ttlMs };
  }

  /** What a bucket mount cannot do: EROFS on a read-only mount, else `errno`. */
  private refuse(errno: number, what: string, path: string): never {
    const err = this.opts.readOnly ? E.EROFS : errno;
    this.opts.log(`${what} ${path}: ${err === E.EROFS ? "the mount is read-only" : "not supported on a bucket mount"}`);
    throw new Errno(err);
  }

  async lookup(_ctx: RequestContext, parent: number, name: string): Promise<Entry> {
    const p = this.child(parent, name);
    const st = await this.fs.getattr(p);
    return this.entry(p, st);
  }

  forget(ino: number): void {
    this.inodes.forget(ino);
  }

  async getattr(_ctx: RequestContext, ino: number) {
    const st = await this.fs.getattr(this.path(ino));
    return { attr: { ...st, ino }, ttlMs: this.opts.ttlMs };
  }

  async setattr(ctx: RequestContext, ino: number, set: SetattrRequest) {
    const p = this.path(ino);
    if (set.mode !== undefined) this.refuse(E.EPERM, "chmod", p);
    if (set.uid !== undefined || set.gid !== undefined) this.refuse(E.EPERM, "chown", p);
    if (set.size !== undefined) await this.fs.truncate(p, set.size, set.fh);
    // Times cannot be set on S3 objects; accepting it keeps `touch` and `cp -p` working.
    if (set.atime !== undefined || set.mtime !== undefined) this.fs.refuseIfReadOnly("utimens", p);
    return this.getattr(ctx, ino);
  }

  readlink(): never {
    throw new Errno(E.EINVAL);
  }

  async mkdir(_ctx: RequestContext, parent: number, name: string): Promise<Entry> {
    const p = this.child(parent, name);
    await this.fs.mkdir(p);
    const st = await this.fs.getattr(p);
    return this.entry(p, st);
  }

  async unlink(_ctx: RequestContext, parent: number, name: string): Promise<void> {
    await this.fs.unlink(this.child(parent, name));
  }

  async rmdir(_ctx: RequestContext, parent: number, name: string): Promise<void> {
    await this.fs.rmdir(this.child(parent, name));
  }

  rename(_ctx: RequestContext, parent: number, name: string): never {
    return this.refuse(E.ENOTSUP, "rename", this.child(parent, name));
  }
  link(_ctx: RequestContext, ino: number): never {
    return this.refuse(E.ENOTSUP, "link", this.path(ino));
  }
  symlink(_ctx: RequestContext, parent: number, name: string): never {
    return this.refuse(E.ENOTSUP, "symlink", this.child(parent, name));
  }
  mknod(_ctx: RequestContext, parent: number, name: string): never {
    return this.refuse(E.ENOTSUP, "mknod", this.child(parent, name));
  }
  setxattr(_ctx: RequestContext, ino: number): never {
    return this.refuse(E.ENOTSUP, "setxattr", this.path(ino));
  }

  access(_ctx: RequestContext, ino: number, mask: number): void {
    if (mask & constants.W_OK) this.fs.refuseIfReadOnly("access", this.path(ino));
  }

  async open(_ctx: RequestContext, ino: number, flags: number) {
    // No keepCache: the object may have changed in the bucket since the last open.
    return { fh: await this.fs.open(this.path(ino), flags) };
  }

  async create(_ctx: RequestContext, parent: number, name: string) {
    const p = this.child(parent, name);
    const fh = await this.fs.create(p);
    const st = await this.fs.getattr(p);
    return { entry: this.entry(p, st), opened: { fh } };
  }

  async read(_ctx: RequestContext, _ino: number, fh: number, offset: number, size: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(size);
    const n = await this.fs.read(fh, buf, size, offset);
    return n === size ? buf : buf.subarray(0, n);
  }

  write(_ctx: RequestContext, _ino: number, fh: number, offset: number, data: Buffer): Promise<number> {
    return this.fs.write(fh, data, data.length, offset);
  }

  flush(_ctx: RequestContext, _ino: number, fh: number): Promise<void> {
    return this.fs.finishWrite(fh, "flush");
  }

  fsync(_ctx: RequestContext, _ino: number, fh: number): Promise<void> {
    return this.fs.finishWrite(fh, "fsync");
  }

  release(_ctx: RequestContext, _ino: number, fh: number): Promise<void> {
    return this.fs.release(fh);
  }

  async opendir(_ctx: RequestContext, ino: number) {
    // One listing per opendir: the kernel's later readdir calls page through this snapshot.
    const names = await this.fs.readdir(this.path(ino));
    const fh = this.nextDirHandle++;
    this.dirHandles.set(fh, [".", "..", ...names]);
    return { fh };
  }

  async readdir(_ctx: RequestContext, ino: number, fh: number, offset: number, max: number, plus: boolean): Promise<DirEntry[]> {
    const dir = this.path(ino);
    const names = (this.dirHandles.get(fh) ?? [".", "..", ...(await this.fs.readdir(dir))]).slice(offset, offset + max);
    const paths = names.map((n) => (dir === "/" ? `/${n}` : `${dir}/${n}`));
    // Attributes come from the listing just fetched (the metadata cache): no request per name.
    const stats = await Promise.all(
      names.map((n, i) => (n === "." || n === ".." ? Promise.resolve(undefined) : this.fs.getattr(paths[i]!).catch(() => undefined))),
    );
    return names.map((name, i) => {
      const st = stats[i];
      const entry = plus && st ? this.entry(paths[i]!, st) : undefined;
      const ino = name === "." ? (ino0(this.inodes.peek(dir))) : name === ".." ? FUSE_ROOT_ID : (entry?.ino ?? this.inodes.ino(paths[i]!));
      return { name, ino, type: st ? (st.mode & 0o170000) >> 12 : 4, nextOffset: offset + i + 1, entry };
    });
  }

  releasedir(_ctx: RequestContext, _ino: number, fh: number): void {
    this.dirHandles.delete(fh);
  }

  statfs() {
    return this.fs.statfs();
  }
}

const ino0 = (ino: number | undefined) => ino ?? FUSE_ROOT_ID;
