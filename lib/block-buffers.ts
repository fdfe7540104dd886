/** Free block buffers kept for reuse at most (more are left to the GC): 32 MiB held while idle. */
export const FREE_BUFFERS = 4;

/**
 * One fetched block's bytes in a buffer that is recycled once nobody refers to it: every holder
 * (the cache's in-memory lists, a cache-file write, a read copying out of it) takes a reference
 * with `retain` and gives it back with `release`, exactly once each. `data` must not be used by
 * anyone who holds no reference, except within the synchronous turn in which a holder handed it
 * out (a FUSE reply is written with writeSync before that turn ends, and the pool's buffers are
 * only ever written to by fetches, which fill them in later I/O callbacks).
 */
export class BlockBuffer {
  private refs = 1;

  /** `mem` goes back to `pool` at the last release (null: not pooled, e.g. a block made here). */
  constructor(
    private readonly pool: BlockBuffers | null,
    private readonly mem: Buffer,
    /** The block's bytes: a view of `mem`, or another buffer (a body that did not fit). */
    public data: Buffer,
  ) {}

  /** A block that lives in its own buffer (not recycled). */
  static of(data: Buffer): BlockBuffer {
    return new BlockBuffer(null, data, data);
  }

  /** The memory a fetch writes the block into. */
  get memory(): Buffer {
    return this.mem;
  }

  /**
   * Whether `data` starts on a page boundary (the pool allocates page-aligned memory and the
   * bytes start at its first byte): what an O_DIRECT write needs of its memory.
   */
  get pageAligned(): boolean {
    return this.pool?.pageAligned === true && this.data.buffer === this.mem.buffer && this.data.byteOffset === this.mem.byteOffset;
  }

  get references(): number {
    return this.refs;
  }

  retain(n = 1): this {
    if (this.refs <= 0) throw new Error("a recycled block buffer was retained");
    this.refs += n;
    return this;
  }

  release(): void {
    if (this.refs <= 0) throw new Error("a block buffer was released more often than retained");
    if (--this.refs === 0) this.pool?.recycle(this.mem);
  }
}

/**
 * A small pool of block-sized buffers: a mount daemon reads fetched blocks into them, the server
 * composes blocks in them. A fresh 8 MiB buffer per block costs its first-touch page faults
 * (~1 CPU-s per GiB on the 2-core VM) and GC; a reused one costs neither. Buffers come back only through `BlockBuffer.release` (reference counted).
 */
export class BlockBuffers {
  private readonly free: Buffer[] = [];
  /** Buffers allocated since start (reuse shows as fewer of them than blocks fetched). */
  allocated = 0;

  constructor(
    /** Bytes per buffer: a block (BLOCK_SIZE) for its users. */
    readonly size: number,
    private readonly keep = FREE_BUFFERS,
    /** Allocates page-aligned buffers (native/fuse-fd's alignedBuffer): null, Node's own. */
    private readonly allocateAligned: ((size: number) => Buffer) | null = null,
  ) {}

  /** Whether every buffer of this pool starts on a page boundary. */
  get pageAligned(): boolean {
    return this.allocateAligned !== null;
  }

  /** A buffer of the caller's (one reference), reused if one is free. */
  take(): BlockBuffer {
    let mem = this.free.pop();
    if (!mem) {
      // Not from Node's shared slab: the buffer is recycled whole, never shared.
      mem = this.allocateAligned ? this.allocateAligned(this.size) : Buffer.allocUnsafeSlow(this.size);
      this.allocated++;
    }
    return new BlockBuffer(this, mem, mem);
  }

  /** Buffers waiting for reuse. */
  get freeCount(): number {
    return this.free.length;
  }

  /** Only BlockBuffer.release calls this, at the last reference. */
  recycle(mem: Buffer): void {
    if (this.free.includes(mem)) throw new Error("a block buffer was recycled twice");
    if (this.free.length < this.keep) this.free.push(mem);
  }
}
