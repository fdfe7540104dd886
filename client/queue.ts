import { QUEUE_LIMITS } from "../protocol/limits.js";
import { Packr } from "msgpackr";
import { assertEncodable } from "./encodable.js";
import { InvalidError, QueueEmptyError, QueueFullError, TooLargeError } from "../protocol/errors.js";
import { type ObjectRecord, SiloObject } from "./object.js";
import type {
  QueueConfirmReply,
  QueueConfirmRequest,
  QueueGetReply,
  QueueInfoReply,
  QueueLenReply,
  QueuePeekReply,
  QueuePeekRequest,
} from "../protocol/queue.js";
import { GetBatcher, PutBatcher } from "./queue-batching.js";
import { type ConfirmOutcome, Confirmations } from "./queue-confirm.js";

export type { ConfirmOutcome } from "./queue-confirm.js";
import { type EnvironmentOption, type FromNameOptions, ObjectService } from "./object-service.js";
import type { Transport } from "./transport.js";


/** One long-poll lasts at most this long; a longer (or endless) wait is a loop of them. */
const LONG_POLL_MS = 50_000;
/** Items an iterator fetches per round trip. */
const PEEK_BATCH = 100;

/**
 * Values travel as msgpack with msgpackr's structured-clone extensions, so Date, Map, Set,
 * bigint, typed arrays, Error and RegExp come back as themselves. The server never decodes them.
 */
const values = new Packr({ structuredClone: true, int64AsType: "bigint" });

export interface QueueWaitOptions {
  /** Wait while the partition is empty (get) or full (put). Default true. */
  block?: boolean;
  /** Give up waiting after this long (QueueEmptyError / QueueFullError); default: wait forever. Ignored without `block`. */
  timeoutMs?: number;
  /** Partition key (1–64 bytes); default: the default partition, separate from all named ones. */
  partition?: string;
}

export interface QueuePutOptions extends QueueWaitOptions {
  /** The partition expires this long after its last put (default: the server's, 24 h). */
  partitionTtlMs?: number;
}

export interface QueueLenOptions {
  partition?: string;
  /** Count the items of all partitions. */
  total?: boolean;
}

export interface QueueClearOptions {
  partition?: string;
  /** Clear every partition. */
  all?: boolean;
}

export interface QueueIterateOptions {
  partition?: string;
  /** How long to wait for a next item before the iteration ends (default 0: end at the last item). */
  itemPollTimeoutMs?: number;
}

export interface QueueInfo {
  id: string;
  name: string | null;
  environment: string;
  createdAt: Date;
  /** Items over all partitions. */
  totalItems: number;
  /** Partitions that exist (put to, and not yet cleared or expired). */
  partitions: number;
  /** Items served by a get whose receipt is not yet confirmed (they return to their partition if it never is). */
  inFlight: number;
}

function checkPartition(partition: string | undefined): void {
  if (partition === undefined) return;
  const bytes = typeof partition === "string" ? Buffer.byteLength(partition, "utf8") : 0;
  if (bytes < 1 || bytes > QUEUE_LIMITS.maxPartitionKeyBytes) {
    throw new InvalidError(
      `Invalid partition key ${JSON.stringify(partition)}: it must be 1-${QUEUE_LIMITS.maxPartitionKeyBytes} bytes (UTF-8)`,
      "INVALID",
    );
  }
}

function checkExclusive(partition: string | undefined, flag: boolean | undefined, name: string): void {
  if (partition !== undefined && flag) {
    throw new InvalidError(`'partition' and '${name}' contradict each other: give one or the other`, "INVALID");
  }
}

/**
 * Runs one blocking call as a series of long-polls of at most LONG_POLL_MS each, until it
 * succeeds, the caller's deadline passes, or it fails for another reason than waiting.
 */
async function longPoll<R>(timeoutMs: number | undefined, retryOn: typeof QueueEmptyError, call: (waitMs: number) => Promise<R>): Promise<R> {
  const deadline = timeoutMs === undefined ? Infinity : Date.now() + Math.max(0, timeoutMs);
  for (;;) {
    const waitMs = Math.min(LONG_POLL_MS, Math.max(0, deadline - Date.now()));
    try {
      return await call(Math.round(waitMs));
    } catch (err) {
      if (!(err instanceof retryOn) || Date.now() >= deadline) throw err;
    }
  }
}

/**
 * A distributed FIFO queue, split into independent partitions. Many producers and consumers,
 * in any number of processes, may use it at once: every item goes to one get, in order, and is
 * served again only if that get never confirmed receiving it (at-least-once, docs/queues.md).
 * Unlike the reference, an acknowledged put is durable: it survives a crash of the server.
 */
export class Queue<T = unknown> extends SiloObject {
  // Concurrent calls with default waiting (block, no timeout) share requests; see queue-batching.ts.
  private readonly putBatchers = new Map<string, PutBatcher>();
  private readonly getBatchers = new Map<string, GetBatcher>();
  // Every get's answer is confirmed to the server once received; see queue-confirm.ts.
  private readonly confirmations = new Confirmations((leases) =>
    this.rpc<QueueConfirmReply>("POST", `${this.base}/confirm`, { leases } satisfies QueueConfirmRequest),
  );

  private get base(): string {
    return `/v1/queues/${this.id}`;
  }

  /** Adds `v` at the end of the partition, waiting for room while it is full (unless `block: false`). */
  put(v: T, opts: QueuePutOptions = {}): Promise<void> {
    return this.putMany([v], opts);
  }

  /** Adds all of `vs`, in order, atomically: either all of them are queued or none is. */
  async putMany(vs: T[], opts: QueuePutOptions = {}): Promise<void> {
    checkPartition(opts.partition);
    if (vs.length === 0) return;
    if (vs.length > QUEUE_LIMITS.maxItemsPerPartition) {
      throw new TooLargeError(
        `Cannot put ${vs.length} items at once: a partition holds at most ${QUEUE_LIMITS.maxItemsPerPartition}`,
        "TOO_LARGE",
      );
    }
    const items = vs.map((v) => {
      assertEncodable(v, "queue item");
      const bytes = values.pack(v);
      if (bytes.length > QUEUE_LIMITS.maxItemBytes) {
        throw new TooLargeError(`A queue item is ${bytes.length} bytes encoded; the limit is 1 MiB`, "TOO_LARGE");
      }
      return bytes;
    });
    if (opts.block !== false && opts.timeoutMs === undefined) {
      const key = JSON.stringify([opts.partition ?? null, opts.partitionTtlMs ?? null]);
      let batcher = this.putBatchers.get(key);
      if (!batcher) {
        batcher = new PutBatcher((merged) => this.sendPut(merged, opts), () => this.putBatchers.delete(key));
        this.putBatchers.set(key, batcher);
      }
      return batcher.put(items);
    }
    await this.sendPut(items, opts);
  }

  private async sendPut(items: Uint8Array[], opts: QueuePutOptions): Promise<void> {
    const body = { items, partition: opts.partition, partitionTtlMs: opts.partitionTtlMs };
    if (opts.block === false) {
      await this.rpc("POST", `${this.base}/put`, { ...body, block: false });
      return;
    }
    await longPoll(opts.timeoutMs, QueueFullError, (waitMs) => this.rpc("POST", `${this.base}/put`, { ...body, block: true, timeoutMs: waitMs }));
  }

  /**
   * Removes and returns the next item. Blocking (the default), it waits for one – forever or up
   * to `timeoutMs`, then throws QueueEmptyError; with `block: false` it returns undefined at once.
   */
  async get(opts: QueueWaitOptions = {}): Promise<T | undefined> {
    if (opts.block !== false && opts.timeoutMs === undefined) {
      checkPartition(opts.partition);
      const key = opts.partition ?? "";
      let batcher = this.getBatchers.get(key);
      if (!batcher) {
        batcher = new GetBatcher((n) => this.sendGet(n, opts), () => this.getBatchers.delete(key));
        this.getBatchers.set(key, batcher);
      }
      return values.unpack(await batcher.get()) as T;
    }
    const [item] = await this.getMany(1, opts);
    return item;
  }

  /** Removes and returns up to `n` items; blocking, it waits only until at least one is there. */
  async getMany(n: number, opts: QueueWaitOptions = {}): Promise<T[]> {
    checkPartition(opts.partition);
    if (!Number.isInteger(n) || n < 1) throw new InvalidError(`getMany needs a whole number n >= 1, got ${n}`, "INVALID");
    const items = await this.sendGet(Math.min(n, QUEUE_LIMITS.maxItemsPerPartition), opts);
    return items.map((b) => values.unpack(b) as T);
  }

  private async sendGet(n: number, opts: QueueWaitOptions): Promise<Uint8Array[]> {
    const body = { n, partition: opts.partition };
    type Reply = QueueGetReply;
    const res =
      opts.block === false
        ? await this.rpc<Reply>("POST", `${this.base}/get`, { ...body, block: false })
        : await longPoll(opts.timeoutMs, QueueEmptyError, (waitMs) =>
            this.rpc<Reply>("POST", `${this.base}/get`, { ...body, block: true, timeoutMs: waitMs }),
          );
    if (res.lease) this.confirmations.add(res.lease, res.leaseMs);
    return res.items;
  }

  /**
   * Waits until the server has the confirmation of every get answer received so far. Gets
   * confirm on their own right after they return; call this before a process exits, or to know
   * that no item received so far can be served again. `late` counts confirmations that came
   * after their lease ran out: those items were served again.
   */
  settle(): Promise<ConfirmOutcome> {
    return this.confirmations.settle();
  }

  /** Sends the outstanding confirmations; for an ephemeral queue, then deletes it. */
  override async close(): Promise<void> {
    await this.confirmations.settle();
    await super.close();
  }

  /** Items in the partition, or in all partitions with `total`. */
  async len(opts: QueueLenOptions = {}): Promise<number> {
    checkPartition(opts.partition);
    checkExclusive(opts.partition, opts.total, "total");
    const res = await this.rpc<QueueLenReply>("GET", `${this.base}/len`, undefined, {
      query: { partition: opts.partition, total: opts.total || undefined },
    });
    return res.len;
  }

  /** Removes every item of the partition, or of all partitions with `all`. */
  async clear(opts: QueueClearOptions = {}): Promise<void> {
    checkPartition(opts.partition);
    checkExclusive(opts.partition, opts.all, "all");
    await this.rpc("POST", `${this.base}/clear`, { partition: opts.partition, all: opts.all ?? false });
  }

  /** The first `n` items of the partition, without removing them. */
  async peek(n = 1, opts: { partition?: string } = {}): Promise<T[]> {
    checkPartition(opts.partition);
    if (n < 1) return [];
    const body = { n: Math.min(n, QUEUE_LIMITS.maxItemsPerPartition), partition: opts.partition };
    const res = await this.rpc<QueuePeekReply>("POST", `${this.base}/peek`, body satisfies QueuePeekRequest);
    return res.items.map((b) => values.unpack(b) as T);
  }

  /**
   * Reads the partition's items in order without removing them; at the end, waits up to
   * `itemPollTimeoutMs` for a next item before finishing. It fetches items in batches of up
   * to 100; items that concurrent gets take before the iterator fetched them are skipped.
   */
  async *iterate(opts: QueueIterateOptions = {}): AsyncGenerator<T, void, undefined> {
    checkPartition(opts.partition);
    let after = 0;
    for (;;) {
      const deadline = Date.now() + Math.max(0, opts.itemPollTimeoutMs ?? 0);
      let res: QueuePeekReply;
      do {
        const timeoutMs = Math.round(Math.min(LONG_POLL_MS, Math.max(0, deadline - Date.now())));
        res = await this.rpc("POST", `${this.base}/peek`, { n: PEEK_BATCH, partition: opts.partition, after, timeoutMs });
      } while (res.items.length === 0 && Date.now() < deadline);
      if (res.items.length === 0) return;
      for (const b of res.items) yield values.unpack(b) as T;
      after = res.positions[res.positions.length - 1]!;
    }
  }

  /** Who and what the queue is, with its item and partition counts. */
  async info(): Promise<QueueInfo> {
    const res = await this.rpc<QueueInfoReply>("GET", `${this.base}/info`);
    return { ...res, createdAt: new Date(res.createdAt) };
  }
}

/** `silo.queues`: find, create and delete queues. */
export class QueueService extends ObjectService<Queue> {
  constructor(transport: Transport) {
    super(transport, "queue");
  }

  protected wrap(record: ObjectRecord): Queue {
    return new Queue(this.transport, record);
  }

  /** A named queue; NotFoundError unless it exists or `createIfMissing`. */
  async fromName<T = unknown>(name: string, opts: FromNameOptions = {}): Promise<Queue<T>> {
    return (await this.lookup(name, opts)) as Queue<T>;
  }

  /** An anonymous queue deleted by `close()` / `await using`, or when this process stops heart-beating. */
  async ephemeral<T = unknown>(opts: EnvironmentOption = {}): Promise<Queue<T>> {
    return (await this.createEphemeral(opts)) as Queue<T>;
  }
}
