import { readFileSync, statSync } from "node:fs";
import { type FileHandle, lstat, open, readdir, readlink } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { ConflictError, InvalidError, NotFoundError } from "../protocol/errors.js";
import { BLOCK_SIZE, type Change, type ManifestEntry } from "../protocol/volume.js";
import type { BlockUploader } from "./block-uploader.js";
import { forEachLimit } from "./limit.js";
import type { Volume } from "./volume.js";

export interface UploadBatchOptions {
  /** Overwrite existing files (never directories). Without it an existing file fails the whole batch. */
  force?: boolean;
  /** Called as bytes are hashed and stored (uploaded, or found present already). */
  onProgress?: (bytesDone: number) => void;
}

/** Local file path, bytes, or a stream of bytes. */
export type UploadSource = string | Uint8Array | Readable | AsyncIterable<Uint8Array>;

type Item =
  | { kind: "file"; source: UploadSource; remote: string; mode?: number }
  | { kind: "tree"; local: string; remote: string }
  | { kind: "directory"; remote: string; mode: number; mtimeMs: number }
  | { kind: "symlink"; remote: string; target: string; mtimeMs: number };

/** Files up to this size are read with one synchronous read: for thousands of small files, thread-pool round trips cost more than the I/O. */
const SYNC_READ_MAX = 1024 * 1024;
/** Blocks being read or hashed at once per file: reading, hashing and uploading overlap. */
const PIPELINE_DEPTH = 3;
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

  constructor(
    private readonly volume: Volume,
    private readonly opts: UploadBatchOptions = {},
  ) {}

  /** Queues a local file (path), bytes or a stream to land at `remote`. */
  putFile(source: UploadSource, remote: string, opts: { mode?: number } = {}): this {
    this.items.push({ kind: "file", source, remote: remotePath(remote), mode: opts.mode });
    return this;
  }

  /** Queues a local directory tree to land at `remote` (files, subdirectories, symlinks). */
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

  private async entry(item: Exclude<Item, { kind: "tree" }>, uploader: BlockUploader): Promise<ManifestEntry> {
    if (item.kind === "directory") return { path: item.remote, type: "directory", mode: item.mode, size: 0, mtimeMs: item.mtimeMs };
    if (item.kind === "symlink") {
      return { path: item.remote, type: "symlink", mode: 0o777, size: Buffer.byteLength(item.target), mtimeMs: item.mtimeMs, target: item.target };
    }
    let mode = item.mode ?? 0o644;
    let mtimeMs = Date.now();
    let blocks: string[];
    let size: number;
    if (typeof item.source === "string") {
      const st = localStat(item.source);
      if (!st.isFile()) throw new InvalidError(`'${item.source}' is not a regular file`, "INVALID");
      mode = item.mode ?? st.mode & 0o7777;
      mtimeMs = st.mtimeMs;
      if (st.size <= SYNC_READ_MAX) {
        // One sync read: for thousands of small files, thread-pool round trips cost more than the I/O.
        ({ blocks, size } = await uploadBlocks(bytesBlocks(readFileSync(item.source)), uploader));
      } else {
        const fh = await open(item.source, "r");
        try {
          ({ blocks, size } = await uploadBlocks(fileBlocks(fh, st.size), uploader));
        } finally {
          await fh.close();
        }
      }
    } else if (item.source instanceof Uint8Array) {
      ({ blocks, size } = await uploadBlocks(bytesBlocks(item.source), uploader));
    } else {
      ({ blocks, size } = await uploadBlocks(rechunk(item.source), uploader));
    }
    return { path: item.remote, type: "file", mode, size, mtimeMs, blocks };
  }
}

function localStat(path: string) {
  try {
    return statSync(path);
  } catch (err) {
    throw new NotFoundError(`Local file '${path}' can not be read: ${(err as Error).message}`, "NOT_FOUND");
  }
}

async function walk(local: string, remote: string, out: Item[]): Promise<void> {
  const st = localStat(local);
  if (!st.isDirectory()) throw new InvalidError(`'${local}' is not a directory`, "INVALID");
  if (remote !== "") out.push({ kind: "directory", remote, mode: st.mode & 0o7777, mtimeMs: st.mtimeMs });
  for (const d of await readdir(local, { withFileTypes: true })) {
    const src = join(local, d.name);
    const dst = remote === "" ? d.name : `${remote}/${d.name}`;
    if (d.isDirectory()) await walk(src, dst, out);
    else if (d.isFile()) out.push({ kind: "file", source: src, remote: dst });
    else if (d.isSymbolicLink()) out.push({ kind: "symlink", remote: dst, target: await readlink(src), mtimeMs: (await lstat(src)).mtimeMs });
  }
}

/**
 * A file's blocks read with one big read each (the last one shorter), the next ones read ahead
 * while the caller hashes this one.
 */
async function* fileBlocks(fh: FileHandle, size: number): AsyncGenerator<Buffer> {
  const reads: Array<Promise<Buffer>> = [];
  let pos = 0;
  const readNext = () => {
    if (pos >= size) return;
    const p = readAt(fh, pos, Math.min(BLOCK_SIZE, size - pos));
    p.catch(() => {}); // awaited below; a failure after the caller stopped must not be unhandled
    reads.push(p);
    pos += BLOCK_SIZE;
  };
  for (let i = 0; i < PIPELINE_DEPTH - 1; i++) readNext();
  while (reads.length > 0) {
    const buf = await reads.shift()!;
    readNext();
    yield buf;
  }
}

async function readAt(fh: FileHandle, pos: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, pos + got);
    if (bytesRead === 0) throw new ConflictError("File shrank while it was being uploaded", "CONFLICT");
    got += bytesRead;
  }
  return buf;
}

function* bytesBlocks(data: Uint8Array): Generator<Buffer> {
  for (let pos = 0; pos < data.length; pos += BLOCK_SIZE) yield Buffer.from(data.subarray(pos, pos + BLOCK_SIZE));
}

/** Regroups a stream's chunks into BLOCK_SIZE blocks. */
async function* rechunk(source: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let held = 0;
  for await (const chunk of source) {
    let buf = Buffer.from(chunk);
    while (held + buf.length >= BLOCK_SIZE) {
      const take = BLOCK_SIZE - held;
      parts.push(buf.subarray(0, take));
      yield Buffer.concat(parts);
      buf = buf.subarray(take);
      parts = [];
      held = 0;
    }
    if (buf.length > 0) {
      parts.push(buf);
      held += buf.length;
    }
  }
  if (held > 0) yield Buffer.concat(parts);
}

/** Hands a file's blocks to the engine, a few hashing at once while the next are read. */
async function uploadBlocks(source: AsyncIterable<Buffer> | Iterable<Buffer>, uploader: BlockUploader): Promise<{ blocks: string[]; size: number }> {
  const hashes: Array<Promise<string>> = [];
  let size = 0;
  for await (const block of source) {
    const hash = uploader.add(block);
    hash.catch(() => {}); // awaited below
    hashes.push(hash);
    size += block.length;
    if (hashes.length >= PIPELINE_DEPTH) await hashes[hashes.length - PIPELINE_DEPTH];
  }
  return { blocks: await Promise.all(hashes), size };
}
