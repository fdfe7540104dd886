import { createHash } from "node:crypto";
import type { FileHandle } from "node:fs/promises";
import { Readable } from "node:stream";
import type { ComposeBlockRequest } from "../../protocol/volume-routes.js";
import {
  BLOCK_SIZE,
  type Change,
  type ComposedBlock,
  type DirectFileRead,
  type DirectUploadPlan,
  type HistoryPage,
  INLINE_BLOCK_MAX,
  type ManifestEntry,
  type RestoreResult,
  SMALL_FILE_MAX,
  VOLUME_LIMITS,
  type VersionPin,
  expandBlocks,
} from "../../protocol/volume.js";
import { BlockBuffers } from "../../lib/block-buffers.js";
import type { Caller } from "../auth/authenticate.js";
import { type BlobStore, type ByteRange, verifyingStream } from "../blobs/index.js";
import { siloError, invalid, notFound } from "../errors.js";
import { newId } from "../ids.js";
import type { ObjectRecord, ObjectRegistry } from "../objects/registry.js";
import type { Overwrite, VolumeLimits } from "./commit.js";
import type { KeyLock } from "./key-lock.js";
import type { ManifestStore, VolumeState } from "./manifest-store.js";
import { normalizePath } from "./paths.js";
import { type Clock, systemClock } from "../../lib/clock.js";
import type { SendPart } from "../http/send-file.js";
import { type BlockReader, type StoredRange, storeRange } from "./local-put.js";

const INLINE_MAX = INLINE_BLOCK_MAX;
/** Paths `history` names per version and kind of change (the counts are exact). */
const HISTORY_SAMPLE = 10;

export const KIND = "volume";
export const { defaultInodeLimit: DEFAULT_INODE_LIMIT, maxDirEntries: MAX_DIR_ENTRIES, maxFileBytes: MAX_FILE_BYTES } = VOLUME_LIMITS;
/** Most blocks one direct file read answer covers (256 MiB; the client asks again for more, so URLs are used long before they expire). */
export const DIRECT_READ_BLOCKS = 32;

/** A resolved volume for one request: its registry record and manifest state when it was opened. */
export interface OpenVolume {
  record: ObjectRecord;
  st: VolumeState;
}

/** A file entry with the place of each block: its hash, or null for zeros. */
function blockHashes(entry: ManifestEntry): Array<string | null> {
  return [...expandBlocks(entry.blocks ?? [])];
}

/** The volume operations the routes expose, over the manifest store and the blob store. */
export class VolumeStore {
  constructor(
    private readonly registry: ObjectRegistry,
    /** The kinds whose ids these routes serve (volumes, network file systems: services/file-trees.ts). */
    private readonly kinds: ReadonlySet<string>,
    readonly store: ManifestStore,
    readonly blobs: BlobStore,
    private readonly blockLock: KeyLock,
    /** A version pin lapses this long after it was created or last renewed. */
    readonly pinTtlMs: number,
    /** Time for version timestamps (retention counts from them), pins and block touches. */
    readonly clock: Clock = systemClock,
  ) {}

  /** Buffers composeBlock builds blocks in: as many kept as a mount's commit composes at once (8, 64 MiB). */
  private readonly composeBuffers = new BlockBuffers(BLOCK_SIZE, 8);

  /** The caller's volume (or other file tree) with this id (NotFound outside its workspace/environment). */
  async open(caller: Caller, id: string): Promise<OpenVolume> {
    const record = this.registry.getOfKinds(caller, this.kinds, id);
    return { record, st: await this.store.state(record.id, record.workspaceId, record.createdAt) };
  }

  limits(record: ObjectRecord): VolumeLimits {
    return {
      inodeLimit: (record.options.inodeLimit as number | undefined) ?? DEFAULT_INODE_LIMIT,
      maxDirEntries: MAX_DIR_ENTRIES,
      maxFileBytes: MAX_FILE_BYTES,
    };
  }

  /** Applies changes as one new version (none: no new version), recording the committing token. */
  commit(vol: OpenVolume, caller: Caller, changes: readonly Change[], overwrite: Overwrite = "replace", note?: string): Promise<number> {
    return this.store.commit(vol.st.volume, changes, this.limits(vol.record), overwrite, { tokenId: caller.token.id, note, now: this.clock.now() });
  }

  history(vol: OpenVolume, opts: { path?: string; before?: number; limit?: number }): Promise<HistoryPage> {
    const path = opts.path === undefined ? undefined : normalizePath(opts.path);
    return this.store.history(vol.st.volume, { path, before: opts.before, limit: opts.limit ?? 100, sample: HISTORY_SAMPLE });
  }

  /**
   * Brings `path` (default: the whole volume) back to what it was in `version`, as a new commit
   * that changes only what differs; the latest version unchanged if nothing does.
   */
  async restore(vol: OpenVolume, caller: Caller, version: number, rawPath = ""): Promise<RestoreResult> {
    const path = normalizePath(rawPath);
    if (path !== "") {
      const { entry } = await this.store.lookup(vol.st.volume, version, path);
      if (!entry) throw notFound(`Path '/${path}' in version ${version}`);
    }
    const changes = await this.store.revertChanges(vol.st.volume, version, path);
    const v = await this.commit(vol, caller, changes, "replace", `restore of /${path} from version ${version}`);
    return { version: v, changes: changes.length };
  }

  /** A new volume holding `version` of this one (default: the latest); blocks are shared, no bytes copied. */
  async fork(vol: OpenVolume, caller: Caller, name: string, version?: number): Promise<ObjectRecord> {
    const v = await this.store.checkVersion(vol.st.volume, version);
    // A fork is of the source's kind (a volume, or a network file system).
    const record = this.registry.create(caller, vol.record.kind, name, { options: vol.record.options });
    try {
      await this.store.state(record.id, record.workspaceId, record.createdAt);
      await this.store.fork(vol.st.volume, v, record.id, record.workspaceId, {
        tokenId: caller.token.id,
        note: `fork of ${vol.record.name ?? vol.record.id} at version ${v}`,
        now: this.clock.now(),
      });
    } catch (err) {
      // Nothing half-made stays behind under the new name.
      await this.registry.deleteById(caller, record.kind, record.id).catch(() => {});
      throw err;
    }
    return record;
  }

  pin(vol: OpenVolume, version?: number): Promise<VersionPin> {
    return this.store.pin(vol.st.volume, newId("pin"), version, this.pinTtlMs, this.clock.now());
  }

  renewPin(vol: OpenVolume, pinId: string, version?: number): Promise<VersionPin> {
    return this.store.renewPin(vol.st.volume, pinId, version, this.pinTtlMs, this.clock.now());
  }

  /** The volume's pins that have not lapsed, oldest version first (each is a live mount or reader). */
  pins(vol: OpenVolume): Promise<Array<{ pinId: string; version: number; expiresAt: number }>> {
    return this.store.listPins(vol.st.volume, this.clock.now());
  }

  unpin(vol: OpenVolume, pinId: string): Promise<void> {
    return this.store.unpin(vol.st.volume, pinId);
  }

  missingBlocks(vol: OpenVolume, hashes: readonly string[]): Promise<string[]> {
    return this.store.missingBlocks(vol.record.workspaceId, hashes, this.clock.now());
  }

  /** Streams one uploaded block into the blob store, verifying its hash and size. */
  async uploadBlock(vol: OpenVolume, hash: string, body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<void> {
    const ws = vol.record.workspaceId;
    await this.blockLock.with(`${ws}/${hash}`, async () => {
      const size = await this.blobs.put(ws, hash, verifyingStream(body, hash, BLOCK_SIZE));
      await this.store.recordBlock(ws, hash, size, this.clock.now());
    });
  }

  /**
   * Composes a block from a stored base and written ranges (ComposeBlockBody) and stores it as an
   * upload would, durably: a mount's commit of a partly rewritten block, without the base
   * crossing the wire twice. The base is read under its block lock, so GC can not delete it
   * meanwhile; a base the workspace does not hold is NotFound, as a read of it would be.
   */
  async composeBlock(vol: OpenVolume, req: ComposeBlockRequest): Promise<ComposedBlock> {
    const { base, baseLength, length, ranges } = req;
    if (baseLength > length) throw invalid(`baseLength ${baseLength} is past the block's length ${length}`);
    let end = 0;
    for (const r of ranges) {
      if (r.offset < end) throw invalid(`Ranges must be sorted and must not overlap: one starts at ${r.offset}, before ${end}`);
      end = r.offset + r.data.length;
      if (end > length) throw invalid(`A range ends at ${end}, past the block's length ${length}`);
    }
    const ws = vol.record.workspaceId;
    const buffer = this.composeBuffers.take();
    const data = buffer.memory.subarray(0, length);
    await this.blockLock.with(`${ws}/${base}`, async () => {
      const size = await this.store.blockSize(ws, base);
      if (size === undefined) throw notFound(`Block ${base}`);
      if (size < baseLength) throw invalid(`Block ${base} holds ${size} bytes, fewer than baseLength ${baseLength}`);
      let got = 0;
      for await (const chunk of await blockStream(this.store, this.blobs, ws, base, { start: 0, end: baseLength })) {
        data.set(chunk as Buffer, got);
        got += (chunk as Buffer).length;
      }
      if (got !== baseLength) throw siloError("INTERNAL", `Block ${base} read ${got} of its ${baseLength} bytes`);
    });
    // A reused buffer: past the base it holds an earlier block's bytes, where this one has zeros.
    data.fill(0, baseLength);
    for (const r of ranges) data.set(r.data, r.offset);
    const hash = createHash("sha256").update(data).digest("hex");
    if (length <= INLINE_MAX) await this.store.storeInline(ws, [{ hash, data }], this.clock.now());
    else {
      await this.blockLock.with(`${ws}/${hash}`, async () => {
        await this.blobs.put(ws, hash, Readable.from([data], { objectMode: false }));
        await this.store.recordBlock(ws, hash, length, this.clock.now());
      });
    }
    // Back to the pool only after a success: a failed store may leave a request that still reads it.
    buffer.release();
    return { hash, size: length };
  }

  /** Stores a batch of small blocks inline in one transaction; larger ones go to the blob store. */
  async uploadSmallBlocks(vol: OpenVolume, blocks: ReadonlyArray<{ hash: string; data: Uint8Array }>): Promise<void> {
    const inline = blocks.filter((b) => b.data.length <= INLINE_MAX);
    for (const b of inline) {
      const actual = createHash("sha256").update(b.data).digest("hex");
      if (actual !== b.hash) throw invalid(`Block content does not match its hash ${b.hash} (got ${actual})`);
    }
    await this.store.storeInline(vol.record.workspaceId, inline, this.clock.now());
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
        await this.store.recordBlock(ws, hash, size, this.clock.now());
      });
    await Promise.all(hashes.map(confirm));
  }

  /** A presigned URL of a block in the object store, or undefined if the block is inline or the store has no client data path. */
  async blockUrl(vol: OpenVolume, hash: string): Promise<string | undefined> {
    const ws = vol.record.workspaceId;
    if (!this.blobs.direct || (await this.store.inlineBlock(ws, hash))) return undefined;
    return this.blobs.direct.signGet(ws, hash);
  }

  /**
   * Where the bytes of `range` of a file are, for a client to read them from the object store
   * itself (at most DIRECT_READ_BLOCKS blocks per answer); undefined without an object store.
   */
  async directFileRead(vol: OpenVolume, version: number, entry: ManifestEntry, range: ByteRange): Promise<DirectFileRead | undefined> {
    const direct = this.blobs.direct;
    if (!direct) return undefined;
    const blocks = blockHashes(entry);
    const ws = vol.record.workspaceId;
    const first = Math.floor(range.start / BLOCK_SIZE);
    const parts: DirectFileRead["parts"] = [];
    let i = first;
    for (; i * BLOCK_SIZE < range.end && i < first + DIRECT_READ_BLOCKS; i++) {
      const start = Math.max(range.start - i * BLOCK_SIZE, 0);
      const end = Math.min(range.end - i * BLOCK_SIZE, BLOCK_SIZE);
      const hash = blocks[i];
      if (!hash) {
        // A hole: zeros, no stored block to point at.
        parts.push({ zeros: true, start, end });
        continue;
      }
      const data = await this.store.inlineBlock(ws, hash);
      if (data && data.length < end) throw siloError("INTERNAL", `Block ${i} of '/${entry.path}' holds ${data.length} of the ${end} bytes the file needs from it`);
      parts.push(data ? { data: data.subarray(start, end), start, end } : { url: await direct.signGet(ws, hash), start, end });
    }
    return { version, parts, next: i * BLOCK_SIZE < range.end ? i * BLOCK_SIZE : undefined };
  }

  /** A block's bytes in `range` as a response part (sendParts): an open file for local blobs; NotFound if absent. */
  async blockPart(vol: OpenVolume, hash: string, range: ByteRange): Promise<SendPart> {
    return blockPart(this.store, this.blobs, vol.record.workspaceId, hash, range);
  }

  /**
   * A block's blob file opened read-only, for a local block read (local-block-server.ts): its
   * size and handle; undefined if the block has no file of its own (inline, or an object store).
   * NotFound if the workspace has no such block.
   */
  async blockFile(vol: OpenVolume, hash: string): Promise<{ size: number; fh: FileHandle } | undefined> {
    const size = await this.blockSize(vol, hash);
    const ws = vol.record.workspaceId;
    if (!this.blobs.open || (await this.store.inlineBlock(ws, hash))) return undefined;
    return { size, fh: await this.blobs.open(ws, hash) };
  }

  /**
   * Stores the blocks of bytes [offset, offset + length) of a file a client on this host passed
   * open (local block writes, local-put.ts), durably, hashing them here; the blocks in order.
   */
  storeFileRange(vol: OpenVolume, fd: number, offset: number, length: number, buffers: BlockBuffers, read: BlockReader): Promise<StoredRange> {
    const deps = { store: this.store, blobs: this.blobs, blockLock: this.blockLock, clock: this.clock, buffers, read };
    return storeRange(deps, vol.record.workspaceId, fd, offset, length);
  }

  async blockSize(vol: OpenVolume, hash: string): Promise<number> {
    const size = await this.store.blockSize(vol.record.workspaceId, hash);
    if (size === undefined) throw notFound(`Block ${hash}`);
    return size;
  }

  /** The entry at a path in a version (default: the latest; the root is a directory). */
  async lookup(vol: OpenVolume, version: number | undefined, rawPath: string): Promise<{ version: number; entry: ManifestEntry | "root" }> {
    const path = normalizePath(rawPath);
    const found = await this.store.lookup(vol.st.volume, version, path);
    if (path === "") return { version: found.version, entry: "root" };
    if (!found.entry) throw notFound(`Path '/${path}' in '${vol.record.name ?? vol.record.id}'`);
    return { version: found.version, entry: found.entry };
  }

  /** Whole small files in one go (many small files would otherwise cost a request each). */
  async readSmallFiles(vol: OpenVolume, version: number | undefined, paths: readonly string[]): Promise<{ version: number; files: Array<{ path: string; data: Buffer }> }> {
    const v = await this.store.checkVersion(vol.st.volume, version);
    const entries = [];
    for (const p of paths) {
      const { entry } = await this.lookup(vol, v, p);
      if (entry === "root" || entry.type !== "file") throw invalid(`'${p}' is not a file`);
      if (entry.size > SMALL_FILE_MAX) throw invalid(`'${p}' is larger than ${SMALL_FILE_MAX} bytes; read it as a stream`);
      entries.push(entry);
    }
    const files = await Promise.all(
      entries.map(async (entry) => {
        const chunks: Buffer[] = [];
        for await (const c of this.readFile(vol, entry, { start: 0, end: entry.size })) chunks.push(c as Buffer);
        return { path: entry.path, data: Buffer.concat(chunks) };
      }),
    );
    return { version: v, files };
  }

  /**
   * A file's bytes in `range`, read block by block from the blob store; holes read as zeros. A
   * block that holds fewer bytes than the file says (a manifest written before commits were
   * checked) fails the stream at once instead of leaving the reader waiting for the rest.
   */
  readFile(vol: OpenVolume, entry: ManifestEntry, range: ByteRange): Readable {
    const ws = vol.record.workspaceId;
    const { store, blobs } = this;
    async function* chunks() {
      for (const { i, hash, start, end } of fileBlocks(entry, range)) {
        if (hash === null) {
          yield Buffer.alloc(end - start);
          continue;
        }
        let got = 0;
        for await (const chunk of await blockStream(store, blobs, ws, hash, { start, end })) {
          got += (chunk as Buffer).length;
          yield chunk as Buffer;
        }
        if (got !== end - start) {
          throw siloError("INTERNAL", `Block ${i} of '/${entry.path}' holds ${start + got} of the ${end} bytes the file needs from it`);
        }
      }
    }
    return Readable.from(chunks(), { objectMode: false });
  }

  /**
   * A file's bytes in `range` as response parts (sendParts), block by block: local blobs as open
   * files, holes as zeros. A block shorter than the file says cuts the response (sendParts checks
   * each file part's length).
   */
  async *fileParts(vol: OpenVolume, entry: ManifestEntry, range: ByteRange): AsyncGenerator<SendPart> {
    for (const { hash, start, end } of fileBlocks(entry, range)) {
      yield hash === null ? Buffer.alloc(end - start) : await blockPart(this.store, this.blobs, vol.record.workspaceId, hash, { start, end });
    }
  }
}

/** The blocks (index, hash or null for a hole, byte range within the block) that bytes `range` of a file lie in. */
function* fileBlocks(entry: ManifestEntry, range: ByteRange): Generator<{ i: number; hash: string | null; start: number; end: number }> {
  const blocks = blockHashes(entry);
  for (let i = Math.floor(range.start / BLOCK_SIZE); i * BLOCK_SIZE < range.end; i++) {
    const base = i * BLOCK_SIZE;
    const hash = blocks[i];
    if (hash === undefined) throw siloError("INTERNAL", `File '/${entry.path}' lists fewer blocks than its size needs`);
    yield { i, hash, start: Math.max(range.start - base, 0), end: Math.min(range.end - base, BLOCK_SIZE) };
  }
}

/** A block's bytes in `range` for sendParts: inline bytes, an open file of a local blob, or a stream. */
async function blockPart(store: ManifestStore, blobs: BlobStore, ws: string, hash: string, range: ByteRange): Promise<SendPart> {
  const data = await store.inlineBlock(ws, hash);
  if (data) return data.subarray(range.start, range.end);
  if (range.end <= range.start) return Buffer.alloc(0);
  if (blobs.open) return { fh: await blobs.open(ws, hash), ...range };
  return blobs.get(ws, hash, range);
}

/** A block's bytes (or a range), from the manifest store if it is inline, else from the blob store. */
async function blockStream(store: ManifestStore, blobs: BlobStore, ws: string, hash: string, range?: ByteRange): Promise<Readable> {
  const data = await store.inlineBlock(ws, hash);
  if (data) return Readable.from([range ? data.subarray(range.start, range.end) : data], { objectMode: false });
  return blobs.get(ws, hash, range);
}

