import { createHash, randomBytes } from "node:crypto";
import { constants as fsConstants, unlinkSync } from "node:fs";
import { unlink } from "node:fs/promises";
import { basename, join } from "node:path";
import { fsyncPath } from "../../lib/fsync-path.js";
import { BLOCK_SIZE, type BlockRef, compactBlocks, expandBlocks } from "../../protocol/volume.js";
import type { ComposeBlockRequest } from "../../protocol/volume-routes.js";
import { AsyncLock } from "./async-lock.js";
import type { BlockCache } from "./block-cache.js";
import { Extents } from "./extents.js";
import { checkTruncateSize, writableBytes } from "./limits.js";
import { SYNC_IO_MAX, UpperFile } from "./upper-file.js";
import type { FileSlice } from "../kernel/filesystem.js";

export const blockCount = (size: number) => Math.ceil(size / BLOCK_SIZE);

/** In `FileContent.hashes`: a committed block of zeros (a hole), which names no stored block. */
export const HOLE = "hole";
const ZEROS = Buffer.alloc(BLOCK_SIZE);

/** Whether a block's bytes are all zeros (it commits as a hole: nothing to upload or store). */
export const isZeros = (data: Buffer): boolean => data.equals(ZEROS.subarray(0, data.length));

/** A committed block list as per-block hashes (HOLE for zeros). */
export function hashesOf(blocks: readonly BlockRef[]): string[] {
  return [...expandBlocks(blocks)].map((h) => h ?? HOLE);
}

/** Per-block hashes (all committed) as the block list a commit sends. */
export function blockListOf(hashes: ReadonlyArray<string | null>): BlockRef[] {
  return compactBlocks(hashes.map((h) => (h === HOLE ? null : h)));
}

const zeroHashes = new Map<number, string>();
const zeroHashSet = new Set<string>();

/** SHA-256 of `len` zero bytes: what a hole of a sparse file commits as (computed once per length). */
export function zeroHash(len: number): string {
  let h = zeroHashes.get(len);
  if (!h) {
    h = sha256(Buffer.alloc(len));
    zeroHashes.set(len, h);
    zeroHashSet.add(h);
  }
  return h;
}

const isZeroHash = (h: string) => zeroHashSet.has(h);

/** Whether a block hash names stored bytes (not a hole, not a known block of zeros). */
export const storedHash = (h: string | null | undefined): h is string => !!h && h !== HOLE && !isZeroHash(h);

/**
 * Ranges a block may hold before its base is copied in after all: each range is a pair of
 * numbers in every journal record of the file and a piece of every read, so a block written
 * all over in small pieces becomes an ordinary local block once (one fetch per 256 writes).
 */
export const MAX_EXTENTS = 256;

/** Blocks a sequential reader has fetched ahead of the one it reads (the cache bounds them over all readers). */
const READ_AHEAD_BLOCKS = 3;

/**
 * A commit has the server compose a partial block whose base is not cached here when at most
 * this many of its bytes are written: sending them beats fetching the 8 MiB base and uploading
 * the whole block back. Past it, the written bytes alone cost a good part of that anyway.
 */
export const REMOTE_COMPOSE_MAX_BYTES = BLOCK_SIZE / 4;

/** Upper files removed per event-loop turn by `reap`. */
const REAP_BATCH = 64;

/**
 * Small files whose bytes the content store keeps in memory (and the journal in its records)
 * instead of an upper file each: `maxFile`, the largest such file; `budget`, the bytes all of
 * them may hold together (each counts INLINE_OVERHEAD more). Past either, files use upper files.
 */
export interface InlineLimits {
  maxFile: number;
  budget: number;
}

export const DEFAULT_INLINE: InlineLimits = { maxFile: 16 * 1024, budget: 32 * 1024 * 1024 };

/** What an inline file costs besides its bytes (the Buffer and its bookkeeping), for the budget. */
const INLINE_OVERHEAD = 256;

/**
 * A changed block whose bytes are its committed base with ranges written over it: the written
 * ranges are in the upper file, the rest is still the base's (fetched only when read or
 * committed). Outside the ranges the upper file holds zeros there, as it does for any block
 * that is not local.
 */
export interface PartialBlock {
  /** Hash of the committed block under the written ranges. */
  base: string;
  /** Bytes of the base that still count; past them (a truncate cut them off) the block reads zeros where not written. */
  baseLen: number;
  /** Ranges written into the upper file, as offsets within the block. */
  written: Extents;
}

/** A partial block as a commit snapshot saw it (the live one goes on changing). */
interface SnapshotPartial {
  live: PartialBlock;
  base: string;
  baseLen: number;
  written: Extents;
}

/**
 * What a commit sees of one file: its size and blocks at the instant the commit began. Blocks
 * a writer changes afterwards are copied aside first (copy-on-write), so the commit reads the
 * file as it was while the writer goes on.
 */
export interface FileSnapshot {
  size: number;
  hashes: Array<string | null>;
  /** Blocks still to read from the upper file (local and unhashed at the snapshot). */
  pending: Set<number>;
  /** Of those, blocks a writer changed since: their snapshot bytes are in `sidePath`. */
  saved: Set<number>;
  /** Blocks changed since the snapshot: the snapshot's hash does not describe them any more. */
  changed: Set<number>;
  /** Pending blocks that were partial at the snapshot: their base plus their written ranges then. */
  partial: Map<number, SnapshotPartial>;
  sidePath: string | null;
  /** The file's inline bytes at the snapshot, if block 0 is pending and was inline (never mutated: writes replace them). */
  inline: Buffer | null;
}

/**
 * The bytes of one file (shared by its hard links). Block i is local (its bytes in this file's
 * sparse upper file, where writes land), partial (ranges written into the upper file over a
 * committed base block: `partial.get(i)`), committed (its hash in `hashes[i]`, bytes fetched
 * through the cache), or a hole (neither local nor partial, hash `null`: zeros, never stored).
 * A local or partial block whose hash is `null` changed since the last commit and is hashed by
 * the next one; a hole commits as the zero block of its length without being read. Wherever a
 * block is neither local nor written, the upper file reads zeros.
 *
 * A small file may instead keep its bytes `inline`, in memory: its only block (0) is then
 * neither local nor partial and it has no upper file; the journal records the bytes themselves,
 * so close(2) and fsync(2) promise what they promise for an upper file (docs/mounts.md). A write
 * past the inline limits moves the bytes into an upper file first (ContentStore.spill).
 */
export class FileContent {
  hashes: Array<string | null>;
  readonly local = new Set<number>();
  readonly partial = new Map<number, PartialBlock>();
  /**
   * A small file's bytes (exactly `size` of them, size > 0), or null. Never mutated: a write
   * replaces the buffer, so a commit snapshot can hold the old one. Set through ContentStore only.
   */
  inline: Buffer | null = null;
  upperPath: string | null = null;
  /** Kept open while FUSE handles are open; otherwise opened per operation. */
  fh: UpperFile | null = null;
  openHandles = 0;
  /** Bumped by every change, so a commit can tell whether the file moved under it. */
  generation = 0;
  lastReadEnd = -1;
  readonly lock = new AsyncLock();
  /** The running commit's view of this file, if it is part of one. */
  snap: FileSnapshot | null = null;
  /** The last link and handle went while a commit still reads the snapshot: discard after it. */
  discardAfterSnapshot = false;
  /** Whether the upper file's directory entry is known durable (fsync'd directory). */
  upperDurable = false;
  /**
   * Open writers whose mmap the kernel serves from the upper file (fuse/volume/passthrough.ts):
   * its bytes may change without a write here, so no commit takes a hash for a block meanwhile.
   */
  untrackedWriters = 0;

  constructor(
    public size: number,
    hashes: Array<string | null>,
  ) {
    this.hashes = [...hashes];
  }

  /** Whether every block is committed (no local change to hash). */
  get clean(): boolean {
    return !this.hashes.includes(null) && this.hashes.length === blockCount(this.size);
  }

  /** Whether the bytes refer to any stored committed block (an unchanged block, or a partial block's base). */
  get refersToCommitted(): boolean {
    return this.partial.size > 0 || this.hashes.some(storedHash);
  }
}

/**
 * Where bytes [pos, pos + len) of a file lie (cut at its end) if they lie in one committed,
 * unchanged block: its hash, the offset in it and the end in the file; else undefined.
 */
function committedSlice(c: FileContent, len: number, pos: number): { hash: string; offset: number; end: number } | undefined {
  const end = Math.min(pos + len, c.size);
  if (pos >= end || c.inline) return undefined;
  const i = Math.floor(pos / BLOCK_SIZE);
  const hash = c.hashes[i];
  if (end > (i + 1) * BLOCK_SIZE || c.local.has(i) || c.partial.has(i) || !storedHash(hash)) return undefined;
  return { hash, offset: pos - i * BLOCK_SIZE, end };
}

/** Reads, writes and truncates FileContents against the block cache and the upper dir. */
export class ContentStore {
  private seq = 0;
  /** Unique per daemon run: upper files of an earlier run may sit in the same directory. */
  private readonly prefix = `f${Date.now().toString(36)}-${randomBytes(4).toString("hex")}-`;

  /** Bytes (plus INLINE_OVERHEAD each) of the inline files this store holds. */
  private inlineBytes = 0;

  constructor(
    readonly upperDir: string,
    private readonly cache: BlockCache,
    private readonly inlineLimits: InlineLimits = DEFAULT_INLINE,
  ) {}

  /** Memory the inline files hold (bytes plus bookkeeping), for status and tests. */
  get inlineHeld(): number {
    return this.inlineBytes;
  }

  /**
   * Bytes [pos, pos + len) (cut at the end of the file) without a copy, if they are in one
   * committed block whose bytes are in memory: a view to be read, never written. Else undefined
   * (`read` then copies them).
   */
  view(c: FileContent, len: number, pos: number): Buffer | undefined {
    const one = committedSlice(c, len, pos);
    if (!one) return undefined;
    const data = this.cache.peek(one.hash, one.offset, one.end - pos);
    if (data) this.sequential(c, pos, one.end);
    return data;
  }

  /**
   * Like `view`, for bytes [pos, pos + len) of one committed block not in memory yet: fetches it
   * (or waits for the fetch under way) and answers a view of its bytes, valid until the event
   * loop's next turn (enough for a reply written in the promise jobs that follow). Undefined when
   * the bytes are not one committed block's, or its bytes come from the cache file (`read` then
   * copies them).
   */
  async fetchedView(c: FileContent, len: number, pos: number): Promise<Buffer | undefined> {
    const one = committedSlice(c, len, pos);
    if (!one) return undefined;
    this.sequential(c, pos, one.end);
    return this.cache.viewSoon(one.hash, one.offset, one.end - pos);
  }

  /**
   * Bytes [pos, pos + len) (cut at the end of the file) as a slice of the open file holding them,
   * if they are in one committed block whose bytes are in a file on this host (its cache file, or
   * the server's blob file: local block reads). Undefined otherwise (`fetchedView` or `read` then).
   */
  async fileSlice(c: FileContent, len: number, pos: number): Promise<FileSlice | undefined> {
    const one = committedSlice(c, len, pos);
    if (!one) return undefined;
    this.sequential(c, pos, one.end);
    return this.cache.fileSlice(one.hash, one.offset, one.end - pos);
  }

  async read(c: FileContent, buf: Buffer, len: number, pos: number): Promise<number> {
    const end = Math.min(pos + len, c.size);
    if (pos >= end) return 0;
    if (c.inline) return c.inline.copy(buf, 0, pos, end);
    this.sequential(c, pos, end);
    let done = 0;
    while (pos + done < end) {
      const at = pos + done;
      const i = Math.floor(at / BLOCK_SIZE);
      const n = Math.min(end, (i + 1) * BLOCK_SIZE) - at;
      const hash = c.hashes[i] ?? null;
      const p = c.partial.get(i);
      let got = n;
      if (c.local.has(i)) await this.readUpper(c, buf, done, n, at);
      else if (p) await this.readPartial(c, p, i, buf, done, n, at);
      else if (!storedHash(hash)) buf.fill(0, done, done + n);
      else {
        got = await this.cache.read(hash, at - i * BLOCK_SIZE, buf, done, n);
        if (got === 0) break;
      }
      done += got;
    }
    return done;
  }

  /** Upper-file bytes; a sparse tail reads short: it is zeros. */
  private async readUpper(c: FileContent, buf: Buffer, off: number, n: number, at: number): Promise<void> {
    const got = await this.withUpper(c, async (fh) => (await fh.read(buf, off, n, at)).bytesRead);
    if (got < n) buf.fill(0, off + got, off + n);
  }

  /**
   * Bytes [at, at + n) of partial block i: its base where a range reads any of it (zeros past
   * baseLen), the written ranges over it from one read of the upper file. Two reads at most,
   * however many ranges the block has; the base is fetched only if unwritten bytes are asked for.
   */
  private async readPartial(c: FileContent, p: PartialBlock, i: number, buf: Buffer, off: number, n: number, at: number): Promise<void> {
    const start = i * BLOCK_SIZE;
    const rel = at - start;
    const { base, baseLen } = p;
    const pieces = p.written.pieces(rel, rel + n);
    const fromBase = Math.max(0, Math.min(n, baseLen - rel));
    if (pieces.some(([s, , w]) => !w && s < baseLen)) await this.readBase(base, rel, buf, off, fromBase);
    else buf.fill(0, off, off + fromBase);
    buf.fill(0, off + fromBase, off + n);
    const written = new Extents(pieces.flatMap(([s, e, w]) => (w ? [s, e] : [])));
    if (!written.empty) await this.withUpper(c, (fh) => overlay(fh, written, buf, start, rel - off));
  }

  /** `len` bytes at `offset` of stored block `hash`: a block shorter than its recorded length is an error, never zeros. */
  private async readBase(hash: string, offset: number, buf: Buffer, bufOffset: number, len: number): Promise<void> {
    if (len <= 0) return;
    const got = await this.cache.read(hash, offset, buf, bufOffset, len);
    if (got < len) throw new Error(`block ${hash} holds ${offset + got} bytes, ${offset + len} expected`);
  }

  /** A read of [pos, end): if it follows the last one, read ahead. */
  private sequential(c: FileContent, pos: number, end: number): void {
    if (pos === c.lastReadEnd) this.readAhead(c, Math.floor(end / BLOCK_SIZE));
    c.lastReadEnd = end;
  }

  /** Sequential reader: fetch the next READ_AHEAD_BLOCKS committed blocks (or bases) before they are asked for. */
  private readAhead(c: FileContent, i: number): void {
    const next: string[] = [];
    for (let j = i + 1; j <= i + READ_AHEAD_BLOCKS && j < c.hashes.length; j++) {
      if (c.local.has(j)) continue;
      const h = c.partial.get(j)?.base ?? c.hashes[j];
      if (storedHash(h)) next.push(h);
    }
    if (next.length) this.cache.prefetch(next);
  }

  /**
   * Writes at `pos`: EFBIG at the file-size limit (a short write just below it, as Linux does).
   * The bytes land in the upper file at once; a committed block they change in part keeps its
   * committed bytes as the base under them (nothing is fetched or copied). A full local disk
   * makes a short write of what landed (so the upper file never holds bytes the file does not
   * count), or ENOSPC if nothing did.
   */
  write(c: FileContent, buf: Buffer, len: number, pos: number): number | Promise<number> {
    // Errors reject, as from an async function: callers await or `.then` the result.
    try {
      return this.writeNow(c, buf, len, pos);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private writeNow(c: FileContent, buf: Buffer, len: number, pos: number): number | Promise<number> {
    len = writableBytes(pos, len);
    if (len === 0) return 0;
    // Inline: a synchronous copy in memory (under the lock's order if anything waits for it).
    if (c.lock.idle && this.inlineFits(c, pos + len)) {
      this.writeInline(c, buf, len, pos);
      return len;
    }
    // Into an open upper file, nothing queued and no commit snapshot to preserve blocks for: the
    // same steps as below, all synchronous (a small pwrite to the local disk), so nothing can run
    // between them, as under the lock; no promise jobs per 4 KiB random write.
    if (c.lock.idle && c.fh && !c.inline && !c.snap && len <= SYNC_IO_MAX && !this.inlineFits(c, pos + len)) {
      len = c.fh.writeSomeSync(buf, 0, len, pos);
      const crowded = this.landed(c, pos, len);
      if (crowded.length === 0) return len;
      return c.lock.run(async () => {
        await this.fillAll(c, crowded);
        return len;
      });
    }
    return c.lock.run(async () => {
      if (this.inlineFits(c, pos + len)) {
        this.writeInline(c, buf, len, pos);
        return len;
      }
      // Before the write: the old bytes go to the upper file first, the new ones over them.
      if (c.inline) await this.spill(c);
      await this.ensureUpper(c);
      await this.preserve(c, Math.floor(pos / BLOCK_SIZE), Math.floor((pos + len - 1) / BLOCK_SIZE));
      // Synchronously up to 64 KiB (UpperFile).
      len = await this.withUpper(c, (fh) => fh.writeSome(buf, 0, len, pos));
      await this.fillAll(c, this.landed(c, pos, len));
      return len;
    });
  }

  /**
   * The bookkeeping after `len` bytes at `pos` landed in the upper file, in one synchronous step
   * (a snapshot never sees a half-applied write). Returns the partial blocks written in too many
   * pieces, whose base is to be copied in (fillAll).
   */
  private landed(c: FileContent, pos: number, len: number): Array<[number, PartialBlock]> {
    const end = pos + len;
    const first = Math.floor(pos / BLOCK_SIZE);
    const last = Math.floor((end - 1) / BLOCK_SIZE);
    // Growing changes the old partial last block (its length): its committed bytes stay its base.
    if (end > c.size && c.size % BLOCK_SIZE !== 0) this.keepBase(c, blockCount(c.size) - 1);
    for (let i = first; i <= last; i++) {
      const start = i * BLOCK_SIZE;
      this.written(c, i, Math.max(pos, start) - start, Math.min(end, start + BLOCK_SIZE) - start);
    }
    if (end > c.size) this.grow(c, end);
    for (let i = first; i <= last; i++) {
      c.hashes[i] = null;
      c.snap?.changed.add(i);
    }
    c.generation++;
    const crowded: Array<[number, PartialBlock]> = [];
    for (let i = first; i <= last; i++) {
      const p = c.partial.get(i);
      if (p && p.written.count > MAX_EXTENTS) crowded.push([i, p]);
    }
    return crowded;
  }

  /**
   * Copies the base into blocks written in too many pieces, holding the lock. The write has
   * landed: if that fails (a full disk, the server away), the block stays partial and the next
   * write tries again (a half-done copy wrote base bytes only where the block reads them anyway).
   * Failing the write would have it repeated.
   */
  private async fillAll(c: FileContent, crowded: Array<[number, PartialBlock]>): Promise<void> {
    for (const [i, p] of crowded) if (c.partial.get(i) === p) await this.fillGaps(c, i, p).catch(() => {});
  }

  /** truncate(2): EINVAL/EFBIG for sizes no file may have; growing only records holes. */
  async truncate(c: FileContent, size: number): Promise<void> {
    checkTruncateSize(size);
    return c.lock.run(async () => {
      if (size === c.size) return;
      if (c.inline) {
        if (size === 0 || this.inlineFits(c, size)) {
          this.resizeInline(c, size);
          return;
        }
        await this.spill(c);
      }
      if (size > c.size) {
        if (c.size % BLOCK_SIZE !== 0) this.keepBase(c, blockCount(c.size) - 1);
        this.grow(c, size);
      } else {
        const k = Math.floor(size / BLOCK_SIZE);
        const cut = size % BLOCK_SIZE;
        await this.preserve(c, k, blockCount(c.size) - 1);
        // The cut block keeps its committed bytes below the cut as its base.
        if (cut) this.keepBase(c, k);
        const count = blockCount(size);
        for (let i = k; i < c.hashes.length; i++) c.snap?.changed.add(i);
        c.hashes.length = count;
        for (const i of c.local) if (i >= count) c.local.delete(i);
        for (const i of c.partial.keys()) if (i >= count) c.partial.delete(i);
        if (cut) {
          const p = c.partial.get(k);
          if (p) {
            p.baseLen = Math.min(p.baseLen, cut);
            p.written.clip(cut);
            if (p.written.covers(0, p.baseLen)) this.makeLocal(c, k);
          }
          c.hashes[k] = null;
        }
        c.size = size;
        // The dropped tail must read as zeros if the file grows again.
        if (c.upperPath) await this.withUpper(c, (fh) => fh.truncate(size));
      }
      c.generation++;
    });
  }

  /**
   * Makes bytes [start, end) of the file zeros (fallocate PUNCH_HOLE, ZERO_RANGE), never past its
   * size. Whole blocks become holes (nothing to read or upload at commit): their written bytes
   * are zeroed in the upper file too, which must read as zeros wherever a block is not local or
   * written. Part of a block is written zeros like any write (a committed base stays under them).
   */
  async zeroRange(c: FileContent, start: number, end: number): Promise<void> {
    return c.lock.run(async () => {
      end = Math.min(end, c.size);
      if (start >= end) return;
      if (c.inline) await this.spill(c);
      const first = Math.floor(start / BLOCK_SIZE);
      const last = Math.floor((end - 1) / BLOCK_SIZE);
      await this.ensureUpper(c);
      await this.preserve(c, first, last);
      for (let i = first; i <= last; i++) {
        const blockStart = i * BLOCK_SIZE;
        const blockEnd = Math.min(blockStart + BLOCK_SIZE, c.size);
        const from = Math.max(start, blockStart);
        const to = Math.min(end, blockEnd);
        const local = c.local.has(i);
        const p = c.partial.get(i);
        // Already all zeros: a hole, or a committed block of zeros.
        if (!local && !p && !storedHash(c.hashes[i])) continue;
        if (from === blockStart && to === blockEnd) {
          // A committed block's bytes were never in the upper file: nothing to zero there.
          const [s, e] = local ? [0, to - from] : (p?.written.span ?? [0, 0]);
          if (e > s) await this.withUpper(c, (fh) => fh.write(ZEROS, 0, e - s, blockStart + s));
          c.local.delete(i);
          c.partial.delete(i);
        } else {
          await this.withUpper(c, (fh) => fh.write(ZEROS, 0, to - from, from));
          this.written(c, i, from - blockStart, to - blockStart);
        }
        c.hashes[i] = null;
        c.snap?.changed.add(i);
      }
      c.generation++;
    });
  }

  /** Extends the file with a hole: the old partial last block changes (local or partial by now, or a hole). */
  private grow(c: FileContent, size: number): void {
    const oldCount = blockCount(c.size);
    if (c.size % BLOCK_SIZE !== 0) {
      c.hashes[oldCount - 1] = null;
      c.snap?.changed.add(oldCount - 1);
    }
    const count = blockCount(size);
    for (let i = oldCount; i < count; i++) c.hashes.push(null);
    c.size = size;
  }

  /** A committed block that is about to change keeps its committed bytes as the base of a partial block. */
  private keepBase(c: FileContent, i: number): void {
    if (c.local.has(i) || c.partial.has(i)) return;
    const hash = c.hashes[i];
    if (storedHash(hash)) c.partial.set(i, { base: hash, baseLen: Math.min(BLOCK_SIZE, c.size - i * BLOCK_SIZE), written: new Extents() });
  }

  /**
   * Block i had bytes [from, to) (offsets within it) written into the upper file: a committed
   * block becomes partial over its base; once the written ranges cover the base, or for a hole
   * (the upper file reads zeros around the new bytes), the block is local.
   */
  private written(c: FileContent, i: number, from: number, to: number): void {
    if (c.local.has(i)) return;
    this.keepBase(c, i);
    const p = c.partial.get(i);
    if (!p) {
      c.local.add(i);
      return;
    }
    p.written.add(from, to);
    if (p.written.covers(0, p.baseLen)) this.makeLocal(c, i);
  }

  private makeLocal(c: FileContent, i: number): void {
    c.partial.delete(i);
    c.local.add(i);
  }

  /**
   * Copies partial block i's base into its unwritten bytes, once: it becomes an ordinary local
   * block (a block written all over in small pieces; see MAX_EXTENTS). Called holding the lock.
   */
  private async fillGaps(c: FileContent, i: number, p: PartialBlock): Promise<void> {
    const start = i * BLOCK_SIZE;
    const len = Math.min(BLOCK_SIZE, c.size - start);
    const buf = Buffer.alloc(len);
    await this.readBase(p.base, 0, buf, 0, Math.min(p.baseLen, len));
    if (c.partial.get(i) !== p) return;
    // A commit acknowledged meanwhile may have moved p onto a new base: it equals the old one wherever nothing is written.
    await this.withUpper(c, async (fh) => {
      await overlay(fh, p.written, buf, start, 0);
      await fh.write(buf, 0, len, start);
    });
    if (c.partial.get(i) === p) this.makeLocal(c, i);
  }

  // ---- inline files ----

  /** Whether the file's bytes, `end` long after a write, may be (or stay) inline. */
  private inlineFits(c: FileContent, end: number): boolean {
    const { maxFile, budget } = this.inlineLimits;
    if (end > maxFile) return false;
    if (c.inline) return this.inlineBytes + Math.max(0, end - c.size) <= budget;
    // Only a file with no bytes anywhere yet: new, or truncated to nothing before it had an upper file.
    return c.size === 0 && c.upperPath === null && c.hashes.length === 0 && this.inlineBytes + end + INLINE_OVERHEAD <= budget;
  }

  /** Replaces the inline bytes (null: none), keeping the budget's count. */
  setInline(c: FileContent, data: Buffer | null): void {
    if (c.inline) this.inlineBytes -= c.inline.length + INLINE_OVERHEAD;
    c.inline = data && data.length > 0 ? data : null;
    if (c.inline) this.inlineBytes += c.inline.length + INLINE_OVERHEAD;
  }

  /** A write into an inline file (or a file becoming one): new bytes, block 0 changed. */
  private writeInline(c: FileContent, buf: Buffer, len: number, pos: number): void {
    const size = Math.max(c.size, pos + len);
    // Zero-filled: a write past the end leaves zeros in between.
    const next = Buffer.alloc(size);
    c.inline?.copy(next, 0, 0, c.size);
    buf.copy(next, pos, 0, len);
    this.setInline(c, next);
    c.size = size;
    this.changedInline(c);
  }

  private resizeInline(c: FileContent, size: number): void {
    if (size === 0) {
      this.setInline(c, null);
      c.hashes.length = 0;
      c.snap?.changed.add(0);
      c.size = 0;
      c.generation++;
      return;
    }
    const next = Buffer.alloc(size);
    c.inline!.copy(next, 0, 0, Math.min(size, c.size));
    this.setInline(c, next);
    c.size = size;
    this.changedInline(c);
  }

  private changedInline(c: FileContent): void {
    c.hashes[0] = null;
    c.hashes.length = 1;
    c.snap?.changed.add(0);
    c.generation++;
  }

  /** Moves an inline file's bytes into an upper file (block 0 local): a change is about to outgrow the inline limits. Holding the lock. */
  private async spill(c: FileContent): Promise<void> {
    const data = c.inline!;
    await this.ensureUpper(c);
    await this.withUpper(c, (fh) => fh.write(data, 0, data.length, 0));
    this.setInline(c, null);
    // Same bytes: a hash known for them (committed) stays valid.
    c.local.add(0);
  }

  // ---- commit snapshots ----

  /** Starts a commit's view of the file as it is now (synchronous: one instant for all files). */
  snapshot(c: FileContent): FileSnapshot {
    const pending = new Set<number>();
    const partial = new Map<number, SnapshotPartial>();
    for (const i of c.local) if (c.hashes[i] === null && i < c.hashes.length) pending.add(i);
    const inline = c.inline && c.hashes[0] === null ? c.inline : null;
    if (inline) pending.add(0);
    for (const [i, p] of c.partial) {
      if (c.hashes[i] !== null || i >= c.hashes.length) continue;
      pending.add(i);
      partial.set(i, { live: p, base: p.base, baseLen: p.baseLen, written: p.written.copy() });
    }
    c.snap = { size: c.size, hashes: [...c.hashes], pending, saved: new Set(), changed: new Set(), partial, sidePath: null, inline };
    return c.snap;
  }

  /**
   * The bytes of snapshot block i (local or partial at the snapshot): from the upper file or its
   * saved copy, over the block's base for a partial block (the one fetch a partial write costs).
   */
  async snapshotBlock(c: FileContent, snap: FileSnapshot, i: number): Promise<Buffer> {
    if (i === 0 && snap.inline) {
      snap.pending.delete(0);
      return snap.inline;
    }
    const len = Math.min(BLOCK_SIZE, snap.size - i * BLOCK_SIZE);
    const p = snap.partial.get(i);
    let buf: Buffer;
    if (p) {
      // A base never changes (content-addressed): fetched before taking the lock, so writers
      // never wait for the server; and not kept in the cache, as reads after the commit need
      // the new block instead.
      const base = await this.cache.getOnce(p.base);
      if (base.length < p.baseLen) throw new Error(`block ${p.base} holds ${base.length} bytes, ${p.baseLen} expected`);
      if (base.length === len && p.baseLen === len) buf = base;
      else {
        buf = Buffer.alloc(len);
        base.copy(buf, 0, 0, p.baseLen);
      }
    } else buf = Buffer.alloc(len);
    return c.lock.run(async () => {
      if (!p?.written.empty) {
        await this.withSnapshotUpper(c, snap, i, async (fh) => {
          if (p) await overlay(fh, p.written, buf, i * BLOCK_SIZE, 0);
          else await fh.read(buf, 0, len, i * BLOCK_SIZE);
        });
      }
      snap.pending.delete(i);
      return buf;
    });
  }

  /**
   * Snapshot block i as what the server needs to compose it (its base and written ranges), when
   * that saves moving the base twice: the block was partial, its base is not cached here, and
   * at most REMOTE_COMPOSE_MAX_BYTES of it are written. Otherwise undefined (`snapshotBlock`
   * composes it here). The block stays pending until `composedRemotely`, so writers still save
   * its ranges aside first and a failed request can fall back to `snapshotBlock`.
   */
  async snapshotPatch(c: FileContent, snap: FileSnapshot, i: number): Promise<ComposeBlockRequest | undefined> {
    const p = snap.partial.get(i);
    if (!p || p.written.empty || this.cache.has(p.base) || p.written.bytes > REMOTE_COMPOSE_MAX_BYTES) return undefined;
    const length = Math.min(BLOCK_SIZE, snap.size - i * BLOCK_SIZE);
    // Range by range (small reads are synchronous): a read across the holes between them would
    // fill the page cache with zeros, a block's worth each.
    const data = Buffer.alloc(p.written.bytes);
    const ranges: ComposeBlockRequest["ranges"] = [];
    await c.lock.run(() =>
      this.withSnapshotUpper(c, snap, i, async (fh) => {
        let at = 0;
        for (const [a, b] of p.written.ranges()) {
          // A short read is the upper file's sparse tail: zeros, as `data` already holds.
          await fh.read(data, at, b - a, i * BLOCK_SIZE + a);
          ranges.push({ offset: a, data: data.subarray(at, at + b - a) });
          at += b - a;
        }
      }),
    );
    return { base: p.base, baseLength: Math.min(p.baseLen, length), length, ranges };
  }

  /**
   * The server stored snapshot block i, composed from `snapshotPatch`'s request: nothing left to
   * read. Under the lock, as in `snapshotBlock`: a writer saving the block aside finishes first.
   */
  async composedRemotely(c: FileContent, snap: FileSnapshot, i: number): Promise<void> {
    await c.lock.run(async () => void snap.pending.delete(i));
  }

  /** Runs `fn` on the file holding snapshot block i's written bytes (its saved copy, if a writer changed it since), holding the lock. */
  private async withSnapshotUpper<T>(c: FileContent, snap: FileSnapshot, i: number, fn: (fh: UpperFile) => Promise<T>): Promise<T> {
    const saved = snap.saved.has(i);
    const fh = saved || !c.fh ? UpperFile.open(saved ? snap.sidePath! : c.upperPath!, "r") : c.fh;
    try {
      return await fn(fh);
    } finally {
      if (fh !== c.fh) await fh.close();
    }
  }

  /**
   * The commit hashed snapshot block i as `hash`. If the block was partial and its base is in
   * the cache (its unwritten bytes were being read), the new block goes into the cache as well:
   * once the commit is acknowledged the block reads over the new one (`acknowledge`), and
   * fetching what is in memory now would be waste.
   */
  async composed(snap: FileSnapshot, i: number, hash: string, data: Buffer): Promise<void> {
    const p = snap.partial.get(i);
    if (p && storedHash(hash) && this.cache.has(p.base)) await this.cache.put(hash, data);
  }

  /**
   * A commit of `snap` was acknowledged with the block hashes `hashes`: blocks unchanged since
   * the snapshot now hold them. A block that was partial moves onto its new committed bytes as
   * its base (the old base is in no version the mount pins any more, so GC may drop it); its
   * written ranges read the same over either, as the new base is the old one with them written.
   * Synchronous, like the snapshot.
   */
  acknowledge(c: FileContent, snap: FileSnapshot, hashes: readonly string[]): void {
    for (let i = 0; i < hashes.length && i < c.hashes.length; i++) {
      if (c.hashes[i] === null && !snap.changed.has(i) && c.untrackedWriters === 0) c.hashes[i] = hashes[i]!;
    }
    for (const [i, s] of snap.partial) {
      const p = c.partial.get(i);
      // Writes since only added ranges and truncates only cut them (with the base): still valid.
      if (p !== s.live || p.base !== s.base) continue;
      const h = hashes[i];
      if (storedHash(h)) p.base = h;
      // All zeros: its written ranges hold zeros and the upper file reads zeros around them.
      else this.makeLocal(c, i);
    }
  }

  /** Ends the commit's view: drops the saved copies (and the file, if it was deleted meanwhile). */
  async endSnapshot(c: FileContent): Promise<void> {
    const side = c.snap?.sidePath;
    c.snap = null;
    if (side) await unlink(side).catch(() => {});
    if (c.discardAfterSnapshot) await this.discard(c);
  }

  /**
   * Copy-on-write: before blocks first..last change, saves those a running commit still has to
   * read (of a partial block, the span of its written ranges: its base never changes). Repeats
   * until nothing is left to save, so the caller's next synchronous step is safe.
   */
  private async preserve(c: FileContent, first: number, last: number): Promise<void> {
    for (;;) {
      const snap = c.snap;
      if (!snap) return;
      // Inline snapshot bytes are a buffer of their own, never changed: nothing to save.
      const todo = [...snap.pending].filter((i) => i >= first && i <= last && !snap.saved.has(i) && !(i === 0 && snap.inline));
      if (todo.length === 0) return;
      const spans = todo.map((i): [number, number, number] => {
        const p = snap.partial.get(i);
        const [s, e] = p ? p.written.span : [0, Math.min(BLOCK_SIZE, snap.size - i * BLOCK_SIZE)];
        return [i, i * BLOCK_SIZE + s, e - s];
      });
      if (spans.some(([, , n]) => n > 0)) {
        snap.sidePath ??= `${c.upperPath}.snap`;
        // Not "a": with O_APPEND every positioned write would land at the end.
        const side = UpperFile.open(snap.sidePath, fsConstants.O_RDWR | fsConstants.O_CREAT, 0o600);
        try {
          for (const [, at, n] of spans) {
            if (n === 0) continue;
            const buf = Buffer.alloc(n);
            await this.withUpper(c, (fh) => fh.read(buf, 0, n, at));
            await side.write(buf, 0, n, at);
          }
        } finally {
          await side.close();
        }
      }
      for (const i of todo) snap.saved.add(i);
    }
  }

  // ---- durability ----

  /** fsync(2) of a file: its upper bytes (and the upper file's name) reach the disk. */
  async sync(c: FileContent): Promise<void> {
    if (!c.upperPath) return;
    await c.lock.run(() => this.withUpper(c, (fh) => fh.datasync()));
    if (!c.upperDurable) {
      await fsyncPath(this.upperDir);
      c.upperDurable = true;
    }
  }

  /** Takes over an upper file from an earlier run (journal recovery). */
  adoptUpper(c: FileContent, path: string): void {
    c.upperPath = path;
    c.upperDurable = true;
  }

  /** Called when the last FUSE handle closes. */
  async closeUpper(c: FileContent): Promise<void> {
    const fh = c.fh;
    c.fh = null;
    await fh?.close();
  }

  /** closeUpper, synchronously unless the upper file has calls in libuv's pool (close waits for them). */
  closeUpperNow(c: FileContent): void | Promise<void> {
    if (c.fh && !c.fh.closeSync()) return this.closeUpper(c);
    c.fh = null;
  }

  /**
   * Called when the last link and handle are gone. With a journal the upper file is only
   * removed by `reap` once the journal no longer names it (an older record may).
   */
  async discard(c: FileContent): Promise<void> {
    await this.discardNow(c);
  }

  /** discard, synchronously unless an upper file is to be closed or removed now (an unlinked small file: no promise). */
  discardNow(c: FileContent): void | Promise<void> {
    if (c.snap) {
      c.discardAfterSnapshot = true;
      return;
    }
    this.setInline(c, null);
    if (c.fh || (c.upperPath && !this.deferRemoval)) return this.discardUpper(c);
    if (c.upperPath) this.unreferenced.push(c.upperPath);
    c.upperPath = null;
  }

  private async discardUpper(c: FileContent): Promise<void> {
    await this.closeUpper(c);
    if (c.upperPath) {
      if (this.deferRemoval) this.unreferenced.push(c.upperPath);
      else await unlink(c.upperPath).catch(() => {});
    }
    c.upperPath = null;
  }

  /** Set when a journal may still name discarded upper files: they wait for `reap`. */
  deferRemoval = false;
  private unreferenced: string[] = [];

  /** Upper files discarded so far; remove them with `reap` after the journal recorded that. */
  /** Whether discarded upper files wait for removal (takeUnreferenced). */
  get hasUnreferenced(): boolean {
    return this.unreferenced.length > 0;
  }

  takeUnreferenced(): string[] {
    return this.unreferenced.splice(0);
  }

  /** Taken upper files the journal could not record as gone (its write failed): they wait for the next `takeUnreferenced`. */
  stillReferenced(paths: string[]): void {
    if (paths.length) this.unreferenced = paths.concat(this.unreferenced);
  }

  /**
   * Removes upper files, synchronously in batches (a local unlink takes microseconds, a trip
   * through the thread pool two thread hand-overs), yielding to the event loop between batches
   * so that a mass delete's files never hold up FUSE requests for long.
   */
  async reap(paths: string[]): Promise<void> {
    for (let k = 0; k < paths.length; k += REAP_BATCH) {
      if (k > 0) await new Promise((res) => setImmediate(res));
      for (const p of paths.slice(k, k + REAP_BATCH)) {
        try {
          unlinkSync(p);
        } catch {
          // gone already
        }
      }
    }
  }

  private async ensureUpper(c: FileContent): Promise<void> {
    if (c.upperPath) return;
    const path = join(this.upperDir, `${this.prefix}${this.seq++}`);
    const fh = UpperFile.open(path, "w+", 0o600);
    c.upperPath = path;
    c.upperDurable = false;
    if (c.openHandles > 0 && !c.fh) c.fh = fh;
    else await fh.close();
  }

  private async withUpper<T>(c: FileContent, fn: (fh: UpperFile) => Promise<T>): Promise<T> {
    if (c.fh) return fn(c.fh);
    const fh = UpperFile.open(c.upperPath!, "r+");
    if (c.openHandles > 0 && !c.fh) {
      c.fh = fh;
      return fn(fh);
    }
    try {
      return await fn(fh);
    } finally {
      await fh.close();
    }
  }
}

/** The name of a file's upper file, as the journal records it. */
export const upperName = (c: FileContent) => (c.upperPath ? basename(c.upperPath) : null);

/**
 * Copies the written ranges of a block from `fh` (upper file or a snapshot's side file) into
 * `buf`, whose byte 0 is the block's byte `shift` (so block offset x lands at x - shift), with
 * one read of their span; bytes past the file's end are zeros (a sparse tail).
 */
async function overlay(fh: UpperFile, written: Extents, buf: Buffer, blockStart: number, shift: number): Promise<void> {
  if (written.empty) return;
  const [s, e] = written.span;
  if (written.count === 1) {
    const { bytesRead } = await fh.read(buf, s - shift, e - s, blockStart + s);
    buf.fill(0, s - shift + bytesRead, e - shift);
    return;
  }
  const span = Buffer.alloc(e - s);
  await fh.read(span, 0, e - s, blockStart + s);
  for (const [a, b] of written.ranges()) span.copy(buf, a - shift, a - s, b - s);
}

export function sha256(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}
