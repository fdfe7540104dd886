import { InvalidError } from "../protocol/errors.js";
import { commitMounted, reloadMounted } from "./mount-control.js";
import { type ObjectRecord, SiloObject } from "./object.js";
import { type EnvironmentOption, type FromNameOptions, ObjectService } from "./object-service.js";
import { type Transport, envelope } from "./transport.js";
import { type UploadBatchOptions, VolumeUploadBatch, forEachLimit } from "./volume-upload.js";
import {
  type CommitRequest,
  type CommitResult,
  type Delta,
  type DirectFileRead,
  type DirectUploadPlan,
  type EntryType,
  INLINE_BLOCK_MAX,
  type ManifestEntry,
  type TreePage,
  type VersionPin,
} from "../protocol/volume.js";

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

/** A byte range: `start` inclusive, `end` exclusive. */
export interface ByteRange {
  start: number;
  end: number;
}

const READ_ONLY = "Read-only Volume can not be written to";

/**
 * A named, versioned file tree. Outside a mount, files are read and written through these
 * methods; every write lands as one commit (a new version). The block-level methods
 * (`tree`, `delta`, `readBlock`, `missingBlocks`, `uploadBlock`, `commitChanges`) are what a
 * FUSE mount builds on.
 */
export class Volume extends SiloObject {
  /** Whether the server takes block uploads straight to its object store (learnt on first use). */
  private directUploads: boolean | undefined;

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

  // --- The block-level API (what a mount uses) ---

  async latestVersion(): Promise<number> {
    return (await this.rpc<{ version: number }>("GET", this.url("/version"))).version;
  }

  /** One page of a version's full tree, in path order; pass `next` back as `after`. */
  tree(version: number, opts: { after?: string; limit?: number } = {}): Promise<TreePage> {
    return this.rpc<TreePage>("GET", this.url("/tree"), undefined, { query: { version, after: opts.after, limit: opts.limit } });
  }

  /** The changes that turn version `from` into `to` (VersionGoneError if `from` is no longer retained). */
  delta(from: number, to: number): Promise<Delta> {
    return this.rpc<Delta>("GET", this.url("/delta"), undefined, { query: { from, to } });
  }

  /**
   * A block's bytes, or `range` of them (`end` exclusive). With an object-store backend the
   * server answers with a presigned URL and the bytes come straight from the store.
   */
  async readBlock(hash: string, range?: ByteRange): Promise<Buffer> {
    if (range && range.end <= range.start) return Buffer.alloc(0);
    const headers = range ? { range: `bytes=${range.start}-${range.end - 1}` } : undefined;
    let res = await this.raw("GET", this.url(`/blocks/${hash}`), { headers, redirects: true });
    if (res.statusCode >= 300) {
      await res.body.dump();
      res = await this.transport.external({ method: "GET", url: res.headers.location as string, headers });
    }
    return Buffer.from(await res.body.arrayBuffer());
  }

  /** Which of these block hashes the server lacks (the others count as recently used, so GC keeps them). */
  async missingBlocks(hashes: string[]): Promise<string[]> {
    if (hashes.length === 0) return [];
    return (await this.rpc<{ missing: string[] }>("POST", this.url("/blocks/missing"), { hashes })).missing;
  }

  /**
   * Uploads one block (at most BLOCK_SIZE bytes); its SHA-256 is verified (by the server, or by
   * the object store when the block goes there directly).
   */
  async uploadBlock(hash: string, data: Uint8Array): Promise<void> {
    this.writable();
    if (data.length > INLINE_BLOCK_MAX && (await this.uploadDirect([{ hash, data }]))) return;
    const res = await this.raw("PUT", this.url(`/blocks/${hash}`), {
      body: data,
      headers: { "content-type": "application/octet-stream" },
    });
    await res.body.dump();
  }

  /** Uploads several small blocks in one request (with an object-store backend, the larger ones go there directly). */
  async uploadBlocks(blocks: Array<{ hash: string; data: Uint8Array }>): Promise<void> {
    this.writable();
    const large = blocks.filter((b) => b.data.length > INLINE_BLOCK_MAX);
    if (large.length > 0 && (await this.uploadDirect(large))) blocks = blocks.filter((b) => b.data.length <= INLINE_BLOCK_MAX);
    if (blocks.length > 0) await this.rpc("POST", this.url("/blocks"), { blocks });
  }

  /**
   * Sends blocks straight to the object store with requests the server signs, then has the
   * server record them; false (nothing sent) if the server keeps blocks itself.
   */
  private async uploadDirect(blocks: Array<{ hash: string; data: Uint8Array }>): Promise<boolean> {
    if (this.directUploads === false) return false;
    const byHash = new Map(blocks.map((b) => [b.hash, b.data]));
    const hashes = [...byHash.keys()];
    for (let i = 0; i < hashes.length; i += 1000) {
      const part = hashes.slice(i, i + 1000);
      const plan = await this.rpc<DirectUploadPlan>("POST", this.url("/blocks/direct-uploads"), { hashes: part });
      this.directUploads = plan.direct;
      if (!plan.direct) return false;
      await forEachLimit(plan.uploads, 8, async (u) => {
        const res = await this.transport.external({ method: u.method, url: u.url, headers: u.headers, body: byHash.get(u.hash)! });
        await res.body.dump();
      });
      await this.rpc("POST", this.url("/blocks/confirm"), { hashes: part });
    }
    return true;
  }

  /**
   * Commits changes against `baseVersion` as one new version (all or nothing). Blocks must
   * have been uploaded. NoSpaceError past the inode or directory limit.
   */
  async commitChanges(req: CommitRequest & { overwrite?: "replace" | "files" | "none" }): Promise<CommitResult> {
    this.writable();
    return this.rpc<CommitResult>("POST", this.url("/commit"), req);
  }

  /**
   * Pins `version` (default: the latest) so garbage collection keeps it readable, blocks and
   * all, while the pin lives: renew it within `ttlMs` (`renewPin`), `unpin` when done. What a
   * mount does for the version it serves. VersionGoneError if GC already dropped that version.
   */
  pinVersion(version?: number): Promise<VersionPin> {
    return this.rpc<VersionPin>("POST", this.url("/pins"), version === undefined ? {} : { version });
  }

  /** Extends a pin, moving it to `version` if given. NotFoundError once it lapsed; VersionGoneError for a dropped version. */
  renewPin(pinId: string, version?: number): Promise<VersionPin> {
    return this.rpc<VersionPin>("PUT", this.url(`/pins/${encodeURIComponent(pinId)}`), version === undefined ? {} : { version });
  }

  /** Deletes a pin (a no-op if it is gone already). */
  async unpin(pinId: string): Promise<void> {
    await this.rpc("DELETE", this.url(`/pins/${encodeURIComponent(pinId)}`));
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

