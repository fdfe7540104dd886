import { createHash } from "node:crypto";

/** A block and its SHA-256 (hex). */
export interface Block {
  hash: string;
  data: Uint8Array;
}

/** What the engine needs from the server; `VolumeBlocks` is the real one. */
export interface BlockTarget {
  /** Which of these hashes the server lacks (the others count as touched, so GC keeps them). */
  missingBlocks(hashes: string[]): Promise<string[]>;
  /** One block in its own request (straight to the object store when the server offers it). */
  uploadBlock(hash: string, data: Uint8Array): Promise<void>;
  /** Many blocks in one request. */
  uploadBlocks(blocks: Block[]): Promise<void>;
}

/** Blocks of one request, and the callbacks that hand their buffers back once it succeeded. */
interface Job {
  blocks: Block[];
  bytes: number;
  dones: Array<() => void>;
}

/**
 * Blocks up to this size travel many per request (10,000 small files cost a few round trips,
 * not 20,000); larger ones one per request, several in flight. Distinct from the server's
 * INLINE_BLOCK_MAX (protocol/volume.ts), which says where a block is stored.
 */
export const BATCH_BLOCK_MAX = 1024 * 1024;
/** A batch is sent once it holds this many bytes… */
export const BATCH_BYTES = 8 * 1024 * 1024;
/** …or this many blocks. */
export const BATCH_COUNT = 512;

export interface BlockUploaderOptions {
  /** Upload requests in flight at once (default 4). */
  concurrency?: number;
  /** Bytes the engine holds, queued or in flight, before `add` waits (default 64 MiB): bounds memory. */
  maxBytes?: number;
  /** Called with a block's size once it is stored (uploaded, or found present already). */
  onProgress?: (bytes: number) => void;
}

/**
 * A block's SHA-256 (hex). On the calling thread: Node 20's WebCrypto digest, though it returns
 * a promise, hashes synchronously as well and copies the input first (measured).
 */
function sha256(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/**
 * The one block-transfer engine, for mounts' commits and batch uploads alike: makes sure blocks
 * exist on the server. Each block is hashed (unless the caller knows its hash), skipped if it
 * was added before, and queued; small blocks are gathered into batches, large ones go one per
 * request. Every request first asks which of its blocks the server lacks and sends only those.
 * At most `concurrency` requests run at once, and `add` waits while `maxBytes` are held.
 * `flush` waits for everything; the first failure fails every later `add` and the `flush`.
 */
export class BlockUploader {
  /** Every hash added: the blocks a commit may reference once `flush` resolved. */
  readonly hashes = new Set<string>();
  private readonly concurrency: number;
  private readonly maxBytes: number;
  private batch: Block[] = [];
  private batchBytes = 0;
  /** The `done` callbacks of the blocks in `batch`. */
  private batchDone: Array<() => void> = [];
  /** Bytes of blocks added and not yet stored (in the batch, queued or in flight). */
  private held = 0;
  private running = 0;
  private readonly queue: Job[] = [];
  /** Woken whenever a request finishes (memory freed, a slot free, maybe idle). */
  private wakers: Array<() => void> = [];
  private error: unknown;

  constructor(
    private readonly target: BlockTarget,
    private readonly opts: BlockUploaderOptions = {},
  ) {
    this.concurrency = Math.max(1, opts.concurrency ?? 4);
    this.maxBytes = Math.max(1, opts.maxBytes ?? 64 * 1024 * 1024);
  }

  /**
   * Adds a block; resolves with its hash once the engine took it (the upload runs on). Pass
   * `hash` when it is known already. Throws the first upload failure, if any happened.
   * `done` is called once the engine no longer reads `data` (stored, or a repeat of a block
   * added before), so the caller may reuse its memory; never after a failure (its bytes may
   * still sit in a dying connection's queue), so such a buffer is left to the GC.
   */
  async add(data: Uint8Array, hash?: string, done?: () => void): Promise<string> {
    this.throwIfFailed();
    // Hashed before the first await: the caller's buffer is only read here and by the upload.
    const h = hash ?? sha256(data);
    if (this.hashes.has(h)) {
      this.opts.onProgress?.(data.length);
      done?.();
      return h;
    }
    this.hashes.add(h);
    while (this.held > 0 && this.held + data.length > this.maxBytes) {
      // The unsent batch holds bytes too: send it rather than wait for it.
      if (this.batch.length > 0) this.sendBatch();
      await this.changed();
      this.throwIfFailed();
    }
    this.held += data.length;
    if (data.length <= BATCH_BLOCK_MAX) {
      this.batch.push({ hash: h, data });
      this.batchBytes += data.length;
      if (done) this.batchDone.push(done);
      if (this.batchBytes >= BATCH_BYTES || this.batch.length >= BATCH_COUNT) this.sendBatch();
    } else {
      this.enqueue([{ hash: h, data }], data.length, done ? [done] : []);
    }
    return h;
  }

  /**
   * Records a block the server already holds durably, stored another way (a local block write,
   * client/local-put.ts): a commit may reference it, and adding it again sends nothing.
   */
  known(hash: string): void {
    this.hashes.add(hash);
  }

  /** Sends what is queued and waits until every added block is stored; throws the first failure. */
  async flush(): Promise<void> {
    this.sendBatch();
    while (this.running > 0 || this.queue.length > 0) await this.changed();
    this.throwIfFailed();
  }

  private throwIfFailed(): void {
    if (this.error !== undefined) throw this.error;
  }

  private changed(): Promise<void> {
    return new Promise((resolve) => this.wakers.push(resolve));
  }

  private wake(): void {
    const wakers = this.wakers;
    this.wakers = [];
    for (const w of wakers) w();
  }

  private sendBatch(): void {
    if (this.batch.length === 0) return;
    this.enqueue(this.batch, this.batchBytes, this.batchDone);
    this.batch = [];
    this.batchBytes = 0;
    this.batchDone = [];
  }

  private enqueue(blocks: Block[], bytes: number, dones: Array<() => void>): void {
    this.queue.push({ blocks, bytes, dones });
    this.pump();
  }

  private pump(): void {
    while (this.running < this.concurrency && this.queue.length > 0) {
      const job = this.queue.shift()!;
      if (this.error !== undefined) {
        // After a failure nothing more is sent (the commit fails anyway).
        this.held -= job.bytes;
        continue;
      }
      this.running++;
      this.store(job.blocks).then(
        () => {
          // The request is answered: the server read every byte, nothing refers to the buffers.
          for (const done of job.dones) done();
          this.finish(job.bytes, true);
        },
        (err: unknown) => {
          this.error ??= err;
          this.finish(job.bytes, false);
        },
      );
    }
  }

  private finish(bytes: number, ok: boolean): void {
    this.running--;
    this.held -= bytes;
    if (ok) this.opts.onProgress?.(bytes);
    this.pump();
    this.wake();
  }

  /** One request's worth: asks which blocks are missing and sends just those. */
  private async store(blocks: Block[]): Promise<void> {
    const missing = new Set(await this.target.missingBlocks(blocks.map((b) => b.hash)));
    const todo = blocks.filter((b) => missing.has(b.hash));
    if (todo.length === 0) return;
    if (blocks.length === 1 && blocks[0]!.data.length > BATCH_BLOCK_MAX) await this.target.uploadBlock(todo[0]!.hash, todo[0]!.data);
    else await this.target.uploadBlocks(todo);
  }
}
