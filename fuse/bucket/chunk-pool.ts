/** Free buffers are dropped after this long without use: an idle mount gives its memory back. */
const IDLE_MS = 10_000;

/**
 * Reusable read-ahead buffers of one size. A sequential reader goes through 64 chunks of 16 MiB
 * per GiB; fresh buffers each time kept V8 collecting garbage, which cost about a fifth of the
 * daemon's CPU on a read. Reusing them avoids that.
 */
export class ChunkPool {
  private readonly free: Buffer[] = [];
  private lastUse = 0;
  private trimTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly chunkSize: number,
    /** Buffers kept for reuse; more than that are left to the GC. */
    private readonly keep: number,
  ) {}

  take(): Buffer {
    this.lastUse = Date.now();
    return this.free.pop() ?? Buffer.allocUnsafe(this.chunkSize);
  }

  give(buf: Buffer): void {
    this.lastUse = Date.now();
    if (this.free.length < this.keep) this.free.push(buf);
    this.trimWhenIdle();
  }

  private trimWhenIdle(): void {
    if (this.trimTimer) return;
    this.trimTimer = setTimeout(() => {
      this.trimTimer = undefined;
      if (Date.now() - this.lastUse >= IDLE_MS) this.free.length = 0;
      else this.trimWhenIdle();
    }, IDLE_MS).unref();
  }
}
