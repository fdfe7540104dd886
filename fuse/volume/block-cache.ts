import { mkdir, open, rename, rm, type FileHandle } from "node:fs/promises";
import { join } from "node:path";

type Entry = { size: number; fh: FileHandle | null; users: number };

/**
 * A bounded on-disk cache of volume blocks, keyed by content hash (so identical blocks of
 * different files are fetched once). Fetches are single-flight; least recently used blocks are
 * evicted once the total passes `maxBytes`. The kernel's page cache keeps hot blocks in memory.
 * A block the cache's disk cannot take (full) is served from memory to the reads waiting for it
 * and not kept: a full cache disk costs fetches, never the readability of committed data.
 */
export class BlockCache {
  private readonly entries = new Map<string, Entry>();
  /** Fetches under way; one resolves with the block's bytes if they could not be kept. */
  private readonly pending = new Map<string, Promise<Buffer | undefined>>();
  private bytes = 0;
  private tmpSeq = 0;
  /** Since the mount started: reads served from a cached block, reads that had to wait for a fetch, bytes fetched. */
  private readonly counts = { hits: 0, misses: 0, bytesFetched: 0 };

  constructor(
    private readonly dir: string,
    private readonly maxBytes: number,
    private readonly fetch: (hash: string) => Promise<Buffer>,
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

  /** The whole block (for copy-up before a partial write). */
  async get(hash: string): Promise<Buffer> {
    const entry = await this.acquire(hash);
    if (Buffer.isBuffer(entry)) return entry;
    try {
      const buf = Buffer.allocUnsafe(entry.size);
      const { bytesRead } = await entry.fh!.read(buf, 0, entry.size, 0);
      return buf.subarray(0, bytesRead);
    } finally {
      entry.users--;
    }
  }

  /**
   * The whole block, from the cache if it is there or on its way, else fetched without keeping
   * it: for bytes read once, like the base under a partially written block that a commit reads
   * (later reads need the block that commit makes, not this one).
   */
  async getOnce(hash: string): Promise<Buffer> {
    if (this.entries.get(hash)?.fh || this.pending.has(hash)) return this.get(hash);
    this.counts.misses++;
    const data = await this.fetch(hash);
    this.counts.bytesFetched += data.length;
    return data;
  }

  /** Starts fetching blocks in the background (read-ahead); errors surface on the real read. */
  prefetch(hashes: string[]): void {
    for (const h of hashes) if (!this.entries.has(h)) this.load(h).catch(() => {});
  }

  get sizeBytes(): number {
    return this.bytes;
  }

  /** Hit ratio over every read so far (0 before the first). */
  stats(): { hits: number; misses: number; hitRatio: number; bytesFetched: number; sizeBytes: number; maxBytes: number } {
    const reads = this.counts.hits + this.counts.misses;
    return { ...this.counts, hitRatio: reads === 0 ? 0 : this.counts.hits / reads, sizeBytes: this.bytes, maxBytes: this.maxBytes };
  }

  async close(): Promise<void> {
    for (const e of this.entries.values()) await e.fh?.close().catch(() => {});
    this.entries.clear();
    await rm(this.dir, { recursive: true, force: true });
  }

  /** The block's cache entry (counted as a user), or its bytes if the cache could not keep them. */
  private async acquire(hash: string): Promise<Entry | Buffer> {
    if (this.entries.get(hash)?.fh) this.counts.hits++;
    else this.counts.misses++;
    for (;;) {
      const entry = this.entries.get(hash);
      if (entry?.fh) {
        // Map order is the LRU order: re-insert on use.
        this.entries.delete(hash);
        this.entries.set(hash, entry);
        entry.users++;
        return entry;
      }
      const unkept = await this.load(hash);
      if (unkept) return unkept;
    }
  }

  private load(hash: string): Promise<Buffer | undefined> {
    let p = this.pending.get(hash);
    if (!p) {
      p = this.fill(hash).finally(() => this.pending.delete(hash));
      this.pending.set(hash, p);
    }
    return p;
  }

  /** Whether a block is in the cache now. */
  has(hash: string): boolean {
    return !!this.entries.get(hash)?.fh;
  }

  /**
   * Puts a block made here into the cache (a commit's new block that reads will want), unless it
   * is there or on its way. Best effort: a cache that cannot take it (full disk) fetches it later.
   */
  async put(hash: string, data: Buffer): Promise<void> {
    if (this.entries.has(hash) || this.pending.has(hash)) return;
    const p = this.keep(hash, data)
      .then(
        () => undefined,
        () => undefined,
      )
      .finally(() => this.pending.delete(hash));
    this.pending.set(hash, p);
    await p;
  }

  /** Fetches a block and keeps it; resolves with its bytes instead if they could not be kept. */
  private async fill(hash: string): Promise<Buffer | undefined> {
    const data = await this.fetch(hash);
    this.counts.bytesFetched += data.length;
    try {
      await this.keep(hash, data);
      return undefined;
    } catch {
      return data;
    }
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
