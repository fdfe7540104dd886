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

  /** Runs `fn` holding every one of `keys` (taken one after another; single-key holders never wait while holding, so this cannot deadlock). */
  withAll<T>(keys: readonly string[], fn: () => Promise<T>, from = 0): Promise<T> {
    return from >= keys.length ? fn() : this.with(keys[from]!, () => this.withAll(keys, fn, from + 1));
  }
}
