import type { ClockTimer } from "../../lib/clock.js";
import { FIRST_SEQ, partitionPrefix } from "./keys.js";

/**
 * Items a get took from a partition's head, in flight to the client. They stay on disk (in the
 * lease record) until the client confirms receipt, and go back to the head of their partition
 * if the confirmation does not come within the lease, or the client is seen to disconnect.
 */
export interface Lease {
  readonly id: string;
  readonly partition: Partition;
  readonly values: Buffer[];
  /** Wall-clock end of the lease (kept on disk, so a restarted server honours it). */
  readonly expiresAt: number;
  timer?: ClockTimer;
}

/** Items removed from a partition in memory whose move into a lease is on its way to disk. */
export interface Taken {
  lease: Lease;
  /** Resolves once the removal and the lease are committed and flushed. */
  durable: Promise<void>;
}

/** Something blocked on a partition; whoever serves it removes it from its list first. */
export interface Waiter<T> {
  resolve(value: T): void;
  reject(err: Error): void;
}

/** A blocked get, served first-come-first-served by puts. */
export interface GetWaiter extends Waiter<Taken> {
  max: number;
}

/** A blocked put waiting for room, served in arrival order by gets, clears and expiry. */
export interface PutWaiter extends Waiter<Promise<void>> {
  items: Buffer[];
  ttlMs: number;
}

/** The in-memory state of one queue: its partitions and how many of them hold items. */
export class QueueState {
  readonly partitions = new Map<string, Partition>();
  /** Partitions holding at least one item (the 100,000-partition limit counts these). */
  nonEmpty = 0;
  /** Set once the queue is deleted, so late work (a give-back) cannot resurrect it. */
  purged = false;

  constructor(readonly id: string) {}
}

/**
 * One FIFO partition. The server is LMDB's only writer, so this in-memory state is authoritative:
 * items live at seqs [head, tail) in LMDB; values whose write is not yet committed are also in
 * `pending`, so a get can hand them over at once (its delete commits in the same or a later txn).
 */
export class Partition {
  readonly prefix: Buffer;
  head = FIRST_SEQ;
  tail = FIRST_SEQ;
  /** 0 while the partition holds no persisted metadata (never put, cleared or expired). */
  lastPutAt = 0;
  ttlMs = 0;
  readonly pending = new Map<number, Buffer>();
  // Sets iterate in insertion order and delete in O(1): FIFO wait lists that let a waiter leave early.
  readonly getters = new Set<GetWaiter>();
  readonly putters = new Set<PutWaiter>();
  /** Iterators waiting for a next item. */
  readonly watchers = new Set<() => void>();
  /** Items served and not yet confirmed (clear and expiry drop them too). */
  readonly leases = new Set<Lease>();

  constructor(
    readonly queue: QueueState,
    readonly key: string,
  ) {
    this.prefix = partitionPrefix(queue.id, key);
  }

  get length(): number {
    return this.tail - this.head;
  }

  isExpired(now: number): boolean {
    return this.lastPutAt > 0 && now >= this.lastPutAt + this.ttlMs;
  }

  /** Nothing stored and nobody waiting: the in-memory entry can go. */
  get idle(): boolean {
    return (
      this.length === 0 &&
      this.lastPutAt === 0 &&
      this.getters.size === 0 &&
      this.putters.size === 0 &&
      this.watchers.size === 0 &&
      this.leases.size === 0
    );
  }

  notifyWatchers(): void {
    for (const wake of this.watchers) wake();
    this.watchers.clear();
  }
}
