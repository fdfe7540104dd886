import { createHash } from "node:crypto";
import { type FileHandle, open, unlink } from "node:fs/promises";
import { join } from "node:path";
import { BLOCK_SIZE } from "../../protocol/volume.js";
import { AsyncLock } from "./async-lock.js";
import type { BlockCache } from "./block-cache.js";

export const blockCount = (size: number) => Math.ceil(size / BLOCK_SIZE);

/**
 * The bytes of one file (shared by its hard links). Block i is either a committed block (its
 * hash in `hashes[i]`, bytes fetched through the cache) or local: copied up into this file's
 * sparse upper file, where writes land. A local block whose hash is `null` changed since the
 * last commit and is hashed (and uploaded if the server lacks it) by the next one.
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

  constructor(
    public size: number,
    hashes: string[],
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

  constructor(
    private readonly upperDir: string,
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
      let got: number;
      if (c.local.has(i)) {
        got = await this.withUpper(c, async (fh) => (await fh.read(buf, done, n, at)).bytesRead);
        // A sparse tail reads short: it is zeros.
        if (got < n) buf.fill(0, done + got, done + n);
        got = n;
      } else {
        got = await this.cache.read(c.hashes[i]!, at - i * BLOCK_SIZE, buf, done, n);
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
      if (h && !c.local.has(j)) next.push(h);
    }
    if (next.length) this.cache.prefetch(next);
  }

  write(c: FileContent, buf: Buffer, len: number, pos: number): Promise<number> {
    return c.lock.run(async () => {
      const end = pos + len;
      await this.ensureUpper(c);
      for (let i = Math.floor(pos / BLOCK_SIZE); i <= Math.floor((end - 1) / BLOCK_SIZE); i++) {
        const blockEnd = Math.min((i + 1) * BLOCK_SIZE, c.size);
        const covered = pos <= i * BLOCK_SIZE && end >= blockEnd;
        if (!covered) await this.materialize(c, i);
      }
      if (end > c.size) await this.growTo(c, end);
      await this.withUpper(c, (fh) => fh.write(buf, 0, len, pos));
      for (let i = Math.floor(pos / BLOCK_SIZE); i <= Math.floor((end - 1) / BLOCK_SIZE); i++) {
        c.local.add(i);
        c.hashes[i] = null;
      }
      c.generation++;
      return len;
    });
  }

  truncate(c: FileContent, size: number): Promise<void> {
    return c.lock.run(async () => {
      if (size === c.size) return;
      await this.ensureUpper(c);
      if (size > c.size) {
        await this.growTo(c, size);
        await this.withUpper(c, (fh) => fh.truncate(size));
      } else {
        const k = Math.floor(size / BLOCK_SIZE);
        if (size % BLOCK_SIZE !== 0) await this.materialize(c, k);
        await this.withUpper(c, (fh) => fh.truncate(size));
        c.hashes.length = blockCount(size);
        for (const i of c.local) if (i >= c.hashes.length) c.local.delete(i);
        if (size % BLOCK_SIZE !== 0) c.hashes[k] = null;
        c.size = size;
      }
      c.generation++;
    });
  }

  /** The bytes of block i as they are now (for hashing at commit); caller holds the lock. */
  async blockBytes(c: FileContent, i: number): Promise<Buffer> {
    const len = Math.min(BLOCK_SIZE, c.size - i * BLOCK_SIZE);
    const buf = Buffer.alloc(len);
    await this.withUpper(c, (fh) => fh.read(buf, 0, len, i * BLOCK_SIZE));
    return buf;
  }

  /** Called when the last FUSE handle closes. */
  async closeUpper(c: FileContent): Promise<void> {
    const fh = c.fh;
    c.fh = null;
    await fh?.close();
  }

  /** Called when the last link and handle are gone. */
  async discard(c: FileContent): Promise<void> {
    await this.closeUpper(c);
    if (c.upperPath) await unlink(c.upperPath).catch(() => {});
    c.upperPath = null;
  }

  /** Extends the file with zeros: the old partial last block changes, new blocks are local. */
  private async growTo(c: FileContent, size: number): Promise<void> {
    const oldCount = blockCount(c.size);
    if (c.size % BLOCK_SIZE !== 0) {
      await this.materialize(c, oldCount - 1);
      c.hashes[oldCount - 1] = null;
    }
    for (let i = oldCount; i < blockCount(size); i++) {
      c.local.add(i);
      c.hashes[i] = null;
    }
    c.size = size;
  }

  /** Copies committed block i into the upper file so it can be changed in place. */
  private async materialize(c: FileContent, i: number): Promise<void> {
    if (c.local.has(i) || i >= c.hashes.length) return;
    const data = await this.cache.get(c.hashes[i]!);
    await this.withUpper(c, (fh) => fh.write(data, 0, data.length, i * BLOCK_SIZE));
    c.local.add(i);
  }

  private async ensureUpper(c: FileContent): Promise<void> {
    if (c.upperPath) return;
    const path = join(this.upperDir, `f${process.pid}-${this.seq++}`);
    const fh = await open(path, "w+");
    if (c.size > 0) await fh.truncate(c.size);
    c.upperPath = path;
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

export function sha256(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}
