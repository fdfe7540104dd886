import { constants } from "node:fs";
import type { Attr, StatfsReply } from "../kernel/types.js";
import { FsError, NegativeErrno } from "../common/errno.js";
import type { BucketS3 } from "./bucket-s3.js";
import { DEFAULT_METADATA_TTL_MS, DEFAULT_PART_SIZE } from "./config.js";
import { KeyMap } from "./key-map.js";
import { type Entry, Metadata, baseName, parentOf } from "./metadata.js";
import { ObjectReader, readAheadPool } from "./object-reader.js";
import { ObjectWriter } from "./object-writer.js";

type ReadHandle = { kind: "read"; path: string; reader: ObjectReader };
/**
 * `writer` is unset while an existing file was opened for writing without O_TRUNC: only truncation
 * to 0 may follow. `closing`: write-back has taken the upload over (once per handle).
 */
type WriteHandle = { kind: "write"; path: string; writer?: ObjectWriter; closing?: Promise<void> };
type Handle = ReadHandle | WriteHandle;

export interface BucketFsOptions {
  prefix: string;
  readOnly: boolean;
  metadataTtlMs?: number;
  partSizeBytes?: number;
  /**
   * Complete uploads in the background after close (like rclone's write-back) instead of before
   * close returns. fsync still waits. Off by default: then close returns only once the file is in
   * the bucket, and an upload error is close's error.
   */
  writeBack?: boolean;
  log: (msg: string) => void;
}

const MAX_BACKGROUND_UPLOADS = 32;
/** A file's or directory's attributes (the inode number is the FUSE layer's). */
export type Stat = Omit<Attr, "ino">;

const FILE_MODE = 0o100644;
const DIR_MODE = 0o040755;

/**
 * The file system face of a bucket, with mountpoint-s3's semantics: reads anywhere; writes
 * only to new files (or truncated ones), sequentially, visible on close/fsync; no renames,
 * links, symlinks, mode or owner changes. Every op is async and never touches the mount itself.
 */
export class BucketFs {
  readonly meta: Metadata;
  private readonly handles = new Map<number, Handle>();
  private readonly writing = new Map<string, WriteHandle>();
  /** Write-back: uploads completing after their file was closed, by path. */
  private readonly uploads = new Map<string, Promise<void>>();
  private nextFd = 1;
  private readonly uid = process.getuid?.() ?? 0;
  private readonly gid = process.getgid?.() ?? 0;
  private readonly keys: KeyMap;
  private readonly partSize: number;
  private readonly readAhead = readAheadPool();

  constructor(
    private readonly s3: BucketS3,
    private readonly opts: BucketFsOptions,
  ) {
    this.keys = new KeyMap(opts.prefix);
    this.meta = new Metadata(s3, this.keys, opts.metadataTtlMs ?? DEFAULT_METADATA_TTL_MS);
    this.partSize = opts.partSizeBytes ?? DEFAULT_PART_SIZE;
  }

  /** A write-back upload of `path` still running: wait for it before touching the path again. */
  private async settled(path: string): Promise<void> {
    await this.uploads.get(path)?.catch(() => {});
  }

  private stat(entry: Entry): Stat {
    const time = entry.mtimeMs;
    const base = { uid: this.uid, gid: this.gid, atimeMs: time, mtimeMs: time, ctimeMs: time };
    if (entry.type === "dir") return { ...base, mode: DIR_MODE, size: 4096, nlink: 2 };
    return { ...base, mode: FILE_MODE, size: entry.size, nlink: 1, blksize: 1024 * 1024, blocks: Math.ceil(entry.size / 512) };
  }

  /** EROFS on a read-only mount (for changes that are otherwise accepted and ignored, like times). */
  refuseIfReadOnly(what: string, path: string): void {
    if (this.opts.readOnly) throw new FsError(NegativeErrno.EROFS, `${what} ${path}: the mount is read-only`);
  }

  /** The entry at `path`, counting files being written here (visible to this mount at once, with their growing size). */
  private async entry(path: string): Promise<Entry | null> {
    const w = this.writing.get(path);
    if (w?.writer) return { type: "file", size: w.writer.size, mtimeMs: Date.now() };
    return this.meta.lookup(path);
  }

  private handle(fd: number): Handle {
    const h = this.handles.get(fd);
    if (!h) throw new FsError(NegativeErrno.EBADF, `no open file ${fd}`);
    return h;
  }

  private addHandle(h: Handle): number {
    const fd = this.nextFd++;
    this.handles.set(fd, h);
    if (h.kind === "write") this.writing.set(h.path, h);
    return fd;
  }

  async getattr(path: string): Promise<Stat> {
    const entry = await this.entry(path);
    if (!entry) throw new FsError(NegativeErrno.ENOENT, `${path}: no such file or directory`);
    return this.stat(entry);
  }

  async readdir(path: string): Promise<string[]> {
    const entry = await this.entry(path);
    if (!entry) throw new FsError(NegativeErrno.ENOENT, `${path}: no such directory`);
    if (entry.type !== "dir") throw new FsError(NegativeErrno.ENOTDIR, `${path}: not a directory`);
    const entries = await this.meta.list(path);
    for (const [p, w] of this.writing) if (w.writer && parentOf(p) === path) entries.set(baseName(p), { type: "file", size: w.writer.size, mtimeMs: Date.now() });
    return [...entries.keys()];
  }

  async open(path: string, flags: number): Promise<number> {
    await this.settled(path);
    const access = flags & 3; // O_ACCMODE
    const entry = await this.entry(path);
    if (!entry) throw new FsError(NegativeErrno.ENOENT, `${path}: no such file`);
    if (entry.type === "dir") throw new FsError(NegativeErrno.EISDIR, `${path}: is a directory`);
    if (access === constants.O_RDONLY || (access === constants.O_RDWR && !(flags & constants.O_TRUNC))) {
      if (this.writing.get(path)?.writer) throw new FsError(NegativeErrno.EPERM, `${path}: cannot read a file while it is being written`);
      return this.addHandle({ kind: "read", path, reader: new ObjectReader(this.s3, this.keys.fileKey(path), entry.size, this.readAhead) });
    }
    this.refuseIfReadOnly("open for writing", path);
    if (flags & constants.O_APPEND) throw new FsError(NegativeErrno.EPERM, `${path}: append is not supported on a bucket mount (write a new file instead)`);
    if (this.writing.has(path)) throw new FsError(NegativeErrno.EPERM, `${path}: already open for writing`);
    const writer = flags & constants.O_TRUNC ? new ObjectWriter(this.s3, this.keys.fileKey(path), this.partSize) : undefined;
    return this.addHandle({ kind: "write", path, writer });
  }

  async create(path: string): Promise<number> {
    this.refuseIfReadOnly("create", path);
    await this.settled(path);
    if (this.writing.has(path)) throw new FsError(NegativeErrno.EPERM, `${path}: already open for writing`);
    const parent = await this.entry(parentOf(path));
    if (parent?.type !== "dir") throw new FsError(NegativeErrno.ENOENT, `${parentOf(path)}: no such directory`);
    return this.addHandle({ kind: "write", path, writer: new ObjectWriter(this.s3, this.keys.fileKey(path), this.partSize) });
  }

  async read(fd: number, buf: Buffer, len: number, pos: number): Promise<number> {
    const h = this.handle(fd);
    if (h.kind !== "read") throw new FsError(NegativeErrno.EBADF, `${h.path}: not open for reading`);
    return h.reader.readInto(buf, pos, len);
  }

  async write(fd: number, buf: Buffer, len: number, pos: number): Promise<number> {
    const h = this.handle(fd);
    if (h.kind !== "write" || !h.writer) throw new FsError(NegativeErrno.EPERM, `${h.path}: an existing file can only be overwritten when opened with O_TRUNC`);
    await h.writer.write(buf, len, pos);
    return len;
  }

  /**
   * close() and fsync() make the file visible: the upload completes now. A flush before any
   * byte was written is ignored: shells open, dup2 and close the original fd before writing.
   */
  async finishWrite(fd: number, why: "flush" | "fsync" | "release"): Promise<void> {
    const h = this.handles.get(fd);
    if (h?.kind !== "write" || !h.writer) return;
    if (why === "flush" && h.writer.size === 0) return;
    if (this.opts.writeBack && why !== "fsync") {
      h.closing ??= this.finishInBackground(h);
      return h.closing;
    }
    const wasFinished = h.writer.finished;
    try {
      await h.writer.finish();
    } catch (err) {
      this.meta.invalidate(h.path);
      throw err;
    }
    if (!wasFinished) this.meta.noteFile(h.path, h.writer.size);
  }

  /**
   * Write-back: the upload completes after close; the file stays visible here (with its size)
   * meanwhile. Past MAX_BACKGROUND_UPLOADS unfinished uploads, close waits (their last parts are
   * in memory, and the writer should not run far ahead of the store).
   */
  private async finishInBackground(h: WriteHandle): Promise<void> {
    while (this.uploads.size >= MAX_BACKGROUND_UPLOADS) await Promise.race(this.uploads.values()).catch(() => {});
    const writer = h.writer!;
    const upload = writer.finish().then(
      () => this.meta.noteFile(h.path, writer.size),
      (err: Error) => {
        this.opts.log(`write-back upload of ${h.path} failed, the file is lost: ${err.message}`);
        this.meta.invalidate(h.path);
      },
    );
    const tracked = upload.finally(() => {
      if (this.uploads.get(h.path) === tracked) this.uploads.delete(h.path);
      if (this.writing.get(h.path) === h) this.writing.delete(h.path);
    });
    this.uploads.set(h.path, tracked);
  }

  async release(fd: number): Promise<void> {
    const h = this.handles.get(fd);
    if (!h) return;
    try {
      if (h.kind === "write") await this.finishWrite(fd, "release");
      else h.reader.close();
    } finally {
      this.handles.delete(fd);
      // A write-back upload still running keeps the file visible; it removes the entry when done.
      if (h.kind === "write" && this.writing.get(h.path) === h && !h.closing) this.writing.delete(h.path);
    }
  }

  /** Only truncation to 0 of a file just opened for writing (what O_TRUNC becomes on the way through the kernel). */
  async truncate(path: string, size: number, fd?: number): Promise<void> {
    this.refuseIfReadOnly("truncate", path);
    const h = fd !== undefined ? this.handles.get(fd) : this.writing.get(path);
    if (h?.kind === "write" && size === 0) {
      if (!h.writer) h.writer = new ObjectWriter(this.s3, this.keys.fileKey(path), this.partSize);
      if (h.writer.size === 0 && !h.writer.finished) return;
    }
    throw new FsError(NegativeErrno.EPERM, `${path}: truncate is only supported to size 0 on a file being opened for writing`);
  }

  async unlink(path: string): Promise<void> {
    this.refuseIfReadOnly("unlink", path);
    await this.settled(path);
    if (this.writing.get(path)?.writer) throw new FsError(NegativeErrno.EPERM, `${path}: cannot delete a file while it is being written`);
    const entry = await this.entry(path);
    if (!entry) throw new FsError(NegativeErrno.ENOENT, `${path}: no such file`);
    if (entry.type === "dir") throw new FsError(NegativeErrno.EISDIR, `${path}: is a directory`);
    await this.s3.delete(this.keys.fileKey(path));
    this.meta.noteDeleted(path);
  }

  async mkdir(path: string): Promise<void> {
    this.refuseIfReadOnly("mkdir", path);
    if (await this.entry(path)) throw new FsError(NegativeErrno.EEXIST, `${path}: exists`);
    this.meta.addLocalDir(path);
  }

  async rmdir(path: string): Promise<void> {
    this.refuseIfReadOnly("rmdir", path);
    const entry = await this.entry(path);
    if (!entry) throw new FsError(NegativeErrno.ENOENT, `${path}: no such directory`);
    if (entry.type !== "dir") throw new FsError(NegativeErrno.ENOTDIR, `${path}: not a directory`);
    if (path === "/") throw new FsError(NegativeErrno.EBUSY, "cannot remove the mount's root");
    if (this.meta.isLocalDir(path)) {
      if (this.meta.hasLocalChildren(path) || [...this.writing.keys()].some((p) => parentOf(p) === path)) {
        throw new FsError(NegativeErrno.ENOTEMPTY, `${path}: directory not empty`);
      }
      this.meta.removeLocalDir(path);
      return;
    }
    throw new FsError(NegativeErrno.ENOTEMPTY, `${path}: directory not empty (a directory in the bucket exists while keys are under it)`);
  }

  statfs(): StatfsReply {
    const huge = 2 ** 32 - 1;
    return { bsize: 1024 * 1024, frsize: 1024 * 1024, blocks: huge, bfree: huge, bavail: huge, files: huge, ffree: huge, namelen: 255 };
  }

  /**
   * Shutdown, while still mounted: waits until files being written are closed and their uploads
   * (also write-back ones) are complete, or until the deadline. The mount must stay live meanwhile:
   * the kernel drops releases still queued when it is unmounted.
   */
  async drain(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((this.writing.size > 0 || this.uploads.size > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  }

  /** After unmount: files still open for writing will never be closed; their uploads are dropped. */
  async abortPending(): Promise<void> {
    for (const w of this.writing.values()) {
      if (w.writer && !w.writer.finished) {
        this.opts.log(`${w.path}: still open for writing at unmount; its upload is aborted`);
        await w.writer.abort();
      }
    }
    await Promise.all(this.uploads.values());
  }
}
