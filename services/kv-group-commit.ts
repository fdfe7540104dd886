import type { RootDatabase } from "lmdb";
import { isNoSpace } from "./disk-full.js";
import type { DiskReserve } from "./disk-reserve.js";

interface Pending {
  fn: () => unknown;
  freesSpace: boolean;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

/**
 * Group commit: every write issued during one event-loop turn runs in a single synchronous LMDB
 * transaction at the end of the turn, committed and fsync'd before any of them is answered.
 * One fsync covers all requests that arrived together, and no thread hand-offs add latency
 * (lmdb-js async transactions hop to a writer thread and back twice per commit).
 *
 * A group is all or nothing: if any write of it throws, or the commit fails (a full disk), the
 * whole transaction is aborted and every caller of the group is rejected. Stores that keep an
 * in-memory index (queues) may have exposed a write to another write of the same group (a get
 * taking a put's item), so a partial commit could persist one without the other; `onAbort`
 * listeners run before any caller hears of the failure, so they can rebuild from disk first.
 *
 * On a full disk, the writes that free space (deletes, clears, queue gets and confirmations;
 * `freesSpace`) are run again on their own after the disk reserve is given up, so a full disk
 * can still be emptied; the others are rejected (507 NO_SPACE).
 */
export class GroupCommit {
  private pending: Pending[] = [];
  private scheduled = false;
  private readonly abortListeners: Array<(err: unknown) => void> = [];

  constructor(
    private readonly root: RootDatabase,
    private readonly reserve?: DiskReserve,
  ) {}

  /**
   * Runs `fn` inside the next group's transaction; resolves once that commit is on disk.
   * `freesSpace`: the write deletes or moves data, so it may use the disk reserve.
   */
  run<T>(fn: () => T, opts: { freesSpace?: boolean } = {}): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ fn, freesSpace: opts.freesSpace ?? false, resolve: resolve as (value: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.commit());
      }
    });
  }

  /** Called (synchronously, before the group's callers are rejected) whenever a group fails. */
  onAbort(listener: (err: unknown) => void): void {
    this.abortListeners.push(listener);
  }

  private commit(): void {
    this.scheduled = false;
    const group = this.pending;
    this.pending = [];
    let values = this.apply(group);
    if (values) return group.forEach((p, i) => p.resolve(values![i]));
    const err = this.lastError;
    // A full disk: the writes that free space get the reserve and a second try on their own.
    const freeing = group.filter((p) => p.freesSpace);
    const retried = freeing.length > 0 && this.reserve && isNoSpace(err, this.reserve.dataDir) && this.reserve.release();
    values = retried ? this.apply(freeing) : undefined;
    this.aborted(err);
    for (const p of group) if (!(values && p.freesSpace)) p.reject(err);
    if (values) freeing.forEach((p, i) => p.resolve(values![i]));
  }

  private lastError: unknown;

  /** Runs the writes in one transaction; their results, or undefined if it was aborted (see `lastError`). */
  private apply(group: Pending[]): unknown[] | undefined {
    const values: unknown[] = [];
    try {
      // Throwing out of the callback aborts the transaction: nothing of the group is applied.
      this.root.transactionSync(() => {
        for (const p of group) values.push(p.fn());
      });
      return values;
    } catch (err) {
      this.lastError = err;
      return undefined;
    }
  }

  private aborted(err: unknown): void {
    for (const listener of this.abortListeners) {
      try {
        listener(err);
      } catch {
        // A listener's own failure must not keep the callers from hearing about the first one.
      }
    }
  }
}
