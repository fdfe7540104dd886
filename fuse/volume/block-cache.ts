import { mkdir, open, rename, rm, type FileHandle } from "node:fs/promises";
import { join } from "node:path";

type Entry = { size: number; fh: FileHandle | null; users: number };

/** Blocks fetched lately that reads copy from memory (never read back from the cache file). */
export const RECENT_BLOCKS = 4;
/** Read-ahead fetches in flight at most, over all files (part of the memory bound, see BlockCache). */
export const MAX_PREFETCHES = 4;
/** Fetched blocks being written to cache files at most; past it a fetched block is not kept (a disk slower than the network must not pile blocks up in memory). */
const MAX_WRITES = 4;

/**
 * A bounded on-disk cache of volume blocks, keyed by content hash (so identical blocks of
 * different files are fetched once). Fetches are single-flight; least recently used blocks are
 * evicted once the total passes `maxBytes`. The kernel's page cache keeps hot blocks in memory.
 *
 * A fetched block is served from memory: the readers waiting for it copy from the fetched bytes,
 * and the last RECENT_BLOCKS fetched stay in memory for the reads that follow (a sequential
 * reader reads a block in 1 MiB pieces), while the block is written to the cache file off the
 * read path. A block whose write fails (full disk) is simply not kept there: a full cache disk
 * costs fetches, never the readability of committed data, and the cache never holds a cut copy.
 * Memory: RECENT_BLOCKS + MAX_PREFETCHES + MAX_WRITES blocks (96 MiB) at most, plus the blocks
 * readers wait for.
 */
export class BlockCache {
  private readonly entries = new Map<string, Entry>();
  /** Fetches under way (single flight); each resolves with the block's bytes. */
  private readonly pending = new Map<string, Promise<Buffer>>();
  /** Fetched blocks in memory, least recently used first; never mutated (readers only copy out). */
  private readonly recent = new Map<string, Buffer>();
  /** Blocks being written to the cache file, readable from memory meanwhile. */
  private readonly writing = new Map<string, { data: Buffer; done: Promise<void> }>();
  private prefetches = 0;
  private bytes = 0;
  private tmpSeq = 0;
  /** Since the mount started: reads served from a cached block, reads that had to wait for a fetch, bytes fetched. */
  private readonly counts = { hits: 0, misses: 0, bytesFetched: 0 };

  constructor(
    private readonly dir: string,
    private readonly maxBytes: number,
    private readonly fetch: (hash: string) => Promise<Buffer>,
    /** Fetched blocks kept in memory for the reads that follow. */
    private readonly recentBlocks = RECENT_BLOCKS,
  ) {}

  async init(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
    await mkdir(this.dir, { recursive: true });
  }

  /** Copies `len` bytes at `offset` of block `hash` into `buf` at `bufOffset`; returns the count. */
  async read(hash: string, offset: number, buf: Buffer, bufOffset: number, len: number): Promise<number> {
    const entry = await this.acquire(hash);
    if (Buffer.isBuffer(entry)) return entry.copy(buf, bufOffset, Math.min(offset, entry.length), Math.min(offset + len, entry.length));
    try {
      const { bytesRead } = await entry.fh!.read(buf, bufOffset, len, offset);
      return bytesRead;
    } finally {
      entry.users--;
    }
  }

  /**
   * Bytes [offset, offset + len) of block `hash` if the block is in memory now and holds them
   * (else undefined): a view of the fetched bytes, to be read, never written.
   */
  peek(hash: string, offset: number, len: number): Buffer | undefined {
    const data = this.inMemory(hash);
    if (!data || data.length < offset + len) return undefined;
    this.counts.hits++;
    return data.subarray(offset, offset + len);
  }

  /** The whole block, in a buffer of the caller's own (for copy-up before a partial write). */
  async get(hash: string): Promise<Buffer> {
    const entry = await this.acquire(hash);
    if (Buffer.isBuffer(entry)) return Buffer.from(entry);
    try {
      const buf = Buffer.allocUnsafe(entry.size);
      const { bytesRead } = await entry.fh!.read(buf, 0, entry.size, 0);
      return buf.subarray(0, bytesRead);
    } finally {
      entry.users--;
    }
  }

  /**
   * The whole block (the caller's own buffer), from the cache if it is there or on its way, else
   * fetched without keeping it: for bytes read once, like the base under a partially written
   * block that a commit reads (later reads need the block that commit makes, not this one).
   */
  async getOnce(hash: string): Promise<Buffer> {
    if (this.entries.get(hash)?.fh || this.pending.has(hash) || this.inMemory(hash)) return this.get(hash);
    this.counts.misses++;
    const data = await this.fetch(hash);
    this.counts.bytesFetched += data.length;
    return data;
  }

  /**
   * Starts fetching blocks in the background (read-ahead), at most MAX_PREFETCHES at a time over
   * all readers (the rest are fetched when read); errors surface on the real read, which fetches again.
   */
  prefetch(hashes: string[]): void {
    for (const h of hashes) {
      if (this.prefetches >= MAX_PREFETCHES) return;
      if (this.entries.has(h) || this.pending.has(h) || this.inMemory(h)) continue;
      this.prefetches++;
      this.load(h)
        .catch(() => {})
        .finally(() => this.prefetches--);
    }
  }

  get sizeBytes(): number {
    return this.bytes;
  }

  /** Hit ratio over every read so far (0 before the first). */
  stats(): { hits: number; misses: number; hitRatio: number; bytesFetched: number; sizeBytes: number; maxBytes: number } {
    const reads = this.counts.hits + this.counts.misses;
    return { ...this.counts, hitRatio: reads === 0 ? 0 : this.counts.hits / reads, sizeBytes: this.bytes, maxBytes: this.maxBytes };
  }

  /** Resolves once the blocks on their way to the cache file are there (or given up). */
  async flushed(): Promise<void> {
    await Promise.all([...this.writing.values()].map((w) => w.done));
  }

  async close(): Promise<void> {
    // Not the fetches under way: a server that is away must not hold up the unmount.
    await this.flushed();
    for (const e of this.entries.values()) await e.fh?.close().catch(() => {});
    this.entries.clear();
    this.recent.clear();
    await rm(this.dir, { recursive: true, force: true });
  }

  /** The block's bytes if they are in memory (fetched lately or being written to the cache file). */
  private inMemory(hash: string): Buffer | undefined {
    const data = this.recent.get(hash) ?? this.writing.get(hash)?.data;
    if (!data) return undefined;
    // Map order is the LRU order: re-insert on use (in memory and on disk).
    if (this.recent.delete(hash)) this.recent.set(hash, data);
    this.touch(hash);
    return data;
  }

  private touch(hash: string): Entry | undefined {
    const entry = this.entries.get(hash);
    if (entry) {
      this.entries.delete(hash);
      this.entries.set(hash, entry);
    }
    return entry;
  }

  /** The block's bytes in memory, or its cache entry (counted as a user). */
  private async acquire(hash: string): Promise<Entry | Buffer> {
    const data = this.inMemory(hash);
    if (data) {
      this.counts.hits++;
      return data;
    }
    const entry = this.touch(hash);
    if (entry?.fh) {
      this.counts.hits++;
      entry.users++;
      return entry;
    }
    this.counts.misses++;
    return this.load(hash);
  }

  private load(hash: string): Promise<Buffer> {
    let p = this.pending.get(hash);
    if (!p) {
      p = this.fill(hash).finally(() => this.pending.delete(hash));
      this.pending.set(hash, p);
    }
    return p;
  }

  /** Whether a block is in the cache now (in memory or in its cache file). */
  has(hash: string): boolean {
    return !!this.entries.get(hash)?.fh || this.recent.has(hash) || this.writing.has(hash);
  }

  /**
   * Puts a block made here into the cache (a commit's new block that reads will want), unless it
   * is there or on its way. Best effort: a cache that cannot take it (full disk) fetches it later.
   * `data` must not change afterwards (it is read from memory until it is written).
   */
  async put(hash: string, data: Buffer): Promise<void> {
    if (this.entries.has(hash) || this.pending.has(hash) || this.inMemory(hash)) return;
    await this.store(hash, data);
  }

  /** Fetches a block: its bytes stay in memory, and go to the cache file off the read path. */
  private async fill(hash: string): Promise<Buffer> {
    const data = await this.fetch(hash);
    this.counts.bytesFetched += data.length;
    this.recent.set(hash, data);
    for (const h of this.recent.keys()) {
      if (this.recent.size <= this.recentBlocks) break;
      this.recent.delete(h);
    }
    if (this.writing.size < MAX_WRITES) this.store(hash, data).catch(() => {});
    return data;
  }

  /** Writes a block to the cache file, readable from memory meanwhile; never fails (a block not kept is fetched again). */
  private store(hash: string, data: Buffer): Promise<void> {
    const done = this.keep(hash, data)
      .catch(() => {})
      .finally(() => this.writing.delete(hash));
    this.writing.set(hash, { data, done });
    return done;
  }

  private async keep(hash: string, data: Buffer): Promise<void> {
    const file = join(this.dir, hash);
    const tmp = `${file}.${this.tmpSeq++}.tmp`;
    let fh: FileHandle | undefined;
    try {
      const out = await open(tmp, "w");
      try {
        // writeFile, not write: one write(2) may be short on a nearly full disk, and a short copy would be served as the block.
        await out.writeFile(data);
      } finally {
        await out.close();
      }
      await rename(tmp, file);
      fh = await open(file, "r");
    } catch (err) {
      // A partial copy would hold space on a disk that has none.
      await rm(tmp, { force: true });
      await rm(file, { force: true });
      throw err;
    }
    this.entries.set(hash, { size: data.length, fh, users: 0 });
    this.bytes += data.length;
    await this.evict(hash);
  }

  private async evict(keep: string): Promise<void> {
    for (const [hash, e] of this.entries) {
      if (this.bytes <= this.maxBytes) return;
      if (hash === keep || e.users > 0) continue;
      this.entries.delete(hash);
      this.bytes -= e.size;
      await e.fh?.close().catch(() => {});
      await rm(join(this.dir, hash), { force: true });
    }
  }
}
