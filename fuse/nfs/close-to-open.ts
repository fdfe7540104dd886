import Fuse, { type FuseOps } from "fuse-native";
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
 * Close-to-open consistency on top of the volume mount's ops (a network file system mount):
 * - open, readdir, and the lookup of a name this mount does not know first catch up with the
 *   server (one `latestVersion` request; the delta only if something changed), so they see
 *   everything any mount or client closed before;
 * - flush (every close(2) of a descriptor opened for writing) and fsync commit this mount's
 *   changes and answer only then, EIO if that failed (the change stays pending and is retried);
 *   so do the operations that change names or attributes (mkdir, rename, unlink, chmod, …),
 *   which have no close;
 * - a `stat` of a known name answers from the local view if that caught up within the last
 *   STAT_MAX_AGE_MS, else it catches up first;
 * - the kernel caches no names or attributes (timeouts 0), so nothing stale is served from it;
 *   page-cache contents are dropped at open when the size or mtime changed (auto_cache).
 */
export const closeToOpen: MountConsistency = {
  kind: "nfs",
  kernelCacheSeconds: 0,
  wrapOps(ops: FuseOps, mv: MountedVolume, log: (msg: string) => void): FuseOps {
    const revalidator = new Revalidator(mv);
    const writeFds = new Set<number>();
    /** Runs `then` after a catch-up; a failed catch-up (server away) is logged and the local view served. */
    const afterCatchUp = (then: () => void) =>
      void revalidator.revalidate().then(then, (err: Error) => {
        log(`could not catch up with the server (serving the local view): ${err.message}`);
        then();
      });
    const commit = (cb: (err: number) => void) =>
      void mv.commit().then(
        () => cb(0),
        (err: Error) => {
          log(`commit at close/fsync failed (kept locally, retried in the background): ${err.message}`);
          cb(Fuse.EIO);
        },
      );
    /** The callback of an op that changed the tree: answered once the change is committed. */
    const committed = (cb: (err: number) => void) => (err: number) => (err === 0 ? commit(cb) : cb(err));
    return {
      ...ops,
      getattr: (path, cb) => {
        if (revalidator.olderThan(STAT_MAX_AGE_MS)) return afterCatchUp(() => ops.getattr!(path, cb));
        ops.getattr!(path, (err, stat) => {
          if (err !== Fuse.ENOENT) return cb(err, stat);
          // A name we do not know may have been created elsewhere: ask once before saying no.
          afterCatchUp(() => ops.getattr!(path, cb));
        });
      },
      readdir: (path, cb) => afterCatchUp(() => ops.readdir!(path, cb)),
      open: (path, flags, cb) =>
        afterCatchUp(() =>
          ops.open!(path, flags, (err, fd) => {
            if (err === 0 && fd !== undefined && (flags & O_ACCMODE) !== 0) writeFds.add(fd);
            cb(err, fd);
          }),
        ),
      create: (path, mode, cb) =>
        ops.create!(path, mode, (err, fd) => {
          if (err === 0 && fd !== undefined) writeFds.add(fd);
          cb(err, fd);
        }),
      flush: (_path, fd, cb) => (writeFds.has(fd) ? commit(cb) : cb(0)),
      // Namespace and attribute changes have no close: each is on the server when it returns.
      mkdir: (path, mode, cb) => ops.mkdir!(path, mode, committed(cb)),
      rmdir: (path, cb) => ops.rmdir!(path, committed(cb)),
      unlink: (path, cb) => ops.unlink!(path, committed(cb)),
      rename: (src, dest, cb) => ops.rename!(src, dest, committed(cb)),
      symlink: (target, path, cb) => ops.symlink!(target, path, committed(cb)),
      link: (src, dest, cb) => ops.link!(src, dest, committed(cb)),
      chmod: (path, mode, cb) => ops.chmod!(path, mode, committed(cb)),
      utimens: (path, atime, mtime, cb) => ops.utimens!(path, atime, mtime, committed(cb)),
      truncate: (path, size, cb) => ops.truncate!(path, size, committed(cb)),
      fsync: (_path, _datasync, _fd, cb) => commit(cb),
      release: (path, fd, cb) =>
        ops.release!(path, fd, (err) => {
          // Writes after the last flush (e.g. through a memory map) still reach the server.
          if (writeFds.delete(fd)) mv.commit().catch((e: Error) => log(`commit at release failed (retried in the background): ${e.message}`));
          cb(err);
        }),
    };
  },
};
