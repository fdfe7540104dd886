import { closeSync, constants, fstatSync, ftruncateSync, openSync } from "node:fs";
import type { BackingFiles } from "../kernel/types.js";
import { blockCount, type FileContent, storedHash } from "./file-content.js";
import type { WholeFile, WholeFiles } from "./whole-files.js";

/** How an open of a file is answered (the rest of the kernel's Opened). */
export interface OpenMode {
  keepCache?: boolean;
  directIo?: boolean;
  backingId?: number;
  /**
   * A writer whose mmap the kernel serves from the backing file (the upper file): its stores
   * reach the bytes without a request, so the caller marks every block changed (markUntracked).
   */
  untracked?: boolean;
}

/**
 * A passthrough period of one inode: from its first passthrough open to the release of its
 * last. The kernel holds one backing file per inode and fails (EIO) any open of it that is not
 * passthrough meanwhile, and any passthrough open while other opens use its page cache.
 */
interface Period {
  backingId: number;
  content: FileContent;
  opens: number;
  /** The backing file is this whole-file copy of committed blocks (whole-files.ts), not the upper file. */
  whole?: WholeFile;
}

interface HandleMode {
  ino: number;
  content: FileContent;
  passthrough: boolean;
  untracked: boolean;
}

export interface PassthroughStats {
  /** Whether opens may be passthrough (negotiated at INIT, and no backing file was refused). */
  enabled: boolean;
  /** Opens answered with a backing file: `reads` served by the kernel from it, `joined` with reads and writes still here (directIo). */
  reads: number;
  joined: number;
  /** Of `reads`, opens of a committed file passed through on its whole-file copy (whole-files.ts). */
  wholeFile: number;
  /** Backing ids registered and closed so far, and those live now (one per inode in a period). */
  backingOpened: number;
  backingClosed: number;
  backingIds: number;
}

/**
 * Whether all of a file's bytes are in its upper file: every block is local or a hole (the
 * upper file reads zeros wherever a block is neither local nor written; file-content.ts). A
 * block still only committed (fetched through the block cache: one cache file per 8 MiB
 * block), a partial block (its base is there too) or an inline file does not qualify.
 */
export function wholeInUpper(c: FileContent): boolean {
  if (!c.upperPath || c.inline || c.partial.size > 0 || c.size === 0) return false;
  const n = blockCount(c.size);
  for (let i = 0; i < n; i++) if (!c.local.has(i) && storedHash(c.hashes[i])) return false;
  return true;
}

/**
 * The upper file's bytes changed without a WRITE (a passthrough writer's mmap): every local block
 * must be hashed again by the next commit, and one running now must not take its hash for them.
 */
export function markUntracked(c: FileContent): void {
  const n = blockCount(c.size);
  for (let i = 0; i < n; i++) {
    if (!c.local.has(i)) continue;
    c.hashes[i] = null;
    c.snap?.changed.add(i);
  }
  c.generation++;
}

/**
 * FUSE passthrough for a volume mount (docs/mounts.md, "Passthrough"): a read-only open of a
 * file whose bytes are all in its upper file is answered with that file as its backing file, and
 * the kernel reads it (and maps it) without a request to this daemon.
 *
 * The kernel's rule (fs/fuse/iomode.c) is per inode: while any open of it is passthrough, every
 * other must be passthrough with the same backing file, and a passthrough open fails while
 * another open uses the inode's page cache. So a read-only open of an inode already open the
 * ordinary way stays ordinary, and any open of an inode in a passthrough period joins it: a
 * reader as passthrough, a writer (or a reader of bytes not all local) with directIo too, so its
 * reads and writes still come here (the journal and commits see every write) and only its mmap
 * uses the upper file. Such a mapping may change bytes unseen: the file's blocks are marked
 * changed when it opens and when it is released, and commits never take a hash for them while
 * it is open (FileContent.untrackedWriters).
 */
export class Passthrough {
  private readonly periods = new Map<number, Period>();
  /** Ordinary opens per inode (the kernel's cached io mode). */
  private readonly cached = new Map<number, number>();
  private readonly handles = new Map<number, HandleMode>();
  private failed = false;
  private counts = { reads: 0, joined: 0, wholeFile: 0, backingOpened: 0, backingClosed: 0 };
  backing: BackingFiles | undefined;
  /**
   * Whole-file copies of committed files, for read-only mounts only: a writer joining a period
   * would map its backing file, and its stores must land in the upper file, never in a copy.
   */
  wholeFiles: WholeFiles | undefined;

  constructor(private readonly log: (msg: string) => void) {}

  get stats(): PassthroughStats {
    return { enabled: this.backing !== undefined && !this.failed, ...this.counts, backingIds: this.periods.size };
  }

  /**
   * Decides how open `fh` of `ino` (bytes `c`) is answered, and remembers it for `released`.
   * Synchronous but for a read-only open that may start a period (it waits for the file's lock).
   */
  opened(ino: number, fh: number, c: FileContent, write: boolean, oDirect = false): OpenMode | Promise<OpenMode> {
    if (write) return this.openedForWrite(ino, fh, c);
    const period = this.periods.get(ino);
    if (period) return this.join(ino, fh, period, c, false, oDirect);
    // O_DIRECT: through the backing file it would be ext4's, with its alignment rules (EINVAL).
    if (oDirect || !this.backing || this.failed || (this.cached.get(ino) ?? 0) > 0) return this.ordinary(ino, fh, c);
    if (!wholeInUpper(c)) return this.startWhole(ino, fh, c);
    // Under the file's lock: no write or truncate of it is half done while the upper file is measured.
    return c.lock.run(async () => this.start(ino, fh, c));
  }

  /** As `opened`, for an open that may write (always answered at once). */
  openedForWrite(ino: number, fh: number, c: FileContent): OpenMode {
    const period = this.periods.get(ino);
    // Its mmap would store into the whole-file copy (wholeFiles is only set where no writer opens).
    if (period?.whole) throw new Error("a writer may not join a passthrough period on a whole-file copy");
    return period ? this.join(ino, fh, period, c, true) : this.ordinary(ino, fh, c);
  }

  /** Open `fh` went (release, or an open reply the kernel refused); true if it was a writer whose blocks must be marked again. */
  released(fh: number): boolean {
    const h = this.handles.get(fh);
    if (!h) return false;
    this.handles.delete(fh);
    if (!h.passthrough) {
      const left = (this.cached.get(h.ino) ?? 1) - 1;
      if (left > 0) this.cached.set(h.ino, left);
      else {
        this.cached.delete(h.ino);
        // Read through the daemon: the next open may pass through on a whole-file copy.
        this.wholeFiles?.want(h.content);
      }
      return false;
    }
    const period = this.periods.get(h.ino);
    if (period) {
      if (h.untracked) h.content.untrackedWriters--;
      if (--period.opens === 0) {
        this.periods.delete(h.ino);
        this.closeBacking(period.backingId);
        if (period.whole) this.wholeFiles?.release(period.whole);
      }
    }
    return h.untracked;
  }

  /** The connection ended: its backing ids went with it (closing them is a courtesy). */
  destroy(): void {
    for (const p of this.periods.values()) {
      this.closeBacking(p.backingId);
      if (p.whole) this.wholeFiles?.release(p.whole);
    }
    this.periods.clear();
    this.cached.clear();
    this.handles.clear();
    this.backing = undefined;
  }

  /**
   * A truncate or fallocate grew `c`: a reader of the upper file would meet its end before the
   * file's, so the upper file grows with it (zeros, as the hole reads) while a period uses it.
   */
  async grown(c: FileContent): Promise<void> {
    if (![...this.periods.values()].some((p) => p.content === c)) return;
    await c.lock.run(async () => {
      if (!c.upperPath) return;
      const fd = openSync(c.upperPath, constants.O_RDWR);
      try {
        if (fstatSync(fd).size < c.size) ftruncateSync(fd, c.size);
      } finally {
        closeSync(fd);
      }
    });
  }

  private ordinary(ino: number, fh: number, c: FileContent): OpenMode {
    this.cached.set(ino, (this.cached.get(ino) ?? 0) + 1);
    this.handles.set(fh, { ino, content: c, passthrough: false, untracked: false });
    // Keep cached pages across opens: only this mount changes a node's bytes, and a reload that
    // changes a file replaces its node or invalidates it. A passthrough period leaves no stale
    // page: its first open (no keepCache) drops the cached ones, and none are cached during it.
    return { keepCache: true };
  }

  private join(ino: number, fh: number, period: Period, c: FileContent, write: boolean, oDirect = false): OpenMode {
    period.opens++;
    // A whole-file copy holds exactly period.content's bytes (committed: they never change).
    const direct = write || oDirect || c !== period.content || (!period.whole && !wholeInUpper(c));
    if (direct) this.counts.joined++;
    else this.counts.reads++;
    if (write) c.untrackedWriters++;
    this.handles.set(fh, { ino, content: c, passthrough: true, untracked: write });
    return { backingId: period.backingId, directIo: direct || undefined, untracked: write || undefined };
  }

  /** Starts a period with `c`'s upper file as the backing file, if everything still allows it (holding c's lock). */
  private start(ino: number, fh: number, c: FileContent): OpenMode {
    const period = this.periods.get(ino);
    if (period) return this.join(ino, fh, period, c, false);
    if (!this.backing || this.failed || (this.cached.get(ino) ?? 0) > 0 || !wholeInUpper(c)) return this.ordinary(ino, fh, c);
    let fd: number | undefined;
    let backingId: number | undefined;
    try {
      // Read-write: a writer joining the period maps it (its mmap is the backing file's).
      fd = openSync(c.upperPath!, constants.O_RDWR);
      const size = fstatSync(fd).size;
      // Bytes past the file's end would be read as its own: never expected, never risked.
      if (size > c.size) return this.ordinary(ino, fh, c);
      // A sparse tail (a truncate grew the file) reads short: make it zeros the kernel reads.
      if (size < c.size) ftruncateSync(fd, c.size);
      backingId = this.register(fd);
    } catch {
      // Reading or growing the upper file failed: the daemon reads it instead.
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    return backingId === undefined ? this.ordinary(ino, fh, c) : this.began(ino, fh, c, backingId);
  }

  /** Starts a period on `c`'s whole-file copy if one is ready (a read-only open of a committed file). */
  private startWhole(ino: number, fh: number, c: FileContent): OpenMode {
    const got = this.wholeFiles?.open(c);
    if (!got) return this.ordinary(ino, fh, c);
    let backingId: number | undefined;
    try {
      backingId = this.register(got.fd);
    } finally {
      closeSync(got.fd);
    }
    if (backingId === undefined) {
      this.wholeFiles!.release(got.file);
      return this.ordinary(ino, fh, c);
    }
    this.counts.wholeFile++;
    return this.began(ino, fh, c, backingId, got.file);
  }

  /** A backing id for `fd` (the kernel takes its own reference), or undefined if the kernel refused it. */
  private register(fd: number): number | undefined {
    try {
      const id = this.backing!.open(fd);
      this.counts.backingOpened++;
      return id;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // EPERM: no CAP_SYS_ADMIN; ELOOP: the file is on a stacked file system. Both last.
      if (code === "EPERM" || code === "ELOOP" || code === "EOPNOTSUPP" || code === "ENOTTY") {
        this.failed = true;
        this.log(`passthrough off: registering a backing file failed (${(err as Error).message})`);
      }
      return undefined;
    }
  }

  private began(ino: number, fh: number, c: FileContent, backingId: number, whole?: WholeFile): OpenMode {
    this.counts.reads++;
    this.periods.set(ino, { backingId, content: c, opens: 1, whole });
    this.handles.set(fh, { ino, content: c, passthrough: true, untracked: false });
    return { backingId };
  }

  private closeBacking(id: number): void {
    this.counts.backingClosed++;
    try {
      this.backing?.close(id);
    } catch {
      // The connection is gone (unmount): so is the id.
    }
  }
}
