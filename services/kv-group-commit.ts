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
 */
export class GroupCommit {
  private pending: Pending[] = [];
  private scheduled = false;

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

  private commit(): void {
    this.scheduled = false;
    const group = this.pending;
    this.pending = [];
    const outcomes: Array<{ value?: unknown; error?: unknown; failed: boolean }> = [];
    try {
      this.root.transactionSync(() => {
        for (const p of group) {
          try {
            outcomes.push({ value: p.fn(), failed: false });
          } catch (error) {
            outcomes.push({ error, failed: true });
          }
        }
      });
    } catch (err) {
      for (const p of group) p.reject(err);
      return;
    }
    group.forEach((p, i) => (outcomes[i]!.failed ? p.reject(outcomes[i]!.error) : p.resolve(outcomes[i]!.value)));
  }
}
