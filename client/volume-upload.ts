import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { lstat, open, readdir, readlink } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { ConflictError, InvalidError, NotFoundError } from "../protocol/errors.js";
import { BLOCK_SIZE, type Change, type ManifestEntry } from "../protocol/volume.js";
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

const SMALL_BLOCK = 1024 * 1024;
const SMALL_FILE = 1024 * 1024;
const GROUP_BYTES = 8 * 1024 * 1024;
const GROUP_BLOCKS = 512;

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
      const uploader = new BlockUploader(this.volume, this.opts.onProgress);
      const changes: Change[] = [];
      await forEachLimit(items, 8, async (item) => {
        changes.push({ op: "put", entry: await this.entry(item, uploader) });
      });
      await uploader.flush();
      // Touch every block again right before committing, so GC keeps even the earliest ones.
      const hashes = [...uploader.seen];
      for (let i = 0; i < hashes.length; i += 50_000) {
        const gone = await this.volume.missingBlocks(hashes.slice(i, i + 50_000));
        if (gone.length > 0) throw new ConflictError(`${gone.length} uploaded blocks were garbage-collected before the commit; retry the upload`, "CONFLICT");
      }
      // Parents before children, so directory entries come first.
      changes.sort((a, b) => ((a as { entry: ManifestEntry }).entry.path < (b as { entry: ManifestEntry }).entry.path ? -1 : 1));
      const baseVersion = await this.volume.latestVersion();
      const { version } = await this.volume.commitChanges({ baseVersion, changes, overwrite: this.opts.force ? "files" : "none" });
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
      if (st.size <= SMALL_FILE) {
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

/** A file's blocks read with one big read each (the last one shorter). */
async function* fileBlocks(fh: Awaited<ReturnType<typeof open>>, size: number): AsyncGenerator<Buffer> {
  for (let pos = 0; pos < size; pos += BLOCK_SIZE) {
    const buf = Buffer.allocUnsafe(Math.min(BLOCK_SIZE, size - pos));
    let got = 0;
    while (got < buf.length) {
      const { bytesRead } = await fh.read(buf, got, buf.length - got, pos + got);
      if (bytesRead === 0) throw new ConflictError("File shrank while it was being uploaded", "CONFLICT");
      got += bytesRead;
    }
    yield buf;
  }
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

async function uploadBlocks(source: AsyncIterable<Buffer> | Iterable<Buffer>, uploader: BlockUploader): Promise<{ blocks: string[]; size: number }> {
  const blocks: string[] = [];
  let size = 0;
  for await (const block of source) {
    const hash = createHash("sha256").update(block).digest("hex");
    blocks.push(hash);
    size += block.length;
    await uploader.add(hash, block);
  }
  return { blocks, size };
}

/**
 * Makes sure blocks exist on the server: queued blocks are grouped (one big block, or many
 * small ones), each group asks which are missing and uploads just those, several groups in
 * flight. `add` waits while too many bytes are held, which bounds memory.
 */
class BlockUploader {
  readonly seen = new Set<string>();
  private group: Array<{ hash: string; data: Buffer }> = [];
  private groupBytes = 0;
  private readonly inflight = new Set<Promise<void>>();
  private error: unknown;

  constructor(
    private readonly volume: Volume,
    private readonly onProgress?: (bytes: number) => void,
    private readonly maxGroups = 4,
  ) {}

  async add(hash: string, data: Buffer): Promise<void> {
    if (this.error) throw this.error;
    if (this.seen.has(hash)) {
      this.onProgress?.(data.length);
      return;
    }
    this.seen.add(hash);
    this.group.push({ hash, data });
    this.groupBytes += data.length;
    if (this.groupBytes >= GROUP_BYTES || this.group.length >= GROUP_BLOCKS) await this.send();
  }

  private async send(): Promise<void> {
    const group = this.group;
    const bytes = this.groupBytes;
    this.group = [];
    this.groupBytes = 0;
    if (group.length === 0) return;
    while (this.inflight.size >= this.maxGroups) await Promise.race(this.inflight);
    if (this.error) throw this.error;
    const p = this.upload(group).then(
      () => this.onProgress?.(bytes),
      (err: unknown) => {
        this.error ??= err;
      },
    );
    const tracked = p.finally(() => this.inflight.delete(tracked));
    this.inflight.add(tracked);
  }

  private async upload(group: Array<{ hash: string; data: Buffer }>): Promise<void> {
    const missing = new Set(await this.volume.missingBlocks(group.map((b) => b.hash)));
    const todo = group.filter((b) => missing.has(b.hash));
    const small = todo.filter((b) => b.data.length < SMALL_BLOCK);
    const large = todo.filter((b) => b.data.length >= SMALL_BLOCK);
    if (small.length > 0) await this.volume.uploadBlocks(small);
    for (const b of large) await this.volume.uploadBlock(b.hash, b.data);
  }

  async flush(): Promise<void> {
    await this.send();
    await Promise.all(this.inflight);
    if (this.error) throw this.error;
  }
}

/** Runs `fn` on every item, at most `limit` at a time; stops starting new ones after a failure. */
export async function forEachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      try {
        await fn(items[next++]!);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
