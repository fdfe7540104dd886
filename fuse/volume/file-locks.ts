import { constants } from "node:os";
import { OFFSET_MAX } from "../kernel/abi.js";
import { Errno, type FileLock, type RequestContext } from "../kernel/types.js";
import { type LockRequest, LockTable } from "../common/lock-table.js";

const E = constants.errno;

/**
 * The file locks of one mount, held by the daemon (the kernel hands them over with
 * FUSE_POSIX_LOCKS / FUSE_FLOCK_LOCKS): fcntl record locks per lock owner (a process, or an open
 * file for OFD locks) and flock locks per open file, apart from each other as on Linux. They
 * live in this process only: other mounts and machines do not see them (docs/mounts.md).
 * Files are keyed by their node, which a hard link's names share.
 */
export class MountLocks {
  private readonly records = new LockTable<object>();
  private readonly flocks = new LockTable<object>();

  /** F_GETLK: the lock that would keep `lock` from being taken (with its owner's pid), if any. */
  getlk(file: object, fh: number, owner: bigint, lock: FileLock): FileLock | undefined {
    const found = this.records.conflicting(file, toRequest(fh, owner, lock));
    return found && { type: found.kind, start: found.start, end: found.end, pid: found.pid };
  }

  /** F_SETLK(W) and flock(2): EAGAIN on a conflict (no wait), EINTR when a wait is interrupted, EDEADLK. */
  async setlk(ctx: RequestContext, file: object, fh: number, owner: bigint, lock: FileLock, opts: { wait: boolean; flock: boolean }): Promise<void> {
    const table = opts.flock ? this.flocks : this.records;
    const req = toRequest(fh, owner, opts.flock ? { ...lock, start: 0n, end: OFFSET_MAX } : lock);
    // flock(2) converts a lock by dropping it first, as Linux does (two holders of LOCK_SH both
    // asking for LOCK_EX must not wait for each other for ever).
    if (opts.flock && req.kind !== "unlock") {
      const mine = table.locks(file).find((l) => l.owner === owner);
      if (mine && mine.kind !== req.kind) table.releaseOwner(file, owner);
    }
    if (!opts.wait) {
      if (table.trySet(file, req)) throw new Errno(E.EAGAIN);
      return;
    }
    const outcome = await table.set(file, req, ctx.signal);
    if (outcome === "interrupted") throw new Errno(E.EINTR);
    if (outcome === "deadlock") throw new Errno(E.EDEADLK);
  }

  /** close(2) of a descriptor of the file: the closing process's fcntl locks on it go. */
  closed(file: object, owner: bigint): void {
    this.records.releaseOwner(file, owner);
  }

  /** The open file's last descriptor is gone: its flock lock, and OFD locks taken through it, go. */
  released(file: object, fh: number): void {
    this.flocks.releaseFile(file, fh);
    this.records.releaseFile(file, fh);
  }
}

function toRequest(fh: number, owner: bigint, lock: FileLock): LockRequest {
  return { owner, fh, kind: lock.type, start: lock.start, end: lock.end, pid: lock.pid };
}
