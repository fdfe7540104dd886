/**
 * Numbers of the FUSE kernel protocol (linux/fuse.h), as far as silo speaks it. Names follow the
 * header so they can be looked up there; only what the codec or the session uses is listed.
 */

export const FUSE_KERNEL_VERSION = 7;
/** The newest minor version this implementation knows (kernel 6.18 offers 7.45). */
export const FUSE_KERNEL_MINOR_VERSION = 45;
/** The oldest minor we accept: 7.31 (Linux 5.2) has max_pages, readdirplus, parallel dirops. */
export const FUSE_MIN_MINOR_VERSION = 31;
export const FUSE_ROOT_ID = 1;

export const Opcode = {
  LOOKUP: 1,
  FORGET: 2,
  GETATTR: 3,
  SETATTR: 4,
  READLINK: 5,
  SYMLINK: 6,
  MKNOD: 8,
  MKDIR: 9,
  UNLINK: 10,
  RMDIR: 11,
  RENAME: 12,
  LINK: 13,
  OPEN: 14,
  READ: 15,
  WRITE: 16,
  STATFS: 17,
  RELEASE: 18,
  FSYNC: 20,
  SETXATTR: 21,
  GETXATTR: 22,
  LISTXATTR: 23,
  REMOVEXATTR: 24,
  FLUSH: 25,
  INIT: 26,
  OPENDIR: 27,
  READDIR: 28,
  RELEASEDIR: 29,
  FSYNCDIR: 30,
  GETLK: 31,
  SETLK: 32,
  SETLKW: 33,
  ACCESS: 34,
  CREATE: 35,
  INTERRUPT: 36,
  BMAP: 37,
  DESTROY: 38,
  IOCTL: 39,
  POLL: 40,
  NOTIFY_REPLY: 41,
  BATCH_FORGET: 42,
  FALLOCATE: 43,
  READDIRPLUS: 44,
  RENAME2: 45,
  LSEEK: 46,
  COPY_FILE_RANGE: 47,
  SETUPMAPPING: 48,
  REMOVEMAPPING: 49,
  SYNCFS: 50,
  TMPFILE: 51,
  STATX: 52,
} as const;

export const OPCODE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(Opcode).map(([k, v]) => [v, k]));

/** INIT flags (the low 32 bits in `flags`, the high 32 in `flags2` when FUSE_INIT_EXT is set). */
export const InitFlag = {
  ASYNC_READ: 2 ** 0,
  POSIX_LOCKS: 2 ** 1,
  ATOMIC_O_TRUNC: 2 ** 3,
  EXPORT_SUPPORT: 2 ** 4,
  BIG_WRITES: 2 ** 5,
  DONT_MASK: 2 ** 6,
  FLOCK_LOCKS: 2 ** 10,
  AUTO_INVAL_DATA: 2 ** 12,
  DO_READDIRPLUS: 2 ** 13,
  READDIRPLUS_AUTO: 2 ** 14,
  ASYNC_DIO: 2 ** 15,
  WRITEBACK_CACHE: 2 ** 16,
  NO_OPEN_SUPPORT: 2 ** 17,
  PARALLEL_DIROPS: 2 ** 18,
  HANDLE_KILLPRIV: 2 ** 19,
  POSIX_ACL: 2 ** 20,
  ABORT_ERROR: 2 ** 21,
  MAX_PAGES: 2 ** 22,
  CACHE_SYMLINKS: 2 ** 23,
  NO_OPENDIR_SUPPORT: 2 ** 24,
  EXPLICIT_INVAL_DATA: 2 ** 25,
  HANDLE_KILLPRIV_V2: 2 ** 28,
  INIT_EXT: 2 ** 30,
  // flags2 (bit n here is bit n+32 of the 64-bit flags)
  HAS_EXPIRE_ONLY: 2 ** 35,
  PASSTHROUGH: 2 ** 37,
  OVER_IO_URING: 2 ** 41,
} as const;

/** fuse_setattr_in.valid */
export const Fattr = {
  MODE: 1 << 0,
  UID: 1 << 1,
  GID: 1 << 2,
  SIZE: 1 << 3,
  ATIME: 1 << 4,
  MTIME: 1 << 5,
  FH: 1 << 6,
  ATIME_NOW: 1 << 7,
  MTIME_NOW: 1 << 8,
  LOCKOWNER: 1 << 9,
  CTIME: 1 << 10,
  KILL_SUIDGID: 1 << 11,
} as const;

/** fuse_open_out.open_flags */
export const Fopen = {
  DIRECT_IO: 1 << 0,
  KEEP_CACHE: 1 << 1,
  NONSEEKABLE: 1 << 2,
  CACHE_DIR: 1 << 3,
  STREAM: 1 << 4,
  NOFLUSH: 1 << 5,
  PARALLEL_DIRECT_WRITES: 1 << 6,
  /** Reads, writes and mmap go to the backing file named by fuse_open_out.backing_id. */
  PASSTHROUGH: 1 << 7,
} as const;

/**
 * fuse_init_out.max_stack_depth with FUSE_PASSTHROUGH: backing files may sit on a file system
 * stacked this deep less one (1: a plain local file system), and the mount counts as this deep
 * (so an overlayfs may still stack on it). The kernel allows at most 2.
 */
export const PASSTHROUGH_STACK_DEPTH = 1;

export const NotifyCode = {
  INVAL_INODE: 2,
  INVAL_ENTRY: 3,
  DELETE: 6,
} as const;

export const RENAME_NOREPLACE = 1 << 0;
export const RENAME_EXCHANGE = 1 << 1;
export const FUSE_GETATTR_FH = 1 << 0;
/** fuse_write_in.write_flags: clear setuid (and setgid, if group-executable) (HANDLE_KILLPRIV_V2). */
export const FUSE_WRITE_KILL_SUIDGID = 1 << 2;
export const FUSE_FSYNC_FDATASYNC = 1 << 0;
export const FUSE_RELEASE_FLUSH = 1 << 0;
/** fuse_lk_in.lk_flags: the lock is a flock(2) lock (whole file, owned by the open file). */
export const FUSE_LK_FLOCK = 1 << 0;
/** fuse_file_lock.type (fcntl.h's F_RDLCK, F_WRLCK, F_UNLCK). */
export const F_RDLCK = 0;
export const F_WRLCK = 1;
export const F_UNLCK = 2;
/** fuse_file_lock.end of a lock that runs to the end of the file (the kernel's OFFSET_MAX). */
export const OFFSET_MAX = 2n ** 63n - 1n;

/** Struct sizes (bytes) of the parts the codec reads or writes. */
export const Size = {
  IN_HEADER: 40,
  OUT_HEADER: 16,
  ATTR: 88,
  ENTRY_OUT: 128,
  ATTR_OUT: 104,
  OPEN_OUT: 16,
  INIT_OUT: 64,
  STATFS_OUT: 80,
  WRITE_OUT: 8,
  GETXATTR_OUT: 8,
  LSEEK_OUT: 8,
  LK_OUT: 24,
  DIRENT: 24,
  DIRENTPLUS: 152,
  NOTIFY_INVAL_INODE: 24,
  NOTIFY_INVAL_ENTRY: 16,
  NOTIFY_DELETE: 24,
} as const;

/** Pages per request the kernel is asked for: 256 × 4 KiB = 1 MiB reads and writes. */
export const MAX_PAGES = 256;
export const PAGE_SIZE = 4096;
export const MAX_WRITE = MAX_PAGES * PAGE_SIZE;
/** A /dev/fuse read buffer: the largest WRITE (header + write_in + data) fits. */
export const READ_BUFFER_SIZE = MAX_WRITE + PAGE_SIZE;
