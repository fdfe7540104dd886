import { InvalidError, RangeNotSatisfiableError, SiloError } from "../protocol/errors.js";
import { checkName } from "../protocol/names.js";
import { commitMounted, reloadMounted } from "./mount-control.js";
import { type ObjectRecord, SiloObject } from "./object.js";
import { type EnvironmentOption, type FromNameOptions, ObjectService } from "./object-service.js";
import { envelope } from "../protocol/codec.js";
import type { BufferResponse } from "./buffer-connection.js";
import { LocalBlockWriter } from "./local-put.js";
import type { Transport } from "./transport.js";
import { VolumeBlocks } from "./volume-blocks.js";
import { type UploadBatchOptions, VolumeUploadBatch } from "./volume-upload.js";
import { type ByteRange, type DirectFileRead, type EntryType, type HistoryPage, type ManifestEntry, type RestoreResult, type TreePage, timeNsOf } from "../protocol/volume.js";
import { VOLUME_ROUTE_LIMITS } from "../protocol/volume-limits.js";

/** One node in a volume (file, directory, symlink or special file), as `listdir` / `iterdir` report it. */
export interface FileEntry {
  /** Path relative to the volume root, without a leading `/`. */
  path: string;
  /** `file`, `directory`, `symlink`, or a special file: `fifo`, `socket`, `char`, `block`. */
  type: EntryType;
  mtime: Date;
  /** Bytes (files; a symlink's target length; 0 for directories and special files). */
  size: number;
  /** Permission bits with setuid/setgid/sticky (e.g. 0o644, 0o2775); never the type bits. */
  mode: number;
  /** Owner and group (0, root, for entries stored without them). */
  uid: number;
  gid: number;
  /** Times in nanoseconds since the epoch (`mtime` is `mtimeNs` rounded down to the ms). */
  mtimeNs: bigint;
  atimeNs: bigint;
  ctimeNs: bigint;
  /** Symlinks: where the link points, verbatim. */
  target?: string;
  /** Char and block devices: the device number (Linux's encoding, as `st_rdev`). */
  rdev?: number;
  /** Hard links: the entries of one listing with the same `linkId` are one inode with several names. */
  linkId?: string;
  /** Extended attributes: name → value. */
  xattrs?: Record<string, Buffer>;
}

export interface VolumeInfo {
  id: string;
  name: string | null;
  environment: string;
  createdAt: Date;
  /** Latest committed version (0 = the empty volume at creation). */
  version: number;
  /** Oldest version still readable through `tree` / `delta` (older ones were garbage-collected). */
  oldestVersion: number;
  /** Files, directories and symlinks in the latest version. */
  inodes: number;
  inodeLimit: number;
}

export interface RecursiveOption {
  recursive?: boolean;
}

const READ_ONLY = "Read-only Volume can not be written to";

/**
 * A named, versioned file tree. Outside a mount, files are read and written through these
 * methods; every write lands as one commit (a new version). The block-level API a FUSE mount
 * builds on is apart, in `blocks` (VolumeBlocks).
 */
export class Volume extends SiloObject {
  private blockApi: VolumeBlocks | undefined;
  /** Whether the server answered a read with where the blocks are (an object-store backend). */
  private directReads = false;

  constructor(
    transport: Transport,
    record: ObjectRecord,
    /** True for a `readOnly()` handle: every write method throws InvalidError. */
    readonly isReadOnly = false,
  ) {
    super(transport, record);
  }

  private url(suffix: string): string {
    return `/v1/volumes/${this.id}${suffix}`;
  }

  private writable(): void {
    if (this.isReadOnly) throw new InvalidError(READ_ONLY, "INVALID");
  }

  /** A handle to the same volume on which every write method throws InvalidError. */
  readOnly(): Volume {
    // No heartbeat of its own: the original handle keeps an ephemeral volume alive.
    return new Volume(this.transport, { ...this.record, heartbeatIntervalMs: undefined }, true);
  }

  /** A read-only handle never deletes the (ephemeral) volume; the original handle does. */
  override async close(): Promise<void> {
    if (!this.isReadOnly) await super.close();
  }

  async info(): Promise<VolumeInfo> {
    const res = await this.rpc<Omit<VolumeInfo, "createdAt"> & { createdAt: number }>("GET", this.url("/info"));
    return { ...res, createdAt: new Date(res.createdAt) };
  }

  // --- The volume's mounts (`silo run -v` in a job, else `silo volume mount` here), through their control sockets ---

  /**
   * Commits the changes made on the volume's mounts, so other mounts see them after their next
   * reload: in a job (`silo run`) its own mounts of the volume, elsewhere the mounts made on this
   * machine by `silo volume mount`. Background commits and the final commit at exit happen
   * anyway. InvalidError when no mount of the volume is reachable.
   */
  async commit(): Promise<void> {
    await commitMounted(this.id, this.name);
  }

  /**
   * Switches the volume's mounts (as for `commit()`) to the latest committed version (committing
   * their pending changes first). VolumeBusyError while files are open on a mount; InvalidError
   * when no mount of the volume is reachable.
   */
  async reload(): Promise<void> {
    await reloadMounted(this.id, this.name);
  }

  /**
   * The block-level API (trees, deltas, blocks, commits of manifest changes, version pins):
   * what a FUSE mount and batch uploads build on. Jobs use the file-level methods below.
   */
  get blocks(): VolumeBlocks {
    this.blockApi ??= new VolumeBlocks(this.transport, this);
    return this.blockApi;
  }

  // --- File-level API (no mount needed) ---

  /**
   * Entries under `path` (recursive: all descendants, default: direct children), in path
   * order, page by page. A file path yields just that file; a missing path NotFoundError.
   */
  async *iterdir(path: string, opts: RecursiveOption = {}): AsyncGenerator<FileEntry> {
    let after: string | undefined;
    do {
      const page = await this.rpc<TreePage>("GET", this.url("/list"), undefined, {
        query: { path, recursive: opts.recursive ?? true, after, limit: VOLUME_ROUTE_LIMITS.defaultPage },
      });
      for (const e of page.entries) yield toFileEntry(e);
      after = page.next;
    } while (after !== undefined);
  }

  /** Like `iterdir`, collected into an array; not recursive unless asked. */
  async listdir(path: string, opts: RecursiveOption = {}): Promise<FileEntry[]> {
    const out: FileEntry[] = [];
    for await (const e of this.iterdir(path, { recursive: opts.recursive ?? false })) out.push(e);
    return out;
  }

  /**
   * A file's bytes as a stream of chunks, optionally only `start`..`end` (exclusive). With an
   * object-store backend the server says where the blocks are and the bytes come from the store.
   */
  async *readFile(path: string, opts: Partial<ByteRange> & { version?: number } = {}): AsyncGenerator<Buffer> {
    let start = opts.start ?? 0;
    if (opts.end !== undefined && opts.end <= start) return;
    let version = opts.version;
    for (;;) {
      const range = opts.start !== undefined || opts.end !== undefined || start > 0 ? `bytes=${start}-${opts.end !== undefined ? opts.end - 1 : ""}` : undefined;
      const res = await this.raw("GET", this.url("/file"), {
        query: { path, version },
        headers: { "x-silo-direct": "1", ...(range ? { range } : {}) },
      }).catch((err: unknown) => {
        // Reading at or past the end yields nothing, as reading a file does (the server answers 416).
        if (err instanceof RangeNotSatisfiableError) return undefined;
        throw err;
      });
      if (!res) return;
      if (res.headers["x-silo-direct"] !== "1") {
        for await (const chunk of res.body as AsyncIterable<Buffer>) yield chunk;
        return;
      }
      const plan = envelope.unpack(Buffer.from(await res.body.arrayBuffer())) as DirectFileRead;
      for (const part of plan.parts) {
        if (part.data) {
          if (part.data.length !== part.end - part.start) throw new SiloError(`'${path}': a block held ${part.data.length} of the ${part.end - part.start} bytes the file needs from it`, "INTERNAL");
          yield Buffer.from(part.data);
          continue;
        }
        if (part.zeros) {
          yield Buffer.alloc(part.end - part.start);
          continue;
        }
        const got = await this.transport.external({ method: "GET", url: part.url!, headers: { range: `bytes=${part.start}-${part.end - 1}` } });
        let n = 0;
        for await (const chunk of got.body as AsyncIterable<Buffer>) {
          n += chunk.length;
          yield chunk;
        }
        // A block shorter than the file says (a manifest from before commits were checked): fail, never hand back a short file.
        if (n !== part.end - part.start) throw new SiloError(`'${path}': a block held ${n} of the ${part.end - part.start} bytes the file needs from it`, "INTERNAL");
      }
      if (plan.next === undefined) return;
      // The rest of the range, from the same version.
      start = plan.next;
      version = plan.version;
    }
  }

  /**
   * Bytes `start`..`end` (exclusive) of a file, as of `version` (default: the latest), read into
   * `into` from its offset 0: for downloads of large files, where the bytes then go on to a
   * file. Over plain http the kernel reads them straight into `into` (no per-chunk buffers);
   * otherwise, or when the blocks live in an object store, they come as `readFile` yields
   * them. Answers the count read (short only at the end of the file) and the version read
   * (undefined only when the object store served it; pass it back to read the rest of the same
   * file).
   */
  async readFileInto(path: string, range: ByteRange & { version?: number }, into: Buffer): Promise<{ bytes: number; version: number | undefined }> {
    const want = range.end - range.start;
    if (want > into.length) throw new InvalidError(`A buffer of ${into.length} bytes can not take ${want}`, "INVALID");
    if (want <= 0) return { bytes: 0, version: range.version };
    if (!this.directReads) {
      let res: BufferResponse | undefined;
      try {
        res = await this.transport.getInto(
          this.url("/file"),
          { environment: this.environment, query: { path, version: range.version }, headers: { "x-silo-direct": "1", range: `bytes=${range.start}-${range.end - 1}` } },
          into,
        );
      } catch (err) {
        // Reading at or past the end yields nothing, as with readFile.
        if (err instanceof RangeNotSatisfiableError) return { bytes: 0, version: range.version };
        throw err;
      }
      if (res?.headers["x-silo-direct"] === "1") this.directReads = true;
      else if (res) return { bytes: checkedRange(path, range, res), version: Number(res.headers["x-silo-version"]) };
    }
    let bytes = 0;
    for await (const chunk of this.readFile(path, range)) {
      if (bytes + chunk.length > want) throw new SiloError(`'${path}': the server sent more than the ${want} bytes asked for`, "INTERNAL");
      bytes += chunk.copy(into, bytes);
    }
    return { bytes, version: range.version };
  }

  /**
   * Several whole small files (each ≤ 1 MiB, up to 1,000) in one request: for fetching many
   * small files, where a request per file would dominate. Larger files: `readFile`.
   */
  async readSmallFiles(paths: string[]): Promise<Array<{ path: string; data: Buffer }>> {
    if (paths.length === 0) return [];
    return (await this.rpc<{ files: Array<{ path: string; data: Buffer }> }>("POST", this.url("/files"), { paths })).files;
  }

  /** Removes a file or symlink, or a directory (non-empty ones only with `recursive`). */
  async removeFile(path: string, opts: RecursiveOption = {}): Promise<void> {
    this.writable();
    await this.rpc("POST", this.url("/remove"), { path, recursive: opts.recursive ?? false });
  }

  /**
   * Copies within the volume with UNIX `cp` semantics: into `dst` if it is a directory (or
   * ends in `/`), else onto it. Server-side: the copies share blocks, no data moves.
   */
  async copyFiles(srcPaths: string[], dst: string, opts: RecursiveOption = {}): Promise<void> {
    this.writable();
    await this.rpc("POST", this.url("/copy"), { srcPaths, dst, recursive: opts.recursive ?? false });
  }

  // --- Versions ---

  /**
   * Retained versions, newest first: when, which token, what each put and removed. With `path`,
   * only versions that changed that path or anything below it. Page on with `before: page.next`.
   */
  history(opts: { path?: string; before?: number; limit?: number } = {}): Promise<HistoryPage> {
    return this.rpc<HistoryPage>("GET", this.url("/history"), undefined, { query: { path: opts.path, before: opts.before, limit: opts.limit } });
  }

  /**
   * Brings `path` (default: the whole volume) back to what it was in `version`, as a new commit
   * (VersionGoneError if that version is no longer retained; NotFoundError if the path did not
   * exist in it). Only what differs is changed; blocks are shared, no data moves.
   */
  async restore(version: number, path?: string): Promise<RestoreResult> {
    this.writable();
    return this.rpc<RestoreResult>("POST", this.url("/restore"), { version, path });
  }

  /**
   * A new named volume holding `version` of this one (default: the latest), in the same
   * environment. No bytes are copied: both volumes share the blocks.
   */
  async fork(newName: string, opts: { version?: number } = {}): Promise<Volume> {
    checkName(newName);
    const record = await this.rpc<ObjectRecord>("POST", this.url("/fork"), { name: newName, version: opts.version });
    return new Volume(this.transport, record);
  }

  /**
   * Starts a batch of uploads that lands as ONE commit: `await batch.commit()` (or `await
   * using batch = vol.batchUpload()`). Without `force`, an existing file is an error and
   * nothing lands.
   */
  batchUpload(opts: UploadBatchOptions = {}): VolumeUploadBatch {
    this.writable();
    // Large files on the server's host go by their fd (client/local-put.ts) when it offers that.
    return new VolumeUploadBatch(this, opts, new LocalBlockWriter(this.transport, this.environment));
  }
}

/** The body length of a ranged answer, once its status and Content-Range say it holds the bytes asked for: bytes from elsewhere must never land at this offset. */
function checkedRange(path: string, range: ByteRange, res: BufferResponse): number {
  const m = /^bytes (\d+)-(\d+)\/\d+$/.exec(res.headers["content-range"] ?? "");
  const bytes = m ? Number(m[2]) + 1 - Number(m[1]) : -1;
  if (res.statusCode !== 206 || Number(m?.[1]) !== range.start || bytes !== res.bytes || bytes > range.end - range.start || !/^\d+$/.test(res.headers["x-silo-version"] ?? "")) {
    throw new SiloError(`'${path}': the server answered ${res.statusCode} (${res.headers["content-range"] ?? "no range"}) to a read of bytes ${range.start}-${range.end - 1}`, "INTERNAL");
  }
  return bytes;
}

function toFileEntry(e: ManifestEntry): FileEntry {
  const mtimeNs = timeNsOf(e.mtimeNs, e.mtimeMs);
  const out: FileEntry = {
    path: e.path,
    type: e.type,
    mtime: new Date(e.mtimeMs),
    size: e.size,
    mode: e.mode,
    uid: e.uid ?? 0,
    gid: e.gid ?? 0,
    mtimeNs,
    // Entries written before ns times have one time: the mtime stands for all three.
    atimeNs: e.atimeNs !== undefined ? BigInt(e.atimeNs) : mtimeNs,
    ctimeNs: e.ctimeNs !== undefined ? BigInt(e.ctimeNs) : mtimeNs,
  };
  if (e.target !== undefined) out.target = e.target;
  if (e.rdev !== undefined) out.rdev = e.rdev;
  if (e.linkId !== undefined) out.linkId = e.linkId;
  if (e.xattrs !== undefined) out.xattrs = Object.fromEntries(Object.entries(e.xattrs).map(([k, v]) => [k, Buffer.from(v, "base64")]));
  return out;
}

export interface VolumeCreateOptions {
  /** Most files + directories + symlinks the volume may hold (default 10,000,000). */
  inodeLimit?: number;
}

/** `silo.volumes`: named and ephemeral volumes. */
export class VolumeService extends ObjectService<Volume> {
  constructor(transport: Transport) {
    super(transport, "volume");
  }

  protected wrap(record: ObjectRecord): Volume {
    return new Volume(this.transport, record);
  }

  /** The named volume (created with `createIfMissing`, with `inodeLimit` if given). */
  fromName(name: string, opts: FromNameOptions & VolumeCreateOptions = {}): Promise<Volume> {
    return this.lookup(name, opts, createOptions(opts));
  }

  /** An anonymous volume that lives until `close()` / `await using` ends. */
  ephemeral(opts: EnvironmentOption & VolumeCreateOptions = {}): Promise<Volume> {
    return this.createEphemeral(opts, createOptions(opts));
  }

  /** A new volume `newName` holding `version` of volume `name` (default: its latest); blocks are shared, no bytes copied. */
  async fork(name: string, newName: string, opts: EnvironmentOption & { version?: number } = {}): Promise<Volume> {
    const source = await this.fromName(name, { environment: opts.environment });
    return source.fork(newName, { version: opts.version });
  }

  /** Renames a named volume (AlreadyExistsError if `newName` is taken). */
  rename(name: string, newName: string, opts: EnvironmentOption = {}): Promise<void> {
    return this.objects.rename(name, newName, opts);
  }
}

const createOptions = (opts: VolumeCreateOptions) => (opts.inodeLimit === undefined ? {} : { inodeLimit: opts.inodeLimit });

