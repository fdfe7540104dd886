import type { RootDatabase } from "lmdb";
import { isNoSpace } from "./disk-full.js";
import type { DiskReserve } from "./disk-reserve.js";

interface Pending {
  fn: () => unknown;
  freesSpace: boolean;
  independent: boolean;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

/**
 * Group commit: every write issued during one event-loop turn runs in a single synchronous LMDB
 * transaction at the end of the turn, committed and fsync'd before any of them is answered.
 * One fsync covers all requests that arrived together, and no thread hand-offs add latency
 * (lmdb-js async transactions hop to a writer thread and back twice per commit).
 *
 * Nothing is ever partially applied. If one write throws, the transaction is aborted (none of
 * that write's changes survive) and the group's other writes run again in a new transaction;
 * if the commit itself fails (a full disk), every caller of the group is rejected. A write that
 * depends on another of its group (a queue get taking the item of a put in the same group) is
 * marked `independent: false` and fails with the group instead of being run again alone.
 * `onAbort` listeners run before any caller hears of a failure, so a store that keeps an
 * in-memory index can rebuild it from disk first.
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
  run<T>(fn: () => T, opts: { freesSpace?: boolean; independent?: boolean } = {}): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({
        fn,
        freesSpace: opts.freesSpace ?? false,
        independent: opts.independent ?? true,
        resolve: resolve as (value: unknown) => void,
        reject,
      });
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
    const values = this.apply(group);
    if (values) {
      group.forEach((p, i) => p.resolve(values[i]));
      return;
    }
    const err = this.lastError;
    const culprit = this.failed;
    let again: Pending[] = [];
    if (culprit) {
      // One write threw: the others run again without it.
      again = group.filter((p) => p !== culprit && p.independent);
    } else if (this.reserve && isNoSpace(err, this.reserve.dataDir) && group.some((p) => p.freesSpace && p.independent)) {
      // A full disk: the writes that free space get the reserve and a second try on their own.
      if (this.reserve.release()) again = group.filter((p) => p.freesSpace && p.independent);
    }
    const againValues = again.length > 0 ? this.apply(again) : undefined;
    const againErr = this.lastError;
    this.aborted(err);
    for (const p of group) {
      if (againValues && again.includes(p)) continue;
      p.reject(p === culprit || !again.includes(p) ? err : againErr);
    }
    if (againValues) again.forEach((p, i) => p.resolve(againValues[i]));
  }

  private lastError: unknown;
  /** The write that threw in the last failed `apply`, if one did (else the commit failed). */
  private failed: Pending | undefined;

  /** Runs the writes in one transaction; their results, or undefined if it was aborted (see `lastError`). */
  private apply(group: Pending[]): unknown[] | undefined {
    const values: unknown[] = [];
    this.failed = undefined;
    try {
      // Throwing out of the callback aborts the transaction: nothing of the group is applied.
      this.root.transactionSync(() => {
        for (const p of group) {
          try {
            values.push(p.fn());
          } catch (err) {
            this.failed = p;
            throw err;
          }
        }
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
