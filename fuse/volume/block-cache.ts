import { constants } from "node:fs";
import { mkdir, open, rename, rm, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { writevAll } from "../../lib/writev-all.js";
import { BlockBuffer, BlockBuffers, FREE_BUFFERS } from "../../lib/block-buffers.js";
import { BLOCK_SIZE } from "../../protocol/volume.js";
import { fuseFdAddonIfBuilt } from "../../lib/native-addon.js";
import type { FileSlice } from "../kernel/filesystem.js";

/** A cached block: its cache file, or (`local`) the server's own blob file on this host, open. */
type Entry = { size: number; fh: FileHandle | null; users: number; local?: boolean };
/** A fetch under way; `waiters` reads wait for it, each given a reference to the block when it arrives. */
type Pending = { done: Promise<BlockBuffer>; waiters: number };

/**
 * Fetches a block's bytes, into `into` when they fit (the answer is then a view of it). A block
 * read from a file on this host (the server's own blob, local block reads: client/local-blocks.ts)
 * comes as `{ data, fh }` with that file open: the cache keeps the open file instead of writing
 * a cache file (it is on local disk already; reading it costs what reading a cache file would,
 * and it stays readable while the server is away, also if the server deletes it meanwhile).
 */
export type BlockFetch = (hash: string, into: Buffer) => Promise<Buffer | LocalFetch>;

/** A block fetch's answer read from a file on this host, and that file, open (the cache closes it). */
export interface LocalFetch {
  data: Buffer;
  fh: FileHandle;
}

/**
 * Opens block `hash`'s file on this host (the server's blob, local block reads) without reading
 * it: undefined when that path is not available for it. The file holds at least `size` bytes.
 */
export type LocalOpen = (hash: string) => Promise<{ fh: FileHandle; size: number } | undefined>;

/** Server blob files kept open at most (local block reads): past it the least recently used are closed. */
export const MAX_LOCAL_FILES = 256;

/**
 * Other bytes held under a block cache's budget (whole files of committed files,
 * whole-files.ts): the cache sheds them, by their own rules, before it evicts any block.
 */
export interface CacheTenant {
  readonly bytes: number;
  /** Frees at least `over` bytes if it can (what it holds in use stays). */
  shed(over: number): Promise<void>;
}

export interface BlockCacheOptions {
  /** Fetched blocks kept in memory for the reads that follow (RECENT_BLOCKS). */
  recentBlocks?: number;
  /** Where fetched blocks are read into (tests pass small ones). */
  buffers?: BlockBuffers;
  /** Blocks on their way to cache files at most (MAX_WRITES). */
  maxWrites?: number;
  /**
   * Opens a block's file on this host without reading it (local block reads): `fileSlice` and
   * read-ahead then open such blocks instead of fetching them into memory (their reads are spliced).
   */
  openLocal?: LocalOpen;
}

/** Blocks fetched lately that reads copy from memory (never read back from the cache file). */
export const RECENT_BLOCKS = 4;
/** Read-ahead fetches in flight at most, over all files (part of the memory bound, see BlockCache). */
export const MAX_PREFETCHES = 4;
/** Fetched blocks being written to cache files at most; past it a fetched block is not kept (a disk slower than the network must not pile blocks up in memory). */
export const MAX_WRITES = 4;
/** What O_DIRECT asks of a write's memory, length and offset (a page: a multiple of any disk's logical block). */
export const DIRECT_ALIGN = 4096;

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
 *
 * Fetched blocks land in reused buffers (BlockBuffers): each holder of a block's bytes keeps a
 * reference (the recent list, the cache-file write, a read copying out, each waiter of a fetch),
 * so a buffer is refilled only once none of them can still read it.
 */
export class BlockCache {
  private readonly entries = new Map<string, Entry>();
  /** Fetches under way (single flight); each resolves with the block's bytes. */
  private readonly pending = new Map<string, Pending>();
  /** Fetched blocks in memory (one reference each), least recently used first; never mutated (readers only copy out). */
  private readonly recent = new Map<string, BlockBuffer>();
  /** Blocks being written to the cache file (one reference each), readable from memory meanwhile. */
  private readonly writing = new Map<string, { block: BlockBuffer; done: Promise<void> }>();
  /** Local files being opened (single flight, openLocal). */
  private readonly opening = new Map<string, Promise<Entry | undefined>>();
  private readonly openLocal: LocalOpen | undefined;
  private readonly recentBlocks: number;
  private readonly maxWrites: number;
  private readonly buffers: BlockBuffers;
  private prefetches = 0;
  private bytes = 0;
  private tmpSeq = 0;
  /** Cleared when the cache's file system refuses O_DIRECT: later blocks are written through the page cache. */
  private direct = true;
  /** Blocks written to their cache files with O_DIRECT since the start. */
  directWrites = 0;
  /** Since the mount started: reads served from a cached block, reads that had to wait for a fetch, bytes fetched, blocks fetched by local block reads. */
  private readonly counts = { hits: 0, misses: 0, bytesFetched: 0, localBlocks: 0 };
  /** Entries that are server blob files (local block reads): not counted in `bytes` (no cache disk), bounded by MAX_LOCAL_FILES. */
  private localFiles = 0;
  /** Bytes sharing the budget, shed before blocks (set once). */
  tenant: CacheTenant | undefined;

  constructor(
    private readonly dir: string,
    private readonly maxBytes: number,
    private readonly fetch: BlockFetch,
    opts: BlockCacheOptions = {},
  ) {
    this.recentBlocks = opts.recentBlocks ?? RECENT_BLOCKS;
    this.buffers = opts.buffers ?? new BlockBuffers(BLOCK_SIZE, FREE_BUFFERS, alignedAllocator());
    this.maxWrites = opts.maxWrites ?? MAX_WRITES;
    this.openLocal = opts.openLocal;
  }

  async init(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
    await mkdir(this.dir, { recursive: true });
  }

  /** Copies `len` bytes at `offset` of block `hash` into `buf` at `bufOffset`; returns the count. */
  async read(hash: string, offset: number, buf: Buffer, bufOffset: number, len: number): Promise<number> {
    const entry = await this.acquire(hash);
    if (entry instanceof BlockBuffer) {
      try {
        const data = entry.data;
        return data.copy(buf, bufOffset, Math.min(offset, data.length), Math.min(offset + len, data.length));
      } finally {
        entry.release();
      }
    }
    try {
      const { bytesRead } = await entry.fh!.read(buf, bufOffset, len, offset);
      return bytesRead;
    } finally {
      entry.users--;
    }
  }

  /**
   * Bytes [offset, offset + len) of block `hash` if the block is in memory now and holds them
   * (else undefined): a view of the fetched bytes, to be read, never written, and only within
   * the caller's synchronous turn (no reference is taken: its buffer may be refilled later).
   */
  peek(hash: string, offset: number, len: number): Buffer | undefined {
    const data = this.inMemory(hash)?.data;
    if (!data || data.length < offset + len) return undefined;
    this.counts.hits++;
    return data.subarray(offset, offset + len);
  }

  /**
   * Bytes [offset, offset + len) of block `hash` as a view of its fetched bytes, fetching it if
   * need be; undefined if the block is read from its cache file or is shorter. The view holds a
   * reference until the event loop's next turn (setImmediate): a FUSE reply made of it in the
   * promise jobs after this resolves is written by then.
   */
  async viewSoon(hash: string, offset: number, len: number): Promise<Buffer | undefined> {
    // A block in its cache file is read from there (by the caller, copying).
    if (!this.inMemory(hash) && this.entries.get(hash)?.fh) return undefined;
    const entry = await this.acquire(hash);
    if (!(entry instanceof BlockBuffer)) {
      entry.users--;
      return undefined;
    }
    setImmediate(() => entry.release());
    return entry.data.length < offset + len ? undefined : entry.data.subarray(offset, offset + len);
  }

  /**
   * Bytes [offset, offset + len) of block `hash` as a slice of the open file holding them: its
   * cache file or the server's blob file, opened now if need be (`openLocal`; never fetched or
   * read here). Undefined when the block is in memory or on its way (read it from there), not in
   * a file here, or holds fewer bytes. The file stays open until the slice is released.
   */
  async fileSlice(hash: string, offset: number, len: number): Promise<FileSlice | undefined> {
    if (this.inMemory(hash) || this.pending.has(hash)) return undefined;
    let entry = this.touch(hash);
    if (entry?.fh) this.counts.hits++;
    else {
      if (!this.openLocal) return undefined;
      entry = await this.opened(hash);
      // Evicted (and being closed) while the caller waited: read some other way.
      if (!entry || this.entries.get(hash) !== entry) return undefined;
      this.counts.misses++;
    }
    const fh = entry.fh;
    if (!fh || entry.size < offset + len) return undefined;
    const held = entry;
    held.users++;
    let released = false;
    return {
      fd: fh.fd,
      offset,
      length: len,
      copy: async () => {
        const buf = Buffer.allocUnsafe(len);
        for (let at = 0; at < len; ) {
          const { bytesRead } = await fh.read(buf, at, len - at, offset + at);
          if (bytesRead === 0) throw new Error(`block ${hash} holds ${offset + at} bytes, ${offset + len} expected`);
          at += bytesRead;
        }
        return buf;
      },
      release: () => {
        if (released) return;
        released = true;
        held.users--;
      },
    };
  }

  /** Block `hash`'s local file opened and kept as its cache entry (single flight); undefined if it has none. */
  private opened(hash: string): Promise<Entry | undefined> {
    let p = this.opening.get(hash);
    if (!p) {
      p = this.openLocal!(hash)
        .then(async (file) => {
          if (!file) return undefined;
          // Counted as fetched (its bytes come from the server's file, as a local fetch's would).
          this.counts.localBlocks++;
          this.counts.bytesFetched += file.size;
          await this.keepLocal(hash, file.size, file.fh);
          return this.entries.get(hash);
        })
        .finally(() => this.opening.delete(hash));
      this.opening.set(hash, p);
    }
    return p;
  }

  /** The whole block, in a buffer of the caller's own (for copy-up before a partial write). */
  async get(hash: string): Promise<Buffer> {
    const entry = await this.acquire(hash);
    if (entry instanceof BlockBuffer) {
      try {
        return Buffer.from(entry.data);
      } finally {
        entry.release();
      }
    }
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
    const block = this.buffers.take();
    try {
      const got = await this.fetch(hash, block.memory);
      const data = this.fetched(got);
      // Read once: the server's file is not kept.
      if ("fh" in got) await got.fh.close().catch(() => {});
      return Buffer.from(data);
    } finally {
      block.release();
    }
  }

  /**
   * Starts fetching blocks in the background (read-ahead), at most MAX_PREFETCHES at a time over
   * all readers (the rest are fetched when read); errors surface on the real read, which fetches again.
   */
  prefetch(hashes: string[]): void {
    for (const h of hashes) {
      if (this.prefetches >= MAX_PREFETCHES) return;
      if (this.entries.has(h) || this.pending.has(h) || this.opening.has(h) || this.inMemory(h)) continue;
      this.prefetches++;
      // A block on this host is opened and its file read ahead into the page cache (its reads
      // are spliced from there); others are fetched into memory.
      const work: Promise<unknown> = this.openLocal ? this.opened(h).then((e): Promise<unknown> => (e ? this.readAhead(h, e) : this.load(h).done)) : this.load(h).done;
      work.catch(() => {}).finally(() => this.prefetches--);
    }
  }

  /** Asks the kernel to read a block's file into the page cache (on the thread pool); best effort. */
  private async readAhead(hash: string, entry: Entry): Promise<void> {
    const advise = fuseFdAddonIfBuilt()?.willNeed;
    if (!advise || !entry.fh || this.entries.get(hash) !== entry) return;
    entry.users++;
    try {
      await advise(entry.fh.fd, 0, entry.size);
    } finally {
      entry.users--;
    }
  }

  get sizeBytes(): number {
    return this.bytes;
  }

  /** The disk budget, shared with the tenant. */
  get budget(): number {
    return this.maxBytes;
  }

  /**
   * Copies the first `len` bytes of block `hash` into `buf` if the block is in the cache now
   * (memory or cache file); undefined if it is not (never fetched here, and not counted as a
   * read: a whole-file build copies blocks a reader already counted).
   */
  async readCached(hash: string, buf: Buffer, len: number): Promise<number | undefined> {
    const block = this.inMemory(hash)?.retain();
    if (block) {
      try {
        return block.data.copy(buf, 0, 0, Math.min(len, block.data.length));
      } finally {
        block.release();
      }
    }
    const entry = this.touch(hash);
    if (!entry?.fh) return undefined;
    entry.users++;
    try {
      return (await entry.fh.read(buf, 0, len, 0)).bytesRead;
    } finally {
      entry.users--;
    }
  }

  /** Hit ratio over every read so far (0 before the first). */
  stats(): { hits: number; misses: number; hitRatio: number; bytesFetched: number; localBlocks: number; sizeBytes: number; maxBytes: number; buffersAllocated: number } {
    const reads = this.counts.hits + this.counts.misses;
    return { ...this.counts, hitRatio: reads === 0 ? 0 : this.counts.hits / reads, sizeBytes: this.bytes, maxBytes: this.maxBytes, buffersAllocated: this.buffers.allocated };
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
    for (const block of this.recent.values()) block.release();
    this.recent.clear();
    await rm(this.dir, { recursive: true, force: true });
  }

  /** The block if its bytes are in memory (fetched lately or being written to the cache file); no reference taken. */
  private inMemory(hash: string): BlockBuffer | undefined {
    const block = this.recent.get(hash) ?? this.writing.get(hash)?.block;
    if (!block) return undefined;
    // Map order is the LRU order: re-insert on use (in memory and on disk).
    if (this.recent.delete(hash)) this.recent.set(hash, block);
    this.touch(hash);
    return block;
  }

  private touch(hash: string): Entry | undefined {
    const entry = this.entries.get(hash);
    if (entry) {
      this.entries.delete(hash);
      this.entries.set(hash, entry);
    }
    return entry;
  }

  /** The block's bytes in memory (a reference the caller releases), or its cache entry (counted as a user). */
  private async acquire(hash: string): Promise<Entry | BlockBuffer> {
    const block = this.inMemory(hash);
    if (block) {
      this.counts.hits++;
      return block.retain();
    }
    const entry = this.touch(hash);
    if (entry?.fh) {
      this.counts.hits++;
      entry.users++;
      return entry;
    }
    this.counts.misses++;
    const p = this.load(hash);
    p.waiters++;
    return p.done;
  }

  /** The fetch of a block (single flight); a caller that will use the bytes counts itself in `waiters`. */
  private load(hash: string): Pending {
    let p = this.pending.get(hash);
    if (!p) {
      p = { done: this.fill(hash), waiters: 0 };
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
    const block = BlockBuffer.of(data);
    const done = this.store(hash, block);
    block.release();
    await done;
  }

  /**
   * Fetches a block into a pooled buffer: its bytes stay in memory, and go to the cache file off
   * the read path. Resolves with one reference for each of its `waiters`, counted up to the moment
   * the fetch ends (the entry leaves `pending` in the same synchronous step, so no later reader
   * can count itself in and find no reference).
   */
  private async fill(hash: string): Promise<BlockBuffer> {
    const block = this.buffers.take();
    let got: Buffer | LocalFetch;
    try {
      got = await this.fetch(hash, block.memory);
      block.data = this.fetched(got);
    } catch (err) {
      this.pending.delete(hash);
      block.release();
      throw err;
    }
    const waiters = this.pending.get(hash)?.waiters ?? 0;
    this.pending.delete(hash);
    this.recent.get(hash)?.release();
    this.recent.set(hash, block.retain());
    for (const [h, old] of this.recent) {
      if (this.recent.size <= this.recentBlocks) break;
      this.recent.delete(h);
      old.release();
    }
    if ("fh" in got) this.keepLocal(hash, block.data.length, got.fh).catch(() => {});
    else if (this.writing.size < this.maxWrites) this.store(hash, block).catch(() => {});
    if (waiters > 0) block.retain(waiters);
    // The fetch's own reference: the holders above have theirs.
    block.release();
    return block;
  }

  /** Counts a fetch's answer; its bytes. */
  private fetched(got: Buffer | LocalFetch): Buffer {
    const data = "fh" in got ? got.data : got;
    this.counts.bytesFetched += data.length;
    if ("fh" in got) this.counts.localBlocks++;
    return data;
  }

  /**
   * Keeps the server's open blob file of a block as its cache entry (local block reads): no cache
   * file is written. At most MAX_LOCAL_FILES are kept; the least recently used not in use close.
   */
  private async keepLocal(hash: string, size: number, fh: FileHandle): Promise<void> {
    if (this.entries.has(hash)) {
      await fh.close();
      return;
    }
    this.entries.set(hash, { size, fh, users: 0, local: true });
    this.localFiles++;
    for (const [h, e] of this.entries) {
      if (this.localFiles <= MAX_LOCAL_FILES) return;
      if (!e.local || e.users > 0 || h === hash) continue;
      this.entries.delete(h);
      this.localFiles--;
      await e.fh?.close().catch(() => {});
    }
  }

  /** Writes a block to the cache file, readable from memory meanwhile (holding a reference); never fails (a block not kept is fetched again). */
  private store(hash: string, block: BlockBuffer): Promise<void> {
    block.retain();
    const done = this.keep(hash, block)
      .catch(() => {})
      .finally(() => {
        this.writing.delete(hash);
        block.release();
      });
    this.writing.set(hash, { block, done });
    return done;
  }

  private async keep(hash: string, block: BlockBuffer): Promise<void> {
    const data = block.data;
    const file = join(this.dir, hash);
    const tmp = `${file}.${this.tmpSeq++}.tmp`;
    // Opened for reading too: the handle that wrote the file serves its reads (the rename leaves it valid).
    const fh = await open(tmp, "w+");
    try {
      if (!(await this.writeDirect(tmp, block))) {
        // writevAll goes on after a short write (a short copy would be served as the block), and
        // takes the block in one write(2) where the kernel allows: writeFile makes 16 of 512 KiB,
        // each a thread-pool hand-off.
        await writevAll(fh, [data], 0);
      }
      await rename(tmp, file);
    } catch (err) {
      await fh.close().catch(() => {});
      // A partial copy would hold space on a disk that has none.
      await rm(tmp, { force: true });
      await rm(file, { force: true });
      throw err;
    }
    this.entries.set(hash, { size: data.length, fh, users: 0 });
    this.bytes += data.length;
    await this.evict(hash);
  }

  /**
   * Writes the block to `tmp` with O_DIRECT if its memory allows (page-aligned, a whole number of
   * pages): the disk reads the pooled buffer itself, so the daemon copies nothing into the page
   * cache (a buffered write of a cold read's blocks cost the daemon ~0.7 CPU-s per GiB and a
   * quarter of its throughput). False if the block must be written the ordinary way. The write
   * holds the block's reference until it returns (store), as a buffered one does.
   */
  private async writeDirect(tmp: string, block: BlockBuffer): Promise<boolean> {
    const data = block.data;
    if (!this.direct || !block.pageAligned || data.length === 0 || data.length % DIRECT_ALIGN !== 0) return false;
    let dio: FileHandle;
    try {
      dio = await open(tmp, constants.O_WRONLY | constants.O_DIRECT);
    } catch (err) {
      if (!refusesDirect(err)) throw err;
      this.direct = false;
      return false;
    }
    try {
      await writevAll(dio, [data], 0);
    } catch (err) {
      // A file system that wants more alignment than a page: the caller rewrites the whole block buffered.
      if (!refusesDirect(err)) throw err;
      this.direct = false;
      return false;
    } finally {
      await dio.close();
    }
    this.directWrites++;
    return true;
  }

  private async evict(keep: string): Promise<void> {
    const over = () => this.bytes + (this.tenant?.bytes ?? 0) - this.maxBytes;
    if (this.tenant && over() > 0) await this.tenant.shed(over());
    for (const [hash, e] of this.entries) {
      if (over() <= 0) return;
      // The server's files take no cache disk (keepLocal bounds them).
      if (hash === keep || e.users > 0 || e.local) continue;
      this.entries.delete(hash);
      this.bytes -= e.size;
      await e.fh?.close().catch(() => {});
      await rm(join(this.dir, hash), { force: true });
    }
  }
}

/** EINVAL: the file system does not take O_DIRECT (or not with this alignment). */
const refusesDirect = (err: unknown) => (err as NodeJS.ErrnoException).code === "EINVAL";

/** Page-aligned block buffers from the native addon (O_DIRECT cache-file writes), or null where it is not built. */
function alignedAllocator(): ((size: number) => Buffer) | null {
  const addon = fuseFdAddonIfBuilt();
  return addon?.alignedBuffer ? (size) => addon.alignedBuffer!(size) : null;
}
