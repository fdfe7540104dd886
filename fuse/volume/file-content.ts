import { createHash, randomBytes } from "node:crypto";
import { constants as fsConstants } from "node:fs";
import { type FileHandle, open, unlink } from "node:fs/promises";
import { basename, join } from "node:path";
import { BLOCK_SIZE, type BlockRef, compactBlocks, expandBlocks } from "../../protocol/volume.js";
import { AsyncLock } from "./async-lock.js";
import type { BlockCache } from "./block-cache.js";
import { checkTruncateSize, writableBytes } from "./limits.js";

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
  sidePath: string | null;
}

/**
 * The bytes of one file (shared by its hard links). Block i is local (its bytes in this file's
 * sparse upper file, where writes land), committed (its hash in `hashes[i]`, bytes fetched
 * through the cache), or a hole (not local, hash `null`: zeros, never stored). A local block
 * whose hash is `null` changed since the last commit and is hashed by the next one; a hole
 * commits as the zero block of its length without being read.
 */
export class FileContent {
  hashes: Array<string | null>;
  readonly local = new Set<number>();
  upperPath: string | null = null;
  /** Kept open while FUSE handles are open; otherwise opened per operation. */
  fh: FileHandle | null = null;
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
}

/** Reads, writes and truncates FileContents against the block cache and the upper dir. */
export class ContentStore {
  private seq = 0;
  /** Unique per daemon run: upper files of an earlier run may sit in the same directory. */
  private readonly prefix = `f${Date.now().toString(36)}-${randomBytes(4).toString("hex")}-`;

  constructor(
    readonly upperDir: string,
    private readonly cache: BlockCache,
  ) {}

  async read(c: FileContent, buf: Buffer, len: number, pos: number): Promise<number> {
    const end = Math.min(pos + len, c.size);
    if (pos >= end) return 0;
    if (pos === c.lastReadEnd) this.readAhead(c, Math.floor(end / BLOCK_SIZE));
    c.lastReadEnd = end;
    let done = 0;
    while (pos + done < end) {
      const at = pos + done;
      const i = Math.floor(at / BLOCK_SIZE);
      const n = Math.min(end, (i + 1) * BLOCK_SIZE) - at;
      const hash = c.hashes[i] ?? null;
      let got: number;
      if (c.local.has(i)) {
        got = await this.withUpper(c, async (fh) => (await fh.read(buf, done, n, at)).bytesRead);
        // A sparse tail reads short: it is zeros.
        if (got < n) buf.fill(0, done + got, done + n);
        got = n;
      } else if (hash === null || hash === HOLE || isZeroHash(hash)) {
        buf.fill(0, done, done + n);
        got = n;
      } else {
        got = await this.cache.read(hash, at - i * BLOCK_SIZE, buf, done, n);
        if (got === 0) break;
      }
      done += got;
    }
    return done;
  }

  /** Sequential reader: fetch the next two committed blocks before they are asked for. */
  private readAhead(c: FileContent, i: number): void {
    const next: string[] = [];
    for (let j = i + 1; j <= i + 2 && j < c.hashes.length; j++) {
      const h = c.hashes[j];
      if (h && h !== HOLE && !c.local.has(j) && !isZeroHash(h)) next.push(h);
    }
    if (next.length) this.cache.prefetch(next);
  }

  /** Writes at `pos`: EFBIG at the file-size limit (a short write just below it, as Linux does). */
  async write(c: FileContent, buf: Buffer, len: number, pos: number): Promise<number> {
    len = writableBytes(pos, len);
    if (len === 0) return 0;
    return c.lock.run(async () => {
      const end = pos + len;
      const first = Math.floor(pos / BLOCK_SIZE);
      const last = Math.floor((end - 1) / BLOCK_SIZE);
      await this.ensureUpper(c);
      for (let i = first; i <= last; i++) {
        const blockEnd = Math.min((i + 1) * BLOCK_SIZE, c.size);
        const covered = pos <= i * BLOCK_SIZE && end >= blockEnd;
        if (!covered) await this.materialize(c, i);
      }
      // Growing changes the old partial last block (its length): it must be local to be rehashed.
      if (end > c.size && c.size % BLOCK_SIZE !== 0) await this.materialize(c, blockCount(c.size) - 1);
      await this.preserve(c, first, last);
      await this.withUpper(c, (fh) => fh.write(buf, 0, len, pos));
      // Metadata changes in one synchronous step, so a snapshot never sees a half-applied write.
      if (end > c.size) this.grow(c, end);
      for (let i = first; i <= last; i++) {
        c.local.add(i);
        c.hashes[i] = null;
        c.snap?.changed.add(i);
      }
      c.generation++;
      return len;
    });
  }

  /** truncate(2): EINVAL/EFBIG for sizes no file may have; growing only records holes. */
  async truncate(c: FileContent, size: number): Promise<void> {
    checkTruncateSize(size);
    return c.lock.run(async () => {
      if (size === c.size) return;
      if (size > c.size) {
        if (c.size % BLOCK_SIZE !== 0) {
          await this.ensureUpper(c);
          await this.materialize(c, blockCount(c.size) - 1);
        }
        this.grow(c, size);
      } else {
        const k = Math.floor(size / BLOCK_SIZE);
        const partial = size % BLOCK_SIZE !== 0;
        await this.ensureUpper(c);
        if (partial) await this.materialize(c, k);
        await this.preserve(c, k, blockCount(c.size) - 1);
        const count = blockCount(size);
        for (let i = k; i < c.hashes.length; i++) c.snap?.changed.add(i);
        c.hashes.length = count;
        for (const i of c.local) if (i >= count) c.local.delete(i);
        if (partial) c.hashes[k] = null;
        c.size = size;
        // The dropped tail must read as zeros if the file grows again.
        await this.withUpper(c, (fh) => fh.truncate(size));
      }
      c.generation++;
    });
  }

  /**
   * Makes bytes [start, end) of the file zeros (fallocate PUNCH_HOLE, ZERO_RANGE), never past its
   * size. Whole blocks become holes (nothing to read or upload at commit); a local one's bytes are
   * zeroed in the upper file too, which must read as zeros wherever a block is not local.
   */
  async zeroRange(c: FileContent, start: number, end: number): Promise<void> {
    return c.lock.run(async () => {
      end = Math.min(end, c.size);
      if (start >= end) return;
      const first = Math.floor(start / BLOCK_SIZE);
      const last = Math.floor((end - 1) / BLOCK_SIZE);
      await this.ensureUpper(c);
      await this.preserve(c, first, last);
      for (let i = first; i <= last; i++) {
        const blockStart = i * BLOCK_SIZE;
        const blockEnd = Math.min(blockStart + BLOCK_SIZE, c.size);
        const from = Math.max(start, blockStart);
        const to = Math.min(end, blockEnd);
        const hash = c.hashes[i] ?? null;
        const local = c.local.has(i);
        // Already all zeros: a hole, or a committed block of zeros.
        if (!local && (hash === null || hash === HOLE || isZeroHash(hash))) continue;
        if (from === blockStart && to === blockEnd) {
          if (local) await this.withUpper(c, (fh) => fh.write(ZEROS, 0, to - from, from));
          c.local.delete(i);
        } else {
          await this.materialize(c, i);
          await this.withUpper(c, (fh) => fh.write(ZEROS, 0, to - from, from));
        }
        c.hashes[i] = null;
        c.snap?.changed.add(i);
      }
      c.generation++;
    });
  }

  /** Extends the file with a hole: the old partial last block changes (it is local by now). */
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

  // ---- commit snapshots ----

  /** Starts a commit's view of the file as it is now (synchronous: one instant for all files). */
  snapshot(c: FileContent): FileSnapshot {
    const pending = new Set<number>();
    for (const i of c.local) if (c.hashes[i] === null && i < c.hashes.length) pending.add(i);
    c.snap = { size: c.size, hashes: [...c.hashes], pending, saved: new Set(), changed: new Set(), sidePath: null };
    return c.snap;
  }

  /** The bytes of snapshot block i (local at the snapshot), from the upper file or its saved copy. */
  snapshotBlock(c: FileContent, snap: FileSnapshot, i: number): Promise<Buffer> {
    return c.lock.run(async () => {
      const len = Math.min(BLOCK_SIZE, snap.size - i * BLOCK_SIZE);
      const buf = Buffer.alloc(len);
      const path = snap.saved.has(i) ? snap.sidePath! : c.upperPath!;
      const fh = snap.saved.has(i) || !c.fh ? await open(path, "r") : c.fh;
      try {
        await fh.read(buf, 0, len, i * BLOCK_SIZE);
      } finally {
        if (fh !== c.fh) await fh.close();
      }
      snap.pending.delete(i);
      return buf;
    });
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
   * read. Repeats until nothing is left to save, so the caller's next synchronous step is safe.
   */
  private async preserve(c: FileContent, first: number, last: number): Promise<void> {
    for (;;) {
      const snap = c.snap;
      if (!snap) return;
      const todo = [...snap.pending].filter((i) => i >= first && i <= last && !snap.saved.has(i));
      if (todo.length === 0) return;
      snap.sidePath ??= `${c.upperPath}.snap`;
      // Not "a": with O_APPEND every positioned write would land at the end.
      const side = await open(snap.sidePath, fsConstants.O_RDWR | fsConstants.O_CREAT, 0o600);
      try {
        for (const i of todo) {
          const len = Math.min(BLOCK_SIZE, snap.size - i * BLOCK_SIZE);
          const buf = Buffer.alloc(len);
          await this.withUpper(c, (fh) => fh.read(buf, 0, len, i * BLOCK_SIZE));
          await side.write(buf, 0, len, i * BLOCK_SIZE);
          snap.saved.add(i);
        }
      } finally {
        await side.close();
      }
    }
  }

  // ---- durability ----

  /** fsync(2) of a file: its upper bytes (and the upper file's name) reach the disk. */
  async sync(c: FileContent, syncDir: (dir: string) => Promise<void>): Promise<void> {
    if (!c.upperPath) return;
    await c.lock.run(() => this.withUpper(c, (fh) => fh.datasync()));
    if (!c.upperDurable) {
      await syncDir(this.upperDir);
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

  /**
   * Called when the last link and handle are gone. With a journal the upper file is only
   * removed by `reap` once the journal no longer names it (an older record may).
   */
  async discard(c: FileContent): Promise<void> {
    if (c.snap) {
      c.discardAfterSnapshot = true;
      return;
    }
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
  takeUnreferenced(): string[] {
    return this.unreferenced.splice(0);
  }

  async reap(paths: string[]): Promise<void> {
    for (const p of paths) await unlink(p).catch(() => {});
  }

  /** Copies committed block i into the upper file so it can be changed in place (a hole has nothing to copy). */
  private async materialize(c: FileContent, i: number): Promise<void> {
    if (c.local.has(i) || i >= c.hashes.length) return;
    const hash = c.hashes[i] ?? null;
    if (hash !== null && hash !== HOLE && !isZeroHash(hash)) {
      const data = await this.cache.get(hash);
      await this.withUpper(c, (fh) => fh.write(data, 0, data.length, i * BLOCK_SIZE));
    }
    c.local.add(i);
  }

  private async ensureUpper(c: FileContent): Promise<void> {
    if (c.upperPath) return;
    const path = join(this.upperDir, `${this.prefix}${this.seq++}`);
    const fh = await open(path, "w+", 0o600);
    c.upperPath = path;
    c.upperDurable = false;
    if (c.openHandles > 0 && !c.fh) c.fh = fh;
    else await fh.close();
  }

  private async withUpper<T>(c: FileContent, fn: (fh: FileHandle) => Promise<T>): Promise<T> {
    if (c.fh) return fn(c.fh);
    const fh = await open(c.upperPath!, "r+");
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

export function sha256(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}
