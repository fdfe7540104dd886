/** A FIFO mutex for async code: `await lock.run(() => ...)` never overlaps another run. */
export class AsyncLock {
  private tail: Promise<unknown> = Promise.resolve();
  private queued = 0;

  run<T>(fn: () => Promise<T>): Promise<T> {
    this.queued++;
    const result = this.tail.then(fn, fn).finally(() => this.queued--);
    this.tail = result.catch(() => {});
    return result;
  }

  /** Whether nothing runs or waits (a commit's snapshot prefers an instant between operations). */
  get idle(): boolean {
    return this.queued === 0;
  }

  /** Resolves once everything queued before this call has run. */
  drained(): Promise<void> {
    return this.tail.then(() => {});
  }
}
