/**
 * Client-side coalescing of concurrent queue calls (group commit). While one request for a
 * partition is in flight, further calls with the same options wait and then go out together as
 * one putMany / getMany. A lone caller pays nothing extra; 64 concurrent callers share one
 * round trip and one disk flush instead of paying 64.
 *
 * Semantics are kept: each caller's items stay contiguous and in order inside one atomic
 * request, items from a merged get go to callers in arrival order, each to exactly one.
 */

/** Most items / bytes one merged request carries (the server's per-partition and body limits). */
const MAX_BATCH_ITEMS = 5_000;
const MAX_BATCH_BYTES = 16 * 1024 * 1024;

interface Pending<T> {
  resolve(value: T): void;
  reject(err: unknown): void;
}

/** Merges concurrent puts of one partition (same TTL, blocking without a timeout). */
export class PutBatcher {
  private readonly waiting: Array<Pending<void> & { items: Uint8Array[] }> = [];
  private inFlight = false;

  constructor(
    private readonly send: (items: Uint8Array[]) => Promise<void>,
    private readonly onIdle: () => void,
  ) {}

  put(items: Uint8Array[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ items, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    if (this.inFlight) return;
    if (this.waiting.length === 0) {
      this.onIdle();
      return;
    }
    const batch: typeof this.waiting = [];
    let count = 0;
    let bytes = 0;
    for (const next of this.waiting) {
      const size = next.items.reduce((sum, b) => sum + b.length, 0);
      if (batch.length > 0 && (count + next.items.length > MAX_BATCH_ITEMS || bytes + size > MAX_BATCH_BYTES)) break;
      batch.push(next);
      count += next.items.length;
      bytes += size;
    }
    this.waiting.splice(0, batch.length);
    this.inFlight = true;
    this.send(batch.flatMap((b) => b.items))
      .then(
        () => batch.forEach((b) => b.resolve()),
        (err: unknown) => batch.forEach((b) => b.reject(err)),
      )
      .finally(() => {
        this.inFlight = false;
        this.pump();
      });
  }
}

/** Merges concurrent single-item blocking gets of one partition into one getMany. */
export class GetBatcher {
  private readonly waiting: Array<Pending<Uint8Array>> = [];
  private inFlight = false;

  constructor(
    private readonly send: (n: number) => Promise<Uint8Array[]>,
    private readonly onIdle: () => void,
  ) {}

  get(): Promise<Uint8Array> {
    return new Promise<Uint8Array>((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    if (this.inFlight) return;
    if (this.waiting.length === 0) {
      this.onIdle();
      return;
    }
    const n = Math.min(this.waiting.length, MAX_BATCH_ITEMS);
    this.inFlight = true;
    this.send(n)
      .then(
        // The server returns at least one and at most n items; callers beyond that ask again.
        (items) => this.waiting.splice(0, items.length).forEach((w, i) => w.resolve(items[i]!)),
        (err: unknown) => this.waiting.splice(0, n).forEach((w) => w.reject(err)),
      )
      .finally(() => {
        this.inFlight = false;
        this.pump();
      });
  }
}
