/** Limits of one coalesced request. */
export interface BatchLimits {
  /** Requests in flight at once; further operations wait and ride in the next request. */
  maxInFlight: number;
  maxOps: number;
  /** A batch closes before it would pass this many payload bytes (a bigger operation goes alone). */
  maxBytes: number;
}

interface Pending<Op, R> {
  op: Op;
  bytes: number;
  resolve(result: R): void;
  reject(err: unknown): void;
}

/**
 * Coalesces concurrent operations into batched requests: everything issued in one event-loop
 * turn (and everything issued while `maxInFlight` requests are out) travels in one request, so
 * 64 callers cost a few round trips, not 64. `send` must answer one result per operation, in order.
 */
export class OpBatcher<Op, R> {
  private queue: Array<Pending<Op, R>> = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(
    private readonly send: (ops: Op[]) => Promise<R[]>,
    private readonly limits: BatchLimits,
  ) {}

  run(op: Op, bytes: number): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ op, bytes, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.queue.length === 0 || this.inFlight >= this.limits.maxInFlight) return;
    this.scheduled = true;
    // setImmediate (not a microtask): operations issued by callbacks of the same I/O turn join in.
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.queue.length > 0 && this.inFlight < this.limits.maxInFlight) {
      let n = 0;
      let bytes = 0;
      while (n < this.queue.length && n < this.limits.maxOps && (n === 0 || bytes + this.queue[n]!.bytes <= this.limits.maxBytes)) {
        bytes += this.queue[n]!.bytes;
        n++;
      }
      const batch = this.queue.splice(0, n);
      this.inFlight++;
      this.send(batch.map((p) => p.op))
        .then(
          (results) => batch.forEach((p, i) => p.resolve(results[i]!)),
          (err: unknown) => batch.forEach((p) => p.reject(err)),
        )
        .finally(() => {
          this.inFlight--;
          this.schedule();
        });
    }
  }
}
