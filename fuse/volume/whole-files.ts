import { createHash } from "node:crypto";
import { closeSync, constants, fstatSync, openSync } from "node:fs";
import { mkdir, open, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { writevAll } from "../../lib/writev-all.js";
import { BLOCK_SIZE } from "../../protocol/volume.js";
import type { BlockCache, CacheTenant } from "./block-cache.js";
import { blockCount, type FileContent, storedHash } from "./file-content.js";

/** One assembled file: what it must still be when used (a changed or replaced file is refused). */
export interface WholeFile {
  readonly key: string;
  readonly path: string;
  readonly size: number;
  readonly ino: bigint;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
  users: number;
  gone: boolean;
}

export interface WholeFileStats {
  /** Files held and their bytes (counted against the block cache's budget). */
  files: number;
  bytes: number;
  /** Since the mount: files assembled, opens given one, files refused at open (changed on disk), dropped to fit the budget, builds that failed. */
  built: number;
  served: number;
  refused: number;
  evicted: number;
  failed: number;
  /** Wall time of the copies made (a copy made at open would add it to that open). */
  buildMs: number;
}

/**
 * The identity of a committed file's bytes (sha256 of its size and block list: they never
 * change), or undefined if any byte is not a committed block's (local, partial or inline).
 */
export function wholeKey(c: FileContent): string | undefined {
  if (c.inline || c.size === 0 || c.local.size > 0 || c.partial.size > 0 || !c.clean) return undefined;
  return createHash("sha256").update(`${c.size}\n${c.hashes.join("\n")}`).digest("hex");
}

/**
 * Whole-file copies of committed files whose blocks are all in the block cache (one cache file
 * per 8 MiB block cannot be a passthrough backing file; one file of the whole can:
 * passthrough.ts). A file is assembled in the background once a reader has read it through
 * the daemon and closed it (so that read never waits for the copy); later opens pass through.
 *
 * Safety: the bytes are the cached blocks' (the same a daemon read serves), written to a temp
 * file and renamed, and the directory is emptied at every daemon start (state dir), so a crash
 * never leaves a half file in use; at each use the file must still have the size, inode and
 * times it had when built, else it is dropped and the open is ordinary. Files are 0600.
 *
 * Budget: their bytes count against the block cache's, and they go (least recently used first)
 * before any block does: a fully read file is held twice, and the blocks are the ones that
 * matter to a cold read. `SILO_WHOLE_FILE_CACHE=off` turns this off.
 */
export class WholeFiles implements CacheTenant {
  /** Least recently used first. */
  private readonly files = new Map<string, WholeFile>();
  private readonly building = new Set<string>();
  /** Keys by content state (a FileContent changes only with its generation). */
  private readonly keys = new WeakMap<FileContent, { generation: number; key: string | undefined }>();
  private held = 0;
  private seq = 0;
  /** Copies are made one at a time (each holds an 8 MiB buffer and a thread-pool thread). */
  private queue: Promise<void> = Promise.resolve();
  private readonly counts = { built: 0, served: 0, refused: 0, evicted: 0, failed: 0, buildMs: 0 };

  constructor(
    private readonly dir: string,
    private readonly cache: BlockCache,
    private readonly log: (msg: string) => void = () => {},
  ) {}

  async init(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    this.cache.tenant = this;
  }

  get bytes(): number {
    return this.held;
  }

  get stats(): WholeFileStats {
    return { files: this.files.size, bytes: this.held, ...this.counts };
  }

  private keyOf(c: FileContent): string | undefined {
    const known = this.keys.get(c);
    if (known && known.generation === c.generation) return known.key;
    const key = wholeKey(c);
    this.keys.set(c, { generation: c.generation, key });
    return key;
  }

  /**
   * A read-only descriptor of `c`'s whole file and the file (counted as in use until `release`),
   * if one is held and unchanged since it was built; else undefined (a changed one is dropped).
   */
  open(c: FileContent): { fd: number; file: WholeFile } | undefined {
    const key = this.keyOf(c);
    const file = key && this.files.get(key);
    if (!file) return undefined;
    let fd: number | undefined;
    try {
      fd = openSync(file.path, constants.O_RDONLY | constants.O_NOFOLLOW);
      const st = fstatSync(fd, { bigint: true });
      if (st.size !== BigInt(c.size) || st.ino !== file.ino || st.mtimeNs !== file.mtimeNs || st.ctimeNs !== file.ctimeNs) throw new Error("changed on disk");
    } catch (err) {
      if (fd !== undefined) closeSync(fd);
      this.counts.refused++;
      this.log(`whole-file cache: ${file.path} not used (${(err as Error).message}); dropped`);
      void this.drop(file);
      return undefined;
    }
    this.files.delete(key);
    this.files.set(key, file);
    file.users++;
    this.counts.served++;
    return { fd, file };
  }

  release(file: WholeFile): void {
    file.users--;
  }

  /** A reader of `c` is done: assemble its whole file in the background if all its blocks are cached. */
  want(c: FileContent): void {
    const key = this.keyOf(c);
    if (!key || this.files.has(key) || this.building.has(key)) return;
    // A file that cannot fit beside its own blocks would only push other files out.
    if (c.size * 2 > this.cache.budget) return;
    if (!c.hashes.every((h) => !storedHash(h) || this.cache.has(h))) return;
    this.building.add(key);
    const { size } = c;
    const hashes = [...c.hashes];
    this.queue = this.queue
      .then(() => this.build(key, size, hashes))
      .catch((err: Error) => {
        this.counts.failed++;
        this.log(`whole-file cache: assembling failed (${err.message})`);
      })
      .finally(() => this.building.delete(key));
  }

  /** Frees at least `over` bytes, least recently used first, of files not in use. */
  async shed(over: number): Promise<void> {
    for (const file of [...this.files.values()]) {
      if (over <= 0) return;
      if (file.users > 0) continue;
      over -= file.size;
      this.counts.evicted++;
      await this.drop(file);
    }
  }

  async close(): Promise<void> {
    this.files.clear();
    this.held = 0;
    await rm(this.dir, { recursive: true, force: true });
  }

  private async drop(file: WholeFile): Promise<void> {
    if (file.gone) return;
    file.gone = true;
    if (this.files.get(file.key) === file) this.files.delete(file.key);
    this.held -= file.size;
    // An open backing file keeps its bytes until the kernel lets it go; the name goes now.
    await rm(file.path, { force: true });
  }

  /**
   * Copies the blocks (a hole stays one) into a temp file renamed into place once it has the
   * file's size. In 8 MiB writes at block offsets: the page cache then holds the copy in large
   * folios, which the kernel reads ~1.4x as fast as the 64 KiB ones copy_file_range (splice)
   * leaves (docs/benchmarks.md).
   */
  private async build(key: string, size: number, hashes: Array<string | null>): Promise<void> {
    const path = join(this.dir, key);
    const tmp = `${path}.${this.seq++}.tmp`;
    const t0 = performance.now();
    const fh = await open(tmp, "wx", 0o600);
    try {
      const buf = Buffer.allocUnsafe(Math.min(size, BLOCK_SIZE));
      for (let i = 0; i < blockCount(size); i++) {
        const hash = hashes[i];
        // A hole stays a hole: the truncate below makes it read zeros.
        if (!storedHash(hash)) continue;
        const len = Math.min(BLOCK_SIZE, size - i * BLOCK_SIZE);
        const got = await this.cache.readCached(hash, buf, len);
        if (got === undefined) throw new Error(`block ${hash} left the cache`);
        if (got !== len) throw new Error(`block ${hash} holds ${got} bytes, ${len} expected`);
        await writevAll(fh, [buf.subarray(0, len)], i * BLOCK_SIZE);
      }
      await fh.truncate(size);
      await fh.close();
      await rename(tmp, path);
    } catch (err) {
      await fh.close().catch(() => {});
      await rm(tmp, { force: true });
      throw err;
    }
    // After the rename (which moves ctime): what the file must still be when used.
    const st = await stat(path, { bigint: true });
    const file: WholeFile = { key, path, size, ino: st.ino, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, users: 0, gone: false };
    this.files.set(key, file);
    this.held += size;
    this.counts.built++;
    this.counts.buildMs += performance.now() - t0;
    const over = this.held + this.cache.sizeBytes - this.cache.budget;
    if (over > 0) await this.shed(over);
  }
}
