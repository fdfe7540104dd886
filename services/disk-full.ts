import { statfsSync } from "node:fs";
import { SiloError, siloError } from "./errors.js";

/**
 * The one place that decides whether a store's failure means "the disk is full". Each store
 * says so differently:
 *   - files (blobs, the home itself): errno ENOSPC or EDQUOT;
 *   - SQLite: SQLITE_FULL, or an SQLITE_IOERR_* raised by a write the disk refused;
 *   - LMDB: MDB_MAP_FULL (-30792), or a commit failing with EIO/ENOSPC: lmdb-js reports a
 *     refused write of its data pages as error 5 (EIO), indistinguishable by code from a dying disk.
 * The ambiguous ones (I/O errors) count as a full disk when the file system holding the data
 * directory is nearly full at that moment; otherwise they stay internal errors.
 */
const NEARLY_FULL_BYTES = 1024 ** 3;
const NEARLY_FULL_FRACTION = 0.1;
const MDB_MAP_FULL = -30792;

/** Bytes a write under `dir` may still use (Infinity if unknown). */
export function freeBytes(dir: string): number {
  try {
    const s = statfsSync(dir);
    return s.bavail * s.bsize;
  } catch {
    return Infinity;
  }
}

/** True if `dir`'s file system has less than 1 GiB or 10 % free (for the unprivileged, as a write sees it). */
export function diskNearlyFull(dir: string): boolean {
  try {
    const s = statfsSync(dir);
    const free = s.bavail * s.bsize;
    return free < NEARLY_FULL_BYTES || free < s.blocks * s.bsize * NEARLY_FULL_FRACTION;
  } catch {
    return false;
  }
}

/** Whether `err`, raised by a write under `dataDir`, means the disk (or LMDB's map) is full. */
export function isNoSpace(err: unknown, dataDir: string): boolean {
  if (err instanceof SiloError) return err.code === "NO_SPACE";
  const e = err as { code?: unknown; errno?: unknown; message?: unknown } | null;
  if (!e || typeof e !== "object") return false;
  const code = e.code;
  if (code === "ENOSPC" || code === "EDQUOT" || code === "SQLITE_FULL" || code === MDB_MAP_FULL || code === 28) return true;
  if (typeof e.message === "string" && /MDB_MAP_FULL|No space left on device|database or disk is full/i.test(e.message)) return true;
  const ioError = code === 5 || code === "EIO" || (typeof code === "string" && code.startsWith("SQLITE_IOERR"));
  return ioError && diskNearlyFull(dataDir);
}

export const noSpaceError = () =>
  siloError("NO_SPACE", "The silo server's disk is full: nothing of this request was stored. Free space (delete or clear data) and retry.");

/** `err` as NoSpaceError if it means a full disk, else unchanged. */
export function asNoSpace(err: unknown, dataDir: string): unknown {
  return !(err instanceof SiloError) && isNoSpace(err, dataDir) ? noSpaceError() : err;
}
