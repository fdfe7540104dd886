import type { RootDatabase } from "lmdb";

interface Pending {
  fn: () => unknown;
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
 */
export class GroupCommit {
  private pending: Pending[] = [];
  private scheduled = false;
  private readonly abortListeners: Array<(err: unknown) => void> = [];

  constructor(private readonly root: RootDatabase) {}

  /** Runs `fn` inside the next group's transaction; resolves once that commit is on disk. */
  run<T>(fn: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ fn, resolve: resolve as (value: unknown) => void, reject });
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
    const values: unknown[] = [];
    try {
      // Throwing out of the callback aborts the transaction: nothing of the group is applied.
      this.root.transactionSync(() => {
        for (const p of group) values.push(p.fn());
      });
    } catch (err) {
      for (const listener of this.abortListeners) {
        try {
          listener(err);
        } catch {
          // A listener's own failure must not keep the callers from hearing about the first one.
        }
      }
      for (const p of group) p.reject(err);
      return;
    }
    group.forEach((p, i) => p.resolve(values[i]));
  }
}
