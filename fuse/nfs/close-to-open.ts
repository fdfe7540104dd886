import { constants } from "node:os";
import type { Filesystem } from "../kernel/filesystem.js";
import { Errno, type RequestContext } from "../kernel/types.js";
import { FsError } from "../common/errno.js";
import type { VolumeFs } from "../volume/fuse-ops.js";
import type { MountConsistency } from "../volume/daemon.js";
import type { MountedVolume } from "../volume/mounted-volume.js";

const O_ACCMODE = 3;
/**
 * How stale a `stat` of a known name may be: past this, getattr catches up first (NFS bounds it
 * the same way with its attribute cache). Opens, listings and unknown names never use it.
 */
export const STAT_MAX_AGE_MS = 1_000;

/**
 * One catch-up with the server at a time, and every caller waits for one that *started after*
 * it asked: a catch-up already in flight may have read the latest version before the caller's
 * event (another job's close), so it cannot answer for it. A burst of opens thus costs at most
 * two round trips, and none is skipped.
 */
export class Revalidator {
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  /** When the last catch-up started (ms, from `now`). */
  lastStartedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly mv: MountedVolume,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether the local view may be older than `maxAgeMs`. */
  olderThan(maxAgeMs: number): boolean {
    return this.now() - this.lastStartedAt > maxAgeMs;
  }

  revalidate(): Promise<void> {
    if (!this.running) {
      this.lastStartedAt = this.now();
      this.running = this.mv
        .revalidate()
        .then(() => undefined)
        .finally(() => (this.running = undefined));
      return this.running;
    }
    this.queued ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return this.revalidate();
      });
    return this.queued;
  }
}

/**
 * Close-to-open consistency on top of the volume mount's file system (a network file system
 * mount), a `Filesystem` around `VolumeFs`:
 * - open, opendir, and the lookup of a name this mount does not know first catch up with the
 *   server (one `latestVersion` request; the delta only if something changed), so they see
 *   everything any mount or client closed before; an inode whose node the catch-up replaced
 *   is pointed at the new node (`VolumeFs.refresh`), and opens never keep the page cache;
 * - flush (every close(2) of a descriptor opened for writing) and fsync commit this mount's
 *   changes and answer only then, EIO if that failed (the change stays pending and is retried);
 *   so do the operations that change names or attributes (mkdir, rename, unlink, setattr, …),
 *   which have no close;
 * - a getattr answers from the local view if that caught up within the last STAT_MAX_AGE_MS,
 *   else it catches up first;
 * - the kernel caches no names or attributes (timeouts 0), so nothing stale is served from it.
 */
export const closeToOpen: MountConsistency = {
  kind: "nfs",
  kernelCacheSeconds: 0,
  wrap(fs: VolumeFs, mv: MountedVolume, log: (msg: string) => void): Filesystem {
    const revalidator = new Revalidator(mv);
    const writeFhs = new Set<number>();
    /** A catch-up; a failed one (server away) is logged and the local view served. */
    const catchUp = () =>
      revalidator.revalidate().catch((err: Error) => log(`could not catch up with the server (serving the local view): ${err.message}`));
    const commit = async () => {
      try {
        await mv.commit();
      } catch (err) {
        log(`commit at close/fsync failed (kept locally, retried in the background): ${(err as Error).message}`);
        throw new Errno(constants.errno.EIO);
      }
    };
    /** An op that changed the tree: answered once the change is committed. */
    const committed = async <T>(result: T | Promise<T>): Promise<T> => {
      const value = await result;
      await commit();
      return value;
    };
    const isENOENT = (err: unknown) => err instanceof FsError && err.code === "ENOENT";
    return {
      forget: (ino) => fs.forget(ino),
      async lookup(ctx: RequestContext, parent: number, name: string) {
        try {
          const found = await fs.lookup(ctx, parent, name);
          // ENOENT comes returned (fuse-ops.ts) or thrown (a directory still loading).
          if (!(found instanceof Errno && found.errno === constants.errno.ENOENT)) return found;
        } catch (err) {
          if (!isENOENT(err)) throw err;
        }
        // A name we do not know may have been created elsewhere: ask once before saying no.
        await catchUp();
        return fs.lookup(ctx, parent, name);
      },
      async getattr(ctx, ino, fh) {
        if (revalidator.olderThan(STAT_MAX_AGE_MS)) {
          await catchUp();
          fs.refresh(ino);
        }
        return fs.getattr(ctx, ino);
      },
      setattr: (ctx, ino, set) => committed(fs.setattr(ctx, ino, set)),
      readlink: (ctx, ino) => fs.readlink(ctx, ino),
      mknod: (ctx, parent, name, mode, rdev) => committed(fs.mknod(ctx, parent, name, mode, rdev)),
      mkdir: (ctx, parent, name, mode) => committed(fs.mkdir(ctx, parent, name, mode)),
      unlink: (ctx, parent, name) => committed(fs.unlink(ctx, parent, name)),
      rmdir: (ctx, parent, name) => committed(fs.rmdir(ctx, parent, name)),
      symlink: (ctx, parent, name, target) => committed(fs.symlink(ctx, parent, name, target)),
      rename: (ctx, parent, name, newParent, newName, flags) => committed(fs.rename(ctx, parent, name, newParent, newName, flags)),
      link: (ctx, ino, newParent, newName) => committed(fs.link(ctx, ino, newParent, newName)),
      async open(ctx, ino, flags) {
        await catchUp();
        // Deleted elsewhere since the kernel looked the name up: gone, as an open by path would find.
        if (!fs.refresh(ino)) throw new FsError("ENOENT");
        const opened = await fs.open(ctx, ino, flags);
        if ((flags & O_ACCMODE) !== 0) writeFhs.add(opened.fh);
        // The bytes may have changed elsewhere since the kernel cached them.
        return { ...opened, keepCache: false };
      },
      async create(ctx, parent, name, mode, flags) {
        const r = await fs.create(ctx, parent, name, mode);
        writeFhs.add(r.opened.fh);
        return { entry: r.entry, opened: { ...r.opened, keepCache: false } };
      },
      read: (ctx, ino, fh, offset, size) => fs.read(ctx, ino, fh, offset, size),
      write: (ctx, ino, fh, offset, data, flags) => fs.write(ctx, ino, fh, offset, data, flags),
      // Defined here (VolumeFs has none): the kernel sends flush on every close only while it is answered.
      flush: (_ctx, _ino, fh) => (writeFhs.has(fh) ? commit() : undefined),
      fsync: () => commit(),
      fsyncdir: () => undefined,
      async release(ctx, ino, fh) {
        await fs.release(ctx, ino, fh);
        // Writes after the last flush (e.g. through a memory map) still reach the server.
        if (writeFhs.delete(fh)) mv.commit().catch((e: Error) => log(`commit at release failed (retried in the background): ${e.message}`));
      },
      fallocate: (ctx, ino, fh, offset, length, mode) => fs.fallocate(ctx, ino, fh, offset, length, mode),
      lseek: (ctx, ino, fh, offset, whence) => fs.lseek(ctx, ino, fh, offset, whence),
      copyFileRange: (ctx, src, dst, len) => fs.copyFileRange(ctx, src, dst, len),
      async opendir(ctx, ino, flags) {
        await catchUp();
        if (!fs.refresh(ino)) throw new FsError("ENOENT");
        return fs.opendir(ctx, ino);
      },
      readdir: (ctx, ino, fh, offset, max, plus) => fs.readdir(ctx, ino, fh, offset, max, plus),
      releasedir: (ctx, ino, fh) => fs.releasedir(ctx, ino, fh),
      statfs: () => fs.statfs(),
      setxattr: (ctx, ino, name, value, flags) => committed(fs.setxattr(ctx, ino, name, value, flags)),
      getxattr: (ctx, ino, name) => fs.getxattr(ctx, ino, name),
      listxattr: (ctx, ino) => fs.listxattr(ctx, ino),
      removexattr: (ctx, ino, name) => committed(fs.removexattr(ctx, ino, name)),
    };
  },
};
