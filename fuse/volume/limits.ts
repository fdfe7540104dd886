import { VOLUME_LIMITS } from "../../protocol/volume.js";
import { FsError } from "../common/errno.js";

/**
 * The volume's limits (protocol/volume.ts, which the server enforces at commit) as the errno a
 * local file system answers with, so a mount refuses at the system call what a commit would
 * refuse later, when the job can no longer react.
 */

/** The largest size a file may have (the protocol's limit is exclusive). */
export const MAX_FILE_SIZE = VOLUME_LIMITS.maxFileBytes - 1;

/** ENAMETOOLONG for a path component over 255 bytes or a path over 4096 bytes. */
export function checkPathLength(path: string): void {
  const name = path.slice(path.lastIndexOf("/") + 1);
  if (Buffer.byteLength(name) > VOLUME_LIMITS.maxNameBytes) throw new FsError("ENAMETOOLONG");
  if (Buffer.byteLength(path) > VOLUME_LIMITS.maxPathBytes) throw new FsError("ENAMETOOLONG");
}

/** A symlink target the server accepts: 1-4096 bytes (ENOENT for an empty one, as Linux answers). */
export function checkSymlinkTarget(target: string): void {
  if (target === "") throw new FsError("ENOENT");
  if (Buffer.byteLength(target) > VOLUME_LIMITS.maxPathBytes) throw new FsError("ENAMETOOLONG");
}

/** ENOSPC when a directory already holds the most entries a commit may leave in it. */
export function checkDirEntries(entries: number): void {
  if (entries >= VOLUME_LIMITS.maxDirEntries) throw new FsError("ENOSPC");
}

/** truncate(2)'s checks: EINVAL for a negative or non-integral size, EFBIG past the file-size limit. */
export function checkTruncateSize(size: number): void {
  if (!Number.isSafeInteger(size) || size < 0) {
    if (Number.isFinite(size) && size > MAX_FILE_SIZE) throw new FsError("EFBIG");
    throw new FsError("EINVAL");
  }
  if (size > MAX_FILE_SIZE) throw new FsError("EFBIG");
}

/**
 * How many of `len` bytes a write at `pos` may take, as Linux does at s_maxbytes: EFBIG when
 * nothing fits, a short write when only part does.
 */
export function writableBytes(pos: number, len: number): number {
  // Offsets past 2^53 (the kernel allows up to 2^63) are beyond the limit too, not invalid.
  if (Number.isFinite(pos) && pos > MAX_FILE_SIZE && len > 0) throw new FsError("EFBIG");
  if (!Number.isSafeInteger(pos) || pos < 0) throw new FsError("EINVAL");
  if (len === 0) return 0;
  if (pos >= MAX_FILE_SIZE) throw new FsError("EFBIG");
  return Math.min(len, MAX_FILE_SIZE - pos);
}
