import { createHash, randomBytes } from "node:crypto";
import { type BigIntStats, readFileSync, statSync } from "node:fs";
import { type FileHandle, lstat, open, readdir, readlink } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { ConflictError, InvalidError, NotFoundError } from "../protocol/errors.js";
import { BLOCK_SIZE, type Change, type EntryType, type ManifestEntry } from "../protocol/volume.js";
import { BlockBuffers } from "../lib/block-buffers.js";
import type { BlockUploader } from "./block-uploader.js";
import { forEachLimit } from "./limit.js";
import type { LocalBlockWriter } from "./local-put.js";
import type { Volume } from "./volume.js";

export interface UploadBatchOptions {
  /** Overwrite existing files (never directories). Without it an existing file fails the whole batch. */
  force?: boolean;
  /** Called as bytes are hashed and stored (uploaded, or found present already). */
  onProgress?: (bytesDone: number) => void;
  /** What local metadata uploaded paths keep (like `cp -a`); see PreserveOptions. */
  preserve?: PreserveOptions;
}

/**
 * Local metadata an upload keeps. Symlinks and special files (fifos, sockets, devices) are always
 * uploaded as what they are.
 */
export interface PreserveOptions {
  /** Permission bits with setuid/setgid/sticky (default true; else 0o644 files, 0o755 directories). */
  mode?: boolean;
  /** Owner and group (default false: entries are root's). */
  ownership?: boolean;
  /** Modification, access and change times to the nanosecond (default true; else the upload's time). */
  timestamps?: boolean;
  /** Hard links inside what is uploaded stay one inode with several names (default true; else copies). */
  links?: boolean;
}

/** Local file path, bytes, or a stream of bytes. */
export type UploadSource = string | Uint8Array | Readable | AsyncIterable<Uint8Array>;

/** A local node's lstat, which its entry's metadata comes from. */
type Local = { st: BigIntStats };

type Item =
  | { kind: "file"; source: UploadSource; remote: string; mode?: number }
  | { kind: "tree"; local: string; remote: string }
  | ({ kind: "directory"; remote: string } & Local)
  | ({ kind: "symlink"; remote: string; target: string } & Local)
  | ({ kind: "special"; remote: string; type: EntryType } & Local);

/** Files up to this size are read with one synchronous read: for thousands of small files, thread-pool round trips cost more than the I/O. */
const SYNC_READ_MAX = 1024 * 1024;
/** Blocks per file handed to the engine and not yet taken by it: reading goes on meanwhile. */
const PIPELINE_DEPTH = 3;
/**
 * Bytes of a large file read and hashed at a time: hashed right after its read, a chunk is still
 * in the CPU cache (a whole 8 MiB block read first, then hashed, cost ~0.4 CPU-s per GiB more).
 */
const READ_CHUNK = 1024 * 1024;
/**
 * Free block buffers kept for reuse by one batch: what the engine holds (its default maxBytes,
 * 64 MiB) plus the blocks waiting for it.
 */
const FREE_BLOCK_BUFFERS = 8 + PIPELINE_DEPTH;
/** Hashes per "are they still there?" request before the commit (the server's limit is 100,000). */
const TOUCH_BATCH = 50_000;

/** A remote path without leading or trailing slashes; the server normalises and confines it (`..` is refused there). */
function remotePath(p: string): string {
  return p.replace(/^\/+/, "").replace(/\/+$/, "");
}

/**
 * A batch of uploads that lands as one commit. Files stream through: each is read block by
 * block, hashed, and only the blocks the server lacks are sent, several at a time; at most a
 * bounded number of bytes are held in memory whatever the file sizes.
 */
export class VolumeUploadBatch implements AsyncDisposable {
  private readonly items: Item[] = [];
  private state: "open" | "committed" | "failed" = "open";
  /** Local inodes (dev:ino) seen with several names: their linkId, and the first name's upload. */
  private readonly inodes = new Map<string, { linkId: string; content?: Promise<{ blocks: string[]; size: number }> }>();
  /**
   * Large files are read into these, each buffer reused once the engine stored its block: a fresh
   * 8 MiB buffer per block cost page faults and GC (0.2-0.5 CPU-s per GiB on the 2-core VM).
   */
  private readonly buffers = new BlockBuffers(BLOCK_SIZE, FREE_BLOCK_BUFFERS);

  constructor(
    private readonly volume: Volume,
    private readonly opts: UploadBatchOptions = {},
    /** Local block writes (client/local-put.ts): large files passed to a server on this host by their fd. */
    private readonly localWriter?: LocalBlockWriter,
  ) {}

  /** Files stored through local block writes, their bytes, and files for which that failed (each then uploaded over HTTP). */
  get localPutCounts(): { files: number; bytes: number; failures: number } {
    return { ...(this.localWriter?.counts ?? { files: 0, bytes: 0, failures: 0 }) };
  }

  /** Queues a local file (path), bytes or a stream to land at `remote`. */
  putFile(source: UploadSource, remote: string, opts: { mode?: number } = {}): this {
    this.items.push({ kind: "file", source, remote: remotePath(remote), mode: opts.mode });
    return this;
  }

  /** Queues a local directory tree to land at `remote` (files, subdirectories, symlinks, special files). */
  putDirectory(local: string, remote: string): this {
    this.items.push({ kind: "tree", local, remote: remotePath(remote) });
    return this;
  }

  /** Uploads everything queued and commits it as one new version; returns that version. */
  async commit(): Promise<number> {
    if (this.state !== "open") throw new InvalidError(`This upload batch was already ${this.state}`, "INVALID");
    try {
      const items = await this.expand();
      const blocks = this.volume.blocks;
      const uploader = blocks.uploader({ onProgress: this.opts.onProgress });
      const changes: Change[] = [];
      await forEachLimit(items, 8, async (item) => {
        changes.push({ op: "put", entry: await this.entry(item, uploader) });
      });
      await uploader.flush();
      // Touch every block again right before committing, so GC keeps even the earliest ones.
      const hashes = [...uploader.hashes];
      for (let i = 0; i < hashes.length; i += TOUCH_BATCH) {
        const gone = await blocks.missingBlocks(hashes.slice(i, i + TOUCH_BATCH));
        if (gone.length > 0) throw new ConflictError(`${gone.length} uploaded blocks were garbage-collected before the commit; retry the upload`, "CONFLICT");
      }
      // Parents before children, so directory entries come first.
      changes.sort((a, b) => ((a as { entry: ManifestEntry }).entry.path < (b as { entry: ManifestEntry }).entry.path ? -1 : 1));
      const baseVersion = await blocks.latestVersion();
      const { version } = await blocks.commitChanges({ baseVersion, changes, overwrite: this.opts.force ? "files" : "none" });
      this.state = "committed";
      return version;
    } catch (err) {
      this.state = "failed";
      throw err;
    }
  }

  /** `await using batch = vol.batchUpload()`: commits at the end of the block unless already done. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.state === "open") await this.commit();
  }

  /** Expands queued directories into their files, subdirectories and symlinks. */
  private async expand(): Promise<Array<Exclude<Item, { kind: "tree" }>>> {
    const out: Array<Exclude<Item, { kind: "tree" }>> = [];
    for (const item of this.items) {
      if (item.kind === "tree") await walk(item.local, item.remote, out);
      else out.push(item);
    }
    return out;
  }

  /** The metadata a local node's entry keeps, as `preserve` asks. */
  private meta(st: BigIntStats, defaultMode: number): Pick<ManifestEntry, "mode" | "mtimeMs" | "uid" | "gid" | "mtimeNs" | "atimeNs" | "ctimeNs"> {
    const keep = this.opts.preserve ?? {};
    const out: ReturnType<VolumeUploadBatch["meta"]> = { mode: keep.mode === false ? defaultMode : Number(st.mode & 0o7777n), mtimeMs: Date.now() };
    if (keep.ownership) {
      out.uid = Number(st.uid);
      out.gid = Number(st.gid);
    }
    if (keep.timestamps !== false) {
      out.mtimeMs = Number(st.mtimeNs / 1_000_000n);
      out.mtimeNs = st.mtimeNs.toString();
      out.atimeNs = st.atimeNs.toString();
      out.ctimeNs = st.ctimeNs.toString();
    }
    return out;
  }

  /** The linkId of a local node with several names (hard links kept), else undefined. */
  private link(st: BigIntStats): { linkId: string; content?: Promise<{ blocks: string[]; size: number }> } | undefined {
    if (st.nlink < 2n || st.isDirectory() || this.opts.preserve?.links === false) return undefined;
    const key = `${st.dev}:${st.ino}`;
    let inode = this.inodes.get(key);
    if (!inode) {
      inode = { linkId: randomBytes(12).toString("base64url") };
      this.inodes.set(key, inode);
    }
    return inode;
  }

  private async entry(item: Exclude<Item, { kind: "tree" }>, uploader: BlockUploader): Promise<ManifestEntry> {
    if (item.kind === "directory") return { path: item.remote, type: "directory", size: 0, ...this.meta(item.st, 0o755) };
    if (item.kind === "symlink") {
      const linkId = this.link(item.st)?.linkId;
      return { path: item.remote, type: "symlink", size: Buffer.byteLength(item.target), target: item.target, ...this.meta(item.st, 0o777), mode: 0o777, ...(linkId ? { linkId } : {}) };
    }
    if (item.kind === "special") {
      const linkId = this.link(item.st)?.linkId;
      const rdev = item.type === "char" || item.type === "block" ? { rdev: Number(item.st.rdev) } : {};
      return { path: item.remote, type: item.type, size: 0, ...this.meta(item.st, 0o644), ...rdev, ...(linkId ? { linkId } : {}) };
    }
    let blocks: string[];
    let size: number;
    if (typeof item.source === "string") {
      const path = item.source;
      const st = localStat(path);
      if (!st.isFile()) throw new InvalidError(`'${path}' is not a regular file`, "INVALID");
      const meta = this.meta(st, 0o644);
      if (item.mode !== undefined) meta.mode = item.mode;
      const inode = this.link(st);
      // One upload per inode: its other names reuse the blocks.
      const read = (): Promise<{ blocks: string[]; size: number }> => this.fileContent(path, st, uploader);
      const content = inode ? (inode.content ??= read()) : read();
      ({ blocks, size } = await content);
      return { path: item.remote, type: "file", size, blocks, ...meta, ...(inode ? { linkId: inode.linkId } : {}) };
    }
    if (item.source instanceof Uint8Array) {
      ({ blocks, size } = await uploadBlocks(bytesBlocks(item.source), uploader));
    } else {
      ({ blocks, size } = await uploadBlocks(rechunk(item.source), uploader));
    }
    return { path: item.remote, type: "file", mode: item.mode ?? 0o644, size, mtimeMs: Date.now(), blocks };
  }

  private async fileContent(path: string, st: BigIntStats, uploader: BlockUploader): Promise<{ blocks: string[]; size: number }> {
    const size = Number(st.size);
    // One sync read: for thousands of small files, thread-pool round trips cost more than the I/O.
    if (size <= SYNC_READ_MAX) return uploadBlocks(bytesBlocks(readFileSync(path)), uploader);
    const fh = await open(path, "r");
    try {
      // On the server's host: the server reads the file itself through its fd; any failure, HTTP.
      const local = await this.localWriter?.putFile(this.volume.id, path, fh.fd, size, this.opts.onProgress);
      if (local) {
        for (const b of local) uploader.known(b.hash);
        return { blocks: local.map((b) => b.hash), size };
      }
      return await uploadBlocks(fileBlocks(fh, size, this.buffers), uploader);
    } finally {
      await fh.close();
    }
  }
}

function localStat(path: string): BigIntStats {
  try {
    return statSync(path, { bigint: true });
  } catch (err) {
    throw new NotFoundError(`Local file '${path}' can not be read: ${(err as Error).message}`, "NOT_FOUND");
  }
}

/** What a local node that is neither file, directory nor symlink is in a volume. */
function specialType(st: BigIntStats): EntryType | undefined {
  if (st.isFIFO()) return "fifo";
  if (st.isSocket()) return "socket";
  if (st.isCharacterDevice()) return "char";
  if (st.isBlockDevice()) return "block";
  return undefined;
}

async function walk(local: string, remote: string, out: Item[]): Promise<void> {
  const st = localStat(local);
  if (!st.isDirectory()) throw new InvalidError(`'${local}' is not a directory`, "INVALID");
  if (remote !== "") out.push({ kind: "directory", remote, st });
  for (const d of await readdir(local, { withFileTypes: true })) {
    const src = join(local, d.name);
    const dst = remote === "" ? d.name : `${remote}/${d.name}`;
    if (d.isDirectory()) await walk(src, dst, out);
    else if (d.isFile()) out.push({ kind: "file", source: src, remote: dst });
    else {
      const lst = await lstat(src, { bigint: true });
      if (d.isSymbolicLink()) out.push({ kind: "symlink", remote: dst, target: await readlink(src), st: lst });
      else {
        const type = specialType(lst);
        if (type) out.push({ kind: "special", remote: dst, type, st: lst });
      }
    }
  }
}

/** A block's bytes, its hash if known already, and how to hand its buffer back once the engine is done with them. */
interface PooledBlock {
  data: Buffer;
  hash?: string;
  done?: () => void;
}

/**
 * A file's blocks read into pooled buffers, READ_CHUNK at a time, each chunk hashed as soon as it
 * is read (while the next one is being read) and so still in the CPU cache.
 */
async function* fileBlocks(fh: FileHandle, size: number, buffers: BlockBuffers): AsyncGenerator<PooledBlock> {
  for (let pos = 0; pos < size; pos += BLOCK_SIZE) {
    const mem = buffers.take();
    const data = mem.data.subarray(0, Math.min(BLOCK_SIZE, size - pos));
    const sha = createHash("sha256");
    let next = readChunk(fh, data, 0, pos);
    for (let off = 0; off < data.length; ) {
      const end = off + (await next);
      if (end < data.length) next = readChunk(fh, data, end, pos + end);
      sha.update(data.subarray(off, end));
      off = end;
    }
    yield { data, hash: sha.digest("hex"), done: () => mem.release() };
  }
}

/** Reads up to READ_CHUNK bytes into `data` from `at` (the file's `pos`); how many it read. */
function readChunk(fh: FileHandle, data: Buffer, at: number, pos: number): Promise<number> {
  const p = fh.read(data, at, Math.min(READ_CHUNK, data.length - at), pos).then(({ bytesRead }) => {
    if (bytesRead === 0) throw new ConflictError("File shrank while it was being uploaded", "CONFLICT");
    return bytesRead;
  });
  p.catch(() => {}); // awaited by the caller; a failure after the caller stopped must not be unhandled
  return p;
}

function* bytesBlocks(data: Uint8Array): Generator<PooledBlock> {
  for (let pos = 0; pos < data.length; pos += BLOCK_SIZE) yield { data: Buffer.from(data.subarray(pos, pos + BLOCK_SIZE)) };
}

/** Regroups a stream's chunks into BLOCK_SIZE blocks. */
async function* rechunk(source: AsyncIterable<Uint8Array>): AsyncGenerator<PooledBlock> {
  let parts: Buffer[] = [];
  let held = 0;
  for await (const chunk of source) {
    let buf = Buffer.from(chunk);
    while (held + buf.length >= BLOCK_SIZE) {
      const take = BLOCK_SIZE - held;
      parts.push(buf.subarray(0, take));
      yield { data: Buffer.concat(parts) };
      buf = buf.subarray(take);
      parts = [];
      held = 0;
    }
    if (buf.length > 0) {
      parts.push(buf);
      held += buf.length;
    }
  }
  if (held > 0) yield { data: Buffer.concat(parts) };
}

/** Hands a file's blocks to the engine, a few hashing at once while the next are read. */
async function uploadBlocks(source: AsyncIterable<PooledBlock> | Iterable<PooledBlock>, uploader: BlockUploader): Promise<{ blocks: string[]; size: number }> {
  const hashes: Array<Promise<string>> = [];
  let size = 0;
  for await (const block of source) {
    const hash = uploader.add(block.data, block.hash, block.done);
    hash.catch(() => {}); // awaited below
    hashes.push(hash);
    size += block.data.length;
    if (hashes.length >= PIPELINE_DEPTH) await hashes[hashes.length - PIPELINE_DEPTH];
  }
  return { blocks: await Promise.all(hashes), size };
}
