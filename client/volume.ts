import { InvalidError } from "../protocol/errors.js";
import { commitMounted, reloadMounted } from "./mount-control.js";
import { type ObjectRecord, SiloObject } from "./object.js";
import { type EnvironmentOption, type FromNameOptions, ObjectService } from "./object-service.js";
import { envelope } from "../protocol/codec.js";
import type { Transport } from "./transport.js";
import { VolumeBlocks } from "./volume-blocks.js";
import { type UploadBatchOptions, VolumeUploadBatch } from "./volume-upload.js";
import type { ByteRange, DirectFileRead, EntryType, ManifestEntry, TreePage } from "../protocol/volume.js";

/** One file, directory or symlink in a volume, as `listdir` / `iterdir` report it. */
export interface FileEntry {
  /** Path relative to the volume root, without a leading `/`. */
  path: string;
  type: EntryType;
  mtime: Date;
  /** Bytes (0 for directories). */
  size: number;
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

  // --- In a job: the volume's mounts (`silo run -v`), through their control sockets ---

  /**
   * Commits the changes made on this job's mounts of the volume, so other mounts see them after
   * their next reload. Background commits and the final commit at exit happen anyway; outside a
   * mount this is a no-op.
   */
  async commit(): Promise<void> {
    await commitMounted(this.id);
  }

  /**
   * Switches this job's mounts of the volume to the latest committed version (committing their
   * pending changes first). VolumeBusyError while files are open on a mount; InvalidError when
   * the volume is not mounted in this job.
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
        query: { path, recursive: opts.recursive ?? true, after, limit: 1000 },
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
  async *readFile(path: string, opts: Partial<ByteRange> = {}): AsyncGenerator<Buffer> {
    let start = opts.start ?? 0;
    if (opts.end !== undefined && opts.end <= start) return;
    let version: number | undefined;
    for (;;) {
      const range = opts.start !== undefined || opts.end !== undefined || start > 0 ? `bytes=${start}-${opts.end !== undefined ? opts.end - 1 : ""}` : undefined;
      const res = await this.raw("GET", this.url("/file"), {
        query: { path, version },
        headers: { "x-silo-direct": "1", ...(range ? { range } : {}) },
      });
      if (res.headers["x-silo-direct"] !== "1") {
        for await (const chunk of res.body as AsyncIterable<Buffer>) yield chunk;
        return;
      }
      const plan = envelope.unpack(Buffer.from(await res.body.arrayBuffer())) as DirectFileRead;
      for (const part of plan.parts) {
        if (part.data) {
          yield Buffer.from(part.data);
          continue;
        }
        const got = await this.transport.external({ method: "GET", url: part.url!, headers: { range: `bytes=${part.start}-${part.end - 1}` } });
        for await (const chunk of got.body as AsyncIterable<Buffer>) yield chunk;
      }
      if (plan.next === undefined) return;
      // The rest of the range, from the same version.
      start = plan.next;
      version = plan.version;
    }
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

  /**
   * Starts a batch of uploads that lands as ONE commit: `await batch.commit()` (or `await
   * using batch = vol.batchUpload()`). Without `force`, an existing file is an error and
   * nothing lands.
   */
  batchUpload(opts: UploadBatchOptions = {}): VolumeUploadBatch {
    this.writable();
    return new VolumeUploadBatch(this, opts);
  }
}

function toFileEntry(e: ManifestEntry): FileEntry {
  return { path: e.path, type: e.type, mtime: new Date(e.mtimeMs), size: e.size };
}

export interface VolumeCreateOptions {
  /** Most files + directories + symlinks the volume may hold (default 500,000). */
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

  /** Renames a named volume (AlreadyExistsError if `newName` is taken). */
  rename(name: string, newName: string, opts: EnvironmentOption = {}): Promise<void> {
    return this.objects.rename(name, newName, opts);
  }
}

const createOptions = (opts: VolumeCreateOptions) => (opts.inodeLimit === undefined ? {} : { inodeLimit: opts.inodeLimit });

