/**
 * The values that cross between the FUSE session and a file system: what a request carries
 * besides its arguments, and what replies are made of. Times are milliseconds since the epoch.
 */

/** Who asked: the calling process's credentials and pid, for every request. */
export interface RequestContext {
  readonly uid: number;
  readonly gid: number;
  readonly pid: number;
  /** Aborted when the kernel interrupts the request (the caller got a signal) or the session ends. */
  readonly signal: AbortSignal;
}

export interface Attr {
  ino: number;
  size: number;
  /** 512-byte blocks (default: size rounded up). */
  blocks?: number;
  /** Times in ms since the epoch; needed only where the ns time below is absent. */
  atimeMs?: number;
  mtimeMs?: number;
  ctimeMs?: number;
  /** Nanosecond times since the epoch; when present they stand for the ms ones. */
  atimeNs?: bigint;
  mtimeNs?: bigint;
  ctimeNs?: bigint;
  /** File type and permission bits (S_IFREG | 0644 …). */
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev?: number;
  blksize?: number;
}

/** An answer naming an inode (lookup, mkdir, create, readdirplus…): the kernel takes one reference. */
export interface Entry {
  ino: number;
  generation?: number;
  attr: Attr;
  /** How long the kernel may trust the name → inode binding. */
  entryTtlMs: number;
  /** How long the kernel may trust the attributes. */
  attrTtlMs: number;
}

export interface AttrReply {
  attr: Attr;
  ttlMs: number;
}

export interface Opened {
  fh: number;
  /** Keep the kernel's page cache of the file across opens. */
  keepCache?: boolean;
  /** Bypass the page cache for this open file. */
  directIo?: boolean;
  /** Let the kernel cache this directory's listing. */
  cacheDir?: boolean;
  nonSeekable?: boolean;
  /**
   * Passthrough (FOPEN_PASSTHROUGH): the kernel serves this open file's reads and mmap from the
   * backing file registered under this id (BackingFiles), without a request. With `directIo`
   * too, reads and writes still come here and only mmap uses the backing file. Never with
   * `keepCache` or `nonSeekable` (the kernel fails such an open with EIO).
   */
  backingId?: number;
}

/** FUSE_DEV_IOC_BACKING_OPEN/CLOSE on the connection (passthrough negotiated at INIT). */
export interface BackingFiles {
  /** Registers an open file as a backing file; its id (throws: EPERM without CAP_SYS_ADMIN, ELOOP when stacked too deep). */
  open(fileFd: number): number;
  close(backingId: number): void;
}

export interface StatfsReply {
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  bsize: number;
  namelen: number;
  frsize: number;
}

/** One directory entry of a listing; `nextOffset` is the cookie the listing resumes at after it. */
export interface DirEntry {
  name: string;
  ino: number;
  /** S_IF* >> 12 (DT_REG 8, DT_DIR 4, DT_LNK 10), 0 if unknown. */
  type: number;
  nextOffset: number;
  /** readdirplus: the lookup answer for this name (absent for "." and ".."). */
  entry?: Entry;
}

/** What fuse_setattr_in asks to change; absent fields stay as they are. */
export interface SetattrRequest {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  /** A time in ms, or "now" (utimensat's UTIME_NOW). */
  atime?: number | "now";
  mtime?: number | "now";
  ctime?: number;
  /** The times of `atime`/`mtime` in ns (absent for "now"). */
  atimeNs?: bigint;
  mtimeNs?: bigint;
  /** The open file the change comes through (ftruncate, futimens). */
  fh?: number;
  /**
   * Clear setuid, and setgid if the file is group-executable (truncate or chown of a file with
   * HANDLE_KILLPRIV_V2: the kernel no longer folds that into `mode`).
   */
  killSuidgid?: boolean;
}

/**
 * A byte-range lock (fcntl) or a whole-file flock, as fuse_file_lock carries it: offsets are
 * exact 64-bit values, `end` inclusive (OFFSET_MAX: to the end of the file, however long).
 */
export interface FileLock {
  type: "read" | "write" | "unlock";
  start: bigint;
  end: bigint;
  /** The locking process (its tgid in the mount's pid namespace); 0 where unknown. */
  pid: number;
}

/** Writes the session may send to the kernel outside of a request (cache invalidation). */
export interface Notifier {
  /** Drops the kernel's cached name `name` in directory `parent` (the next access looks it up). */
  invalEntry(parent: number, name: string): Promise<void>;
  /** Drops the cached attributes of `ino` and, unless off < 0, its cached pages from `off` for `len` bytes (0: to the end). */
  invalInode(ino: number, off?: number, len?: number): Promise<void>;
}

/** An error the session answers with a specific errno (positive number). */
export class Errno extends Error {
  readonly errno: number;
  constructor(errno: number, message?: string) {
    // No stack: an errno is an answer (ENOENT for every new name's lookup, ENODATA for the
    // security.capability probe before every write), and capturing one cost ~10 µs each.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message ?? `errno ${errno}`);
    Error.stackTraceLimit = limit;
    this.errno = errno;
    this.name = "Errno";
  }
}
