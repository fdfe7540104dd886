import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, constants, fstatSync, openSync } from "node:fs";
import { mkdir, open, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
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

/** Written for a hole, piece by piece. */
const ZEROS = Buffer.alloc(1024 * 1024);

/** Block files per copying process (bounds its argument list). */
const CAT_BATCH = 256;

/**
 * Appends `paths` to `fd` at its position in a child `cat` at nice 19: coreutils' cat copies
 * with copy_file_range, in the kernel (no bytes through this process), and the copy yields the
 * CPU to readers on a busy machine.
 */
function catInto(fd: number, paths: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn("nice", ["-n", "19", "cat", "--", ...paths], { stdio: ["ignore", fd, "pipe"] });
    let err = "";
    p.stderr?.on("data", (d: Buffer) => (err += d.toString()));
    p.on("error", reject);
    p.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`cat exited with ${code}: ${err.trim()}`))));
  });
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
  /** No `nice`/`cat` to copy with: no copy is tried again. */
  private noCopier = false;
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
    if (!key || this.noCopier || this.files.has(key) || this.building.has(key)) return;
    // A file that cannot fit beside its own blocks would only push other files out.
    if (c.size * 2 > this.cache.budget) return;
    if (!c.hashes.every((h) => !storedHash(h) || this.cache.has(h))) return;
    this.building.add(key);
    this.build(key, c.size, [...c.hashes])
      .catch((err: NodeJS.ErrnoException) => {
        this.counts.failed++;
        if (err.code === "ENOENT" && err.syscall?.startsWith("spawn")) this.noCopier = true;
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
   * Assembles the file from the blocks' cache files (appended in order by `cat`; a hole is
   * written as zeros) into a temp file renamed into place once it has the file's size.
   */
  private async build(key: string, size: number, hashes: Array<string | null>): Promise<void> {
    const path = join(this.dir, key);
    const tmp = `${path}.${this.seq++}.tmp`;
    const t0 = performance.now();
    // Blocks fetched last may still be on their way to their cache files.
    await this.cache.flushed();
    const fh = await open(tmp, "wx", 0o600);
    try {
      let batch: string[] = [];
      const copy = async () => {
        if (batch.length > 0) await catInto(fh.fd, batch);
        batch = [];
      };
      for (let i = 0; i < blockCount(size); i++) {
        const hash = hashes[i];
        const len = Math.min(BLOCK_SIZE, size - i * BLOCK_SIZE);
        if (!storedHash(hash)) {
          await copy();
          // At the file's position (null), where the copies before left it.
          for (let done = 0; done < len; ) done += (await fh.write(ZEROS, 0, Math.min(len - done, ZEROS.length), null)).bytesWritten;
          continue;
        }
        const from = this.cache.cachedPath(hash);
        if (!from) throw new Error(`block ${hash} is not in a cache file`);
        batch.push(from);
        if (batch.length === CAT_BATCH) await copy();
      }
      await copy();
      // A block file cut short (or evicted and gone) makes a shorter file: never kept.
      const got = (await fh.stat()).size;
      if (got !== size) throw new Error(`assembled ${got} bytes, ${size} expected`);
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
