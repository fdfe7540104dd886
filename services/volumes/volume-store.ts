import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { BLOCK_SIZE, type Change, SMALL_FILE_MAX, VOLUME_LIMITS, type DirectFileRead, type DirectUploadPlan } from "../../protocol/volume.js";
import type { Caller } from "../auth/authenticate.js";
import { type BlobStore, type ByteRange, verifyingStream } from "../blobs/index.js";
import { siloError, invalid, notFound } from "../errors.js";
import type { ObjectRecord, ObjectRegistry } from "../objects/registry.js";
import { type BlockIndex, INLINE_MAX } from "./block-index.js";
import { type Overwrite, type VolumeLimits, applyCommit } from "./commit.js";
import type { KeyLock } from "./key-lock.js";
import { type ManifestStore, type Row, type VolumeState, toEntry } from "./manifest-store.js";
import { normalizePath } from "./paths.js";
import { type Clock, systemClock } from "../../lib/clock.js";

export const KIND = "volume";
export const { defaultInodeLimit: DEFAULT_INODE_LIMIT, maxDirEntries: MAX_DIR_ENTRIES, maxFileBytes: MAX_FILE_BYTES } = VOLUME_LIMITS;
/** Most blocks one direct file read answer covers (256 MiB; the client asks again for more, so URLs are used long before they expire). */
export const DIRECT_READ_BLOCKS = 32;

/** A resolved volume for one request: its registry record and manifest state. */
export interface OpenVolume {
  record: ObjectRecord;
  st: VolumeState;
}

/** The volume operations the routes expose, over the manifest, block index and blob store. */
export class VolumeStore {
  constructor(
    private readonly registry: ObjectRegistry,
    /** The kinds whose ids these routes serve (volumes, network file systems: services/file-trees.ts). */
    private readonly kinds: ReadonlySet<string>,
    readonly store: ManifestStore,
    readonly blocks: BlockIndex,
    readonly blobs: BlobStore,
    private readonly blockLock: KeyLock,
    /** Time for version timestamps (retention counts from them). */
    private readonly clock: Clock = systemClock,
  ) {}

  /** The caller's volume (or other file tree) with this id (NotFound outside its workspace/environment). */
  open(caller: Caller, id: string): OpenVolume {
    const record = this.registry.getOfKinds(caller, this.kinds, id);
    return { record, st: this.store.state(record.id, record.workspaceId, record.createdAt) };
  }

  limits(record: ObjectRecord): VolumeLimits {
    return {
      inodeLimit: (record.options.inodeLimit as number | undefined) ?? DEFAULT_INODE_LIMIT,
      maxDirEntries: MAX_DIR_ENTRIES,
      maxFileBytes: MAX_FILE_BYTES,
    };
  }

  commit(vol: OpenVolume, changes: readonly Change[], overwrite?: Overwrite): number {
    return applyCommit(this.store, vol.st, changes, this.limits(vol.record), overwrite, this.clock.now());
  }

  /** Streams one uploaded block into the blob store, verifying its hash and size. */
  async uploadBlock(vol: OpenVolume, hash: string, body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<void> {
    const ws = vol.record.workspaceId;
    await this.blockLock.with(`${ws}/${hash}`, async () => {
      const size = await this.blobs.put(ws, hash, verifyingStream(body, hash, BLOCK_SIZE));
      this.blocks.uploaded(ws, hash, size);
    });
  }

  /** Stores a batch of small blocks inline in one transaction; larger ones go to the blob store. */
  async uploadSmallBlocks(vol: OpenVolume, blocks: ReadonlyArray<{ hash: string; data: Uint8Array }>): Promise<void> {
    const inline = blocks.filter((b) => b.data.length <= INLINE_MAX);
    for (const b of inline) {
      const actual = createHash("sha256").update(b.data).digest("hex");
      if (actual !== b.hash) throw invalid(`Block content does not match its hash ${b.hash} (got ${actual})`);
    }
    this.blocks.storeInline(vol.record.workspaceId, inline);
    await Promise.all(blocks.filter((b) => b.data.length > INLINE_MAX).map((b) => this.uploadBlock(vol, b.hash, [b.data])));
  }

  /**
   * Signed uploads straight to the object store for blocks larger than INLINE_MAX (smaller ones
   * stay inline here); `direct: false` if the blob store has no client data path.
   */
  async directUploads(vol: OpenVolume, hashes: readonly string[]): Promise<DirectUploadPlan> {
    const direct = this.blobs.direct;
    if (!direct) return { direct: false, uploads: [] };
    const ws = vol.record.workspaceId;
    const uploads = await Promise.all(hashes.map(async (hash) => ({ hash, ...(await direct.signPut(ws, hash)) })));
    return { direct: true, uploads };
  }

  /**
   * Records blocks a client uploaded straight to the object store. The store checked each body
   * against its SHA-256 (the signed payload hash); here each must exist and fit in a block.
   */
  async confirmUploads(vol: OpenVolume, hashes: readonly string[]): Promise<void> {
    const direct = this.blobs.direct;
    if (!direct) throw invalid("This server keeps blocks itself: upload them to the server");
    const ws = vol.record.workspaceId;
    // At most 1,000 per request; the S3 client's connection pool bounds how many HEADs run at once.
    const confirm = (hash: string) =>
      this.blockLock.with(`${ws}/${hash}`, async () => {
        const size = await direct.size(ws, hash);
        if (size === undefined) throw invalid(`Block ${hash} is not in the object store (upload it before confirming)`);
        if (size > BLOCK_SIZE) {
          // Its content has this hash (the store checked), so it can be no valid block.
          await this.blobs.delete(ws, hash);
          throw siloError("TOO_LARGE", `Block is larger than ${BLOCK_SIZE} bytes`);
        }
        this.blocks.uploaded(ws, hash, size);
      });
    await Promise.all(hashes.map(confirm));
  }

  /** A presigned URL of a block in the object store, or undefined if the block is inline or the store has no client data path. */
  async blockUrl(vol: OpenVolume, hash: string): Promise<string | undefined> {
    const ws = vol.record.workspaceId;
    if (!this.blobs.direct || this.blocks.inlineData(ws, hash)) return undefined;
    return this.blobs.direct.signGet(ws, hash);
  }

  /**
   * Where the bytes of `range` of a file are, for a client to read them from the object store
   * itself (at most DIRECT_READ_BLOCKS blocks per answer); undefined without an object store.
   */
  async directFileRead(vol: OpenVolume, version: number, row: Row, range: ByteRange): Promise<DirectFileRead | undefined> {
    const direct = this.blobs.direct;
    if (!direct) return undefined;
    const blocks = toEntry(row).blocks ?? [];
    const ws = vol.record.workspaceId;
    const first = Math.floor(range.start / BLOCK_SIZE);
    const parts: DirectFileRead["parts"] = [];
    let i = first;
    for (; i * BLOCK_SIZE < range.end && i < first + DIRECT_READ_BLOCKS; i++) {
      const start = Math.max(range.start - i * BLOCK_SIZE, 0);
      const end = Math.min(range.end - i * BLOCK_SIZE, BLOCK_SIZE);
      const data = this.blocks.inlineData(ws, blocks[i]!);
      parts.push(data ? { data: data.subarray(start, end), start, end } : { url: await direct.signGet(ws, blocks[i]!), start, end });
    }
    return { version, parts, next: i * BLOCK_SIZE < range.end ? i * BLOCK_SIZE : undefined };
  }

  async readBlock(vol: OpenVolume, hash: string, range?: ByteRange): Promise<Readable> {
    return blockStream(this.blocks, this.blobs, vol.record.workspaceId, hash, range);
  }

  blockSize(vol: OpenVolume, hash: string): number {
    const size = this.blocks.size(vol.record.workspaceId, hash);
    if (size === undefined) throw notFound(`Block ${hash}`);
    return size;
  }

  /** The live entry at a path in a version (the root is a directory). */
  lookup(vol: OpenVolume, version: number, rawPath: string): Row | "root" {
    const path = normalizePath(rawPath);
    if (path === "") return "root";
    const row = this.store.lookup(vol.st, version, path);
    if (!row) throw notFound(`Path '/${path}' in '${vol.record.name ?? vol.record.id}'`);
    return row;
  }

  /** Whole small files in one go (many small files would otherwise cost a request each). */
  async readSmallFiles(vol: OpenVolume, version: number, paths: readonly string[]): Promise<Array<{ path: string; data: Buffer }>> {
    const rows = paths.map((p) => {
      const row = this.lookup(vol, version, p);
      if (row === "root" || row.kind !== "file") throw invalid(`'${p}' is not a file`);
      if (row.size > SMALL_FILE_MAX) throw invalid(`'${p}' is larger than ${SMALL_FILE_MAX} bytes; read it as a stream`);
      return row;
    });
    return Promise.all(
      rows.map(async (row) => {
        const chunks: Buffer[] = [];
        for await (const c of this.readFile(vol, row, { start: 0, end: row.size })) chunks.push(c as Buffer);
        return { path: row.path, data: Buffer.concat(chunks) };
      }),
    );
  }

  /** A file's bytes in `range`, read block by block from the blob store. */
  readFile(vol: OpenVolume, row: Row, range: ByteRange): Readable {
    const blocks = toEntry(row).blocks ?? [];
    const ws = vol.record.workspaceId;
    const { blocks: index, blobs } = this;
    async function* chunks() {
      for (let i = Math.floor(range.start / BLOCK_SIZE); i * BLOCK_SIZE < range.end; i++) {
        const base = i * BLOCK_SIZE;
        const start = Math.max(range.start - base, 0);
        const end = Math.min(range.end - base, BLOCK_SIZE);
        yield* await blockStream(index, blobs, ws, blocks[i]!, { start, end });
      }
    }
    return Readable.from(chunks(), { objectMode: false });
  }
}

/** A block's bytes (or a range), from the index if it is inline, else from the blob store. */
async function blockStream(index: BlockIndex, blobs: BlobStore, ws: string, hash: string, range?: ByteRange): Promise<Readable> {
  const data = index.inlineData(ws, hash);
  if (data) return Readable.from([range ? data.subarray(range.start, range.end) : data], { objectMode: false });
  return blobs.get(ws, hash, range);
}

