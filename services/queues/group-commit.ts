import type { RootDatabase } from "lmdb";

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((ok, fail) => {
    resolve = ok;
    reject = fail;
  });
  return { promise, resolve, reject };
}

/**
 * Durable writes with group commit. lmdb-js makes one transaction per event-loop turn and
 * queues the transactions of later turns behind a running one, each paying its own fsync.
 * Here, writes that arrive while a transaction is being made durable wait for it and then go
 * out together as one transaction: under load one fsync serves everything that piled up,
 * while a lone write goes out at once. Batches are issued one after another, so LMDB applies
 * writes in the order they were made.
 */
export class GroupCommit {
  private running = false;
  private next: Array<() => void> = [];
  private nextDone: Deferred | undefined;

  constructor(private readonly kv: RootDatabase) {}

  /** Runs `ops` (puts and removes) in a transaction; resolves once it is committed and flushed to disk. */
  write(ops: () => void): Promise<void> {
    if (!this.running) return this.commit([ops]);
    this.next.push(ops);
    return (this.nextDone ??= deferred()).promise;
  }

  private commit(batch: Array<() => void>): Promise<void> {
    this.running = true;
    const committed = this.kv.batch(() => {
      for (const ops of batch) ops();
    });
    // `flushed` must be asked right away: it follows the transaction the writes above just joined.
    const flushed = new Promise<void>((resolve, reject) => this.kv.flushed.then(() => resolve(), reject));
    const durable = Promise.all([committed, flushed]).then(() => undefined);
    const startNext = () => {
      this.running = false;
      if (this.next.length === 0) return;
      const waiting = this.next;
      const done = this.nextDone!;
      this.next = [];
      this.nextDone = undefined;
      this.commit(waiting).then(done.resolve, done.reject);
    };
    durable.then(startNext, startNext);
    return durable;
  }
}
