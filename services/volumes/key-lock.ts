/** Runs async sections one at a time per key (e.g. an upload and a GC delete of the same block). */
export class KeyLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  async with<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => {});
    this.tails.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  /**
   * Runs `fn` holding every one of `keys`, taken one after another in sorted order, repeats once:
   * single-key holders never wait while holding, and two many-key holders (GC's batches, a local
   * block write's group) take shared keys in the same order, so this cannot deadlock.
   */
  withAll<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(keys)].sort();
    const from = (i: number): Promise<T> => (i >= sorted.length ? fn() : this.with(sorted[i]!, () => from(i + 1)));
    return from(0);
  }
}
