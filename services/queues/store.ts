import type { Database, RootDatabase } from "lmdb";
import { type Clock, systemClock } from "../../lib/clock.js";
import type { GroupCommit } from "../kv-group-commit.js";
import { siloError, notFound } from "../errors.js";
import { newId } from "../ids.js";
import { itemKey, parsePartitionPrefix, rangeEnd, seqOf } from "./keys.js";
import { MAX_ITEM_BYTES, MAX_ITEMS_PER_PARTITION, describePartition } from "./limits.js";
import { type GetWaiter, type Lease, Partition, type PutWaiter, QueueState, type Taken, type Waiter } from "./partition.js";

/** Most bytes one get/peek answer carries (at least one item always goes). */
export const MAX_REPLY_BYTES = 32 * 1024 * 1024;

export interface QueueStoreOptions {
  maxPartitions: number;
  /** How long served items wait for the client's confirmation before they return to the head. */
  leaseMs: number;
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

/** A lease on disk: which partition its items came from, until when, and the items themselves. */
interface LeaseRecord {
  queueId: string;
  partition: string;
  expiresAt: number;
  items: Buffer[];
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
  private readonly leaseDb: Database<LeaseRecord, string>;
  private readonly queues = new Map<string, QueueState>();
  private readonly leases = new Map<string, Lease>();
  private readonly clock: Clock;

  constructor(
    kv: RootDatabase,
    private readonly commits: GroupCommit,
    private readonly opts: QueueStoreOptions,
  ) {
    this.clock = opts.clock ?? systemClock;
    this.items = kv.openDB<Buffer, Buffer>({ name: "queue-items", keyEncoding: "binary", encoding: "binary" });
    this.meta = kv.openDB<PartitionMeta, Buffer>({ name: "queue-partitions", keyEncoding: "binary" });
    this.leaseDb = kv.openDB<LeaseRecord, string>({ name: "queue-leases" });
    this.load();
    // A failed group (full disk) was applied to memory already: rebuild memory from what is on disk.
    commits.onAbort(() => this.resync());
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
    for (const { key, value } of this.leaseDb.getRange({})) {
      const p = this.partition(value.queueId, value.partition, false);
      this.arm({ id: key, partition: p, values: value.items, expiresAt: value.expiresAt });
    }
  }

  /**
   * After a failed group commit: memory may show writes that never reached the disk (a put's
   * items, a take, a give-back). Forget them and rebuild the index and the leases from LMDB,
   * keeping the wait lists, then serve whoever can be served now.
   */
  private resync(): void {
    for (const lease of this.leases.values()) lease.timer?.cancel();
    this.leases.clear();
    for (const q of this.queues.values()) {
      q.nonEmpty = 0;
      for (const p of q.partitions.values()) {
        p.pending.clear();
        p.leases.clear();
        p.head = p.tail;
        p.lastPutAt = 0;
        p.ttlMs = 0;
      }
    }
    this.load();
    for (const q of this.queues.values()) {
      for (const p of [...q.partitions.values()]) {
        this.serveGetters(p);
        this.servePutters(p);
        p.notifyWatchers();
        this.tidy(p);
      }
    }
  }

  /** Registers a lease in memory and starts its clock. */
  private arm(lease: Lease): void {
    this.leases.set(lease.id, lease);
    lease.partition.leases.add(lease);
    lease.timer = this.clock.setTimeout(() => this.background(this.release(lease)), Math.max(0, lease.expiresAt - this.clock.now()), { unref: true });
  }

  /**
   * Forgets a lease in memory and returns its live entry (a resync may have replaced the object
   * a caller holds), or undefined if it was already gone (confirmed, released or dropped).
   */
  private disarm(lease: Pick<Lease, "id">): Lease | undefined {
    const live = this.leases.get(lease.id);
    if (!live) return undefined;
    live.timer?.cancel();
    this.leases.delete(live.id);
    live.partition.leases.delete(live);
    return live;
  }

  /**
   * Runs `ops` in the server's next group commit; resolves once that commit is on disk.
   * `freesSpace`: it removes or moves items, so it may use the disk reserve on a full disk;
   * `independent: false`: it must fail with its group (it took items a write of the group adds).
   */
  private write(ops: () => void, opts: boolean | { freesSpace: boolean; independent: boolean } = false): Promise<void> {
    return this.commits.run(ops, typeof opts === "boolean" ? { freesSpace: opts } : opts);
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
   * Removes up to `max` items from the head into a lease and returns it. Blocking callers wait
   * (FIFO among getters) for at least one. It returns only after the move into the lease is
   * durable; if the caller disconnected meanwhile, the items go back to the head at once.
   * Otherwise they stay leased until `confirm`, or return to the head when the lease runs out.
   */
  async get(queueId: string, key: string, max: number, wait: WaitOptions): Promise<Lease | undefined> {
    const deadline = this.clock.now() + wait.timeoutMs;
    let taken: Taken;
    for (;;) {
      const p = this.partition(queueId, key);
      if (p.length > 0) {
        taken = this.take(p, max);
      } else if (!wait.block) {
        this.tidy(p);
        return undefined;
      } else {
        const timeoutMs = Math.max(0, deadline - this.clock.now());
        taken = await this.enqueue<Taken, GetWaiter>(p, p.getters, { max }, { ...wait, timeoutMs }, () => queueEmpty(p));
      }
      try {
        await taken.durable;
        break;
      } catch (err) {
        // The group failed (full disk) and was rolled back. A waiting get that was handed a
        // failed put's items waits on, unless items are there (its own take is what failed).
        const now = this.partition(queueId, key);
        if (!wait.block || wait.signal.aborted || now.length > 0 || this.clock.now() >= deadline) throw err;
      }
    }
    if (wait.signal.aborted) {
      await this.release(taken.lease);
      throw clientGone();
    }
    return taken.lease;
  }

  /**
   * The client received the items of these leases: they are gone for good. Returns how many of
   * them were still in flight (a lease that ran out was given back, and its items will be served again).
   */
  async confirm(queueId: string, leaseIds: string[]): Promise<number> {
    const confirmed: Lease[] = [];
    for (const id of leaseIds) {
      const lease = this.leases.get(id);
      if (lease && lease.partition.queue.id === queueId && this.disarm(lease)) confirmed.push(lease);
    }
    if (confirmed.length === 0) return 0;
    await this.write(() => {
      for (const lease of confirmed) this.leaseDb.removeSync(lease.id);
    }, true);
    for (const lease of confirmed) this.tidy(lease.partition);
    return confirmed.length;
  }

  /** Ends a lease early or on expiry: its items go back to the head of their partition. */
  async release(lease: Pick<Lease, "id">): Promise<void> {
    const live = this.disarm(lease);
    if (live) await this.giveBack(live);
  }

  private take(p: Partition, max: number): Taken {
    const values: Buffer[] = [];
    const keys: Buffer[] = [];
    let bytes = 0;
    // Taking an item whose put is not yet on disk ties this take to that put's commit: if the
    // group fails, the take must fail with it (no reserve retry that would persist the item).
    let fromPending = false;
    while (values.length < max && p.length > 0) {
      const key = itemKey(p.prefix, p.head);
      const pending = p.pending.get(p.head);
      if (pending) fromPending = true;
      const value = pending ?? this.items.getBinary(key);
      if (!value) throw siloError("INTERNAL", `Queue item ${p.head} of ${describePartition(p.key)} is missing`);
      if (values.length > 0 && bytes + value.length > MAX_REPLY_BYTES) break;
      values.push(value);
      keys.push(key);
      bytes += value.length;
      p.head++;
    }
    if (p.length === 0) p.queue.nonEmpty--;
    const lease: Lease = { id: newId("lease"), partition: p, values, expiresAt: this.clock.now() + this.opts.leaseMs };
    const record: LeaseRecord = { queueId: p.queue.id, partition: p.key, expiresAt: lease.expiresAt, items: values };
    // One transaction moves the items from the partition into the lease: never in neither, never in both.
    const durable = this.write(() => {
      for (const key of keys) this.items.removeSync(key);
      this.leaseDb.putSync(lease.id, record);
    }, { freesSpace: !fromPending, independent: !fromPending });
    this.arm(lease);
    this.servePutters(p);
    return { lease, durable };
  }

  private serveGetters(p: Partition): void {
    for (const w of p.getters) {
      if (p.length === 0) break;
      p.getters.delete(w);
      w.resolve(this.take(p, w.max));
    }
  }

  /**
   * Puts a lease's items back at the head of their partition, in their order, and wakes waiters;
   * the same transaction deletes the lease. If a blocked put took the room meanwhile, the
   * partition briefly holds more than the limit: better than losing the items.
   */
  private async giveBack(lease: Lease): Promise<void> {
    const { partition: old, values } = lease;
    if (old.queue.purged) {
      await this.write(() => this.leaseDb.removeSync(lease.id), true);
      return;
    }
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
      this.leaseDb.removeSync(lease.id);
    }, true);
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

  /**
   * Items over all partitions, how many partitions exist (have been put to and not cleared or
   * expired), and how many served items await their client's confirmation.
   */
  stats(queueId: string): { items: number; partitions: number; inFlight: number } {
    this.sweepQueue(this.queues.get(queueId), this.clock.now());
    let items = 0;
    let partitions = 0;
    let inFlight = 0;
    for (const p of this.queues.get(queueId)?.partitions.values() ?? []) {
      items += p.length;
      if (p.lastPutAt > 0) partitions++;
      for (const lease of p.leases) inFlight += lease.values.length;
    }
    return { items, partitions, inFlight };
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
    if (p.lastPutAt === 0 && p.length === 0 && p.leases.size === 0) return Promise.resolve();
    const keys: Buffer[] = [];
    for (let seq = p.head; seq < p.tail; seq++) keys.push(itemKey(p.prefix, seq));
    // Items in flight belong to the partition too: a clear must not see them come back later.
    const leaseIds = [...p.leases].filter((lease) => this.disarm(lease)).map((lease) => lease.id);
    if (p.length > 0) p.queue.nonEmpty--;
    p.head = p.tail;
    p.lastPutAt = 0;
    p.pending.clear();
    const durable = this.write(() => {
      for (const key of keys) this.items.removeSync(key);
      for (const id of leaseIds) this.leaseDb.removeSync(id);
      this.meta.removeSync(p.prefix);
    }, true);
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
