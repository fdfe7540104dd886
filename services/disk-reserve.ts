import { closeSync, existsSync, openSync, rmSync, statfsSync, writeSync } from "node:fs";
import { join } from "node:path";
import { isNoSpace } from "./disk-full.js";

/**
 * A reserve of disk space (a plain file in the data directory) that the server gives up when
 * the disk is full, so that what frees space can still run: deletes, clears, queue gets and
 * confirmations, and the server's own start. Every store needs a little room even to delete
 * (SQLite appends to its WAL, LMDB copies the pages it changes), so without a reserve a full
 * disk could not be emptied through silo. Writes that add data never use it; they answer 507
 * NO_SPACE instead. Once space is back, the reserve is taken again.
 */
export class DiskReserve {
  readonly file: string;
  readonly bytes: number;

  constructor(readonly dataDir: string, bytes?: number) {
    this.file = join(dataDir, "space-reserve");
    this.bytes = bytes ?? DiskReserve.sizeFor(dataDir);
  }

  /** 1 % of the file system, between 256 KiB and 8 MiB: room for the WAL and page copies of deletes, cheap to write at start. */
  static sizeFor(dir: string): number {
    const s = statfsSync(dir);
    return Math.min(8 * 1024 ** 2, Math.max(256 * 1024, Math.floor(s.blocks * s.bsize * 0.01)));
  }

  get held(): boolean {
    return existsSync(this.file);
  }

  /** Takes the reserve if it is not held and the disk has room for it twice over. Never throws. */
  refill(): boolean {
    if (this.held) return true;
    try {
      const s = statfsSync(this.dataDir);
      if (s.bavail * s.bsize < 2 * this.bytes) return false;
      const fd = openSync(this.file, "w", 0o600);
      try {
        const chunk = Buffer.alloc(64 * 1024);
        for (let written = 0; written < this.bytes; written += chunk.length) writeSync(fd, chunk);
      } finally {
        closeSync(fd);
      }
      return true;
    } catch {
      rmSync(this.file, { force: true });
      return false;
    }
  }

  /** Gives the reserve's space back to the file system; true if there was one to give. */
  release(): boolean {
    if (!this.held) return false;
    rmSync(this.file, { force: true });
    return true;
  }

  /**
   * Runs `fn`, which frees space but needs a little to do so; if it fails on a full disk,
   * gives up the reserve and runs it once more. `fn` must be all-or-nothing (a transaction).
   */
  freeing<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (!isNoSpace(err, this.dataDir) || !this.release()) throw err;
      return fn();
    }
  }
}
