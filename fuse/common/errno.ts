import { constants } from "node:os";

const e = constants.errno;

/** FUSE answers errors as negative errno values. */
export const Errno = {
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
  ENOTSUP: -e.ENOTSUP,
  ETIMEDOUT: -e.ETIMEDOUT,
} as const;

/** An error that carries the errno a FUSE op should answer with. */
export class FsError extends Error {
  constructor(
    readonly errno: number,
    message: string,
  ) {
    super(message);
    this.name = "FsError";
  }
}

export const fsError = (errno: number, message: string) => new FsError(errno, message);
