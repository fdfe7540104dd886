import { constants } from "node:os";

const e = constants.errno;

/** FUSE answers errors as negative errno values. */
export const NegativeErrno = {
  OK: 0,
  EPERM: -e.EPERM,
  ENOENT: -e.ENOENT,
  EIO: -e.EIO,
  EBADF: -e.EBADF,
  EACCES: -e.EACCES,
  EBUSY: -e.EBUSY,
  EEXIST: -e.EEXIST,
  ENOTDIR: -e.ENOTDIR,
  EISDIR: -e.EISDIR,
  EINVAL: -e.EINVAL,
  ENOSPC: -e.ENOSPC,
  EROFS: -e.EROFS,
  ENOSYS: -e.ENOSYS,
  ENOTEMPTY: -e.ENOTEMPTY,
  ENAMETOOLONG: -e.ENAMETOOLONG,
  EFBIG: -e.EFBIG,
  ENOTSUP: -e.ENOTSUP,
  ETIMEDOUT: -e.ETIMEDOUT,
} as const;

/** An errno by name, e.g. "ENOENT". */
export type ErrnoName = Exclude<keyof typeof NegativeErrno, "OK">;

/**
 * An error that carries the errno a FUSE op should answer with: by name
 * (`new FsError("ENOENT")`) or as the negative value (`new FsError(NegativeErrno.EIO, "why")`).
 */
export class FsError extends Error {
  /** The negative errno the FUSE op answers with. */
  readonly errno: number;
  /** Its name (EIO for a value without one in NegativeErrno). */
  readonly code: ErrnoName;

  constructor(errno: ErrnoName | number, message?: string) {
    const value = typeof errno === "number" ? errno : NegativeErrno[errno];
    const code = typeof errno === "string" ? errno : (ERRNO_NAMES.get(errno) ?? "EIO");
    // No stack: an errno is an answer to the caller (ENOENT, EEXIST…), never a bug to trace,
    // and capturing one cost ~10 µs per failed lookup.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message ?? code);
    Error.stackTraceLimit = limit;
    this.errno = value;
    this.code = code;
    this.name = "FsError";
  }
}

const ERRNO_NAMES = new Map<number, ErrnoName>(
  Object.entries(NegativeErrno)
    .filter(([name]) => name !== "OK")
    .map(([name, value]) => [value, name as ErrnoName]),
);
