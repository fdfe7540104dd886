import { InvalidError } from "../protocol/errors.js";
import { VOLUME_ROUTE_LIMITS } from "../protocol/volume-limits.js";
import type { ComposeBlockRequest } from "../protocol/volume-routes.js";
import {
  type ByteRange,
  type CommitRequest,
  type CommitResult,
  type ComposedBlock,
  type Delta,
  type DirectUploadPlan,
  INLINE_BLOCK_MAX,
  type ManifestEntry,
  type TreePage,
  type VersionPin,
} from "../protocol/volume.js";
import { type Block, BlockUploader, type BlockUploaderOptions } from "./block-uploader.js";
import { forEachLimit } from "./limit.js";
import { type LocalBlockFile, LocalBlockReader } from "./local-blocks.js";
import { bodyBytes, type Transport } from "./transport.js";

/** What the block-level API needs to know about its volume. */
export interface VolumeBlocksTarget {
  readonly id: string;
  readonly name: string | null;
  readonly environment: string;
  readonly isReadOnly: boolean;
  info(): Promise<{ name: string | null; version: number; inodeLimit: number; inodes: number; createdAt: Date | number }>;
}


/**
 * The block-level API of one volume: versions, trees and deltas, content-addressed blocks,
 * commits of manifest changes, version pins. What a FUSE mount (fuse/volume) and a batch upload
 * build on; jobs use the file-level `Volume` methods instead. `vol.blocks` hands it out.
 */
export class VolumeBlocks {
  /** Whether the server takes block uploads straight to its object store (learnt on first use). */
  private directUploads: boolean | undefined;
  /** Local block reads (client/local-blocks.ts), made on first use. */
  private localReader: LocalBlockReader | undefined;

  constructor(
    private readonly transport: Transport,
    private readonly volume: VolumeBlocksTarget,
  ) {}

  get id(): string {
    return this.volume.id;
  }

  get name(): string | null {
    return this.volume.name;
  }

  private url(suffix: string): string {
    return `/v1/volumes/${this.volume.id}${suffix}`;
  }

  private rpc<T>(method: "GET" | "POST" | "PUT" | "DELETE", suffix: string, body?: unknown, query?: Record<string, string | number | boolean | undefined>): Promise<T> {
    return this.transport.rpc<T>(method, this.url(suffix), body, { environment: this.volume.environment, query });
  }

  private writable(): void {
    if (this.volume.isReadOnly) throw new InvalidError("Read-only Volume can not be written to", "INVALID");
  }

  /** The volume's info (name, latest version, inode counts). */
  info(): ReturnType<VolumeBlocksTarget["info"]> {
    return this.volume.info();
  }

  async latestVersion(): Promise<number> {
    return (await this.rpc<{ version: number }>("GET", "/version")).version;
  }

  /** One page of a version's full tree, in path order; pass `next` back as `after`. */
  tree(version: number, opts: { after?: string; limit?: number } = {}): Promise<TreePage> {
    return this.rpc<TreePage>("GET", "/tree", undefined, { version, after: opts.after, limit: opts.limit });
  }

  /** One page of the entries directly in directory `dir` ("" the root) of a version, in path order; pass `next` back as `after`. */
  list(version: number, dir: string, opts: { after?: string; limit?: number } = {}): Promise<TreePage> {
    return this.rpc<TreePage>("GET", "/list", undefined, { version, path: dir, after: opts.after, limit: opts.limit });
  }

  /** `list`'s page as the server encoded it (msgpack of a TreePage), for a reader that decodes only what it needs. */
  listBytes(version: number, dir: string, opts: { after?: string; limit?: number } = {}): Promise<Buffer> {
    return this.transport.getBytes(this.url("/list"), { environment: this.volume.environment, query: { version, path: dir, after: opts.after, limit: opts.limit } });
  }

  /** Every name (entry) of the given hard-link ids in a version. */
  async links(version: number, linkIds: string[]): Promise<ManifestEntry[]> {
    const out: ManifestEntry[] = [];
    for (let k = 0; k < linkIds.length; k += VOLUME_ROUTE_LIMITS.linkIdsPerRequest) {
      const page = await this.rpc<{ entries: ManifestEntry[] }>("POST", "/links", { version, linkIds: linkIds.slice(k, k + VOLUME_ROUTE_LIMITS.linkIdsPerRequest) });
      out.push(...page.entries);
    }
    return out;
  }

  /** The changes that turn version `from` into `to` (VersionGoneError if `from` is no longer retained). */
  delta(from: number, to: number): Promise<Delta> {
    return this.rpc<Delta>("GET", "/delta", undefined, { from, to });
  }

  /**
   * A block's bytes, or `range` of them (`end` exclusive). With an object-store backend the
   * server answers with a presigned URL and the bytes come straight from the store. Given
   * `into`, the bytes land there when they fit (the answer is then a view of it; over plain
   * http the kernel reads them straight into it): a mount reads every block into a few reused
   * buffers instead of a fresh 8 MiB each.
   */
  async readBlock(hash: string, range?: ByteRange, into?: Buffer): Promise<Buffer> {
    if (range && range.end <= range.start) return Buffer.alloc(0);
    const headers = range ? { range: `bytes=${range.start}-${range.end - 1}` } : undefined;
    const path = this.url(`/blocks/${hash}`);
    const environment = this.volume.environment;
    let location: string | undefined;
    const direct = into && (await this.transport.getInto(path, { headers, redirects: true, environment }, into));
    if (direct) {
      if (direct.statusCode < 300) return direct.body ?? into.subarray(0, direct.bytes);
      location = direct.headers.location;
    } else {
      const res = await this.transport.raw("GET", path, { headers, redirects: true, environment });
      if (res.statusCode < 300) return bodyBytes(res, into);
      await res.body.dump();
      location = res.headers.location as string;
    }
    return bodyBytes(await this.transport.external({ method: "GET", url: location!, headers }), into);
  }

  private get local(): LocalBlockReader {
    return (this.localReader ??= new LocalBlockReader(this.transport, this.volume.environment));
  }

  /**
   * A block read from the server's own blob file on this host (local block reads,
   * client/local-blocks.ts) into `into` (a view of it when it fits), or undefined when that path
   * is not available for it: then read it with `readBlock`.
   */
  readBlockLocal(hash: string, into: Buffer): Promise<Buffer | undefined> {
    return this.local.read(this.volume.id, hash, into);
  }

  /** A block's blob file on this host, opened by the server (the caller closes the fd), or undefined: read it with `readBlock`. */
  openBlockLocal(hash: string): Promise<LocalBlockFile | undefined> {
    return this.local.open(this.volume.id, hash);
  }

  /** Whether local block reads may be tried (the native addon is built and SILO_LOCAL_BLOCKS is not 0); the server may still offer none. */
  get localBlocksEnabled(): boolean {
    return this.local.enabled;
  }

  /**
   * Copies the first `len` bytes of block `hash` into the file `fd` at `at` straight from the
   * server's blob file on this host; false (nothing written) when that path is not available for
   * it: read it with `readBlock`.
   */
  copyBlockLocal(hash: string, fd: number, at: number, len: number): Promise<boolean> {
    return this.local.copy(this.volume.id, hash, fd, at, len);
  }

  /**
   * The blob files on this host of those of `hashes` the server gives, by hash, opened by the
   * server and asked for in as few exchanges as the protocol allows (LOCAL_BLOCKS.maxBlocks a
   * request); the caller closes every fd. A block not in the answer: read it with `readBlock`.
   */
  openBlocksLocal(hashes: readonly string[]): Promise<Map<string, LocalBlockFile>> {
    return this.local.openMany(this.volume.id, hashes);
  }

  /**
   * Copies the first `len` bytes of a block file `openBlocksLocal` gave into the file `fd` at
   * `at`; false (the file is shorter) when it must be read with `readBlock`. The caller still closes `file.fd`.
   */
  copyBlockFileLocal(file: LocalBlockFile, fd: number, at: number, len: number): Promise<boolean> {
    return this.local.copyFile(file, fd, at, len);
  }

  /** Starts looking up the server's local block socket, so that the first local read does not wait for it. */
  warmLocal(): void {
    this.local.warm();
  }

  /** Counts a failed read of a block opened by `openBlockLocal` (repeated failures rest the fast path). */
  noteLocalFailure(_err: unknown): void {
    this.local.noteFailure();
  }

  /** Blocks read through local block reads so far, and fast-path exchanges that failed (each then read over HTTP). */
  get localBlockCounts(): { blocks: number; failures: number } {
    return this.localReader?.counts ?? { blocks: 0, failures: 0 };
  }

  /** Which of these block hashes the server lacks (the others count as recently used, so GC keeps them). */
  async missingBlocks(hashes: string[]): Promise<string[]> {
    if (hashes.length === 0) return [];
    return (await this.rpc<{ missing: string[] }>("POST", "/blocks/missing", { hashes })).missing;
  }

  /**
   * Uploads one block (at most BLOCK_SIZE bytes); its SHA-256 is verified (by the server, or by
   * the object store when the block goes there directly).
   */
  async uploadBlock(hash: string, data: Uint8Array): Promise<void> {
    this.writable();
    if (data.length > INLINE_BLOCK_MAX && (await this.uploadDirect([{ hash, data }]))) return;
    const res = await this.transport.raw("PUT", this.url(`/blocks/${hash}`), {
      body: data,
      headers: { "content-type": "application/octet-stream" },
      environment: this.volume.environment,
    });
    await res.body.dump();
  }

  /** Uploads several blocks in one request (with an object-store backend, those above INLINE_BLOCK_MAX go there directly). */
  async uploadBlocks(blocks: Block[]): Promise<void> {
    this.writable();
    const large = blocks.filter((b) => b.data.length > INLINE_BLOCK_MAX);
    if (large.length > 0 && (await this.uploadDirect(large))) blocks = blocks.filter((b) => b.data.length <= INLINE_BLOCK_MAX);
    if (blocks.length > 0) await this.rpc("POST", "/blocks", { blocks });
  }

  /**
   * Has the server compose a block from a stored base and written ranges and store it
   * (ComposeBlockRequest: ranges sorted, not overlapping); answers its hash. NotFoundError if the
   * server holds no such base for this volume's workspace.
   */
  composeBlock(req: ComposeBlockRequest): Promise<ComposedBlock> {
    this.writable();
    return this.rpc<ComposedBlock>("POST", "/blocks/compose", req);
  }

  /**
   * The block-transfer engine bound to this volume: hashes, asks which blocks are missing,
   * batches small ones and sends large ones several at a time.
   */
  uploader(opts: BlockUploaderOptions = {}): BlockUploader {
    this.writable();
    return new BlockUploader(this, opts);
  }

  /**
   * Sends blocks straight to the object store with requests the server signs, then has the
   * server record them; false (nothing sent) if the server keeps blocks itself.
   */
  private async uploadDirect(blocks: Block[]): Promise<boolean> {
    if (this.directUploads === false) return false;
    const byHash = new Map(blocks.map((b) => [b.hash, b.data]));
    const hashes = [...byHash.keys()];
    for (let i = 0; i < hashes.length; i += VOLUME_ROUTE_LIMITS.directHashes) {
      const part = hashes.slice(i, i + VOLUME_ROUTE_LIMITS.directHashes);
      const plan = await this.rpc<DirectUploadPlan>("POST", "/blocks/direct-uploads", { hashes: part });
      this.directUploads = plan.direct;
      if (!plan.direct) return false;
      await forEachLimit(plan.uploads, 8, async (u) => {
        const res = await this.transport.external({ method: u.method, url: u.url, headers: u.headers, body: byHash.get(u.hash)! });
        await res.body.dump();
      });
      await this.rpc("POST", "/blocks/confirm", { hashes: part });
    }
    return true;
  }

  /**
   * Commits changes against `baseVersion` as one new version (all or nothing). Blocks must
   * have been uploaded. NoSpaceError past the inode or directory limit.
   */
  async commitChanges(req: CommitRequest & { overwrite?: "replace" | "files" | "none" }): Promise<CommitResult> {
    this.writable();
    return this.rpc<CommitResult>("POST", "/commit", req);
  }

  /**
   * Pins `version` (default: the latest) so garbage collection keeps it readable, blocks and
   * all, while the pin lives: renew it within `ttlMs` (`renewPin`), `unpin` when done. What a
   * mount does for the version it serves. VersionGoneError if GC already dropped that version.
   */
  pinVersion(version?: number): Promise<VersionPin> {
    return this.rpc<VersionPin>("POST", "/pins", version === undefined ? {} : { version });
  }

  /** Extends a pin, moving it to `version` if given. NotFoundError once it lapsed; VersionGoneError for a dropped version. */
  renewPin(pinId: string, version?: number): Promise<VersionPin> {
    return this.rpc<VersionPin>("PUT", `/pins/${encodeURIComponent(pinId)}`, version === undefined ? {} : { version });
  }

  /** Deletes a pin (a no-op if it is gone already). */
  async unpin(pinId: string): Promise<void> {
    await this.rpc("DELETE", `/pins/${encodeURIComponent(pinId)}`);
  }
}
