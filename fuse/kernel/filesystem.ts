import type { AttrReply, DirEntry, Entry, Errno, FileLock, Opened, RequestContext, SetattrRequest, StatfsReply } from "./types.js";

export type MaybePromise<T> = T | Promise<T>;

/** What INIT settled, for the file system's information. */
export interface ConnectionInfo {
  major: number;
  /** The minor version in use: the kernel's, up to the newest this implementation knows. */
  minor: number;
  /** What the kernel offered. */
  kernelMinor: number;
  kernelFlags: number;
  /** The 64-bit INIT flags both sides agreed on (InitFlag). */
  flags: number;
  maxWrite: number;
  maxReadahead: number;
}

/**
 * A READ answer that is `length` bytes at `offset` of the open file `fd` (all there: the file
 * system checked). The session splices them from the file to the kernel where it can (one copy,
 * none through the process), else sends what `copy` reads (exactly `length` bytes, or it
 * rejects). `release` runs once, when the reply is written or given up: until then `fd` stays open.
 */
export interface FileSlice {
  readonly fd: number;
  readonly offset: number;
  readonly length: number;
  copy(): Promise<Buffer>;
  release(): void;
}

/**
 * An inode-based file system served by a FuseSession, modelled on fuser's `Filesystem` trait:
 * inodes are numbers the file system hands out in `Entry` answers (the root is 1), the session
 * counts the kernel's references and calls `forget` once the kernel holds none. Every op may
 * answer synchronously or with a promise; a thrown or rejected error becomes an errno (an
 * `errno`/`code` property, else EIO). lookup and getxattr may also return an `Errno` (their
 * usual "no such name"): V8 optimizes a function only once it has returned or looped, so one
 * that throws on nearly every call (the LOOKUP before each create, the security.capability
 * probe before each first write) stayed in the interpreter, at ~5× the cost per call. Ops left out answer ENOSYS (opendir/release: success).
 * The file system never sees the wire.
 */
export interface Filesystem {
  init?(conn: ConnectionInfo): void;
  /** The session ended (unmount, abort); no op follows. */
  destroy?(): void;

  lookup?(ctx: RequestContext, parent: number, name: string): MaybePromise<Entry | Errno>;
  /** The kernel holds no reference to `ino` any more: its number may be forgotten. */
  forget?(ino: number): void;
  getattr?(ctx: RequestContext, ino: number, fh: number | undefined): MaybePromise<AttrReply>;
  setattr?(ctx: RequestContext, ino: number, set: SetattrRequest): MaybePromise<AttrReply>;
  readlink?(ctx: RequestContext, ino: number): MaybePromise<string>;
  mknod?(ctx: RequestContext, parent: number, name: string, mode: number, rdev: number): MaybePromise<Entry>;
  mkdir?(ctx: RequestContext, parent: number, name: string, mode: number): MaybePromise<Entry>;
  unlink?(ctx: RequestContext, parent: number, name: string): MaybePromise<void>;
  rmdir?(ctx: RequestContext, parent: number, name: string): MaybePromise<void>;
  symlink?(ctx: RequestContext, parent: number, name: string, target: string): MaybePromise<Entry>;
  /** rename(2) and renameat2(2): `flags` has RENAME_NOREPLACE / RENAME_EXCHANGE. */
  rename?(ctx: RequestContext, parent: number, name: string, newParent: number, newName: string, flags: number): MaybePromise<void>;
  link?(ctx: RequestContext, ino: number, newParent: number, newName: string): MaybePromise<Entry>;

  open?(ctx: RequestContext, ino: number, flags: number): MaybePromise<Opened>;
  /**
   * Answers at most `size` bytes (fewer only at the end of the file): in a Buffer, or as a
   * FileSlice of an open file holding them (the session splices it to the kernel).
   */
  read?(ctx: RequestContext, ino: number, fh: number, offset: number, size: number): MaybePromise<Buffer | FileSlice>;
  /** `data` is the file system's to keep. Answers the bytes written. */
  write?(ctx: RequestContext, ino: number, fh: number, offset: number, data: Buffer, flags: number): MaybePromise<number>;
  /** close(2) of a descriptor: `lockOwner` is the closing process's, whose POSIX locks on the file go now. */
  flush?(ctx: RequestContext, ino: number, fh: number, lockOwner: bigint): MaybePromise<void>;
  release?(ctx: RequestContext, ino: number, fh: number, flags: number): MaybePromise<void>;
  /**
   * The kernel refused the reply to an open or create that answered `opened` (its caller was
   * interrupted meanwhile): no release will come for it, so whatever it holds is freed here.
   */
  abandon?(ino: number, opened: Opened): void;
  fsync?(ctx: RequestContext, ino: number, fh: number, datasync: boolean): MaybePromise<void>;
  create?(ctx: RequestContext, parent: number, name: string, mode: number, flags: number): MaybePromise<{ entry: Entry; opened: Opened }>;
  fallocate?(ctx: RequestContext, ino: number, fh: number, offset: number, length: number, mode: number): MaybePromise<void>;
  /** SEEK_DATA / SEEK_HOLE (SEEK_SET/CUR/END never reach the file system). */
  lseek?(ctx: RequestContext, ino: number, fh: number, offset: number, whence: number): MaybePromise<number>;
  copyFileRange?(
    ctx: RequestContext,
    src: { ino: number; fh: number; offset: number },
    dst: { ino: number; fh: number; offset: number },
    len: number,
  ): MaybePromise<number>;

  opendir?(ctx: RequestContext, ino: number, flags: number): MaybePromise<Opened>;
  /**
   * Entries from cookie `offset` on (0: the start), at most `max`: the session packs what fits.
   * With `plus`, each entry but "." and ".." carries its lookup answer (`entry`).
   */
  readdir?(ctx: RequestContext, ino: number, fh: number, offset: number, max: number, plus: boolean): MaybePromise<DirEntry[]>;
  releasedir?(ctx: RequestContext, ino: number, fh: number): MaybePromise<void>;
  fsyncdir?(ctx: RequestContext, ino: number, fh: number, datasync: boolean): MaybePromise<void>;
  statfs?(ctx: RequestContext, ino: number): MaybePromise<StatfsReply>;
  access?(ctx: RequestContext, ino: number, mask: number): MaybePromise<void>;

  setxattr?(ctx: RequestContext, ino: number, name: string, value: Buffer, flags: number): MaybePromise<void>;
  /** The value (the session answers size probes and ERANGE). */
  getxattr?(ctx: RequestContext, ino: number, name: string): MaybePromise<Buffer | Errno>;
  listxattr?(ctx: RequestContext, ino: number): MaybePromise<string[]>;
  removexattr?(ctx: RequestContext, ino: number, name: string): MaybePromise<void>;

  /**
   * File locks held by the file system (both defined: the session asks the kernel for
   * FUSE_POSIX_LOCKS and FUSE_FLOCK_LOCKS; otherwise the kernel keeps locks itself). `owner`
   * is the kernel's lock owner: the process (fcntl), or the open file (flock, OFD locks).
   */
  getlk?(ctx: RequestContext, ino: number, fh: number, owner: bigint, lock: FileLock): MaybePromise<FileLock | undefined>;
  /**
   * Takes, changes or drops a lock; `wait` (F_SETLKW, blocking flock) waits for a conflicting
   * lock to go until `ctx.signal` aborts (EINTR), else a conflict answers EAGAIN.
   */
  setlk?(ctx: RequestContext, ino: number, fh: number, owner: bigint, lock: FileLock, opts: { wait: boolean; flock: boolean }): MaybePromise<void>;
}
