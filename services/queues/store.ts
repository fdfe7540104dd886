import type { Database, RootDatabase } from "lmdb";
import { type Clock, systemClock } from "../../lib/clock.js";
import type { GroupCommit } from "../kv-group-commit.js";
import { siloError, notFound } from "../errors.js";
import { itemKey, parsePartitionPrefix, rangeEnd, seqOf } from "./keys.js";
import { MAX_ITEM_BYTES, MAX_ITEMS_PER_PARTITION, describePartition } from "./limits.js";
import { type GetWaiter, Partition, type PutWaiter, QueueState, type Taken, type Waiter } from "./partition.js";

/** Most bytes one get/peek answer carries (at least one item always goes). */
export const MAX_REPLY_BYTES = 32 * 1024 * 1024;

export interface QueueStoreOptions {
  maxPartitions: number;
  /** Logs failures of writes nobody awaits (expiry, clears done as a side effect). */
  onError(err: unknown): void;
  /** Time for partition TTLs and wait timeouts (tests pass a TestClock). */
  clock?: Clock;
}

/** How a caller waits: `signal` aborts when its HTTP client goes away. */
export interface WaitOptions {
  block: boolean;
  timeoutMs: number;
  signal: AbortSignal;
}

interface PartitionMeta {
  lastPutAt: number;
  ttlMs: number;
}

const queueEmpty = (p: Partition) => siloError("QUEUE_EMPTY", `Timed out waiting for an item in ${describePartition(p.key)}`);
const queueFull = (p: Partition, why = `it holds ${MAX_ITEMS_PER_PARTITION} items`) =>
  siloError("QUEUE_FULL", `${capital(describePartition(p.key))} is full: ${why}`);
/** Sent (into a closed socket) when a waiting caller disconnected; never reaches a live client. */
const clientGone = () => siloError("CONFLICT", "The client disconnected while waiting");

/**
 * Partitioned FIFO queues on LMDB with blocking waiters. All state changes happen synchronously
 * in memory (so concurrent callers are ordered by the event loop) and then go to LMDB as write
 * batches; a caller is answered only after its writes are committed and flushed to disk.
 */
export class QueueStore {
  private readonly items: Database<Buffer, Buffer>;
  private readonly meta: Database<PartitionMeta, Buffer>;
  private readonly queues = new Map<string, QueueState>();
  private readonly clock: Clock;

  constructor(
    kv: RootDatabase,
    private readonly commits: GroupCommit,
    private readonly opts: QueueStoreOptions,
  ) {
    this.clock = opts.clock ?? systemClock;
    this.items = kv.openDB<Buffer, Buffer>({ name: "queue-items", keyEncoding: "binary", encoding: "binary" });
    this.meta = kv.openDB<PartitionMeta, Buffer>({ name: "queue-partitions", keyEncoding: "binary" });
    this.load();
  }

  /** Rebuilds the in-memory index from LMDB: partition metadata plus each partition's first and last seq. */
  private load(): void {
    for (const { key, value } of this.meta.getRange({})) {
      const { queueId, partition } = parsePartitionPrefix(key);
      const p = this.partition(queueId, partition, false);
      p.lastPutAt = value.lastPutAt;
      p.ttlMs = value.ttlMs;
      const end = rangeEnd(p.prefix);
      for (const first of this.items.getKeys({ start: p.prefix, end, limit: 1 })) p.head = seqOf(first);
      for (const last of this.items.getKeys({ start: end, end: p.prefix, limit: 1, reverse: true })) p.tail = seqOf(last) + 1;
      if (p.tail < p.head) p.tail = p.head;
      if (p.length > 0) p.queue.nonEmpty++;
    }
  }

  /** Runs `ops` in the server's next group commit; resolves once that commit is on disk. */
  private write(ops: () => void): Promise<void> {
    return this.commits.run(ops);
  }

  /** A write nobody awaits: failures are logged, not lost. */
  private background(durable: Promise<void>): void {
    durable.catch((err: unknown) => this.opts.onError(err));
  }

  /** The partition's live state; an expired partition is dropped first, so no caller ever sees one. */
  private partition(queueId: string, key: string, expire = true): Partition {
    let q = this.queues.get(queueId);
    if (!q) this.queues.set(queueId, (q = new QueueState(queueId)));
    let p = q.partitions.get(key);
    if (!p) q.partitions.set(key, (p = new Partition(q, key)));
    if (expire && p.isExpired(this.clock.now())) {
      this.background(this.drop(p));
      return this.partition(queueId, key, false); // the drop may have forgotten the old entry
    }
    return p;
  }

  /** Forgets a partition's in-memory entry once nothing is stored in it and nobody waits on it. */
  private tidy(p: Partition): void {
    if (p.idle && p.queue.partitions.get(p.key) === p) p.queue.partitions.delete(p.key);
  }

  // ---- put ---------------------------------------------------------------------------------

  /** Appends `values` atomically (all or none), waiting for room if the partition is full and `block`. */
  async put(queueId: string, key: string, values: Buffer[], ttlMs: number, wait: WaitOptions): Promise<void> {
    for (const v of values) {
      if (v.length > MAX_ITEM_BYTES) {
        throw siloError("TOO_LARGE", `A queue item is ${v.length} bytes; the limit is ${MAX_ITEM_BYTES} bytes (1 MiB)`);
      }
    }
    const p = this.partition(queueId, key);
    if (values.length > MAX_ITEMS_PER_PARTITION) {
      // Not QueueFull: no amount of waiting would help, and blocking clients retry on QueueFull.
      throw siloError("TOO_LARGE", `Cannot put ${values.length} items at once: a partition holds at most ${MAX_ITEMS_PER_PARTITION}`);
    }
    if (p.putters.size === 0 && p.length + values.length <= MAX_ITEMS_PER_PARTITION) {
      await this.append(p, values, ttlMs);
    } else if (!wait.block) {
      throw queueFull(p, p.putters.size > 0 ? "other puts are waiting for room" : undefined);
    } else {
      // A put that stops waiting may unblock the ones queued behind it.
      const next = () => this.servePutters(p);
      // Resolves with the append's durable write, which the promise adopts.
      await this.enqueue<Promise<void>, PutWaiter>(p, p.putters, { items: values, ttlMs }, wait, () => queueFull(p), next);
    }
  }

  /** Writes items at the tail and hands them to waiting getters and iterators. */
  private append(p: Partition, values: Buffer[], ttlMs: number): Promise<void> {
    if (p.length === 0 && p.queue.nonEmpty >= this.opts.maxPartitions) {
      throw siloError("NO_SPACE", `The queue already has ${this.opts.maxPartitions} non-empty partitions (the limit); cannot start ${describePartition(p.key)}`);
    }
    if (p.length === 0) p.queue.nonEmpty++;
    const first = p.tail;
    p.tail += values.length;
    for (let i = 0; i < values.length; i++) p.pending.set(first + i, values[i]!);
    p.lastPutAt = this.clock.now();
    p.ttlMs = ttlMs;
    const meta: PartitionMeta = { lastPutAt: p.lastPutAt, ttlMs };
    const durable = this.write(() => {
      for (let i = 0; i < values.length; i++) this.items.putSync(itemKey(p.prefix, first + i), values[i]!);
      this.meta.putSync(p.prefix, meta);
    });
    void durable.then(
      () => {
        // Only our own values: a give-back may have reused a seq below the head meanwhile.
        for (let i = 0; i < values.length; i++) if (p.pending.get(first + i) === values[i]) p.pending.delete(first + i);
      },
      () => undefined,
    );
    this.serveGetters(p);
    p.notifyWatchers();
    return durable;
  }

  private servePutters(p: Partition): void {
    for (const w of p.putters) {
      if (p.length + w.items.length > MAX_ITEMS_PER_PARTITION) break; // strict arrival order: nobody jumps ahead
      p.putters.delete(w);
      try {
        w.resolve(this.append(p, w.items, w.ttlMs));
      } catch (err) {
        w.reject(err as Error);
      }
    }
  }

  // ---- get ---------------------------------------------------------------------------------

  /**
   * Removes and returns up to `max` items from the head. Blocking callers wait (FIFO among
   * getters) for at least one. The answer goes out only after the removal is durable; if the
   * caller disconnected meanwhile, the items go back to the head instead of being lost.
   */
  async get(queueId: string, key: string, max: number, wait: WaitOptions): Promise<Buffer[]> {
    const p = this.partition(queueId, key);
    let taken: Taken;
    if (p.length > 0) {
      taken = this.take(p, max);
    } else if (!wait.block) {
      this.tidy(p);
      return [];
    } else {
      taken = await this.enqueue<Taken, GetWaiter>(p, p.getters, { max }, wait, () => queueEmpty(p));
    }
    await taken.durable;
    if (wait.signal.aborted) {
      await this.giveBack(p, taken.values);
      throw clientGone();
    }
    return taken.values;
  }

  private take(p: Partition, max: number): Taken {
    const values: Buffer[] = [];
    const keys: Buffer[] = [];
    let bytes = 0;
    while (values.length < max && p.length > 0) {
      const key = itemKey(p.prefix, p.head);
      const value = p.pending.get(p.head) ?? this.items.getBinary(key);
      if (!value) throw siloError("INTERNAL", `Queue item ${p.head} of ${describePartition(p.key)} is missing`);
      if (values.length > 0 && bytes + value.length > MAX_REPLY_BYTES) break;
      values.push(value);
      keys.push(key);
      bytes += value.length;
      p.head++;
    }
    if (p.length === 0) p.queue.nonEmpty--;
    const durable = this.write(() => {
      for (const key of keys) this.items.removeSync(key);
    });
    this.servePutters(p);
    return { values, durable };
  }

  private serveGetters(p: Partition): void {
    for (const w of p.getters) {
      if (p.length === 0) break;
      p.getters.delete(w);
      w.resolve(this.take(p, w.max));
    }
  }

  /**
   * Puts items a vanished getter was handed back at the head, in their order, and wakes waiters.
   * If a blocked put took the room meanwhile, the partition briefly holds more than the limit:
   * better than losing the items.
   */
  private async giveBack(old: Partition, values: Buffer[]): Promise<void> {
    if (old.queue.purged || values.length === 0) return;
    const p = this.partition(old.queue.id, old.key);
    if (p.length === 0) p.queue.nonEmpty++;
    p.head -= values.length;
    const first = p.head;
    for (let i = 0; i < values.length; i++) p.pending.set(first + i, values[i]!);
    if (p.lastPutAt === 0) p.lastPutAt = this.clock.now(); // it was cleared or expired meanwhile: give it a fresh TTL
    if (p.ttlMs === 0) p.ttlMs = old.ttlMs;
    const meta: PartitionMeta = { lastPutAt: p.lastPutAt, ttlMs: p.ttlMs };
    const durable = this.write(() => {
      for (let i = 0; i < values.length; i++) this.items.putSync(itemKey(p.prefix, first + i), values[i]!);
      this.meta.putSync(p.prefix, meta);
    });
    this.serveGetters(p);
    p.notifyWatchers();
    await durable;
    for (let i = 0; i < values.length; i++) if (p.pending.get(first + i) === values[i]) p.pending.delete(first + i);
  }

  // ---- waiting -----------------------------------------------------------------------------

  /**
   * Joins a partition's wait list until served, timed out (`timeoutError`) or the caller's
   * connection closes. Whoever serves a waiter deletes it from the list, then resolves it.
   */
  private enqueue<T, W extends Waiter<T>>(
    p: Partition,
    list: Set<W>,
    fields: Omit<W, keyof Waiter<T>>,
    wait: WaitOptions,
    timeoutError: () => Error,
    onLeave?: () => void,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (wait.signal.aborted) return reject(clientGone());
      const settle = () => {
        timer.cancel();
        wait.signal.removeEventListener("abort", onAbort);
      };
      const waiter = {
        ...fields,
        resolve(value: T) {
          settle();
          resolve(value);
        },
        reject(err: Error) {
          settle();
          reject(err);
        },
      } as W;
      const leave = (err: Error) => {
        if (!list.delete(waiter)) return;
        waiter.reject(err);
        onLeave?.();
        this.tidy(p);
      };
      const onAbort = () => leave(clientGone());
      const timer = this.clock.setTimeout(() => leave(timeoutError()), wait.timeoutMs);
      wait.signal.addEventListener("abort", onAbort, { once: true });
      list.add(waiter);
    });
  }

  // ---- read-only views -------------------------------------------------------------------

  /**
   * Up to `max` items after seq `after` without removing them; waits up to `waitMs` for one.
   * Returns the items with their seqs so an iterator can continue after the last one.
   */
  async peek(queueId: string, key: string, max: number, after: number, waitMs: number, signal: AbortSignal): Promise<{ seqs: number[]; values: Buffer[] }> {
    let p = this.partition(queueId, key);
    if (Math.max(p.head, after + 1) >= p.tail && waitMs > 0 && !signal.aborted) {
      const watched = p;
      await new Promise<void>((resolve) => {
        const done = () => {
          timer.cancel();
          signal.removeEventListener("abort", done);
          watched.watchers.delete(done);
          resolve();
        };
        const timer = this.clock.setTimeout(done, waitMs);
        signal.addEventListener("abort", done, { once: true });
        watched.watchers.add(done);
      });
      this.tidy(watched);
      p = this.partition(queueId, key);
    }
    const seqs: number[] = [];
    const values: Buffer[] = [];
    let bytes = 0;
    for (let seq = Math.max(p.head, after + 1); seq < p.tail && values.length < max; seq++) {
      const value = p.pending.get(seq) ?? this.items.getBinary(itemKey(p.prefix, seq));
      if (!value) continue;
      if (values.length > 0 && bytes + value.length > MAX_REPLY_BYTES) break;
      seqs.push(seq);
      values.push(value);
      bytes += value.length;
    }
    this.tidy(p);
    return { seqs, values };
  }

  /** Items in one partition. */
  len(queueId: string, key: string): number {
    const p = this.partition(queueId, key);
    const n = p.length;
    this.tidy(p);
    return n;
  }

  /** Items over all partitions and how many partitions exist (have been put to and not cleared or expired). */
  stats(queueId: string): { items: number; partitions: number } {
    this.sweepQueue(this.queues.get(queueId), this.clock.now());
    let items = 0;
    let partitions = 0;
    for (const p of this.queues.get(queueId)?.partitions.values() ?? []) {
      items += p.length;
      if (p.lastPutAt > 0) partitions++;
    }
    return { items, partitions };
  }

  /** A queue's partitions (those put to and not cleared or expired) in key order, up to `limit`, with items and expiry. */
  partitions(queueId: string, limit: number): { partitions: Array<{ key: string; items: number; expiresAt: number }>; truncated: boolean } {
    const now = this.clock.now();
    this.sweepQueue(this.queues.get(queueId), now);
    const live = [...(this.queues.get(queueId)?.partitions.values() ?? [])].filter((p) => p.lastPutAt > 0 && !p.isExpired(now));
    live.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return {
      partitions: live.slice(0, limit).map((p) => ({ key: p.key, items: p.length, expiresAt: p.lastPutAt + p.ttlMs })),
      truncated: live.length > limit,
    };
  }

  /** Items and partitions of every queue holding any (for metrics; does not sweep). */
  depths(): Array<{ queueId: string; items: number; partitions: number }> {
    const out: Array<{ queueId: string; items: number; partitions: number }> = [];
    for (const q of this.queues.values()) {
      let items = 0;
      let partitions = 0;
      for (const p of q.partitions.values()) {
        items += p.length;
        if (p.lastPutAt > 0) partitions++;
      }
      if (partitions > 0 || items > 0) out.push({ queueId: q.id, items, partitions });
    }
    return out;
  }

  /** Callers blocked in a get, a put waiting for room, or a peek waiting for an item (open long-polls). */
  waiting(): number {
    let n = 0;
    for (const q of this.queues.values()) {
      for (const p of q.partitions.values()) n += p.getters.size + p.putters.size + p.watchers.size;
    }
    return n;
  }

  // ---- removal -----------------------------------------------------------------------------

  /** Drops a partition's items and metadata (clear, expiry); blocked puts may now fit. */
  private drop(p: Partition): Promise<void> {
    if (p.lastPutAt === 0 && p.length === 0) return Promise.resolve();
    const keys: Buffer[] = [];
    for (let seq = p.head; seq < p.tail; seq++) keys.push(itemKey(p.prefix, seq));
    if (p.length > 0) p.queue.nonEmpty--;
    p.head = p.tail;
    p.lastPutAt = 0;
    p.pending.clear();
    const durable = this.write(() => {
      for (const key of keys) this.items.removeSync(key);
      this.meta.removeSync(p.prefix);
    });
    this.servePutters(p);
    this.tidy(p);
    return durable;
  }

  async clear(queueId: string, key: string | undefined): Promise<void> {
    const q = this.queues.get(queueId);
    if (!q) return;
    const targets = key === undefined ? [...q.partitions.values()] : [this.partition(queueId, key)];
    await Promise.all(targets.map((p) => this.drop(p)));
  }

  /** Drops every partition of a deleted queue; its waiters fail with NotFound. Idempotent. */
  async purge(queueId: string): Promise<void> {
    const q = this.queues.get(queueId);
    if (!q) return;
    q.purged = true;
    this.queues.delete(queueId);
    const gone = notFound(`Queue '${queueId}'`);
    const durables: Array<Promise<void>> = [];
    for (const p of q.partitions.values()) {
      for (const w of [...p.getters, ...p.putters]) w.reject(gone);
      p.getters.clear();
      p.putters.clear();
      p.notifyWatchers();
      durables.push(this.drop(p));
    }
    await Promise.all(durables);
  }

  /** Ends every wait at shutdown (UnavailableError; iterators get what there is) so long-polls do not hold the close. */
  shutdown(): void {
    const err = siloError("UNAVAILABLE", "The silo server is shutting down");
    for (const q of this.queues.values()) {
      for (const p of q.partitions.values()) {
        for (const w of [...p.getters, ...p.putters]) w.reject(err);
        p.getters.clear();
        p.putters.clear();
        p.notifyWatchers();
      }
    }
  }

  /** Drops expired partitions everywhere (the periodic sweep; reads also expire lazily). */
  sweep(now = this.clock.now()): void {
    for (const q of this.queues.values()) this.sweepQueue(q, now);
  }

  private sweepQueue(q: QueueState | undefined, now: number): void {
    for (const p of q?.partitions.values() ?? []) if (p.isExpired(now)) this.background(this.drop(p));
  }
}

const capital = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
