/**
 * fsyncs of a path (a directory, a database's WAL), coalesced: a caller whose write is done
 * joins the next sync of that path that has not started yet (which then covers its write), so
 * writes landing together cost one fsync, not one each.
 */
export class CoalescedSyncs {
  private readonly pending = new Map<string, { started: boolean; done: Promise<void> }>();

  /** `fsyncPath` syncs one path (a test counts them). */
  constructor(private readonly fsyncPath: (path: string) => Promise<void>) {}

  sync(path: string): Promise<void> {
    const current = this.pending.get(path);
    if (current && !current.started) return current.done;
    const entry = { started: false, done: Promise.resolve() };
    entry.done = (current?.done ?? Promise.resolve())
      .catch(() => {})
      .then(() => {
        entry.started = true;
        return this.fsyncPath(path);
      })
      .finally(() => {
        if (this.pending.get(path) === entry) this.pending.delete(path);
      });
    this.pending.set(path, entry);
    return entry.done;
  }
}
